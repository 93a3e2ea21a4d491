//! What changed between two runs: per pair of kernels (the same name in two results files,
//! or two named kernels), every case whose outcome changed and every step whose actual
//! outcome or verdict changed, plus what only one side has. For triage: "what did this
//! kernel update (or this harness change) change?".

use std::io::{self, Write};

use owo_colors::Style;
use serde::Serialize;

use super::{kernel_label, paint};
use crate::{
    case::Expected,
    results::{Actual, CaseOutcome, CaseResult, KernelRun, KernelStatus, RunResults, Verdict},
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

/// One compared pair of kernels; the lists hold only what changed.
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

/// A case present on both sides whose outcome or steps changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseDiff {
    pub case: String,
    /// Both outcomes, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<(CaseOutcome, CaseOutcome)>,
    pub steps: Vec<StepDiff>,
}

/// A step whose outcome changed, or that only one side ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDiff {
    pub id: String,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<StepSide>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<StepSide>,
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
}

impl Summary {
    pub fn anything_changed(&self) -> bool {
        self.kernels_changed > 0 || self.kernels_one_side > 0
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
    let only = |a: &KernelRun, b: &KernelRun| -> Vec<String> {
        a.cases
            .iter()
            .filter(|c| !b.cases.iter().any(|d| d.name == c.name))
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
            .filter_map(|n| {
                let o = old.cases.iter().find(|o| o.name == n.name)?;
                case_diff(o, n)
            })
            .collect(),
        cases_only_old: only(old, new),
        cases_only_new: only(new, old),
    }
}

fn case_diff(old: &CaseResult, new: &CaseResult) -> Option<CaseDiff> {
    let side = |s: &crate::results::StepResult| StepSide {
        actual: s.actual.clone(),
        verdict: s.verdict,
        expected: s.expected.clone(),
    };
    let mut steps = Vec::new();
    for n in &new.steps {
        match old.steps.iter().find(|o| o.id == n.id) {
            Some(o) if o.actual == n.actual && o.verdict == n.verdict => {}
            o => steps.push(StepDiff {
                id: n.id.clone(),
                label: n.label.clone(),
                old: o.map(side),
                new: Some(side(n)),
            }),
        }
    }
    for o in old
        .steps
        .iter()
        .filter(|o| !new.steps.iter().any(|n| n.id == o.id))
    {
        steps.push(StepDiff {
            id: o.id.clone(),
            label: o.label.clone(),
            old: Some(side(o)),
            new: None,
        });
    }
    let outcome = (old.outcome != new.outcome).then(|| (old.outcome.clone(), new.outcome.clone()));
    (outcome.is_some() || !steps.is_empty()).then(|| CaseDiff {
        case: new.name.clone(),
        outcome,
        steps,
    })
}

impl KernelDiff {
    pub fn changed(&self) -> bool {
        self.status.is_some()
            || !self.cases.is_empty()
            || !self.cases_only_old.is_empty()
            || !self.cases_only_new.is_empty()
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
        Summary {
            kernels_compared: self.kernels.len(),
            kernels_changed: self.kernels.iter().filter(|k| k.changed()).count(),
            kernels_one_side: self.only_old.len() + self.only_new.len(),
            cases_changed: self
                .kernels
                .iter()
                .map(|k| k.cases.len() + k.cases_only_old.len() + k.cases_only_new.len())
                .sum(),
            steps_changed: self
                .kernels
                .iter()
                .flat_map(|k| &k.cases)
                .map(|c| c.steps.len())
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

fn step_text(side: Option<&StepSide>) -> String {
    match side {
        None => "absent".into(),
        Some(s) if s.verdict == Verdict::Diverged => {
            format!("{} (DIVERGED, expected {})", s.actual, s.expected)
        }
        Some(s) => format!("{} (pass)", s.actual),
    }
}

/// The human view: per changed kernel its changed cases and steps, then the kernels one
/// side lacks, then the summary line. Unchanged kernels are one line each.
pub fn write(
    out: &mut impl Write,
    diff: &RunDiff,
    old_name: &str,
    new_name: &str,
    color: bool,
) -> io::Result<()> {
    let bold = Style::new().bold();
    for kernel in &diff.kernels {
        if !kernel.changed() {
            writeln!(out, "{}: unchanged", kernel.title())?;
            continue;
        }
        writeln!(out, "{}:", paint(&kernel.title(), bold, color))?;
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
            for step in &case.steps {
                writeln!(
                    out,
                    "    step {} ({}): {} → {}",
                    step.id,
                    step.label,
                    step_text(step.old.as_ref()),
                    step_text(step.new.as_ref())
                )?;
            }
        }
        for case in &kernel.cases_only_old {
            writeln!(out, "  {case}: only in {old_name}")?;
        }
        for case in &kernel.cases_only_new {
            writeln!(out, "  {case}: only in {new_name}")?;
        }
    }
    for kernel in &diff.only_old {
        writeln!(out, "{kernel}: only in {old_name}")?;
    }
    for kernel in &diff.only_new {
        writeln!(out, "{kernel}: only in {new_name}")?;
    }
    let s = diff.summary();
    let line = format!(
        "{} kernel pair(s) compared, {} changed ({} case(s), {} step(s)); {} kernel(s) on one side only",
        s.kernels_compared, s.kernels_changed, s.cases_changed, s.steps_changed, s.kernels_one_side
    );
    writeln!(out, "{}", paint(&line, bold, color))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::StepResult;

    fn step(id: &str, expected: Expected, actual: Actual) -> StepResult {
        let verdict = if actual.satisfies(&expected) {
            Verdict::Pass
        } else {
            Verdict::Diverged
        };
        StepResult {
            id: id.into(),
            label: format!("step {id}"),
            line: None,
            expected,
            reason: None,
            actual,
            verdict,
        }
    }

    fn case(name: &str, steps: Vec<StepResult>) -> CaseResult {
        let outcome = if steps.iter().all(|s| s.verdict == Verdict::Pass) {
            CaseOutcome::Pass
        } else {
            CaseOutcome::Diverged
        };
        CaseResult {
            name: name.into(),
            file: format!("cases/{name}.yaml"),
            outcome,
            duration_ms: 1,
            steps,
        }
    }

    fn kernel(name: &str, version: &str, cases: Vec<CaseResult>) -> KernelRun {
        KernelRun {
            version: Some(version.parse().expect("a version")),
            duration_ms: 10,
            cases,
            ..KernelRun::without_cases(name, KernelStatus::Ran)
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
        assert!(!diff.summary().anything_changed(), "{diff:?}");
        let mut text = Vec::new();
        write(&mut text, &diff, "a.json", "b.json", false).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "7.1 (7.1.13): unchanged\n1 kernel pair(s) compared, 0 changed (0 case(s), 0 step(s)); 0 kernel(s) on one side only\n"
        );
    }

    #[test]
    fn a_changed_step_its_case_and_one_sided_kernels_and_cases_are_listed() {
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
        assert_eq!((s.cases_changed, s.steps_changed), (3, 1));
        let k = &diff.kernels[0];
        assert_eq!(k.cases[0].case, "large");
        assert_eq!(
            k.cases[0].outcome,
            Some((CaseOutcome::Pass, CaseOutcome::Diverged))
        );
        assert_eq!(k.cases[0].steps.len(), 1, "step 1 did not change");
        assert_eq!(
            (k.cases_only_old.as_slice(), k.cases_only_new.as_slice()),
            (
                ["gone".to_string()].as_slice(),
                ["added".to_string()].as_slice()
            )
        );
        let mut text = Vec::new();
        write(&mut text, &diff, "a.json", "b.json", false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            "7.1 (7.1.12) → 7.1 (7.1.13):\n  \
             large: pass → DIVERGED\n    \
             step 2 (step 2): ok (pass) → ENOMEM (12) (DIVERGED, expected ok)\n  \
             gone: only in a.json\n  \
             added: only in b.json\n\
             5.10: only in a.json\n\
             7.3: only in b.json\n\
             1 kernel pair(s) compared, 1 changed (3 case(s), 1 step(s)); 2 kernel(s) on one side only\n"
        );
    }

    #[test]
    fn two_kernels_of_one_run_compare_by_actual_and_verdict() {
        // 7.0 and 7.1 both pass, but the step did something else: a behaviour change the
        // case foresaw is still a change.
        let ok = step("2", Expected::Ok, Actual::Ok);
        let enomem = step(
            "2",
            Expected::Errno("ENOMEM".into()),
            Actual::errno(libc::ENOMEM),
        );
        let old = kernel("7.0", "7.0.13", vec![case("large", vec![ok])]);
        let new = kernel("7.1", "7.1.13", vec![case("large", vec![enomem])]);
        let diff = pair(&old, &new);
        assert_eq!(diff.kernels[0].cases[0].outcome, None);
        assert_eq!(diff.summary().steps_changed, 1);
        // A step only one side ran is a change too.
        let new = kernel("7.1", "7.1.13", vec![case("large", vec![])]);
        let diff = pair(&old, &new);
        assert_eq!(diff.kernels[0].cases[0].steps[0].new, None);
        // A kernel that failed on one side changed, though it has no cases to compare.
        let mut failed = kernel("7.1", "7.1.13", vec![]);
        failed.status = KernelStatus::Error {
            message: "panic".into(),
            log_tail: None,
        };
        let diff = pair(&kernel("7.1", "7.1.13", vec![]), &failed);
        assert!(diff.summary().anything_changed());
    }
}
