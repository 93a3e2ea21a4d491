//! Where outcomes change along a `repeat`'s iterations, per kernel: a sweep written as one
//! repeat (a size, a count) shows its edge here, without one case per value.
//!
//! A repeat's steps have ids `STEP.ITERATION.INDEX` (nested ones add more parts); the
//! steps sharing all parts but the iteration are one step of the sweep. An edge is a change
//! of outcome class (its kind, an errno): every iteration expects a value of its own, so
//! values differ along a sweep by design.

use std::{
    collections::HashMap,
    io::{self, Write},
};

use serde::Serialize;

use crate::results::{Actual, KernelStatus, RunResults, pinned::outcome_class};

/// One change of outcome between two consecutive iterations of a repeated step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    pub kernel: String,
    pub case: String,
    /// The step with its iteration as `*`: `1.*.2`.
    pub step: String,
    pub before: Side,
    pub after: Side,
}

/// One iteration of a repeated step as the kernel ran it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub iteration: u32,
    pub label: String,
    pub actual: Actual,
}

/// Every edge of every repeated step, per kernel that ran, in the order steps ran.
pub fn edges(results: &RunResults) -> Vec<Edge> {
    let mut found = Vec::new();
    for kernel in results
        .kernels
        .iter()
        .filter(|k| k.status == KernelStatus::Ran)
    {
        for case in &kernel.cases {
            // Each repeated step's latest iteration so far.
            let mut previous: HashMap<String, Side> = HashMap::new();
            for step in &case.steps {
                let Some((template, iteration)) = iteration_of(&step.id) else {
                    continue;
                };
                let side = Side {
                    iteration,
                    label: step.label.clone(),
                    actual: step.actual.clone(),
                };
                match previous.get_mut(&template) {
                    Some(before) => {
                        if before.iteration + 1 == iteration
                            && outcome_class(&before.actual) != outcome_class(&side.actual)
                        {
                            found.push(Edge {
                                kernel: kernel.kernel.clone(),
                                case: case.name.clone(),
                                step: template.clone(),
                                before: before.clone(),
                                after: side.clone(),
                            });
                        }
                        *before = side;
                    }
                    None => {
                        previous.insert(template, side);
                    }
                }
            }
        }
    }
    found
}

/// Items in runs: consecutive iterations of one repeated step for which `alike` holds
/// between neighbours are one run, anything else a run of its own. Returns each run's
/// first and last index into `items`, for views that print a sweep's repeated outcome once.
pub fn iteration_runs<T>(
    items: &[T],
    id: impl Fn(&T) -> &str,
    alike: impl Fn(&T, &T) -> bool,
) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some((_, last)) = runs.last_mut()
            && let (Some((template, iteration)), Some((previous, previous_iteration))) =
                (iteration_of(id(item)), iteration_of(id(&items[*last])))
            && template == previous
            && iteration == previous_iteration + 1
            && alike(&items[*last], item)
        {
            *last = i;
            continue;
        }
        runs.push((i, i));
    }
    runs
}

/// How a run of iterations is named: `1.*.2, iterations 1–9`, or the step's own id.
pub fn run_name(first: &str, last: &str) -> String {
    match (iteration_of(first), iteration_of(last)) {
        (Some((template, from)), Some((_, to))) if from != to => {
            format!("{template}, iterations {from}–{to}")
        }
        _ => first.to_string(),
    }
}

/// `1.7.2` → (`1.*.2`, 7): the iteration is the second-to-last part of a repeat's id.
fn iteration_of(id: &str) -> Option<(String, u32)> {
    let parts: Vec<&str> = id.split('.').collect();
    if parts.len() < 3 || parts[0] == "setup" {
        return None;
    }
    let at = parts.len() - 2;
    let iteration = parts[at].parse().ok()?;
    let mut template: Vec<&str> = parts.clone();
    template[at] = "*";
    Some((template.join("."), iteration))
}

pub fn write(out: &mut impl Write, results: &RunResults) -> io::Result<()> {
    let found = edges(results);
    if found.is_empty() {
        writeln!(
            out,
            "no repeated step changes its outcome between iterations"
        )?;
    }
    for edge in &found {
        writeln!(
            out,
            "{} {} step {}: iteration {} ({}) {} → iteration {} ({}) {}",
            edge.kernel,
            edge.case,
            edge.step,
            edge.before.iteration,
            edge.before.label,
            edge.before.actual,
            edge.after.iteration,
            edge.after.label,
            edge.after.actual
        )?;
    }
    // A kernel that ran nothing has no edges to show, which must not read as "none".
    for kernel in &results.kernels {
        match &kernel.status {
            KernelStatus::Ran => {}
            KernelStatus::Skipped { reason } => {
                writeln!(out, "{}: not swept: skipped: {reason}", kernel.kernel)?;
            }
            KernelStatus::Error { message, .. } => writeln!(
                out,
                "{}: not swept: kernel error: {}",
                kernel.kernel,
                message.lines().next().unwrap_or_default()
            )?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CaseOutcome, CaseResult, KernelRun, StepResult, Verdict};

    /// What an update of `size` bytes did (each passes: the sweep has no expectation).
    fn step(id: &str, size: u32, actual: Actual) -> StepResult {
        StepResult {
            verdict: Verdict::Pass,
            ..StepResult::judged(
                id,
                format!("update m[s] = u8[{size}]"),
                crate::case::Expected::Ok,
                actual,
            )
        }
    }

    #[test]
    fn a_sweep_shows_where_its_outcome_changes() {
        let enomem = || Actual::Errno {
            name: "ENOMEM".into(),
            code: 12,
        };
        let steps = vec![
            step("setup.1", 0, Actual::Ok),
            step("1.1.1", 8119, Actual::Ok),
            step("1.1.2", 0, Actual::Ok),
            step("1.2.1", 8120, Actual::Ok),
            step("1.2.2", 0, Actual::Ok),
            step("1.3.1", 8121, enomem()),
            step("1.3.2", 0, Actual::Ok),
            step("1.4.1", 8122, enomem()),
            step("1.4.2", 0, Actual::Ok),
        ];
        let results = RunResults::new(vec![KernelRun {
            cases: vec![CaseResult {
                name: "sweep".into(),
                file: "sweep.yaml".into(),
                outcome: CaseOutcome::Pass,
                duration_ms: 0,
                steps,
            }],
            ..KernelRun::without_cases("7.1", KernelStatus::Ran)
        }]);
        let found = edges(&results);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].step, "1.*.1");
        assert_eq!(found[0].before.iteration, 2);
        assert_eq!(found[0].after.iteration, 3);
        assert!(found[0].after.label.contains("8121"));
    }

    #[test]
    fn alike_iterations_are_one_run() {
        let ids = ["1", "2.1.1", "2.2.1", "2.3.1", "2.5.1", "2.6.1", "3"];
        let runs = iteration_runs(&ids, |id| id, |_, _| true);
        assert_eq!(runs, [(0, 0), (1, 3), (4, 5), (6, 6)]);
        assert_eq!(run_name(ids[1], ids[3]), "2.*.1, iterations 1–3");
        assert_eq!(run_name("1", "1"), "1");
        let unlike = iteration_runs(&ids, |id| id, |a, b| a.len() == b.len() && *a != "2.2.1");
        assert_eq!(unlike[1], (1, 2), "2.3.1 is not alike 2.2.1");
    }
}
