//! Markdown for a CI job summary (`$GITHUB_STEP_SUMMARY`): what needs attention first (the
//! divergences, kernel errors with their console's tail folded away, the behaviour changes
//! the cases do not expect), then the changes they expect and the per-kernel summary, then
//! the matrix: the cases that diverged or failed as a table, the whole matrix folded.
//!
//! GitHub refuses a step summary over 1 MiB, so the report stays under [`MAX_BYTES`]: long
//! outcomes are cut, and a list that would pass its share of the budget ends with how many
//! of its items were left out.

use std::fmt::Write;

use super::{
    changes::{self, BehaviourChange, Divergence},
    kernel_label,
    matrix::{self, Cell, Row},
    md::{code, html, longest_run, table_cell, text, under_accel},
    shorten,
};
use crate::results::{KernelStatus, RunResults};

/// The most bytes the report may take: GitHub's step-summary limit (1 MiB) less a margin.
pub const MAX_BYTES: usize = 1_000_000;
/// The longest outcome written in full.
const MAX_OUTCOME_CHARS: usize = 300;
/// How far into the report each part may reach, so that a flood of divergences still leaves
/// room for the kernel errors and the changes after them.
const DIVERGENCES_UNTIL: usize = 450_000;
const KERNEL_ERRORS_UNTIL: usize = 600_000;
const CHANGES_UNTIL: usize = 800_000;

pub fn render(results: &RunResults) -> String {
    let mut md = String::new();
    // Writing into a String cannot fail.
    let _ = write_report(&mut md, results);
    md
}

fn write_report(md: &mut String, results: &RunResults) -> std::fmt::Result {
    let rows = matrix::rows(results);
    let divergences = changes::divergences(results);
    let changes::Across { changes, drift } = changes::across_kernels(results);
    let (unexpected, expected): (Vec<BehaviourChange>, Vec<BehaviourChange>) =
        changes.into_iter().partition(|c| !c.expected());
    writeln!(
        md,
        "## SK_STORAGE behaviour on {} kernel(s)",
        results.kernels.len()
    )?;
    writeln!(md)?;
    let accel = under_accel(results);
    writeln!(
        md,
        "Harness {}, {} to {}{accel}.",
        code(&results.harness.to_string()),
        results.started,
        results.ended
    )?;
    if let Some(differences) = crate::results::build_differences(results) {
        writeln!(md)?;
        writeln!(md, "⚠️ {}.", text(&differences))?;
    }
    writeln!(md)?;
    let totals: Vec<String> = matrix::totals(&rows)
        .iter()
        .map(|(state, count)| format!("{count} {}", state.name()))
        .collect();
    writeln!(
        md,
        "**{} case(s) on {} kernel(s): {}. {} divergence(s), {} behaviour change(s) across versions, {} of them not expected; {} difference(s) in what the cases leave open (drift).**",
        rows.len(),
        results.kernels.len(),
        totals.join(", "),
        divergences.len(),
        unexpected.len() + expected.len(),
        unexpected.len(),
        drift.len()
    )?;

    write_divergences(md, &divergences)?;
    write_kernel_errors(md, results)?;
    writeln!(md)?;
    writeln!(md, "### Behaviour changes the cases do not expect")?;
    writeln!(md)?;
    if unexpected.is_empty() {
        writeln!(md, "None.")?;
    } else {
        write_changes(md, &unexpected)?;
    }
    for (title, folded) in [
        ("behaviour change(s) the cases expect", &expected),
        (
            "difference(s) in what the cases leave open (drift, not changes)",
            &drift,
        ),
    ] {
        if folded.is_empty() {
            continue;
        }
        writeln!(md)?;
        writeln!(md, "<details><summary>{} {title}</summary>", folded.len())?;
        writeln!(md)?;
        write_changes(md, folded)?;
        writeln!(md)?;
        writeln!(md, "</details>")?;
    }

    let boundaries = super::atlas::boundaries(results);
    if !boundaries.is_empty() {
        writeln!(md)?;
        writeln!(
            md,
            "<details><summary>Atlas: where the pinned outcomes change</summary>"
        )?;
        writeln!(md)?;
        let atlas = super::atlas::markdown(&boundaries, results, "####");
        if md.len() + atlas.len() <= CHANGES_UNTIL {
            md.push_str(&atlas);
        } else {
            writeln!(md, "Too large for this summary: see report.html.")?;
        }
        writeln!(md)?;
        writeln!(md, "</details>")?;
    }
    writeln!(md)?;
    writeln!(md, "### Kernels")?;
    writeln!(md)?;
    for run in &results.kernels {
        let label = code(&super::run_label(run));
        let label = match &run.note {
            Some(note) => format!("{label} ({})", text(note)),
            None => label,
        };
        match &run.status {
            KernelStatus::Ran => writeln!(md, "- {label}: {}", matrix::tally(run))?,
            KernelStatus::Error { message, .. } => {
                writeln!(md, "- {label}: ⚠️ **kernel error**: {}", text(message))?
            }
            KernelStatus::Skipped { reason } => {
                writeln!(md, "- {label}: ⏭️ skipped: {}", text(reason))?
            }
        }
    }
    write_matrices(md, results, &rows)
}

/// Each kernel's diverged steps as a table.
fn write_divergences(md: &mut String, divergences: &[Divergence]) -> std::fmt::Result {
    writeln!(md)?;
    writeln!(md, "### Divergences")?;
    if divergences.is_empty() {
        writeln!(md)?;
        writeln!(md, "None.")?;
    }
    let mut kernels: Vec<&str> = divergences.iter().map(|d| d.kernel.as_str()).collect();
    kernels.dedup();
    for kernel in kernels {
        let of_kernel: Vec<&Divergence> =
            divergences.iter().filter(|d| d.kernel == kernel).collect();
        writeln!(md)?;
        writeln!(
            md,
            "#### {}",
            text(&kernel_label(kernel, of_kernel[0].version))
        )?;
        writeln!(md)?;
        writeln!(
            md,
            "| case | step | where | expected | actual | expected because |"
        )?;
        writeln!(md, "|---|---|---|---|---|---|")?;
        let rows = of_kernel.iter().map(|d| {
            format!(
                "| {} | {} | {} | {} | {} | {} |",
                table_cell(&code(&d.case)),
                table_cell(&format!("{} {}", d.step, code(&d.label))),
                table_cell(&code(&d.location())),
                table_cell(&code(&shorten(&d.expected.to_string(), MAX_OUTCOME_CHARS))),
                table_cell(&code(&shorten(&d.actual.to_string(), MAX_OUTCOME_CHARS))),
                table_cell(&d.reason.as_deref().map(text).unwrap_or_default()),
            )
        });
        write_limited(md, rows, DIVERGENCES_UNTIL, "divergences")?;
    }
    Ok(())
}

/// Each failed kernel's message, with its console's tail folded away.
fn write_kernel_errors(md: &mut String, results: &RunResults) -> std::fmt::Result {
    let failed: Vec<_> = results
        .kernels
        .iter()
        .filter_map(|run| match &run.status {
            KernelStatus::Error { message, log_tail } => Some((run, message, log_tail)),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    writeln!(md)?;
    writeln!(md, "### Kernel errors")?;
    let entries = failed.into_iter().map(|(run, message, log_tail)| {
        let mut entry = format!(
            "\n- {}: {}\n",
            code(&kernel_label(&run.kernel, run.version)),
            text(message)
        );
        if let Some(tail) = log_tail {
            let tail = strip_ansi_escapes::strip_str(tail);
            let fence = "`".repeat(longest_run(&tail, '`').max(2) + 1);
            entry.push_str(&format!(
                "\n  <details><summary>Console tail of {} ({})</summary>\n\n{fence}text\n{}\n{fence}\n\n  </details>\n",
                html(&run.kernel),
                html(message.lines().next().unwrap_or_default()),
                tail.trim_end()
            ));
        }
        entry
    });
    for entry in limited(md.len(), entries, KERNEL_ERRORS_UNTIL, "kernel errors") {
        md.push_str(&entry);
    }
    Ok(())
}

/// Changes (or drift) as a table: the step and where it is written, the two kernels, the
/// outcome on each (with the fields that differ when they are values), the verdict.
fn write_changes(md: &mut String, changes: &[BehaviourChange]) -> std::fmt::Result {
    writeln!(
        md,
        "| case | step | where | between | old → new | verdict |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    let rows = changes.iter().map(|change| {
        let outcome = |actual: &crate::results::Actual| {
            code(&shorten(&actual.to_string(), MAX_OUTCOME_CHARS))
        };
        let fields = change
            .fields()
            .map_or_else(String::new, |f| format!(" (in {})", code(&f)));
        format!(
            "| {} | {} | {} | {} → {} | {} → {}{fields} | {} |",
            table_cell(&code(&change.case)),
            table_cell(&format!("{} {}", change.step, code(&change.label))),
            table_cell(&code(&super::location(&change.file, change.line))),
            table_cell(&code(&kernel_label(
                &change.before.kernel,
                Some(change.before.version)
            ))),
            table_cell(&code(&kernel_label(
                &change.after.kernel,
                Some(change.after.version)
            ))),
            table_cell(&outcome(&change.before.actual)),
            table_cell(&outcome(&change.after.actual)),
            table_cell(&text(&change.verdict())),
        )
    });
    write_limited(md, rows, CHANGES_UNTIL, "changes")
}

/// The cases that diverged or failed somewhere, then every case folded away; the whole
/// matrix only while it fits.
fn write_matrices(md: &mut String, results: &RunResults, rows: &[Row<'_>]) -> std::fmt::Result {
    let troubled: Vec<&Row<'_>> = rows.iter().filter(|row| row.troubled).collect();
    if !troubled.is_empty() {
        writeln!(md)?;
        writeln!(md, "### Cases that diverged or failed")?;
        writeln!(md)?;
        let table = matrix_table(results, troubled.into_iter());
        if md.len() + table.len() <= MAX_BYTES {
            md.push_str(&table);
        } else {
            writeln!(md, "Too many for this summary: see report.html.")?;
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let table = matrix_table(results, rows.iter());
    let folded = format!(
        "\n<details><summary>Matrix: {} case(s) × {} kernel(s)</summary>\n\n{table}\n</details>\n",
        rows.len(),
        results.kernels.len()
    );
    if md.len() + folded.len() <= MAX_BYTES {
        md.push_str(&folded);
    } else {
        writeln!(md)?;
        writeln!(
            md,
            "The whole matrix does not fit in this summary: see report.html."
        )?;
    }
    Ok(())
}

fn matrix_table<'a>(results: &RunResults, rows: impl Iterator<Item = &'a Row<'a>>) -> String {
    let mut table = String::from("| case |");
    for run in &results.kernels {
        table.push_str(&format!(" {} |", table_cell(&code(&run.kernel))));
    }
    table.push_str(&format!(
        "\n|---|{}\n",
        "---|".repeat(results.kernels.len())
    ));
    for row in rows {
        table.push_str(&format!("| {} |", table_cell(&code(row.case))));
        for cell in &row.cells {
            table.push_str(&format!(" {} |", cell_text(*cell)));
        }
        table.push('\n');
    }
    table
}

/// Writes `lines` while the report stays under `until` bytes, then how many were left out.
fn write_limited(
    md: &mut String,
    lines: impl Iterator<Item = String>,
    until: usize,
    what: &str,
) -> std::fmt::Result {
    for line in limited(md.len(), lines, until, what) {
        writeln!(md, "{line}")?;
    }
    Ok(())
}

/// `items` while a report of `written` bytes stays under `until` with them, then a line
/// saying how many were left out.
fn limited(
    mut written: usize,
    items: impl Iterator<Item = String>,
    until: usize,
    what: &str,
) -> Vec<String> {
    let mut kept = Vec::new();
    let mut left_out = 0;
    for item in items {
        if left_out == 0 && written + item.len() < until {
            written += item.len() + 1;
            kept.push(item);
        } else {
            left_out += 1;
        }
    }
    if left_out > 0 {
        kept.push(format!(
            "\n… and {left_out} more {what}, left out to keep this summary under GitHub's \
             1 MiB: see report.html or `harness report show results.json --format changes`."
        ));
    }
    kept
}

fn cell_text(cell: Cell) -> &'static str {
    match cell {
        Cell::Pass => "✅ pass",
        Cell::Diverged => "❌ **DIVERGED**",
        Cell::Skipped => "⏭️ skip",
        Cell::Error => "⚠️ error",
        Cell::Absent => "–",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a `b` c"), "``a `b` c``");
        assert_eq!(code("`edge"), "`` `edge ``");
        assert_eq!(table_cell(&code("a|b")), "`a\\|b`");
    }

    #[test]
    fn free_text_cannot_open_markup() {
        assert_eq!(
            text("needs <6.1> *now*\nok"),
            "needs \\<6.1\\> \\*now\\* ok"
        );
    }
}
