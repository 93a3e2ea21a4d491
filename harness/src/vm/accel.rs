//! Choosing the accelerator once per run: KVM only if a guest really boots under it.
//!
//! /dev/kvm can exist and still be useless: on nested-virtualisation hosts QEMU aborts on
//! an MSR it cannot set, or the guest hangs. So the probe boots a real guest under KVM
//! with a short timeout and falls back to TCG when it does not answer.

use std::{fs::OpenOptions, time::Duration};

use super::{
    VmError,
    outcome::VmOutcome,
    process::{VmRegistry, run},
    spec::{Accel, KernelArg, VmSpec},
    tools::Vng,
};

/// A KVM guest boots in a few seconds; one that has not answered by then never will.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_ANSWER: &str = "harness-kvm-probe-ok";

/// The accelerator to use for every VM of this run, and one line saying why.
///
/// `kernel` should be a kernel the run boots anyway (the first of the matrix). Costs one
/// short boot when /dev/kvm is usable, nothing otherwise.
pub fn probe_accel(
    vng: &Vng,
    kernel: &KernelArg,
    registry: &VmRegistry,
) -> Result<(Accel, String), VmError> {
    if let Err(error) = OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return Ok((
            Accel::Tcg,
            format!(
                "using TCG (software emulation, 1 vCPU per guest): /dev/kvm is not usable ({error})"
            ),
        ));
    }
    let mut spec = VmSpec::new(
        kernel.clone(),
        Accel::Kvm,
        vec!["echo".into(), PROBE_ANSWER.into()],
    );
    spec.cpus = 1;
    spec.timeout = PROBE_TIMEOUT;
    let outcome = run(&spec, vng, registry)?;
    Ok(verdict(&outcome))
}

fn verdict(outcome: &VmOutcome) -> (Accel, String) {
    if outcome.is_success() && outcome.guest_stdout.contains(PROBE_ANSWER) {
        return (
            Accel::Kvm,
            format!(
                "using KVM: a probe guest booted and answered in {:.1}s",
                outcome.duration.as_secs_f64()
            ),
        );
    }
    let reason = qemu_complaint(&outcome.console).unwrap_or_else(|| match &outcome.failure {
        Some(failure) => failure.summary(),
        None => format!(
            "the probe guest exited {:?} without answering",
            outcome.guest_exit_code
        ),
    });
    (
        Accel::Tcg,
        format!(
            "using TCG (software emulation, 1 vCPU per guest): KVM is present but a probe guest failed under it: {reason}"
        ),
    )
}

/// QEMU's own error line (`qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69`),
/// the most telling reason when KVM is broken.
fn qemu_complaint(console: &str) -> Option<String> {
    console
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .find(|line| line.starts_with("qemu-system-"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::vm::outcome::{Ending, judge};

    fn outcome(ending: Ending, console: &str, stdout: &str) -> VmOutcome {
        let kernel = KernelArg::Image {
            vmlinuz: "/k".into(),
            release: None,
        };
        let verdict = judge(&kernel, ending, console);
        VmOutcome {
            guest_exit_code: verdict.guest_exit_code,
            failure: verdict.failure,
            findings: verdict.findings,
            console: console.into(),
            guest_stdout: stdout.into(),
            console_log: None,
            vng_status: None,
            duration: Duration::from_millis(2500),
            retried_after: None,
        }
    }

    #[test]
    fn an_answering_guest_means_kvm() {
        let console = "Linux version 6.1\nvirtme-ng-init: starting script\nreboot: Power down\n";
        let (accel, line) = verdict(&outcome(
            Ending::Exited(Some(0)),
            console,
            "harness-kvm-probe-ok\n",
        ));
        assert_eq!(accel, Accel::Kvm);
        assert_eq!(line, "using KVM: a probe guest booted and answered in 2.5s");
    }

    #[test]
    fn a_qemu_abort_means_tcg_and_says_why() {
        // Captured on the development host (nested KVM): QEMU aborts at once, vng exits 255.
        let console = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n\
            qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.\n";
        let (accel, line) = verdict(&outcome(Ending::Exited(Some(255)), console, ""));
        assert_eq!(accel, Accel::Tcg);
        assert!(line.ends_with("failed to set MSR 0x10a to 0x69"), "{line}");
    }

    #[test]
    fn a_hanging_guest_means_tcg() {
        let (accel, line) = verdict(&outcome(
            Ending::TimedOut(PROBE_TIMEOUT),
            "Linux version 6.1\n",
            "",
        ));
        assert_eq!(accel, Accel::Tcg);
        assert!(line.contains("timed out after 30s"), "{line}");
    }
}
