//! Runs the case suite on every selected kernel of `kernels.toml`.
//!
//! Each kernel is resolved (Debian kernels fetched and verified, or taken from the cache),
//! booted once in a virtme-ng VM that runs this same binary's guest executor over all the
//! selected cases, and its results are read back from a directory the guest may write.
//! Whatever goes wrong with one kernel (fetch, boot, panic, timeout) becomes that kernel's
//! error row; the others still run.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    case::Case,
    exec,
    kernels::{
        BootableKernel, GuestTools, KernelCache, KernelEntry, KernelsFile, Progress,
        ResolvedKernel, Resolver,
    },
    plan::Plan,
    results::{KernelRun, KernelStatus, RunResults, Timestamp},
    version::KernelVersion,
    vm::{self, Accel, Arch, KernelArg, VmRegistry, VmSpec, Vng},
};

/// How to run the matrix; everything else comes from kernels.toml.
#[derive(Debug, Clone)]
pub struct MatrixOptions {
    /// VMs running at once.
    pub jobs: usize,
    /// Guest memory for every kernel, over what its entry says (QEMU notation, e.g. `1G`).
    pub memory: Option<String>,
    /// Wall-clock limit of each VM, over what the entries say.
    pub timeout: Option<std::time::Duration>,
    /// Guest vCPUs, over what the entries say.
    pub cpus: Option<u32>,
    /// Where the guests write their results while they run.
    pub work_dir: PathBuf,
    /// This binary, beside which cargo builds the guests' `harness-guest`
    /// ([`vm::guest_exe`]).
    pub harness_exe: PathBuf,
    /// Where the accelerator probe's verdict is remembered between runs (`None`: probe).
    pub accel_memo: Option<PathBuf>,
    /// Where the kernels that cannot mount their root over virtiofs are remembered
    /// (`None`: every run tries virtiofs first).
    pub nine_p_memo: Option<vm::NinePMemo>,
    /// What kernel images boot on as their root.
    pub guest_root: GuestRoot,
    /// What an `optional` kernel whose image is absent is in the results.
    pub absent: AbsentKernels,
    /// For a person at the terminal (`harness shell`): the guest holds its case's state
    /// under an interactive shell on the console, with no time limit.
    pub shell: bool,
}

/// What an `optional` local kernel whose image is absent becomes: `optional = true` excuses
/// it from a run of the whole list, never from a run that asked for it by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbsentKernels {
    /// A skipped kernel, which changes no exit code: the run covers the whole list.
    Skip,
    /// An error row: the kernel was named (`--kernel`), and a run that could not run it has
    /// not tested what it was asked to.
    Fail,
}

/// The root filesystem of guests booting a kernel image (source trees and mainline kernels
/// always boot on the host's root, where vng finds their modules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GuestRoot {
    /// A root holding only what the guest runs (`vm::MinimalRoot`), so no udev to wait for.
    #[default]
    Minimal,
    /// The host's root, as vng shares it by default.
    Host,
}

/// What the orchestrator reports while it works; the CLI turns these into progress lines.
#[derive(Debug)]
pub enum Event<'a> {
    /// One line about the whole run (the accelerator chosen and why).
    Note(&'a str),
    Started {
        kernel: &'a str,
        how: String,
    },
    /// A kernel's VM reached a landmark of its boot.
    Reached {
        kernel: &'a str,
        landmark: vm::Landmark,
    },
    /// A kernel's guest finished a case (`done` of `of`), as its console said.
    CaseDone {
        kernel: &'a str,
        case: &'a str,
        label: &'a str,
        done: usize,
        of: usize,
    },
    Finished(&'a KernelRun),
}

/// What the guest executor prints after each case, before the outcome's label and the
/// case's name: the host reads it off the console to show progress.
pub const CASE_DONE_MARK: &str = "sk-harness: ";

/// The (label, case) of a guest's case line, wherever it sits in a console line (a kernel
/// message can share the line).
fn case_done(line: &str) -> Option<(&str, &str)> {
    let (_, rest) = line.split_once(CASE_DONE_MARK)?;
    rest.trim().split_once(' ')
}

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("interrupted: every VM was stopped and no report was written")]
    Cancelled,
    #[error("cannot create the work directory {}: {source}", path.display())]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Vm(vm::VmError),
    /// A path that vng would hand to a shell unsafely: nothing was booted.
    #[error("{subject}: refused before anything booted")]
    Refused {
        subject: String,
        #[source]
        source: vm::VmError,
    },
}

impl From<vm::VmError> for MatrixError {
    /// A VM call cancelled by Ctrl-C (the accelerator probe's boot) is the run's interruption.
    fn from(error: vm::VmError) -> Self {
        match error {
            vm::VmError::Cancelled => Self::Cancelled,
            other => Self::Vm(other),
        }
    }
}

/// Why a kernel has no run of its cases: its row's error, with the console lines that
/// explain it where there are some.
#[derive(Debug, thiserror::Error)]
enum KernelError {
    /// Resolving the kernel failed, or the VMs could not be set up: said before the run.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Host(#[from] exec::InfraError),
    #[error("cannot create the guest's result directory")]
    GuestDir(#[source] std::io::Error),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build {}", tree.display())]
    Build {
        tree: PathBuf,
        #[source]
        source: crate::kernels::build::BuildError,
    },
    #[error(transparent)]
    Vm(#[from] vm::VmError),
    #[error("{}", .0.summary())]
    Boot(vm::VmFailure),
    #[error("the guest executor exited {exit:?} without readable results")]
    NoResults {
        exit: Option<i32>,
        #[source]
        source: crate::results::ReadError,
        console_tail: String,
    },
    #[error("the guest wrote no kernel run")]
    NoRun,
}

impl KernelError {
    /// The console lines that explain the error, when it comes from the guest.
    fn log_tail(&self) -> Option<String> {
        match self {
            Self::Boot(failure) => Some(failure.detail().to_string()),
            Self::NoResults { console_tail, .. } => Some(console_tail.clone()),
            _ => None,
        }
    }
}

/// A kernel ready to run, or why it cannot.
enum Job<'a> {
    Host(&'a KernelEntry),
    Vm(&'a KernelEntry, KernelArg),
    Failed(&'a KernelEntry, String),
    Skipped(&'a KernelEntry, String),
}

impl Job<'_> {
    fn entry(&self) -> &KernelEntry {
        match self {
            Job::Host(entry)
            | Job::Vm(entry, _)
            | Job::Failed(entry, _)
            | Job::Skipped(entry, _) => entry,
        }
    }
}

/// Runs `cases` on each of `kernels` (in that order in the results).
pub fn run(
    file: &KernelsFile,
    kernels: &[&KernelEntry],
    cases: &[Case],
    options: &MatrixOptions,
    cache: KernelCache,
    progress: &dyn Progress,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<RunResults, MatrixError> {
    let started = Timestamp::now();
    let registry = process_registry()?;
    std::fs::create_dir_all(&options.work_dir).map_err(|source| MatrixError::WorkDir {
        path: options.work_dir.clone(),
        source,
    })?;

    let (jobs, guest_tools) = resolve_all(file, kernels, cache, progress, options.absent);
    for job in &jobs {
        if let Job::Vm(entry, kernel) = job {
            vm::safe_path::check_kernel(kernel).map_err(|source| MatrixError::Refused {
                subject: format!("kernel {}", entry.name),
                source,
            })?;
        }
    }
    // KVM is probed with a kernel of the host's architecture; the others are emulated.
    let first_image = jobs.iter().find_map(|job| match job {
        Job::Vm(entry, kernel) if entry.arch.is_host() => Some(kernel.clone()),
        _ => None,
    });
    let any_vm = jobs.iter().any(|job| matches!(job, Job::Vm(..)));
    // Set up only when some kernel boots in a VM (a host run needs no vng); without one the
    // error is never shown.
    let vm_setup = match any_vm {
        false => Err("no kernel of this run boots in a VM".to_string()),
        true => match Vng::locate() {
            Ok(vng) => {
                let refused = |source| MatrixError::Refused {
                    subject: "the VMs".into(),
                    source,
                };
                vm::safe_path::check_vng(&vng).map_err(refused)?;
                let dir = vm::safe_path::safe_dir(&options.work_dir).map_err(refused)?;
                let accel = match &first_image {
                    Some(first) => {
                        let (accel, why) =
                            vm::probe_accel(&vng, first, &registry, options.accel_memo.as_deref())?;
                        on_event(Event::Note(&why));
                        accel
                    }
                    None => Accel::Tcg,
                };
                let root = minimal_root(&jobs, &vng, &dir, options, on_event);
                let foreign_roots = guest_tools
                    .into_iter()
                    .map(|(arch, tools)| {
                        let root = tools
                            .and_then(|tools| foreign_root(&tools, &vng, &dir, options, on_event));
                        (arch, root)
                    })
                    .collect();
                Ok(VmSetup {
                    vng,
                    accel,
                    root,
                    foreign_roots,
                    dir,
                })
            }
            Err(e) => Err(e.to_string()),
        },
    };

    let queue = Mutex::new(jobs.iter().enumerate());
    let done: Mutex<Vec<(usize, KernelRun)>> = Mutex::new(Vec::new());
    let workers = options.jobs.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().expect("queue lock").next();
                    let Some((index, job)) = next else { break };
                    if registry.is_cancelled() {
                        break;
                    }
                    let entry = job.entry();
                    let run = run_job(job, cases, options, &vm_setup, &registry, on_event);
                    let run = KernelRun {
                        note: entry.note.clone(),
                        // A kernel that did not run names the machine it was for.
                        arch: run
                            .arch
                            .clone()
                            .or_else(|| Some(entry.arch.uname_machine().to_string())),
                        ..run
                    };
                    on_event(Event::Finished(&run));
                    done.lock().expect("results lock").push((index, run));
                }
            });
        }
    });
    if registry.is_cancelled() {
        return Err(MatrixError::Cancelled);
    }
    let mut done = done.into_inner().expect("results lock");
    done.sort_by_key(|(index, _)| *index);
    Ok(RunResults {
        started,
        accel: vm_setup.ok().map(|setup| setup.accel),
        ..RunResults::new(done.into_iter().map(|(_, run)| run).collect())
    })
}

/// What every VM of a run shares.
struct VmSetup {
    vng: Vng,
    accel: Accel,
    /// The root kernel images boot on, unless they use the host's.
    root: Option<vm::MinimalRoot>,
    /// The roots of other architectures' guests, which cannot run the host's programs.
    foreign_roots: HashMap<Arch, Result<vm::MinimalRoot, String>>,
    /// Where the guests' directories and the root are made: the work directory when vng may
    /// see its path, else the temporary directory ([`vm::safe_path::safe_dir`]).
    dir: PathBuf,
}

impl VmSetup {
    /// How guests of `arch` run: only the host's architecture can use KVM.
    fn accel_for(&self, arch: Arch) -> Accel {
        if arch.is_host() {
            self.accel
        } else {
            Accel::Tcg
        }
    }

    /// The minimal root guests of `arch` boot on, if any; another architecture's guests
    /// have no other, so that its absence is their error.
    fn root_for(&self, arch: Arch) -> Result<Option<&vm::MinimalRoot>, String> {
        if arch.is_host() {
            return Ok(self.root.as_ref());
        }
        match self.foreign_roots.get(&arch) {
            Some(Ok(root)) => Ok(Some(root)),
            Some(Err(why)) => Err(format!("no root for {arch} guests: {why}")),
            None => Err(format!("no root for {arch} guests")),
        }
    }
}

/// Builds the minimal root when kernel images are to boot on it; a root that cannot be
/// built leaves them on the host's root, which works as well, only slower.
fn minimal_root(
    jobs: &[Job<'_>],
    vng: &Vng,
    dir: &std::path::Path,
    options: &MatrixOptions,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Option<vm::MinimalRoot> {
    let images = jobs
        .iter()
        .any(|job| matches!(job, Job::Vm(entry, KernelArg::Image { .. }) if entry.arch.is_host()));
    if options.guest_root != GuestRoot::Minimal || !images {
        return None;
    }
    let built = vm::guest_exe::guest_exe(Arch::host()?, &options.harness_exe).and_then(|exe| {
        let built = vm::MinimalRoot::build(dir, &exe, vng.search_path());
        match (built, options.shell) {
            (Ok(root), true) => root.install_shell_tools(vng.search_path()).map(|()| root),
            (built, _) => built,
        }
        .map_err(|e| crate::error_chain(&e))
    });
    match built {
        Ok(root) => Some(root),
        Err(why) => {
            on_event(Event::Note(&format!(
                "{why}; the guests boot on the host's root instead"
            )));
            None
        }
    }
}

/// The root of `tools`' architecture's guests, around that architecture's harness (built
/// now unless cargo finds it up to date).
fn foreign_root(
    tools: &GuestTools,
    vng: &Vng,
    dir: &std::path::Path,
    options: &MatrixOptions,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<vm::MinimalRoot, String> {
    let arch = tools.arch;
    vng.require_qemu(arch).map_err(|e| e.to_string())?;
    on_event(Event::Note(&format!(
        "{arch} guests are emulated (TCG); their harness is the {} build, made by cargo \
         unless up to date",
        arch.static_target()
    )));
    let exe = vm::guest_exe::guest_exe(arch, &options.harness_exe)?;
    let programs_dir = tempfile::Builder::new()
        .prefix("guest-tools-")
        .tempdir_in(dir)
        .map_err(|e| format!("cannot create a directory in {}: {e}", dir.display()))?;
    let programs = tools
        .extract(programs_dir.path())
        .map_err(|e| crate::error_chain(&e))?;
    vm::MinimalRoot::build_foreign(dir, &exe, &programs.busybox, &programs.bash)
        .map_err(|e| crate::error_chain(&e))
}

/// The process's VM registry, created with its Ctrl-C handler on first use: the handler
/// can be installed only once, and a bisection runs the matrix once per kernel it visits.
fn process_registry() -> Result<VmRegistry, MatrixError> {
    static REGISTRY: Mutex<Option<VmRegistry>> = Mutex::new(None);
    let mut slot = REGISTRY.lock().expect("registry lock");
    if let Some(registry) = slot.as_ref() {
        return Ok(registry.clone());
    }
    let registry = VmRegistry::new();
    registry.cancel_on_ctrl_c()?;
    Ok(slot.insert(registry).clone())
}

/// Fetches (or finds in the cache) every kernel, one after the other: downloads are fast
/// and one progress bar at a time stays readable.
fn resolve_all<'a>(
    file: &'a KernelsFile,
    kernels: &[&'a KernelEntry],
    cache: KernelCache,
    progress: &dyn Progress,
    absent: AbsentKernels,
) -> (Vec<Job<'a>>, HashMap<Arch, Result<GuestTools, String>>) {
    let mut resolver = Resolver::new(file, cache).with_progress(progress);
    let jobs: Vec<Job<'a>> = kernels
        .iter()
        .map(|entry| match resolver.resolve(entry) {
            Ok(ResolvedKernel::Host { .. }) => Job::Host(entry),
            Ok(ResolvedKernel::Bootable(BootableKernel {
                vmlinuz,
                release,
                modules_dir,
                ..
            })) => Job::Vm(
                entry,
                KernelArg::Image {
                    vmlinuz,
                    release: Some(release),
                    modules: modules_dir,
                },
            ),
            Ok(ResolvedKernel::Mainline { tag, .. }) => Job::Vm(entry, KernelArg::Mainline { tag }),
            Ok(ResolvedKernel::Absent { vmlinuz, why, .. }) => {
                let reason = ResolvedKernel::absent_reason(&vmlinuz, &why);
                match absent {
                    AbsentKernels::Skip => Job::Skipped(entry, reason),
                    AbsentKernels::Fail => Job::Failed(
                        entry,
                        format!(
                            "{reason}; it was asked for by name, and `optional = true` excuses \
                             an absent kernel only from a run of the whole list"
                        ),
                    ),
                }
            }
            Ok(ResolvedKernel::Tree {
                path, build: true, ..
            }) => Job::Vm(entry, KernelArg::Tree { path }),
            Ok(ResolvedKernel::Tree { path, .. }) if vm::tree_is_built(&path) => {
                Job::Vm(entry, KernelArg::Tree { path })
            }
            Ok(ResolvedKernel::Tree { path, .. }) => Job::Failed(
                entry,
                format!(
                    "the source tree {} is not built (no arch/x86/boot/bzImage and \
                     include/config/kernel.release): build it first, e.g. `vng --build` in it",
                    path.display()
                ),
            ),
            Err(e) => Job::Failed(entry, crate::error_chain(&e)),
        })
        .collect();
    // Guests of another architecture run that architecture's busybox and bash.
    let mut guest_tools = HashMap::new();
    for job in &jobs {
        if let Job::Vm(entry, _) = job
            && !entry.arch.is_host()
            && !guest_tools.contains_key(&entry.arch)
        {
            let tools = resolver
                .guest_tools(&entry.name, entry.arch)
                .map_err(|e| crate::error_chain(&e));
            guest_tools.insert(entry.arch, tools);
        }
    }
    (jobs, guest_tools)
}

fn run_job(
    job: &Job<'_>,
    cases: &[Case],
    options: &MatrixOptions,
    vm_setup: &Result<VmSetup, String>,
    registry: &VmRegistry,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> KernelRun {
    let started = Instant::now();
    let (entry, outcome) = match job {
        Job::Failed(entry, message) => (*entry, Err(KernelError::Unavailable(message.clone()))),
        Job::Skipped(entry, reason) => {
            return KernelRun::without_cases(
                &entry.name,
                KernelStatus::Skipped {
                    reason: reason.clone(),
                },
            );
        }
        Job::Host(entry) => {
            on_event(Event::Started {
                kernel: &entry.name,
                how: "on the running kernel".into(),
            });
            let run = exec::run_cases(&entry.name, cases, |_| {});
            (*entry, run.map_err(KernelError::from))
        }
        Job::Vm(entry, kernel) => match vm_setup {
            Ok(setup) => {
                let run =
                    build_if_asked(entry, kernel, &setup.vng, options, on_event).and_then(|()| {
                        on_event(Event::Started {
                            kernel: &entry.name,
                            how: format!("booting {kernel} under {}", setup.accel_for(entry.arch)),
                        });
                        run_in_vm(entry, kernel, setup, cases, options, registry, on_event)
                    });
                (*entry, run)
            }
            Err(message) => (*entry, Err(KernelError::Unavailable(message.clone()))),
        },
    };
    match outcome {
        Ok(mut run) => {
            run.kernel = entry.name.clone();
            run
        }
        Err(error) => KernelRun {
            duration_ms: started.elapsed().as_millis() as u64,
            ..KernelRun::without_cases(
                &entry.name,
                KernelStatus::Error {
                    message: crate::error_chain(&error),
                    log_tail: error.log_tail(),
                },
            )
        },
    }
}

/// The project's kernel config fragment: what the cases need on top of vng's minimal config.
const KERNEL_CONFIG: &str = include_str!("../../ci/kernel.config");

/// Builds a `tree =` kernel when its sources or the fragment changed since its last build.
fn build_if_asked(
    entry: &KernelEntry,
    arg: &KernelArg,
    vng: &Vng,
    options: &MatrixOptions,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<(), KernelError> {
    let (KernelArg::Tree { path }, crate::kernels::KernelSource::Tree { build: true, .. }) =
        (arg, &entry.source)
    else {
        return Ok(());
    };
    let dir = options.work_dir.join(format!("build-{}", entry.name));
    let fragment = dir.join("kernel.config");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&fragment, KERNEL_CONFIG))
        .map_err(|source| KernelError::Write {
            path: fragment.clone(),
            source,
        })?;
    on_event(Event::Started {
        kernel: &entry.name,
        how: format!(
            "building {} if its sources changed (vng --build)",
            path.display()
        ),
    });
    let built = crate::kernels::build::ensure_built(path, &fragment, vng, &dir.join("build.log"))
        .map_err(|source| KernelError::Build {
        tree: path.clone(),
        source,
    })?;
    if let Some(took) = built.built_now {
        on_event(Event::Note(&format!(
            "{}: built {} in {}",
            entry.name,
            built.release,
            humantime::format_duration(Duration::from_secs(took.as_secs()))
        )));
    }
    Ok(())
}

/// Boots `arg` once and runs every case in it.
fn run_in_vm(
    entry: &KernelEntry,
    arg: &KernelArg,
    setup: &VmSetup,
    cases: &[Case],
    options: &MatrixOptions,
    registry: &VmRegistry,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<KernelRun, KernelError> {
    let started = Instant::now();
    let shared = tempfile::Builder::new()
        .prefix(&format!("guest-{}-", file_safe(&entry.name)))
        .tempdir_in(&setup.dir)
        .map_err(KernelError::GuestDir)?;
    let result_file = shared.path().join("results.json");
    let plan_file = shared.path().join("plan.json");
    Plan {
        cases: cases.to_vec(),
    }
    .write(&plan_file)
    .map_err(|source| KernelError::Write {
        path: plan_file.clone(),
        source,
    })?;

    // A kernel image boots on the minimal root, where the shared directory and the modules
    // are mounted at fixed paths; anything else on the host's, where paths are the host's.
    let image_root = setup
        .root_for(entry.arch)
        .map_err(KernelError::Unavailable)?;
    let (root, exe, work, shares) = match (image_root, arg) {
        (
            Some(root),
            KernelArg::Image {
                release, modules, ..
            },
        ) => {
            let work = PathBuf::from(vm::root::WORK_IN_GUEST);
            let mut shares = vec![vm::Share {
                guest: work.clone(),
                host: shared.path().to_path_buf(),
                writable: true,
            }];
            if let (Some(modules), Some(release)) = (modules, release) {
                shares.push(root.modules_share(release, modules)?);
            }
            (
                vm::GuestRootfs::Dir(root.path().to_path_buf()),
                PathBuf::from(vm::root::HARNESS_IN_GUEST),
                work,
                shares,
            )
        }
        _ => (
            vm::GuestRootfs::Host,
            vm::guest_exe::guest_exe(entry.arch, &options.harness_exe)
                .map_err(KernelError::Unavailable)?,
            shared.path().to_path_buf(),
            vec![vm::Share::writable_in_place(shared.path().to_path_buf())],
        ),
    };
    let mut command = vec![
        exe.display().to_string(),
        "--kernel".into(),
        entry.name.clone(),
        "--plan".into(),
        work.join("plan.json").display().to_string(),
        "--out".into(),
        work.join("results.json").display().to_string(),
    ];
    if options.shell {
        command.push("--hold".into());
    }

    let mut spec = VmSpec::new(arg.clone(), setup.accel_for(entry.arch), command);
    spec.arch = entry.arch;
    spec.root = root;
    spec.shares = shares;
    spec.retry_crash_once = true;
    // Kept after the run, beside the guests' directories, for whoever reads a boot closely.
    let console_log = options
        .work_dir
        .join(format!("{}.console.log", file_safe(&entry.name)));
    // A harness killed outright leaves nothing of the run: the guard of each VM removes
    // its directory, its console and the root the VMs share.
    spec.remove_if_orphaned = [shared.path(), console_log.as_path()]
        .into_iter()
        .chain(image_root.map(vm::MinimalRoot::path))
        .map(PathBuf::from)
        .collect();
    spec.console_log = Some(console_log);
    // The command line wins over kernels.toml, which wins over the defaults.
    if let Some(timeout) = options.timeout.or(entry.timeout) {
        spec.timeout = timeout;
    }
    if let Some(cpus) = options.cpus.or(entry.cpus) {
        spec.cpus = cpus;
    }
    spec.memory = options
        .memory
        .clone()
        .or_else(|| entry.memory.map(|m| m.as_qemu_arg()));
    if let Some(cmdline) = &entry.cmdline {
        spec.append = cmdline.split_whitespace().map(String::from).collect();
    }

    if options.shell {
        let exit = vm::run_interactive(&spec, &setup.vng, registry)?;
        let results =
            crate::results::read_json(&result_file).map_err(|source| KernelError::NoResults {
                exit,
                source,
                console_tail: String::new(),
            })?;
        return results.kernels.into_iter().next().ok_or(KernelError::NoRun);
    }
    let host_setup = started.elapsed();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let on_line = |line: &str| {
        let kernel = entry.name.as_str();
        if let Some(landmark) = vm::Landmark::of(line) {
            on_event(Event::Reached { kernel, landmark });
        } else if let Some((label, case)) = case_done(line) {
            let done = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            on_event(Event::CaseDone {
                kernel,
                case,
                label,
                done,
                of: cases.len(),
            });
        }
    };
    let outcome = vm::run_watched(
        &spec,
        &setup.vng,
        registry,
        options.nine_p_memo.as_ref(),
        &on_line,
    )?;
    if let Some(failure) = outcome.failure.clone() {
        return Err(KernelError::Boot(failure));
    }
    let results =
        crate::results::read_json(&result_file).map_err(|source| KernelError::NoResults {
            exit: outcome.guest_exit_code,
            source,
            console_tail: vm::console::tail(&outcome.console, 30),
        })?;
    let mut run = results
        .kernels
        .into_iter()
        .next()
        .ok_or(KernelError::NoRun)?;
    // Expectations were chosen by what the guest's kernel said it is; say so when that is
    // not the kernel kernels.toml pointed at.
    if let (Some(claimed), Some(actual)) = (arg.version(), run.version)
        && !same_series(claimed, actual)
    {
        run.status = KernelStatus::Error {
            message: format!(
                "booted {arg} expecting {claimed}, but the guest reports {actual} ({})",
                run.release.as_deref().unwrap_or("?")
            ),
            log_tail: None,
        };
    }
    if let Some(machine) = &run.arch
        && Arch::from_uname_machine(machine) != Some(entry.arch)
    {
        run.status = KernelStatus::Error {
            message: format!(
                "booted {arg} as an {} kernel, but the guest reports the machine {machine}",
                entry.arch
            ),
            log_tail: None,
        };
    }
    // Every attempt counts (a crash retried, a boot over virtiofs redone over 9p).
    run.duration_ms = started.elapsed().as_millis() as u64;
    run.phases = outcome.phases(host_setup);
    Ok(run)
}

/// A kernel's name as part of a file name.
fn file_safe(name: &str) -> String {
    name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_")
}

fn same_series(a: KernelVersion, b: KernelVersion) -> bool {
    a.major == b.major && a.minor == b.minor
}

/// The default number of VMs at once: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_call_cancelled_by_ctrl_c_is_the_runs_interruption() {
        assert!(matches!(
            MatrixError::from(vm::VmError::Cancelled),
            MatrixError::Cancelled
        ));
        assert!(matches!(
            MatrixError::from(vm::VmError::EmptyCommand),
            MatrixError::Vm(vm::VmError::EmptyCommand)
        ));
    }
}
