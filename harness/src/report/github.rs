//! GitHub Actions: every divergence, case error and kernel failure as an `::error`
//! annotation on the case file's line (shown on a pull request's diff), and report.md as
//! the job's summary. The runner reads workflow commands from a step's stdout and stderr;
//! they go to stderr, so that `--format json` output stays JSON. `harness run` does both;
//! `report merge` only the summary, since the jobs it merges annotated their kernels.

use std::{io::Write, path::Path};

use super::{kernel_label, shorten};
use crate::results::{CaseOutcome, KernelStatus, RunResults, Verdict};

/// The environment variable GitHub sets to `true` in every job.
pub const ACTIONS_ENV: &str = "GITHUB_ACTIONS";
/// The file whose Markdown becomes the job's summary page.
pub const SUMMARY_ENV: &str = "GITHUB_STEP_SUMMARY";
/// GitHub shows at most 1 MiB of a step's summary; a longer one fails the step.
const SUMMARY_LIMIT: usize = 1 << 20;
/// An annotation's message is shown in one box: an outcome can be an 8 KB lookup.
const MESSAGE_CHARS: usize = 400;

/// The annotations of `results` (shown printable), one workflow command per line.
pub fn annotations(results: &RunResults) -> String {
    let mut out = String::new();
    for run in &results.kernels {
        let kernel = kernel_label(&run.kernel, run.version);
        if let KernelStatus::Error { message, .. } = &run.status {
            out += &command(None, None, &format!("kernel {kernel} failed"), message);
        }
        for case in &run.cases {
            match &case.outcome {
                CaseOutcome::Diverged => {
                    for step in case.steps.iter().filter(|s| s.verdict == Verdict::Diverged) {
                        let message = format!(
                            "step {} ({}): expected {}, got {}",
                            step.id, step.label, step.expected, step.actual
                        );
                        let title = format!("{} diverged on {kernel}", case.name);
                        out += &command(Some(&case.file), step.line, &title, &message);
                    }
                }
                CaseOutcome::Error { message } => {
                    let title = format!("{} could not run on {kernel}", case.name);
                    out += &command(Some(&case.file), None, &title, message);
                }
                CaseOutcome::Pass | CaseOutcome::Skipped { .. } => {}
            }
        }
    }
    out
}

/// Whether this process runs in a GitHub Actions job.
pub fn in_actions() -> bool {
    std::env::var(ACTIONS_ENV).as_deref() == Ok("true")
}

/// report.md appended to the job's summary (cut at GitHub's limit), when GitHub gave one.
pub fn summarise(report_md: &Path) -> std::io::Result<()> {
    let Some(summary) = std::env::var_os(SUMMARY_ENV) else {
        return Ok(());
    };
    let mut markdown = std::fs::read_to_string(report_md)?;
    if markdown.len() > SUMMARY_LIMIT {
        let note = "\n\n… cut at GitHub's summary limit: report.md has the rest.\n";
        let mut end = SUMMARY_LIMIT - note.len();
        while !markdown.is_char_boundary(end) {
            end -= 1;
        }
        markdown.truncate(end);
        markdown += note;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(summary)?
        .write_all(markdown.as_bytes())
}

/// `::error file=F,line=L,title=T::MESSAGE`, escaped as the runner unescapes it.
fn command(file: Option<&str>, line: Option<usize>, title: &str, message: &str) -> String {
    let mut properties = Vec::new();
    if let Some(file) = file {
        properties.push(format!("file={}", property(file)));
    }
    if let Some(line) = line {
        properties.push(format!("line={line}"));
    }
    properties.push(format!("title={}", property(title)));
    format!(
        "::error {}::{}\n",
        properties.join(","),
        data(&shorten(message, MESSAGE_CHARS))
    )
}

/// A message: `%`, CR and LF would end or garble the command.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property's value: also `:` and `,`, which separate properties.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        case::Expected,
        results::{Actual, CaseResult, KernelRun, StepResult},
    };

    #[test]
    fn a_divergence_is_an_error_on_its_step_line_and_a_failed_kernel_one_without_a_file() {
        let diverged = StepResult {
            line: Some(12),
            ..StepResult::judged(
                "3",
                "update m[s]",
                Expected::Ok,
                Actual::errno(libc::ENOMEM),
            )
        };
        let ran = KernelRun {
            version: Some("6.1.158".parse().unwrap()),
            cases: vec![
                CaseResult {
                    name: "grow".into(),
                    file: "cases/grow.yaml".into(),
                    outcome: CaseOutcome::Diverged,
                    duration_ms: 0,
                    steps: vec![diverged],
                },
                CaseResult {
                    name: "fine".into(),
                    file: "cases/fine.yaml".into(),
                    outcome: CaseOutcome::Pass,
                    duration_ms: 0,
                    steps: vec![],
                },
            ],
            ..KernelRun::without_cases("6.1", KernelStatus::Ran)
        };
        let failed = KernelRun::without_cases(
            "7.3",
            KernelStatus::Error {
                message: "timed out: 100% of 60 s\nlast words, here".into(),
                log_tail: None,
            },
        );
        assert_eq!(
            annotations(&RunResults::new(vec![ran, failed])),
            "::error file=cases/grow.yaml,line=12,title=grow diverged on 6.1 (6.1.158)::step 3 (update m[s]): expected ok, got ENOMEM (12)\n\
             ::error title=kernel 7.3 failed::timed out: 100%25 of 60 s%0Alast words, here\n"
        );
    }

    #[test]
    fn properties_cannot_end_early() {
        assert_eq!(property("a,b:c%d\ne"), "a%2Cb%3Ac%25d%0Ae");
    }
}
