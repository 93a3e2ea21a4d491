//! What differs between kernels: every divergence per kernel, and every step whose actual
//! outcome changed from one kernel version to the next, whether or not the expectations
//! foresaw it (a change the case does not describe is a finding; one it does is history).
//! A change is a difference in what the case pins ([`crate::results::pinned`]); a
//! difference only in what it leaves open is drift, kept apart.

use std::{
    io::{self, Write},
    sync::Arc,
};

use indexmap::IndexMap;
use owo_colors::Style;
use serde::Serialize;

use super::{human::Human, kernel_label, paint, shorten, wrap};
use crate::{
    case::Expected,
    results::{
        Actual, CaseOutcome, CaseResult, KernelStatus, RunResults, StepResult, Verdict,
        pinned::{self, Difference, Observed},
    },
    version::KernelVersion,
    vm::Arch,
};

/// A step's actual outcome differs between two kernels adjacent in version order (among
/// the kernels where the step ran): in what its case pins (a change of behaviour), or only
/// in what it leaves open (drift).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BehaviourChange {
    pub case: String,
    pub step: String,
    pub label: String,
    /// The case file and the step's line in it, as the first kernel to run it reported.
    pub file: String,
    pub line: Option<usize>,
    pub before: Observation,
    pub after: Observation,
    pub difference: Difference,
}

/// A step as one kernel ran it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    pub kernel: String,
    pub version: KernelVersion,
    pub actual: Actual,
    pub expected: Expected,
    pub verdict: Verdict,
}

/// A step whose actual outcome is not the expectation in force on its kernel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Divergence {
    pub kernel: String,
    pub version: Option<KernelVersion>,
    pub case: String,
    pub file: String,
    pub step: String,
    pub label: String,
    /// The step's line in `file`, when the run recorded it.
    pub line: Option<usize>,
    pub expected: Expected,
    pub actual: Actual,
    /// Why the case expects that on this kernel, when it gives versioned variants.
    pub reason: Option<Arc<str>>,
}

/// The differences between kernels adjacent in version order: changes of behaviour, and
/// drift (differences in nothing the case pins).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Across {
    pub changes: Vec<BehaviourChange>,
    pub drift: Vec<BehaviourChange>,
}

/// Changes and drift per (case, step), cases and steps in the order they first appear,
/// each step's in version order. Kernels are ordered by version, not by name or list order
/// (ties keep list order), and compared with those of their own architecture only (an arm64
/// kernel follows the arm64 kernel before it; `harness diff` compares across them); a
/// kernel that reported no version cannot be placed and is left out, as are steps that did
/// not run and the steps of skipped cases.
pub fn across_kernels(results: &RunResults) -> Across {
    let mut kernels: Vec<_> = results
        .kernels
        .iter()
        .filter_map(|k| Some((k.version?, k)))
        .collect();
    kernels.sort_by_key(|(version, kernel)| (kernel.architecture(), *version));

    // Each step of each case, as first seen, with what every kernel did, in version order.
    let mut steps: Vec<StepAcross<'_>> = Vec::new();
    let mut index: std::collections::HashMap<(&str, &str), usize> = Default::default();
    for (version, kernel) in kernels {
        for case in kernel.cases.iter().filter(|case| judged(case)) {
            for step in &case.steps {
                if matches!(step.actual, Actual::NotRun { .. }) {
                    continue;
                }
                let at = *index
                    .entry((case.name.as_str(), step.id.as_str()))
                    .or_insert_with(|| {
                        steps.push(StepAcross {
                            case,
                            step,
                            observations: Vec::new(),
                        });
                        steps.len() - 1
                    });
                steps[at]
                    .observations
                    .push((&kernel.kernel, version, step, kernel.architecture()));
            }
        }
    }

    let mut across = Across::default();
    for StepAcross {
        case,
        step,
        observations,
    } in steps
    {
        for pair in observations.windows(2) {
            let [(_, _, before, before_arch), (_, _, after, after_arch)] = pair else {
                unreachable!("windows of two")
            };
            if before_arch != after_arch {
                continue;
            }
            let difference = pinned::compare(observed(before), observed(after));
            if difference.is_same() {
                continue;
            }
            let into = if difference.is_change() {
                &mut across.changes
            } else {
                &mut across.drift
            };
            into.push(BehaviourChange {
                case: case.name.clone(),
                step: step.id.clone(),
                label: step.label.clone(),
                file: case.file.clone(),
                line: step.line,
                before: Observation::of(&pair[0]),
                after: Observation::of(&pair[1]),
                difference,
            });
        }
    }
    across
}

/// A step of a case across kernels: as the first kernel ran it, and each kernel's result
/// of it (borrowed: only the steps that differ are copied into changes).
struct StepAcross<'a> {
    case: &'a CaseResult,
    step: &'a StepResult,
    observations: Vec<(&'a String, KernelVersion, &'a StepResult, Arch)>,
}

fn observed(step: &StepResult) -> Observed<'_> {
    Observed {
        expected: &step.expected,
        actual: &step.actual,
    }
}

impl Observation {
    fn of((kernel, version, step, _): &(&String, KernelVersion, &StepResult, Arch)) -> Self {
        Observation {
            kernel: (*kernel).clone(),
            version: *version,
            actual: step.actual.clone(),
            expected: step.expected.clone(),
            verdict: step.verdict,
        }
    }
}

/// The kernels whose behaviour could not be compared with the others, and why: a kernel
/// error, a skipped kernel, no version reported.
pub fn left_out(results: &RunResults) -> Vec<String> {
    results
        .kernels
        .iter()
        .filter_map(|k| match (&k.status, k.version) {
            (KernelStatus::Error { message, .. }, _) => Some(format!(
                "{}: kernel error: {}",
                k.kernel,
                message.lines().next().unwrap_or_default()
            )),
            (KernelStatus::Skipped { reason }, _) => {
                Some(format!("{}: skipped: {reason}", k.kernel))
            }
            (KernelStatus::Ran, None) => Some(format!("{}: reported no version", k.kernel)),
            (KernelStatus::Ran, Some(_)) => None,
        })
        .collect()
}

/// Drift folded to a line per case: its steps, the parts that drifted and where.
pub fn drift_summary(drift: &[BehaviourChange]) -> Vec<String> {
    let mut cases: IndexMap<&str, Vec<&BehaviourChange>> = IndexMap::new();
    for d in drift {
        cases.entry(&d.case).or_default().push(d);
    }
    cases
        .into_iter()
        .map(|(case, of_case)| {
            let mut steps: Vec<&str> = of_case.iter().map(|d| d.step.as_str()).collect();
            steps.dedup();
            let mut parts: Vec<&str> = of_case
                .iter()
                .flat_map(|d| d.difference.drift.iter().map(String::as_str))
                .collect();
            parts.sort_unstable();
            parts.dedup();
            let mut between: Vec<String> = of_case
                .iter()
                .map(|d| format!("{}→{}", d.before.kernel, d.after.kernel))
                .collect();
            between.dedup();
            format!(
                "{case}: step(s) {} differ in {} ({})",
                steps.join(", "),
                parts.join(", "),
                between.join(", ")
            )
        })
        .collect()
}

/// Every diverged step of a case that was not skipped, kernels in the results' order, then
/// cases and steps in run order.
pub fn divergences(results: &RunResults) -> Vec<Divergence> {
    let mut found = Vec::new();
    for kernel in &results.kernels {
        for case in kernel.cases.iter().filter(|case| judged(case)) {
            for step in case.steps.iter().filter(|s| s.verdict == Verdict::Diverged) {
                found.push(Divergence {
                    kernel: kernel.kernel.clone(),
                    version: kernel.version,
                    case: case.name.clone(),
                    file: case.file.clone(),
                    step: step.id.clone(),
                    label: step.label.clone(),
                    line: step.line,
                    expected: step.expected.clone(),
                    actual: step.actual.clone(),
                    reason: step.reason.clone(),
                });
            }
        }
    }
    found
}

/// Whether the case's steps say something about the kernel. A case skipped after it ran
/// (the kernel lacks what it needs: no inet_diag, say) keeps the steps that showed it, but
/// their outcomes are the machine's, neither divergences nor changes of behaviour.
fn judged(case: &CaseResult) -> bool {
    !matches!(case.outcome, CaseOutcome::Skipped { .. })
}

impl Divergence {
    /// `cases/update-noexist.yaml:13`: where the step is written.
    pub fn location(&self) -> String {
        super::location(&self.file, self.line)
    }
}

impl BehaviourChange {
    /// Both sides meet their expectations: the case already describes this change.
    pub fn expected(&self) -> bool {
        self.before.verdict == Verdict::Pass && self.after.verdict == Verdict::Pass
    }

    /// The parts that differ: those the case pins for a change, the open ones for drift.
    pub fn parts(&self) -> &[String] {
        if self.difference.is_change() {
            &self.difference.pinned
        } else {
            &self.difference.drift
        }
    }

    /// The differing parts when they say more than the outcomes do: `value.count`, not
    /// `outcome` or `errno`, which the outcomes themselves show.
    pub fn fields(&self) -> Option<String> {
        let parts = self.parts();
        let obvious = matches!(parts, [only] if only == "outcome" || only == "errno");
        (!obvious && !parts.is_empty()).then(|| parts.join(", "))
    }

    /// `changed between 6.1 and 6.12: EINVAL (22) → ok`, with the fields that differ when
    /// the outcomes are values (`… in value.count: …`), outcomes cut to `max` characters.
    pub fn describe(&self, max: usize) -> String {
        let fields = self
            .fields()
            .map_or_else(String::new, |fields| format!(" in {fields}"));
        format!(
            "{} between {} and {}{fields}: {} → {}",
            if self.difference.is_change() {
                "changed"
            } else {
                "drifted"
            },
            kernel_label(&self.before.kernel, Some(self.before.version)),
            kernel_label(&self.after.kernel, Some(self.after.version)),
            shorten(&self.before.actual.to_string(), max),
            shorten(&self.after.actual.to_string(), max),
        )
    }

    /// Which side(s) the expectations do not allow, or that they allow both.
    pub fn verdict(&self) -> String {
        let diverged: Vec<&str> = [&self.before, &self.after]
            .into_iter()
            .filter(|o| o.verdict == Verdict::Diverged)
            .map(|o| o.kernel.as_str())
            .collect();
        if diverged.is_empty() {
            "as the case expects".to_string()
        } else {
            format!("diverges on {}", diverged.join(" and "))
        }
    }
}

/// The longest outcome the terminal shows in full.
const MAX_OUTCOME_CHARS: usize = 200;

/// A change as two wrapped lines: the step and where it is written, then what changed and
/// the verdict (painted after wrapping: escape codes have no width).
fn write_change(out: &mut impl Write, change: &BehaviourChange, view: Human) -> io::Result<()> {
    let title = format!(
        "{} step {} ({}) [{}]",
        change.case,
        change.step,
        change.label,
        super::location(&change.file, change.line)
    );
    for line in wrap(&title, view.width, "  ", "      ") {
        writeln!(out, "{line}")?;
    }
    let verdict = format!("[{}]", change.verdict());
    // No-break spaces keep the verdict on one line, to be painted whole.
    let text = format!(
        "{} {}",
        change.describe(MAX_OUTCOME_CHARS),
        verdict.replace(' ', "\u{a0}")
    );
    let lines: Vec<String> = wrap(&text, view.width, "      ", "      ")
        .into_iter()
        .map(|line| line.replace('\u{a0}', " "))
        .collect();
    let style = if change.expected() {
        Style::new().green()
    } else {
        Style::new().red().bold()
    };
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate() {
        match line.strip_suffix(&verdict) {
            Some(before) if i == last => {
                writeln!(out, "{before}{}", paint(&verdict, style, view.color))?
            }
            _ => writeln!(out, "{line}")?,
        }
    }
    Ok(())
}

/// The divergences per kernel, then the behaviour changes the cases do not expect, then
/// those they do, each wrapped to the view's width.
pub fn write(out: &mut impl Write, results: &RunResults, view: Human) -> io::Result<()> {
    let color = view.color;
    let heading = Style::new().bold();
    let divergences = divergences(results);
    writeln!(out, "{}", paint("Divergences", heading, color))?;
    if divergences.is_empty() {
        writeln!(out, "  none")?;
    }
    let mut current_kernel = None;
    for d in &divergences {
        if current_kernel != Some(&d.kernel) {
            current_kernel = Some(&d.kernel);
            writeln!(out, "  {}", kernel_label(&d.kernel, d.version))?;
        }
        let title = format!(
            "{} step {} ({}) [{}]",
            d.case,
            d.step,
            d.label,
            d.location()
        );
        for (i, line) in wrap(&title, view.width, "    ", "      ")
            .iter()
            .enumerate()
        {
            let line = if i == 0 {
                line.replacen(
                    &d.case,
                    &paint(&d.case, Style::new().red().bold(), color),
                    1,
                )
            } else {
                line.clone()
            };
            writeln!(out, "{line}")?;
        }
        let mut facts = vec![
            format!(
                "expected: {}",
                shorten(&d.expected.to_string(), MAX_OUTCOME_CHARS)
            ),
            format!(
                "actual:   {}",
                shorten(&d.actual.to_string(), MAX_OUTCOME_CHARS)
            ),
        ];
        if let Some(reason) = &d.reason {
            facts.push(format!("(expected because: {reason})"));
        }
        for fact in facts {
            for line in wrap(&fact, view.width, "      ", "                ") {
                writeln!(out, "{line}")?;
            }
        }
    }

    let Across { changes, drift } = across_kernels(results);
    let (expected, unexpected): (Vec<BehaviourChange>, Vec<BehaviourChange>) =
        changes.into_iter().partition(BehaviourChange::expected);
    for (title, changes) in [
        ("Behaviour changes the cases do not expect", unexpected),
        ("Behaviour changes the cases expect", expected),
    ] {
        writeln!(out)?;
        writeln!(out, "{}", paint(title, heading, color))?;
        if changes.is_empty() {
            writeln!(out, "  none")?;
        }
        for change in &changes {
            write_change(out, change, view)?;
        }
    }
    if !drift.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            paint(
                &format!(
                    "Drift: {} difference(s) in what the cases leave open (not changes)",
                    drift.len()
                ),
                heading,
                color
            )
        )?;
        for line in drift_summary(&drift) {
            for line in wrap(&line, view.width, "  ", "      ") {
                writeln!(out, "{line}")?;
            }
        }
    }

    let left_out = left_out(results);
    if !left_out.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            paint("Kernels not (fully) compared", heading, color)
        )?;
        for line in left_out {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::KernelRun;

    fn kernel(name: &str, version: Option<KernelVersion>, actual: Actual) -> KernelRun {
        KernelRun {
            version,
            cases: vec![CaseResult {
                name: "c".into(),
                file: "cases/c.yaml".into(),
                outcome: CaseOutcome::Pass,
                duration_ms: 0,
                steps: vec![StepResult::judged("1", "update", Expected::Ok, actual)],
            }],
            ..KernelRun::without_cases(name, KernelStatus::Ran)
        }
    }

    #[test]
    fn changes_are_followed_within_each_architecture() {
        let on = |name: &str, minor: u32, machine: &str, actual: Actual| KernelRun {
            arch: Some(machine.into()),
            ..kernel(name, Some(KernelVersion::new(6, minor, 0)), actual)
        };
        let results = RunResults::new(vec![
            on("6.1", 1, "x86_64", Actual::Ok),
            on("6.12", 12, "x86_64", Actual::Ok),
            on("6.1-arm64", 1, "aarch64", Actual::errno(524)),
            on("6.12-arm64", 12, "aarch64", Actual::Ok),
        ]);
        let changes = across_kernels(&results).changes;
        assert_eq!(changes.len(), 1, "{changes:#?}");
        assert_eq!(
            changes[0].describe(200),
            "changed between 6.1-arm64 (6.1) and 6.12-arm64 (6.12): ENOTSUPP (524) → ok"
        );
    }

    #[test]
    fn changes_follow_versions_not_names_nor_list_order() {
        let results = RunResults::new(vec![
            kernel("7.10", Some(KernelVersion::new(7, 10, 0)), Actual::Ok),
            kernel("7.9", Some(KernelVersion::new(7, 9, 0)), Actual::errno(22)),
            kernel("host", Some(KernelVersion::new(6, 1, 0)), Actual::errno(22)),
            // Cannot be placed among the others.
            kernel("unknown", None, Actual::errno(17)),
        ]);
        let changes = across_kernels(&results).changes;
        assert_eq!(changes.len(), 1, "{changes:#?}");
        assert_eq!(
            changes[0].describe(200),
            "changed between 7.9 and 7.10: EINVAL (22) → ok"
        );
        assert_eq!(changes[0].verdict(), "diverges on 7.9");
    }

    #[test]
    fn steps_of_a_skipped_case_are_neither_divergences_nor_changes() {
        let mut skipped = kernel("5.9", Some(KernelVersion::new(5, 9, 1)), Actual::errno(2));
        skipped.cases[0].outcome = CaseOutcome::Skipped {
            reason: "no inet_diag".into(),
        };
        let results = RunResults::new(vec![
            skipped,
            kernel("5.10", Some(KernelVersion::new(5, 10, 0)), Actual::Ok),
        ]);
        assert_eq!(divergences(&results), []);
        assert_eq!(across_kernels(&results), Across::default());
    }

    #[test]
    fn a_change_and_back_is_two_changes_and_not_run_steps_are_ignored() {
        let not_run = Actual::NotRun {
            reason: "map creation failed".into(),
        };
        let results = RunResults::new(vec![
            kernel("5.10", Some(KernelVersion::new(5, 10, 0)), Actual::Ok),
            kernel("6.1", Some(KernelVersion::new(6, 1, 0)), not_run),
            kernel("6.6", Some(KernelVersion::new(6, 6, 0)), Actual::errno(22)),
            kernel("6.12", Some(KernelVersion::new(6, 12, 0)), Actual::Ok),
        ]);
        let between: Vec<(String, String)> = across_kernels(&results)
            .changes
            .into_iter()
            .map(|c| (c.before.kernel, c.after.kernel))
            .collect();
        assert_eq!(
            between,
            [("5.10".into(), "6.6".into()), ("6.6".into(), "6.12".into())]
        );
    }
}
