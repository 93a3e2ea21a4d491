//! `report.html`: one self-contained page for triage in a browser (no network, no other
//! file): what diverged, failed or changed between versions first, then the case × kernel
//! matrix with filters, and a drill-down into any cell (`report.html#6.1/CASE` opens one).
//! The matrix shows either each cell's verdict or how its steps' outcomes changed from the
//! kernel before it in version order (`2: ok → ENOMEM`); the drill-down shows each step's
//! outcome on that kernel beside this one's.
//!
//! The askama template (`harness/templates/report.html`, with its stylesheet and script
//! beside it) is checked at compile time and escapes every value. What the drill-down
//! shows travels as JSON in the page and is drawn by the script as text, never as markup.
//! A step shown alike on several kernels is stored once: the default matrix's 16,389 step
//! results are 1,404 distinct ones.

use std::{collections::HashMap, sync::Arc};

use askama::Template;
use indexmap::IndexMap;
use serde::Serialize;

use super::{
    changes::{self, Across, BehaviourChange},
    kernel_label,
    matrix::{self, Cell},
};
use crate::results::{
    Actual, CaseOutcome, CaseResult, KernelRun, KernelStatus, RunResults, StepResult, Verdict,
    pinned::outcome_class,
};

/// The longest expected or actual outcome the page shows in full; a longer one (a lookup of
/// an 8 KB value) is cut, with the number of characters left out.
const MAX_OUTCOME_CHARS: usize = 600;

/// The longest outcome a matrix cell shows as it is (`value 7`); a longer one is named by
/// its kind (`value`, `rejected`).
const MAX_CELL_OUTCOME_CHARS: usize = 10;
/// The states a cell shows alike in both views: the outcome view compares the cases that
/// passed or diverged.
const SHOWN_AS_VERDICTS: [Cell; 3] = [Cell::Skipped, Cell::Error, Cell::Absent];
/// The longest change a matrix cell shows; its tooltip and the drill-down have the rest.
const MAX_CELL_CHARS: usize = 28;
/// The most changed steps a cell's tooltip lists.
const MAX_TOOLTIP_STEPS: usize = 6;

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
    atlas: Vec<AtlasItem>,
    atlas_summary: String,
    unexpected_changes: usize,
    drill_down: DrillDown<'a>,
}

/// Per kernel and case: how its steps differ from the kernels before it in version order,
/// changes then drift, each in step order.
type Differences<'c> = HashMap<(&'c str, &'c str), Vec<&'c BehaviourChange>>;

/// A kernel's column heading and its summary under the matrix.
struct KernelColumn {
    name: String,
    version: Option<String>,
    /// kernels.toml's note on it.
    note: Option<String>,
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
    /// What the outcome view shows instead of the verdict, for a case that passed or
    /// diverged: the first step that changed (`2: ok → ENOMEM +1`), or `=` (nothing did),
    /// or `≈` (only what the case leaves open did). A diverged case without a change, and
    /// every other state, shows its verdict in both views.
    outcome: Option<String>,
    /// How the outcome view colours a change: `expected` when the case expects both
    /// sides of every change in the cell, else `unexpected`.
    change: Option<&'static str>,
    /// The case, kernel and state, then each step that changed or drifted here.
    title: String,
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
    reason: Option<Arc<str>>,
}

struct KernelError {
    label: String,
    message: String,
    log_tail: Option<String>,
}

/// A boundary of the atlas, linked to its first new kernel's cell.
struct AtlasItem {
    kernel: String,
    case: String,
    between: String,
    seen: String,
    expected: bool,
    /// Each step entry: its name, label and `old → new`.
    steps: Vec<(String, String, String)>,
    reason: Option<Arc<str>>,
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
    kernels: IndexMap<&'a str, KernelInfo<'a>>,
    steps: Vec<StepView>,
    cells: IndexMap<&'a str, IndexMap<&'a str, CellView<'a>>>,
}

#[derive(Serialize)]
struct KernelInfo<'a> {
    label: String,
    /// Why it ran no case, or not all of them (error, skip).
    trouble: Option<String>,
    log_tail: Option<String>,
    /// The kernel before this one in version order, whose steps its cells show beside
    /// their own unless a cell says otherwise.
    previous: Option<&'a str>,
}

#[derive(Serialize)]
struct CellView<'a> {
    outcome: &'static str,
    /// The skip's reason or the error's message.
    note: Option<&'a str>,
    file: &'a str,
    duration_ms: u64,
    steps: Vec<usize>,
    /// The kernel before this one in version order that ran the case, whose steps are
    /// shown beside this kernel's: set only where that is not the kernel's `previous` (an
    /// earlier kernel, or none), which keeps the page small.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<Option<&'a str>>,
    /// Per step id, how the step differs from the kernel before it that ran it.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    differences: IndexMap<String, StepDifference>,
}

#[derive(Serialize)]
struct StepDifference {
    /// `expected` or `unexpected` for a change of behaviour, `drift` for a difference in
    /// what the case leaves open.
    kind: &'static str,
    /// `changed in value.count, as the case expects`, naming the kernel compared with when
    /// it is not the one shown beside (the step did not run there).
    note: String,
}

#[derive(Serialize, Clone, PartialEq, Eq, Hash)]
struct StepView {
    id: String,
    label: String,
    line: Option<usize>,
    expected: String,
    actual: String,
    reason: Option<Arc<str>>,
    diverged: bool,
}

impl<'a> Page<'a> {
    fn new(results: &'a RunResults) -> Self {
        let across = changes::across_kernels(results);
        let differences = differences_by_cell(&across);
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
                    .map(|((state, changed), run)| {
                        let found = differences.get(&(run.kernel.as_str(), row.case));
                        MatrixCell::new(
                            row.case,
                            run,
                            *state,
                            *changed,
                            found.map_or(&[][..], Vec::as_slice),
                        )
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
                note: run.note.clone(),
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
        let boundaries = super::atlas::boundaries(results);
        Page {
            results,
            build_warning: crate::results::build_differences(results),
            kernels,
            totals: matrix::totals(&rows),
            rows: matrix_rows,
            divergences,
            kernel_errors,
            unexpected_changes: across.changes.iter().filter(|c| !c.expected()).count(),
            changes: across.changes.iter().map(ChangeItem::of).collect(),
            atlas_summary: super::atlas::summary(&boundaries, results),
            atlas: boundaries.iter().map(AtlasItem::of).collect(),
            drill_down: DrillDown::new(results, &differences),
        }
    }

    /// The matrix shows outcomes when there are kernels to compare, else verdicts.
    fn default_view(&self) -> &'static str {
        if self.kernels.len() > 1 {
            "outcomes"
        } else {
            "verdicts"
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

impl AtlasItem {
    fn of(boundary: &super::atlas::Boundary) -> Self {
        AtlasItem {
            kernel: boundary.first_new.kernel.clone(),
            case: boundary.case.clone(),
            between: boundary.between(),
            seen: boundary.seen_text(),
            expected: boundary.expected,
            steps: boundary
                .step_entries()
                .into_iter()
                .map(|(name, label, step)| (name, label, step.describe(MAX_OUTCOME_CHARS)))
                .collect(),
            reason: boundary.reason.clone(),
        }
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

/// Every change and drift of `across`, per kernel (the later side) and case.
fn differences_by_cell(across: &Across) -> Differences<'_> {
    let mut found: Differences<'_> = HashMap::new();
    for difference in across.changes.iter().chain(&across.drift) {
        found
            .entry((&difference.after.kernel, &difference.case))
            .or_default()
            .push(difference);
    }
    found
}

impl MatrixCell {
    fn new(
        case: &str,
        run: &KernelRun,
        state: Cell,
        changed: bool,
        differences: &[&BehaviourChange],
    ) -> Self {
        let (changes, drift): (Vec<&BehaviourChange>, Vec<&BehaviourChange>) = differences
            .iter()
            .partition(|difference| difference.difference.is_change());
        let judged = matches!(state, Cell::Pass | Cell::Diverged);
        let (outcome, change) = match changes.first() {
            Some(first) if judged => {
                let expected = changes.iter().all(|change| change.expected());
                let more = match changes.len() {
                    1 => String::new(),
                    n => format!(" +{}", n - 1),
                };
                let text = format!("{}: {}", first.step, brief_change(first));
                (
                    Some(format!("{}{more}", cut(&text, MAX_CELL_CHARS))),
                    Some(if expected { "expected" } else { "unexpected" }),
                )
            }
            _ if state == Cell::Pass => {
                (Some(if drift.is_empty() { "=" } else { "≈" }.into()), None)
            }
            _ => (None, None),
        };
        let title = title(case, run, state, &changes, &drift);
        MatrixCell {
            state,
            kernel: run.kernel.clone(),
            changed,
            outcome,
            change,
            title,
        }
    }
}

/// A cell's tooltip: `large-value-storage on 7.1: pass`, then what changed from the kernel
/// before (`changed from 7.0 (7.0.13):`, a line per step: `2: ok → ENOMEM`), then the parts
/// that drifted.
fn title(
    case: &str,
    run: &KernelRun,
    state: Cell,
    changes: &[&BehaviourChange],
    drift: &[&BehaviourChange],
) -> String {
    let mut title = format!("{case} on {}: {}", run.kernel, state.name());
    let before = |d: &BehaviourChange| kernel_label(&d.before.kernel, Some(d.before.version));
    if let Some(first) = changes.first() {
        let from = before(first);
        title.push_str(&format!("\nchanged from {from}:"));
        for change in changes.iter().take(MAX_TOOLTIP_STEPS) {
            title.push_str(&format!("\n{}: {}", change.step, brief_change(change)));
            // A step that did not run on that kernel is compared with an earlier one.
            if before(change) != from {
                title.push_str(&format!(" (from {})", before(change)));
            }
        }
        if changes.len() > MAX_TOOLTIP_STEPS {
            let more = changes.len() - MAX_TOOLTIP_STEPS;
            title.push_str(&format!("\n… {more} more in the drill-down"));
        }
    }
    if let Some(first) = drift.first() {
        let mut steps: Vec<&str> = drift.iter().map(|d| d.step.as_str()).collect();
        steps.dedup();
        let mut parts: Vec<&str> = drift
            .iter()
            .flat_map(|d| d.parts().iter().map(String::as_str))
            .collect();
        parts.sort_unstable();
        parts.dedup();
        title.push_str(&format!(
            "\ndrift (left open by the case) from {}: step(s) {} in {}",
            before(first),
            cut(&steps.join(", "), MAX_CELL_CHARS),
            cut(&parts.join(", "), MAX_CELL_CHARS)
        ));
    }
    title
}

/// `ok → ENOMEM`; `value.count` when both outcomes read alike in brief (long values).
fn brief_change(change: &BehaviourChange) -> String {
    let (before, after) = (brief(&change.before.actual), brief(&change.after.actual));
    if before == after {
        change.parts().join(", ")
    } else {
        format!("{before} → {after}")
    }
}

/// An outcome in a few characters: `ok`, `ENOMEM`, `value 7`, or its kind when it is longer
/// (`value`, `rejected`, `no record`).
fn brief(actual: &Actual) -> String {
    let text = actual.to_string();
    if matches!(actual, Actual::Errno { .. }) || text.chars().count() > MAX_CELL_OUTCOME_CHARS {
        outcome_class(actual).replace('_', " ")
    } else {
        text
    }
}

/// `text` cut to `max` characters, the cut marked with `…`.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max - 1) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_string(),
    }
}

/// The kernels in version order, as [`changes::across_kernels`] orders them: kernels
/// without a version have no place in it.
fn version_order(results: &RunResults) -> Vec<&KernelRun> {
    let mut kernels: Vec<&KernelRun> = results
        .kernels
        .iter()
        .filter(|run| run.version.is_some())
        .collect();
    kernels.sort_by_key(|run| run.version);
    kernels
}

/// Per kernel and case, the kernel before it in version order that ran the case: a skipped
/// case neither has a kernel before it nor is one.
fn previous_runs(results: &RunResults) -> HashMap<(&str, &str), &str> {
    let mut latest: HashMap<&str, &str> = HashMap::new();
    let mut previous = HashMap::new();
    for run in version_order(results) {
        let ran = run
            .cases
            .iter()
            .filter(|case| !matches!(case.outcome, CaseOutcome::Skipped { .. }));
        for case in ran {
            if let Some(before) = latest.insert(&case.name, &run.kernel) {
                previous.insert((run.kernel.as_str(), case.name.as_str()), before);
            }
        }
    }
    previous
}

impl StepDifference {
    /// `shown`: the kernel whose steps the drill-down shows beside this one's.
    fn of(difference: &BehaviourChange, shown: Option<&str>) -> Self {
        let from = if shown == Some(difference.before.kernel.as_str()) {
            String::new()
        } else {
            let label = kernel_label(&difference.before.kernel, Some(difference.before.version));
            format!(" from {label}")
        };
        if difference.difference.is_change() {
            let fields = difference
                .fields()
                .map_or_else(String::new, |fields| format!(" in {fields}"));
            StepDifference {
                kind: if difference.expected() {
                    "expected"
                } else {
                    "unexpected"
                },
                note: format!("changed{from}{fields}, {}", difference.verdict()),
            }
        } else {
            StepDifference {
                kind: "drift",
                note: format!(
                    "drift{from} in {}: left open by the case, not a change of behaviour",
                    difference.parts().join(", ")
                ),
            }
        }
    }
}

impl<'a> DrillDown<'a> {
    fn new(results: &'a RunResults, differences: &Differences<'_>) -> Self {
        let previous = previous_runs(results);
        let order = version_order(results);
        let kernel_before: HashMap<&str, &str> = order
            .windows(2)
            .map(|pair| (pair[1].kernel.as_str(), pair[0].kernel.as_str()))
            .collect();
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
                    let at = (run.kernel.as_str(), case.name.as_str());
                    let shown = previous.get(&at).copied();
                    let mut view = CellView::of(case, ids);
                    if shown != kernel_before.get(run.kernel.as_str()).copied() {
                        view.previous = Some(shown);
                    }
                    view.differences = differences
                        .get(&at)
                        .into_iter()
                        .flatten()
                        .map(|d| (d.step.clone(), StepDifference::of(d, shown)))
                        .collect();
                    (case.name.as_str(), view)
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
                    label: super::run_label(run),
                    trouble,
                    log_tail,
                    previous: kernel_before.get(run.kernel.as_str()).copied(),
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
            previous: None,
            differences: IndexMap::new(),
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
    use serde_json::json;

    use super::*;
    use crate::{case::Expected, version::KernelVersion};

    /// A step that did what it was expected to.
    fn step(id: &str, actual: Actual) -> StepResult {
        let expected = match &actual {
            Actual::Errno { name, .. } => Expected::Errno(name.clone()),
            Actual::Value { value } => Expected::Value(value.clone()),
            _ => Expected::Ok,
        };
        StepResult::judged(id, format!("step {id}"), expected, actual)
    }

    fn case(name: &str, outcome: CaseOutcome, steps: Vec<StepResult>) -> CaseResult {
        CaseResult {
            name: name.into(),
            file: format!("cases/{name}.yaml"),
            outcome,
            duration_ms: 1,
            steps,
        }
    }

    fn run(name: &str, version: KernelVersion, cases: Vec<CaseResult>) -> KernelRun {
        KernelRun::ran(name, version, cases)
    }

    #[test]
    fn a_cell_shows_its_first_changed_step_and_how_many_more() {
        let kernel = |name: &str, minor, errno, byte| {
            let batch = (2..=5).map(|i| step(&i.to_string(), Actual::errno(errno)));
            let lookup = step(
                "4",
                Actual::Value {
                    value: json!(vec![byte; 8120]),
                },
            );
            run(
                name,
                KernelVersion::new(5, minor, 0),
                vec![
                    case(
                        "batch",
                        CaseOutcome::Pass,
                        std::iter::once(step("1", Actual::Ok))
                            .chain(batch)
                            .collect(),
                    ),
                    case("lookup", CaseOutcome::Pass, vec![lookup]),
                ],
            )
        };
        let page = render(&RunResults::new(vec![
            kernel("5.4", 4, libc::EINVAL, 1),
            kernel("5.7", 7, 524, 2),
        ]));
        assert!(
            page.contains("<span class=\"outcome\">2: EINVAL → ENOTSUPP +3</span>"),
            "{page}"
        );
        // Outcomes alike in brief (two long values) name what differs.
        assert!(
            page.contains("<span class=\"outcome\">4: value[0–8119]</span>"),
            "{page}"
        );
        assert!(!page.contains("2,2,2,2"), "a whole 8 KB value in the page");
    }

    #[test]
    fn the_kernel_before_is_by_version_and_skips_kernels_that_skipped_the_case() {
        let ran = || vec![case("c", CaseOutcome::Pass, vec![step("1", Actual::Ok)])];
        let skipped = || {
            let reason = "needs 6.1".into();
            vec![case("c", CaseOutcome::Skipped { reason }, vec![])]
        };
        let results = RunResults::new(vec![
            run("6.6", KernelVersion::new(6, 6, 0), ran()),
            run("5.10", KernelVersion::new(5, 10, 0), ran()),
            run("6.1", KernelVersion::new(6, 1, 0), skipped()),
        ]);
        let previous = previous_runs(&results);
        assert_eq!(previous.get(&("6.6", "c")), Some(&"5.10"));
        assert_eq!(
            previous.get(&("6.1", "c")),
            None,
            "skipped: nothing to compare"
        );
        assert_eq!(previous.get(&("5.10", "c")), None, "the first by version");
    }

    #[test]
    fn text_from_the_results_is_never_markup() {
        let hostile = "</script><script>alert(1)</script>";
        let step = StepResult {
            id: "1".into(),
            label: hostile.into(),
            line: Some(3),
            expected: crate::case::Expected::Ok,
            reason: Some(hostile.into()),
            since: None,
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
