//! One hand-built run over every report format: kernels 5.10 and 6.12 ran, 7.3 failed to
//! boot; cases pass, diverge, skip, fail to run, and change behaviour between versions.
//! Durations are fixed, so the snapshots are stable. Shared by the report tests.

use harness::{
    case::Expected,
    results::{
        Actual, CaseOutcome, CaseResult, HarnessBuild, KernelRun, KernelStatus, RunResults,
        StepResult, Timestamp,
    },
    version::KernelVersion,
};
use serde_json::json;

pub fn step(id: &str, label: &str, expected: Expected, actual: Actual) -> StepResult {
    StepResult {
        // Where the fixture's case files would have step N.
        line: id.parse::<usize>().ok().map(|n| 9 + 2 * n),
        ..StepResult::judged(id, label, expected, actual)
    }
}

pub fn because(mut step: StepResult, reason: &str) -> StepResult {
    step.reason = Some(reason.into());
    step
}

pub fn case(name: &str, outcome: CaseOutcome, steps: Vec<StepResult>) -> CaseResult {
    CaseResult {
        name: name.into(),
        file: format!("cases/{name}.yaml"),
        outcome,
        duration_ms: 40,
        steps,
    }
}

pub fn errno(name: &str) -> Expected {
    Expected::Errno(name.into())
}

pub fn value(v: serde_json::Value) -> Actual {
    Actual::Value { value: v }
}

pub fn create() -> StepResult {
    step("1", "create store (u32)", Expected::Ok, Actual::Ok)
}

pub fn linux_5_10() -> KernelRun {
    KernelRun {
        kernel: "5.10".into(),
        release: Some("5.10.0-36-cloud-amd64".into()),
        arch: None,
        version: Some(KernelVersion::new(5, 10, 244)),
        status: KernelStatus::Ran,
        duration_ms: 61_250,
        cmdline: Some("console=ttyS0 lsm=lockdown,capability,bpf".into()),
        harness: None,
        accel: None,
        phases: None,
        note: None,
        cases: vec![
            case("create-defaults", CaseOutcome::Pass, vec![create()]),
            case(
                "update-noexist",
                CaseOutcome::Pass,
                vec![
                    step(
                        "1",
                        "update store[s] = 7 (NOEXIST)",
                        Expected::Ok,
                        Actual::Ok,
                    ),
                    step(
                        "2",
                        "update store[s] = 8 (NOEXIST)",
                        errno("EEXIST"),
                        Actual::errno(libc::EEXIST),
                    ),
                    step(
                        "3",
                        "lookup store[s]",
                        Expected::Value(json!(7)),
                        value(json!(7)),
                    ),
                ],
            ),
            case(
                "f-lock-without-spin-lock",
                CaseOutcome::Diverged,
                vec![
                    create(),
                    because(
                        step(
                            "2",
                            "update store[s] = 7 (F_LOCK)",
                            errno("EINVAL"),
                            Actual::Ok,
                        ),
                        "F_LOCK needs a bpf_spin_lock in the value (map_sk_storage.rst)",
                    ),
                ],
            ),
            case(
                "create-value-size-limits",
                CaseOutcome::Pass,
                vec![because(
                    step(
                        "1",
                        "create store (65536-byte value)",
                        errno("E2BIG"),
                        Actual::errno(libc::E2BIG),
                    ),
                    "values larger than 64 KiB - 1 were refused before 6.x",
                )],
            ),
            case(
                "iteration-not-supported",
                CaseOutcome::Skipped {
                    reason: "needs kernel 5.11 or later, this is 5.10.244".into(),
                },
                vec![],
            ),
            case(
                "storage-charged-to-optmem",
                CaseOutcome::Pass,
                vec![
                    create(),
                    step(
                        "2",
                        "read optmem_max",
                        Expected::Value(json!("any")),
                        value(json!(20480)),
                    ),
                ],
            ),
        ],
    }
}

pub fn linux_6_12() -> KernelRun {
    KernelRun {
        kernel: "6.12".into(),
        release: Some("6.12.57+deb13-cloud-amd64".into()),
        arch: None,
        version: Some(KernelVersion::new(6, 12, 57)),
        status: KernelStatus::Ran,
        duration_ms: 58_900,
        cmdline: Some("console=ttyS0".into()),
        harness: None,
        accel: None,
        phases: None,
        note: None,
        cases: vec![
            case("create-defaults", CaseOutcome::Pass, vec![create()]),
            case(
                "update-noexist",
                CaseOutcome::Diverged,
                vec![
                    step("1", "update store[s] = 7 (NOEXIST)", Expected::Ok, Actual::Ok),
                    step(
                        "2",
                        "update store[s] = 8 (NOEXIST)",
                        errno("EEXIST"),
                        Actual::errno(libc::EINVAL),
                    ),
                    step(
                        "3",
                        "lookup store[s]",
                        Expected::Value(json!(7)),
                        value(json!(7)),
                    ),
                ],
            ),
            case(
                "f-lock-without-spin-lock",
                CaseOutcome::Pass,
                vec![
                    create(),
                    step(
                        "2",
                        "update store[s] = 7 (F_LOCK)",
                        errno("EINVAL"),
                        Actual::errno(libc::EINVAL),
                    ),
                ],
            ),
            case(
                "create-value-size-limits",
                CaseOutcome::Pass,
                vec![because(
                    step(
                        "1",
                        "create store (65536-byte value)",
                        Expected::Ok,
                        Actual::Ok,
                    ),
                    "6.x accepts values up to KMALLOC_MAX_SIZE",
                )],
            ),
            case(
                "iteration-not-supported",
                CaseOutcome::Pass,
                vec![step(
                    "1",
                    "next key of store",
                    errno("ENOTSUPP"),
                    Actual::errno(524),
                )],
            ),
            case(
                "storage-charged-to-optmem",
                CaseOutcome::Error {
                    message: "cannot read /proc/sys/net/core/optmem_max: No such file or directory (os error 2)".into(),
                },
                vec![
                    create(),
                    step(
                        "2",
                        "read optmem_max",
                        Expected::Value(json!("any")),
                        Actual::NotRun {
                            reason: "optmem_max is unreadable".into(),
                        },
                    ),
                ],
            ),
            // Only in this kernel's run, as when merging runs of different case sets.
            case("socket-families", CaseOutcome::Pass, vec![create()]),
        ],
    }
}

pub fn linux_7_3() -> KernelRun {
    KernelRun {
        kernel: "7.3".into(),
        release: None,
        arch: None,
        version: None,
        status: KernelStatus::Error {
            message: "kernel panic while booting (console line 412)".into(),
            log_tail: Some(
                "[    2.104411] VFS: Cannot open root device \"vda\"\n\
                 [    2.104930] \x1b[1;31mKernel panic - not syncing: VFS: Unable to mount root fs\x1b[0m\n\
                 [    2.105502] CPU: 0 PID: 1 Comm: swapper/0 <not tainted> 7.3.0-1-cloud-amd64 #1 & more\n"
                    .into(),
            ),
        },
        duration_ms: 12_000,
        cmdline: None,
        harness: None,
        accel: None,
        phases: None,
        note: None,
        cases: vec![],
    }
}

pub fn at(time: &str) -> Timestamp {
    Timestamp(humantime::parse_rfc3339(time).expect("an RFC 3339 time"))
}

pub fn build(commit: &str) -> HarnessBuild {
    HarnessBuild {
        version: "0.1.0".into(),
        commit: commit.into(),
    }
}

/// Results of `kernels` with the fixture's fixed times and build, so snapshots are stable.
pub fn results(kernels: Vec<KernelRun>) -> RunResults {
    RunResults {
        started: at("2026-05-04T12:00:00Z"),
        ended: at("2026-05-04T12:02:14Z"),
        harness: build("0123456789abcdef0123456789abcdef01234567"),
        accel: Some(harness::vm::Accel::Kvm),
        ..RunResults::new(kernels)
    }
}

pub fn fixture() -> RunResults {
    results(vec![linux_5_10(), linux_6_12(), linux_7_3()])
}
