//! The one result model: what ran where, and what every step expected and got.
//!
//! The in-guest executor writes it as JSON, the host reads it back, and every report is a
//! view of it. Its wire format is documented in the book (docs/src/results.md); bump
//! [`SCHEMA_VERSION`] on an incompatible change.

mod file;
mod merge;
pub mod pinned;

pub use self::{
    file::{
        JsonLayout, MAX_RESULTS_BYTES, RESULTS_JSON, ReadError, parse_json, read_json, to_json,
    },
    merge::{MergeError, build_differences, merge, merge_dir},
};

use std::{fmt, sync::Arc, time::SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    case::{Expected, ExpectedCall, ExpectedDelete, ExpectedGet, ExpectedWrite, types::Brief},
    version::KernelVersion,
    vm::{Accel, Arch, Phases},
};

pub const SCHEMA_VERSION: u32 = 3;

/// Results of one run over one or more kernels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    pub schema: u32,
    /// When the run began and ended; a merge keeps the earliest start and the latest end.
    pub started: Timestamp,
    pub ended: Timestamp,
    /// The harness that ran the cases (for a merge, the first input's; a kernel run by
    /// another build names its own).
    pub harness: HarnessBuild,
    /// What the run's VMs ran under; absent when none booted (a host run, skips only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<Accel>,
    pub kernels: Vec<KernelRun>,
}

/// A moment, written as RFC 3339 in UTC to the second (`2026-05-04T12:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    pub fn now() -> Self {
        Self(SystemTime::now())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_seconds(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339_weak(&text)
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time: {e}")))
    }
}

/// Which harness build produced results: its version and the git commit it was built
/// from (`unknown` outside a git checkout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarnessBuild {
    pub version: String,
    pub commit: String,
}

impl HarnessBuild {
    /// This binary's build (the commit comes from build.rs).
    pub fn this() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").into(),
            commit: env!("HARNESS_GIT_COMMIT").into(),
        }
    }
}

impl fmt::Display for HarnessBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let commit = self.commit.get(..12).unwrap_or(&self.commit);
        write!(f, "{} ({commit})", self.version)
    }
}

/// Everything that happened on one kernel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelRun {
    /// The kernel's name in kernels.toml, or `host`.
    pub kernel: String,
    /// `uname -r` as the kernel itself reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The machine the kernel ran on, `uname -m` as the kernel itself reported it
    /// (`x86_64`, `aarch64`); for a kernel that did not run, the machine of the
    /// architecture its kernels.toml entry gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The version expectations were chosen by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<KernelVersion>,
    pub status: KernelStatus,
    pub duration_ms: u64,
    /// The command line the kernel booted with (`/proc/cmdline`), when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// Set by a merge when another harness build than the results' own ran this kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness: Option<HarnessBuild>,
    /// Set by a merge when this kernel's VM ran under another accelerator than the
    /// results' own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<Accel>,
    /// Where the VM run's time went, when its console showed every phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<Phases>,
    /// kernels.toml's note on the kernel, which the reports show beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub cases: Vec<CaseResult>,
}

/// Whether the kernel ran the cases at all; `Error` is an infrastructure failure (boot,
/// panic, timeout), never a divergence; `Skipped` is a kernel this machine does not have
/// (an optional local image), which changes no exit code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum KernelStatus {
    Ran,
    Skipped {
        reason: String,
    },
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_tail: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub name: String,
    pub file: String,
    pub outcome: CaseOutcome,
    pub duration_ms: u64,
    pub steps: Vec<StepResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CaseOutcome {
    Pass,
    /// At least one step's actual outcome is not the expectation in force.
    Diverged,
    Skipped {
        reason: String,
    },
    /// The harness could not run the case (a fault of ours or of the environment).
    Error {
        message: String,
    },
}

impl CaseOutcome {
    /// The outcome of a case whose steps all ran: diverged when one of them did.
    pub fn of_steps(steps: &[StepResult]) -> Self {
        if steps.iter().any(|s| s.verdict == Verdict::Diverged) {
            Self::Diverged
        } else {
            Self::Pass
        }
    }
}

impl CaseOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Diverged => "DIVERGED",
            Self::Skipped { .. } => "skip",
            Self::Error { .. } => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub id: String,
    pub label: String,
    /// The step's line in the case file ([`CaseResult::file`]), when it was located.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The expectation in force on this kernel.
    pub expected: Expected,
    /// Why this kernel expects that, when the case gives versioned variants; the case's
    /// copy, which the steps of a repeat share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Arc<str>>,
    /// Where the variant in force begins, when it has a lower bound: the version at which
    /// the case places a change it expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<KernelVersion>,
    pub actual: Actual,
    pub verdict: Verdict,
}

impl StepResult {
    /// What a step did, judged against the expectation in force: it passes when `actual`
    /// satisfies `expected`. Where it stands in its case (line, the variant's reason and
    /// bound) is the caller's to add.
    pub fn judged(
        id: impl Into<String>,
        label: impl Into<String>,
        expected: Expected,
        actual: Actual,
    ) -> Self {
        let verdict = if actual.satisfies(&expected) {
            Verdict::Pass
        } else {
            Verdict::Diverged
        };
        Self {
            id: id.into(),
            label: label.into(),
            line: None,
            expected,
            reason: None,
            since: None,
            actual,
            verdict,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Diverged,
}

/// What a step really did. Recorded whatever the expectation says, so reports can show
/// where behaviour changed between kernels.
/// Its kind, `<&str>::from(&actual)`, is the JSON's `kind` and the name of the
/// [`Expected`] variant that speaks of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Actual {
    Ok,
    Errno {
        name: String,
        code: i32,
    },
    Value {
        value: serde_json::Value,
    },
    /// A transfer moved another number of bytes than asked.
    Returned {
        value: i64,
    },
    /// The step could not be attempted (e.g. its map failed to be created).
    NotRun {
        reason: String,
    },
    /// What each call of a program's run did, in order, from its record.
    Observed {
        calls: Vec<ObservedCall>,
        /// sock_ops: the callback's `args[0]` and `args[1]`.
        callback_args: Option<[u32; 2]>,
    },
    /// No record of the program about the socket was left to observe.
    NoRecord,
    /// The kernel refused the program at load: the errno and the verifier's reason (the
    /// log's last line before its statistics; empty when the kernel refused before
    /// verifying).
    Rejected {
        errno: String,
        message: String,
    },
    /// Per operation of a threads step, how often each outcome (`ok`, an errno name)
    /// happened: the work the threads did.
    Counts {
        counts: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    },
    /// The storages a sock_diag answer carried for the socket: map name → value.
    Storages {
        storages: serde_json::Value,
    },
    /// The sock_diag dump did not list the socket.
    NotListed,
}

/// One call of a program's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", content = "outcome", rename_all = "snake_case")]
pub enum ObservedCall {
    Get(ObservedGet),
    Delete(ObservedDelete),
    Write(ObservedWrite),
}

/// What `bpf_sk_storage_get` returned in a program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ObservedGet {
    NoSocket,
    Null,
    /// A pointer; the storage as the get returned it.
    Storage {
        storage: serde_json::Value,
    },
}

/// What `bpf_sk_storage_delete` returned in a program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ObservedDelete {
    NoSocket,
    Returned { value: i64 },
}

/// What a write of the list did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ObservedWrite {
    Written,
    /// No storage to write to: no get before it, or it returned NULL.
    NoStorage,
}

impl Actual {
    pub fn errno(code: i32) -> Self {
        Self::Errno {
            name: crate::errno::name(code),
            code,
        }
    }

    pub fn satisfies(&self, expected: &Expected) -> bool {
        match (expected, self) {
            (Expected::Ok, Self::Ok) => true,
            (Expected::Errno(want), Self::Errno { name, .. }) => want == name,
            (Expected::Value(want), Self::Value { value }) => {
                crate::case::types::value_matches(want, value)
            }
            (
                Expected::Observed {
                    calls: want,
                    callback_args: want_args,
                },
                Self::Observed {
                    calls: got,
                    callback_args: got_args,
                },
            ) => {
                want.len() == got.len()
                    && want
                        .iter()
                        .zip(got)
                        .all(|(want, got)| call_matches(want, got))
                    && want_args.as_ref().is_none_or(|want| {
                        got_args.is_some_and(|got| {
                            want.len() == got.len()
                                && want.iter().zip(got).all(|(want, got)| {
                                    crate::case::types::value_matches(want, &serde_json::json!(got))
                                })
                        })
                    })
            }
            (Expected::NoRecord, Self::NoRecord) => true,
            (Expected::Rejected(text), Self::Rejected { message, .. }) => {
                message.contains(text.as_str())
            }
            (Expected::Counts(want), Self::Counts { counts }) => {
                let all_listed = counts.iter().all(|(op, outcomes)| {
                    outcomes
                        .keys()
                        .all(|outcome| want.get(op).is_some_and(|w| w.contains_key(outcome)))
                });
                let all_hold = want.iter().all(|(op, outcomes)| {
                    outcomes.iter().all(|(outcome, wanted)| {
                        let seen = counts.get(op).and_then(|c| c.get(outcome)).copied();
                        crate::case::types::value_matches(
                            wanted,
                            &serde_json::json!(seen.unwrap_or(0)),
                        )
                    })
                });
                all_listed && all_hold
            }
            (Expected::Storages(want), Self::Storages { storages }) => {
                crate::case::types::value_matches(want, storages)
            }
            (Expected::NotListed, Self::NotListed) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Actual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => write!(f, "ok"),
            Self::Errno { name, code }
                if name.starts_with('E') && name[1..].parse::<i32>().is_err() =>
            {
                write!(f, "{name} ({code})")
            }
            Self::Errno { code, .. } => write!(f, "errno {code}"),
            Self::Value { value } => write!(f, "value {}", Brief(value)),
            Self::Returned { value } => write!(f, "returned {value}"),
            Self::NotRun { reason } => write!(f, "not run: {reason}"),
            Self::Observed {
                calls,
                callback_args,
            } => {
                let calls: Vec<String> = calls.iter().map(ObservedCall::to_string).collect();
                write!(f, "{}", calls.join(", "))?;
                if let Some([arg0, arg1]) = callback_args {
                    write!(f, " (callback args {arg0}, {arg1})")?;
                }
                Ok(())
            }
            Self::NoRecord => write!(f, "no record (the program did not run for the socket)"),
            Self::Rejected { errno, message } => {
                write!(f, "rejected at load ({errno}): {message}")
            }
            Self::Counts { counts } => write!(f, "counts {}", serde_json::json!(counts)),
            Self::Storages { storages } => write!(f, "storages {}", Brief(storages)),
            Self::NotListed => write!(f, "not listed by the dump"),
        }
    }
}

fn call_matches(want: &ExpectedCall, got: &ObservedCall) -> bool {
    match (want, got) {
        (ExpectedCall::Get(ExpectedGet::Null), ObservedCall::Get(ObservedGet::Null)) => true,
        (ExpectedCall::Get(ExpectedGet::NoSocket), ObservedCall::Get(ObservedGet::NoSocket)) => {
            true
        }
        (
            ExpectedCall::Get(ExpectedGet::Storage(want)),
            ObservedCall::Get(ObservedGet::Storage { storage }),
        ) => crate::case::types::value_matches(want, storage),
        (
            ExpectedCall::Delete(ExpectedDelete::NoSocket),
            ObservedCall::Delete(ObservedDelete::NoSocket),
        ) => true,
        (
            ExpectedCall::Delete(ExpectedDelete::Returned(want)),
            ObservedCall::Delete(ObservedDelete::Returned { value }),
        ) => want == value,
        (
            ExpectedCall::Write(ExpectedWrite::Written),
            ObservedCall::Write(ObservedWrite::Written),
        ) => true,
        (
            ExpectedCall::Write(ExpectedWrite::NoStorage),
            ObservedCall::Write(ObservedWrite::NoStorage),
        ) => true,
        _ => false,
    }
}

impl fmt::Display for ObservedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Get(ObservedGet::NoSocket) => write!(f, "get not called (no socket)"),
            Self::Get(ObservedGet::Null) => write!(f, "get NULL"),
            Self::Get(ObservedGet::Storage { storage }) => write!(f, "get -> {}", Brief(storage)),
            Self::Delete(ObservedDelete::NoSocket) => write!(f, "delete not called (no socket)"),
            Self::Delete(ObservedDelete::Returned { value }) => {
                write!(f, "delete {}", crate::errno::describe_return(*value))
            }
            Self::Write(ObservedWrite::Written) => write!(f, "write done"),
            Self::Write(ObservedWrite::NoStorage) => write!(f, "write not done (no storage)"),
        }
    }
}

impl RunResults {
    /// Results of this harness build that end now; set `started` and `accel` as they were.
    pub fn new(kernels: Vec<KernelRun>) -> Self {
        let now = Timestamp::now();
        Self {
            schema: SCHEMA_VERSION,
            started: now,
            ended: now,
            harness: HarnessBuild::this(),
            accel: None,
            kernels,
        }
    }

    /// The build that ran `kernel`: its own when a merge recorded one, else the results'.
    pub fn harness_of<'a>(&'a self, kernel: &'a KernelRun) -> &'a HarnessBuild {
        kernel.harness.as_ref().unwrap_or(&self.harness)
    }
}

impl KernelRun {
    /// The architecture of the kernel's machine (x86_64 for results that do not say).
    pub fn architecture(&self) -> Arch {
        self.arch
            .as_deref()
            .and_then(Arch::from_uname_machine)
            .unwrap_or_default()
    }

    /// A kernel that ran `cases`, reporting `version`.
    pub fn ran(kernel: &str, version: KernelVersion, cases: Vec<CaseResult>) -> Self {
        Self {
            version: Some(version),
            cases,
            ..Self::without_cases(kernel, KernelStatus::Ran)
        }
    }

    /// A kernel that ran no case, with why.
    pub fn without_cases(kernel: &str, status: KernelStatus) -> Self {
        Self {
            kernel: kernel.to_string(),
            release: None,
            arch: None,
            version: None,
            status,
            duration_ms: 0,
            cmdline: None,
            harness: None,
            accel: None,
            phases: None,
            note: None,
            cases: Vec::new(),
        }
    }

    pub fn count(&self, pred: impl Fn(&CaseOutcome) -> bool) -> usize {
        self.cases.iter().filter(|c| pred(&c.outcome)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_compare_by_errno_name_and_value() {
        assert!(Actual::errno(libc::EEXIST).satisfies(&Expected::Errno("EEXIST".into())));
        assert!(!Actual::errno(libc::EINVAL).satisfies(&Expected::Errno("EEXIST".into())));
        assert!(!Actual::Ok.satisfies(&Expected::Errno("EEXIST".into())));
        let v = Actual::Value {
            value: serde_json::json!(7),
        };
        assert!(v.satisfies(&Expected::Value(serde_json::json!(7))));
        assert!(!v.satisfies(&Expected::Value(serde_json::json!(8))));
        assert_eq!(Actual::errno(524).to_string(), "ENOTSUPP (524)");
        let long = |v: serde_json::Value| Actual::Value { value: v }.to_string();
        assert_eq!(long(serde_json::json!(vec![1; 8120])), "value [8120 × 1]");
        let counting: Vec<u32> = (0..20).collect();
        assert_eq!(
            long(serde_json::json!({ "data": counting, "n": 2 })),
            r#"value {"data":[0, 1, 2, 3, 4, 5, 6, 7, … 12 more],"n":2}"#
        );
        // Short values print as JSON does.
        assert_eq!(
            long(serde_json::json!({ "a": [1, 2] })),
            r#"value {"a":[1,2]}"#
        );
        assert_eq!(Actual::errno(4242).to_string(), "errno 4242");
    }

    /// The book's Results JSON (docs/src/results.md) lists every kind of `actual`; adding a
    /// variant fails here (the match) until it is there.
    #[test]
    fn the_book_documents_every_actual_kind() {
        let page = include_str!("../../../docs/src/results.md");
        let every = [
            Actual::Ok,
            Actual::errno(libc::EEXIST),
            Actual::Value {
                value: serde_json::json!(7),
            },
            Actual::Returned { value: 3 },
            Actual::NotRun { reason: "r".into() },
            Actual::Observed {
                calls: vec![],
                callback_args: None,
            },
            Actual::NoRecord,
            Actual::Rejected {
                errno: "EINVAL".into(),
                message: "m".into(),
            },
            Actual::Counts {
                counts: Default::default(),
            },
            Actual::Storages {
                storages: serde_json::json!({}),
            },
            Actual::NotListed,
        ];
        for actual in every {
            match actual {
                Actual::Ok
                | Actual::Errno { .. }
                | Actual::Value { .. }
                | Actual::Returned { .. }
                | Actual::NotRun { .. }
                | Actual::Observed { .. }
                | Actual::NoRecord
                | Actual::Rejected { .. }
                | Actual::Counts { .. }
                | Actual::Storages { .. }
                | Actual::NotListed => {}
            }
            let json = serde_json::to_value(&actual).unwrap();
            let kind = json["kind"].as_str().unwrap();
            assert!(
                page.contains(&format!("\n| `{kind}` |")),
                "docs/src/results.md does not document actual kind `{kind}`"
            );
        }
    }

    #[test]
    fn json_round_trips() {
        let run = KernelRun {
            release: Some("6.18.44".into()),
            version: Some(KernelVersion::new(6, 18, 44)),
            duration_ms: 12,
            cmdline: Some("console=ttyS0 lsm=bpf".into()),
            cases: vec![CaseResult {
                name: "c".into(),
                file: "cases/c.yaml".into(),
                outcome: CaseOutcome::Skipped {
                    reason: "needs 7.0".into(),
                },
                duration_ms: 0,
                steps: vec![],
            }],
            ..KernelRun::without_cases("host", KernelStatus::Ran)
        };
        let mut results = RunResults::new(vec![run]);
        results.accel = Some(Accel::Tcg);
        let text = serde_json::to_string(&results).unwrap();
        let back: RunResults = serde_json::from_str(&text).unwrap();
        assert_eq!(back.kernels[0].version, Some(KernelVersion::new(6, 18, 44)));
        assert_eq!(back.kernels[0].cmdline, results.kernels[0].cmdline);
        assert_eq!(back.accel, Some(Accel::Tcg));
        assert_eq!(back.harness, HarnessBuild::this());
        // Written to the second, so a time read back is the same second.
        assert_eq!(back.started.to_string(), results.started.to_string());
        assert_eq!(
            back.kernels[0].cases[0].outcome,
            CaseOutcome::Skipped {
                reason: "needs 7.0".into()
            }
        );
    }
}
