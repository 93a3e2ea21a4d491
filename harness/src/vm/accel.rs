//! Choosing the accelerator once per run: KVM only if a guest really boots under it.
//!
//! /dev/kvm can exist and still be useless: on nested-virtualisation hosts QEMU aborts on
//! an MSR it cannot set, or the guest hangs. So the probe boots a real guest under KVM
//! with a short timeout and falls back to TCG when it does not answer.
//!
//! The verdict holds until the machine reboots or QEMU changes, so it can be remembered in
//! a file: the probe costs every run a boot (0.6 s where QEMU aborts at once, the whole
//! timeout where a guest hangs).

use std::{fs::OpenOptions, os::unix::fs::MetadataExt, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    VmError,
    outcome::{VmFailure, VmOutcome},
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
/// short boot when /dev/kvm is usable, nothing otherwise, and nothing either when `memo`
/// holds the verdict of a probe made with the same QEMU since the machine booted.
pub fn probe_accel(
    vng: &Vng,
    kernel: &KernelArg,
    registry: &VmRegistry,
    memo: Option<&Path>,
) -> Result<(Accel, String), VmError> {
    if let Err(error) = OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return Ok((
            Accel::Tcg,
            format!(
                "using TCG (software emulation, 1 vCPU per guest): /dev/kvm is not usable ({error})"
            ),
        ));
    }
    let setting = ProbeSetting::current(vng.qemu());
    if let (Some(memo), Some(setting)) = (memo, &setting)
        && let Some(known) = Verdict::read(memo).filter(|v| v.setting == *setting)
    {
        return Ok((
            known.accel,
            format!(
                "{} [remembered; delete {} to probe again]",
                known.why,
                memo.display()
            ),
        ));
    }
    let (accel, why, lasting) = probe(vng, kernel, registry)?;
    if lasting && let (Some(memo), Some(setting)) = (memo, setting) {
        // Failing to remember only costs the next run a probe.
        let _ = Verdict {
            setting,
            accel,
            why: why.clone(),
        }
        .write(memo);
    }
    Ok((accel, why))
}

/// What a probe's verdict depends on: the boot of this machine and the QEMU binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProbeSetting {
    boot_id: String,
    qemu: String,
}

impl ProbeSetting {
    fn current(qemu: &Path) -> Option<Self> {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let meta = qemu.metadata().ok()?;
        Some(Self {
            boot_id: boot_id.trim().to_string(),
            qemu: format!(
                "{} ({} bytes, modified {})",
                qemu.display(),
                meta.size(),
                meta.mtime()
            ),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Verdict {
    setting: ProbeSetting,
    accel: Accel,
    why: String,
}

impl Verdict {
    fn read(path: &Path) -> Option<Self> {
        super::memo::read_json(path)
    }

    fn write(&self, path: &Path) -> std::io::Result<()> {
        super::memo::write_json(path, self)
    }
}

fn probe(
    vng: &Vng,
    kernel: &KernelArg,
    registry: &VmRegistry,
) -> Result<(Accel, String, bool), VmError> {
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

/// The accelerator, the line saying why, and whether the verdict is about KVM on this
/// machine, to be remembered: an answer, QEMU's own complaint or a hang is; a guest that
/// panicked or failed to boot may be the kernel's fault, so the next run probes again.
fn verdict(outcome: &VmOutcome) -> (Accel, String, bool) {
    if outcome.is_success() && outcome.guest_stdout.contains(PROBE_ANSWER) {
        return (
            Accel::Kvm,
            format!(
                "using KVM: a probe guest booted and answered in {:.1}s",
                outcome.duration.as_secs_f64()
            ),
            true,
        );
    }
    let complaint = qemu_complaint(&outcome.console);
    let lasting = complaint.is_some() || matches!(outcome.failure, Some(VmFailure::Timeout { .. }));
    let reason = complaint.unwrap_or_else(|| match &outcome.failure {
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
        lasting,
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
            modules: None,
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
            landmarks: Vec::new(),
            fell_back_to_9p: false,
            retried_after: None,
        }
    }

    #[test]
    fn an_answering_guest_means_kvm() {
        let console = "Linux version 6.1\nvirtme-ng-init: starting script\nreboot: Power down\n";
        let (accel, line, lasting) = verdict(&outcome(
            Ending::Exited(Some(0)),
            console,
            "harness-kvm-probe-ok\n",
        ));
        assert_eq!(accel, Accel::Kvm);
        assert_eq!(line, "using KVM: a probe guest booted and answered in 2.5s");
        assert!(lasting);
    }

    #[test]
    fn a_qemu_abort_means_tcg_and_says_why() {
        // Captured on the development host (nested KVM): QEMU aborts at once, vng exits 255.
        let console = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n\
            qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.\n";
        let (accel, line, lasting) = verdict(&outcome(Ending::Exited(Some(255)), console, ""));
        assert_eq!(accel, Accel::Tcg);
        assert!(line.ends_with("failed to set MSR 0x10a to 0x69"), "{line}");
        assert!(lasting);
    }

    #[test]
    fn a_probe_kernel_that_panics_means_tcg_for_this_run_only() {
        let console =
            "Linux version 6.1\nKernel panic - not syncing: VFS: Unable to mount root fs\n";
        let (accel, line, lasting) = verdict(&outcome(Ending::Exited(Some(255)), console, ""));
        assert_eq!(accel, Accel::Tcg);
        assert!(line.contains("Kernel panic"), "{line}");
        assert!(!lasting, "the kernel, not KVM, may be at fault");
    }

    #[test]
    fn a_verdict_is_remembered_for_its_setting_only() {
        let dir = tempfile::tempdir().unwrap();
        let memo = dir.path().join("cache").join("accel-probe.json");
        let setting = ProbeSetting {
            boot_id: "b1".into(),
            qemu: "/usr/bin/qemu-system-x86_64 (10 bytes, modified 5)".into(),
        };
        Verdict {
            setting: setting.clone(),
            accel: Accel::Tcg,
            why: "using TCG".into(),
        }
        .write(&memo)
        .unwrap();
        let known = Verdict::read(&memo).unwrap();
        assert_eq!(known.setting, setting);
        assert_eq!(known.accel, Accel::Tcg);
        std::fs::write(&memo, "{ torn").unwrap();
        assert!(Verdict::read(&memo).is_none());
    }

    #[test]
    fn the_setting_names_this_boot_and_the_qemu_binary() {
        let exe = std::env::current_exe().unwrap();
        let setting = ProbeSetting::current(&exe).unwrap();
        assert_eq!(setting.boot_id.len(), 36, "{setting:?}");
        assert!(setting.qemu.starts_with(&exe.display().to_string()));
        assert!(ProbeSetting::current(Path::new("/nonexistent/qemu")).is_none());
    }

    #[test]
    fn a_hanging_guest_means_tcg() {
        let (accel, line, lasting) = verdict(&outcome(
            Ending::TimedOut(PROBE_TIMEOUT),
            "Linux version 6.1\n",
            "",
        ));
        assert_eq!(accel, Accel::Tcg);
        assert!(line.contains("timed out after 30s"), "{line}");
        assert!(lasting, "a hang costs every run the whole probe timeout");
    }
}
