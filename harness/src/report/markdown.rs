//! Markdown for a CI job summary (`$GITHUB_STEP_SUMMARY`): per-kernel summary, the matrix
//! as a table, the divergences per kernel, the behaviour changes, and kernel errors with
//! their console's tail folded away.

use std::fmt::Write;

use super::{
    changes::{self, Divergence},
    kernel_label,
    matrix::{self, Cell},
};
use crate::results::{KernelStatus, RunResults};

pub fn render(results: &RunResults) -> String {
    let mut md = String::new();
    // Writing into a String cannot fail.
    let _ = write_report(&mut md, results);
    md
}

fn write_report(md: &mut String, results: &RunResults) -> std::fmt::Result {
    writeln!(
        md,
        "## SK_STORAGE behaviour on {} kernel(s)",
        results.kernels.len()
    )?;
    writeln!(md)?;
    let accel = results
        .accel
        .map_or_else(String::new, |accel| format!(", VMs under {accel}"));
    writeln!(
        md,
        "Harness {}, {} to {}{accel}.",
        code(&results.harness.to_string()),
        results.started,
        results.ended
    )?;
    if let Some(differences) = super::build_differences(results) {
        writeln!(md)?;
        writeln!(md, "⚠️ {}.", text(&differences))?;
    }
    writeln!(md)?;
    for run in &results.kernels {
        let label = code(&kernel_label(&run.kernel, run.version));
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

    let rows = matrix::rows(results);
    if !rows.is_empty() {
        writeln!(md)?;
        write!(md, "| case |")?;
        for run in &results.kernels {
            write!(md, " {} |", table_cell(&code(&run.kernel)))?;
        }
        writeln!(md)?;
        writeln!(md, "|---|{}", "---|".repeat(results.kernels.len()))?;
        for row in &rows {
            write!(md, "| {} |", table_cell(&code(row.case)))?;
            for cell in &row.cells {
                write!(md, " {} |", cell_text(*cell))?;
            }
            writeln!(md)?;
        }
    }

    writeln!(md)?;
    writeln!(md, "### Divergences")?;
    let divergences = changes::divergences(results);
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
        writeln!(md, "| case | step | expected | actual | expected because |")?;
        writeln!(md, "|---|---|---|---|---|")?;
        for d in of_kernel {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                table_cell(&code(&d.case)),
                table_cell(&format!("{} {}", d.step, code(&d.label))),
                table_cell(&code(&d.expected.to_string())),
                table_cell(&code(&d.actual.to_string())),
                table_cell(&d.reason.as_deref().map(text).unwrap_or_default()),
            )?;
        }
    }

    writeln!(md)?;
    writeln!(md, "### Behaviour changes across versions")?;
    writeln!(md)?;
    let behaviour_changes = changes::behaviour_changes(results);
    if behaviour_changes.is_empty() {
        writeln!(md, "None.")?;
    }
    for change in &behaviour_changes {
        let mark = if change.expected() { "" } else { "❌ " };
        writeln!(
            md,
            "- {mark}{} step {} ({}): changed between {} and {}: {} → {} ({})",
            code(&change.case),
            change.step,
            code(&change.label),
            code(&kernel_label(
                &change.before.kernel,
                Some(change.before.version)
            )),
            code(&kernel_label(
                &change.after.kernel,
                Some(change.after.version)
            )),
            code(&change.before.actual.to_string()),
            code(&change.after.actual.to_string()),
            text(&change.verdict()),
        )?;
    }

    for run in &results.kernels {
        if let KernelStatus::Error {
            message,
            log_tail: Some(tail),
        } = &run.status
        {
            writeln!(md)?;
            writeln!(
                md,
                "<details><summary>Console tail of {} ({})</summary>",
                html(&run.kernel),
                html(message.lines().next().unwrap_or_default())
            )?;
            writeln!(md)?;
            let tail = strip_ansi_escapes::strip_str(tail);
            let fence = "`".repeat(longest_run(&tail, '`').max(2) + 1);
            writeln!(md, "{fence}text")?;
            writeln!(md, "{}", tail.trim_end())?;
            writeln!(md, "{fence}")?;
            writeln!(md)?;
            writeln!(md, "</details>")?;
        }
    }
    Ok(())
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

/// An inline code span holding `content` verbatim, whatever backticks it contains.
fn code(content: &str) -> String {
    let content = content.replace('\n', " ");
    let ticks = "`".repeat(longest_run(&content, '`') + 1);
    // CommonMark strips one space on each side, which lets a span start or end with a tick.
    let pad = if content.starts_with('`') || content.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{content}{pad}{ticks}")
}

/// Free text with Markdown's inline syntax escaped, on one line.
fn text(content: &str) -> String {
    let mut escaped = String::with_capacity(content.len());
    for c in content.chars() {
        match c {
            '\n' | '\r' => escaped.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' => {
                escaped.push('\\');
                escaped.push(c);
            }
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Inside a table a `|` ends the cell, even within a code span, unless escaped.
fn table_cell(content: &str) -> String {
    content.replace('|', "\\|")
}

/// Text inside an HTML element (the `<summary>` line).
fn html(content: &str) -> String {
    content
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn longest_run(text: &str, of: char) -> usize {
    text.split(|c| c != of).map(str::len).max().unwrap_or(0)
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
