//! Bisection over an ordered list of kernels: the first kernel whose behaviour (the actual
//! outcomes of the watched cases, or of one step) differs from the first kernel's, found by
//! binary search so that few kernels boot.
//!
//! Behaviour, not verdicts, is compared: a case whose versioned expectations foresee a
//! change passes on both sides of it, yet the kernel did something else. The search only
//! needs a probe (boot a kernel, run the cases, read its [`KernelRun`]); the CLI gives it
//! the matrix runner, tests a table.

use crate::results::{Actual, CaseOutcome, KernelRun, KernelStatus};

/// What one kernel showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// The actual outcome of every watched step: (case, step id, actual), in run order.
    Behaviour(Vec<(String, String, Actual)>),
    /// The kernel cannot be judged (it did not boot, the case was skipped or failed to run,
    /// the step did not run): like `git bisect skip`.
    Unjudged(String),
}

/// What a visited kernel was taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The first kernel: what the others are compared with.
    Reference,
    /// Behaves as the reference.
    Good,
    /// Behaves otherwise.
    Bad,
    /// Could not be judged; the search goes around it.
    Skip,
}

/// One kernel the search booted, in visiting order.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    /// Position in the ordered list.
    pub index: usize,
    pub shown: Shown,
    pub mark: Mark,
}

/// Where the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The first kernel that differs from the reference; the one before it behaves as it.
    Found { first_bad: usize },
    /// Unjudged kernels hide the edge: it is after `last_good`, at or before `first_bad`.
    Ambiguous { last_good: usize, first_bad: usize },
    /// The last kernel behaves as the first: nothing to find in this list.
    NoChange,
    /// The first or the last kernel could not be judged, so no search is possible.
    EndUnjudged { index: usize },
}

/// Picks what to watch in a kernel's results: every step of the selected cases, or the
/// step `step` (of the one selected case).
pub fn observe(run: &KernelRun, step: Option<&str>) -> Shown {
    match &run.status {
        KernelStatus::Ran => {}
        KernelStatus::Error { message, .. } => {
            return Shown::Unjudged(format!("kernel error: {message}"));
        }
        KernelStatus::Skipped { reason } => {
            return Shown::Unjudged(format!("kernel skipped: {reason}"));
        }
    }
    let mut watched = Vec::new();
    for case in &run.cases {
        match &case.outcome {
            CaseOutcome::Skipped { reason } => {
                return Shown::Unjudged(format!("{} skipped: {reason}", case.name));
            }
            CaseOutcome::Error { message } => {
                return Shown::Unjudged(format!("{} could not run: {message}", case.name));
            }
            CaseOutcome::Pass | CaseOutcome::Diverged => {}
        }
        for s in &case.steps {
            if step.is_none_or(|id| id == s.id) {
                watched.push((case.name.clone(), s.id.clone(), s.actual.clone()));
            }
        }
    }
    match (step, watched.first()) {
        (_, None) if run.cases.is_empty() => Shown::Unjudged("no case ran".into()),
        (Some(id), None) => Shown::Unjudged(format!("no step {id} in the results")),
        (Some(id), Some((_, _, Actual::NotRun { reason }))) => {
            Shown::Unjudged(format!("step {id} did not run: {reason}"))
        }
        _ => Shown::Behaviour(watched),
    }
}

/// Searches the `count` kernels of an ordered list, calling `probe(i)` for each kernel it
/// visits and `on_visit` once it is judged. Visits the first and the last kernel, then
/// halves the interval between the last good and the first bad one, stepping to the
/// nearest untried kernel around one that cannot be judged. `probe` errors (Ctrl-C) end
/// the search.
pub fn search<E>(
    count: usize,
    mut probe: impl FnMut(usize) -> Result<Shown, E>,
    mut on_visit: impl FnMut(&Visit),
) -> Result<Outcome, E> {
    assert!(count >= 2, "a bisection needs two kernels at least");
    let mut visit = |index: usize, reference: Option<&Shown>| -> Result<Visit, E> {
        let shown = probe(index)?;
        let mark = match (&shown, reference) {
            (Shown::Unjudged(_), _) => Mark::Skip,
            (_, None) => Mark::Reference,
            (shown, Some(reference)) if shown == reference => Mark::Good,
            _ => Mark::Bad,
        };
        let visit = Visit { index, shown, mark };
        on_visit(&visit);
        Ok(visit)
    };
    let first = visit(0, None)?;
    if first.mark == Mark::Skip {
        return Ok(Outcome::EndUnjudged { index: 0 });
    }
    let reference = first.shown;
    match visit(count - 1, Some(&reference))?.mark {
        Mark::Skip => return Ok(Outcome::EndUnjudged { index: count - 1 }),
        Mark::Good => return Ok(Outcome::NoChange),
        Mark::Bad | Mark::Reference => {}
    }
    let (mut good, mut bad) = (0, count - 1);
    let mut skipped: Vec<usize> = Vec::new();
    loop {
        let middle = (good + bad) / 2;
        // The untried kernel nearest the middle, so that a skip costs one more visit.
        let next = (good + 1..bad)
            .filter(|i| !skipped.contains(i))
            .min_by_key(|i| i.abs_diff(middle));
        let Some(next) = next else { break };
        match visit(next, Some(&reference))?.mark {
            Mark::Good => good = next,
            Mark::Bad => bad = next,
            Mark::Skip | Mark::Reference => skipped.push(next),
        }
    }
    Ok(if bad == good + 1 {
        Outcome::Found { first_bad: bad }
    } else {
        Outcome::Ambiguous {
            last_good: good,
            first_bad: bad,
        }
    })
}

/// How `shown` differs from `reference`: `large step 2: ok → ENOMEM (12); …`.
pub fn difference(reference: &Shown, shown: &Shown) -> String {
    let (Shown::Behaviour(reference), Shown::Behaviour(shown)) = (reference, shown) else {
        return String::new();
    };
    let mut changes = Vec::new();
    for (case, step, actual) in shown {
        let before = reference
            .iter()
            .find(|(c, s, _)| c == case && s == step)
            .map(|(_, _, a)| a);
        if before != Some(actual) {
            changes.push(format!(
                "{case} step {step}: {} → {}",
                before.map_or("absent".into(), brief),
                brief(actual)
            ));
        }
    }
    for (case, step, actual) in reference {
        if !shown.iter().any(|(c, s, _)| c == case && s == step) {
            changes.push(format!("{case} step {step}: {} → absent", brief(actual)));
        }
    }
    changes.join("; ")
}

/// What a kernel showed, in a line: the actual outcome of one watched step, or how many.
pub fn summary(shown: &Shown) -> String {
    match shown {
        Shown::Unjudged(why) => format!("cannot judge: {why}"),
        Shown::Behaviour(steps) => match steps.as_slice() {
            [(case, step, actual)] => format!("{case} step {step}: {}", brief(actual)),
            steps => format!("{} steps ran", steps.len()),
        },
    }
}

/// An actual outcome cut to a line (values of kilobytes would fill the screen).
fn brief(actual: &Actual) -> String {
    const LIMIT: usize = 60;
    let text = actual.to_string();
    match text.char_indices().nth(LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        case::Expected,
        results::{CaseResult, StepResult, Verdict},
    };

    fn behaviour(code: i32) -> Shown {
        let actual = if code == 0 {
            Actual::Ok
        } else {
            Actual::errno(code)
        };
        Shown::Behaviour(vec![("large".into(), "2".into(), actual)])
    }

    /// Searches a list whose kernels show `shown`, returning the outcome and the visits.
    fn run(shown: &[Shown]) -> (Outcome, Vec<(usize, Mark)>) {
        let mut visits = Vec::new();
        let outcome = search(
            shown.len(),
            |i| Ok::<_, ()>(shown[i].clone()),
            |v| visits.push((v.index, v.mark)),
        )
        .unwrap();
        (outcome, visits)
    }

    #[test]
    fn binary_search_boots_the_ends_then_halves() {
        // 12 kernels, the change at index 5: ends, then 5, 2, 3, 4 (or fewer).
        let list: Vec<Shown> = (0..12)
            .map(|i| behaviour(if i < 5 { 0 } else { libc::ENOMEM }))
            .collect();
        let (outcome, visits) = run(&list);
        assert_eq!(outcome, Outcome::Found { first_bad: 5 });
        assert_eq!(visits[..2], [(0, Mark::Reference), (11, Mark::Bad)]);
        assert!(visits.len() <= 2 + 4, "{visits:?}");
        // Two kernels: just the ends.
        let (outcome, visits) = run(&[behaviour(0), behaviour(libc::ENOMEM)]);
        assert_eq!(outcome, Outcome::Found { first_bad: 1 });
        assert_eq!(visits.len(), 2);
    }

    #[test]
    fn no_change_and_unjudged_ends() {
        let (outcome, visits) = run(&[behaviour(0), behaviour(1), behaviour(0)]);
        assert_eq!(outcome, Outcome::NoChange);
        assert_eq!(visits.len(), 2, "the middle is not booted");
        let down = Shown::Unjudged("panic".into());
        assert_eq!(
            run(&[down.clone(), behaviour(0)]).0,
            Outcome::EndUnjudged { index: 0 }
        );
        assert_eq!(
            run(&[behaviour(0), behaviour(0), down]).0,
            Outcome::EndUnjudged { index: 2 }
        );
    }

    #[test]
    fn unjudged_kernels_are_stepped_around_or_leave_the_edge_open() {
        let down = || Shown::Unjudged("boot failure".into());
        // The middle (2) does not boot; its neighbours decide.
        let list = vec![
            behaviour(0),
            behaviour(0),
            down(),
            behaviour(0),
            behaviour(libc::ENOMEM),
        ];
        let (outcome, visits) = run(&list);
        assert_eq!(outcome, Outcome::Found { first_bad: 4 });
        assert!(visits.contains(&(2, Mark::Skip)), "{visits:?}");
        // The kernel right before the edge does not boot: the edge is one of two.
        let list = vec![behaviour(0), down(), behaviour(libc::ENOMEM)];
        assert_eq!(
            run(&list).0,
            Outcome::Ambiguous {
                last_good: 0,
                first_bad: 2
            }
        );
    }

    #[test]
    fn observation_of_a_kernel_run() {
        let step = |id: &str, actual: Actual| StepResult {
            id: id.into(),
            label: String::new(),
            line: None,
            expected: Expected::Ok,
            reason: None,
            actual,
            verdict: Verdict::Pass,
        };
        let mut run = KernelRun {
            cases: vec![CaseResult {
                name: "large".into(),
                file: "cases/large.yaml".into(),
                outcome: CaseOutcome::Pass,
                duration_ms: 0,
                steps: vec![
                    step("1", Actual::Ok),
                    step("2", Actual::errno(libc::ENOMEM)),
                ],
            }],
            ..KernelRun::without_cases("7.1.13", KernelStatus::Ran)
        };
        assert_eq!(observe(&run, Some("2")), behaviour(libc::ENOMEM));
        assert!(matches!(observe(&run, Some("9")), Shown::Unjudged(_)));
        let all = observe(&run, None);
        assert_eq!(summary(&all), "2 steps ran");
        assert_eq!(
            difference(&Shown::Behaviour(vec![]), &all),
            "large step 1: absent → ok; large step 2: absent → ENOMEM (12)"
        );
        run.cases[0].outcome = CaseOutcome::Skipped {
            reason: "needs 7.2".into(),
        };
        assert_eq!(
            observe(&run, None),
            Shown::Unjudged("large skipped: needs 7.2".into())
        );
        run.status = KernelStatus::Error {
            message: "timed out".into(),
            log_tail: None,
        };
        assert!(matches!(observe(&run, None), Shown::Unjudged(m) if m.contains("timed out")));
    }
}
