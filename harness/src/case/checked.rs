//! The vocabulary of the checks: what an operation's check gives back, which the walk over
//! the steps turns into a validated [`Step`]. It depends on neither the steps' YAML shapes
//! nor the validator, so both use it without depending on each other.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{Step, types::Type};

/// What an operation's check gives back: how reports name the step, what it may expect,
/// what the executor runs (`A`, the action of the operation's concern), how many bytes of
/// what it reads go into its result, and (for a fork) the checked steps its child runs.
pub struct Checked<A> {
    pub label: String,
    pub outcomes: Outcomes,
    pub action: A,
    /// Bytes the step reads and decodes into its result (a lookup's value, a diag's
    /// storages), counted against the case's budget.
    pub reads: u64,
    pub children: Vec<Step>,
}

impl<A> Checked<A> {
    pub fn new(label: String, outcomes: Outcomes, action: A) -> Self {
        Self {
            label,
            outcomes,
            action,
            reads: 0,
            children: Vec::new(),
        }
    }

    /// The step decodes `bytes` it read into its result.
    pub fn reading(self, bytes: u64) -> Self {
        Self {
            reads: bytes,
            ..self
        }
    }

    /// The step's child runs these steps.
    pub fn with_children(self, children: Vec<Step>) -> Self {
        Self { children, ..self }
    }

    /// The same, its action wrapped (in its concern's variant of the step's action).
    pub fn map<B>(self, wrap: impl FnOnce(A) -> B) -> Checked<B> {
        Checked {
            label: self.label,
            outcomes: self.outcomes,
            action: wrap(self.action),
            reads: self.reads,
            children: self.children,
        }
    }
}

/// What kind of outcome a step can have, for parsing its expectation.
pub enum Outcomes {
    /// `ok` or an errno.
    Status,
    /// `{ value: … }` of this type, or an errno.
    Value(Type),
    /// `{ calls: [...], args: [...] }`, one result per call of this list, or `no_record`.
    Calls {
        calls: Vec<crate::catalogue::Call>,
        sock_ops: bool,
    },
    /// `ok` or `{ rejected: "text in the verifier log" }`.
    Load,
    /// `{ counts: { OPERATION: { OUTCOME: count, … } } }` for these operations.
    Counts(Vec<&'static str>),
    /// `{ storages: { MAP: value, … } }` with values of these maps' types (a map with no
    /// storage for the socket left out), `not_listed`, or an errno.
    Storages(IndexMap<String, Type>),
}

/// The key of a map operation: a socket's descriptor, as the case names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRef {
    Open(String),
    /// The number a closed socket had: deliberately stale.
    Closed(String),
    /// A number as the case gives it (never opened, negative, past the table).
    Raw(i32),
    /// No key: a NULL pointer (get_next_key's first call).
    Null,
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open(socket) => write!(f, "{socket}"),
            Self::Closed(socket) => write!(f, "closed {socket}"),
            Self::Raw(fd) => write!(f, "fd {fd}"),
            Self::Null => write!(f, "NULL"),
        }
    }
}
