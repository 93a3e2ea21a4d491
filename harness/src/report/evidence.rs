//! Which versioned expectations the kernels of a run have shown. A variant that no kernel
//! ran is what the case's author believes, not what a kernel did; this view tells the two
//! apart, per variant of every versioned expectation:
//!
//! - seen: a kernel in the variant's range ran the step and did what the variant says;
//! - contradicted: kernels in the range ran the step, and none did what it says;
//! - unverified: no kernel in the range ran the step.
//!
//! And per boundary a case places (a variant's `since`): whether the run saw both sides of
//! it (the last kernel below and the first at or above it are adjacent releases), only
//! brackets it between kernels further apart (placed), or has no kernel on one side.

use std::{
    collections::HashMap,
    io::{self, Write},
    sync::Arc,
};

use owo_colors::Style;
use serde::Serialize;

use super::{kernel_label, paint};
use crate::{
    case::{Case, Expectation, Expected, Step},
    results::{Actual, CaseOutcome, KernelRun, KernelStatus, RunResults},
    version::{KernelVersion, VersionRange},
    vm::Arch,
};

/// What the kernels of the results say about one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantState {
    /// At least one kernel in the range ran the step and did what the variant says.
    Seen,
    /// Kernels in the range ran the step, and none did what the variant says.
    Contradicted,
    /// No kernel in the range ran the step.
    Unverified,
}

/// One variant of a versioned expectation, and the kernels that ran its step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantEvidence {
    pub case: String,
    pub file: String,
    /// `2`, `setup.1`, `4.1` inside a fork.
    pub step: String,
    pub label: String,
    /// The versions the variant is for: `>= 5.6`, `< 5.4`, `>= 6.8, < 7.1`.
    pub range: String,
    pub expected: Expected,
    pub reason: Option<Arc<str>>,
    pub state: VariantState,
    /// The kernels in the range that ran the step, in version order.
    pub kernels: Vec<RanOn>,
}

/// A kernel that ran a variant's step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RanOn {
    pub kernel: String,
    pub version: KernelVersion,
    /// Which of a step's variants could be in force on it (its kernel name says it).
    #[serde(skip)]
    pub arch: Arch,
    /// The kernel's actual outcome is the one the variant expects.
    pub satisfied: bool,
}

/// Every variant of every versioned expectation (more than one variant, or one with a
/// version bound), cases in the given order, then steps in run order (a fork's steps right
/// after it), then variants as the case lists them.
///
/// A kernel counts for a variant when it ran (neither a kernel error nor a skipped kernel),
/// reported a version in the variant's range, ran the case (pass or diverged, not skipped
/// nor failed) and attempted the step: a step the executor could not attempt (`not_run`,
/// e.g. its map was never created) shows nothing about the kernel. Steps are matched by
/// case name and step id.
pub fn variant_evidence(cases: &[Case], results: &RunResults) -> Vec<VariantEvidence> {
    let mut kernels: Vec<(KernelVersion, &KernelRun)> = results
        .kernels
        .iter()
        .filter(|k| k.status == KernelStatus::Ran)
        .filter_map(|k| Some((k.version?, k)))
        .collect();
    kernels.sort_by_key(|(version, _)| *version);
    let attempted: Vec<HashMap<(&str, &str), &Actual>> = kernels
        .iter()
        .map(|(_, kernel)| attempted(kernel))
        .collect();

    let mut found = Vec::new();
    for case in cases {
        let mut steps = Vec::new();
        in_run_order(&case.steps, &mut steps);
        for step in steps.into_iter().filter(|s| is_versioned(&s.expect)) {
            for variant in &step.expect.variants {
                let ran_on: Vec<RanOn> = kernels
                    .iter()
                    .zip(&attempted)
                    .filter(|((version, kernel), _)| {
                        variant.applies(*version, kernel.architecture())
                    })
                    .filter_map(|((version, kernel), attempted)| {
                        let actual = attempted.get(&(case.name.as_str(), step.id.as_str()))?;
                        Some(RanOn {
                            kernel: kernel.kernel.clone(),
                            version: *version,
                            arch: kernel.architecture(),
                            // Judged against this variant rather than read from the step's
                            // verdict: results saved before the case's ranges were edited
                            // were judged against whichever variant was in force then.
                            satisfied: actual.satisfies(&variant.outcome),
                        })
                    })
                    .collect();
                let state = if ran_on.iter().any(|k| k.satisfied) {
                    VariantState::Seen
                } else if ran_on.is_empty() {
                    VariantState::Unverified
                } else {
                    VariantState::Contradicted
                };
                found.push(VariantEvidence {
                    case: case.name.clone(),
                    file: case.file.display().to_string(),
                    step: step.id.clone(),
                    label: step.label.clone(),
                    range: match &variant.arch {
                        None => variant.range.to_string(),
                        Some(archs) => {
                            let names: Vec<&str> = archs.iter().map(|arch| arch.name()).collect();
                            format!("{} on {}", variant.range, names.join(", "))
                        }
                    },
                    expected: variant.outcome.clone(),
                    reason: variant.reason.clone(),
                    state,
                    kernels: ran_on,
                });
            }
        }
    }
    found
}

/// An expectation that depends on the kernel version; one for all kernels claims nothing
/// about versions.
fn is_versioned(expectation: &Expectation) -> bool {
    expectation.variants.len() > 1
        || expectation
            .variants
            .iter()
            .any(|v| v.range != VersionRange::default())
}

/// `steps` as they run: each fork's own steps follow it, as in the results.
fn in_run_order<'a>(steps: &'a [Step], into: &mut Vec<&'a Step>) {
    for step in steps {
        into.push(step);
        in_run_order(&step.children, into);
    }
}

/// What `kernel` did at each step it attempted (by case name and step id) of the cases it
/// ran.
fn attempted(kernel: &KernelRun) -> HashMap<(&str, &str), &Actual> {
    kernel
        .cases
        .iter()
        .filter(|case| matches!(case.outcome, CaseOutcome::Pass | CaseOutcome::Diverged))
        .flat_map(|case| {
            case.steps
                .iter()
                .filter(|s| !matches!(s.actual, Actual::NotRun { .. }))
                .map(|s| ((case.name.as_str(), s.id.as_str()), &s.actual))
        })
        .collect()
}

/// How much of a boundary the kernels of a run saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundaryState {
    /// The last kernel below it and the first at or above it ran the step and are adjacent
    /// releases ([`KernelVersion::adjacent_to`]), and the boundary is the latter's series start
    /// or the kernel itself.
    BothSides,
    /// Kernels on both sides ran the step, with releases between them not run.
    Placed,
    /// No kernel on one side (or either) ran the step.
    Unverified,
}

/// A version at which a case's expectation for some of its steps changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoundaryEvidence {
    pub case: String,
    pub file: String,
    pub at: KernelVersion,
    /// The steps whose variants change here.
    pub steps: Vec<String>,
    /// The last kernel below `at` that ran one of them, and the first at or above it.
    pub below: Option<RanOn>,
    pub above: Option<RanOn>,
    pub state: BoundaryState,
}

/// Every boundary of the cases' versioned expectations, per case in the given order, then
/// by version: a variant's `since` (a case's `requires` bound is not a boundary).
pub fn boundary_evidence(cases: &[Case], results: &RunResults) -> Vec<BoundaryEvidence> {
    let variants = variant_evidence(cases, results);
    // The kernels that ran each step, by case and step.
    let mut ran_step: HashMap<(&str, &str), Vec<&RanOn>> = HashMap::new();
    for v in &variants {
        ran_step
            .entry((&v.case, &v.step))
            .or_default()
            .extend(&v.kernels);
    }
    let mut found: Vec<BoundaryEvidence> = Vec::new();
    let mut found_at: HashMap<(&str, KernelVersion), usize> = HashMap::new();
    for case in cases {
        let mut steps = Vec::new();
        in_run_order(&case.steps, &mut steps);
        for step in steps.into_iter().filter(|s| is_versioned(&s.expect)) {
            for (variant, at) in step
                .expect
                .variants
                .iter()
                .filter_map(|v| Some((v, v.range.since?)))
            {
                // A boundary of one architecture's variant is bracketed by its kernels.
                let ran: Vec<&RanOn> = ran_step
                    .get(&(case.name.as_str(), step.id.as_str()))
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .copied()
                    .filter(|k| variant.is_for(k.arch))
                    .collect();
                let below = ran
                    .iter()
                    .filter(|k| k.version < at)
                    .max_by_key(|k| k.version);
                let above = ran
                    .iter()
                    .filter(|k| k.version >= at)
                    .min_by_key(|k| k.version);
                match found_at.get(&(case.name.as_str(), at)) {
                    Some(&i) => {
                        let boundary = &mut found[i];
                        boundary.steps.push(step.id.clone());
                        // The closest kernels of any of its steps.
                        if below.is_some_and(|b| {
                            boundary
                                .below
                                .as_ref()
                                .is_none_or(|o| b.version > o.version)
                        }) {
                            boundary.below = below.map(|k| (*k).clone());
                        }
                        if above.is_some_and(|a| {
                            boundary
                                .above
                                .as_ref()
                                .is_none_or(|o| a.version < o.version)
                        }) {
                            boundary.above = above.map(|k| (*k).clone());
                        }
                    }
                    None => {
                        found_at.insert((case.name.as_str(), at), found.len());
                        found.push(BoundaryEvidence {
                            case: case.name.clone(),
                            file: case.file.display().to_string(),
                            at,
                            steps: vec![step.id.clone()],
                            below: below.map(|k| (*k).clone()),
                            above: above.map(|k| (*k).clone()),
                            state: BoundaryState::Unverified,
                        });
                    }
                }
            }
        }
    }
    for boundary in &mut found {
        boundary.state = match (&boundary.below, &boundary.above) {
            (Some(below), Some(above)) => {
                let series_start = KernelVersion::new(above.version.major, above.version.minor, 0);
                if below.version.adjacent_to(above.version)
                    && (boundary.at == series_start || boundary.at == above.version)
                {
                    BoundaryState::BothSides
                } else {
                    BoundaryState::Placed
                }
            }
            _ => BoundaryState::Unverified,
        };
    }
    found
}

/// `21 boundaries the cases place: 12 run on both sides, 7 placed between kernels, 2 unverified`.
pub fn boundary_summary(boundaries: &[BoundaryEvidence]) -> String {
    let count = |state| boundaries.iter().filter(|b| b.state == state).count();
    format!(
        "{} {} the cases place: {} run on both sides, {} placed between kernels further apart, {} unverified",
        boundaries.len(),
        if boundaries.len() == 1 {
            "boundary"
        } else {
            "boundaries"
        },
        count(BoundaryState::BothSides),
        count(BoundaryState::Placed),
        count(BoundaryState::Unverified),
    )
}

/// A line per boundary: where, the kernels that bracket it, how it was seen.
fn write_boundaries(
    out: &mut impl Write,
    boundaries: &[BoundaryEvidence],
    color: bool,
) -> io::Result<()> {
    writeln!(
        out,
        "{}",
        paint("Boundaries the cases place:", heading(), color)
    )?;
    if boundaries.is_empty() {
        writeln!(out, "  none")?;
    }
    let side = |k: &Option<RanOn>| {
        k.as_ref().map_or("no kernel".to_string(), |k| {
            kernel_label(&k.kernel, Some(k.version))
        })
    };
    for b in boundaries {
        let state = match b.state {
            BoundaryState::BothSides => paint("run on both sides", Style::new().green(), color),
            BoundaryState::Placed => paint("placed", Style::new().yellow(), color),
            BoundaryState::Unverified => paint("unverified", Style::new().yellow().bold(), color),
        };
        writeln!(
            out,
            "  {} at {} (step {}): {state}, between {} and {}",
            b.case,
            b.at,
            b.steps.join(", "),
            side(&b.below),
            side(&b.above)
        )?;
    }
    writeln!(out, "{}", boundary_summary(boundaries))
}

/// `12 versioned variants: 8 seen, 1 contradicted, 3 unverified`.
pub fn summary(evidence: &[VariantEvidence]) -> String {
    let count = |state| evidence.iter().filter(|v| v.state == state).count();
    format!(
        "{} versioned variants: {} seen, {} contradicted, {} unverified",
        evidence.len(),
        count(VariantState::Seen),
        count(VariantState::Contradicted),
        count(VariantState::Unverified),
    )
}

/// The whole view: the variants the kernels ran (seen or contradicted, with the kernels),
/// the kernels that could not count, then the unverified variants and the count.
pub fn write(
    out: &mut impl Write,
    cases: &[Case],
    results: &RunResults,
    color: bool,
) -> io::Result<()> {
    let evidence = variant_evidence(cases, results);
    writeln!(
        out,
        "{}",
        paint("Versioned variants the kernels ran:", heading(), color)
    )?;
    let ran: Vec<&VariantEvidence> = evidence
        .iter()
        .filter(|v| v.state != VariantState::Unverified)
        .collect();
    if ran.is_empty() {
        writeln!(out, "  none")?;
    }
    write_by_step(out, &ran, color, |out, v| {
        let satisfied = kernel_list(v.kernels.iter().filter(|k| k.satisfied));
        let diverged = kernel_list(v.kernels.iter().filter(|k| !k.satisfied));
        let kernels = match v.state {
            VariantState::Contradicted => format!(
                "{} by {diverged}",
                paint("CONTRADICTED", Style::new().red().bold(), color)
            ),
            _ if diverged.is_empty() => {
                format!(
                    "{} on {satisfied}",
                    paint("seen", Style::new().green(), color)
                )
            }
            _ => format!(
                "{} on {satisfied}; diverged on {diverged}",
                paint("seen", Style::new().green(), color)
            ),
        };
        writeln!(out, "    {} expects {}: {kernels}", v.range, v.expected)
    })?;
    let not_counted: Vec<String> = results
        .kernels
        .iter()
        .filter_map(|k| match (&k.status, k.version) {
            (KernelStatus::Error { .. }, _) => Some(format!("{} (kernel error)", k.kernel)),
            (KernelStatus::Skipped { .. }, _) => Some(format!("{} (kernel skipped)", k.kernel)),
            (KernelStatus::Ran, None) => Some(format!("{} (reported no version)", k.kernel)),
            (KernelStatus::Ran, Some(_)) => None,
        })
        .collect();
    if !not_counted.is_empty() {
        writeln!(out, "  not counted: {}", not_counted.join(", "))?;
    }
    writeln!(out)?;
    write_boundaries(out, &boundary_evidence(cases, results), color)?;
    writeln!(out)?;
    write_unverified_and_summary(out, &evidence, color)
}

/// The variants no kernel of `results` ran, then the count of all versioned variants: what
/// `harness run` prints after a matrix run, so beliefs are not taken for findings.
pub fn write_unverified(
    out: &mut impl Write,
    cases: &[Case],
    results: &RunResults,
    color: bool,
) -> io::Result<()> {
    write_unverified_and_summary(out, &variant_evidence(cases, results), color)?;
    writeln!(
        out,
        "{}",
        boundary_summary(&boundary_evidence(cases, results))
    )
}

fn write_unverified_and_summary(
    out: &mut impl Write,
    evidence: &[VariantEvidence],
    color: bool,
) -> io::Result<()> {
    writeln!(
        out,
        "{}",
        paint(
            "Unverified variants (no kernel in these results ran them):",
            heading(),
            color
        )
    )?;
    let unverified: Vec<&VariantEvidence> = evidence
        .iter()
        .filter(|v| v.state == VariantState::Unverified)
        .collect();
    if unverified.is_empty() {
        writeln!(out, "  none")?;
    }
    write_by_step(out, &unverified, color, |out, v| {
        writeln!(
            out,
            "    {} expects {}",
            paint(&v.range, Style::new().yellow(), color),
            v.expected
        )?;
        match &v.reason {
            Some(reason) => writeln!(out, "      because: {reason}"),
            None => Ok(()),
        }
    })?;
    writeln!(out, "{}", summary(evidence))
}

/// A heading line per step (`case step 2 (label) [file]`), then `variant` for each of its
/// variants; `variants` of one step are adjacent, as [`variant_evidence`] orders them.
fn write_by_step<W: Write>(
    out: &mut W,
    variants: &[&VariantEvidence],
    color: bool,
    variant: impl Fn(&mut W, &VariantEvidence) -> io::Result<()>,
) -> io::Result<()> {
    let mut current_step = None;
    for v in variants {
        if current_step != Some((&v.case, &v.step)) {
            current_step = Some((&v.case, &v.step));
            writeln!(
                out,
                "  {} step {} ({}) [{}]",
                paint(&v.case, Style::new().bold(), color),
                v.step,
                v.label,
                v.file
            )?;
        }
        variant(out, v)?;
    }
    Ok(())
}

/// `5.4 (5.4.286), 6.1 (6.1.176)`.
fn kernel_list<'a>(kernels: impl Iterator<Item = &'a RanOn>) -> String {
    kernels
        .map(|k| kernel_label(&k.kernel, Some(k.version)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn heading() -> Style {
    Style::new().bold()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::results::{CaseResult, StepResult};

    /// Batch commands: EINVAL before 5.6, ENOTSUPP from 5.6 (step 2); step 1 and the
    /// set-up steps expect the same on every kernel.
    const BATCH: &str = r#"name: batch
description: batch commands by version
maps:
  store: { value: u32 }
sockets:
  s: { family: inet }
steps:
  - update: { map: store, socket: s, value: 1 }
    expect: ok
  - lookup_batch: { map: store, sockets: [s] }
    expect:
      - { until: "5.6", expect: EINVAL, reason: batch commands came in 5.6 }
      - { since: "5.6", expect: ENOTSUPP, reason: sk storage has no batch callbacks }
"#;

    fn case(yaml: &str) -> Case {
        crate::case::parse(Path::new("cases/test.yaml"), yaml).expect("a valid case")
    }

    fn version(text: &str) -> KernelVersion {
        text.parse().expect("a kernel version")
    }

    /// A step result judged as the executor judges it, against `expected`.
    fn step(id: &str, expected: Expected, actual: Actual) -> StepResult {
        StepResult::judged(id, "", expected, actual)
    }

    /// The batch case on a kernel where step 2 did `actual`.
    fn batch_result(outcome: CaseOutcome, actual: Actual) -> CaseResult {
        CaseResult {
            name: "batch".into(),
            file: "cases/test.yaml".into(),
            outcome,
            duration_ms: 0,
            steps: vec![
                step("1", Expected::Ok, Actual::Ok),
                step("2", Expected::Errno("ENOTSUPP".into()), actual),
            ],
        }
    }

    fn kernel(name: &str, version_text: &str, cases: Vec<CaseResult>) -> KernelRun {
        KernelRun::ran(name, version(version_text), cases)
    }

    /// A variant's range, state, and kernels with whether they did what it says.
    type Outline<'a> = (&'a str, VariantState, Vec<(&'a str, bool)>);

    fn outline(evidence: &[VariantEvidence]) -> Vec<Outline<'_>> {
        evidence
            .iter()
            .map(|v| {
                let kernels = v
                    .kernels
                    .iter()
                    .map(|k| (k.kernel.as_str(), k.satisfied))
                    .collect();
                (v.range.as_str(), v.state, kernels)
            })
            .collect()
    }

    #[test]
    fn a_variant_is_seen_by_the_kernels_in_its_range_only() {
        let results = RunResults::new(vec![
            kernel(
                "6.1",
                "6.1.176",
                vec![batch_result(CaseOutcome::Pass, Actual::errno(524))],
            ),
            kernel(
                "5.4",
                "5.4.286",
                vec![batch_result(CaseOutcome::Pass, Actual::errno(libc::EINVAL))],
            ),
        ]);
        let evidence = variant_evidence(&[case(BATCH)], &results);
        assert_eq!(
            outline(&evidence),
            [
                ("< 5.6", VariantState::Seen, vec![("5.4", true)]),
                (">= 5.6", VariantState::Seen, vec![("6.1", true)]),
            ]
        );
        assert_eq!(evidence[0].step, "2");
        assert_eq!(evidence[0].expected, Expected::Errno("EINVAL".into()));
        assert_eq!(
            evidence[0].reason.as_deref(),
            Some("batch commands came in 5.6")
        );
        assert_eq!(evidence[1].kernels[0].version, version("6.1.176"));
    }

    #[test]
    fn skipped_or_failed_cases_failed_kernels_and_unattempted_steps_do_not_count() {
        let not_run = Actual::NotRun {
            reason: "map store was not created".into(),
        };
        let mut failed_kernel = kernel(
            "6.12",
            "6.12.117",
            vec![batch_result(CaseOutcome::Pass, Actual::errno(524))],
        );
        failed_kernel.status = KernelStatus::Error {
            message: "panic".into(),
            log_tail: None,
        };
        let mut no_version = kernel(
            "host",
            "6.18.44",
            vec![batch_result(CaseOutcome::Pass, Actual::errno(524))],
        );
        no_version.version = None;
        let mut skipped_kernel = kernel(
            "5.5.0",
            "5.5.0",
            vec![batch_result(CaseOutcome::Pass, Actual::errno(libc::EINVAL))],
        );
        skipped_kernel.status = KernelStatus::Skipped {
            reason: "no local image".into(),
        };
        let results = RunResults::new(vec![
            skipped_kernel,
            kernel(
                "5.4",
                "5.4.286",
                vec![batch_result(
                    CaseOutcome::Skipped {
                        reason: "no BTF".into(),
                    },
                    Actual::errno(libc::EINVAL),
                )],
            ),
            kernel(
                "5.5",
                "5.5.19",
                vec![batch_result(
                    CaseOutcome::Error {
                        message: "netns".into(),
                    },
                    Actual::errno(libc::EINVAL),
                )],
            ),
            kernel(
                "6.1",
                "6.1.176",
                vec![batch_result(CaseOutcome::Diverged, not_run)],
            ),
            // Ran, but without this case.
            kernel("7.0", "7.0.13", vec![]),
            failed_kernel,
            no_version,
        ]);
        let evidence = variant_evidence(&[case(BATCH)], &results);
        assert_eq!(
            outline(&evidence),
            [
                ("< 5.6", VariantState::Unverified, vec![]),
                (">= 5.6", VariantState::Unverified, vec![]),
            ]
        );
    }

    #[test]
    fn a_variant_only_diverging_kernels_ran_is_contradicted() {
        let diverged = || batch_result(CaseOutcome::Diverged, Actual::errno(libc::EINVAL));
        let contradicted = RunResults::new(vec![
            kernel("6.1", "6.1.176", vec![diverged()]),
            kernel("6.12", "6.12.117", vec![diverged()]),
        ]);
        let evidence = variant_evidence(&[case(BATCH)], &contradicted);
        assert_eq!(
            outline(&evidence)[1],
            (
                ">= 5.6",
                VariantState::Contradicted,
                vec![("6.1", false), ("6.12", false)]
            )
        );

        // One kernel that does what the variant says is enough to have seen it.
        let mixed = RunResults::new(vec![
            kernel("6.1", "6.1.176", vec![diverged()]),
            kernel(
                "6.12",
                "6.12.117",
                vec![batch_result(CaseOutcome::Pass, Actual::errno(524))],
            ),
        ]);
        let evidence = variant_evidence(&[case(BATCH)], &mixed);
        assert_eq!(
            outline(&evidence)[1],
            (
                ">= 5.6",
                VariantState::Seen,
                vec![("6.1", false), ("6.12", true)]
            )
        );
    }

    #[test]
    fn only_versioned_expectations_are_listed_fork_steps_included() {
        let forked = format!(
            "{BATCH}{}",
            r#"  - fork:
      - lookup: { map: store, socket: s }
        expect:
          - { until: "6.1", expect: { value: 1 }, reason: before }
          - { since: "6.1", expect: ENOENT, reason: after }
    expect: ok
"#
        );
        let evidence = variant_evidence(&[case(&forked)], &RunResults::new(vec![]));
        let steps: Vec<(&str, &str)> = evidence
            .iter()
            .map(|v| (v.step.as_str(), v.label.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                ("2", "lookup_batch store [s]"),
                ("2", "lookup_batch store [s]"),
                ("3.1", "lookup store[s]"),
                ("3.1", "lookup store[s]"),
            ]
        );
    }

    #[test]
    fn ranges_read_as_text_and_a_single_bounded_variant_is_versioned() {
        let yaml = r#"name: optmem
description: storage limits by version
requires: { kernel: "5.4" }
maps:
  store: { value: u32 }
sockets:
  s: { family: inet }
steps:
  - update: { map: store, socket: s, value: 1 }
    expect:
      - { until: "6.8", expect: ENOMEM, reason: optmem_max is 20 KiB }
      - { since: "6.8", until: "7.1", expect: ok, reason: optmem_max is 128 KiB }
      - { since: "7.1", expect: ENOMEM, reason: elements are limited to 8 KiB }
  - lookup: { map: store, socket: s }
    expect:
      - { since: "5.4", expect: ENOENT, reason: the case needs 5.4 }
"#;
        let evidence = variant_evidence(&[case(yaml)], &RunResults::new(vec![]));
        let ranges: Vec<&str> = evidence.iter().map(|v| v.range.as_str()).collect();
        assert_eq!(ranges, ["< 6.8", ">= 6.8, < 7.1", ">= 7.1", ">= 5.4"]);
        assert_eq!(
            summary(&evidence),
            "4 versioned variants: 0 seen, 0 contradicted, 4 unverified"
        );
    }

    #[test]
    fn a_boundary_is_run_on_both_sides_only_between_adjacent_releases() {
        let state = |below: &str, above: &str| {
            let results = RunResults::new(vec![
                kernel(
                    below,
                    below,
                    vec![batch_result(CaseOutcome::Pass, Actual::errno(22))],
                ),
                kernel(
                    above,
                    above,
                    vec![batch_result(CaseOutcome::Pass, Actual::errno(524))],
                ),
            ]);
            let found = boundary_evidence(&[case(BATCH)], &results);
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].at, KernelVersion::new(5, 6, 0));
            found[0].state
        };
        assert_eq!(state("5.5.19", "5.6.4"), BoundaryState::BothSides);
        assert_eq!(state("5.4.286", "5.7.14"), BoundaryState::Placed);
        // Both kernels on one side of the boundary: the other side is unverified.
        assert_eq!(state("5.7.14", "6.1.176"), BoundaryState::Unverified);
    }

    #[test]
    fn the_terminal_view_lists_kernels_then_the_unverified_variants() {
        let mut no_version = kernel("host", "6.18.44", vec![]);
        no_version.version = None;
        let results = RunResults::new(vec![
            kernel(
                "6.1",
                "6.1.176",
                vec![batch_result(CaseOutcome::Diverged, Actual::errno(22))],
            ),
            kernel(
                "6.12",
                "6.12.117",
                vec![batch_result(CaseOutcome::Pass, Actual::errno(524))],
            ),
            no_version,
        ]);
        let cases = [case(BATCH)];
        let mut out = Vec::new();
        write(&mut out, &cases, &results, false).expect("writes to memory");
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            "\
Versioned variants the kernels ran:
  batch step 2 (lookup_batch store [s]) [cases/test.yaml]
    >= 5.6 expects ENOTSUPP: seen on 6.12 (6.12.117); diverged on 6.1 (6.1.176)
  not counted: host (reported no version)

Boundaries the cases place:
  batch at 5.6 (step 2): unverified, between no kernel and 6.1 (6.1.176)
1 boundary the cases place: 0 run on both sides, 0 placed between kernels further apart, 1 unverified

Unverified variants (no kernel in these results ran them):
  batch step 2 (lookup_batch store [s]) [cases/test.yaml]
    < 5.6 expects EINVAL
      because: batch commands came in 5.6
2 versioned variants: 1 seen, 0 contradicted, 1 unverified
"
        );

        let mut out = Vec::new();
        write_unverified(&mut out, &cases, &results, false).expect("writes to memory");
        let printed = String::from_utf8(out).expect("UTF-8");
        assert!(
            printed.starts_with("Unverified variants (no kernel in these results ran them):\n"),
            "{printed}"
        );
        assert!(
            printed.ends_with("1 unverified\n") && !printed.contains("seen on"),
            "{printed}"
        );
    }
}
