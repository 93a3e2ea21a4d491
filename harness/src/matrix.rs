//! Runs the case suite on every selected kernel of `kernels.toml`.
//!
//! Each kernel is resolved (Debian kernels fetched and verified, or taken from the cache),
//! booted once in a virtme-ng VM that runs this same binary's guest executor over all the
//! selected cases, and its results are read back from a directory the guest may write.
//! Whatever goes wrong with one kernel (fetch, boot, panic, timeout) becomes that kernel's
//! error row; the others still run.

use std::{
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    case::Case,
    exec,
    kernels::{
        BootableKernel, KernelCache, KernelEntry, KernelsFile, Progress, ResolvedKernel, Resolver,
    },
    plan::Plan,
    results::{KernelRun, KernelStatus, RunResults, Timestamp},
    version::KernelVersion,
    vm::{self, Accel, KernelArg, VmRegistry, VmSpec, Vng},
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
    /// The binary the guests run (this one).
    pub harness_exe: PathBuf,
    /// Where the accelerator probe's verdict is remembered between runs (`None`: probe).
    pub accel_memo: Option<PathBuf>,
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
    Finished(&'a KernelRun),
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

/// A kernel ready to run, or why it cannot.
enum Job<'a> {
    Host(&'a KernelEntry),
    Vm(&'a KernelEntry, KernelArg),
    Failed(&'a KernelEntry, String),
    Skipped(&'a KernelEntry, String),
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

    let jobs = resolve_all(file, kernels, cache, progress);
    let first_image = jobs.iter().find_map(|job| match job {
        Job::Vm(_, arg) => Some(arg.clone()),
        _ => None,
    });
    let vm_setup = match first_image {
        None => None,
        Some(first) => match Vng::locate() {
            Ok(vng) => {
                let (accel, why) =
                    vm::probe_accel(&vng, &first, &registry, options.accel_memo.as_deref())?;
                on_event(Event::Note(&why));
                Some(Ok((vng, accel)))
            }
            Err(e) => Some(Err(e.to_string())),
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
                    let run = run_job(job, cases, options, vm_setup.as_ref(), &registry, on_event);
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
        accel: match vm_setup {
            Some(Ok((_, accel))) => Some(accel),
            _ => None,
        },
        ..RunResults::new(done.into_iter().map(|(_, run)| run).collect())
    })
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
) -> Vec<Job<'a>> {
    let mut resolver = Resolver::new(file, cache).with_progress(progress);
    kernels
        .iter()
        .map(|entry| match resolver.resolve(entry) {
            Ok(ResolvedKernel::Host { .. }) => Job::Host(entry),
            Ok(ResolvedKernel::Bootable(BootableKernel {
                vmlinuz, release, ..
            })) => Job::Vm(
                entry,
                KernelArg::Image {
                    vmlinuz,
                    release: Some(release),
                },
            ),
            Ok(ResolvedKernel::Mainline { tag, .. }) => Job::Vm(entry, KernelArg::Mainline { tag }),
            Ok(ResolvedKernel::Absent { vmlinuz, why, .. }) => {
                Job::Skipped(entry, ResolvedKernel::absent_reason(&vmlinuz, &why))
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
        .collect()
}

fn run_job(
    job: &Job<'_>,
    cases: &[Case],
    options: &MatrixOptions,
    vm_setup: Option<&Result<(Vng, Accel), String>>,
    registry: &VmRegistry,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> KernelRun {
    let started = Instant::now();
    let (entry, outcome) = match job {
        Job::Failed(entry, message) => (*entry, Err((message.clone(), None))),
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
            (*entry, run.map_err(|e| (e.to_string(), None)))
        }
        Job::Vm(entry, arg) => match vm_setup {
            Some(Ok((vng, accel))) => {
                if let Err(message) = build_if_asked(entry, arg, vng, options, on_event) {
                    return KernelRun {
                        duration_ms: started.elapsed().as_millis() as u64,
                        ..KernelRun::without_cases(
                            &entry.name,
                            KernelStatus::Error {
                                message,
                                log_tail: None,
                            },
                        )
                    };
                }
                on_event(Event::Started {
                    kernel: &entry.name,
                    how: format!("booting {arg} under {accel}"),
                });
                (
                    *entry,
                    run_in_vm(entry, arg, *accel, vng, cases, options, registry),
                )
            }
            Some(Err(message)) => (*entry, Err((message.clone(), None))),
            None => unreachable!("a VM job implies the VM set-up was attempted"),
        },
    };
    match outcome {
        Ok(mut run) => {
            run.kernel = entry.name.clone();
            run
        }
        Err((message, log_tail)) => KernelRun {
            duration_ms: started.elapsed().as_millis() as u64,
            ..KernelRun::without_cases(&entry.name, KernelStatus::Error { message, log_tail })
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
) -> Result<(), String> {
    let (KernelArg::Tree { path }, crate::kernels::KernelSource::Tree { build: true, .. }) =
        (arg, &entry.source)
    else {
        return Ok(());
    };
    let dir = options.work_dir.join(format!("build-{}", entry.name));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let fragment = dir.join("kernel.config");
    std::fs::write(&fragment, KERNEL_CONFIG)
        .map_err(|e| format!("cannot write {}: {e}", fragment.display()))?;
    on_event(Event::Started {
        kernel: &entry.name,
        how: format!(
            "building {} if its sources changed (vng --build)",
            path.display()
        ),
    });
    let built = crate::kernels::build::ensure_built(path, &fragment, vng, &dir.join("build.log"))
        .map_err(|e| crate::error_chain(&e))?;
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

/// Boots `arg` once and runs every case in it. `Err` carries a message and the console
/// lines that explain it.
fn run_in_vm(
    entry: &KernelEntry,
    arg: &KernelArg,
    accel: Accel,
    vng: &Vng,
    cases: &[Case],
    options: &MatrixOptions,
    registry: &VmRegistry,
) -> Result<KernelRun, (String, Option<String>)> {
    let shared = tempfile::Builder::new()
        .prefix(&format!(
            "guest-{}-",
            entry
                .name
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ))
        .tempdir_in(&options.work_dir)
        .map_err(|e| {
            (
                format!("cannot create the guest's result directory: {e}"),
                None,
            )
        })?;
    let result_file = shared.path().join("results.json");
    let plan_file = shared.path().join("plan.json");
    Plan {
        cases: cases.to_vec(),
    }
    .write(&plan_file)
    .map_err(|e| (format!("cannot write {}: {e}", plan_file.display()), None))?;
    let command = vec![
        options.harness_exe.display().to_string(),
        "guest".into(),
        "--kernel".into(),
        entry.name.clone(),
        "--plan".into(),
        plan_file.display().to_string(),
        "--out".into(),
        result_file.display().to_string(),
    ];

    let mut spec = VmSpec::new(arg.clone(), accel, command);
    spec.rwdirs = vec![shared.path().to_path_buf()];
    spec.remove_if_orphaned = vec![shared.path().to_path_buf()];
    spec.retry_crash_once = true;
    spec.console_log = Some(shared.path().join("console.log"));
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

    let outcome = vm::run(&spec, vng, registry).map_err(|e| (e.to_string(), None))?;
    if let Some(failure) = &outcome.failure {
        return Err((failure.summary(), Some(failure.detail().to_string())));
    }
    let text = std::fs::read_to_string(&result_file).map_err(|e| {
        (
            format!(
                "the guest executor exited {:?} without results ({e})",
                outcome.guest_exit_code
            ),
            Some(vm::console::tail(&outcome.console, 30)),
        )
    })?;
    let results: RunResults = serde_json::from_str(&text)
        .map_err(|e| (format!("the guest's results do not parse: {e}"), None))?;
    let mut run = results
        .kernels
        .into_iter()
        .next()
        .ok_or_else(|| ("the guest wrote no kernel run".to_string(), None))?;
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
    run.duration_ms = outcome.duration.as_millis() as u64;
    Ok(run)
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
