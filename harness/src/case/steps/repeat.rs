//! Repetition: a block of steps run N times in order, in the repeat's place.

use serde::{Deserialize, Serialize};

use super::{MapOp, Op, SocketOp, StepCheck, StepDecl, template};
use crate::case::{Step, locate::Point};

operations! {
    pub enum RepeatOp as RepeatOpKind {
        /// Steps run `times` times in order, with `{i}` the iteration in their strings.
        Repeat(RepeatArgs),
    }
    runs_in_child: [],
    queries: [],
    slow: [],
}

impl RepeatOp {
    /// The steps that take the repeat's place.
    pub(super) fn check(&self, cx: &mut StepCheck<'_>) -> Option<Vec<Step>> {
        let RepeatOp::Repeat(args) = self;
        args.check(cx)
    }
}

/// `repeat: { times: N, steps: [...] }`: the steps, `times` times in order, with `{i}` the
/// iteration (from 0) in their strings. The expanded steps take the repeat's place; each
/// says what it expects, so the repeat itself expects nothing.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatArgs {
    pub times: u32,
    pub steps: Vec<StepDecl>,
}

impl RepeatArgs {
    /// The steps of iteration `i`.
    pub fn iteration(&self, i: u32) -> Result<Vec<StepDecl>, (usize, String)> {
        self.steps
            .iter()
            .enumerate()
            .map(|(j, step)| {
                let written = serde_json::to_value(step).map_err(|e| (j, e.to_string()))?;
                let expanded =
                    template::expand(&written, &[("i", i64::from(i))]).map_err(|e| (j, e))?;
                serde_json::from_value(expanded).map_err(|e| (j, e.to_string()))
            })
            .collect()
    }

    /// Each iteration's steps that create a map or socket (nested repeats included), the
    /// other steps left out; nothing for a repeat whose templates do not expand, which its
    /// check reports.
    pub(super) fn creating_iterations(&self) -> Vec<Vec<StepDecl>> {
        let creating = RepeatArgs {
            times: self.times,
            steps: self
                .steps
                .iter()
                .filter(|step| {
                    matches!(
                        step.op,
                        Op::Maps(MapOp::CreateMap(_))
                            | Op::Sockets(SocketOp::Socket(_))
                            | Op::Repeat(_)
                    )
                })
                .cloned()
                .collect(),
        };
        if creating.steps.is_empty() {
            return Vec::new();
        }
        (0..self.times)
            .map_while(|i| creating.iteration(i).ok())
            .collect()
    }

    fn check(&self, cx: &mut StepCheck<'_>) -> Option<Vec<Step>> {
        let path = cx.path.clone();
        if self.times == 0 || self.steps.is_empty() {
            cx.error(
                &path,
                Point::Value,
                "a repeat runs its `steps` `times` times: both must be more than zero",
            );
            return None;
        }
        cx.repeated_steps(self)
    }
}
