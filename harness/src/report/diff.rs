//! What changed between two runs: per pair of kernels (the same name in two results files,
//! or two named kernels), every case whose steps changed behaviour, by the rule every view
//! uses ([`crate::results::pinned`]): a difference in what the case pins. Differences in
//! what it leaves open are drift, counted apart; a verdict that changed while the outcome
//! did not (the expectations were edited) is said, not counted. What only one side has is
//! counted, and listed with `all`. For triage: "what did this kernel update (or this
//! harness change) change?".

use std::{
    collections::HashMap,
    io::{self, Write},
};

use owo_colors::Style;
use serde::Serialize;

use super::{
    edges::{iteration_runs, run_name},
    kernel_label, paint, shorten,
};
use crate::{
    case::Expected,
    results::{
        Actual, CaseOutcome, CaseResult, KernelRun, KernelStatus, RunResults, StepResult, Verdict,
        pinned::{self, Difference, Observed},
    },
    version::KernelVersion,
};

/// Everything that differs between two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDiff {
    pub kernels: Vec<KernelDiff>,
    /// Kernels only the old run has (by name).
    pub only_old: Vec<String>,
    /// Kernels only the new run has (by name).
    pub only_new: Vec<String>,
}

/// One compared pair of kernels; the lists hold only what differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelDiff {
    pub old: KernelSide,
    pub new: KernelSide,
    /// Both statuses, when they differ (a kernel that failed to boot on one side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<(KernelStatus, KernelStatus)>,
    pub cases: Vec<CaseDiff>,
    pub cases_only_old: Vec<String>,
    pub cases_only_new: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelSide {
    pub kernel: String,
    pub version: Option<KernelVersion>,
}

/// A case present on both sides whose steps or outcome differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseDiff {
    pub case: String,
    /// Both outcomes, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<(CaseOutcome, CaseOutcome)>,
    /// Steps whose behaviour changed (pinned), in run order.
    pub steps: Vec<StepDiff>,
    /// Steps that differ only in what the case leaves open.
    pub drift: Vec<StepDiff>,
    /// Steps whose verdict changed while their outcome did not: the expectations differ.
    pub verdict_only: Vec<StepDiff>,
    /// Steps only one side ran.
    pub steps_only_old: Vec<String>,
    pub steps_only_new: Vec<String>,
}

/// A step both sides ran, and how it differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDiff {
    pub id: String,
    pub label: String,
    pub old: StepSide,
    pub new: StepSide,
    pub difference: Difference,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSide {
    pub actual: Actual,
    pub verdict: Verdict,
    pub expected: Expected,
}

/// How much changed, for the last line and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub kernels_compared: usize,
    pub kernels_changed: usize,
    pub kernels_one_side: usize,
    pub cases_changed: usize,
    pub steps_changed: usize,
    pub steps_drifted: usize,
    pub verdicts_only: usize,
    /// Cases (and steps) only one side has, in the kernels compared.
    pub cases_one_side: usize,
    pub steps_one_side: usize,
}

impl Summary {
    /// Whether the runs differ in behaviour; with `all`, what only one side has counts too.
    pub fn anything_changed(&self, all: bool) -> bool {
        self.kernels_changed > 0
            || (all && (self.kernels_one_side + self.cases_one_side + self.steps_one_side) > 0)
    }
}

/// Compares kernels of the same name, in the new run's order.
pub fn by_name(old: &RunResults, new: &RunResults) -> RunDiff {
    let names = |r: &RunResults, other: &RunResults| -> Vec<String> {
        r.kernels
            .iter()
            .filter(|k| !other.kernels.iter().any(|o| o.kernel == k.kernel))
            .map(|k| k.kernel.clone())
            .collect()
    };
    let kernels = new
        .kernels
        .iter()
        .filter_map(|n| {
            let o = old.kernels.iter().find(|o| o.kernel == n.kernel)?;
            Some(kernel_pair(o, n))
        })
        .collect();
    RunDiff {
        kernels,
        only_old: names(old, new),
        only_new: names(new, old),
    }
}

/// Compares two given kernels (e.g. 7.0 and 7.1 of one run).
pub fn pair(old: &KernelRun, new: &KernelRun) -> RunDiff {
    RunDiff {
        kernels: vec![kernel_pair(old, new)],
        only_old: Vec::new(),
        only_new: Vec::new(),
    }
}

fn kernel_pair(old: &KernelRun, new: &KernelRun) -> KernelDiff {
    let side = |k: &KernelRun| KernelSide {
        kernel: k.kernel.clone(),
        version: k.version,
    };
    fn by_name(k: &KernelRun) -> HashMap<&str, &CaseResult> {
        k.cases.iter().map(|c| (c.name.as_str(), c)).collect()
    }
    let (old_cases, new_cases) = (by_name(old), by_name(new));
    let only = |a: &KernelRun, b: &HashMap<&str, &CaseResult>| -> Vec<String> {
        a.cases
            .iter()
            .filter(|c| !b.contains_key(c.name.as_str()))
            .map(|c| c.name.clone())
            .collect()
    };
    KernelDiff {
        old: side(old),
        new: side(new),
        status: (old.status != new.status).then(|| (old.status.clone(), new.status.clone())),
        cases: new
            .cases
            .iter()
            .filter_map(|n| case_diff(old_cases.get(n.name.as_str())?, n))
            .collect(),
        cases_only_old: only(old, &new_cases),
        cases_only_new: only(new, &old_cases),
    }
}

fn case_diff(old: &CaseResult, new: &CaseResult) -> Option<CaseDiff> {
    let side = |s: &StepResult| StepSide {
        actual: s.actual.clone(),
        verdict: s.verdict,
        expected: s.expected.clone(),
    };
    let mut diff = CaseDiff {
        case: new.name.clone(),
        // Two skips (or errors) of other reasons are no difference in the case.
        outcome: (old.outcome.label() != new.outcome.label())
            .then(|| (old.outcome.clone(), new.outcome.clone())),
        steps: Vec::new(),
        drift: Vec::new(),
        verdict_only: Vec::new(),
        steps_only_old: Vec::new(),
        steps_only_new: Vec::new(),
    };
    fn by_id(c: &CaseResult) -> HashMap<&str, &StepResult> {
        c.steps.iter().map(|s| (s.id.as_str(), s)).collect()
    }
    let (old_steps, new_steps) = (by_id(old), by_id(new));
    for n in &new.steps {
        let Some(&o) = old_steps.get(n.id.as_str()) else {
            diff.steps_only_new.push(n.id.clone());
            continue;
        };
        let difference = pinned::compare(observed(o), observed(n));
        let step = StepDiff {
            id: n.id.clone(),
            label: n.label.clone(),
            old: side(o),
            new: side(n),
            difference,
        };
        if step.difference.is_change() {
            diff.steps.push(step);
        } else if step.difference.is_drift() {
            diff.drift.push(step);
        } else if o.verdict != n.verdict {
            diff.verdict_only.push(step);
        }
    }
    diff.steps_only_old = old
        .steps
        .iter()
        .filter(|o| !new_steps.contains_key(o.id.as_str()))
        .map(|o| o.id.clone())
        .collect();
    let differs = diff.outcome.is_some()
        || !(diff.steps.is_empty()
            && diff.drift.is_empty()
            && diff.verdict_only.is_empty()
            && diff.steps_only_old.is_empty()
            && diff.steps_only_new.is_empty());
    differs.then_some(diff)
}

fn observed(step: &StepResult) -> Observed<'_> {
    Observed {
        expected: &step.expected,
        actual: &step.actual,
    }
}

impl CaseDiff {
    /// The case behaves otherwise: a step changed, or it ran on one side only (skipped or
    /// failed on the other). Pass against diverged with no step changed is the expectations'
    /// doing, not the kernel's.
    pub fn changed(&self) -> bool {
        let ran = |o: &CaseOutcome| matches!(o, CaseOutcome::Pass | CaseOutcome::Diverged);
        !self.steps.is_empty()
            || self
                .outcome
                .as_ref()
                .is_some_and(|(old, new)| ran(old) != ran(new))
    }
}

impl KernelDiff {
    pub fn changed(&self) -> bool {
        self.status.is_some() || self.cases.iter().any(CaseDiff::changed)
    }

    /// `7.1`, or `7.0 (7.0.13) → 7.1 (7.1.13)` when two kernels are compared.
    fn title(&self) -> String {
        let old = kernel_label(&self.old.kernel, self.old.version);
        let new = kernel_label(&self.new.kernel, self.new.version);
        if old == new {
            new
        } else {
            format!("{old} → {new}")
        }
    }
}

impl RunDiff {
    pub fn summary(&self) -> Summary {
        let cases = || self.kernels.iter().flat_map(|k| &k.cases);
        Summary {
            kernels_compared: self.kernels.len(),
            kernels_changed: self.kernels.iter().filter(|k| k.changed()).count(),
            kernels_one_side: self.only_old.len() + self.only_new.len(),
            cases_changed: cases().filter(|c| c.changed()).count(),
            steps_changed: cases().map(|c| c.steps.len()).sum(),
            steps_drifted: cases().map(|c| c.drift.len()).sum(),
            verdicts_only: cases().map(|c| c.verdict_only.len()).sum(),
            cases_one_side: self
                .kernels
                .iter()
                .map(|k| k.cases_only_old.len() + k.cases_only_new.len())
                .sum(),
            steps_one_side: cases()
                .map(|c| c.steps_only_old.len() + c.steps_only_new.len())
                .sum(),
        }
    }
}

fn status_text(status: &KernelStatus) -> String {
    match status {
        KernelStatus::Ran => "ran".into(),
        KernelStatus::Skipped { reason } => format!("skipped ({reason})"),
        KernelStatus::Error { message, .. } => format!("error ({message})"),
    }
}

fn outcome_text(outcome: &CaseOutcome) -> String {
    match outcome {
        CaseOutcome::Skipped { reason } => format!("skip ({reason})"),
        CaseOutcome::Error { message } => format!("error ({message})"),
        other => other.label().to_string(),
    }
}

/// The longest outcome printed in full.
const MAX_OUTCOME_CHARS: usize = 200;

fn outcome(side: &StepSide) -> String {
    let actual = shorten(&side.actual.to_string(), MAX_OUTCOME_CHARS);
    match side.verdict {
        Verdict::Diverged => format!(
            "{actual} (DIVERGED, expected {})",
            shorten(&side.expected.to_string(), MAX_OUTCOME_CHARS)
        ),
        Verdict::Pass => actual,
    }
}

/// Step lines, consecutive iterations of a repeated step that differ alike as one:
/// `step 1.*.2, iterations 1–9 (…): ok → ENOMEM (12)`, with the fields that differ.
fn write_steps(
    out: &mut impl Write,
    steps: &[StepDiff],
    parts: fn(&Difference) -> &[String],
) -> io::Result<()> {
    let runs = iteration_runs(
        steps,
        |s| s.id.as_str(),
        |a, b| a.old == b.old && a.new == b.new && a.difference == b.difference,
    );
    for (first, last) in runs {
        let (a, b) = (&steps[first], &steps[last]);
        let label = if first == last {
            a.label.clone()
        } else {
            format!("{} … {}", a.label, b.label)
        };
        let parts = parts(&a.difference);
        let fields = match parts {
            [] => String::new(),
            [only] if only == "outcome" || only == "errno" => String::new(),
            parts => format!(" in {}", parts.join(", ")),
        };
        writeln!(
            out,
            "    step {} ({label}){fields}: {} → {}",
            run_name(&a.id, &b.id),
            outcome(&a.old),
            outcome(&a.new)
        )?;
    }
    Ok(())
}

/// `3 cases only in a.json` (with `all`, the names).
fn write_one_side(
    out: &mut impl Write,
    indent: &str,
    what: &str,
    names: &[String],
    side: &str,
    all: bool,
) -> io::Result<()> {
    match (names, all) {
        ([], _) => Ok(()),
        (names, true) => names
            .iter()
            .try_for_each(|name| writeln!(out, "{indent}{name}: only in {side}")),
        (names, false) => writeln!(
            out,
            "{indent}{} {what} only in {side} (not compared; --all lists them)",
            names.len()
        ),
    }
}

/// The human view: per changed kernel its changed cases and steps, drift and verdict-only
/// changes said apart, then what one side lacks, then the summary line. Unchanged kernels
/// are one line each.
pub fn write(
    out: &mut impl Write,
    diff: &RunDiff,
    old_name: &str,
    new_name: &str,
    all: bool,
    color: bool,
) -> io::Result<()> {
    let bold = Style::new().bold();
    for kernel in &diff.kernels {
        let one_side = kernel.cases_only_old.len() + kernel.cases_only_new.len();
        if kernel.status.is_none() && kernel.cases.is_empty() && one_side == 0 {
            writeln!(out, "{}: unchanged", kernel.title())?;
            continue;
        }
        let title = if kernel.changed() {
            format!("{}:", kernel.title())
        } else {
            format!("{}: no behaviour changed", kernel.title())
        };
        writeln!(out, "{}", paint(&title, bold, color))?;
        if let Some((old, new)) = &kernel.status {
            writeln!(out, "  kernel: {} → {}", status_text(old), status_text(new))?;
        }
        for case in &kernel.cases {
            match &case.outcome {
                Some((old, new)) => writeln!(
                    out,
                    "  {}: {} → {}",
                    case.case,
                    outcome_text(old),
                    outcome_text(new)
                )?,
                None => writeln!(out, "  {}:", case.case)?,
            }
            write_steps(out, &case.steps, |d| &d.pinned)?;
            if !case.drift.is_empty() {
                let mut parts: Vec<&str> = case
                    .drift
                    .iter()
                    .flat_map(|s| s.difference.drift.iter().map(String::as_str))
                    .collect();
                parts.sort_unstable();
                parts.dedup();
                writeln!(
                    out,
                    "    drift (not a change): {} step(s) differ in what the case leaves open: {}",
                    case.drift.len(),
                    parts.join(", ")
                )?;
            }
            if !case.verdict_only.is_empty() {
                let ids: Vec<&str> = case.verdict_only.iter().map(|s| s.id.as_str()).collect();
                writeln!(
                    out,
                    "    verdict only: step(s) {} did the same, judged by other expectations",
                    ids.join(", ")
                )?;
            }
            write_one_side(out, "    ", "step(s)", &case.steps_only_old, old_name, all)?;
            write_one_side(out, "    ", "step(s)", &case.steps_only_new, new_name, all)?;
        }
        write_one_side(out, "  ", "case(s)", &kernel.cases_only_old, old_name, all)?;
        write_one_side(out, "  ", "case(s)", &kernel.cases_only_new, new_name, all)?;
    }
    write_one_side(out, "", "kernel(s)", &diff.only_old, old_name, all)?;
    write_one_side(out, "", "kernel(s)", &diff.only_new, new_name, all)?;
    let s = diff.summary();
    let line = format!(
        "{} kernel pair(s) compared, {} changed ({} case(s), {} step(s)); {} step(s) drifted, {} verdict(s) changed alone; {} kernel(s), {} case(s) and {} step(s) on one side only",
        s.kernels_compared,
        s.kernels_changed,
        s.cases_changed,
        s.steps_changed,
        s.steps_drifted,
        s.verdicts_only,
        s.kernels_one_side,
        s.cases_one_side,
        s.steps_one_side
    );
    writeln!(out, "{}", paint(&line, bold, color))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::StepResult;

    fn step(id: &str, expected: Expected, actual: Actual) -> StepResult {
        StepResult::judged(id, format!("step {id}"), expected, actual)
    }

    fn case(name: &str, steps: Vec<StepResult>) -> CaseResult {
        CaseResult {
            name: name.into(),
            file: format!("cases/{name}.yaml"),
            outcome: CaseOutcome::of_steps(&steps),
            duration_ms: 1,
            steps,
        }
    }

    fn kernel(name: &str, version: &str, cases: Vec<CaseResult>) -> KernelRun {
        KernelRun {
            duration_ms: 10,
            ..KernelRun::ran(name, version.parse().expect("a version"), cases)
        }
    }

    fn large(actual: Actual) -> CaseResult {
        case(
            "large",
            vec![
                step("1", Expected::Ok, Actual::Ok),
                step("2", Expected::Ok, actual),
            ],
        )
    }

    #[test]
    fn identical_runs_differ_in_nothing_but_durations() {
        let old = RunResults::new(vec![kernel("7.1", "7.1.13", vec![large(Actual::Ok)])]);
        let mut new = old.clone();
        new.kernels[0].duration_ms = 99;
        new.kernels[0].cases[0].duration_ms = 7;
        let diff = by_name(&old, &new);
        assert!(!diff.summary().anything_changed(true), "{diff:?}");
        let mut text = Vec::new();
        write(&mut text, &diff, "a.json", "b.json", false, false).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "7.1 (7.1.13): unchanged
1 kernel pair(s) compared, 0 changed (0 case(s), 0 step(s)); 0 step(s) drifted, 0 verdict(s) changed alone; 0 kernel(s), 0 case(s) and 0 step(s) on one side only\n"
        );
    }

    #[test]
    fn a_changed_step_is_listed_and_what_one_side_has_is_counted_unless_all() {
        let old = RunResults::new(vec![
            kernel(
                "7.1",
                "7.1.12",
                vec![large(Actual::Ok), case("gone", vec![])],
            ),
            kernel("5.10", "5.10.223", vec![]),
        ]);
        let new = RunResults::new(vec![
            kernel(
                "7.1",
                "7.1.13",
                vec![large(Actual::errno(libc::ENOMEM)), case("added", vec![])],
            ),
            kernel("7.3", "7.3.4", vec![]),
        ]);
        let diff = by_name(&old, &new);
        let s = diff.summary();
        assert_eq!(
            (s.kernels_compared, s.kernels_changed, s.kernels_one_side),
            (1, 1, 2)
        );
        assert_eq!(
            (s.cases_changed, s.steps_changed, s.cases_one_side),
            (1, 1, 2)
        );
        let k = &diff.kernels[0];
        assert_eq!(k.cases[0].case, "large");
        assert_eq!(
            k.cases[0].outcome,
            Some((CaseOutcome::Pass, CaseOutcome::Diverged))
        );
        assert_eq!(k.cases[0].steps.len(), 1, "step 1 did not change");
        let text = |all: bool| {
            let mut text = Vec::new();
            write(&mut text, &diff, "a.json", "b.json", all, false).unwrap();
            String::from_utf8(text).unwrap()
        };
        assert_eq!(
            text(false),
            "7.1 (7.1.12) → 7.1 (7.1.13):\n  \
             large: pass → DIVERGED\n    \
             step 2 (step 2): ok → ENOMEM (12) (DIVERGED, expected ok)\n  \
             1 case(s) only in a.json (not compared; --all lists them)\n  \
             1 case(s) only in b.json (not compared; --all lists them)\n\
             1 kernel(s) only in a.json (not compared; --all lists them)\n\
             1 kernel(s) only in b.json (not compared; --all lists them)\n\
             1 kernel pair(s) compared, 1 changed (1 case(s), 1 step(s)); 0 step(s) drifted, 0 verdict(s) changed alone; 2 kernel(s), 2 case(s) and 0 step(s) on one side only\n"
        );
        assert!(text(true).contains("  gone: only in a.json\n  added: only in b.json\n"));
        // A run of fewer cases against a whole one: only what both have is compared.
        let few = RunResults::new(vec![kernel("7.1", "7.1.12", vec![large(Actual::Ok)])]);
        let whole = RunResults::new(vec![kernel(
            "7.1",
            "7.1.12",
            vec![large(Actual::Ok), case("gone", vec![])],
        )]);
        let s = by_name(&whole, &few).summary();
        assert!(
            !s.anything_changed(false) && s.anything_changed(true),
            "{s:?}"
        );
    }

    #[test]
    fn drift_and_verdict_only_differences_are_said_but_change_nothing() {
        let counts = |ok: u64| Actual::Counts {
            counts: [("update".to_string(), [("ok".to_string(), ok)].into())].into(),
        };
        let expected = Expected::Counts(
            serde_json::from_value(serde_json::json!({ "update": { "ok": "> 0" } })).unwrap(),
        );
        let old = kernel(
            "7.0",
            "7.0.13",
            vec![case(
                "stress",
                vec![step("1", expected.clone(), counts(900))],
            )],
        );
        let new = kernel(
            "7.1",
            "7.1.13",
            vec![case("stress", vec![step("1", expected, counts(950))])],
        );
        let diff = pair(&old, &new);
        let s = diff.summary();
        assert!(!s.anything_changed(true), "{diff:?}");
        assert_eq!(s.steps_drifted, 1);
        let mut text = Vec::new();
        write(&mut text, &diff, "a", "b", false, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("drift (not a change): 1 step(s) differ in what the case leaves open: counts.update.ok"),
            "{text}"
        );
        // The same outcome judged by other expectations.
        let old = kernel("7.0", "7.0.13", vec![large(Actual::Ok)]);
        let mut new = old.clone();
        new.cases[0].steps[1].expected = Expected::Errno("ENOMEM".into());
        new.cases[0].steps[1].verdict = Verdict::Diverged;
        let s = pair(&old, &new).summary();
        assert_eq!((s.verdicts_only, s.steps_changed), (1, 0));
        assert!(!s.anything_changed(true));
    }

    #[test]
    fn iterations_that_changed_alike_are_one_line_naming_the_fields() {
        let sweep = |actual: &dyn Fn(u32) -> Actual| {
            (1..=9)
                .map(|i| step(&format!("1.{i}.2"), Expected::Ok, actual(i)))
                .chain([step(
                    "2",
                    Expected::Value(serde_json::json!({ "a": 1, "b": "any" })),
                    Actual::Value {
                        value: serde_json::json!({ "a": 1, "b": 2 }),
                    },
                )])
                .collect::<Vec<_>>()
        };
        let old = kernel("7.0", "7.0.13", vec![case("edge", sweep(&|_| Actual::Ok))]);
        let mut new_steps = sweep(&|_| Actual::errno(libc::ENOMEM));
        new_steps[9].actual = Actual::Value {
            value: serde_json::json!({ "a": 7, "b": 3 }),
        };
        let new = kernel("7.1", "7.1.13", vec![case("edge", new_steps)]);
        let mut text = Vec::new();
        write(&mut text, &pair(&old, &new), "a", "b", false, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("    step 1.*.2, iterations 1–9 (step 1.1.2 … step 1.9.2): ok → ENOMEM (12) (DIVERGED, expected ok)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "    step 2 (step 2) in value.a: value {\"a\":1,\"b\":2} → value {\"a\":7,\"b\":3}"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_failed_kernel_on_one_side_changed() {
        let mut failed = kernel("7.1", "7.1.13", vec![]);
        failed.status = KernelStatus::Error {
            message: "panic".into(),
            log_tail: None,
        };
        let diff = pair(&kernel("7.1", "7.1.13", vec![]), &failed);
        assert!(diff.summary().anything_changed(false));
    }
}
