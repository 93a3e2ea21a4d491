//! What a VM run came to: [`VmOutcome`], and the pure rules that read it off vng's exit
//! status and the console.

use std::{fmt, path::PathBuf, time::Duration};

use serde::Serialize;

use super::{
    console::{self, ConsoleFinding, Landmark},
    spec::KernelArg,
};

/// Console lines kept in a failure's tail.
const TAIL_LINES: usize = 40;
/// Lines of a kernel report (call trace, registers) kept after its first line.
const REPORT_LINES: usize = 40;
/// vng's status when QEMU ended without the guest handing back an exit code.
pub const VNG_CRASH_STATUS: i32 = 255;

/// Why a VM run gave no trustworthy result. Every variant is about this kernel's boot, not
/// about the case results: the orchestrator shows it as an error row for the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum VmFailure {
    /// The wall-clock limit passed; the VM was killed.
    Timeout {
        after: Duration,
        /// The first marker on the console (a stall explains many hangs).
        finding: Option<ConsoleFinding>,
        tail: String,
    },
    /// vng exited 255: QEMU stopped without the guest returning an exit code.
    GuestCrashed { tail: String },
    /// The console shows a panic, Oops or BUG: the kernel's state cannot be trusted, even if
    /// the command finished.
    KernelError {
        finding: ConsoleFinding,
        excerpt: String,
    },
    /// vng failed before the guest command started (no kernel, a missing tool, a kernel that
    /// stopped during boot).
    BootFailed {
        vng_status: Option<i32>,
        tail: String,
    },
    /// vng could not download a mainline kernel.
    FetchFailed { tag: String, message: String },
}

impl VmFailure {
    /// A short line for a report row; the tail or excerpt carries the detail.
    pub fn summary(&self) -> String {
        match self {
            Self::Timeout { after, finding, .. } => match finding {
                Some(finding) => format!(
                    "timed out after {} ({finding})",
                    humantime::format_duration(*after)
                ),
                None => format!(
                    "timed out after {} with no kernel error on the console",
                    humantime::format_duration(*after)
                ),
            },
            Self::GuestCrashed { .. } => {
                "guest crashed: QEMU ended without the guest's exit code (vng exit 255)".into()
            }
            Self::KernelError { finding, .. } => finding.to_string(),
            Self::BootFailed { vng_status, .. } => match vng_status {
                Some(status) => {
                    format!("boot failed: vng exited {status} before the guest command started")
                }
                None => "boot failed: vng was killed by a signal before the guest command started"
                    .into(),
            },
            Self::FetchFailed { tag, message } => {
                format!("could not fetch mainline kernel {tag}: {message}")
            }
        }
    }

    /// The console lines that explain the failure.
    pub fn detail(&self) -> &str {
        match self {
            Self::Timeout { tail, .. }
            | Self::GuestCrashed { tail }
            | Self::BootFailed { tail, .. } => tail,
            Self::KernelError { excerpt, .. } => excerpt,
            Self::FetchFailed { message, .. } => message,
        }
    }
}

impl fmt::Display for VmFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// The result of one VM run (after the retry, if one was made).
#[derive(Debug, Clone)]
pub struct VmOutcome {
    /// The guest command's exit code, when it ran to the end and the guest powered off.
    pub guest_exit_code: Option<i32>,
    /// Set when the run gave no trustworthy result.
    pub failure: Option<VmFailure>,
    /// Every marker line on the console, spoiling or not (stalls and warnings end up only
    /// here when the run otherwise succeeded).
    pub findings: Vec<ConsoleFinding>,
    /// vng's stderr: its own messages, the guest's serial console and the guest command's
    /// stderr.
    pub console: String,
    /// The guest command's stdout.
    pub guest_stdout: String,
    /// Where the console was also written, if the spec asked.
    pub console_log: Option<PathBuf>,
    /// vng's own exit status (None when it was killed).
    pub vng_status: Option<i32>,
    /// Wall time of this attempt.
    pub duration: Duration,
    /// When each [`Landmark`] first reached the host, from vng's start (its first sighting
    /// only, in the order they came).
    pub landmarks: Vec<(Landmark, Duration)>,
    /// The guest could not mount its root over virtiofs and was booted again over 9p; the
    /// fields above describe the boot over 9p.
    pub fell_back_to_9p: bool,
    /// When the first attempt crashed and the spec asked for a retry: what that attempt
    /// came to. The fields above describe the second attempt.
    pub retried_after: Option<VmFailure>,
}

impl VmOutcome {
    /// The guest command ran, exited 0 and the kernel showed no spoiling marker.
    pub fn is_success(&self) -> bool {
        self.failure.is_none() && self.guest_exit_code == Some(0)
    }

    /// Where this attempt's time went, when the console showed every landmark in order;
    /// `host_setup` is what the caller spent before starting vng.
    pub fn phases(&self, host_setup: Duration) -> Option<Phases> {
        let at = |landmark: Landmark| {
            self.landmarks
                .iter()
                .find(|(seen, _)| *seen == landmark)
                .map(|(_, at)| *at)
        };
        let kernel = at(Landmark::KernelStarted)?;
        let init = at(Landmark::InitStarted)?;
        let command = at(Landmark::CommandStarted)?;
        let powered_off = at(Landmark::PoweredOff)?;
        let ms = |from: Duration, to: Duration| to.checked_sub(from).map(|d| d.as_millis() as u64);
        Some(Phases {
            host_setup_ms: host_setup.as_millis() as u64,
            qemu_start_ms: kernel.as_millis() as u64,
            kernel_to_init_ms: ms(kernel, init)?,
            init_to_command_ms: ms(init, command)?,
            command_ms: ms(command, powered_off)?,
            shutdown_ms: ms(powered_off, self.duration)?,
        })
    }
}

/// Where a VM run's time went, in milliseconds of the host's clock, split at the console's
/// [`Landmark`]s as they reached the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Phases {
    /// The caller's work before starting vng (e.g. writing the guest's plan).
    pub host_setup_ms: u64,
    /// vng's start to the kernel's first line: vng itself, virtiofsd, the initramfs it
    /// builds, QEMU and the firmware loading the kernel.
    pub qemu_start_ms: u64,
    /// The kernel's first line to `Run /init as init process`.
    pub kernel_to_init_ms: u64,
    /// The initramfs and virtme-ng-init (mounts, udev when the root has it) up to the
    /// command.
    pub init_to_command_ms: u64,
    /// The command (for the harness, every case) up to the guest's power-off.
    pub command_ms: u64,
    /// The power-off to vng's exit.
    pub shutdown_ms: u64,
}

impl Phases {
    /// The phases' names, in order.
    pub const NAMES: [&'static str; 6] = [
        "host set-up",
        "QEMU start",
        "kernel to init",
        "init to command",
        "cases",
        "shutdown",
    ];

    /// Each phase with its name, in order.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        let ms = [
            self.host_setup_ms,
            self.qemu_start_ms,
            self.kernel_to_init_ms,
            self.init_to_command_ms,
            self.command_ms,
            self.shutdown_ms,
        ];
        std::array::from_fn(|i| (Self::NAMES[i], ms[i]))
    }
}

/// How the vng process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// vng exited by itself with this status (None: killed by a signal not ours).
    Exited(Option<i32>),
    /// We killed it when the wall-clock limit passed.
    TimedOut(Duration),
    /// We killed it because the guest panicked and did not power off.
    HaltedAfterPanic,
}

/// The verdict on one attempt: what the guest returned and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub guest_exit_code: Option<i32>,
    pub failure: Option<VmFailure>,
    pub findings: Vec<ConsoleFinding>,
}

/// Reads an attempt's ending and console into a verdict.
pub fn judge(kernel: &KernelArg, ending: Ending, console: &str) -> Verdict {
    let findings = console::scan(console);
    let progress = console::boot_progress(console);
    let mainline_tag = match kernel {
        KernelArg::Mainline { tag } => Some(tag.as_str()),
        KernelArg::Image { .. } | KernelArg::Tree { .. } => None,
    };
    let guest_exit_code = match ending {
        Ending::Exited(status) if progress.command_started && progress.powered_off => {
            progress.logged_exit_code.or(status)
        }
        _ => None,
    };
    let failure = match ending {
        // vng downloads a mainline kernel before anything boots: no kernel banner yet means
        // the time went into the download.
        Ending::TimedOut(after) => match mainline_tag {
            Some(tag) if !progress.kernel_started => Some(VmFailure::FetchFailed {
                tag: tag.to_string(),
                message: format!(
                    "no kernel had booted after {}: the Ubuntu mainline archive did not \
                     answer; check the network, or build the kernel locally and list its \
                     vmlinuz instead",
                    humantime::format_duration(after)
                ),
            }),
            _ => Some(VmFailure::Timeout {
                after,
                finding: findings.first().cloned(),
                tail: console::tail(console, TAIL_LINES),
            }),
        },
        // A guest halted by a panic is judged like one that exited without a status: the
        // panic on its console is the failure.
        Ending::Exited(_) | Ending::HaltedAfterPanic => {
            let status = match ending {
                Ending::Exited(status) => status,
                _ => None,
            };
            let spoiled = console::first_spoiling(&findings);
            match (mainline_tag, spoiled) {
                (Some(tag), _) if !progress.kernel_started && status != Some(VNG_CRASH_STATUS) => {
                    Some(VmFailure::FetchFailed {
                        tag: tag.to_string(),
                        message: last_words(console),
                    })
                }
                (_, Some(finding)) => Some(VmFailure::KernelError {
                    finding: finding.clone(),
                    excerpt: console::excerpt(console, finding, REPORT_LINES),
                }),
                _ if guest_exit_code.is_some() => None,
                _ if status == Some(VNG_CRASH_STATUS) => Some(VmFailure::GuestCrashed {
                    tail: console::tail(console, TAIL_LINES),
                }),
                _ => Some(VmFailure::BootFailed {
                    vng_status: status,
                    tail: console::tail(console, TAIL_LINES),
                }),
            }
        }
    };
    Verdict {
        guest_exit_code,
        failure,
        findings,
    }
}

/// Whether an attempt is worth one more boot: vng's crash status without a clean power-off
/// (the 7.3-under-2-vCPU Oops came out this way, as do QEMU aborts and panics, which
/// reboot), or a guest halted by a panic.
pub fn crashed(ending: Ending, verdict: &Verdict) -> bool {
    match ending {
        Ending::Exited(status) => {
            status == Some(VNG_CRASH_STATUS) && verdict.guest_exit_code.is_none()
        }
        Ending::HaltedAfterPanic => true,
        Ending::TimedOut(_) => false,
    }
}

/// vng's last non-empty line: for a failed download, the exception that ended it.
fn last_words(console: &str) -> String {
    console
        .lines()
        .map(|line| line.trim_matches(|c: char| c == '\r' || c.is_whitespace()))
        .rfind(|line| !line.is_empty())
        .unwrap_or("vng exited without saying why")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::console::MarkerKind;

    fn image() -> KernelArg {
        KernelArg::Image {
            vmlinuz: "/k/vmlinuz".into(),
            release: None,
            modules: None,
        }
    }

    fn mainline() -> KernelArg {
        KernelArg::Mainline { tag: "v5.4".into() }
    }

    const BOOTED: &str = "[ 0.0] Linux version 6.1.0\n[ 9.0] virtme-ng-init: starting script\n";

    fn clean(extra: &str) -> String {
        format!("{BOOTED}{extra}[ 9.5] reboot: Power down\n")
    }

    #[test]
    fn a_clean_run_returns_the_guest_exit_code() {
        for code in [0, 1, 255] {
            let verdict = judge(&image(), Ending::Exited(Some(code)), &clean(""));
            assert_eq!(verdict.guest_exit_code, Some(code));
            assert_eq!(verdict.failure, None);
            assert!(!crashed(Ending::Exited(Some(code)), &verdict));
        }
    }

    #[test]
    fn status_255_without_power_off_is_a_crash_worth_a_retry() {
        let ending = Ending::Exited(Some(255));
        let verdict = judge(&image(), ending, BOOTED);
        assert!(matches!(
            verdict.failure,
            Some(VmFailure::GuestCrashed { .. })
        ));
        assert!(crashed(ending, &verdict));
    }

    #[test]
    fn a_guest_halted_by_a_panic_fails_with_the_panic_and_is_retried() {
        let console = format!(
            "{BOOTED}[ 9.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n\
             [ 9.2] CPU: 0 PID: 1 Comm: swapper/0\n"
        );
        let ending = Ending::HaltedAfterPanic;
        let verdict = judge(&image(), ending, &console);
        assert_eq!(verdict.guest_exit_code, None);
        match &verdict.failure {
            Some(VmFailure::KernelError { finding, excerpt }) => {
                assert_eq!(finding.kind, MarkerKind::Panic);
                assert!(excerpt.contains("Comm: swapper/0"), "{excerpt}");
            }
            other => panic!("expected a kernel error, got {other:?}"),
        }
        assert!(crashed(ending, &verdict));
    }

    #[test]
    fn a_command_run_on_the_console_returns_its_logged_code_not_vngs_255() {
        let console = clean("[ 9.4] virtme-ng-init: script exited with code 1\n");
        let ending = Ending::Exited(Some(VNG_CRASH_STATUS));
        let verdict = judge(&image(), ending, &console);
        assert_eq!(verdict.guest_exit_code, Some(1));
        assert_eq!(verdict.failure, None);
        assert!(!crashed(ending, &verdict));
    }

    #[test]
    fn phases_split_the_run_at_its_landmarks() {
        let ms = Duration::from_millis;
        let mut outcome = VmOutcome {
            guest_exit_code: Some(0),
            failure: None,
            findings: Vec::new(),
            console: String::new(),
            guest_stdout: String::new(),
            console_log: None,
            vng_status: Some(0),
            duration: ms(6000),
            landmarks: vec![
                (Landmark::KernelStarted, ms(800)),
                (Landmark::InitStarted, ms(3000)),
                (Landmark::CommandStarted, ms(3600)),
                (Landmark::PoweredOff, ms(5900)),
            ],
            fell_back_to_9p: false,
            retried_after: None,
        };
        let phases = outcome.phases(ms(40)).unwrap();
        assert_eq!(
            phases.named().map(|(_, ms)| ms),
            [40, 800, 2200, 600, 2300, 100]
        );
        outcome.landmarks.truncate(3);
        assert_eq!(outcome.phases(ms(40)), None, "a run that never powered off");
    }

    #[test]
    fn an_oops_spoils_even_a_finished_run() {
        let console =
            clean("[ 9.1] BUG: kernel NULL pointer dereference\n[ 9.2] Oops: 0000 [#1] SMP\n");
        let verdict = judge(&image(), Ending::Exited(Some(0)), &console);
        assert_eq!(verdict.guest_exit_code, Some(0));
        match verdict.failure {
            Some(VmFailure::KernelError { finding, excerpt }) => {
                assert_eq!(finding.kind, MarkerKind::Bug);
                assert!(excerpt.contains("Oops: 0000"));
            }
            other => panic!("expected a kernel error, got {other:?}"),
        }
    }

    #[test]
    fn a_stall_is_recorded_but_does_not_fail_a_finished_run() {
        let console = clean("[ 9.1] rcu: INFO: rcu_sched self-detected stall on CPU\n");
        let verdict = judge(&image(), Ending::Exited(Some(0)), &console);
        assert_eq!(verdict.failure, None);
        assert_eq!(verdict.findings.len(), 1);
    }

    #[test]
    fn a_timeout_names_the_first_marker() {
        let console =
            format!("{BOOTED}[ 40.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:1]\n");
        let verdict = judge(
            &image(),
            Ending::TimedOut(Duration::from_secs(60)),
            &console,
        );
        match verdict.failure {
            Some(VmFailure::Timeout {
                finding: Some(finding),
                tail,
                ..
            }) => {
                assert_eq!(finding.kind, MarkerKind::SoftLockup);
                assert!(tail.ends_with("[sh:1]"));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    /// `timeout = "1500ms"` in kernels.toml is said as given, not cut to whole seconds.
    #[test]
    fn a_timeout_says_how_long_it_was_to_the_millisecond() {
        let verdict = judge(
            &image(),
            Ending::TimedOut(Duration::from_millis(1500)),
            BOOTED,
        );
        assert_eq!(
            verdict.failure.expect("a timeout").summary(),
            "timed out after 1s 500ms with no kernel error on the console"
        );
    }

    #[test]
    fn vng_failing_before_the_command_is_a_boot_failure() {
        let verdict = judge(
            &image(),
            Ending::Exited(Some(1)),
            "Error: kernel image not found\n",
        );
        assert!(matches!(
            verdict.failure,
            Some(VmFailure::BootFailed {
                vng_status: Some(1),
                ..
            })
        ));
        assert_eq!(verdict.guest_exit_code, None);
    }

    #[test]
    fn a_mainline_kernel_that_never_booted_could_not_be_fetched() {
        let console = "Traceback (most recent call last):\n  ...\nrequests.exceptions.ConnectionError: Failed to resolve 'kernel.ubuntu.com'\n";
        let verdict = judge(&mainline(), Ending::Exited(Some(1)), console);
        match verdict.failure {
            Some(VmFailure::FetchFailed { tag, message }) => {
                assert_eq!(tag, "v5.4");
                assert!(message.starts_with("requests.exceptions.ConnectionError"));
            }
            other => panic!("expected a fetch failure, got {other:?}"),
        }
        let verdict = judge(
            &mainline(),
            Ending::TimedOut(Duration::from_secs(30)),
            "📥 downloading kernel\n",
        );
        assert!(matches!(
            verdict.failure,
            Some(VmFailure::FetchFailed { .. })
        ));
        assert!(
            verdict
                .failure
                .unwrap()
                .summary()
                .contains("could not fetch mainline kernel v5.4")
        );
    }

    #[test]
    fn a_mainline_kernel_that_booted_is_judged_like_any_other() {
        let verdict = judge(
            &mainline(),
            Ending::TimedOut(Duration::from_secs(30)),
            BOOTED,
        );
        assert!(matches!(verdict.failure, Some(VmFailure::Timeout { .. })));
    }
}
