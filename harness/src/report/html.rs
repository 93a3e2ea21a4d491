//! `report.html`: one self-contained page for triage in a browser (no network, no other
//! file): what diverged, failed or changed between versions first, then the case × kernel
//! matrix in colour with filters, and a drill-down into any cell (`report.html#6.1/CASE`
//! opens one).
//!
//! The askama template (`harness/templates/report.html`, with its stylesheet and script
//! beside it) is checked at compile time and escapes every value. What the drill-down
//! shows travels as JSON in the page and is drawn by the script as text, never as markup.
//! A step shown alike on several kernels is stored once: the default matrix's 16,389 step
//! results are 1,355 distinct ones.

use std::collections::HashMap;

use askama::Template;
use indexmap::IndexMap;
use serde::Serialize;

use super::{
    build_differences,
    changes::{self, BehaviourChange},
    kernel_label,
    matrix::{self, Cell},
};
use crate::results::{CaseOutcome, CaseResult, KernelStatus, RunResults, StepResult, Verdict};

/// The longest expected or actual outcome the page shows in full; a longer one (a lookup of
/// an 8 KB value) is cut, with the number of characters left out.
const MAX_OUTCOME_CHARS: usize = 600;

fn shorten(text: &str) -> String {
    super::shorten(text, MAX_OUTCOME_CHARS)
}

pub fn render(results: &RunResults) -> String {
    Page::new(results)
        .render()
        .expect("the page's values always render")
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    results: &'a RunResults,
    build_warning: Option<String>,
    kernels: Vec<KernelColumn>,
    rows: Vec<MatrixRow<'a>>,
    totals: [(Cell, usize); 5],
    divergences: Vec<DivergenceItem>,
    kernel_errors: Vec<KernelError>,
    changes: Vec<ChangeItem>,
    unexpected_changes: usize,
    drill_down: DrillDown<'a>,
}

/// A kernel's column heading and its summary under the matrix.
struct KernelColumn {
    name: String,
    version: Option<String>,
    summary: String,
}

struct MatrixRow<'a> {
    case: &'a str,
    cells: Vec<MatrixCell>,
    /// Some kernel that ran the case saw it diverge or fail ([`matrix::Row::troubled`]).
    troubled: bool,
    /// Some step of the case behaves otherwise on some kernel than on the one before it.
    changed: bool,
}

struct MatrixCell {
    state: Cell,
    kernel: String,
    /// The behaviour changed here from the kernel before in version order.
    changed: bool,
}

struct DivergenceItem {
    kernel: String,
    kernel_label: String,
    case: String,
    step: String,
    label: String,
    location: String,
    expected: String,
    actual: String,
    reason: Option<String>,
}

struct KernelError {
    label: String,
    message: String,
    log_tail: Option<String>,
}

struct ChangeItem {
    /// The kernel it changed on, whose cell the item links to.
    kernel: String,
    case: String,
    step: String,
    label: String,
    location: String,
    before_label: String,
    after_label: String,
    before: String,
    after: String,
    /// The case's expectations foresee the change.
    expected: bool,
    verdict: String,
}

/// What the drill-down draws: per kernel and case, the case's outcome and its steps (as
/// indexes into `steps`).
#[derive(Serialize)]
struct DrillDown<'a> {
    kernels: IndexMap<&'a str, KernelInfo>,
    steps: Vec<StepView>,
    cells: IndexMap<&'a str, IndexMap<&'a str, CellView<'a>>>,
}

#[derive(Serialize)]
struct KernelInfo {
    label: String,
    /// Why it ran no case, or not all of them (error, skip).
    trouble: Option<String>,
    log_tail: Option<String>,
}

#[derive(Serialize)]
struct CellView<'a> {
    outcome: &'static str,
    /// The skip's reason or the error's message.
    note: Option<&'a str>,
    file: &'a str,
    duration_ms: u64,
    steps: Vec<usize>,
}

#[derive(Serialize, Clone, PartialEq, Eq, Hash)]
struct StepView {
    id: String,
    label: String,
    line: Option<usize>,
    expected: String,
    actual: String,
    reason: Option<String>,
    diverged: bool,
}

impl<'a> Page<'a> {
    fn new(results: &'a RunResults) -> Self {
        let changes = changes::across_kernels(results).changes;
        let rows = matrix::rows(results);
        let matrix_rows = rows
            .iter()
            .map(|row| MatrixRow {
                case: row.case,
                cells: row
                    .cells
                    .iter()
                    .zip(&row.changed)
                    .zip(&results.kernels)
                    .map(|((state, changed), run)| MatrixCell {
                        state: *state,
                        kernel: run.kernel.clone(),
                        changed: *changed,
                    })
                    .collect(),
                troubled: row.troubled,
                changed: row.changed_anywhere(),
            })
            .collect();
        let kernels = results
            .kernels
            .iter()
            .map(|run| KernelColumn {
                name: run.kernel.clone(),
                version: run
                    .version
                    .map(|v| v.to_string())
                    .filter(|v| *v != run.kernel),
                summary: match &run.status {
                    KernelStatus::Ran => matrix::tally(run),
                    KernelStatus::Error { message, .. } => format!(
                        "kernel error: {}",
                        message.lines().next().unwrap_or_default()
                    ),
                    KernelStatus::Skipped { reason } => format!("kernel skipped: {reason}"),
                },
            })
            .collect();
        let divergences = changes::divergences(results)
            .into_iter()
            .map(|d| DivergenceItem {
                kernel_label: kernel_label(&d.kernel, d.version),
                location: d.location(),
                expected: shorten(&d.expected.to_string()),
                actual: shorten(&d.actual.to_string()),
                kernel: d.kernel,
                case: d.case,
                step: d.step,
                label: d.label,
                reason: d.reason,
            })
            .collect();
        let kernel_errors = results
            .kernels
            .iter()
            .filter_map(|run| match &run.status {
                KernelStatus::Error { message, log_tail } => Some(KernelError {
                    label: kernel_label(&run.kernel, run.version),
                    message: message.clone(),
                    log_tail: log_tail.as_deref().map(strip_ansi_escapes::strip_str),
                }),
                _ => None,
            })
            .collect();
        Page {
            results,
            build_warning: build_differences(results),
            kernels,
            totals: matrix::totals(&rows),
            rows: matrix_rows,
            divergences,
            kernel_errors,
            unexpected_changes: changes.iter().filter(|c| !c.expected()).count(),
            changes: changes.iter().map(ChangeItem::of).collect(),
            drill_down: DrillDown::new(results),
        }
    }

    fn title(&self) -> String {
        format!(
            "SK_STORAGE behaviour on {} kernel(s)",
            self.results.kernels.len()
        )
    }

    fn cases(&self) -> usize {
        self.rows.len()
    }
}

impl ChangeItem {
    fn of(change: &BehaviourChange) -> Self {
        ChangeItem {
            kernel: change.after.kernel.clone(),
            case: change.case.clone(),
            step: change.step.clone(),
            label: change.label.clone(),
            location: super::location(&change.file, change.line),
            before_label: kernel_label(&change.before.kernel, Some(change.before.version)),
            after_label: kernel_label(&change.after.kernel, Some(change.after.version)),
            before: shorten(&change.before.actual.to_string()),
            after: shorten(&change.after.actual.to_string()),
            expected: change.expected(),
            verdict: change.verdict(),
        }
    }
}

impl<'a> DrillDown<'a> {
    fn new(results: &'a RunResults) -> Self {
        let mut steps = Vec::new();
        let mut index: HashMap<StepView, usize> = HashMap::new();
        let mut cells = IndexMap::new();
        for run in &results.kernels {
            let of_kernel = run
                .cases
                .iter()
                .map(|case| {
                    let ids = case
                        .steps
                        .iter()
                        .map(|step| {
                            let view = StepView::of(step);
                            *index.entry(view.clone()).or_insert_with(|| {
                                steps.push(view);
                                steps.len() - 1
                            })
                        })
                        .collect();
                    (case.name.as_str(), CellView::of(case, ids))
                })
                .collect();
            cells.insert(run.kernel.as_str(), of_kernel);
        }
        let kernels = results
            .kernels
            .iter()
            .map(|run| {
                let (trouble, log_tail) = match &run.status {
                    KernelStatus::Ran => (None, None),
                    KernelStatus::Error { message, log_tail } => (
                        Some(format!("kernel error: {message}")),
                        log_tail.as_deref().map(strip_ansi_escapes::strip_str),
                    ),
                    KernelStatus::Skipped { reason } => {
                        (Some(format!("kernel skipped: {reason}")), None)
                    }
                };
                let info = KernelInfo {
                    label: kernel_label(&run.kernel, run.version),
                    trouble,
                    log_tail,
                };
                (run.kernel.as_str(), info)
            })
            .collect();
        DrillDown {
            kernels,
            steps,
            cells,
        }
    }
}

impl<'a> CellView<'a> {
    fn of(case: &'a CaseResult, steps: Vec<usize>) -> Self {
        let (outcome, note) = match &case.outcome {
            CaseOutcome::Pass => ("pass", None),
            CaseOutcome::Diverged => ("diverged", None),
            CaseOutcome::Skipped { reason } => ("skipped", Some(reason.as_str())),
            CaseOutcome::Error { message } => ("error", Some(message.as_str())),
        };
        CellView {
            outcome,
            note,
            file: &case.file,
            duration_ms: case.duration_ms,
            steps,
        }
    }
}

impl StepView {
    fn of(step: &StepResult) -> Self {
        StepView {
            id: step.id.clone(),
            label: step.label.clone(),
            line: step.line,
            expected: shorten(&step.expected.to_string()),
            actual: shorten(&step.actual.to_string()),
            reason: step.reason.clone(),
            diverged: step.verdict == Verdict::Diverged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Actual, KernelRun};

    #[test]
    fn text_from_the_results_is_never_markup() {
        let hostile = "</script><script>alert(1)</script>";
        let step = StepResult {
            id: "1".into(),
            label: hostile.into(),
            line: Some(3),
            expected: crate::case::Expected::Ok,
            reason: Some(hostile.into()),
            actual: Actual::Rejected {
                errno: "EACCES".into(),
                message: hostile.into(),
            },
            verdict: Verdict::Diverged,
        };
        let run = KernelRun {
            cases: vec![CaseResult {
                name: hostile.into(),
                file: hostile.into(),
                outcome: CaseOutcome::Diverged,
                duration_ms: 0,
                steps: vec![step],
            }],
            ..KernelRun::without_cases(hostile, KernelStatus::Ran)
        };
        let page = render(&RunResults::new(vec![run]));
        assert!(!page.contains("<script>alert"), "{page}");
        assert_eq!(
            page.matches("<script").count(),
            2,
            "the data and the script only"
        );
    }
}
