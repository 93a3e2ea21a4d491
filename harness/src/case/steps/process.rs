//! Steps about the executing process: its capabilities, and forked children.

use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::{StepCheck, StepDecl};
use crate::case::{
    checked::{Checked, Outcomes},
    locate::Point,
};

operations! {
    pub enum ProcessOp as ProcessOpKind {
        /// Drop capabilities from the effective set for the rest of the case.
        DropCapabilities(Vec<Capability>),
        /// A child process runs these steps on its copies of the descriptors.
        Fork(Vec<StepDecl>),
    }
    runs_in_child: [],
    queries: [],
    slow: [Fork],
}

/// What the executor runs for a process step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessAction {
    DropCapabilities(Vec<caps::Capability>),
    /// Fork a child that runs the step's children on its copies of the descriptors.
    Fork,
}

impl ProcessOp {
    pub(super) fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<ProcessAction>> {
        match self {
            ProcessOp::DropCapabilities(caps) => Some(check_drop(caps)),
            ProcessOp::Fork(steps) => check_fork(steps, cx),
        }
    }
}

/// A capability as capabilities(7) spells it (`CAP_BPF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Capability(pub caps::Capability);

/// A capability's name as capabilities(7) writes it, one of those the `caps` crate knows.
impl schemars::JsonSchema for Capability {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Capability".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut names: Vec<String> = caps::all().iter().map(ToString::to_string).collect();
        names.sort();
        schemars::json_schema!({ "type": "string", "enum": names })
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        caps::Capability::from_str(&name).map(Capability).map_err(|_| {
            let known: Vec<String> = caps::all().iter().map(ToString::to_string).collect();
            let hint = crate::diagnostic::did_you_mean(&name, known.iter().map(String::as_str));
            serde::de::Error::custom(format!(
                "unknown capability `{name}` (write it as in capabilities(7), e.g. CAP_BPF){hint}"
            ))
        })
    }
}

fn check_drop(caps: &[Capability]) -> Checked<ProcessAction> {
    let names: Vec<String> = caps.iter().map(|c| c.0.to_string()).collect();
    Checked::new(
        format!("drop {}", names.join(", ")),
        Outcomes::Status,
        ProcessAction::DropCapabilities(caps.iter().map(|c| c.0).collect()),
    )
}

fn check_fork(steps: &[StepDecl], cx: &mut StepCheck<'_>) -> Option<Checked<ProcessAction>> {
    let path = cx.path.clone();
    if steps.is_empty() {
        cx.error(&path, Point::Value, "a fork lists the steps its child runs");
        return None;
    }
    let children = cx.child_steps(steps)?;
    let checked = Checked::new(
        "fork: the child runs the steps below".to_string(),
        Outcomes::Status,
        ProcessAction::Fork,
    );
    Some(checked.with_children(children))
}
