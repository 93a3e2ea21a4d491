//! Runs cases on the running kernel: the `--host` runner and, inside each VM, the guest
//! executor are this same code.
//!
//! Each case runs on its own thread in its own network namespace, with its own
//! descriptors; a panic or fault in one case becomes that case's error and the run goes on.
//! The modules mirror `crate::case::steps`: each concern's module performs its steps'
//! actions on the world of the running case (`world`: its maps, sockets and eBPF object,
//! `case_bpf`), through the system calls of [`sys`]; `run` is the loop over the steps, and
//! `prepare` readies the calls that run where nothing may allocate (fork, threads).

mod btf;
mod case_bpf;
mod hold;
mod inspect;
mod isolation;
mod maps;
mod netns;
mod prepare;
mod process;
mod programs;
mod run;
mod sockets;
mod sys;
mod threads;
mod world;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use isolation::{CaseLimits, IsolationError, LeftBehind, ProcessLimits};
use world::World;

use crate::{
    case::{
        Action, Case, FIRST_KERNEL, Step,
        steps::{InspectAction, ProgramAction},
    },
    results::{Actual, CaseOutcome, CaseResult, KernelRun, KernelStatus, StepResult},
    version::KernelVersion,
};

/// Why the executor cannot run anything here: an environment problem, not a divergence.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error(
        "the harness must run as root to create BPF maps (effective uid is {uid}); rerun with sudo"
    )]
    NotRoot { uid: u32 },
    #[error(
        "bpf(2) does not work on this kernel: creating a plain array map failed with {errno}; is CONFIG_BPF_SYSCALL set?"
    )]
    NoBpf { errno: String },
    #[error("cannot read the running kernel's version: {0}")]
    Version(#[from] crate::version::VersionError),
}

/// Why a case stopped before its end: the case's error.
#[derive(Debug, thiserror::Error)]
enum CaseError {
    #[error("cannot start the case's thread: {0}")]
    Thread(std::io::Error),
    #[error("the executor panicked: {0}")]
    Panicked(String),
    #[error(
        "the case did not finish within {}: stopped and left behind (a step that does not \
         return, or more work than a case should be)",
        humantime::format_duration(*.0)
    )]
    TimedOut(Duration),
    #[error("cannot create the case's network namespace: {0}")]
    Netns(std::io::Error),
    #[error("cannot load the eBPF object: {}", crate::error_chain(.0))]
    Object(case_bpf::ObjectError),
    #[error(transparent)]
    Isolation(#[from] IsolationError),
    #[error("cannot clean up the case's cgroup: {}", crate::error_chain(.0))]
    Cleanup(case_bpf::ObjectError),
}

/// Checks that this machine can run cases and returns the kernel's version and release.
pub fn preflight() -> Result<(KernelVersion, String), InfraError> {
    let uid = nix::unistd::geteuid().as_raw();
    if uid != 0 {
        return Err(InfraError::NotRoot { uid });
    }
    // Before 5.11 map memory is charged to RLIMIT_MEMLOCK, whose default runs out after a
    // few maps; root may always lift it, so a failure here cannot happen.
    let _ = crate::bpf::host::raise_memlock_limit();
    sys::probe().map_err(|errno| InfraError::NoBpf {
        errno: crate::errno::name(errno),
    })?;
    Ok(KernelVersion::running()?)
}

/// Runs `cases` on this kernel, one after the other (a fork or a reused descriptor number
/// must not race with another case's descriptors).
pub fn run_cases(
    kernel: &str,
    cases: &[Case],
    mut on_case: impl FnMut(&CaseResult),
) -> Result<KernelRun, InfraError> {
    let start = Instant::now();
    let (version, release) = preflight()?;
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let result = run_case(case, version);
        on_case(&result);
        results.push(result);
    }
    Ok(kernel_run(kernel, version, release, start, results))
}

/// `harness shell`: runs `case`'s steps, if a case is given, then an interactive shell on
/// this terminal while the case's maps, programs and sockets are held (its network
/// namespace, its cgroup); they are released when the shell exits. The case's result is
/// the run's, as for [`run_cases`].
pub fn hold(kernel: &str, case: Option<&Case>) -> Result<KernelRun, InfraError> {
    let start = Instant::now();
    let (version, release) = preflight()?;
    let results = match case {
        Some(case) => vec![run_case_then(
            case,
            version,
            HOLD_TIMEOUT,
            AfterSteps::Shell,
        )],
        None => {
            hold::shell(None, &[]);
            Vec::new()
        }
    };
    Ok(kernel_run(kernel, version, release, start, results))
}

fn kernel_run(
    kernel: &str,
    version: KernelVersion,
    release: String,
    start: Instant,
    results: Vec<CaseResult>,
) -> KernelRun {
    KernelRun {
        kernel: kernel.to_string(),
        release: Some(release),
        arch: crate::vm::arch::running_machine(),
        version: Some(version),
        status: KernelStatus::Ran,
        duration_ms: start.elapsed().as_millis() as u64,
        cmdline: std::fs::read_to_string("/proc/cmdline")
            .ok()
            .map(|line| line.trim().to_string()),
        harness: None,
        accel: None,
        phases: None,
        note: None,
        cases: results,
    }
}

/// The longest a case may run. Cases take milliseconds, the slowest a few seconds under
/// TCG; a case past this (a step that never returns, a `within` that never holds, many of
/// them) is its own error and the kernel's other cases still run, well inside the 300 s a
/// kernel has by default.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `case` on its own thread, stopped after [`CASE_TIMEOUT`].
pub fn run_case(case: &Case, version: KernelVersion) -> CaseResult {
    run_case_for(case, version, CASE_TIMEOUT)
}

/// Runs `case` on its own thread for `timeout` at most. A case still running then is
/// reported as an error and left behind: a thread stuck in a system call cannot be stopped,
/// so its thread, descriptors, network namespace, cgroup and lent eBPF object stay until
/// the call returns, when it stops before its next step and releases them. Meanwhile it
/// cannot touch what the next cases share: its rlimits are undone here at once (and it
/// sets none later), and the next case that needs the eBPF object loads one of its own.
pub fn run_case_for(case: &Case, version: KernelVersion, timeout: Duration) -> CaseResult {
    run_case_then(case, version, timeout, AfterSteps::Release)
}

/// How long a held case may last: a person at its shell, not a machine.
const HOLD_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// What a case does once its steps ran, before it releases what it holds.
#[derive(Debug, Clone, Copy)]
enum AfterSteps {
    Release,
    /// An interactive shell on the terminal, in the case's network namespace ([`hold`]).
    Shell,
}

fn run_case_then(
    case: &Case,
    version: KernelVersion,
    timeout: Duration,
    after: AfterSteps,
) -> CaseResult {
    let start = Instant::now();
    let finish = |outcome, steps| CaseResult {
        name: case.name.clone(),
        file: case.file.display().to_string(),
        outcome,
        duration_ms: start.elapsed().as_millis() as u64,
        steps,
    };
    if let Some(reason) = unmet_requirement(case, version) {
        return finish(CaseOutcome::Skipped { reason }, Vec::new());
    }
    let owned = case.clone();
    let left_behind = Arc::new(LeftBehind::default());
    let limits_before = ProcessLimits::read();
    let (done, finished) = std::sync::mpsc::channel();
    let case_left_behind = Arc::clone(&left_behind);
    let joined = std::thread::Builder::new()
        .name(case.name.clone())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_isolated(&owned, version, &case_left_behind, after)
            }));
            // Nobody listens to a case left behind.
            let _ = done.send(result);
        })
        .map_err(CaseError::Thread)
        .and_then(|_| match finished.recv_timeout(timeout) {
            Ok(result) => result.map_err(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(ToString::to_string))
                    .unwrap_or_default();
                CaseError::Panicked(message)
            }),
            Err(_) => {
                left_behind.mark(&limits_before);
                Err(CaseError::TimedOut(timeout))
            }
        });
    match joined.and_then(|r| r) {
        Ok(steps) => {
            let by_id = case.steps_by_id();
            let refused = steps
                .iter()
                .find_map(|s| refused_environment(case, by_id.get(s.id.as_str())?, s));
            if let Some(reason) = refused {
                return finish(CaseOutcome::Skipped { reason }, steps);
            }
            finish(CaseOutcome::of_steps(&steps), steps)
        }
        Err(e) => finish(
            CaseOutcome::Error {
                message: e.to_string(),
            },
            Vec::new(),
        ),
    }
}

/// A step the kernel could not judge for a reason outside sk storage, which makes the case
/// a skip with that reason rather than a failure:
/// - a program (an attached one or the map iterator) refused with EPERM before the verifier
///   checked an instruction (no log but statistics): the machine forbids such programs
///   (lockdown, a restricted host kernel). A verifier rejection always has its reason line;
/// - a sock_diag dump answered ENOENT: no inet_diag handler for the family or protocol
///   (`__sock_diag_cmd`, `inet_diag_lock_handler`), so the kernel has no INET_DIAG at all
///   or not its modules.
fn refused_environment(case: &Case, ran: &Step, step: &StepResult) -> Option<String> {
    let action = &ran.action;
    if let (Action::Inspect(InspectAction::Diag { .. }), Actual::Errno { name, .. }) =
        (action, &step.actual)
        && name == "ENOENT"
    {
        return Some(
            "this kernel answers no inet_diag dump (ENOENT from SOCK_DIAG_BY_FAMILY): \
             CONFIG_INET_DIAG is off, or its inet_diag/tcp_diag/udp_diag modules are not in \
             this kernel's tree"
                .to_string(),
        );
    }
    let Actual::Rejected { errno, message } = &step.actual else {
        return None;
    };
    if errno != "EPERM" || !message.is_empty() {
        return None;
    }
    let program = match action {
        Action::Programs(ProgramAction::Attach { program }) => {
            format!("{} programs", case.programs.get(program)?.kind.name())
        }
        Action::Inspect(InspectAction::Iterate { .. }) => {
            "the sk storage map iterator (a tracing program)".to_string()
        }
        _ => return None,
    };
    Some(format!(
        "this kernel refused to load {program} before verifying an instruction (EPERM, no \
         verifier log): such programs are not allowed here"
    ))
}

fn unmet_requirement(case: &Case, version: KernelVersion) -> Option<String> {
    // Expectations cover kernels from FIRST_KERNEL on; older ones have no such map at all.
    if version < FIRST_KERNEL {
        return Some(format!(
            "BPF_MAP_TYPE_SK_STORAGE does not exist before {FIRST_KERNEL}; this is {version}"
        ));
    }
    if let Some(min) = case.requires.kernel
        && version < min
    {
        return Some(format!("needs kernel {min} or later; this is {version}"));
    }
    let missing: Vec<String> = case
        .requires
        .capabilities
        .iter()
        .filter(|cap| !caps::has_cap(None, caps::CapSet::Effective, **cap).unwrap_or(false))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Some(format!("needs {} in the effective set", missing.join(", ")));
    }
    case_bpf::unmet(case)
}

/// Runs the case in this (its own) thread: a network namespace of its own, the eBPF object
/// lent to it (loaded as root, unlimited), a user of its own when it limits locked memory,
/// then its resource limits.
fn run_isolated(
    case: &Case,
    version: KernelVersion,
    left_behind: &LeftBehind,
    after: AfterSteps,
) -> Result<Vec<StepResult>, CaseError> {
    netns::enter_new().map_err(CaseError::Netns)?;
    let bpf = case_bpf::CaseBpf::start(case).map_err(CaseError::Object)?;
    if case.rlimits.memlock.is_some() {
        isolation::enter_own_user()?;
    }
    let _limits = CaseLimits::apply(&case.rlimits, left_behind)?;
    let mut world = World::new(case, &sys::Kernel, bpf, left_behind);
    let results = run::run_all(&mut world, version);
    if let AfterSteps::Shell = after {
        hold::shell(Some(&world), &results);
    }
    // Programs are detached and the cgroup removed before the case's sockets close.
    if let Some(bpf) = world.bpf.take() {
        bpf.finish().map_err(CaseError::Cleanup)?;
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn case(text: &str) -> Case {
        crate::case::parse(Path::new("cases/x.yaml"), text).expect("valid case")
    }

    #[test]
    fn kernels_older_than_sk_storage_skip_every_case_with_one_reason() {
        let case = crate::case::parse(
            Path::new("cases/x.yaml"),
            "name: x\ndescription: d\nmaps:\n  store: { value: u32 }\nsteps:\n  - create_map: store\n    expect: ok\n",
        )
        .expect("valid case");
        let result = run_case(&case, KernelVersion::new(4, 19, 0));
        assert_eq!(
            result.outcome,
            CaseOutcome::Skipped {
                reason: "BPF_MAP_TYPE_SK_STORAGE does not exist before 5.2; this is 4.19".into()
            }
        );
        assert!(result.steps.is_empty());
    }

    #[test]
    fn a_dump_without_inet_diag_skips_the_case_and_other_errnos_do_not() {
        let case = case(
            "name: x\ndescription: d\nsockets:\n  s: { family: inet, listen: true }\nsteps:\n  - diag: { socket: s }\n    expect: { storages: {} }\n",
        );
        let step = |name: &str| {
            let actual = Actual::Errno {
                name: name.into(),
                code: 0,
            };
            StepResult::judged("1", "diag", crate::case::Expected::Ok, actual)
        };
        let diag = case.steps_by_id()["1"];
        let reason = refused_environment(&case, diag, &step("ENOENT")).expect("a skip");
        assert!(reason.contains("CONFIG_INET_DIAG"), "{reason}");
        assert_eq!(refused_environment(&case, diag, &step("EPERM")), None);
    }

    #[test]
    fn a_program_refused_before_verifying_skips_and_a_verifier_rejection_does_not() {
        let case = case(
            "name: x\ndescription: d\nmaps:\n  store: { bpf: no_prealloc }\nsockets:\n  s: { family: inet }\nprograms:\n  p: { type: sock_create, map: store, calls: [ { get: {} } ] }\nsteps:\n  - socket: s\n    expect: ok\n  - attach: p\n    expect: ok\n  - iterate: { map: store }\n    expect: { value: { storages: 0, value_sum: 0 } }\n",
        );
        let rejected = |id: &str, errno: &str, message: &str| {
            let actual = Actual::Rejected {
                errno: errno.into(),
                message: message.into(),
            };
            StepResult::judged(id, "", crate::case::Expected::Ok, actual)
        };
        let by_id = case.steps_by_id();
        let refused = |id: &str, errno: &str, message: &str| {
            refused_environment(&case, by_id[id], &rejected(id, errno, message))
        };
        // The iterator's log on a host that refuses tracing programs holds only statistics,
        // which the message leaves out.
        for id in ["2", "3"] {
            let reason = refused(id, "EPERM", "").expect("a skip");
            assert!(
                reason.contains("before verifying an instruction"),
                "{reason}"
            );
        }
        assert!(refused("3", "EPERM", "").unwrap().contains("map iterator"));
        for (errno, message) in [("EPERM", "R1 invalid mem access"), ("EACCES", "")] {
            assert_eq!(refused("3", errno, message), None);
            assert_eq!(refused("2", errno, message), None);
        }
    }
}
