//! Steps about the executing process: its capabilities, and forked children.

use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::{StepCheck, StepDecl};
use crate::case::{
    checked::{Checked, Outcomes},
    locate::Point,
};

/// A capability as capabilities(7) spells it (`CAP_BPF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Capability(pub caps::Capability);

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

pub(super) fn check_drop(caps: &[Capability]) -> Option<Checked> {
    let names: Vec<String> = caps.iter().map(|c| c.0.to_string()).collect();
    Some(Checked::new(
        format!("drop {}", names.join(", ")),
        Outcomes::Status,
    ))
}

pub(super) fn check_fork(steps: &[StepDecl], cx: &mut StepCheck<'_>) -> Option<Checked> {
    let path = cx.path.clone();
    if steps.is_empty() {
        cx.error(&path, Point::Value, "a fork lists the steps its child runs");
        return None;
    }
    let children = cx.child_steps(steps)?;
    let mut checked = Checked::new(
        "fork: the child runs the steps below".to_string(),
        Outcomes::Status,
    );
    checked.children = children;
    Some(checked)
}
