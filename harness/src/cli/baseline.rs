//! `harness run … --baseline NAME|RESULTS.json`: your kernel against a known one. The run's
//! kernels are compared with the baseline by the rule every view uses (a change is a
//! difference in what a case pins), and only what they do differently is printed.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use super::{EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INFRA, EXIT_PASS};
use crate::{
    report::diff,
    results::{self, KernelRun, KernelStatus, RunResults},
};

/// What the run's kernels are compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// A kernel of kernels.toml, run in the same run.
    Kernel(String),
    /// A kernel of a saved run: `RESULTS.json` (its only kernel, or the one of the same
    /// series as the kernel compared) or `RESULTS.json#KERNEL`.
    Saved {
        path: PathBuf,
        kernel: Option<String>,
    },
}

impl Baseline {
    /// A results file when the value names one (a path, `.json`, `.json.gz`, or
    /// `FILE#KERNEL`), else a kernel name.
    pub fn parse(text: &str) -> Self {
        let (file, kernel) = match text.rsplit_once('#') {
            Some((file, kernel)) if !kernel.is_empty() => (file, Some(kernel.to_string())),
            _ => (text, None),
        };
        let is_file = file.contains('/')
            || file.ends_with(".json")
            || file.ends_with(".json.gz")
            || Path::new(file).is_file();
        if is_file {
            Self::Saved {
                path: PathBuf::from(file),
                kernel,
            }
        } else {
            Self::Kernel(text.to_string())
        }
    }

    /// The kernel the run must also boot, for a baseline of kernels.toml.
    pub fn kernel_to_run(&self) -> Option<&str> {
        match self {
            Self::Kernel(name) => Some(name),
            Self::Saved { .. } => None,
        }
    }

    /// Reads a saved baseline before anything boots, so that a bad file costs no VM.
    pub fn load(&self) -> Result<Option<RunResults>, u8> {
        match self {
            Self::Kernel(_) => Ok(None),
            Self::Saved { path, .. } => results::read_json(path).map(Some).map_err(|e| {
                eprintln!("error: --baseline: {}", crate::error_chain(&e));
                EXIT_BAD_INPUT
            }),
        }
    }
}

/// Prints, for every kernel of `results` but the baseline, what it does differently from
/// the baseline (`saved`: the loaded baseline file). Exits 0 when nothing differs, 1 when
/// something does, 3 when a kernel (or the baseline) did not run, 2 when the baseline file
/// does not say which of its kernels to use.
pub fn compare(
    out: &mut impl Write,
    results: &RunResults,
    baseline: &Baseline,
    saved: Option<&RunResults>,
    color: bool,
) -> Result<u8, io::Error> {
    let mut code = EXIT_PASS;
    for kernel in &results.kernels {
        if baseline.kernel_to_run() == Some(kernel.kernel.as_str()) {
            continue;
        }
        let base = match pick(results, baseline, saved, kernel) {
            Ok(base) => base,
            Err(message) => {
                eprintln!("error: --baseline: {}", crate::printable::escape(&message));
                return Ok(EXIT_BAD_INPUT);
            }
        };
        for run in [base, kernel] {
            if let KernelStatus::Error { message, .. } | KernelStatus::Skipped { reason: message } =
                &run.status
            {
                writeln!(out, "{} did not run: {message}", run.kernel)?;
                code = EXIT_INFRA;
            }
        }
        if code == EXIT_INFRA {
            continue;
        }
        let pair = diff::pair(base, kernel);
        let (old, new) = (base.kernel.as_str(), kernel.kernel.as_str());
        diff::write(out, &pair, old, new, false, color)?;
        if pair.summary().anything_changed(false) {
            code = code.max(EXIT_DIVERGED);
        }
    }
    Ok(code)
}

/// The baseline's run for `kernel`.
fn pick<'a>(
    results: &'a RunResults,
    baseline: &Baseline,
    saved: Option<&'a RunResults>,
    kernel: &KernelRun,
) -> Result<&'a KernelRun, String> {
    let (runs, wanted, source) = match (baseline, saved) {
        (Baseline::Kernel(name), _) => (&results.kernels, Some(name), "this run".to_string()),
        (Baseline::Saved { path, kernel }, Some(saved)) => {
            (&saved.kernels, kernel.as_ref(), path.display().to_string())
        }
        (Baseline::Saved { path, .. }, None) => {
            return Err(format!("{} was not read", path.display()));
        }
    };
    let names = || {
        runs.iter()
            .map(|k| k.kernel.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(wanted) = wanted {
        return runs
            .iter()
            .find(|k| k.kernel == *wanted)
            .ok_or_else(|| format!("{source} has no kernel `{wanted}` (it has {})", names()));
    }
    let same_series = |k: &&KernelRun| {
        k.version
            .zip(kernel.version)
            .is_some_and(|(a, b)| a.major == b.major && a.minor == b.minor)
    };
    match runs.as_slice() {
        [only] => Ok(only),
        _ => {
            let mut candidates = runs.iter().filter(same_series);
            match (candidates.next(), candidates.next()) {
                (Some(one), None) => Ok(one),
                _ => Err(format!(
                    "{source} holds several kernels ({}): say which with --baseline FILE#KERNEL",
                    names()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::KernelVersion;

    #[test]
    fn a_baseline_is_a_file_or_a_kernel_name() {
        assert_eq!(Baseline::parse("6.1"), Baseline::Kernel("6.1".into()));
        assert_eq!(
            Baseline::parse("runs/6.1/results.json#6.1"),
            Baseline::Saved {
                path: "runs/6.1/results.json".into(),
                kernel: Some("6.1".into())
            }
        );
        assert_eq!(
            Baseline::parse("base.json.gz"),
            Baseline::Saved {
                path: "base.json.gz".into(),
                kernel: None
            }
        );
    }

    #[test]
    fn a_saved_baseline_of_several_kernels_picks_the_same_series_or_asks() {
        let run = |name: &str, version: KernelVersion| KernelRun {
            version: Some(version),
            ..KernelRun::without_cases(name, KernelStatus::Ran)
        };
        let saved = RunResults::new(vec![
            run("6.1", KernelVersion::new(6, 1, 176)),
            run("7.1", KernelVersion::new(7, 1, 13)),
        ]);
        let mine = RunResults::new(vec![run(
            "6.1.0-50-cloud-amd64",
            KernelVersion::new(6, 1, 176),
        )]);
        let baseline = Baseline::parse("saved.json");
        let picked = pick(&mine, &baseline, Some(&saved), &mine.kernels[0]).unwrap();
        assert_eq!(picked.kernel, "6.1");
        let other = run("6.12", KernelVersion::new(6, 12, 0));
        let asked = pick(&mine, &baseline, Some(&saved), &other).unwrap_err();
        assert!(asked.contains("--baseline FILE#KERNEL"), "{asked}");
        let named = Baseline::parse("saved.json#7.1");
        assert_eq!(
            pick(&mine, &named, Some(&saved), &other).unwrap().kernel,
            "7.1"
        );
    }
}
