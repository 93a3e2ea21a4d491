//! `harness diff OLD.json [NEW.json]`: what changed between two saved runs, kernel by
//! kernel, or between two kernels of one or two runs (`--old-kernel 7.0 --new-kernel 7.1`).

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use super::{EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_PASS, Format, report::finish};
use crate::{
    report::{self, diff},
    results::{self, KernelRun, RunResults},
};

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier results.json (`harness run` or `harness report merge`).
    old: PathBuf,
    /// The later results.json; the same file as OLD when omitted (with --old-kernel and
    /// --new-kernel, to compare two kernels of one run).
    new: Option<PathBuf>,
    /// Compare this kernel of OLD…
    #[arg(long, value_name = "NAME", requires = "new_kernel")]
    old_kernel: Option<String>,
    /// …with this kernel of NEW, instead of every kernel with its namesake.
    #[arg(long, value_name = "NAME", requires = "old_kernel")]
    new_kernel: Option<String>,
    /// Also list, and count as differences, the kernels, cases and steps only one side has
    /// (by default only what both sides ran is compared).
    #[arg(long)]
    all: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Exits 1 when a behaviour changed (or, with --all, one side has what the other lacks), 0
/// when the runs agree, 2 on bad input.
pub fn run(args: &DiffArgs) -> u8 {
    run_to(args, &mut io::stdout().lock(), super::human().color)
}

fn run_to(args: &DiffArgs, stdout: &mut impl Write, color: bool) -> u8 {
    let new_path = match (&args.new, &args.old_kernel) {
        (Some(new), _) => new.as_path(),
        (None, Some(_)) => args.old.as_path(),
        (None, None) => {
            eprintln!(
                "error: give two results files, or name two kernels with --old-kernel and --new-kernel"
            );
            return EXIT_BAD_INPUT;
        }
    };
    // The terminal view shows the results printable; JSON shows them as they are.
    let read = |path: &Path| match results::read_json(path) {
        Ok(results) if args.format == Format::Human => Ok(report::printable(&results)),
        Ok(results) => Ok(results),
        Err(e) => {
            eprintln!("error: {}", crate::error_chain(&e));
            Err(())
        }
    };
    let Ok(old) = read(&args.old) else {
        return EXIT_BAD_INPUT;
    };
    let Ok(new) = read(new_path) else {
        return EXIT_BAD_INPUT;
    };
    let diff = match (&args.old_kernel, &args.new_kernel) {
        (Some(old_name), Some(new_name)) => {
            let found = find_kernel(&old, old_name, &args.old)
                .and_then(|o| Ok((o, find_kernel(&new, new_name, new_path)?)));
            match found {
                Ok((o, n)) => diff::pair(o, n),
                Err(message) => {
                    eprintln!("error: {}", crate::printable::escape(&message));
                    return EXIT_BAD_INPUT;
                }
            }
        }
        _ => diff::by_name(&old, &new),
    };
    let code = if diff.summary().anything_changed(args.all) {
        EXIT_DIVERGED
    } else {
        EXIT_PASS
    };
    let printed = match args.format {
        Format::Human => diff::write(
            stdout,
            &diff,
            &crate::printable::escape(&args.old.display().to_string()),
            &crate::printable::escape(&new_path.display().to_string()),
            args.all,
            color,
        ),
        Format::Json => {
            let json = serde_json::json!({ "diff": diff, "summary": diff.summary() });
            writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&json).expect("the diff always serialises")
            )
        }
    };
    finish(printed, code)
}

fn find_kernel<'a>(
    results: &'a RunResults,
    name: &str,
    path: &Path,
) -> Result<&'a KernelRun, String> {
    results
        .kernels
        .iter()
        .find(|k| k.kernel == name)
        .ok_or_else(|| {
            let hint = crate::diagnostic::did_you_mean(
                name,
                results.kernels.iter().map(|k| k.kernel.as_str()),
            );
            format!("{}: no kernel named `{name}`{hint}", path.display())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::KernelStatus;

    fn saved(dir: &Path, file: &str, kernels: &[(&str, KernelStatus)]) -> PathBuf {
        let runs = kernels
            .iter()
            .map(|(name, status)| KernelRun::without_cases(name, status.clone()))
            .collect();
        let path = dir.join(file);
        std::fs::write(
            &path,
            results::to_json(&RunResults::new(runs), results::JsonLayout::Compact),
        )
        .expect("writes");
        path
    }

    fn args(old: &Path, new: Option<&Path>, kernels: Option<(&str, &str)>) -> DiffArgs {
        DiffArgs {
            old: old.to_path_buf(),
            new: new.map(Path::to_path_buf),
            old_kernel: kernels.map(|(o, _)| o.to_string()),
            new_kernel: kernels.map(|(_, n)| n.to_string()),
            all: false,
            format: Format::Json,
        }
    }

    #[test]
    fn exit_codes_follow_what_changed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let failed = KernelStatus::Error {
            message: "panic".into(),
            log_tail: None,
        };
        let a = saved(
            dir.path(),
            "a.json",
            &[("7.0", KernelStatus::Ran), ("7.1", KernelStatus::Ran)],
        );
        let b = saved(
            dir.path(),
            "b.json",
            &[("7.0", KernelStatus::Ran), ("7.1", failed)],
        );
        let code = |args: DiffArgs| run_to(&args, &mut Vec::new(), false);
        assert_eq!(code(args(&a, Some(&a), None)), EXIT_PASS);
        assert_eq!(code(args(&a, Some(&b), None)), EXIT_DIVERGED);
        // Two kernels of one file: 7.0 and 7.1 both ran the same (no) cases.
        assert_eq!(code(args(&a, None, Some(("7.0", "7.1")))), EXIT_PASS);
        assert_eq!(
            code(args(&a, Some(&b), Some(("7.0", "7.1")))),
            EXIT_DIVERGED
        );
        assert_eq!(code(args(&a, None, Some(("7.0", "7.9")))), EXIT_BAD_INPUT);
        assert_eq!(code(args(&a, None, None)), EXIT_BAD_INPUT);
        assert_eq!(
            code(args(&dir.path().join("missing.json"), Some(&a), None)),
            EXIT_BAD_INPUT
        );

        let mut stdout = Vec::new();
        run_to(&args(&a, Some(&b), None), &mut stdout, false);
        let json: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON");
        assert_eq!(json["summary"]["kernels_changed"], 1);
        assert_eq!(json["diff"]["kernels"][1]["status"][1]["message"], "panic");
    }
}
