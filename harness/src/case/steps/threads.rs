//! Concurrency: threads that run map operations at the same time, and report how often
//! each outcome happened.

use serde::{Deserialize, Serialize};
use serde_json::Value;
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
/// thread's `{t}` and `{i}` substituted and checked, as runs of one iteration repeated
/// (thousands of identical iterations would otherwise make the guest's plan megabytes of
/// JSON, whose parse under TCG took 0.4 s).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadsAction {
    pub threads: Vec<Vec<Run>>,
}

/// One iteration's actions, run `times` times in a row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub actions: Vec<MapAction>,
    pub times: u32,
}

impl ThreadsAction {
    /// Thread `runs`' actions in the order it makes them.
    pub fn actions(runs: &[Run]) -> impl Iterator<Item = &MapAction> {
        runs.iter()
            .flat_map(|run| (0..run.times).flat_map(|_| run.actions.iter()))
    }
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

/// The map operations of a group's steps as `written`, with `{t}` and `{i}` substituted;
/// else the step whose template does not expand, and why.
fn expand_iteration(written: &[Value], t: i64, i: u32) -> Result<Vec<MapOp>, (usize, String)> {
    let vars = [("t", t), ("i", i64::from(i))];
    written
        .iter()
        .enumerate()
        .map(|(j, step)| {
            let expanded = template::expand(step, &vars).map_err(|message| (j, message))?;
            serde_json::from_value(expanded).map_err(|e| (j, e.to_string()))
        })
        .collect()
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
    // Each group's steps as written, the templates `{t}` and `{i}` expand.
    let mut steps = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let mut written = Vec::new();
        for (j, BareOp(op)) in group.steps.iter().enumerate() {
            match op {
                Op::Maps(op) if MapOpKind::from(op).runs_in_thread() => written.push(
                    serde_json::to_value(op).expect("a map operation is plain data for JSON"),
                ),
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
        steps.push(written);
    }
    // Every operation is checked as its thread runs it; the first bad one is reported.
    // Steps that name neither `{t}` nor `{i}` come out alike on every thread or iteration,
    // so they are expanded and checked once: thousands of iterations checked one by one
    // took most of the time the harness needed to load the cases.
    let mut actions: Vec<Vec<Run>> = Vec::new();
    for ((g, group), written) in groups.iter().enumerate().zip(&steps) {
        let varies = |var| written.iter().any(|step| template::mentions(step, var));
        let per_thread = varies("t");
        let (iterations, times) = if varies("i") {
            (group.repeat, 1)
        } else {
            (1, group.repeat)
        };
        let group_start = actions.len();
        for _ in 0..group.count {
            if !per_thread && actions.len() > group_start {
                actions.push(actions[group_start].clone());
                continue;
            }
            let t = actions.len() as i64;
            let mut runs: Vec<Run> = Vec::new();
            for i in 0..iterations {
                let ops = match expand_iteration(written, t, i) {
                    Ok(ops) => ops,
                    Err((j, message)) => {
                        cx.error(&path.index(g).key("steps").index(j), Point::Value, message);
                        return None;
                    }
                };
                let mut checked = Vec::with_capacity(ops.len());
                for (k, op) in ops.iter().enumerate() {
                    let at = path
                        .index(g)
                        .key("steps")
                        .index(k)
                        .key(MapOpKind::from(op).name());
                    checked.push(op.check(&mut cx.at(at))?.action);
                }
                match runs.last_mut() {
                    Some(run) if run.actions == checked => run.times += times,
                    _ => runs.push(Run {
                        actions: checked,
                        times,
                    }),
                }
            }
            actions.push(runs);
        }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::case::{Action, Case};

    fn threads_action(text: &str) -> super::ThreadsAction {
        let case: Case = crate::case::parse(Path::new("cases/x.yaml"), text).expect("valid");
        case.steps
            .into_iter()
            .find_map(|step| match step.action {
                Action::Threads(action) => Some(action),
                _ => None,
            })
            .expect("a threads step")
    }

    fn threads_of(text: &str) -> Vec<Vec<(usize, u32)>> {
        threads_action(text)
            .threads
            .iter()
            .map(|runs| runs.iter().map(|r| (r.actions.len(), r.times)).collect())
            .collect()
    }

    const HEAD: &str = "name: x\ndescription: d\nmaps:\n  store: { value: u32 }\nsockets:\n  s: { family: inet }\nsteps:\n  - threads:\n";
    const TAIL: &str = "    expect:\n      counts:\n        update: { ok: \"> 0\" }\n        delete: { ok: any, ENOENT: any }\n";

    #[test]
    fn identical_iterations_are_one_run_and_changing_ones_one_run_each() {
        let same = format!(
            "{HEAD}      - count: 2\n        repeat: 1000\n        steps:\n          - update: {{ map: store, socket: s, value: 7 }}\n          - delete: {{ map: store, socket: s }}\n{TAIL}"
        );
        assert_eq!(threads_of(&same), vec![vec![(2, 1000)]; 2]);
        let changing = format!(
            "{HEAD}      - count: 1\n        repeat: 3\n        steps:\n          - update: {{ map: store, socket: s, value: \"{{i}}\" }}\n          - delete: {{ map: store, socket: s }}\n{TAIL}"
        );
        assert_eq!(threads_of(&changing), vec![vec![(2, 1); 3]]);
        let action_count: usize = threads_action(&same)
            .threads
            .iter()
            .map(|runs| super::ThreadsAction::actions(runs).count())
            .sum();
        assert_eq!(
            action_count,
            2 * 1000 * 2,
            "each thread still makes every call"
        );
    }
}
