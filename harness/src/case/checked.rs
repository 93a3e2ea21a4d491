//! The vocabulary of the checks: what an operation's check gives back, which the walk over
//! the steps turns into a validated [`Step`]. It depends on neither the steps' YAML shapes
//! nor the validator, so both use it without depending on each other.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{Step, types::Type};

/// What an operation's check gives back: how reports name the step, what it may expect,
/// how many bytes of what it reads go into its result, and (for a fork) the checked steps
/// its child runs.
pub struct Checked {
    pub label: String,
    pub outcomes: Outcomes,
    /// Bytes the step reads and decodes into its result (a lookup's value, a diag's
    /// storages), counted against the case's budget.
    pub reads: u64,
    pub children: Vec<Step>,
}

impl Checked {
    pub fn new(label: String, outcomes: Outcomes) -> Self {
        Self {
            label,
            outcomes,
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

/// The socket a map operation is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyRef {
    Open(String),
    /// The number a closed socket had: deliberately stale.
    Closed(String),
    /// A number as the case gives it (never opened, negative, past the table).
    Raw(i32),
}
