//! `harness bisect`: every point of an ordered list of kernels (kernels.toml, or a Debian
//! suite's ladder of point releases) where behaviour changes from one kernel to the next,
//! booting as few as bisecting between the kernels that differ needs. `harness bisect-run`:
//! one verdict on one kernel image, in the exit codes `git bisect run` reads.

use std::path::{Path, PathBuf};

use super::{
    EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INFRA, EXIT_PASS, VmLimits, kernel_cache, load_cases,
    run_kernels, select::CaseSelection,
};
use crate::{
    bisect::{self, ChangePoint, Mark, Outcome},
    case::{Case, Expected},
    kernels::{KernelsFile, LadderError, append_debian_ladder},
    matrix::AbsentKernels,
    results::{KernelRun, RunResults},
    vm::Arch,
};

#[derive(Debug, clap::Args)]
pub struct BisectArgs {
    /// Case files or directories (searched recursively for *.yaml).
    /// [default: the project's cases]
    #[arg(default_values_os_t = [super::project::path("cases")], hide_default_value = true)]
    paths: Vec<PathBuf>,
    /// The cases to watch (one of --filter and --case is required).
    #[command(flatten)]
    select: CaseSelection,
    /// Watch only this step (the filter must select one case); a kernel where it did not
    /// run cannot be judged.
    #[arg(long, value_name = "ID")]
    step: Option<String>,
    /// The kernel list: the kernels to bisect, in its order, or (with --debian) the mirror
    /// and keyring to use.
    /// [default: the project's kernels.toml]
    #[arg(long, default_value_os_t = super::project::path("kernels.toml"), hide_default_value = true)]
    kernels: PathBuf,
    /// Bisect every point release of this Debian suite's kernels instead of the list.
    #[arg(long, value_name = "SUITE")]
    debian: Option<String>,
    /// The Debian kernels' flavour [default: cloud-amd64, cloud-arm64 with --arch arm64].
    #[arg(long, requires = "debian")]
    flavour: Option<String>,
    /// The Debian kernels' architecture (x86_64, arm64) [default: the flavour's, else
    /// x86_64]; arm64 kernels are named `VERSION-arm64`.
    #[arg(long, requires = "debian")]
    arch: Option<Arch>,
    /// The first kernel: a name of the list, or a version with --debian (`7.0.13` or
    /// `7.0.13-1~bpo13+1`) [default: the first].
    #[arg(long)]
    from: Option<String>,
    /// The last kernel, as --from [default: the last].
    #[arg(long)]
    to: Option<String>,
    /// Guest memory for kernels whose entry does not set it, e.g. 1G.
    #[arg(long, value_parser = super::memory_arg)]
    memory: Option<String>,
    /// Directory for results.json of the kernels visited (for `harness diff`).
    /// [default: the project's target/sk-storage-report/bisect]
    #[arg(long, default_value_os_t = super::project::path("target/sk-storage-report/bisect"), hide_default_value = true)]
    out: PathBuf,
}

/// Exits 0 when every change was narrowed to two neighbouring kernels, 1 when no change
/// point was found (the last kernel behaves as the first), 2 on bad input, 3 when an end
/// could not be judged or unjudged kernels leave a change point open.
pub fn run(args: &BisectArgs) -> u8 {
    match bisect(args) {
        Ok(code) | Err(code) => code,
    }
}

fn bisect(args: &BisectArgs) -> Result<u8, u8> {
    let cases = select_cases(&args.paths, &args.select, args.step.as_deref())?;
    let (file, ladder) = match &args.debian {
        Some(suite) => debian_ladder(args, suite)?,
        None => list_ladder(args)?,
    };
    let kernels = &file.kernels[ladder.clone()];
    let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
    if names.len() < 2 {
        eprintln!(
            "error: a bisection needs two kernels at least; --from and --to select {}",
            names.join(", ")
        );
        return Err(EXIT_BAD_INPUT);
    }
    let watched: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    println!(
        "bisecting {}{} over {} kernels: {}",
        watched.join(", "),
        args.step
            .as_deref()
            .map_or(String::new(), |s| format!(" step {s}")),
        names.len(),
        names.join(" "),
    );

    let mut runs: Vec<(usize, KernelRun)> = Vec::new();
    let mut boots = 0;
    let outcome = bisect::search(
        kernels.len(),
        |i| {
            let results = run_kernels(
                &file,
                &[&kernels[i]],
                &cases,
                VmLimits::one_at_a_time(args.memory.clone()),
                // A kernel of the ladder that this machine lacks is a step the search skips.
                AbsentKernels::Skip,
                &args.out,
            )?;
            let run = results
                .kernels
                .into_iter()
                .next()
                .expect("one kernel, one run");
            let shown = bisect::observe(&crate::report::printable(&run), args.step.as_deref());
            runs.push((i, run));
            Ok::<_, u8>(shown)
        },
        |visit| {
            boots += 1;
            let mark = match visit.mark() {
                Mark::Reference => "reference",
                Mark::Good => "good",
                Mark::Bad => "bad",
                Mark::Skip => "skip",
            };
            println!(
                "[{boots}] {} ({} of {}): {mark}: {}",
                names[visit.index],
                visit.index + 1,
                names.len(),
                visit_detail(visit, &names)
            );
        },
    )?;

    runs.sort_by_key(|(i, _)| *i);
    let results = RunResults::new(runs.into_iter().map(|(_, run)| run).collect());
    if let Err(e) =
        crate::report::write_all(&results, &args.out, crate::results::JsonLayout::Compact)
    {
        eprintln!("error: {}", crate::error_chain(&e));
    }
    let (first, last) = (names[0], names[names.len() - 1]);
    let code = match outcome {
        Outcome::Changed(points) => {
            println!(
                "{} change point(s) between {first} and {last}:",
                points.len()
            );
            for (n, point) in points.iter().enumerate() {
                print_change_point(n + 1, points.len(), point, &names);
            }
            if points.iter().any(ChangePoint::is_open) {
                EXIT_INFRA
            } else {
                EXIT_PASS
            }
        }
        Outcome::NoChange => {
            println!("{last} behaves as {first}: nothing changed between them, or it changed back");
            EXIT_DIVERGED
        }
        Outcome::NoChangePoint => {
            println!(
                "{last} differs from {first}, yet every kernel visited behaves as its visited \
                 neighbours: differences each pair leaves open add up to one the ends pin"
            );
            EXIT_DIVERGED
        }
        Outcome::EndUnjudged { index } => {
            println!(
                "{} could not be judged, so there is nothing to compare with",
                names[index]
            );
            EXIT_INFRA
        }
    };
    println!("{boots} of {} kernels booted", names.len());
    println!("results of the kernels booted: {}", args.out.display());
    Ok(code)
}

/// How a visited kernel compares with its nearest judged neighbours visited, or what it
/// showed when it has none.
fn visit_detail(visit: &bisect::Visit, names: &[&str]) -> String {
    let comparisons: Vec<String> = [&visit.before, &visit.after]
        .into_iter()
        .flatten()
        .map(|c| {
            if c.changes.is_empty() {
                format!("as {}", names[c.with])
            } else {
                format!(
                    "differs from {}: {}",
                    names[c.with],
                    bisect::in_brief(&c.changes)
                )
            }
        })
        .collect();
    if comparisons.is_empty() {
        bisect::summary(&visit.shown)
    } else {
        comparisons.join("; ")
    }
}

fn print_change_point(n: usize, count: usize, point: &ChangePoint, names: &[&str]) {
    let (last_alike, first_different) = (names[point.last_alike], names[point.first_different]);
    if point.is_open() {
        let unjudged = &names[point.last_alike + 1..point.first_different];
        println!(
            "change {n} of {count} (open): last alike {last_alike}, first different \
             {first_different}; {} could not be judged, so the change is at one of {}, \
             {first_different}",
            unjudged.join(", "),
            unjudged.join(", ")
        );
    } else {
        println!(
            "change {n} of {count}: last alike {last_alike}, first different {first_different}"
        );
    }
    for change in &point.changes {
        println!("  {change}");
    }
}

/// The cases `select` takes; `step` needs exactly one, and a step of that id.
fn select_cases(
    paths: &[PathBuf],
    select: &CaseSelection,
    step: Option<&str>,
) -> Result<Vec<Case>, u8> {
    if select.is_empty() {
        eprintln!("error: give the cases to watch with --filter or --case");
        return Err(EXIT_BAD_INPUT);
    }
    let cases = load_cases(paths, select)?;
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    match (names.as_slice(), step) {
        ([_, _, ..], Some(_)) => {
            eprintln!(
                "error: --step needs one case, but {select} selects {}",
                names.join(", ")
            );
            Err(EXIT_BAD_INPUT)
        }
        _ => Ok(cases),
    }
}

/// The kernels of the list, from --from to --to.
fn list_ladder(args: &BisectArgs) -> Result<(KernelsFile, std::ops::Range<usize>), u8> {
    let file = KernelsFile::load(&args.kernels).map_err(|e| {
        eprintln!("{}", crate::error_chain(&e));
        EXIT_BAD_INPUT
    })?;
    let names: Vec<&str> = file.kernels.iter().map(|k| k.name.as_str()).collect();
    let at = |name: &Option<String>, default: usize| match name {
        None => Ok(default),
        Some(name) => names.iter().position(|n| n == name).ok_or_else(|| {
            let hint = crate::diagnostic::did_you_mean(name, names.iter().copied());
            eprintln!(
                "{}: no kernel named `{name}`{hint} (`harness kernels list` shows the names)",
                args.kernels.display()
            );
            EXIT_BAD_INPUT
        }),
    };
    let from = at(&args.from, 0)?;
    let to = at(&args.to, names.len().saturating_sub(1))?;
    Ok((file, from..to + 1))
}

/// Every version of the suite's kernels from --from to --to, as kernels named by their
/// upstream version, after those of the kernel list (which lends its mirror and keyring).
fn debian_ladder(
    args: &BisectArgs,
    suite: &str,
) -> Result<(KernelsFile, std::ops::Range<usize>), u8> {
    let mut file = if args.kernels.exists() {
        KernelsFile::load(&args.kernels).map_err(|e| {
            eprintln!("{}", crate::error_chain(&e));
            EXIT_BAD_INPUT
        })?
    } else {
        KernelsFile::empty(&args.kernels)
    };
    let arch = args
        .arch
        .or_else(|| args.flavour.as_deref().and_then(Arch::of_flavour))
        .unwrap_or_default();
    let flavour = args
        .flavour
        .clone()
        .unwrap_or_else(|| arch.default_flavour());
    if Arch::of_flavour(&flavour) != Some(arch) {
        eprintln!(
            "error: `{flavour}` is not a flavour of {arch} kernels, whose Debian flavours end in `-{}`",
            arch.debian()
        );
        return Err(EXIT_BAD_INPUT);
    }
    let range = append_debian_ladder(
        &mut file,
        kernel_cache()?,
        suite,
        &flavour,
        args.from.as_deref(),
        args.to.as_deref(),
    )
    .map_err(|e| {
        eprintln!("error: {}", crate::error_chain(&e));
        match e {
            LadderError::Index(_) => EXIT_INFRA,
            LadderError::NoSuchVersion { .. } => EXIT_BAD_INPUT,
        }
    })?;
    Ok((file, range))
}

#[derive(Debug, clap::Args)]
pub struct BisectRunArgs {
    /// Case files or directories (searched recursively for *.yaml).
    /// [default: the project's cases]
    #[arg(default_values_os_t = [super::project::path("cases")], hide_default_value = true)]
    paths: Vec<PathBuf>,
    /// The kernel image to boot (e.g. arch/x86/boot/bzImage of a kernel tree).
    #[arg(long, value_name = "PATH")]
    image: PathBuf,
    /// Its modules directory (lib/modules/<release>), if it needs modules to boot.
    #[arg(long, value_name = "DIR")]
    modules: Option<PathBuf>,
    /// The case(s) to judge by (one of --filter and --case is required).
    #[command(flatten)]
    select: CaseSelection,
    /// Judge by this step only (the filter must select one case).
    #[arg(long, value_name = "ID")]
    step: Option<String>,
    /// The step is good when its actual outcome is this (`ok` or an errno name), bad
    /// otherwise, whatever the case expects of the kernel's version (a kernel between two
    /// releases reports a version the expectations may not fit).
    #[arg(long, value_name = "OUTCOME", requires = "step")]
    good: Option<String>,
    /// Wall-clock limit for the VM, e.g. 240s.
    #[arg(long)]
    timeout: Option<String>,
    /// Guest memory, e.g. 1G.
    #[arg(long, value_parser = super::memory_arg)]
    memory: Option<String>,
    /// Directory for results.json of this kernel.
    /// [default: the project's target/sk-storage-report/bisect-run]
    #[arg(long, default_value_os_t = super::project::path("target/sk-storage-report/bisect-run"), hide_default_value = true)]
    out: PathBuf,
}

/// `git bisect run`'s code for "abort the bisection" (bad input, no kernel image).
pub const GIT_ABORT: u8 = 128;

/// Boots `--image` once and judges the selected case(s). Exits 0 good, 1 bad, 125 when the
/// kernel cannot be judged (no boot, a skip, an error), 128 on bad input (which must stop
/// a `git bisect run` rather than mark commits).
pub fn run_git(args: &BisectRunArgs) -> u8 {
    let cases = match select_cases(&args.paths, &args.select, args.step.as_deref()) {
        Ok(cases) => cases,
        Err(_) => return GIT_ABORT,
    };
    let good = match args.good.as_deref().map(parse_outcome).transpose() {
        Ok(good) => good,
        Err(message) => {
            eprintln!("error: --good: {message}");
            return GIT_ABORT;
        }
    };
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("error: cannot create a temporary directory: {e}");
            return GIT_ABORT;
        }
    };
    let file = match one_kernel_list(dir.path(), args) {
        Ok(file) => file,
        Err(message) => {
            eprintln!("error: {message}");
            return GIT_ABORT;
        }
    };
    let results = match run_kernels(
        &file,
        &[&file.kernels[0]],
        &cases,
        VmLimits::one_at_a_time(args.memory.clone()),
        AbsentKernels::Fail,
        &args.out,
    ) {
        Ok(results) => results,
        Err(_) => return GIT_ABORT,
    };
    if let Err(e) =
        crate::report::write_all(&results, &args.out, crate::results::JsonLayout::Compact)
    {
        eprintln!("error: {}", crate::error_chain(&e));
    }
    // Judged as printed: the guest's release and outcomes are the kernel's text.
    let run = &crate::report::printable(&results.kernels[0]);
    let (verdict, why) = bisect::git_verdict(run, args.step.as_deref(), good.as_ref());
    println!(
        "bisect-run: {}: {verdict}: {why}",
        run.release.as_deref().unwrap_or("kernel")
    );
    verdict.exit_code()
}

/// A kernels.toml with the one image, written beside the run so that the usual loader
/// validates it (and resolves its release) as any list.
fn one_kernel_list(dir: &Path, args: &BisectRunArgs) -> Result<KernelsFile, String> {
    let absolute = |p: &Path| {
        std::path::absolute(p).map_err(|e| format!("cannot resolve {}: {e}", p.display()))
    };
    let quote = |p: PathBuf| toml::Value::String(p.display().to_string()).to_string();
    let mut local = format!("vmlinuz = {}", quote(absolute(&args.image)?));
    if let Some(modules) = &args.modules {
        local.push_str(&format!(", modules = {}", quote(absolute(modules)?)));
    }
    let mut text = format!("[[kernel]]\nname = \"bisect\"\nlocal = {{ {local} }}\n");
    if let Some(timeout) = &args.timeout {
        text.push_str(&format!(
            "timeout = {}\n",
            toml::Value::String(timeout.clone())
        ));
    }
    let path = dir.join("kernels.toml");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    KernelsFile::load(&path).map_err(|e| crate::error_chain(&e))
}

fn parse_outcome(text: &str) -> Result<Expected, String> {
    match text {
        "ok" => Ok(Expected::Ok),
        name if crate::errno::code(name).is_some() => Ok(Expected::Errno(name.to_string())),
        other => Err(format!(
            "`{other}` is neither `ok` nor an errno name{}",
            crate::diagnostic::did_you_mean(other, crate::errno::known_names())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_is_ok_or_an_errno_name() {
        assert_eq!(
            parse_outcome("ENOMEM"),
            Ok(Expected::Errno("ENOMEM".into()))
        );
        assert!(parse_outcome("ENOMEN").unwrap_err().contains("ENOMEM"));
    }
}
