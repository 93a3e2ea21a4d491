//! `harness-guest`, the in-guest executor the host starts in each VM: reads the plan the
//! host validated, runs its cases on the running kernel and writes one `KernelRun`.
//!
//! A binary of its own, a third of the size of `harness`: under TCG a guest pays for
//! every page of code it faults in over virtiofs and for translating it, and the reports,
//! kernel downloads and case checking of `harness` are never run there.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;

use super::{EXIT_BAD_INPUT, EXIT_INFRA, EXIT_PASS};
use crate::{
    exec, matrix,
    plan::Plan,
    results::{JsonLayout, KernelStatus, RunResults},
    vm::guest_exe::BIN_NAME,
};

/// Inside a VM: run cases on this kernel and write the results as JSON (started by
/// `harness run` and `harness shell`).
#[derive(Debug, Parser)]
#[command(name = BIN_NAME, version)]
struct GuestArgs {
    /// The plan to run: the cases the host validated (see `plan`). A file, as the guest's
    /// command line travels on the kernel's, whose length is limited.
    #[arg(long)]
    plan: PathBuf,
    /// The kernel's name in kernels.toml, recorded in the results.
    #[arg(long)]
    kernel: String,
    /// Where to write the results (in a directory the host shares read-write).
    #[arg(long)]
    out: PathBuf,
    /// After the plan's case (at most one), an interactive shell on the console while the
    /// case's maps, programs and sockets are held (`harness shell`).
    #[arg(long)]
    hold: bool,
}

pub fn main() -> ExitCode {
    ExitCode::from(guest(&GuestArgs::parse()))
}

/// Whatever happens, writes one `KernelRun` for the host to read, so a kernel without
/// working BPF is reported as that kernel's error.
fn guest(args: &GuestArgs) -> u8 {
    let plan = match Plan::read(&args.plan) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {}", crate::error_chain(&e));
            return EXIT_BAD_INPUT;
        }
    };
    let started = std::time::Instant::now();
    let run = if args.hold {
        exec::hold(&args.kernel, plan.cases.first())
    } else {
        exec::run_cases(&args.kernel, &plan.cases, |case| {
            // The console is captured by the host: one line per case helps when a kernel
            // dies.
            println!(
                "{}{} {}",
                matrix::CASE_DONE_MARK,
                case.outcome.label(),
                case.name
            );
        })
    };
    let run = run.unwrap_or_else(|e| {
        let running = crate::version::KernelVersion::running().ok();
        crate::results::KernelRun {
            release: running.as_ref().map(|(_, release)| release.clone()),
            arch: crate::vm::arch::running_machine(),
            version: running.map(|(version, _)| version),
            duration_ms: started.elapsed().as_millis() as u64,
            ..crate::results::KernelRun::without_cases(
                &args.kernel,
                KernelStatus::Error {
                    message: e.to_string(),
                    log_tail: None,
                },
            )
        }
    });
    let json = crate::results::to_json(&RunResults::new(vec![run]), JsonLayout::Compact);
    match crate::report::write_atomically(&args.out, json.as_bytes()) {
        Ok(()) => EXIT_PASS,
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", args.out.display());
            EXIT_INFRA
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_guests_command_line() {
        GuestArgs::command().debug_assert();
        let args = GuestArgs::try_parse_from([
            BIN_NAME,
            "--kernel",
            "6.1",
            "--plan",
            "/harness/plan.json",
            "--out",
            "/harness/results.json",
            "--hold",
        ])
        .unwrap();
        assert_eq!(args.kernel, "6.1");
        assert_eq!(args.plan, PathBuf::from("/harness/plan.json"));
        assert_eq!(args.out, PathBuf::from("/harness/results.json"));
        assert!(args.hold);
        assert!(GuestArgs::try_parse_from([BIN_NAME, "--bogus"]).is_err());
    }
}
