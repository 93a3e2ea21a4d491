//! Repetition and concurrency: a block of steps run N times in order, and threads that run
//! map operations at the same time and report how often each outcome happened.

use serde::{Deserialize, Serialize};

use super::{Op, StepCheck, StepDecl, decl::BareOp, template};
use crate::case::{
    checked::{Checked, Outcomes},
    locate::Point,
};

/// `repeat: { times: N, steps: [...] }`: the steps, `times` times in order, with `{i}` the
/// iteration (from 0) in their strings. The expanded steps take the repeat's place; each
/// says what it expects, so the repeat itself expects nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatOp {
    pub times: u32,
    pub steps: Vec<StepDecl>,
}

impl RepeatOp {
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
        let creating = RepeatOp {
            times: self.times,
            steps: self
                .steps
                .iter()
                .filter(|step| matches!(step.op, Op::CreateMap(_) | Op::Socket(_) | Op::Repeat(_)))
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

    pub(super) fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked> {
        let path = cx.path.clone();
        if self.times == 0 || self.steps.is_empty() {
            cx.error(
                &path,
                Point::Value,
                "a repeat runs its `steps` `times` times: both must be more than zero",
            );
            return None;
        }
        let children = cx.repeated_steps(self)?;
        let mut checked = Checked::new(format!("repeat {} times", self.times), Outcomes::Status);
        checked.children = children;
        Some(checked)
    }
}

/// Threads that run the same steps: `count` threads (`{t}` numbers them across the whole
/// step, from 0), each running `steps` `repeat` times (`{i}`). Steps here are map element
/// operations without `expect`: the step expects how often each outcome happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadGroup {
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default = "one")]
    pub repeat: u32,
    pub steps: Vec<BareOp>,
}

fn one() -> u32 {
    1
}

/// What threads may run: element operations, which the executor prepares before the
/// threads start.
pub const THREAD_NAMES: &[&str] = &["update", "lookup", "delete", "lookup_and_delete"];

/// One thread of a threads step: its group and its operations in order.
pub struct Thread {
    pub group: usize,
    pub ops: Vec<Op>,
}

/// A step of a thread group whose template does not expand.
pub struct TemplateError {
    pub group: usize,
    pub step: usize,
    pub message: String,
}

/// Every thread, with `{t}` and `{i}` substituted in its operations.
pub fn expand_threads(groups: &[ThreadGroup]) -> Result<Vec<Thread>, TemplateError> {
    let mut threads = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for _ in 0..group.count {
            let t = threads.len() as i64;
            let mut ops = Vec::new();
            for i in 0..group.repeat {
                for (j, op) in group.steps.iter().enumerate() {
                    let error = |message: String| TemplateError {
                        group: g,
                        step: j,
                        message,
                    };
                    let written = serde_json::to_value(op).map_err(|e| error(e.to_string()))?;
                    let vars = [("t", t), ("i", i64::from(i))];
                    let expanded = template::expand(&written, &vars).map_err(error)?;
                    let BareOp(op) =
                        serde_json::from_value(expanded).map_err(|e| error(e.to_string()))?;
                    ops.push(op);
                }
            }
            threads.push(Thread { group: g, ops });
        }
    }
    Ok(threads)
}

pub(super) fn check_threads(groups: &[ThreadGroup], cx: &mut StepCheck<'_>) -> Option<Checked> {
    let path = cx.path.clone();
    if groups.is_empty() {
        cx.error(&path, Point::Value, "threads need at least one group");
        return None;
    }
    for (g, group) in groups.iter().enumerate() {
        if group.count == 0 || group.repeat == 0 || group.steps.is_empty() {
            cx.error(
                &path.index(g),
                Point::Value,
                "each group of threads runs its `steps` `repeat` times on `count` threads: all three must be more than zero",
            );
            return None;
        }
    }
    // The cost model has bounded both, far below where u64 overflows.
    let threads: u64 = groups.iter().map(|g| u64::from(g.count)).sum();
    let total: u64 = groups
        .iter()
        .map(|g| u64::from(g.count) * u64::from(g.repeat) * g.steps.len() as u64)
        .sum();
    for (g, group) in groups.iter().enumerate() {
        for (j, BareOp(op)) in group.steps.iter().enumerate() {
            if !THREAD_NAMES.contains(&op.name()) {
                cx.error(
                    &path.index(g).key("steps").index(j).key(op.name()),
                    Point::Key,
                    format!(
                        "threads run only {}: `{}` needs a step of its own",
                        THREAD_NAMES.join(", "),
                        op.name()
                    ),
                );
                return None;
            }
        }
    }
    let expanded = match expand_threads(groups) {
        Ok(expanded) => expanded,
        Err(e) => {
            cx.error(
                &path.index(e.group).key("steps").index(e.step),
                Point::Value,
                e.message,
            );
            return None;
        }
    };
    // Every operation is checked as its thread runs it; the first bad one is reported.
    let mut seen_errors = false;
    for thread in &expanded {
        for (k, op) in thread.ops.iter().enumerate() {
            let g = thread.group;
            let at = path
                .index(g)
                .key("steps")
                .index(k % groups[g].steps.len())
                .key(op.name());
            if cx.check_nested(op, at).is_none() {
                seen_errors = true;
                break;
            }
        }
        if seen_errors {
            return None;
        }
    }
    let names: Vec<&'static str> = groups
        .iter()
        .flat_map(|g| g.steps.iter().map(|BareOp(op)| op.name()))
        .collect();
    Some(Checked::new(
        format!("{threads} threads, {total} operations"),
        Outcomes::Counts(names),
    ))
}
