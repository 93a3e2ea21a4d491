//! `harness record`: run cases on one kernel (or read a saved run) and propose, per case
//! whose steps diverged, the case file edited to expect what the kernel did: printed as a
//! unified diff, or written beside the case as `NAME.yaml.recorded`, for review.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use super::{
    EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INFRA, EXIT_PASS, kernels, load_cases, report::finish,
    run_kernels,
};
use crate::{
    case::Case,
    kernels::KernelsFile,
    matrix::AbsentKernels,
    record::{self, StepEdit},
    results::{KernelRun, KernelStatus},
};

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Case files or directories (searched recursively for *.yaml).
    #[arg(default_value = "cases")]
    paths: Vec<PathBuf>,
    /// The kernel of the kernel list to run the cases on (or to take from --results).
    #[arg(long, value_name = "NAME")]
    kernel: String,
    /// Only cases whose name contains this text (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// The kernel list.
    #[arg(long, default_value = "kernels.toml")]
    kernels: PathBuf,
    /// Record from this saved results.json instead of booting the kernel.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Write each proposal beside its case as NAME.yaml.recorded instead of printing a diff.
    #[arg(long)]
    write: bool,
    /// Guest memory, e.g. 1G.
    #[arg(long)]
    memory: Option<String>,
    /// Directory for the run's reports.
    #[arg(long, default_value = "target/sk-storage-report/record")]
    out: PathBuf,
}

/// Exits 0 when every step did what its case expects (nothing to record), 1 when edits
/// were proposed or refused, 2 on bad input, 3 when the kernel did not run the cases.
pub fn run(args: &RecordArgs) -> u8 {
    let cases = match load_cases(&args.paths, &args.filter) {
        Ok(cases) if cases.is_empty() => {
            eprintln!("no case matches the filter {:?}", args.filter);
            return EXIT_BAD_INPUT;
        }
        Ok(cases) => cases,
        Err(code) => return code,
    };
    let run = match kernel_run(args, &cases) {
        Ok(run) => run,
        Err(code) => return code,
    };
    let version = match (&run.status, run.version) {
        (KernelStatus::Ran, Some(version)) => version,
        (KernelStatus::Ran, None) => {
            eprintln!("error: {} reported no version to record", run.kernel);
            return EXIT_INFRA;
        }
        (status, _) => {
            eprintln!("error: {} did not run the cases: {status:?}", run.kernel);
            return EXIT_INFRA;
        }
    };
    let origin = match &run.release {
        Some(release) => format!("{} ({release})", run.kernel),
        None => run.kernel.clone(),
    };
    let mut stdout = io::stdout().lock();
    let mut code = EXIT_PASS;
    for result in &run.cases {
        let Some(case) = cases.iter().find(|c| c.name == result.name) else {
            continue;
        };
        if result
            .steps
            .iter()
            .all(|s| s.verdict == crate::results::Verdict::Pass)
        {
            continue;
        }
        code = EXIT_DIVERGED;
        let printed = propose(&mut stdout, case, result, version, &origin, args.write);
        match printed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return code,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_INFRA;
            }
        }
    }
    if code == EXIT_PASS {
        return finish(
            writeln!(
                stdout,
                "every step did what its case expects on {origin}: nothing to record"
            ),
            code,
        );
    }
    code
}

/// The kernel's run: from the saved results, or by booting it through the matrix runner.
fn kernel_run(args: &RecordArgs, cases: &[Case]) -> Result<KernelRun, u8> {
    if let Some(path) = &args.results {
        let results = crate::report::read_json(path).map_err(|e| {
            eprintln!("error: {:#}", anyhow::Error::new(e));
            EXIT_BAD_INPUT
        })?;
        let names: Vec<String> = results.kernels.iter().map(|k| k.kernel.clone()).collect();
        return results
            .kernels
            .into_iter()
            .find(|k| k.kernel == args.kernel)
            .ok_or_else(|| {
                let hint =
                    crate::diagnostic::did_you_mean(&args.kernel, names.iter().map(String::as_str));
                eprintln!(
                    "error: {}: no kernel named `{}`{hint}",
                    path.display(),
                    args.kernel
                );
                EXIT_BAD_INPUT
            });
    }
    let file = KernelsFile::load(&args.kernels).map_err(|e| {
        eprintln!("{e}");
        EXIT_BAD_INPUT
    })?;
    let selected = kernels::select(&file, std::slice::from_ref(&args.kernel)).map_err(|m| {
        eprintln!("{m}");
        EXIT_BAD_INPUT
    })?;
    let results = run_kernels(
        &file,
        &selected,
        cases,
        super::VmLimits::one_at_a_time(args.memory.clone()),
        AbsentKernels::Fail,
        &args.out,
    )?;
    if let Err(e) =
        crate::report::write_all(&results, &args.out, crate::report::JsonLayout::Compact)
    {
        eprintln!("error: {}", crate::error_chain(&e));
    }
    Ok(results
        .kernels
        .into_iter()
        .next()
        .expect("one kernel, one run"))
}

/// Prints what was proposed for one case, and the proposal as a diff or a written file.
fn propose(
    out: &mut impl Write,
    case: &Case,
    result: &crate::results::CaseResult,
    version: crate::version::KernelVersion,
    origin: &str,
    write: bool,
) -> io::Result<()> {
    let text = std::fs::read_to_string(&case.file).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read {}: {e}", case.file.display()),
        )
    })?;
    let proposal = record::propose(&text, case, result, version, origin);
    writeln!(out, "{} ({}):", case.name, case.file.display())?;
    for edit in &proposal.edits {
        match edit {
            StepEdit::Edited { step, what } => writeln!(out, "  step {step}: {what}")?,
            StepEdit::Refused { step, why } => writeln!(out, "  step {step}: not edited: {why}")?,
        }
    }
    if proposal.text == text {
        return Ok(());
    }
    let recorded = recorded_path(&case.file);
    if write {
        std::fs::write(&recorded, &proposal.text).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot write {}: {e}", recorded.display()),
            )
        })?;
        writeln!(
            out,
            "  wrote {} (review it, then move it over the case)",
            recorded.display()
        )
    } else {
        let diff = similar::TextDiff::from_lines(&text, &proposal.text);
        write!(
            out,
            "{}",
            diff.unified_diff().header(
                &case.file.display().to_string(),
                &recorded.display().to_string()
            )
        )
    }
}

fn recorded_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".recorded");
    PathBuf::from(name)
}
