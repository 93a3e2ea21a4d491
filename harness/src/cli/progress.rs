//! What a run shows on stderr while its kernels boot and run: on a terminal, a spinner line
//! per running kernel (its boot stage, then the case it is on) under the lines of the
//! kernels that finished; elsewhere (CI logs, pipes), the same events as plain lines, a
//! line per kernel started and finished, and none per case.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{matrix::Event, report::human::one_line, vm::Landmark};

pub(super) struct RunProgress {
    /// `None` without a terminal on stderr.
    bars: Option<MultiProgress>,
    running: Mutex<HashMap<String, ProgressBar>>,
}

impl RunProgress {
    pub(super) fn for_stderr() -> Self {
        let target = ProgressDrawTarget::stderr();
        Self {
            bars: (!target.is_hidden()).then(|| MultiProgress::with_draw_target(target)),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Shows `event`, printable: it carries kernel names and lines of their consoles.
    pub(super) fn show(&self, event: Event<'_>) {
        use crate::printable::escape;
        match event {
            Event::Note(text) => self.line(&escape(text)),
            Event::Started { kernel, how } => match &self.bars {
                Some(bars) => {
                    let bar = bars.add(ProgressBar::new_spinner());
                    if let Ok(style) = ProgressStyle::with_template(
                        "{spinner} {prefix:.bold} {elapsed:>4} {wide_msg}",
                    ) {
                        bar.set_style(style);
                    }
                    bar.set_prefix(escape(kernel).into_owned());
                    bar.set_message(format!("booting: {}", escape(&how)));
                    bar.enable_steady_tick(Duration::from_millis(200));
                    self.lock().insert(kernel.to_string(), bar);
                }
                None => eprintln!("{}: {}", escape(kernel), escape(&how)),
            },
            Event::Reached { kernel, landmark } => self.set(kernel, stage(landmark).into()),
            Event::CaseDone {
                kernel,
                case,
                label,
                done,
                of,
            } => self.set(
                kernel,
                format!("case {done}/{of}: {} {}", escape(label), escape(case)),
            ),
            Event::Finished(run) => {
                if let Some(bar) = self.lock().remove(&run.kernel) {
                    bar.finish_and_clear();
                }
                self.line(&one_line(&crate::report::printable(run)));
            }
        }
    }

    /// A line above the spinners (or on its own without a terminal).
    fn line(&self, text: &str) {
        match &self.bars {
            Some(bars) if bars.println(text).is_ok() => {}
            _ => eprintln!("{text}"),
        }
    }

    fn set(&self, kernel: &str, message: String) {
        if let Some(bar) = self.lock().get(kernel) {
            bar.set_message(message);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a kernel is doing once it reached `landmark`.
fn stage(landmark: Landmark) -> &'static str {
    match landmark {
        Landmark::KernelStarted => "kernel booting",
        Landmark::InitStarted => "init: mounting the root",
        Landmark::CommandStarted => "running the cases",
        Landmark::PoweredOff => "powering off",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_gets_a_line_per_running_kernel_that_follows_its_cases() {
        let progress = RunProgress {
            bars: Some(MultiProgress::with_draw_target(ProgressDrawTarget::hidden())),
            running: Mutex::new(HashMap::new()),
        };
        progress.show(Event::Started {
            kernel: "6.1",
            how: "booting vmlinuz under TCG".into(),
        });
        progress.show(Event::Reached {
            kernel: "6.1",
            landmark: Landmark::CommandStarted,
        });
        assert_eq!(progress.lock()["6.1"].message(), "running the cases");
        progress.show(Event::CaseDone {
            kernel: "6.1",
            case: "update-noexist",
            label: "pass",
            done: 3,
            of: 75,
        });
        assert_eq!(
            progress.lock()["6.1"].message(),
            "case 3/75: pass update-noexist"
        );
        let run =
            crate::results::KernelRun::without_cases("6.1", crate::results::KernelStatus::Ran);
        progress.show(Event::Finished(&run));
        assert!(
            progress.lock().is_empty(),
            "a finished kernel's line is gone"
        );
    }
}
