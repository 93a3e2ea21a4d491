//! Bisection over an ordered list of kernels: every point where the behaviour of the
//! watched cases (or of one step) changes from one kernel of the list to the next, found by
//! bisecting between visited kernels that differ, so that few kernels boot.
//!
//! Behaviour, not verdicts, is compared, by the rule of [`pinned`]: two kernels differ where
//! a watched step differs in what its case pins; drift (what the case leaves open) is no
//! change. A case whose versioned expectations foresee a change passes on both sides of it,
//! yet the kernel did something else. Each kernel is compared with its neighbours among the
//! kernels visited rather than with the first kernel, so that a list that changes twice, in
//! different steps, shows both changes. The search only needs a probe (boot a kernel, run
//! the cases, read its [`KernelRun`]); the CLI gives it the matrix runner, tests a table.

use std::fmt;

use crate::{
    case::Expected,
    results::{
        Actual, CaseOutcome, KernelRun, KernelStatus, Verdict,
        pinned::{self, Observed},
    },
};

/// One watched step as one kernel ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeen {
    pub case: String,
    pub step: String,
    pub label: String,
    /// The expectation in force on this kernel: with the other side's, it says what the
    /// step pins.
    pub expected: Expected,
    pub actual: Actual,
}

impl StepSeen {
    fn observed(&self) -> Observed<'_> {
        Observed {
            expected: &self.expected,
            actual: &self.actual,
        }
    }

    fn is(&self, other: &StepSeen) -> bool {
        self.case == other.case && self.step == other.step
    }
}

/// What one kernel showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// Every watched step, in run order.
    Behaviour(Vec<StepSeen>),
    /// The kernel cannot be judged (it did not boot, the case was skipped or failed to run,
    /// the step did not run): like `git bisect skip`.
    Unjudged(String),
}

impl Shown {
    fn behaviour(&self) -> Option<&[StepSeen]> {
        match self {
            Shown::Behaviour(steps) => Some(steps),
            Shown::Unjudged(_) => None,
        }
    }
}

/// A watched step that differs between two kernels in what its case pins.
#[derive(Debug, Clone, PartialEq)]
pub struct StepChange {
    pub case: String,
    pub step: String,
    pub label: String,
    /// What each kernel did; `None` where the step is not among its watched steps.
    pub before: Option<Actual>,
    pub after: Option<Actual>,
    /// The pinned parts that differ (`outcome`, `errno`, `value.count`…), as
    /// [`pinned::Difference::pinned`]; empty when one side lacks the step.
    pub parts: Vec<String>,
}

/// The watched steps in which `after` differs from `before`, in `before`'s order, then the
/// steps only `after` has.
pub fn changes(before: &[StepSeen], after: &[StepSeen]) -> Vec<StepChange> {
    let change = |seen: &StepSeen, before: Option<&StepSeen>, after: Option<&StepSeen>| {
        let difference = before
            .zip(after)
            .map(|(b, a)| pinned::compare(b.observed(), a.observed()));
        let parts = match difference {
            Some(difference) if !difference.is_change() => return None,
            Some(difference) => difference.pinned,
            None => Vec::new(),
        };
        Some(StepChange {
            case: seen.case.clone(),
            step: seen.step.clone(),
            label: seen.label.clone(),
            before: before.map(|s| s.actual.clone()),
            after: after.map(|s| s.actual.clone()),
            parts,
        })
    };
    let in_after = |seen: &StepSeen| after.iter().find(|s| s.is(seen));
    let in_before = |seen: &StepSeen| before.iter().find(|s| s.is(seen));
    before
        .iter()
        .filter_map(|b| change(b, Some(b), in_after(b)))
        .chain(
            after
                .iter()
                .filter(|a| in_before(a).is_none())
                .filter_map(|a| change(a, None, Some(a))),
        )
        .collect()
}

/// How a visited kernel compares with another judged kernel visited.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The other kernel's position in the list.
    pub with: usize,
    /// Where they differ, from the earlier kernel of the list to the later: empty when
    /// they behave alike.
    pub changes: Vec<StepChange>,
}

/// What a visited kernel was taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The first kernel, which the search starts from.
    Reference,
    /// Behaves as the nearest judged kernel visited before it in the list.
    Good,
    /// Differs from that kernel: a change lies between them.
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
    /// How it compares with the nearest judged kernels visited so far before and after it
    /// in the list: neither for the first kernel nor for one that cannot be judged, and
    /// only `before` (the first kernel) for the last.
    pub before: Option<Comparison>,
    pub after: Option<Comparison>,
}

impl Visit {
    pub fn mark(&self) -> Mark {
        match (&self.shown, &self.before) {
            (Shown::Unjudged(_), _) => Mark::Skip,
            (_, None) => Mark::Reference,
            (_, Some(before)) if before.changes.is_empty() => Mark::Good,
            _ => Mark::Bad,
        }
    }
}

/// Where behaviour changes: two judged kernels visited with no judged kernel between them,
/// that differ.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePoint {
    /// The last kernel that behaves as those before the change.
    pub last_alike: usize,
    /// The first kernel that differs from it.
    pub first_different: usize,
    pub changes: Vec<StepChange>,
}

impl ChangePoint {
    /// Unjudged kernels lie between the two: the change is after `last_alike`, at one of
    /// the kernels up to `first_different`.
    pub fn is_open(&self) -> bool {
        self.first_different > self.last_alike + 1
    }
}

/// Where the search ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every change point, in list order (one at least).
    Changed(Vec<ChangePoint>),
    /// The last kernel behaves as the first: nothing changed between them, or it changed
    /// back (a change that reverts between two visited kernels is not seen).
    NoChange,
    /// The ends differ, yet every visited kernel behaves as its visited neighbours: the
    /// differences each pair leaves open (drift) add up to one that the ends pin.
    NoChangePoint,
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
                watched.push(StepSeen {
                    case: case.name.clone(),
                    step: s.id.clone(),
                    label: s.label.clone(),
                    expected: s.expected.clone(),
                    actual: s.actual.clone(),
                });
            }
        }
    }
    match (step, watched.first()) {
        (_, None) if run.cases.is_empty() => Shown::Unjudged("no case ran".into()),
        (Some(id), None) => Shown::Unjudged(format!("no step {id} in the results")),
        (
            Some(id),
            Some(StepSeen {
                actual: Actual::NotRun { reason },
                ..
            }),
        ) => Shown::Unjudged(format!("step {id} did not run: {reason}")),
        _ => Shown::Behaviour(watched),
    }
}

/// Searches the `count` kernels of an ordered list, calling `probe(i)` for each kernel it
/// visits (never twice for one) and `on_visit` once it is judged. Visits the first and the
/// last kernel; then, while two judged kernels visited with none judged between them
/// differ and untried kernels lie between them, visits the untried kernel nearest their
/// middle (the leftmost such pair first). `probe` errors (Ctrl-C) end the search.
pub fn search<E>(
    count: usize,
    mut probe: impl FnMut(usize) -> Result<Shown, E>,
    mut on_visit: impl FnMut(&Visit),
) -> Result<Outcome, E> {
    assert!(count >= 2, "a bisection needs two kernels at least");
    // What each kernel showed, by position; `None` until visited.
    let mut seen: Vec<Option<Shown>> = vec![None; count];
    // Changes read in list order, from the earlier kernel to the later.
    let compare_with = |seen: &[Option<Shown>], with: Option<usize>, index, steps: &[StepSeen]| {
        let with = with?;
        let other = behaviour_at(seen, with)?;
        let changes = if with < index {
            changes(other, steps)
        } else {
            changes(steps, other)
        };
        Some(Comparison { with, changes })
    };
    let mut visit = |seen: &mut Vec<Option<Shown>>, index: usize| -> Result<bool, E> {
        let shown = probe(index)?;
        let (before, after) = match shown.behaviour() {
            Some(steps) => {
                let judged = |i: &usize| behaviour_at(seen, *i).is_some();
                let before = (0..index).rev().find(judged);
                let after = (index + 1..count).find(judged);
                (
                    compare_with(seen, before, index, steps),
                    compare_with(seen, after, index, steps),
                )
            }
            None => (None, None),
        };
        let visit = Visit {
            index,
            shown,
            before,
            after,
        };
        on_visit(&visit);
        let judged = visit.mark() != Mark::Skip;
        seen[index] = Some(visit.shown);
        Ok(judged)
    };

    for end in [0, count - 1] {
        if !visit(&mut seen, end)? {
            return Ok(Outcome::EndUnjudged { index: end });
        }
    }
    let differ = |seen: &[Option<Shown>], a: usize, b: usize| match (
        behaviour_at(seen, a),
        behaviour_at(seen, b),
    ) {
        (Some(a), Some(b)) => !changes(a, b).is_empty(),
        _ => false,
    };
    if !differ(&seen, 0, count - 1) {
        return Ok(Outcome::NoChange);
    }
    let judged_pairs = |seen: &[Option<Shown>]| -> Vec<(usize, usize)> {
        let judged: Vec<usize> = (0..count)
            .filter(|&i| behaviour_at(seen, i).is_some())
            .collect();
        judged.windows(2).map(|pair| (pair[0], pair[1])).collect()
    };
    loop {
        let next = judged_pairs(&seen)
            .into_iter()
            .filter(|&(a, b)| differ(&seen, a, b))
            .find_map(|(a, b)| {
                let middle = (a + b) / 2;
                // The untried kernel nearest the middle, so that a skip costs one more visit.
                (a + 1..b)
                    .filter(|&i| seen[i].is_none())
                    .min_by_key(|i| i.abs_diff(middle))
            });
        let Some(next) = next else { break };
        visit(&mut seen, next)?;
    }
    let points: Vec<ChangePoint> = judged_pairs(&seen)
        .into_iter()
        .filter_map(|(a, b)| {
            let changes = changes(behaviour_at(&seen, a)?, behaviour_at(&seen, b)?);
            (!changes.is_empty()).then_some(ChangePoint {
                last_alike: a,
                first_different: b,
                changes,
            })
        })
        .collect();
    Ok(if points.is_empty() {
        Outcome::NoChangePoint
    } else {
        Outcome::Changed(points)
    })
}

/// What the kernel at `i` showed, when it was visited and judged.
fn behaviour_at(seen: &[Option<Shown>], i: usize) -> Option<&[StepSeen]> {
    seen[i].as_ref()?.behaviour()
}

/// Changes in a line: `large step 2: ok → ENOMEM (12), large step 3: …`.
pub fn in_brief(changes: &[StepChange]) -> String {
    changes
        .iter()
        .map(|c| {
            format!(
                "{} step {}: {} → {}",
                c.case,
                c.step,
                outcome(&c.before),
                outcome(&c.after)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A change with its step's label, and the parts that differ unless the outcomes show
/// them whole: `large step 3 (lookup m[s]): value {…} → value {…}; differs in value.count`.
impl fmt::Display for StepChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} step {}", self.case, self.step)?;
        if !self.label.is_empty() {
            write!(f, " ({})", self.label)?;
        }
        write!(f, ": {} → {}", outcome(&self.before), outcome(&self.after))?;
        let evident = match self.parts.as_slice() {
            // A step on one side only, or another kind of outcome.
            [] => true,
            [part] if part == "outcome" => true,
            [part] if part == "errno" => matches!(
                (&self.before, &self.after),
                (Some(Actual::Errno { .. }), Some(Actual::Errno { .. }))
            ),
            _ => false,
        };
        if !evident {
            write!(f, "; differs in {}", self.parts.join(", "))?;
        }
        Ok(())
    }
}

fn outcome(actual: &Option<Actual>) -> String {
    actual
        .as_ref()
        .map_or_else(|| "absent".into(), Actual::to_string)
}

/// What a kernel showed, in a line: the actual outcome of one watched step, or how many.
pub fn summary(shown: &Shown) -> String {
    match shown {
        Shown::Unjudged(why) => format!("cannot judge: {why}"),
        Shown::Behaviour(steps) => match steps.as_slice() {
            [seen] => format!("{} step {}: {}", seen.case, seen.step, seen.actual),
            steps => format!("{} steps ran", steps.len()),
        },
    }
}

/// What `git bisect run` is told of one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum GitVerdict {
    Good,
    Bad,
    /// The kernel cannot be judged (no boot, a skip, an error, no such step).
    Skip,
}

impl GitVerdict {
    /// `git bisect run`'s exit code for the verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Good => 0,
            Self::Bad => 1,
            Self::Skip => 125,
        }
    }
}

/// The verdict on one kernel run, and why: bad where a watched step diverged from its
/// expectation, or did other than `good` when one is given.
pub fn git_verdict(
    run: &KernelRun,
    step: Option<&str>,
    good: Option<&Expected>,
) -> (GitVerdict, String) {
    if let KernelStatus::Error { message, .. } | KernelStatus::Skipped { reason: message } =
        &run.status
    {
        return (GitVerdict::Skip, message.clone());
    }
    let mut diverged = Vec::new();
    for case in &run.cases {
        match &case.outcome {
            CaseOutcome::Skipped { reason } => {
                return (GitVerdict::Skip, format!("{} skipped: {reason}", case.name));
            }
            CaseOutcome::Error { message } => {
                return (
                    GitVerdict::Skip,
                    format!("{} could not run: {message}", case.name),
                );
            }
            CaseOutcome::Pass | CaseOutcome::Diverged => {}
        }
        for s in case
            .steps
            .iter()
            .filter(|s| step.is_none_or(|id| id == s.id))
        {
            if let Actual::NotRun { reason } = &s.actual
                && step.is_some()
            {
                return (
                    GitVerdict::Skip,
                    format!("step {} did not run: {reason}", s.id),
                );
            }
            let bad = match good {
                Some(good) => !s.actual.satisfies(good),
                None => s.verdict == Verdict::Diverged,
            };
            if bad {
                diverged.push(format!("{} step {}: {}", case.name, s.id, s.actual));
            }
        }
    }
    if let Some(id) = step
        && !run.cases.iter().flat_map(|c| &c.steps).any(|s| s.id == id)
    {
        return (GitVerdict::Skip, format!("no step {id} in the results"));
    }
    if diverged.is_empty() {
        (GitVerdict::Good, "as expected".into())
    } else {
        (GitVerdict::Bad, diverged.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn run_with(actual: Actual, expected: Expected) -> KernelRun {
        KernelRun {
            release: Some("7.1.0-rc3".into()),
            cases: vec![crate::results::CaseResult {
                name: "large".into(),
                file: "cases/large.yaml".into(),
                outcome: CaseOutcome::Pass,
                duration_ms: 0,
                steps: vec![crate::results::StepResult::judged(
                    "2", "", expected, actual,
                )],
            }],
            ..KernelRun::without_cases("bisect", KernelStatus::Ran)
        }
    }

    #[test]
    fn git_bisect_verdicts() {
        let enomem = || Actual::errno(libc::ENOMEM);
        // By the expectation in force.
        assert_eq!(
            git_verdict(&run_with(Actual::Ok, Expected::Ok), None, None).0,
            GitVerdict::Good
        );
        assert_eq!(
            git_verdict(&run_with(enomem(), Expected::Ok), None, None).0,
            GitVerdict::Bad
        );
        // By --good, whatever the case expects of the version.
        let ok = Expected::Ok;
        let expects_enomem = || Expected::Errno("ENOMEM".into());
        assert_eq!(
            git_verdict(
                &run_with(Actual::Ok, expects_enomem()),
                Some("2"),
                Some(&ok)
            )
            .0,
            GitVerdict::Good
        );
        assert_eq!(
            git_verdict(&run_with(enomem(), expects_enomem()), Some("2"), Some(&ok)).0,
            GitVerdict::Bad
        );
        // Nothing to judge by: skip the commit.
        assert_eq!(
            git_verdict(&run_with(Actual::Ok, ok.clone()), Some("9"), None).0,
            GitVerdict::Skip
        );
        let mut failed = run_with(Actual::Ok, ok);
        failed.status = KernelStatus::Error {
            message: "boot failed".into(),
            log_tail: None,
        };
        assert_eq!(
            git_verdict(&failed, None, None),
            (GitVerdict::Skip, "boot failed".into())
        );
    }
    use crate::results::{CaseResult, StepResult, Verdict};

    fn seen(step: &str, expected: Expected, actual: Actual) -> StepSeen {
        StepSeen {
            case: "large".into(),
            step: step.into(),
            label: format!("update m{step}[s]"),
            expected,
            actual,
        }
    }

    /// An update step that returned `code` (0: ok), and expected to.
    fn update(step: &str, code: i32) -> StepSeen {
        if code == 0 {
            seen(step, Expected::Ok, Actual::Ok)
        } else {
            let actual = Actual::errno(code);
            let Actual::Errno { name, .. } = &actual else {
                unreachable!()
            };
            seen(step, Expected::Errno(name.clone()), actual)
        }
    }

    fn behaviour(code: i32) -> Shown {
        Shown::Behaviour(vec![update("2", code)])
    }

    /// Searches a list whose kernels show `shown`, returning the outcome and the visits;
    /// fails if a kernel is probed twice.
    fn run(shown: &[Shown]) -> (Outcome, Vec<(usize, Mark)>) {
        let mut visits = Vec::new();
        let mut probed: HashMap<usize, usize> = HashMap::new();
        let outcome = search(
            shown.len(),
            |i| {
                *probed.entry(i).or_default() += 1;
                Ok::<_, ()>(shown[i].clone())
            },
            |v| visits.push((v.index, v.mark())),
        )
        .unwrap();
        assert!(probed.values().all(|&n| n == 1), "{probed:?}");
        (outcome, visits)
    }

    fn points(outcome: &Outcome) -> Vec<(usize, usize)> {
        match outcome {
            Outcome::Changed(points) => points
                .iter()
                .map(|p| (p.last_alike, p.first_different))
                .collect(),
            other => panic!("no change point: {other:?}"),
        }
    }

    #[test]
    fn binary_search_boots_the_ends_then_halves() {
        // 12 kernels, the change at index 5: ends, then 5, 2, 3, 4 (or fewer).
        let list: Vec<Shown> = (0..12)
            .map(|i| behaviour(if i < 5 { 0 } else { libc::ENOMEM }))
            .collect();
        let (outcome, visits) = run(&list);
        assert_eq!(points(&outcome), [(4, 5)]);
        assert_eq!(visits[..2], [(0, Mark::Reference), (11, Mark::Bad)]);
        assert!(visits.len() <= 2 + 4, "{visits:?}");
        // Two kernels: just the ends.
        let (outcome, visits) = run(&[behaviour(0), behaviour(libc::ENOMEM)]);
        assert_eq!(points(&outcome), [(0, 1)]);
        assert_eq!(visits.len(), 2);
    }

    #[test]
    fn every_change_point_with_its_steps() {
        // large-value-storage over 6.1, 6.12, 6.19, 7.0, 7.1: step 3 is refused until the
        // optmem_max default grows (6.8), steps 2 and 3 are refused again from 7.1. 7.1
        // differs from 6.1 in step 2 only, so comparing with the first kernel finds one.
        let kernel = |step2: i32, step3: i32| {
            Shown::Behaviour(vec![update("1", 0), update("2", step2), update("3", step3)])
        };
        let enomem = libc::ENOMEM;
        let list = [
            kernel(0, enomem),
            kernel(0, 0),
            kernel(0, 0),
            kernel(0, 0),
            kernel(enomem, enomem),
        ];
        let (outcome, visits) = run(&list);
        assert_eq!(
            visits,
            [
                (0, Mark::Reference),
                (4, Mark::Bad),
                (2, Mark::Bad),
                (1, Mark::Bad),
                (3, Mark::Good)
            ]
        );
        let Outcome::Changed(points) = outcome else {
            panic!("{outcome:?}")
        };
        let steps = |p: &ChangePoint| -> Vec<String> {
            p.changes.iter().map(ToString::to_string).collect()
        };
        assert_eq!((points[0].last_alike, points[0].first_different), (0, 1));
        assert_eq!(
            steps(&points[0]),
            ["large step 3 (update m3[s]): ENOMEM (12) → ok"]
        );
        assert_eq!((points[1].last_alike, points[1].first_different), (3, 4));
        assert_eq!(
            steps(&points[1]),
            [
                "large step 2 (update m2[s]): ok → ENOMEM (12)",
                "large step 3 (update m3[s]): ok → ENOMEM (12)"
            ]
        );
        assert!(points.iter().all(|p| !p.is_open()));
    }

    #[test]
    fn a_kernel_is_visited_once_even_when_each_differs_from_the_next() {
        let list: Vec<Shown> = (0..9).map(behaviour).collect();
        let (outcome, visits) = run(&list);
        assert_eq!(visits.len(), 9);
        assert_eq!(
            points(&outcome),
            (0..8).map(|i| (i, i + 1)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn drift_is_no_change() {
        // A count the case bounds (`>= 2`) and a field it leaves open differ on every
        // kernel; step 2 changes once.
        let expected = Expected::Value(json!({ "count": ">= 2", "lock": "any" }));
        let kernel = |i: i32| {
            let actual = Actual::Value {
                value: json!({ "count": 2 + i, "lock": i % 2 }),
            };
            Shown::Behaviour(vec![
                seen("1", expected.clone(), actual),
                update("2", if i < 3 { 0 } else { libc::ENOMEM }),
            ])
        };
        let list: Vec<Shown> = (0..6).map(kernel).collect();
        let (outcome, _) = run(&list);
        let Outcome::Changed(points) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!((points[0].last_alike, points[0].first_different), (2, 3));
        assert_eq!(points.len(), 1);
        assert_eq!(
            in_brief(&points[0].changes),
            "large step 2: ok → ENOMEM (12)"
        );
        // Drift alone between the ends: nothing to search.
        let list = [kernel(0), kernel(1), kernel(2)];
        let (outcome, visits) = run(&list);
        assert_eq!(outcome, Outcome::NoChange);
        assert_eq!(visits.len(), 2);
    }

    #[test]
    fn a_pinned_literal_changed_a_part_at_a_time_is_no_point() {
        // 6.1 pins `tag`, the later kernels leave it open: neighbours drift, the ends differ.
        let pins = Expected::Value(json!({ "tag": 1 }));
        let leaves_open = Expected::Value(json!({ "tag": "any" }));
        let tag = |n: i32| Actual::Value {
            value: json!({ "tag": n }),
        };
        let list = [
            Shown::Behaviour(vec![seen("1", pins, tag(1))]),
            Shown::Behaviour(vec![seen("1", leaves_open.clone(), tag(1))]),
            Shown::Behaviour(vec![seen("1", leaves_open, tag(2))]),
        ];
        assert_eq!(run(&list).0, Outcome::NoChangePoint);
    }

    #[test]
    fn a_step_on_one_side_only_is_a_change() {
        let with = Shown::Behaviour(vec![update("1", 0), update("2", 0)]);
        let without = Shown::Behaviour(vec![update("1", 0)]);
        let Outcome::Changed(points) = run(&[with, without]).0 else {
            panic!()
        };
        assert_eq!(
            points[0].changes[0].to_string(),
            "large step 2 (update m2[s]): ok → absent"
        );
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
    fn unjudged_kernels_are_stepped_around_or_leave_the_point_open() {
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
        assert_eq!(points(&outcome), [(3, 4)]);
        assert!(visits.contains(&(2, Mark::Skip)), "{visits:?}");
        // The kernel right before the change does not boot: the change is at one of two.
        let list = vec![
            behaviour(0),
            behaviour(0),
            down(),
            behaviour(libc::ENOMEM),
            behaviour(libc::ENOMEM),
        ];
        let (outcome, _) = run(&list);
        let Outcome::Changed(points) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!((points[0].last_alike, points[0].first_different), (1, 3));
        assert!(points[0].is_open());
        assert_eq!(
            in_brief(&points[0].changes),
            "large step 2: ok → ENOMEM (12)"
        );
    }

    #[test]
    fn a_visit_compares_with_its_visited_neighbours() {
        let list = [behaviour(0), behaviour(0), behaviour(libc::ENOMEM)];
        let mut visits = Vec::new();
        search(
            list.len(),
            |i| Ok::<_, ()>(list[i].clone()),
            |v| visits.push(v.clone()),
        )
        .unwrap();
        let middle = &visits[2];
        assert_eq!(middle.index, 1);
        assert_eq!(middle.mark(), Mark::Good);
        assert_eq!(
            middle.before.as_ref().map(|c| (c.with, c.changes.len())),
            Some((0, 0))
        );
        let after = middle.after.as_ref().unwrap();
        assert_eq!(after.with, 2);
        assert_eq!(in_brief(&after.changes), "large step 2: ok → ENOMEM (12)");
    }

    #[test]
    fn parts_are_shown_when_the_outcomes_do_not_show_them() {
        let change = |before: Actual, after: Actual, parts: &[&str]| StepChange {
            case: "c".into(),
            step: "1".into(),
            label: String::new(),
            before: Some(before),
            after: Some(after),
            parts: parts.iter().map(|p| p.to_string()).collect(),
        };
        assert_eq!(
            change(
                Actual::errno(libc::EINVAL),
                Actual::errno(libc::EACCES),
                &["errno"]
            )
            .to_string(),
            "c step 1: EINVAL (22) → EACCES (13)"
        );
        let value = |n: i32| Actual::Value {
            value: json!({ "count": n }),
        };
        assert_eq!(
            change(value(1), value(2), &["value.count"]).to_string(),
            r#"c step 1: value {"count":1} → value {"count":2}; differs in value.count"#
        );
    }

    #[test]
    fn observation_of_a_kernel_run() {
        let step = |id: &str, actual: Actual| StepResult {
            id: id.into(),
            label: format!("update m{id}[s]"),
            line: None,
            expected: Expected::Ok,
            reason: None,
            since: None,
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
        assert_eq!(
            observe(&run, Some("2")),
            Shown::Behaviour(vec![seen("2", Expected::Ok, Actual::errno(libc::ENOMEM))])
        );
        assert!(matches!(observe(&run, Some("9")), Shown::Unjudged(_)));
        let all = observe(&run, None);
        assert_eq!(summary(&all), "2 steps ran");
        assert_eq!(
            in_brief(&changes(&[], all.behaviour().unwrap())),
            "large step 1: absent → ok, large step 2: absent → ENOMEM (12)"
        );
        run.cases[0].steps[1].actual = Actual::NotRun {
            reason: "no BTF".into(),
        };
        assert_eq!(
            observe(&run, Some("2")),
            Shown::Unjudged("step 2 did not run: no BTF".into())
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
