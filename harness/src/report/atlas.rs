//! The behaviour atlas: every outcome a case pins that changes across a run's kernels, as a
//! boundary between two kernels: the case and its steps, the outcome on each side, the last
//! kernel showing the old outcome and the first showing the new, whether the run saw both
//! sides of adjacent releases or the boundary is only placed between kernels further apart
//! (where the case's versioned expectations put it, and why), and the case's reason.
//!
//! It is [`super::changes::across_kernels`] grouped by case and boundary; drift is left out.

use std::{
    collections::HashMap,
    fmt::Write as _,
    io::{self, Write},
    sync::Arc,
};

use serde::Serialize;

use super::{
    changes::{self, BehaviourChange},
    edges::{iteration_runs, run_name},
    kernel_label, location, wrap,
};
use crate::{
    case::Case,
    results::{Actual, RunResults, StepResult},
    version::KernelVersion,
};

/// Where one case's pinned outcomes change between two kernels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Boundary {
    pub case: String,
    pub file: String,
    /// The last kernel (in version order) showing the old outcomes.
    pub last_old: Side,
    /// The first kernel showing the new ones.
    pub first_new: Side,
    pub steps: Vec<StepChange>,
    pub seen: Seen,
    /// The case's versioned expectations describe the change (both sides pass).
    pub expected: bool,
    /// Why the case expects the new outcome: the reason of the variant in force on the first
    /// new kernel.
    pub reason: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub kernel: String,
    pub version: KernelVersion,
}

/// One step's change at a boundary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepChange {
    pub step: String,
    pub label: String,
    pub line: Option<usize>,
    pub old: Actual,
    pub new: Actual,
    /// The fields that differ, when the outcomes are values.
    pub fields: Option<String>,
}

/// How much of a boundary the run saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "seen", rename_all = "snake_case")]
pub enum Seen {
    /// The two kernels are adjacent releases: consecutive mainline series (7.0 | 7.1,
    /// 5.19 | 6.0) or consecutive point releases of one series. Nothing between them was
    /// left out.
    BothSides,
    /// Releases between the two kernels were not run: the change lies somewhere in between.
    /// `at` is where the case's versioned expectations place it, when they do.
    Placed { at: Option<KernelVersion> },
}

/// Every boundary of the run, in the order of its first new kernel's version, then of the
/// cases as they first appear. Where the case places a boundary comes from the results
/// (each step records where its variant in force begins).
pub fn boundaries(results: &RunResults) -> Vec<Boundary> {
    let steps = steps_by_place(results);
    let mut found: Vec<Boundary> = Vec::new();
    // Each boundary's index in `found`, by case, last old kernel and first new kernel.
    let mut index: HashMap<(String, String, String), usize> = HashMap::new();
    for change in changes::across_kernels(results).changes {
        let step = StepChange {
            step: change.step.clone(),
            label: change.label.clone(),
            line: change.line,
            fields: change.fields(),
            old: change.before.actual.clone(),
            new: change.after.actual.clone(),
        };
        let key = (
            change.case.clone(),
            change.before.kernel.clone(),
            change.after.kernel.clone(),
        );
        if let Some(&i) = index.get(&key) {
            let boundary = &mut found[i];
            boundary.expected &= change.expected();
            boundary.steps.push(step);
            continue;
        }
        index.insert(key, found.len());
        // The change's step as its new kernel ran it.
        let after = steps
            .get(&(
                change.after.kernel.as_str(),
                change.case.as_str(),
                change.step.as_str(),
            ))
            .copied();
        found.push(Boundary {
            seen: seen(&change, after.and_then(|s| s.since)),
            expected: change.expected(),
            reason: after.and_then(|s| s.reason.clone()),
            case: change.case.clone(),
            file: change.file.clone(),
            last_old: Side {
                kernel: change.before.kernel.clone(),
                version: change.before.version,
            },
            first_new: Side {
                kernel: change.after.kernel.clone(),
                version: change.after.version,
            },
            steps: vec![step],
        });
    }
    // Stable: cases keep their order within one boundary version.
    found.sort_by_key(|b| b.first_new.version);
    found
}

/// Both sides were seen when the kernels are adjacent releases and the case does not place
/// the change inside the new kernel's series (a stable backport: 5.10.138 is not seen by
/// running 5.9.1 and 5.10.223). `since`: where the new kernel's variant begins.
fn seen(change: &BehaviourChange, since: Option<KernelVersion>) -> Seen {
    let (old, new) = (change.before.version, change.after.version);
    let at = since.filter(|since| old < *since && *since <= new);
    let series_start = KernelVersion::new(new.major, new.minor, 0);
    if old.adjacent_to(new) && at.is_none_or(|at| at == series_start || at == new) {
        Seen::BothSides
    } else {
        Seen::Placed { at }
    }
}

/// Every step of the results by kernel, case and step id.
fn steps_by_place(results: &RunResults) -> HashMap<(&str, &str, &str), &StepResult> {
    results
        .kernels
        .iter()
        .flat_map(|k| {
            k.cases.iter().flat_map(move |c| {
                c.steps
                    .iter()
                    .map(move |s| ((k.kernel.as_str(), c.name.as_str(), s.id.as_str()), s))
            })
        })
        .collect()
}

impl Boundary {
    /// `7.0 (7.0.13) | 7.1 (7.1.13)`.
    pub fn between(&self) -> String {
        format!(
            "{} | {}",
            kernel_label(&self.last_old.kernel, Some(self.last_old.version)),
            kernel_label(&self.first_new.kernel, Some(self.first_new.version))
        )
    }

    /// How the run saw the boundary, in words.
    pub fn seen_text(&self) -> String {
        match &self.seen {
            Seen::BothSides => "run on both sides (adjacent releases)".to_string(),
            Seen::Placed { at: Some(at) } => format!(
                "placed at {at} by the case; releases between {} and {} not run",
                self.last_old.version, self.first_new.version
            ),
            Seen::Placed { at: None } => format!(
                "placed between {} and {}; releases between them not run",
                self.last_old.version, self.first_new.version
            ),
        }
    }
}

impl Boundary {
    /// The steps as the views list them: consecutive iterations of a repeated step that
    /// changed alike are one entry, `(name, label, change)`: `1.*.2, iterations 1–9`.
    pub fn step_entries(&self) -> Vec<(String, String, &StepChange)> {
        let runs = iteration_runs(
            &self.steps,
            |s| s.step.as_str(),
            |a, b| a.old == b.old && a.new == b.new,
        );
        runs.into_iter()
            .map(|(first, last)| {
                let (a, b) = (&self.steps[first], &self.steps[last]);
                let label = if first == last {
                    a.label.clone()
                } else {
                    format!("{} … {}", a.label, b.label)
                };
                (run_name(&a.step, &b.step), label, a)
            })
            .collect()
    }
}

impl StepChange {
    /// `ok → ENOMEM (12)`, with the fields that differ when the outcomes are values.
    pub fn describe(&self, max: usize) -> String {
        let fields = self
            .fields
            .as_ref()
            .map_or_else(String::new, |f| format!(" (in {f})"));
        format!(
            "{} → {}{fields}",
            super::shorten(&self.old.to_string(), max),
            super::shorten(&self.new.to_string(), max)
        )
    }
}

/// The longest outcome printed in full.
const MAX_OUTCOME_CHARS: usize = 200;

/// The terminal view: a block per boundary.
pub fn write(
    out: &mut impl Write,
    boundaries: &[Boundary],
    results: &RunResults,
    width: usize,
) -> io::Result<()> {
    writeln!(out, "{}", summary(boundaries, results))?;
    for b in boundaries {
        writeln!(out)?;
        let title = format!(
            "{} at {}: {}{}",
            b.case,
            b.between(),
            b.seen_text(),
            if b.expected {
                ""
            } else {
                " [NOT EXPECTED by the case]"
            }
        );
        for line in wrap(&title, width, "", "    ") {
            writeln!(out, "{line}")?;
        }
        for (name, label, step) in b.step_entries() {
            let text = format!(
                "step {name} ({label}): {} [{}]",
                step.describe(MAX_OUTCOME_CHARS),
                location(&b.file, step.line)
            );
            for line in wrap(&text, width, "  ", "      ") {
                writeln!(out, "{line}")?;
            }
        }
        if let Some(reason) = &b.reason {
            for line in wrap(&format!("because: {reason}"), width, "  ", "    ") {
                writeln!(out, "{line}")?;
            }
        }
    }
    let left_out = changes::left_out(results);
    if !left_out.is_empty() {
        writeln!(out)?;
        writeln!(out, "Kernels not (fully) compared:")?;
        for line in left_out {
            for line in wrap(&line, width, "  ", "    ") {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// `12 changes of pinned outcomes between kernels, in 9 cases over 12 kernels (5.2.1 … 7.3.4): 7 run on both sides, 5 placed …`.
pub fn summary(boundaries: &[Boundary], results: &RunResults) -> String {
    let mut versions: Vec<KernelVersion> =
        results.kernels.iter().filter_map(|k| k.version).collect();
    versions.sort();
    let span = match (versions.first(), versions.last()) {
        (Some(first), Some(last)) => format!(" ({first} … {last})"),
        _ => String::new(),
    };
    let mut cases: Vec<&str> = boundaries.iter().map(|b| b.case.as_str()).collect();
    cases.sort_unstable();
    cases.dedup();
    let both = boundaries
        .iter()
        .filter(|b| b.seen == Seen::BothSides)
        .count();
    let unexpected = boundaries.iter().filter(|b| !b.expected).count();
    format!(
        "{} change{} of pinned outcomes between kernels, in {} case(s) over {} kernel(s){span}: {both} run on both sides, {} placed between kernels further apart; {unexpected} not expected by the cases",
        boundaries.len(),
        if boundaries.len() == 1 { "" } else { "s" },
        cases.len(),
        versions.len(),
        boundaries.len() - both,
    )
}

/// The atlas as Markdown: a table of contents by boundary version, then a section per
/// boundary. `heading` is the level of the section headings (`###` in report.md).
pub fn markdown(boundaries: &[Boundary], results: &RunResults, heading: &str) -> String {
    let mut md = String::new();
    // Writing into a String cannot fail.
    let _ = write_markdown(&mut md, boundaries, results, heading);
    md
}

fn write_markdown(
    md: &mut String,
    boundaries: &[Boundary],
    results: &RunResults,
    heading: &str,
) -> std::fmt::Result {
    writeln!(md, "{}.", super::md::text(&summary(boundaries, results)))?;
    for b in boundaries {
        writeln!(md)?;
        writeln!(
            md,
            "{heading} {} at {}",
            super::md::code(&b.case),
            super::md::text(&b.between())
        )?;
        writeln!(md)?;
        let mark = if b.expected {
            ""
        } else {
            " **Not expected by the case.**"
        };
        writeln!(
            md,
            "{}.{mark} `{}`",
            super::md::text(&b.seen_text()),
            b.file
        )?;
        writeln!(md)?;
        for (name, label, step) in b.step_entries() {
            writeln!(
                md,
                "- step {name} {}: {} → {}{} ({})",
                super::md::code(&label),
                super::md::code(&super::shorten(&step.old.to_string(), MAX_OUTCOME_CHARS)),
                super::md::code(&super::shorten(&step.new.to_string(), MAX_OUTCOME_CHARS)),
                step.fields
                    .as_ref()
                    .map_or_else(String::new, |f| format!(" (in {})", super::md::code(f))),
                super::md::code(&location(&b.file, step.line)),
            )?;
        }
        if let Some(reason) = &b.reason {
            writeln!(md)?;
            writeln!(md, "Because: {}", super::md::text(reason))?;
        }
    }
    Ok(())
}

/// The behaviour page (docs/src/behaviour.md): what a run of kernels says about sk storage,
/// generated from its results and the cases, never written by hand. `source` names the
/// results file the page is generated from.
pub fn page(results: &RunResults, cases: &[Case], source: &str) -> String {
    let mut md = String::new();
    // Writing into a String cannot fail.
    let _ = write_page(&mut md, results, cases, source);
    md
}

fn write_page(
    md: &mut String,
    results: &RunResults,
    cases: &[Case],
    source: &str,
) -> std::fmt::Result {
    use super::md::{code, text};
    writeln!(md, "# How SK_STORAGE behaves across kernels")?;
    writeln!(md)?;
    writeln!(
        md,
        "<!-- Generated from {source} and cases/ by `BLESS=1 cargo test --test integration behaviour_page`: edit the cases or run the matrix again, not this page. -->"
    )?;
    writeln!(md)?;
    let accel = super::md::under_accel(results);
    writeln!(
        md,
        "From the run in `{source}` (harness {}, {}{accel}), {} case(s) on these kernels:",
        code(&results.harness.to_string()),
        results.started,
        cases.len()
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "| kernel | version | pass | diverged | skipped | error |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    for run in &results.kernels {
        let count = |state: super::matrix::Cell| {
            run.cases
                .iter()
                .filter(|c| super::matrix::Cell::of(&c.outcome) == state)
                .count()
        };
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            code(&run.kernel),
            run.version
                .map_or_else(|| "?".to_string(), |v| v.to_string()),
            count(super::matrix::Cell::Pass),
            count(super::matrix::Cell::Diverged),
            count(super::matrix::Cell::Skipped),
            count(super::matrix::Cell::Error),
        )?;
    }
    writeln!(md)?;
    writeln!(md, "## Where behaviour changes")?;
    writeln!(md)?;
    writeln!(
        md,
        "Each entry is one case whose pinned outcomes (an outcome's kind, an errno, a rejection's text, a literal value) differ between two kernels adjacent in version order: the last kernel with the old outcome | the first with the new. *Run on both sides* means the two kernels are adjacent releases; *placed* means releases between them were not run, and the case's versioned expectations say where the change is believed to be."
    )?;
    writeln!(md)?;
    md.push_str(&markdown(&boundaries(results), results, "###"));
    let drift = changes::across_kernels(results).drift;
    if !drift.is_empty() {
        writeln!(md)?;
        writeln!(md, "## Differences the cases leave open")?;
        writeln!(md)?;
        writeln!(
            md,
            "Not behaviour changes: values under `any`, comparisons that still hold, thread counts, text a rejection is not required to contain. {} difference(s):",
            drift.len()
        )?;
        writeln!(md)?;
        for line in changes::drift_summary(&drift) {
            writeln!(md, "- {}", text(&line))?;
        }
    }
    writeln!(md)?;
    writeln!(md, "## What each kernel skipped, and why")?;
    for run in &results.kernels {
        let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
        for case in &run.cases {
            if let crate::results::CaseOutcome::Skipped { reason } = &case.outcome {
                match reasons.iter_mut().find(|(r, _)| *r == reason.as_str()) {
                    Some((_, names)) => names.push(&case.name),
                    None => reasons.push((reason, vec![&case.name])),
                }
            }
        }
        if reasons.is_empty() {
            continue;
        }
        writeln!(md)?;
        writeln!(md, "- {}:", code(&kernel_label(&run.kernel, run.version)))?;
        for (reason, names) in reasons {
            let names: Vec<String> = names.iter().map(|n| code(n)).collect();
            writeln!(md, "  - {}: {}", text(reason), names.join(", "))?;
        }
    }
    writeln!(md)?;
    writeln!(md, "## Evidence for the versioned expectations")?;
    writeln!(md)?;
    writeln!(
        md,
        "{}; {}. `harness report show {source} --format atlas` and `harness report evidence {source}` show the same from the command line.",
        text(&super::evidence::boundary_summary(
            &super::evidence::boundary_evidence(cases, results)
        )),
        text(&super::evidence::summary(
            &super::evidence::variant_evidence(cases, results)
        ))
    )?;
    Ok(())
}
