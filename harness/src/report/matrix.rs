//! The triage view on a terminal: a row per case, a column per kernel (in the kernels'
//! order), a `*` before a cell where the case's behaviour changed from the kernel before it
//! in version order, then a summary line per kernel.
//!
//! It fits the width it is given ([`Human::width`]): cells are at most four characters
//! wide, long names are cut, and when the kernels do not fit beside the case names they
//! wrap into blocks of columns, each with the case names again.

use std::{
    collections::HashMap,
    io::{self, Write},
};

use indexmap::IndexSet;
use owo_colors::Style;

use super::{human::Human, paint, wrap};
use crate::results::{CaseOutcome, KernelRun, KernelStatus, RunResults};

const MAX_CASE_WIDTH: usize = 38;
/// Case names are cut down to this to keep every kernel on one line, but no further: below
/// it the kernels wrap into blocks instead.
const MIN_CASE_WIDTH: usize = 20;
const MAX_KERNEL_WIDTH: usize = 8;
/// The widest abbreviation, `pass` or `skip`.
const CELL_WIDTH: usize = 4;
const COLUMN_GAP: &str = "  ";
/// The gap before a cell where behaviour changed.
const CHANGED_GAP: &str = " *";

/// One case on one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Pass,
    Diverged,
    Skipped,
    /// The case could not run, or its kernel failed (boot, panic, timeout) before it did.
    Error,
    /// The kernel ran, but without this case (results merged from runs of other cases).
    Absent,
}

impl Cell {
    /// Every state, in the order legends list them.
    pub const ALL: [Cell; 5] = [
        Self::Pass,
        Self::Diverged,
        Self::Skipped,
        Self::Error,
        Self::Absent,
    ];

    pub(super) fn of(outcome: &CaseOutcome) -> Self {
        match outcome {
            CaseOutcome::Pass => Self::Pass,
            CaseOutcome::Diverged => Self::Diverged,
            CaseOutcome::Skipped { .. } => Self::Skipped,
            CaseOutcome::Error { .. } => Self::Error,
        }
    }

    /// The terminal's abbreviation.
    pub fn short(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Diverged => "DIV",
            Self::Skipped => "skip",
            Self::Error => "err",
            Self::Absent => "-",
        }
    }

    /// The state's name where a word is needed (the page's classes and legend).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Diverged => "diverged",
            Self::Skipped => "skipped",
            Self::Error => "error",
            Self::Absent => "not run",
        }
    }

    /// What the state means, for legends.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Pass => "as expected",
            Self::Diverged => "diverged from the expectation",
            Self::Skipped => "skipped",
            Self::Error => "could not run",
            Self::Absent => "not in this run",
        }
    }

    fn style(self) -> Style {
        match self {
            Self::Pass => Style::new().green(),
            Self::Diverged => Style::new().red().bold(),
            Self::Skipped => Style::new().yellow(),
            Self::Error => Style::new().magenta().bold(),
            Self::Absent => Style::new().dimmed(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    pub case: &'a str,
    /// One cell per kernel, in the kernels' order.
    pub cells: Vec<Cell>,
    /// A kernel that ran the case saw it diverge or fail: what triage looks at first. The
    /// cases a failed kernel never ran are that kernel's trouble, not theirs.
    pub troubled: bool,
    /// Per cell: a step of the case changed behaviour here from the kernel before in version
    /// order ([`super::changes::across_kernels`]; drift does not count).
    pub changed: Vec<bool>,
}

/// Which rows a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rows {
    #[default]
    All,
    /// Only cases that changed behaviour between kernels, diverged or failed.
    ChangedOrTroubled,
}

impl Row<'_> {
    pub fn changed_anywhere(&self) -> bool {
        self.changed.iter().any(|c| *c)
    }

    fn shown(&self, rows: Rows) -> bool {
        rows == Rows::All || self.troubled || self.changed_anywhere()
    }
}

/// The matrix: cases in the order they first appear across kernels. A kernel that failed
/// gets `Error` for every case it did not report, so its whole column reads as an error.
pub fn rows(results: &RunResults) -> Vec<Row<'_>> {
    let changes = super::changes::across_kernels(results).changes;
    let changed_at: std::collections::HashSet<(&str, &str)> = changes
        .iter()
        .map(|c| (c.case.as_str(), c.after.kernel.as_str()))
        .collect();
    let cases: IndexSet<&str> = results
        .kernels
        .iter()
        .flat_map(|k| &k.cases)
        .map(|case| case.name.as_str())
        .collect();
    // Per kernel, each case's outcome by name.
    let outcomes_by_kernel: Vec<HashMap<&str, &CaseOutcome>> = results
        .kernels
        .iter()
        .map(|k| {
            k.cases
                .iter()
                .map(|c| (c.name.as_str(), &c.outcome))
                .collect()
        })
        .collect();
    cases
        .into_iter()
        .map(|name| {
            let outcomes: Vec<Option<&CaseOutcome>> = outcomes_by_kernel
                .iter()
                .map(|by_name| by_name.get(name).copied())
                .collect();
            Row {
                case: name,
                cells: outcomes
                    .iter()
                    .zip(&results.kernels)
                    .map(|(outcome, kernel)| match (outcome, &kernel.status) {
                        (Some(outcome), _) => Cell::of(outcome),
                        (None, KernelStatus::Error { .. }) => Cell::Error,
                        (None, KernelStatus::Skipped { .. }) => Cell::Skipped,
                        (None, KernelStatus::Ran) => Cell::Absent,
                    })
                    .collect(),
                troubled: outcomes.iter().flatten().any(|outcome| {
                    matches!(outcome, CaseOutcome::Diverged | CaseOutcome::Error { .. })
                }),
                changed: results
                    .kernels
                    .iter()
                    .map(|kernel| changed_at.contains(&(name, kernel.kernel.as_str())))
                    .collect(),
            }
        })
        .collect()
}

/// How many cells of the matrix are in each state, in [`Cell::ALL`]'s order.
pub fn totals(rows: &[Row<'_>]) -> [(Cell, usize); 5] {
    Cell::ALL.map(|state| {
        let count = rows
            .iter()
            .flat_map(|row| &row.cells)
            .filter(|cell| **cell == state)
            .count();
        (state, count)
    })
}

/// `4 pass, 1 DIVERGED, 1 skip, 0 error`: a kernel's cases by outcome.
pub fn tally(run: &KernelRun) -> String {
    format!(
        "{} pass, {} DIVERGED, {} skip, {} error",
        run.count(|o| *o == CaseOutcome::Pass),
        run.count(|o| *o == CaseOutcome::Diverged),
        run.count(|o| matches!(o, CaseOutcome::Skipped { .. })),
        run.count(|o| matches!(o, CaseOutcome::Error { .. })),
    )
}

pub fn write(
    out: &mut impl Write,
    results: &RunResults,
    view: Human,
    shown: Rows,
) -> io::Result<()> {
    if results.kernels.is_empty() {
        return writeln!(out, "no kernel in these results");
    }
    let all = rows(results);
    let rows: Vec<&Row<'_>> = all.iter().filter(|row| row.shown(shown)).collect();
    if rows.is_empty() && shown == Rows::ChangedOrTroubled {
        writeln!(
            out,
            "no case changed behaviour between kernels, diverged or failed ({} cases left out)",
            all.len()
        )?;
    }
    let headers: Vec<String> = results
        .kernels
        .iter()
        .map(|k| fit(&k.kernel, MAX_KERNEL_WIDTH))
        .collect();
    let widths: Vec<usize> = headers.iter().map(|h| width(h).max(CELL_WIDTH)).collect();
    let all_columns: usize = widths.iter().map(|w| COLUMN_GAP.len() + w).sum();
    let longest = rows
        .iter()
        .map(|r| width(r.case))
        .max()
        .unwrap_or(0)
        .clamp("case".len(), MAX_CASE_WIDTH);
    let case_width = if longest + all_columns <= view.width {
        longest
    } else {
        // Shorter names when that keeps the kernels on one line, else blocks of kernels.
        let widest = widths.iter().max().copied().unwrap_or(CELL_WIDTH) + COLUMN_GAP.len();
        view.width
            .saturating_sub(all_columns)
            .max(MIN_CASE_WIDTH.min(view.width.saturating_sub(widest)))
            .clamp("case".len(), longest)
    };

    let mut block_start = 0;
    while block_start < headers.len() {
        let mut used = case_width;
        let block_end = (block_start..headers.len())
            .find(|&i| {
                used += COLUMN_GAP.len() + widths[i];
                used > view.width && i > block_start
            })
            .unwrap_or(headers.len());
        if block_start > 0 {
            writeln!(out)?;
        }
        let mut line = pad("case", case_width);
        for (header, width) in headers
            .iter()
            .zip(&widths)
            .take(block_end)
            .skip(block_start)
        {
            line.push_str(COLUMN_GAP);
            line.push_str(&pad(header, *width));
        }
        writeln!(out, "{}", line.trim_end())?;
        for row in &rows {
            let mut line = pad(&fit(row.case, case_width), case_width);
            for ((cell, changed), width) in row
                .cells
                .iter()
                .zip(&row.changed)
                .zip(&widths)
                .take(block_end)
                .skip(block_start)
            {
                // The mark takes the gap's last column, so cells keep their width.
                line.push_str(if *changed { CHANGED_GAP } else { COLUMN_GAP });
                line.push_str(&paint(cell.short(), cell.style(), view.color));
                line.push_str(&" ".repeat(width - cell.short().len()));
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        block_start = block_end;
    }

    writeln!(out)?;
    if shown == Rows::ChangedOrTroubled && rows.len() < all.len() {
        writeln!(
            out,
            "{} case(s) that neither changed behaviour nor diverged or failed are left out",
            all.len() - rows.len()
        )?;
    }
    let legend: Vec<String> = Cell::ALL
        .iter()
        .map(|cell| format!("{}: {}", cell.short(), cell.meaning()))
        .chain(["*: behaviour changed from the kernel before".to_string()])
        .map(|entry| entry.replace(' ', "\u{a0}"))
        .collect();
    for line in wrap(&legend.join(" · "), view.width, "", "") {
        writeln!(out, "{}", line.replace('\u{a0}', " "))?;
    }
    let labels: Vec<String> = results.kernels.iter().map(super::run_label).collect();
    let label_width = labels.iter().map(|l| width(l)).max().unwrap_or(0);
    for (run, label) in results.kernels.iter().zip(&labels) {
        let seconds = run.duration_ms as f64 / 1000.0;
        let (status, text) = match &run.status {
            KernelStatus::Ran => (None, format!("{} in {seconds:.1} s", tally(run))),
            KernelStatus::Skipped { reason } => (
                Some(("kernel skipped", Cell::Skipped)),
                format!(": {reason}"),
            ),
            KernelStatus::Error { message, .. } => {
                let before = if run.cases.is_empty() {
                    String::new()
                } else {
                    format!(" (before it: {})", tally(run))
                };
                let message = message.lines().next().unwrap_or_default();
                (
                    Some(("kernel error", Cell::Error)),
                    format!(": {message}{before} after {seconds:.1} s"),
                )
            }
        };
        let first = format!("{}  ", pad(label, label_width));
        let status_text = status.map_or("", |(text, _)| text);
        let lines = wrap(
            &format!("{status_text}{text}"),
            view.width,
            &first,
            &" ".repeat(first.len().min(view.width / 2)),
        );
        for (i, line) in lines.iter().enumerate() {
            match status {
                // The status is painted after wrapping: escape codes have no width.
                Some((text, cell)) if i == 0 => writeln!(
                    out,
                    "{}",
                    line.replacen(text, &paint(text, cell.style(), view.color), 1)
                )?,
                _ => writeln!(out, "{line}")?,
            }
        }
    }
    Ok(())
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn pad(text: &str, to: usize) -> String {
    format!("{text}{}", " ".repeat(to.saturating_sub(width(text))))
}

/// Cuts `text` to `max` characters, marking the cut with `…`.
fn fit(text: &str, max: usize) -> String {
    if width(text) <= max {
        text.to_string()
    } else {
        let kept: String = text.chars().take(max - 1).collect();
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_with_a_mark() {
        assert_eq!(fit("lookup-delete-without-storage", 10), "lookup-de…");
        assert_eq!(fit("6.12", 8), "6.12");
        assert_eq!(width(&fit("a-very-long-kernel-name", MAX_KERNEL_WIDTH)), 8);
    }
}
