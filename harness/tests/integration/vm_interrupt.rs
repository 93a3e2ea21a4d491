//! Ctrl-C during a run stops every VM. The SIGINT handler is process-wide and the test
//! sends SIGINT to itself, so it runs in a child process of the test binary, alone.

use crate::requirements;
use crate::vm_support;

use std::{process::Command, thread, time::Duration};

use harness::vm::{self, VmError, VmRegistry, VmSpec};
use nix::sys::signal::{SigHandler, Signal, raise, signal};
use vm_support::{prerequisites, survivors, wait_for_qemu};

/// Set in the child process that runs the test itself.
const CHILD: &str = "HARNESS_TEST_SIGINT_CHILD";

#[test]
fn ctrl_c_stops_every_running_vm_and_refuses_new_ones() {
    if std::env::var_os(CHILD).is_some() {
        ctrl_c_in_this_process();
        return;
    }
    let name = "vm_interrupt::ctrl_c_stops_every_running_vm_and_refuses_new_ones";
    let child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("runs the test binary");
    let output = String::from_utf8_lossy(&child.stdout) + String::from_utf8_lossy(&child.stderr);
    print!("{output}");
    assert!(child.status.success(), "the child failed: {}", child.status);
    assert!(
        output.contains("1 passed"),
        "the child ran no test: {output}"
    );
}

fn ctrl_c_in_this_process() {
    let (vng, kernel) = match prerequisites() {
        Ok(found) => found,
        Err((requirement, reason)) => {
            requirements::missing(requirement, &reason);
            return;
        }
    };
    // The test sends itself SIGINT, which a shell ignores in its background jobs (and the
    // registry then rightly keeps ignoring): restore the default so the signal arrives.
    // SAFETY: SIG_DFL runs no code in signal context.
    unsafe { signal(Signal::SIGINT, SigHandler::SigDfl) }.unwrap();
    // As under `nohup`: an ignored SIGHUP must stay ignored.
    // SAFETY: SIG_IGN runs no code in signal context.
    unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) }.unwrap();
    let registry = VmRegistry::new();
    registry.cancel_on_ctrl_c().unwrap();
    // SAFETY: reading the disposition back restores it unchanged.
    let hangup = unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) }.unwrap();
    assert!(matches!(hangup, SigHandler::SigIgn));
    let mut spec = VmSpec::new(
        kernel.arg.clone(),
        vm::Accel::Tcg,
        vec!["sleep".into(), "600".into()],
    );
    spec.timeout = Duration::from_secs(300);

    let processes = thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| vm::run(&spec, &vng, &registry)))
            .collect();
        let processes = wait_for_qemu(&registry, 2, Duration::from_secs(60));
        raise(Signal::SIGINT).unwrap();
        for run in runs {
            let result = run.join().unwrap();
            assert!(matches!(result, Err(VmError::Cancelled)), "{result:?}");
        }
        processes
    });

    assert_eq!(survivors(&processes), [], "VM processes outlived Ctrl-C");
    assert!(registry.running_processes().is_empty());
    assert!(matches!(
        vm::run(&spec, &vng, &registry),
        Err(VmError::Cancelled)
    ));
}
