//! The one result model: what ran where, and what every step expected and got.
//!
//! The in-guest executor writes it as JSON, the host reads it back, and every report is a
//! view of it. Its wire format is documented in README.md ("Results JSON"); bump
//! [`SCHEMA_VERSION`] on an incompatible change.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    case::{Expected, ExpectedCall, ExpectedDelete, ExpectedGet, ExpectedWrite},
    version::KernelVersion,
};

pub const SCHEMA_VERSION: u32 = 2;

/// Results of one run over one or more kernels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    pub schema: u32,
    pub kernels: Vec<KernelRun>,
}

/// Everything that happened on one kernel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelRun {
    /// The kernel's name in kernels.toml, or `host`.
    pub kernel: String,
    /// `uname -r` as the kernel itself reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The version expectations were chosen by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<KernelVersion>,
    pub status: KernelStatus,
    pub duration_ms: u64,
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
    /// The expectation in force on this kernel.
    pub expected: Expected,
    /// Why this kernel expects that, when the case gives versioned variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub actual: Actual,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Diverged,
}

/// What a step really did. Recorded whatever the expectation says, so reports can show
/// where behaviour changed between kernels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
            Self::Value { value } => write!(f, "value {value}"),
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
            Self::Storages { storages } => write!(f, "storages {storages}"),
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
            Self::Get(ObservedGet::Storage { storage }) => write!(f, "get -> {storage}"),
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
    pub fn new(kernels: Vec<KernelRun>) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            kernels,
        }
    }
}

impl KernelRun {
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
        assert_eq!(Actual::errno(4242).to_string(), "errno 4242");
    }

    #[test]
    fn json_round_trips() {
        let run = KernelRun {
            kernel: "host".into(),
            release: Some("6.18.44".into()),
            version: Some(KernelVersion::new(6, 18, 44)),
            status: KernelStatus::Ran,
            duration_ms: 12,
            cases: vec![CaseResult {
                name: "c".into(),
                file: "cases/c.yaml".into(),
                outcome: CaseOutcome::Skipped {
                    reason: "needs 7.0".into(),
                },
                duration_ms: 0,
                steps: vec![],
            }],
        };
        let text = serde_json::to_string(&RunResults::new(vec![run])).unwrap();
        let back: RunResults = serde_json::from_str(&text).unwrap();
        assert_eq!(back.kernels[0].version, Some(KernelVersion::new(6, 18, 44)));
        assert_eq!(
            back.kernels[0].cases[0].outcome,
            CaseOutcome::Skipped {
                reason: "needs 7.0".into()
            }
        );
    }
}
