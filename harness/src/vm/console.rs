//! Reading a guest's console: kernel trouble markers (panic, Oops, BUG, lockups, stalls)
//! and the facts about how far the boot got. Pure functions over the captured text.

use std::fmt;

use serde::Serialize;

/// What a console line says went wrong in the guest kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MarkerKind {
    /// `Kernel panic - not syncing: …`
    Panic,
    /// An x86 die() header (`Oops: 0002 [#1] …`, `general protection fault: 0000 [#1]`).
    Oops,
    /// `BUG: …` (NULL dereference, bad page, sleeping in atomic…) or `kernel BUG at …`.
    Bug,
    /// `watchdog: BUG: soft lockup - CPU#0 stuck for 22s!`
    SoftLockup,
    /// `Watchdog detected hard LOCKUP on cpu 0`
    HardLockup,
    /// `rcu: INFO: rcu_sched self-detected stall on CPU` and the other RCU stall reports.
    RcuStall,
    /// `INFO: task foo:123 blocked for more than 120 seconds.`
    HungTask,
    /// `WARNING: CPU: 0 PID: 1 at kernel/…`
    Warning,
}

impl MarkerKind {
    /// Whether the guest kernel's state can no longer be trusted, so results from this boot
    /// are not evidence of the kernel's behaviour. Lockups, stalls and warnings are reported
    /// but do not spoil a run by themselves: under TCG on a busy host a slow guest can trip
    /// the stall detectors and still finish correctly.
    pub fn spoils_run(self) -> bool {
        matches!(self, Self::Panic | Self::Oops | Self::Bug)
    }

    fn label(self) -> &'static str {
        match self {
            Self::Panic => "kernel panic",
            Self::Oops => "kernel Oops",
            Self::Bug => "kernel BUG",
            Self::SoftLockup => "soft lockup",
            Self::HardLockup => "hard lockup",
            Self::RcuStall => "RCU stall",
            Self::HungTask => "hung task",
            Self::Warning => "kernel WARNING",
        }
    }
}

impl fmt::Display for MarkerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One console line that carries a trouble marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleFinding {
    pub kind: MarkerKind,
    /// 1-based line number in the captured console.
    pub line_number: usize,
    /// The line itself, without the trailing carriage return.
    pub line: String,
}

impl fmt::Display for ConsoleFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (console line {}: {})",
            self.kind,
            self.line_number,
            self.line.trim()
        )
    }
}

/// The first line the kernel prints; its absence means no kernel ever ran (vng failed before
/// QEMU started, or the mainline download failed).
pub const KERNEL_BANNER: &str = "Linux version ";
/// Printed by vng's init (with `--verbose`) just before it runs the `--exec` command: by
/// virtme-ng-init, or by the shell script virtme-init, which another architecture's guest
/// runs (`virtme-init: starting script`).
pub const COMMAND_STARTED: &str = "init: starting script";
/// Printed by virtme-ng-init with the command's exit code when it ran the command on the
/// console, which it does when the guest has no `/dev/virtio-ports/` links (no udev in a
/// [`MinimalRoot`](super::root::MinimalRoot)); vng then cannot read the code and exits 255.
pub const COMMAND_EXIT_CODE: &str = "virtme-ng-init: script exited with code ";
/// virtme-init's line of the same, the code in braces: `virtme-init: script returned {3}`.
pub const COMMAND_RETURNED: &str = "virtme-init: script returned {";
/// Printed by the kernel when the guest powered off cleanly after the command returned.
pub const CLEAN_POWER_OFF: &str = "reboot: Power down";

/// Printed by the kernel when it found no root filesystem to mount. Under vng that means the
/// guest could not mount the shared root: a kernel without virtiofs (5.2), or one that
/// cannot mount a virtiofs tag as its root without an initramfs (5.4–5.9, as vng passes it).
pub const ROOT_NOT_MOUNTED: &str = "VFS: Unable to mount root fs";

/// Console lines that mark the end of one phase of a VM run and the start of the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Landmark {
    /// The kernel's first line ([`KERNEL_BANNER`]): QEMU has started and loaded it.
    KernelStarted,
    /// `Run /init as init process` (the kernel hands over to vng's initramfs, or with
    /// none to vng's init line).
    InitStarted,
    /// [`COMMAND_STARTED`]: vng's init runs the command.
    CommandStarted,
    /// [`CLEAN_POWER_OFF`]: the command returned and the guest powers off.
    PoweredOff,
}

impl Landmark {
    /// The landmark `line` marks, if any.
    pub fn of(line: &str) -> Option<Landmark> {
        if line.contains(KERNEL_BANNER) {
            Some(Self::KernelStarted)
        } else if line.contains("Run /") && line.contains(" as init process") {
            Some(Self::InitStarted)
        } else if line.contains(COMMAND_STARTED) {
            Some(Self::CommandStarted)
        } else if line.contains(CLEAN_POWER_OFF) {
            Some(Self::PoweredOff)
        } else {
            None
        }
    }
}

/// How far a boot got, read from its console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootProgress {
    pub kernel_started: bool,
    pub command_started: bool,
    pub powered_off: bool,
    pub root_not_mounted: bool,
    /// The command's exit code as vng's init logged it ([`COMMAND_EXIT_CODE`],
    /// [`COMMAND_RETURNED`]).
    pub logged_exit_code: Option<i32>,
}

pub fn boot_progress(console: &str) -> BootProgress {
    BootProgress {
        kernel_started: console.contains(KERNEL_BANNER),
        command_started: console.contains(COMMAND_STARTED),
        powered_off: console.contains(CLEAN_POWER_OFF),
        root_not_mounted: !console.contains(COMMAND_STARTED) && console.contains(ROOT_NOT_MOUNTED),
        logged_exit_code: console.lines().find_map(|line| {
            if let Some((_, code)) = line.split_once(COMMAND_EXIT_CODE) {
                return code.trim().parse().ok();
            }
            let (_, code) = line.split_once(COMMAND_RETURNED)?;
            code.split_once('}')?.0.parse().ok()
        }),
    }
}

/// Every marker line in `console`, in order.
pub fn scan(console: &str) -> Vec<ConsoleFinding> {
    console
        .lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let line = line.trim_end_matches('\r');
            classify_line(line).map(|kind| ConsoleFinding {
                kind,
                line_number: index + 1,
                line: line.to_string(),
            })
        })
        .collect()
}

/// The first finding that spoils the run: the earliest is usually the cause (a `BUG:` line
/// comes before the `Oops` header, which comes before `Kernel panic - … Fatal exception`).
pub fn first_spoiling(findings: &[ConsoleFinding]) -> Option<&ConsoleFinding> {
    findings.iter().find(|finding| finding.kind.spoils_run())
}

fn classify_line(line: &str) -> Option<MarkerKind> {
    // Order matters: a soft lockup line also contains "BUG:", and a panic caused by an Oops
    // repeats the die counter.
    if line.contains("Kernel panic - not syncing") {
        Some(MarkerKind::Panic)
    } else if line.contains("BUG: soft lockup") {
        Some(MarkerKind::SoftLockup)
    } else if line.contains("hard LOCKUP") {
        Some(MarkerKind::HardLockup)
    } else if line.contains("INFO: rcu_") && line.contains("stall") {
        Some(MarkerKind::RcuStall)
    } else if line.contains("INFO: task ") && line.contains("blocked for more than") {
        Some(MarkerKind::HungTask)
    } else if line.contains("Oops:") || has_die_counter(line) {
        Some(MarkerKind::Oops)
    } else if line.contains("BUG: ") || line.contains("kernel BUG at ") {
        Some(MarkerKind::Bug)
    } else if line.contains("WARNING: CPU: ") {
        Some(MarkerKind::Warning)
    } else {
        None
    }
}

/// x86 die() headers end their first line with the die counter, `[#1]`, whatever the trap
/// (`general protection fault: 0000 [#1] SMP`, `int3: 0000 [#1] PREEMPT SMP NOPTI`).
fn has_die_counter(line: &str) -> bool {
    line.match_indices("[#").any(|(at, _)| {
        let rest = &line[at + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with(']')
    })
}

/// The last `count` lines of `console`, carriage returns removed.
pub fn tail(console: &str, count: usize) -> String {
    let lines: Vec<&str> = console.lines().collect();
    let start = lines.len().saturating_sub(count);
    join_clean(&lines[start..])
}

/// Lines around a finding: a few before it for context, then up to `after` lines of the
/// report (call trace, registers) that follows it.
pub fn excerpt(console: &str, finding: &ConsoleFinding, after: usize) -> String {
    const BEFORE: usize = 3;
    let lines: Vec<&str> = console.lines().collect();
    let index = finding.line_number.saturating_sub(1).min(lines.len());
    let start = index.saturating_sub(BEFORE);
    let end = (index + after + 1).min(lines.len());
    join_clean(&lines[start..end])
}

fn join_clean(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| line.trim_end_matches('\r'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(findings: &[ConsoleFinding]) -> Vec<MarkerKind> {
        findings.iter().map(|finding| finding.kind).collect()
    }

    #[test]
    fn each_marker_family_is_recognised() {
        let cases = [
            (
                "[   23.488873] Kernel panic - not syncing: sysrq triggered crash",
                MarkerKind::Panic,
            ),
            (
                "[   12.1] BUG: kernel NULL pointer dereference, address: 0000000000000000",
                MarkerKind::Bug,
            ),
            (
                "[   12.2] Oops: 0002 [#1] PREEMPT SMP NOPTI",
                MarkerKind::Oops,
            ),
            (
                "[    3.3] general protection fault: 0000 [#1] SMP PTI",
                MarkerKind::Oops,
            ),
            (
                "[    4.4] int3: 0000 [#1] PREEMPT SMP NOPTI",
                MarkerKind::Oops,
            ),
            ("[    5.5] kernel BUG at mm/slub.c:4321!", MarkerKind::Bug),
            (
                "[   48.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:201]",
                MarkerKind::SoftLockup,
            ),
            (
                "[   60.0] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
                MarkerKind::HardLockup,
            ),
            (
                "[   70.0] rcu: INFO: rcu_sched self-detected stall on CPU",
                MarkerKind::RcuStall,
            ),
            (
                "[   70.1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
                MarkerKind::RcuStall,
            ),
            (
                "[ 3556.5] INFO: rcu_sched_state detected stall on CPU 0 (t=105060 jiffies)",
                MarkerKind::RcuStall,
            ),
            (
                "[  245.0] INFO: task sync:214 blocked for more than 120 seconds.",
                MarkerKind::HungTask,
            ),
            (
                "[    9.0] WARNING: CPU: 0 PID: 1 at kernel/bpf/syscall.c:100 f+0x1/0x2",
                MarkerKind::Warning,
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(classify_line(line), Some(expected), "{line}");
        }
    }

    #[test]
    fn ordinary_boot_lines_are_not_markers() {
        for line in [
            "[    0.000000] Command line: console=ttyS0 panic=-1 virtme.exec=`dHJ1ZQ==`",
            "[    0.667920] NMI watchdog: Perf NMI watchdog permanently disabled",
            "[    0.1] rcu: \tRCU restricting CPUs from NR_CPUS=8192 to nr_cpu_ids=1.",
            "[    0.2] Spectre V2 : Mitigation: Retpolines",
            "[    1.0] hung_task: 120 seconds",
            "[    2.0] Run /init as init process [#notacounter]",
            "[    2.1] x86/fpu: xstate_offset[2]:  576, xstate_sizes[2]:  256",
        ] {
            assert_eq!(classify_line(line), None, "{line}");
        }
    }

    #[test]
    fn the_cause_comes_before_the_panic_it_leads_to() {
        let console = "boot\r\n\
            [ 1.0] BUG: kernel NULL pointer dereference, address: 0000000000000008\r\n\
            [ 1.1] Oops: 0000 [#1] PREEMPT SMP NOPTI\r\n\
            [ 1.2] Kernel panic - not syncing: Fatal exception\r\n";
        let findings = scan(console);
        assert_eq!(
            kinds(&findings),
            [MarkerKind::Bug, MarkerKind::Oops, MarkerKind::Panic]
        );
        let cause = first_spoiling(&findings).expect("a spoiling finding");
        assert_eq!(cause.line_number, 2);
        assert!(!cause.line.ends_with('\r'));
    }

    #[test]
    fn stalls_alone_do_not_spoil_a_run() {
        let findings = scan("[ 70.0] rcu: INFO: rcu_sched self-detected stall on CPU\n");
        assert_eq!(kinds(&findings), [MarkerKind::RcuStall]);
        assert_eq!(first_spoiling(&findings), None);
    }

    #[test]
    fn tail_and_excerpt_cut_where_asked() {
        let console = "a\r\nb\r\nc\r\nd\r\ne\r\nf\r\n";
        assert_eq!(tail(console, 2), "e\nf");
        assert_eq!(tail(console, 10), "a\nb\nc\nd\ne\nf");
        let finding = ConsoleFinding {
            kind: MarkerKind::Bug,
            line_number: 5,
            line: "e".into(),
        };
        assert_eq!(excerpt(console, &finding, 1), "b\nc\nd\ne\nf");
    }

    /// Console captures kept in `harness/tests/data/console/` (see its README).
    macro_rules! capture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/console/",
                $name
            ))
        };
    }

    #[test]
    fn a_clean_debian_boot_has_no_markers() {
        let console = capture!("debian-6.1-clean-boot.log");
        assert_eq!(scan(console), []);
        assert_eq!(
            boot_progress(console),
            BootProgress {
                kernel_started: true,
                command_started: true,
                powered_off: true,
                root_not_mounted: false,
                logged_exit_code: None,
            }
        );
    }

    #[test]
    fn a_sysrq_crash_is_a_panic_after_the_command_started() {
        let console = capture!("debian-6.1-sysrq-panic.log");
        let findings = scan(console);
        assert_eq!(kinds(&findings), [MarkerKind::Panic]);
        assert!(
            findings[0]
                .line
                .ends_with("Kernel panic - not syncing: sysrq triggered crash")
        );
        let progress = boot_progress(console);
        assert!(progress.command_started && !progress.powered_off);
        let excerpt = excerpt(console, &findings[0], 40);
        assert!(excerpt.contains("sysrq_handle_crash"), "{excerpt}");
    }

    #[test]
    fn a_guest_without_a_virtiofs_root_says_so() {
        // 5.4.286 booted by vng 1.42 with `root=ROOTFS rootfstype=virtiofs`.
        let console = capture!("linux-5.4-virtiofs-root-panic.log");
        assert_eq!(kinds(&scan(console)), [MarkerKind::Panic]);
        let progress = boot_progress(console);
        assert!(
            progress.kernel_started && progress.root_not_mounted,
            "{progress:?}"
        );
        assert!(!progress.command_started);
        assert!(!boot_progress(capture!("debian-6.1-sysrq-panic.log")).root_not_mounted);
    }

    #[test]
    fn a_qemu_abort_never_started_a_kernel() {
        let console = capture!("kvm-msr-abort.log");
        assert_eq!(scan(console), []);
        assert_eq!(boot_progress(console), BootProgress::default());
    }

    #[test]
    fn hand_written_reports_give_their_marker_first() {
        let cases = [
            (
                capture!("oops-null-deref.log"),
                MarkerKind::Bug,
                Some(MarkerKind::Bug),
            ),
            (capture!("soft-lockup.log"), MarkerKind::SoftLockup, None),
            (capture!("rcu-stall.log"), MarkerKind::RcuStall, None),
            (capture!("hung-task.log"), MarkerKind::HungTask, None),
            (capture!("warning.log"), MarkerKind::Warning, None),
        ];
        for (console, first, spoiling) in cases {
            let findings = scan(console);
            assert_eq!(findings.first().map(|f| f.kind), Some(first), "{console}");
            assert_eq!(
                first_spoiling(&findings).map(|f| f.kind),
                spoiling,
                "{console}"
            );
        }
        let oops = scan(capture!("oops-null-deref.log"));
        assert_eq!(kinds(&oops), [MarkerKind::Bug, MarkerKind::Oops]);
    }

    #[test]
    fn boot_progress_reads_the_landmarks() {
        let console = "[ 0.0] Linux version 6.1.0\n[ 9.0] virtme-ng-init: starting script\n";
        assert_eq!(
            boot_progress(console),
            BootProgress {
                kernel_started: true,
                command_started: true,
                powered_off: false,
                root_not_mounted: false,
                logged_exit_code: None,
            }
        );
    }

    #[test]
    fn landmarks_are_read_from_the_lines_that_end_each_phase() {
        let lines = [
            (
                "[    0.000000] Linux version 6.1.0-50-cloud-amd64 (debian-kernel@…",
                Some(Landmark::KernelStarted),
            ),
            (
                "[    2.227537] Run /init as init process",
                Some(Landmark::InitStarted),
            ),
            (
                "[    1.9] Run /bin/sh as init process",
                Some(Landmark::InitStarted),
            ),
            (
                "[    5.548995] virtme-ng-init: starting script (console fallback)",
                Some(Landmark::CommandStarted),
            ),
            (
                "[    5.600961] reboot: Power down",
                Some(Landmark::PoweredOff),
            ),
            ("[    5.5] virtme-ng-init: basic initialization done", None),
        ];
        for (line, landmark) in lines {
            assert_eq!(Landmark::of(line), landmark, "{line}");
        }
    }

    #[test]
    fn the_exit_code_of_a_command_run_on_the_console_is_read_from_its_log_line() {
        // virtme-ng-init 1.42 without udev, on 6.1.176.
        let console = "[ 5.54] virtme-ng-init: starting script (console fallback)\n\
            hello\n\
            [ 5.59] virtme-ng-init: script exited with code 3\r\n\
            [ 5.60] reboot: Power down\n";
        let progress = boot_progress(console);
        assert!(progress.command_started && progress.powered_off);
        assert_eq!(progress.logged_exit_code, Some(3));
    }

    #[test]
    fn virtme_init_of_an_arm64_guest_logs_the_same_in_its_own_words() {
        // virtme-init of vng 1.42 in an arm64 6.1.176 guest on a minimal root.
        let console = "[ 2.80] virtme-init: virtme-init: cannot find script I/O ports; make sure virtio-serial is available\n\
            [ 2.82] virtme-init: starting script (console fallback)\n\
            aarch64\n\
            [ 2.96] virtme-init: script returned {2}\n\
            [ 2.99] reboot: Power down\n";
        let progress = boot_progress(console);
        assert!(progress.command_started && progress.powered_off);
        assert_eq!(progress.logged_exit_code, Some(2));
        assert_eq!(
            Landmark::of("[ 2.82] virtme-init: starting script (console fallback)"),
            Some(Landmark::CommandStarted)
        );
    }
}
