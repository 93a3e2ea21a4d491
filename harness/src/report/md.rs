//! Markdown's inline pieces, shared by report.md and the behaviour page: code spans and
//! free text that keep whatever a results file holds from becoming markup.

use crate::results::RunResults;

/// An inline code span holding `content` verbatim, whatever backticks it contains.
pub(super) fn code(content: &str) -> String {
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
pub(super) fn text(content: &str) -> String {
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
pub(super) fn table_cell(content: &str) -> String {
    content.replace('|', "\\|")
}

/// Text inside an HTML element (the `<summary>` line).
pub(super) fn html(content: &str) -> String {
    content
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(super) fn longest_run(text: &str, of: char) -> usize {
    text.split(|c| c != of).map(str::len).max().unwrap_or(0)
}

/// `, VMs under tcg` when the run says how its VMs ran, else nothing.
pub(super) fn under_accel(results: &RunResults) -> String {
    results
        .accel
        .map_or_else(String::new, |accel| format!(", VMs under {accel}"))
}
