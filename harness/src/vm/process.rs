//! Running vng: one process group per VM, a wall-clock limit, the console captured as it
//! comes, and a registry that kills every running VM at once (Ctrl-C).
//!
//! vng forks QEMU and starts virtiofsd through a shell, so neither is vng's direct child
//! for long; all of them stay in the process group vng starts in, which is the only
//! handle that reaches them all. vng sees the VM's files through a
//! [`Staging`] directory, which is also its private TMPDIR for its own temporary files
//! (sockets, pid and exit-code files) and is removed after the run, since a killed vng cannot
//! clean up after itself. Should this process die without stopping its VMs (SIGKILL, a
//! crash), a guard in each group kills the group: see [`OrphanGuard`].

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{self, PipeReader, Read, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc},
    thread,
    time::{Duration, Instant},
};

use nix::{
    errno::Errno,
    sys::{
        signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, killpg, sigaction},
        wait::{Id, WaitPidFlag, waitid},
    },
    unistd::Pid,
};

use super::{
    VmError,
    command::vng_args,
    console::{self, Landmark, MarkerKind, boot_progress},
    memo::NinePMemo,
    outcome::{Ending, VmOutcome, crashed, judge},
    safe_path::Staging,
    spec::{KernelArg, VmSpec},
    tools::Vng,
};

/// How long killed processes get to disappear before we call them strays. SIGKILL only
/// fails to end a process stuck in the kernel (e.g. an unanswered FUSE request).
const KILL_GRACE: Duration = Duration::from_secs(10);
/// How long to wait for the output pipes to close once the VM's processes are gone.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How long a guest that panicked gets to power off (vng boots with `panic=-1`, so it
/// reboots at once and QEMU exits) before it is stopped. A panic before that parameter
/// applies, or with a `panic=0` in the kernel's extra command line, halts the guest, which
/// would otherwise wait for the whole timeout.
const PANIC_GRACE: Duration = Duration::from_secs(10);
/// How often the console is checked for a panic, and its new lines passed on, while vng
/// runs.
const CONSOLE_POLL: Duration = Duration::from_millis(200);

/// Boots `spec` with vng and waits for it, within `spec.timeout`.
///
/// `Err` means the run could not be attempted or was cancelled; everything that went wrong
/// inside the VM (timeout, crash, panic, boot or download failure) is in
/// [`VmOutcome::failure`]. Whatever happens, no process of the VM survives this call.
/// Blocks the calling thread; run several VMs from several threads.
pub fn run(spec: &VmSpec, vng: &Vng, registry: &VmRegistry) -> Result<VmOutcome, VmError> {
    run_watched(spec, vng, registry, None, &|_| {})
}

/// [`run`], with the memo of the kernels that need 9p (read to boot them over 9p at once,
/// written when one turns out to), handing every line of the console and of the guest's
/// stdout to `on_line` as it arrives (e.g. to show which case a guest is on).
pub fn run_watched(
    spec: &VmSpec,
    vng: &Vng,
    registry: &VmRegistry,
    nine_p_memo: Option<&NinePMemo>,
    on_line: &(dyn Fn(&str) + Sync),
) -> Result<VmOutcome, VmError> {
    let remembered_9p = nine_p_memo.is_some_and(|memo| memo.needs_9p(&spec.kernel));
    let over_9p = VmSpec {
        force_9p: true,
        ..spec.clone()
    };
    if remembered_9p {
        return run_with_crash_retry(&over_9p, vng, registry, on_line);
    }
    let outcome = run_with_crash_retry(spec, vng, registry, on_line)?;
    // Whether virtiofs can serve a guest's root depends on the kernel (virtiofs itself, and
    // mounting a tag as root without an initramfs): try it, and fall back to 9p when the
    // guest found no root, which costs only the boot up to the root mount.
    if spec.force_9p || !boot_progress(&outcome.console).root_not_mounted {
        return Ok(outcome);
    }
    let mut outcome = run_with_crash_retry(&over_9p, vng, registry, on_line)?;
    outcome.fell_back_to_9p = true;
    if let Some(memo) = nine_p_memo
        && boot_progress(&outcome.console).command_started
    {
        memo.remember(&spec.kernel);
    }
    Ok(outcome)
}

/// Boots `spec` with the terminal as the guest's console, stdin and stdout, for a person
/// at it (`harness shell`): no wall-clock limit, no console captured, the VM's process
/// group in the terminal's foreground until vng exits. Returns vng's exit code (the guest
/// command's), and, as [`run`], leaves no process of the VM behind.
pub fn run_interactive(
    spec: &VmSpec,
    vng: &Vng,
    registry: &VmRegistry,
) -> Result<Option<i32>, VmError> {
    preflight(spec, vng)?;
    let staging = Staging::new()?;
    let args = vng_args(&staging.stage(spec)?)?;
    let mut command = Command::new(vng.program());
    command
        .args(&args)
        .envs(staging.environment(vng)?)
        .current_dir(staging.path())
        .process_group(0);
    let orphaned_dirs: Vec<&Path> = std::iter::once(staging.path())
        .chain(spec.remove_if_orphaned.iter().map(PathBuf::as_path))
        .collect();
    let (child, group) = registry.spawn(&mut command, vng, &orphaned_dirs)?;
    drop(command);
    let foreground = Foreground::give_terminal_to(group.pgid);
    let pid = Pid::from_raw(child_pid(&child));
    let exited = loop {
        // Not reaped before the group is killed, as in `attempt`.
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(Errno::EINTR) => continue,
            other => break other,
        }
    };
    drop(foreground);
    exited.map_err(|errno| VmError::Wait {
        source: errno.into(),
    })?;
    group.terminate()?;
    let mut child = child;
    let status = child.wait().map_err(|source| VmError::Wait { source })?;
    if registry.is_cancelled() {
        return Err(VmError::Cancelled);
    }
    Ok(status.code())
}

/// The terminal on stdin handed to a process group as its foreground, so that the guest's
/// console reads the keyboard (a background group reading it would be stopped); given
/// back to this process's group when dropped. Nothing happens without a terminal.
struct Foreground {
    ours: Option<Pid>,
}

impl Foreground {
    fn give_terminal_to(group: Pid) -> Foreground {
        let stdin = io::stdin();
        let ours = nix::unistd::tcgetpgrp(&stdin).ok();
        if ours.is_some() {
            let _ = with_sigttou_ignored(|| nix::unistd::tcsetpgrp(&stdin, group));
        }
        Foreground { ours }
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Some(ours) = self.ours {
            let _ = with_sigttou_ignored(|| nix::unistd::tcsetpgrp(io::stdin(), ours));
        }
    }
}

/// Runs `f` with SIGTTOU ignored: a process outside the terminal's foreground group that
/// changes the foreground is otherwise stopped by it, as shells know.
fn with_sigttou_ignored<T>(f: impl FnOnce() -> T) -> T {
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN runs no code in signal context; the previous action is restored.
    let previous = unsafe { sigaction(Signal::SIGTTOU, &ignore) };
    let result = f();
    if let Ok(previous) = previous {
        // SAFETY: puts back the action that was in place.
        let _ = unsafe { sigaction(Signal::SIGTTOU, &previous) };
    }
    result
}

fn run_with_crash_retry(
    spec: &VmSpec,
    vng: &Vng,
    registry: &VmRegistry,
    on_line: &(dyn Fn(&str) + Sync),
) -> Result<VmOutcome, VmError> {
    let first = attempt(spec, vng, registry, on_line)?;
    if !(spec.retry_crash_once && first.crashed) {
        return Ok(first.outcome);
    }
    let mut second = attempt(spec, vng, registry, on_line)?.outcome;
    second.retried_after = first.outcome.failure;
    Ok(second)
}

struct Attempt {
    outcome: VmOutcome,
    crashed: bool,
}

fn attempt(
    spec: &VmSpec,
    vng: &Vng,
    registry: &VmRegistry,
    on_line: &(dyn Fn(&str) + Sync),
) -> Result<Attempt, VmError> {
    preflight(spec, vng)?;
    let staging = Staging::new()?;
    let args = vng_args(&staging.stage(spec)?)?;
    let console_file = match &spec.console_log {
        Some(path) => Some(File::create(path).map_err(|source| VmError::ConsoleLog {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let (stdout_reader, stdout_writer) = io::pipe().map_err(|source| VmError::Pipe { source })?;
    let (stderr_reader, stderr_writer) = io::pipe().map_err(|source| VmError::Pipe { source })?;

    // QEMU opens /proc/self/fd/1 and /proc/self/fd/2 by path for the guest's output and the
    // console: pipes survive that, whereas regular files would be reopened and truncated.
    let mut command = Command::new(vng.program());
    command
        .args(&args)
        .envs(staging.environment(vng)?)
        // virtme-run tells the guest to start where vng was started.
        .current_dir(staging.path())
        .stdin(Stdio::null())
        .stdout(stdout_writer)
        .stderr(stderr_writer)
        .process_group(0);
    let started = Instant::now();
    let orphaned_dirs: Vec<&Path> = std::iter::once(staging.path())
        .chain(spec.remove_if_orphaned.iter().map(PathBuf::as_path))
        .collect();
    let (mut child, group) = registry.spawn(&mut command, vng, &orphaned_dirs)?;
    // The command holds our copies of the pipes' write ends; the readers see EOF only once
    // they are closed.
    drop(command);
    // Lines reach `on_line` and the landmarks from this thread, stamped when they arrived.
    let (line_sender, lines) = mpsc::channel();
    let guest_stdout = Capture::start(stdout_reader, None, line_sender.clone());
    let console = Capture::start(stderr_reader, console_file, line_sender);
    let mut landmarks: Vec<(Landmark, Duration)> = Vec::new();
    let mut take_lines = || {
        for (arrived, line) in lines.try_iter() {
            if let Some(landmark) = Landmark::of(&line)
                && !landmarks.iter().any(|(seen, _)| *seen == landmark)
            {
                landmarks.push((landmark, arrived - started));
            }
            on_line(&line);
        }
    };

    let ending = wait_for_exit(&child, spec.timeout, &group, &console, &mut take_lines)?;
    group.terminate()?;
    let status = child.wait().map_err(|source| VmError::Wait { source })?;
    let ending = match ending {
        Ending::Exited(_) => Ending::Exited(status.code()),
        timed_out => timed_out,
    };
    let duration = started.elapsed();
    let console = console.finish(spec.console_log.as_ref())?;
    let guest_stdout = guest_stdout.finish(None)?;
    take_lines();
    if registry.is_cancelled() {
        return Err(VmError::Cancelled);
    }

    let verdict = judge(&spec.kernel, ending, &console);
    let crashed = crashed(ending, &verdict);
    Ok(Attempt {
        outcome: VmOutcome {
            guest_exit_code: verdict.guest_exit_code,
            failure: verdict.failure,
            findings: verdict.findings,
            console,
            guest_stdout,
            console_log: spec.console_log.clone(),
            vng_status: status.code(),
            duration,
            landmarks,
            fell_back_to_9p: false,
            retried_after: None,
        },
        crashed,
    })
}

fn preflight(spec: &VmSpec, vng: &Vng) -> Result<(), VmError> {
    match &spec.kernel {
        KernelArg::Image { vmlinuz, .. } if !vmlinuz.is_file() => {
            return Err(VmError::KernelImageMissing {
                path: vmlinuz.clone(),
            });
        }
        KernelArg::Tree { path } if !super::spec::tree_is_built(path) => {
            return Err(VmError::KernelImageMissing {
                path: path.join("arch/x86/boot/bzImage"),
            });
        }
        _ => {}
    }
    if let Some(share) = spec.shares.iter().find(|share| !share.host.is_dir()) {
        return Err(VmError::ShareMissing {
            path: share.host.clone(),
        });
    }
    if !spec.force_9p {
        vng.require_virtiofsd()?;
    }
    Ok(())
}

/// Waits for vng to exit without reaping it, so that its pid (our process group's id)
/// cannot be reused before the group is killed; kills the group at the deadline, or
/// [`PANIC_GRACE`] after a kernel panic on the console.
fn wait_for_exit(
    child: &Child,
    timeout: Duration,
    group: &RunningGroup,
    console: &Capture,
    on_poll: &mut dyn FnMut(),
) -> Result<Ending, VmError> {
    let pid = Pid::from_raw(child_pid(child));
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let result = loop {
            match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Err(Errno::EINTR) => continue,
                other => break other.map(|_| ()),
            }
        };
        // The receiver is gone only if the run already failed; nothing to report then.
        let _ = sender.send(result);
    });
    let started = Instant::now();
    let mut panicked_at: Option<Instant> = None;
    let outcome = loop {
        let deadline = match panicked_at {
            Some(at) => (at + PANIC_GRACE).min(started + timeout),
            None => started + timeout,
        };
        let now = Instant::now();
        if now >= deadline {
            break None;
        }
        let waited = receiver.recv_timeout(CONSOLE_POLL.min(deadline - now));
        on_poll();
        match waited {
            Ok(result) => break Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if panicked_at.is_none() && console.shows_panic() {
                    panicked_at = Some(Instant::now());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(VmError::Wait {
                    source: io::Error::other("the thread waiting for vng ended without a word"),
                });
            }
        }
    };
    let ending = match outcome {
        Some(result) => {
            result.map_err(|errno| VmError::Wait {
                source: errno.into(),
            })?;
            // The real status is read when the child is reaped.
            Ending::Exited(None)
        }
        None => {
            group.kill();
            // vng dies from the SIGKILL; its exit ends the waiting thread.
            receiver
                .recv()
                .map_err(|_| VmError::Wait {
                    source: io::Error::other("the thread waiting for vng ended without a word"),
                })?
                .map_err(|errno| VmError::Wait {
                    source: errno.into(),
                })?;
            match panicked_at {
                Some(_) if started.elapsed() < timeout => Ending::HaltedAfterPanic,
                _ => Ending::TimedOut(timeout),
            }
        }
    };
    Ok(ending)
}

fn child_pid(child: &Child) -> i32 {
    // Pids fit in i32 on Linux (pid_max is at most 2^22).
    i32::try_from(child.id()).unwrap_or(i32::MAX)
}

/// Keeps track of running VMs so that all of them can be stopped at once.
///
/// Create one per run of the orchestrator and share it (it is cheap to clone). After
/// [`cancel_all`](Self::cancel_all), running VMs are killed, their [`run`] calls return
/// [`VmError::Cancelled`], and new runs are refused.
#[derive(Debug, Clone, Default)]
pub struct VmRegistry {
    state: Arc<Mutex<RegistryState>>,
}

#[derive(Debug, Default)]
struct RegistryState {
    cancelled: bool,
    next_id: u64,
    /// Process group of each running VM.
    groups: BTreeMap<u64, Pid>,
}

/// A live process of a running VM (vng, QEMU, virtiofsd, the shell vng starts them with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmProcess {
    pub pid: i32,
    pub process_group: i32,
    /// The kernel's short name for it (`qemu-system-x86`, `virtiofsd`, `vng`…).
    pub name: String,
}

impl VmRegistry {
    pub fn new() -> VmRegistry {
        VmRegistry::default()
    }

    /// Kills every running VM and refuses new ones.
    pub fn cancel_all(&self) {
        let mut state = self.lock();
        state.cancelled = true;
        for group in state.groups.values() {
            kill_group(*group);
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.lock().cancelled
    }

    /// Makes Ctrl-C (SIGINT; SIGTERM and SIGHUP too) call [`cancel_all`](Self::cancel_all)
    /// instead of ending the process, so the orchestrator can stop cleanly: its `run` calls
    /// return [`VmError::Cancelled`] and it should exit without writing a partial report.
    /// A signal that was ignored when the process started (SIGHUP under `nohup`, SIGINT in
    /// a shell's background job) stays ignored, as Unix programs do. A process has one
    /// such handler; a second call fails.
    pub fn cancel_on_ctrl_c(&self) -> Result<(), VmError> {
        let ignored: Vec<Signal> = HANDLED_SIGNALS
            .into_iter()
            .filter(|signal| is_ignored(*signal))
            .collect();
        let registry = self.clone();
        ctrlc::set_handler(move || registry.cancel_all())
            .map_err(|source| VmError::InterruptHandler { source })?;
        for signal in ignored {
            // SAFETY: SIG_IGN runs no code in signal context.
            unsafe {
                sigaction(
                    signal,
                    &SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty()),
                )
            }
            .map_err(|errno| VmError::InterruptHandler {
                source: ctrlc::Error::System(errno.into()),
            })?;
        }
        Ok(())
    }

    /// Every live process of every running VM, e.g. to say what Ctrl-C is stopping.
    pub fn running_processes(&self) -> Vec<VmProcess> {
        let groups: Vec<Pid> = self.lock().groups.values().copied().collect();
        groups.into_iter().flat_map(live_members).collect()
    }

    /// Spawns vng in its own process group and registers the group, atomically with respect
    /// to [`cancel_all`](Self::cancel_all). `orphaned_dirs` (vng's TMPDIR and the caller's
    /// directories for this VM) are what the orphan guard removes if this process dies.
    fn spawn(
        &self,
        command: &mut Command,
        vng: &Vng,
        orphaned_dirs: &[&Path],
    ) -> Result<(Child, RunningGroup), VmError> {
        let mut state = self.lock();
        if state.cancelled {
            return Err(VmError::Cancelled);
        }
        let child = command.spawn().map_err(|source| VmError::Spawn {
            program: vng.program().to_path_buf(),
            source,
        })?;
        let id = state.next_id;
        state.next_id += 1;
        // With process_group(0) the group's id is vng's pid.
        let pgid = Pid::from_raw(child_pid(&child));
        state.groups.insert(id, pgid);
        let mut group = RunningGroup {
            registry: self.clone(),
            id,
            pgid,
            terminated: false,
            orphan_guard: None,
        };
        // vng is not reaped before the group is terminated, so the group exists here. On
        // failure, dropping the group kills vng.
        let guard = OrphanGuard::join(pgid, orphaned_dirs).map_err(|source| VmError::Spawn {
            program: PathBuf::from(OrphanGuard::SHELL),
            source,
        })?;
        group.orphan_guard = Some(guard);
        Ok((child, group))
    }

    fn lock(&self) -> MutexGuard<'_, RegistryState> {
        // The state stays consistent even if a holder panicked: every update is one insert
        // or remove.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A registered process group; killed and unregistered when terminated or dropped, so a
/// panic or an early return cannot leave a VM behind.
struct RunningGroup {
    registry: VmRegistry,
    id: u64,
    pgid: Pid,
    terminated: bool,
    orphan_guard: Option<OrphanGuard>,
}

/// A shell in a VM's process group that kills the group when this process is gone: it
/// waits for end-of-file on a pipe whose only writer is this process (close-on-exec, so no
/// other child holds it), which the kernel closes however this process ends. It removes
/// vng's TMPDIR and the caller's directories for the VM first, which this process can no
/// longer do.
struct OrphanGuard {
    shell: Child,
    _writer: io::PipeWriter,
}

impl OrphanGuard {
    const SHELL: &str = "/bin/sh";

    fn join(pgid: Pid, dirs: &[&Path]) -> io::Result<OrphanGuard> {
        let (reader, writer) = io::pipe()?;
        let shell = Command::new(Self::SHELL)
            // `kill 0`: every process of the shell's own group, the VM's.
            .args([
                "-c",
                r#"read _; rm -rf -- "$@"; kill -KILL 0"#,
                "orphan-guard",
            ])
            .args(dirs)
            .stdin(reader)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(pgid.as_raw())
            .spawn()?;
        Ok(OrphanGuard {
            shell,
            _writer: writer,
        })
    }
}
impl RunningGroup {
    fn kill(&self) {
        kill_group(self.pgid);
    }

    /// Kills whatever is left of the group (virtiofsd outlives vng for a moment even on a
    /// clean exit) and waits until none of it is alive.
    fn terminate(mut self) -> Result<(), VmError> {
        self.terminated = true;
        self.release()
    }

    fn release(&mut self) -> Result<(), VmError> {
        self.kill();
        if let Some(mut guard) = self.orphan_guard.take() {
            // Killed with the group; reaped so that it leaves no zombie.
            let _ = guard.shell.wait();
        }
        let deadline = Instant::now() + KILL_GRACE;
        let result = loop {
            // The vng zombie stays until we reap it; live_members skips zombies.
            let alive = live_members(self.pgid);
            if alive.is_empty() {
                break Ok(());
            }
            if Instant::now() >= deadline {
                break Err(VmError::Strays { processes: alive });
            }
            thread::sleep(Duration::from_millis(10));
        };
        self.registry.lock().groups.remove(&self.id);
        result
    }
}

impl Drop for RunningGroup {
    fn drop(&mut self) {
        if !self.terminated {
            // Already failing: the stray check has no one to report to.
            let _ = self.release();
        }
    }
}

/// The signals the ctrlc crate catches with its `termination` feature.
const HANDLED_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

fn is_ignored(signal: Signal) -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `current`.
    let queried = unsafe {
        libc::sigaction(
            signal as libc::c_int,
            std::ptr::null(),
            current.as_mut_ptr(),
        )
    };
    // SAFETY: sigaction filled `current` when it returned 0; zeroed memory is a valid
    // sigaction otherwise.
    queried == 0 && unsafe { current.assume_init() }.sa_sigaction == libc::SIG_IGN
}

fn kill_group(pgid: Pid) {
    // ESRCH: the group is already gone, which is the goal. Nothing else can fail for a
    // group we created as root.
    let _ = killpg(pgid, Signal::SIGKILL);
}

fn live_members(pgid: Pid) -> Vec<VmProcess> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            // A process may exit between listing and reading: skip it.
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let stat = parse_stat(&stat)?;
            (stat.process_group == pgid.as_raw() && stat.is_alive()).then(|| VmProcess {
                pid,
                process_group: stat.process_group,
                name: stat.name.to_string(),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
struct Stat<'a> {
    name: &'a str,
    state: char,
    process_group: i32,
}

impl Stat<'_> {
    /// Zombies (Z) and dying tasks (X) hold no resources and run nothing.
    fn is_alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

/// `/proc/<pid>/stat`: `pid (name) state ppid pgrp …`; the name may itself hold spaces and
/// parentheses, so it runs to the last `)`.
fn parse_stat(stat: &str) -> Option<Stat<'_>> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _parent = fields.next()?;
    let process_group = fields.next()?.parse().ok()?;
    Some(Stat {
        name,
        state,
        process_group,
    })
}

/// Reads one of vng's output pipes on its own thread, copying to a log file as it comes.
struct Capture {
    buffer: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<Result<(), io::Error>>,
}

impl Capture {
    /// `lines` gets every line, stamped when it arrived, and the last one even without its
    /// newline.
    fn start(
        mut pipe: PipeReader,
        mut log: Option<File>,
        lines: mpsc::Sender<(Instant, String)>,
    ) -> Capture {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let (sender, done) = mpsc::channel();
        let shared = Arc::clone(&buffer);
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            let mut partial: Vec<u8> = Vec::new();
            // The receiver is gone only once the run is over; lines then have no reader.
            let pass_on = |line: &[u8]| {
                let text = String::from_utf8_lossy(line);
                let _ = lines.send((Instant::now(), text.trim_end_matches('\r').to_string()));
            };
            let result = loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break Ok(()),
                    Ok(read) => {
                        let bytes = &chunk[..read];
                        shared
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .extend_from_slice(bytes);
                        if let Some(file) = log.as_mut()
                            && let Err(error) = file.write_all(bytes)
                        {
                            break Err(error);
                        }
                        partial.extend_from_slice(bytes);
                        while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                            pass_on(&partial[..end]);
                            partial.drain(..=end);
                        }
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => break Err(error),
                }
            };
            if !partial.is_empty() {
                pass_on(&partial);
            }
            let _ = sender.send(result);
        });
        Capture { buffer, done }
    }

    /// Whether a kernel panic has reached the console so far.
    fn shows_panic(&self) -> bool {
        let bytes = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        console::scan(&String::from_utf8_lossy(&bytes))
            .iter()
            .any(|finding| finding.kind == MarkerKind::Panic)
    }

    /// The text read so far, once the pipe is closed (or after a grace period, if a process
    /// that escaped the group still holds it open).
    fn finish(self, log: Option<&PathBuf>) -> Result<String, VmError> {
        // A timeout (a process outside the group holds the pipe) keeps what was read.
        if let Ok(Err(source)) = self.done.recv_timeout(DRAIN_GRACE) {
            return Err(match log {
                Some(path) => VmError::ConsoleLog {
                    path: path.clone(),
                    source,
                },
                None => VmError::Pipe { source },
            });
        }
        let bytes = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        assert_eq!(
            parse_stat("4242 (qemu-system-x86) S 1 4200 4200 0 -1 4194560 0"),
            Some(Stat {
                name: "qemu-system-x86",
                state: 'S',
                process_group: 4200
            })
        );
        let odd = parse_stat("17 (a) b (c)) Z 1 99 99 0").unwrap();
        assert_eq!(odd.name, "a) b (c)");
        assert_eq!(odd.process_group, 99);
        assert!(!odd.is_alive());
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_cancelled_registry_refuses_new_vms() {
        let registry = VmRegistry::new();
        registry.cancel_all();
        let vng = Vng::for_tests("/bin/true", None);
        let mut command = Command::new("/bin/true");
        assert!(matches!(
            registry.spawn(&mut command, &vng, &[Path::new("/nonexistent")]),
            Err(VmError::Cancelled)
        ));
    }

    #[test]
    fn a_process_group_is_killed_whole() {
        // A shell that leaves a background child behind, like vng leaves virtiofsd.
        let registry = VmRegistry::new();
        let vng = Vng::for_tests("/bin/sh", None);
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", "sleep 300 & sleep 300; true"])
            .stdin(Stdio::null())
            .process_group(0);
        let scratch = tempfile::tempdir().unwrap();
        let (mut child, group) = registry
            .spawn(&mut command, &vng, &[scratch.path()])
            .unwrap();
        let pgid = group.pgid;
        let deadline = Instant::now() + Duration::from_secs(10);
        // The shell, its two sleeps and the orphan guard.
        while live_members(pgid).len() < 4 {
            assert!(
                Instant::now() < deadline,
                "the shell never started both sleeps"
            );
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(registry.running_processes().len(), 4);
        registry.cancel_all();
        group.terminate().unwrap();
        assert!(live_members(pgid).is_empty());
        assert!(registry.running_processes().is_empty());
        assert!(child.wait().unwrap().code().is_none());
    }

    #[test]
    fn the_orphan_guard_kills_the_group_once_its_writer_is_gone() {
        let mut sleeper = Command::new("sleep")
            .arg("300")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = Pid::from_raw(child_pid(&sleeper));
        let scratch = tempfile::tempdir().unwrap().keep();
        std::fs::write(scratch.join("qemu.pid"), "1").unwrap();
        let guest_dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(guest_dir.join("plan.json"), "{}").unwrap();
        let guard = OrphanGuard::join(pgid, &[&scratch, &guest_dir]).unwrap();
        assert_eq!(live_members(pgid).len(), 2);
        // What the kernel does to the pipe when this process dies.
        let OrphanGuard { mut shell, _writer } = guard;
        drop(_writer);
        shell.wait().unwrap();
        assert!(
            sleeper.wait().unwrap().code().is_none(),
            "killed by a signal"
        );
        assert!(live_members(pgid).is_empty());
        assert!(!scratch.exists(), "vng's TMPDIR is left behind");
        assert!(!guest_dir.exists(), "the guest's directory is left behind");
    }
}
