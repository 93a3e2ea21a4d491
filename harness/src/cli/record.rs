//! `harness record`: run cases on kernels (or read a saved run) and propose, per case that
//! some kernel contradicts, the case file edited to expect what the kernels did: printed
//! as a unified diff, or written beside the case as `NAME.yaml.recorded`, for review.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use super::{EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INFRA, EXIT_PASS, load_cases, report::finish};
use crate::{
    case::Case,
    record::{self, StepEdit},
    results::{KernelRun, KernelStatus},
};

/// `record`'s exit codes, for `--help` and [`run`].
pub const EXIT_CODES: &str = "Exit codes: 0 nothing to record, 1 edits proposed or refused, 2 bad input, 3 a kernel did not run (the others' proposals are still printed).";

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Case files or directories (searched recursively for *.yaml).
    /// [default: the project's cases]
    #[arg(default_values_os_t = [super::project::path("cases")], hide_default_value = true)]
    paths: Vec<PathBuf>,
    /// A kernel to run the cases on, as `run --kernel` takes it (a name of the list, a
    /// path, `debian:SUITE[/VERSION][@FLAVOUR]`), or a kernel of --results to take
    /// (repeatable; with --results, all of its kernels by default). Several kernels let a
    /// proposal place a version split between them.
    #[arg(
        long,
        value_name = "NAME|PATH|debian:SUITE[/VERSION]",
        required_unless_present = "results"
    )]
    kernel: Vec<String>,
    #[command(flatten)]
    select: super::select::CaseSelection,
    /// The kernel list.
    /// [default: the project's kernels.toml]
    #[arg(long, default_value_os_t = super::project::path("kernels.toml"), hide_default_value = true)]
    kernels: PathBuf,
    /// Record from this saved results.json instead of booting kernels.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Write each proposal beside its case as NAME.yaml.recorded instead of printing a diff.
    #[arg(long)]
    write: bool,
    /// Guest memory, e.g. 1G.
    #[arg(long, value_parser = super::memory_arg)]
    memory: Option<String>,
    /// Directory for the run's reports.
    /// [default: the project's target/sk-storage-report/record]
    #[arg(long, default_value_os_t = super::project::path("target/sk-storage-report/record"), hide_default_value = true)]
    out: PathBuf,
}

/// Exits as [`EXIT_CODES`] says.
pub fn run(args: &RecordArgs) -> u8 {
    let cases = match load_cases(&args.paths, &args.select) {
        Ok(cases) => cases,
        Err(code) => return code,
    };
    let runs = match kernel_runs(args, &cases) {
        Ok(runs) => runs,
        Err(code) => return code,
    };
    let mut a_kernel_failed = false;
    let mut ran = Vec::new();
    for run in runs {
        let shown = crate::report::printable(&run);
        match (&shown.status, run.version) {
            (KernelStatus::Ran, Some(_)) => ran.push(run),
            (KernelStatus::Ran, None) => {
                eprintln!("error: {} reported no version to record", shown.kernel);
                a_kernel_failed = true;
            }
            (KernelStatus::Skipped { reason }, _) => {
                eprintln!("note: {} was skipped: {reason}", shown.kernel);
            }
            (KernelStatus::Error { message, .. }, _) => {
                eprintln!("error: {} did not run the cases: {message}", shown.kernel);
                a_kernel_failed = true;
            }
        }
    }
    if ran.is_empty() {
        eprintln!("error: no kernel ran the cases, so there is nothing to record from");
        return EXIT_INFRA;
    }
    let mut stdout = io::stdout().lock();
    let mut code = EXIT_PASS;
    for case in &cases {
        match propose(&mut stdout, case, &ran, args.write) {
            Ok(false) => {}
            Ok(true) => code = EXIT_DIVERGED,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return code,
            Err(e) => {
                eprintln!("error: {}", crate::printable::escape(&e.to_string()));
                return EXIT_INFRA;
            }
        }
    }
    if code == EXIT_PASS {
        let names: Vec<&str> = ran.iter().map(|k| k.kernel.as_str()).collect();
        code = finish(
            writeln!(
                stdout,
                "every step did what its case expects on {}: nothing to record",
                crate::printable::escape(&names.join(", "))
            ),
            code,
        );
    }
    if a_kernel_failed { EXIT_INFRA } else { code }
}

/// The kernels' runs: from the saved results, or by booting them through the matrix runner.
fn kernel_runs(args: &RecordArgs, cases: &[Case]) -> Result<Vec<KernelRun>, u8> {
    if let Some(path) = &args.results {
        let results = crate::results::read_json(path).map_err(|e| {
            eprintln!("error: {}", crate::error_chain(&e));
            EXIT_BAD_INPUT
        })?;
        if let Some(unknown) = args
            .kernel
            .iter()
            .find(|name| !results.kernels.iter().any(|k| &k.kernel == *name))
        {
            let names = results.kernels.iter().map(|k| k.kernel.as_str());
            let hint = crate::diagnostic::did_you_mean(unknown, names);
            eprintln!(
                "error: {}: no kernel named `{unknown}`{hint}",
                path.display()
            );
            return Err(EXIT_BAD_INPUT);
        }
        return Ok(results
            .kernels
            .into_iter()
            .filter(|k| args.kernel.is_empty() || args.kernel.contains(&k.kernel))
            .collect());
    }
    let choice = super::KernelChoice {
        list: &args.kernels,
        kernel: &args.kernel,
    };
    let limits = super::VmLimits::one_at_a_time(args.memory.clone());
    let results = super::run_matrix(&choice, limits, &args.out, cases, None)?;
    if let Err(e) =
        crate::report::write_all(&results, &args.out, crate::results::JsonLayout::Compact)
    {
        eprintln!("error: {}", crate::error_chain(&e));
    }
    Ok(results.kernels)
}

/// Prints what was proposed for one case, and the proposal as a diff or a written file;
/// says whether there was anything to propose.
/// Prints the proposal for `case` (or writes it beside the case with `write`), each line
/// printable: it quotes what the kernels did and the case file.
fn propose(
    out: &mut impl Write,
    case: &Case,
    kernels: &[KernelRun],
    write: bool,
) -> io::Result<bool> {
    let mut shown = Vec::new();
    let proposed = propose_to(&mut shown, case, kernels, write)?;
    for line in String::from_utf8_lossy(&shown).lines() {
        writeln!(out, "{}", crate::printable::escape(line))?;
    }
    Ok(proposed)
}

fn propose_to(
    out: &mut impl Write,
    case: &Case,
    kernels: &[KernelRun],
    write: bool,
) -> io::Result<bool> {
    let text = crate::case::read_case(&case.file)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let proposal = record::propose(&text, case, kernels);
    if proposal.edits.is_empty() {
        return Ok(false);
    }
    writeln!(out, "{} ({}):", case.name, case.file.display())?;
    let mut one_kernel = false;
    for edit in &proposal.edits {
        match edit {
            StepEdit::Edited {
                step,
                what,
                one_kernel: alone,
            } => {
                one_kernel |= alone;
                writeln!(out, "  step {step}: {what}")?;
            }
            StepEdit::Refused { step, why } => writeln!(out, "  step {step}: not edited: {why}")?,
        }
    }
    if one_kernel {
        writeln!(out, "  {}", record::ONE_KERNEL)?;
    }
    if proposal.text == text {
        return Ok(true);
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
        )?;
    } else {
        let diff = similar::TextDiff::from_lines(&text, &proposal.text);
        write!(
            out,
            "{}",
            diff.unified_diff().header(
                &case.file.display().to_string(),
                &recorded.display().to_string()
            )
        )?;
    }
    Ok(true)
}

fn recorded_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".recorded");
    PathBuf::from(name)
}
