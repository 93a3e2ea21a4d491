//! Command line: parses arguments with clap and dispatches to the stages.
//!
//! Exit codes are decided in one place, [`exit_code`]: 0 all pass, 1 divergences, 2 bad
//! input or usage, 3 infrastructure error.

use std::{
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

mod baseline;
mod bisect;
mod diff;
pub mod guest;
mod kernels;
mod new;
mod progress;
mod project;
mod record;
mod report;
mod select;
mod shell;

use self::select::CaseSelection;
use crate::{
    case::{self, Case},
    exec,
    kernels::{KernelCache, KernelsFile},
    matrix::{self, AbsentKernels, Event, GuestRoot, MatrixError, MatrixOptions},
    report::human::Human,
    results::{CaseOutcome, JsonLayout, KernelStatus, RunResults},
    vm,
};

pub const EXIT_PASS: u8 = 0;
pub const EXIT_DIVERGED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_INFRA: u8 = 3;
/// Ctrl-C: every VM was stopped and no report was written (128 + SIGINT, as shells do).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs BPF_MAP_TYPE_SK_STORAGE behaviour cases on real kernels and reports divergences
/// per kernel version.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
#[command(
    after_help = "The project is the nearest directory, this one or above, with a kernels.toml: its cases/, \
                  kernels.toml and target/sk-storage-report/ are the defaults wherever you run.\n\n\
                  Exit codes: 0 all pass, 1 divergences, 2 bad input or usage, 3 infrastructure error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour on stdout: `auto` on a terminal unless NO_COLOR is set (no-color.org),
    /// `always` also in a CI log or a pipe, `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
    /// Nothing on stderr but errors and warnings (no progress, no line per case or
    /// kernel); stdout keeps the results.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// The output settings every command shares, set once from the command line.
#[derive(Debug, Clone, Copy)]
struct Ui {
    color: ColorWhen,
    quiet: bool,
}

static UI: std::sync::OnceLock<Ui> = std::sync::OnceLock::new();

fn ui() -> Ui {
    *UI.get_or_init(|| Ui {
        color: ColorWhen::Auto,
        quiet: false,
    })
}

/// The terminal view of stdout, coloured as `--color` says.
fn human() -> Human {
    let mut human = Human::for_stdout();
    match ui().color {
        ColorWhen::Auto => {}
        ColorWhen::Always => human.color = true,
        ColorWhen::Never => human.color = false,
    }
    human
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate case files without running them.
    Check {
        /// Case files or directories (searched recursively for *.yaml).
        /// [default: the project's cases]
        #[arg(default_values_os_t = [project::path("cases")], hide_default_value = true)]
        paths: Vec<PathBuf>,
    },
    /// Run cases and compare every step with its expectation for the kernel's version.
    Run(RunArgs),
    /// Write a new case, NAME.yaml, to start from: commented, and valid as written. Prints
    /// its path.
    New(new::NewArgs),
    /// Boot one kernel as a run does, with the terminal as its console: a shell with
    /// bpftool and harness-guest inside, and, given a case, that case's maps, programs and
    /// sockets held after its steps until the shell exits.
    Shell(shell::ShellArgs),
    /// Merge or show saved results (results.json) in the report formats, or say which
    /// versioned expectations their kernels have shown (evidence).
    Report {
        #[command(subcommand)]
        command: report::ReportCommand,
    },
    /// Say which cases and steps changed between two saved runs (kernel by kernel), or
    /// between two kernels of one or two runs. Exits 1 when anything changed, 0 when not.
    Diff(diff::DiffArgs),
    /// Find every point of an ordered list of kernels (kernels.toml, or every point release
    /// of a Debian suite) where the selected cases' behaviour changes from one kernel to
    /// the next, by bisection. Exits 0 when each change is narrowed to two neighbouring
    /// kernels, 1 when the ends behave alike, 3 when unjudged kernels leave an end or a
    /// change open.
    ///
    /// Two kernels differ where a watched step (every step of the selected cases, or
    /// --step) differs in what its case pins: the kind of outcome, the errno, a rejection's
    /// text, literal values. Drift (values under `any`, comparisons that still hold, thread
    /// counts, why a step did not run) is no change. The first and the last kernel boot
    /// first; then, while two neighbouring kernels among those visited differ and untried
    /// kernels lie between them, the one nearest their middle boots. Each visit prints a
    /// line: `reference` (the first kernel), `good` (behaves as the nearest kernel visited
    /// before it), `bad` (differs from it: a change lies between them), or `skip` (cannot be
    /// judged: no boot, a skipped case, the step did not run), with how the kernel compares
    /// with its visited neighbours on both sides. At the end every change point is listed:
    /// the last kernel alike, the first different, and each changed step with both
    /// outcomes. A change that reverts between two visited kernels is not seen, as with git
    /// bisect.
    Bisect(bisect::BisectArgs),
    /// Run cases on kernels (or read a saved run) and propose the case files edited to
    /// expect what they did, split between kernels whose outcomes differ: a unified diff,
    /// or NAME.yaml.recorded with --write.
    #[command(after_help = record::EXIT_CODES)]
    Record(record::RecordArgs),
    /// For `git bisect run` in a kernel tree: boot one image, judge the selected case(s),
    /// exit 0 good, 1 bad, 125 cannot judge (no boot, skip, error), 128 bad input (aborts).
    BisectRun(bisect::BisectRunArgs),
    /// Print the completion script of a shell (bash: `harness completions bash >
    /// ~/.local/share/bash-completion/completions/harness`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page in roff (`harness man > harness.1; man ./harness.1`).
    Man,
    /// Print the JSON Schema of a case file, for editors (yaml-language-server: see the
    /// book's case language page).
    Schema,
    /// Show or fetch the kernels of the kernel list (Debian kernels are verified and cached).
    Kernels {
        #[command(subcommand)]
        command: kernels::KernelsCommand,
        /// The kernel list.
        /// [default: the project's kernels.toml]
        #[arg(long, default_value_os_t = project::path("kernels.toml"), hide_default_value = true)]
        kernels: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Case files or directories (searched recursively for *.yaml).
    /// [default: the project's cases]
    #[arg(default_values_os_t = [project::path("cases")], hide_default_value = true)]
    paths: Vec<PathBuf>,
    /// Run on the running kernel, without a VM.
    #[arg(long, conflicts_with_all = ["kernel", "jobs", "memory", "timeout", "cpus", "guest_root"])]
    host: bool,
    /// The kernel list.
    /// [default: the project's kernels.toml]
    #[arg(long, default_value_os_t = project::path("kernels.toml"), hide_default_value = true)]
    kernels: PathBuf,
    /// Only this kernel of the list (repeatable); all of them by default. A path instead of
    /// a name boots that kernel image (a bzImage) or built source tree, and
    /// `debian:SUITE[/VERSION][@FLAVOUR]` a Debian kernel (the suite's newest without
    /// VERSION; `@cloud-arm64` for arm64), fetched and verified as the list's are, without
    /// editing the list.
    #[arg(long, value_name = "NAME|PATH|debian:SUITE[/VERSION]")]
    kernel: Vec<String>,
    /// VMs running at once [default: number of cores].
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Guest memory for every kernel, over kernels.toml, e.g. 2G [default: the entry's, else
    /// vng's 1G].
    #[arg(long, value_parser = memory_arg)]
    memory: Option<String>,
    /// Wall-clock limit of each VM, over kernels.toml, e.g. 10m [default: the entry's, else 5m].
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Guest vCPUs, over kernels.toml [default: the entry's, else 1 under TCG].
    #[arg(long)]
    cpus: Option<u32>,
    /// The root filesystem kernel images boot on: `minimal` holds only what the guest runs
    /// (no udev to wait for), `host` is the host's, as vng shares it by default.
    #[arg(long, value_enum, default_value_t = GuestRoot::Minimal)]
    guest_root: GuestRoot,
    #[command(flatten)]
    select: CaseSelection,
    /// List the selected cases, one per line (name, file, and what each needs: a kernel
    /// version, capabilities, program hooks), or as JSON with --format json; run nothing.
    #[arg(long, conflicts_with_all = ["baseline", "only_changed"])]
    list: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Directory for the reports (results.json, junit.xml, report.md, report.html), written
    /// atomically.
    /// [default: the project's target/sk-storage-report]
    #[arg(long, default_value_os_t = project::path("target/sk-storage-report"), hide_default_value = true)]
    out: PathBuf,
    /// Indent results.json (and JSON on stdout), a value per line, instead of compact.
    #[arg(long)]
    pretty: bool,
    /// In the matrix on stdout, only the cases that changed behaviour between kernels,
    /// diverged or failed.
    #[arg(long)]
    only_changed: bool,
    /// Compare every kernel of the run with this one and print only what they do
    /// differently: a kernel of the list (run too), or a saved run (`RESULTS.json`, or
    /// `RESULTS.json#KERNEL` when it holds several kernels). Exits 0 when nothing differs,
    /// 1 when something does.
    #[arg(long, value_name = "NAME|RESULTS.json")]
    baseline: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A line per case, the divergences in detail, a summary.
    Human,
    /// The result model as JSON (schema: docs/src/results.md).
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    UI.set(Ui {
        color: cli.color,
        quiet: cli.quiet,
    })
    .expect("the output settings are set once, first");
    let code = match cli.command {
        Command::Check { paths } => check(&paths),
        Command::Run(args) => run(&args),
        Command::New(args) => new::run(&args),
        Command::Shell(args) => shell::run(&args),
        Command::Report { command } => report::run(command),
        Command::Diff(args) => diff::run(&args),
        Command::Bisect(args) => bisect::run(&args),
        Command::BisectRun(args) => bisect::run_git(&args),
        Command::Record(args) => record::run(&args),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "harness", &mut io::stdout());
            EXIT_PASS
        }
        Command::Schema => {
            let schema = crate::case::schema::case_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("a schema serialises")
            );
            EXIT_PASS
        }
        Command::Man => match clap_mangen::Man::new(Cli::command()).render(&mut io::stdout()) {
            Ok(()) => EXIT_PASS,
            Err(e) => {
                eprintln!("error: cannot write the manual page: {e}");
                EXIT_INFRA
            }
        },
        Command::Kernels {
            command,
            kernels: file,
        } => {
            return kernels::run(command, &file).unwrap_or_else(|e| {
                eprintln!("error: {}", crate::error_chain(e.as_ref()));
                ExitCode::from(EXIT_INFRA)
            });
        }
    };
    ExitCode::from(code)
}

/// The cases of `paths` that `select` takes; bad cases, or a selection that takes none, are
/// bad input.
fn load_cases(paths: &[PathBuf], select: &CaseSelection) -> Result<Vec<Case>, u8> {
    match case::load(paths) {
        Ok(cases) => select.apply(cases).map_err(|message| {
            eprintln!("error: {}", crate::printable::escape(&message));
            EXIT_BAD_INPUT
        }),
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} problem(s) found; nothing was run.", errors.0.len());
            Err(EXIT_BAD_INPUT)
        }
    }
}

fn check(paths: &[PathBuf]) -> u8 {
    match load_cases(paths, &CaseSelection::default()) {
        Ok(cases) => {
            println!("{} cases are valid", cases.len());
            EXIT_PASS
        }
        Err(code) => code,
    }
}

fn run(args: &RunArgs) -> u8 {
    let cases = match load_cases(&args.paths, &args.select) {
        Ok(cases) => cases,
        Err(code) => return code,
    };
    if args.list {
        return list_cases(&cases, args.format);
    }
    let baseline = args.baseline.as_deref().map(baseline::Baseline::parse);
    if let (true, Some(baseline::Baseline::Kernel(name))) = (args.host, &baseline) {
        eprintln!(
            "error: --host runs no VM, so --baseline {name} cannot run beside it: give a saved run (RESULTS.json)"
        );
        return EXIT_BAD_INPUT;
    }
    let saved_baseline = match baseline.as_ref().map(baseline::Baseline::load).transpose() {
        Ok(saved) => saved.flatten(),
        Err(code) => return code,
    };
    let human = human();
    let started = crate::results::Timestamp::now();
    let results = if args.host {
        let mut stdout = io::stdout().lock();
        let show_progress = args.format == Format::Human && !ui().quiet;
        match exec::run_cases("host", &cases, |case| {
            if show_progress {
                let _ = human.case_line(&mut stdout, &crate::report::printable(case));
            }
        }) {
            Ok(run) => RunResults {
                started,
                ..RunResults::new(vec![run])
            },
            Err(e) => {
                eprintln!("error: {}", crate::error_chain(&e));
                return EXIT_INFRA;
            }
        }
    } else {
        let also = baseline
            .as_ref()
            .and_then(baseline::Baseline::kernel_to_run);
        let choice = KernelChoice {
            list: &args.kernels,
            kernel: &args.kernel,
        };
        let limits = VmLimits {
            jobs: args.jobs.unwrap_or_else(matrix::default_jobs),
            memory: args.memory.clone(),
            timeout: args.timeout,
            cpus: args.cpus,
            guest_root: args.guest_root,
            shell: false,
        };
        match run_matrix(&choice, limits, &args.out, &cases, also) {
            Ok(results) => results,
            Err(code) => return code,
        }
    };
    let layout = JsonLayout::pretty_if(args.pretty);
    let files = match crate::report::write_all(&results, &args.out, layout) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {}", crate::error_chain(&e));
            return EXIT_INFRA;
        }
    };
    publish_to_github(&results, &files, true);
    let mut stdout = io::stdout().lock();
    // The terminal views show the results printable; JSON shows them as they are.
    let shown = || crate::report::printable(&results);
    if let (Some(baseline), Format::Human) = (&baseline, args.format) {
        let compared = baseline::compare(
            &mut stdout,
            &shown(),
            baseline,
            saved_baseline
                .as_ref()
                .map(crate::report::printable)
                .as_ref(),
            human.color,
        )
        .and_then(|code| writeln!(stdout, "reports: {}", args.out.display()).map(|()| code));
        return match compared {
            Ok(code) => code,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit_code(&results),
            Err(e) => {
                eprintln!("error: cannot write the comparison: {e}");
                EXIT_INFRA
            }
        };
    }
    let printed = match args.format {
        Format::Human if args.host => shown()
            .kernels
            .iter()
            .try_for_each(|k| human.kernel_summary(&mut stdout, k)),
        Format::Human => {
            let rows = if args.only_changed {
                crate::report::matrix::Rows::ChangedOrTroubled
            } else {
                crate::report::matrix::Rows::All
            };
            human_matrix(&mut stdout, &shown(), &cases, human, rows)
        }
        Format::Json => writeln!(stdout, "{}", crate::results::to_json(&results, layout)),
    }
    .and_then(|()| {
        if args.format == Format::Human {
            writeln!(stdout, "reports: {}", args.out.display())
        } else {
            Ok(())
        }
    });
    // A closed pipe (`| head`) is not a failure of the run.
    if let Err(e) = printed
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the report: {e}");
        return EXIT_INFRA;
    }
    exit_code(&results)
}

/// `run --list`: the selected cases and what each needs, without running them.
fn list_cases(cases: &[Case], format: Format) -> u8 {
    #[derive(serde::Serialize)]
    struct Listed<'a> {
        name: &'a str,
        file: &'a std::path::Path,
        requires: &'a case::Requirements,
        programs: Vec<&'static str>,
    }
    let listed: Vec<Listed<'_>> = cases
        .iter()
        .map(|case| Listed {
            name: &case.name,
            file: &case.file,
            requires: &case.requires,
            programs: case.programs.values().map(|p| p.kind.name()).collect(),
        })
        .collect();
    let text = match format {
        Format::Json => serde_json::to_string(&listed).expect("the listing serialises") + "\n",
        Format::Human => listed
            .iter()
            .map(|case| {
                let mut needs: Vec<String> = case
                    .requires
                    .kernel
                    .map(|v| format!("kernel>={v}"))
                    .into_iter()
                    .chain(case.requires.capabilities.iter().map(|c| c.to_string()))
                    .chain(case.programs.iter().map(|p| format!("program={p}")))
                    .collect();
                if needs.is_empty() {
                    needs.push("-".into());
                }
                let escape = crate::printable::escape;
                format!(
                    "{} {} {}\n",
                    escape(case.name),
                    escape(&case.file.display().to_string()),
                    needs.join(" ")
                )
            })
            .collect(),
    };
    let mut stdout = io::stdout().lock();
    match stdout.write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("error: cannot write the list: {e}");
            EXIT_INFRA
        }
        _ => EXIT_PASS,
    }
}

/// The triage view of a matrix run: the matrix, each kernel's trouble, the divergences,
/// where behaviour changed between kernels, and the versioned expectations no kernel of the
/// run has shown.
fn human_matrix(
    out: &mut impl Write,
    results: &RunResults,
    cases: &[Case],
    human: Human,
    rows: crate::report::matrix::Rows,
) -> io::Result<()> {
    // What changed leads: kernels that failed, divergences and behaviour changes, then the
    // matrix for the overview.
    for kernel in &results.kernels {
        human.kernel_error(out, kernel)?;
    }
    writeln!(out)?;
    crate::report::changes::write(out, results, human)?;
    writeln!(out)?;
    crate::report::matrix::write(out, results, human, rows)?;
    writeln!(out)?;
    crate::report::evidence::write_unverified(out, cases, results, human.color)
}

/// Every selected kernel of kernels.toml (and `also`, a baseline to run beside them), one
/// VM each. Bad input (the file, a kernel name) is reported before anything is fetched or
/// booted. Kernels given by path take their place among the others by the version they
/// reported.
/// Which kernels a command boots: `kernel` (names, paths, `debian:…`; all of the list when
/// empty) of the list `list`.
struct KernelChoice<'a> {
    list: &'a std::path::Path,
    kernel: &'a [String],
}

fn run_matrix(
    choice: &KernelChoice<'_>,
    limits: VmLimits,
    out: &std::path::Path,
    cases: &[Case],
    also: Option<&str>,
) -> Result<RunResults, u8> {
    let (debian, given): (Vec<String>, Vec<String>) = choice
        .kernel
        .iter()
        .cloned()
        .partition(|kernel| kernels::is_debian(kernel));
    let (mut names, paths): (Vec<String>, Vec<String>) = given
        .into_iter()
        .partition(|kernel| !kernels::is_path(kernel));
    if let Some(also) = also
        && !names.iter().any(|n| n == also)
        && !(names.is_empty() && paths.is_empty())
    {
        names.push(also.to_string());
    }
    // Kernels given by path or as Debian's alone need no kernel list.
    let direct = !paths.is_empty() || !debian.is_empty();
    let file = if names.is_empty() && direct && !choice.list.exists() {
        KernelsFile::empty(choice.list)
    } else {
        KernelsFile::load(choice.list).map_err(|e| {
            eprintln!("{}", crate::error_chain(&e));
            EXIT_BAD_INPUT
        })?
    };
    let (mut file, mut path_names) = kernels::with_paths(file, &paths).map_err(|message| {
        eprintln!("{}", crate::printable::escape(&message));
        EXIT_BAD_INPUT
    })?;
    if !debian.is_empty() {
        let cache = kernel_cache()?;
        let debian_names =
            kernels::with_debian(&mut file, &debian, &cache).map_err(|(message, code)| {
                eprintln!("{}", crate::printable::escape(&message));
                code
            })?;
        path_names.extend(debian_names);
    }
    // Kernels named on the command line must run; `optional` excuses only a whole-list run.
    let absent = if names.is_empty() {
        AbsentKernels::Skip
    } else {
        AbsentKernels::Fail
    };
    let mut selected_names = names;
    selected_names.extend(path_names.iter().cloned());
    let selected = kernels::select(&file, &selected_names).map_err(|message| {
        eprintln!("{}", crate::printable::escape(&message));
        EXIT_BAD_INPUT
    })?;
    let mut results = run_kernels(&file, &selected, cases, limits, absent, out)?;
    place_by_version(&mut results.kernels, &path_names);
    Ok(results)
}

/// Moves the kernels named `moved` to where their version puts them among the others (before
/// the first with a later version), leaving the others in list order.
fn place_by_version(kernels: &mut Vec<crate::results::KernelRun>, moved: &[String]) {
    let (mut placed, others): (Vec<_>, Vec<_>) = std::mem::take(kernels)
        .into_iter()
        .partition(|k| !moved.contains(&k.kernel));
    for kernel in others {
        let at = kernel.version.and_then(|version| {
            placed
                .iter()
                .position(|k| k.version.is_some_and(|v| v > version))
        });
        placed.insert(at.unwrap_or(placed.len()), kernel);
    }
    *kernels = placed;
}

/// `--memory`: a size as kernels.toml's `memory` takes it, handed to vng as that one is.
fn memory_arg(text: &str) -> Result<String, String> {
    text.parse::<crate::kernels::MemorySize>()
        .map(crate::kernels::MemorySize::as_qemu_arg)
}

/// The kernel cache in its usual place; a machine without one is an infrastructure error.
fn kernel_cache() -> Result<KernelCache, u8> {
    KernelCache::default_root()
        .map(KernelCache::at)
        .map_err(|e| {
            eprintln!("error: {}", crate::error_chain(&e));
            EXIT_INFRA
        })
}

/// What the command line says about the VMs of a run; `None` leaves kernels.toml's (or the
/// default) in force.
struct VmLimits {
    jobs: usize,
    memory: Option<String>,
    timeout: Option<std::time::Duration>,
    cpus: Option<u32>,
    guest_root: GuestRoot,
    /// `harness shell`: see [`MatrixOptions::shell`].
    shell: bool,
}

impl VmLimits {
    /// One VM at a time, as triage boots kernels one by one.
    fn one_at_a_time(memory: Option<String>) -> Self {
        Self {
            jobs: 1,
            memory,
            timeout: None,
            cpus: None,
            guest_root: GuestRoot::default(),
            shell: false,
        }
    }
}

/// Runs `cases` on `selected` kernels through the matrix runner, progress on stderr; the
/// guests' work directories go under `out`. Exits as [`run`] would on failure.
fn run_kernels(
    file: &KernelsFile,
    selected: &[&crate::kernels::KernelEntry],
    cases: &[Case],
    limits: VmLimits,
    absent: AbsentKernels,
    out: &std::path::Path,
) -> Result<RunResults, u8> {
    let cache = kernel_cache()?;
    let options = MatrixOptions {
        jobs: limits.jobs,
        memory: limits.memory,
        timeout: limits.timeout,
        cpus: limits.cpus,
        work_dir: out.join("guests"),
        harness_exe: std::env::current_exe().map_err(|e| {
            eprintln!("error: cannot find the harness binary to run in the guests: {e}");
            EXIT_INFRA
        })?,
        accel_memo: crate::cache_dir().map(|dir| dir.join("accel-probe.json")),
        nine_p_memo: crate::cache_dir().map(|dir| vm::NinePMemo::at(dir.join("root-over-9p.json"))),
        guest_root: limits.guest_root,
        absent,
        shell: limits.shell,
    };
    let quiet = ui().quiet;
    let bar = kernels::BarProgress::default();
    let download: &dyn crate::kernels::Progress = if quiet {
        &crate::kernels::NoProgress
    } else {
        &bar
    };
    // Progress goes to stderr so that stdout stays the report (and JSON stays parseable).
    let run_progress = progress::RunProgress::for_stderr();
    // A shell has the terminal: no progress drawn over it.
    let on_event = |event: Event<'_>| {
        if !quiet && !limits.shell {
            run_progress.show(event);
        }
    };
    matrix::run(file, selected, cases, &options, cache, download, &on_event).map_err(|e| {
        eprintln!("{}", crate::error_chain(&e));
        match e {
            MatrixError::Cancelled => EXIT_INTERRUPTED,
            MatrixError::Refused { .. } => EXIT_BAD_INPUT,
            _ => EXIT_INFRA,
        }
    })
}

/// In GitHub Actions, the run's annotations (with `annotate`) and report.md as the job
/// summary; elsewhere nothing. A summary that cannot be written is only a warning.
fn publish_to_github(results: &RunResults, files: &crate::report::ReportFiles, annotate: bool) {
    use crate::report::github;
    if !github::in_actions() {
        return;
    }
    if annotate {
        eprint!(
            "{}",
            github::annotations(&crate::report::printable(results))
        );
    }
    if let Err(e) = github::summarise(&files.report_md) {
        eprintln!("warning: cannot write the GitHub job summary: {e}");
    }
}

/// The run's exit code: infrastructure errors outrank divergences, which outrank passes.
pub fn exit_code(results: &RunResults) -> u8 {
    let infra = results.kernels.iter().any(|k| {
        matches!(k.status, KernelStatus::Error { .. })
            || k.cases
                .iter()
                .any(|c| matches!(c.outcome, CaseOutcome::Error { .. }))
    });
    let diverged = results
        .kernels
        .iter()
        .any(|k| k.cases.iter().any(|c| c.outcome == CaseOutcome::Diverged));
    if infra {
        EXIT_INFRA
    } else if diverged {
        EXIT_DIVERGED
    } else {
        EXIT_PASS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{results::KernelRun, version::KernelVersion};

    #[test]
    fn kernels_given_by_path_take_their_place_by_version() {
        let run = |name: &str, version: Option<KernelVersion>| KernelRun {
            version,
            ..KernelRun::without_cases(name, KernelStatus::Ran)
        };
        let mut kernels = vec![
            run("6.13.0-rc1+", Some(KernelVersion::new(6, 13, 0))),
            run("5.10", Some(KernelVersion::new(5, 10, 223))),
            run("7.1", Some(KernelVersion::new(7, 1, 13))),
            run("6.1", Some(KernelVersion::new(6, 1, 176))),
            run("./broken", None),
        ];
        place_by_version(
            &mut kernels,
            &["6.13.0-rc1+".to_string(), "./broken".to_string()],
        );
        let names: Vec<&str> = kernels.iter().map(|k| k.kernel.as_str()).collect();
        // The list's own order (7.1 before 6.1) is kept; a kernel with no version goes last.
        assert_eq!(names, ["5.10", "6.13.0-rc1+", "7.1", "6.1", "./broken"]);
    }
}
