//! Concurrency: threads that run map operations at the same time, and report how often
//! each outcome happened.

use serde::{Deserialize, Serialize};
use strum::VariantArray;

use super::{MapAction, MapOp, MapOpKind, Op, StepCheck, StepKind, decl::BareOp, template};
use crate::case::{
    checked::{Checked, Outcomes},
    locate::Point,
};

operations! {
    pub enum ThreadsOp as ThreadsOpKind {
        /// Threads run map operations at the same time; the step expects outcome counts.
        Threads(Vec<ThreadGroup>),
    }
    runs_in_child: [],
    queries: [],
    slow: [Threads],
}

/// What the executor runs for a threads step: every thread's map actions in order, each
/// thread's `{t}` and `{i}` substituted and checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadsAction {
    pub threads: Vec<Vec<MapAction>>,
}

/// Threads that run the same steps: `count` threads (`{t}` numbers them across the whole
/// step, from 0), each running `steps` `repeat` times (`{i}`). Steps here are map element
/// operations without `expect`: the step expects how often each outcome happened.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
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

/// One thread of a threads step: its group and its operations in order.
struct Thread {
    group: usize,
    ops: Vec<MapOp>,
}

/// A step of a thread group whose template does not expand.
struct TemplateError {
    group: usize,
    step: usize,
    message: String,
}

/// Every thread, with `{t}` and `{i}` substituted in its operations, the map operations
/// of each group's steps.
fn expand(groups: &[ThreadGroup], steps: &[Vec<&MapOp>]) -> Result<Vec<Thread>, TemplateError> {
    let mut threads = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for _ in 0..group.count {
            let t = threads.len() as i64;
            let mut ops = Vec::new();
            for i in 0..group.repeat {
                for (j, op) in steps[g].iter().enumerate() {
                    let error = |message: String| TemplateError {
                        group: g,
                        step: j,
                        message,
                    };
                    let written = serde_json::to_value(op).map_err(|e| error(e.to_string()))?;
                    let vars = [("t", t), ("i", i64::from(i))];
                    let expanded = template::expand(&written, &vars).map_err(error)?;
                    ops.push(serde_json::from_value(expanded).map_err(|e| error(e.to_string()))?);
                }
            }
            threads.push(Thread { group: g, ops });
        }
    }
    Ok(threads)
}

impl ThreadsOp {
    pub(super) fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<ThreadsAction>> {
        let ThreadsOp::Threads(groups) = self;
        check_threads(groups, cx)
    }
}

fn check_threads(groups: &[ThreadGroup], cx: &mut StepCheck<'_>) -> Option<Checked<ThreadsAction>> {
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
    let mut steps = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let mut ops = Vec::new();
        for (j, BareOp(op)) in group.steps.iter().enumerate() {
            match op {
                Op::Maps(op) if MapOpKind::from(op).runs_in_thread() => ops.push(op),
                _ => {
                    let runnable = MapOpKind::VARIANTS
                        .iter()
                        .filter(|kind| kind.runs_in_thread())
                        .map(|kind| kind.name())
                        .collect::<Vec<_>>();
                    cx.error(
                        &path.index(g).key("steps").index(j).key(op.name()),
                        Point::Key,
                        format!(
                            "threads run only {}: `{}` needs a step of its own",
                            runnable.join(", "),
                            op.name()
                        ),
                    );
                    return None;
                }
            }
        }
        steps.push(ops);
    }
    let expanded = match expand(groups, &steps) {
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
    let mut actions = Vec::with_capacity(expanded.len());
    for thread in &expanded {
        let mut thread_actions = Vec::with_capacity(thread.ops.len());
        for (k, op) in thread.ops.iter().enumerate() {
            let g = thread.group;
            let at = path
                .index(g)
                .key("steps")
                .index(k % groups[g].steps.len())
                .key(MapOpKind::from(op).name());
            let checked = op.check(&mut cx.at(at))?;
            thread_actions.push(checked.action);
        }
        actions.push(thread_actions);
    }
    let names: Vec<&'static str> = groups
        .iter()
        .flat_map(|g| g.steps.iter().map(|BareOp(op)| op.name()))
        .collect();
    Some(Checked::new(
        format!("{threads} threads, {total} operations"),
        Outcomes::Counts(names),
        ThreadsAction { threads: actions },
    ))
}
