//! Every case in `cases/` as its own test, run on the host kernel (libtest-mimic), so
//! `cargo test` names the case that diverged.

use std::path::PathBuf;

mod requirements;

use harness::{case, exec, report::human::Human, results::CaseOutcome};
use libtest_mimic::{Arguments, Failed, Trial};
use requirements::Requirement;

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // Cases fork and place sockets on chosen descriptor numbers: one at a time.
    args.test_threads = Some(1);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cases = match case::load(&[root.join("cases")]) {
        Ok(cases) => cases,
        Err(errors) => {
            eprintln!("{errors}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let preflight = exec::preflight().map_err(|e| e.to_string());
    // Without root or BPF the cases cannot run: listed as ignored, with the reason printed
    // below, rather than failed; unless the environment declares those requirements.
    let required = Requirement::Root.is_declared() || Requirement::Bpf.is_declared();
    let trials = cases
        .into_iter()
        .map(|case| {
            let preflight = preflight.clone();
            let ignored = preflight.is_err() && !required;
            Trial::test(case.name.clone(), move || {
                let (version, _) =
                    preflight.map_err(|e| Failed::from(format!("cannot run here: {e}")))?;
                let result = exec::run_case(&case, version);
                match &result.outcome {
                    CaseOutcome::Pass => Ok(()),
                    CaseOutcome::Skipped { reason } if is_host_limitation(reason) => {
                        eprintln!("{}: skipped: {reason}", case.name);
                        Ok(())
                    }
                    _ => {
                        let mut text = Vec::new();
                        let run = harness::results::KernelRun {
                            version: Some(version),
                            duration_ms: result.duration_ms,
                            cases: vec![result],
                            ..harness::results::KernelRun::without_cases(
                                "host",
                                harness::results::KernelStatus::Ran,
                            )
                        };
                        Human { color: false }
                            .kernel_summary(&mut text, &run)
                            .map_err(|e| Failed::from(e.to_string()))?;
                        Err(String::from_utf8_lossy(&text).into_owned().into())
                    }
                }
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    if let Err(reason) = &preflight {
        eprintln!("host cases are ignored: {reason}");
    }
    libtest_mimic::run(&args, trials).exit_code()
}

/// Skips the host may show: what the machine forbids or its kernel lacks, found by probing
/// (tracing/LSM programs refused outright, BPF LSM off, a program type or flag the kernel
/// does not have, a kernel older than a case requires). Any other skip, e.g. a probe that
/// fails to tell, fails the test; the VM smoke run pins the exact skips per kernel.
fn is_host_limitation(reason: &str) -> bool {
    [
        "programs before verifying them (EPERM, empty verifier log)",
        "BPF LSM is not enabled",
        "(loading a trivial one fails before the verifier)",
        "this kernel refuses BPF_F_CLONE",
        "or later; this is",
    ]
    .iter()
    .any(|known| reason.contains(known))
}
