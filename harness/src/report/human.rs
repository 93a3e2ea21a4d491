//! The terminal view: a line per case as it finishes, then the divergences in detail and
//! a summary line.

use std::io::{self, Write};

use owo_colors::{OwoColorize, Style};

use crate::results::{CaseOutcome, CaseResult, KernelRun, KernelStatus, Verdict};

/// How the terminal views are drawn.
#[derive(Debug, Clone, Copy)]
pub struct Human {
    pub color: bool,
    /// Columns the matrix and the long lines (behaviour changes, divergences) fit in.
    pub width: usize,
}

/// The width when stdout is not a terminal and `COLUMNS` says nothing (a CI log, a file):
/// wide enough for a matrix of 12 kernels beside 28-character case names.
pub const WIDTH_WITHOUT_TERMINAL: usize = 100;

impl Human {
    /// Colour only on a terminal, and never when NO_COLOR is set (no-color.org). The width is
    /// `COLUMNS` when set, else the terminal's, else [`WIDTH_WITHOUT_TERMINAL`]: the same
    /// content at any width, laid out to fit.
    pub fn for_stdout() -> Self {
        use std::io::IsTerminal;
        let terminal = io::stdout().is_terminal();
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|c| *c > 0);
        let width = columns
            .or_else(|| {
                terminal
                    .then(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
                    .flatten()
            })
            .unwrap_or(WIDTH_WITHOUT_TERMINAL);
        Self {
            color: terminal && std::env::var_os("NO_COLOR").is_none(),
            width,
        }
    }

    /// Plain text at the width of a log file, for tests and output that is not a terminal.
    pub fn plain() -> Self {
        Self {
            color: false,
            width: WIDTH_WITHOUT_TERMINAL,
        }
    }

    fn paint(&self, text: &str, style: Style) -> String {
        if self.color {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }

    fn outcome_style(outcome: &CaseOutcome) -> Style {
        match outcome {
            CaseOutcome::Pass => Style::new().green(),
            CaseOutcome::Diverged => Style::new().red().bold(),
            CaseOutcome::Skipped { .. } => Style::new().yellow(),
            CaseOutcome::Error { .. } => Style::new().magenta().bold(),
        }
    }

    /// One line as a case finishes.
    pub fn case_line(&self, out: &mut impl Write, case: &CaseResult) -> io::Result<()> {
        let label = format!("{:<8}", case.outcome.label());
        let detail = match &case.outcome {
            CaseOutcome::Skipped { reason } => format!(" ({reason})"),
            CaseOutcome::Error { message } => format!(": {message}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "{} {}{} [{} ms]",
            self.paint(&label, Self::outcome_style(&case.outcome)),
            case.name,
            detail,
            case.duration_ms
        )
    }

    /// A kernel that could not run the cases: why, and the console lines that explain it.
    pub fn kernel_error(&self, out: &mut impl Write, run: &KernelRun) -> io::Result<()> {
        if let KernelStatus::Error { message, log_tail } = &run.status {
            writeln!(
                out,
                "{} {}: {message}",
                self.paint("error", Style::new().magenta().bold()),
                run.kernel
            )?;
            if let Some(tail) = log_tail {
                for line in tail.lines() {
                    writeln!(out, "    | {line}")?;
                }
            }
        }
        Ok(())
    }

    /// Every diverged step of a kernel's run, then its summary.
    pub fn kernel_summary(&self, out: &mut impl Write, run: &KernelRun) -> io::Result<()> {
        self.kernel_error(out, run)?;
        for case in run
            .cases
            .iter()
            .filter(|c| c.outcome == CaseOutcome::Diverged)
        {
            writeln!(out)?;
            writeln!(
                out,
                "{} {} ({})",
                self.paint("DIVERGED", Style::new().red().bold()),
                case.name,
                case.file
            )?;
            for step in case.steps.iter().filter(|s| s.verdict == Verdict::Diverged) {
                writeln!(
                    out,
                    "  step {}: {} [{}]",
                    step.id,
                    step.label,
                    super::location(&case.file, step.line)
                )?;
                writeln!(out, "    expected: {}", step.expected)?;
                writeln!(out, "    actual:   {}", step.actual)?;
                if let Some(reason) = &step.reason {
                    writeln!(out, "    (expected because: {reason})")?;
                }
            }
        }
        writeln!(out)?;
        writeln!(out, "{}", one_line(run))
    }
}

/// A kernel's run in one line, for progress: counts, version and time, or its error.
pub fn one_line(run: &KernelRun) -> String {
    match &run.status {
        KernelStatus::Error { message, .. } => format!("{}: error: {message}", run.kernel),
        KernelStatus::Skipped { reason } => format!("{}: skipped: {reason}", run.kernel),
        KernelStatus::Ran => {
            let count = |pred: fn(&CaseOutcome) -> bool| run.count(pred);
            let version = run.version.map(|v| format!(" on {v}")).unwrap_or_default();
            let phases = run
                .phases
                .map(|phases| {
                    let named: Vec<String> = phases
                        .named()
                        .iter()
                        .map(|(name, ms)| format!("{name} {:.1}", *ms as f64 / 1000.0))
                        .collect();
                    format!(" ({})", named.join(", "))
                })
                .unwrap_or_default();
            format!(
                "{}: {} passed, {} diverged, {} skipped, {} errors{version} in {:.2} s{phases}",
                run.kernel,
                count(|o| *o == CaseOutcome::Pass),
                count(|o| *o == CaseOutcome::Diverged),
                count(|o| matches!(o, CaseOutcome::Skipped { .. })),
                count(|o| matches!(o, CaseOutcome::Error { .. })),
                run.duration_ms as f64 / 1000.0,
            )
        }
    }
}
