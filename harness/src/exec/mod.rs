//! Runs cases on the running kernel: the `--host` runner and, inside each VM, the guest
//! executor are this same code.
//!
//! Each case runs on its own thread in its own network namespace, with its own
//! descriptors; a panic or fault in one case becomes that case's error and the run goes on.

mod btf;
mod inspect;
mod netns;
mod programs;
mod sockets;
mod sys;

use std::{
    collections::HashMap,
    os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd, RawFd},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use aya_obj::generated::bpf_cmd;
use sys::MapSyscalls;

use crate::{
    case::{Case, FIRST_KERNEL, KeyRef, Op, Step},
    results::{Actual, CaseOutcome, CaseResult, KernelRun, KernelStatus, StepResult, Verdict},
    version::KernelVersion,
};

/// Why the executor cannot run anything here: an environment problem, not a divergence.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error(
        "the harness must run as root to create BPF maps (effective uid is {uid}); rerun with sudo"
    )]
    NotRoot { uid: u32 },
    #[error(
        "bpf(2) does not work on this kernel: creating a plain array map failed with {errno}; is CONFIG_BPF_SYSCALL set?"
    )]
    NoBpf { errno: String },
    #[error("cannot read the running kernel's version: {0}")]
    Version(#[from] crate::version::VersionError),
}

/// Checks that this machine can run cases and returns the kernel's version and release.
pub fn preflight() -> Result<(KernelVersion, String), InfraError> {
    let uid = nix::unistd::geteuid().as_raw();
    if uid != 0 {
        return Err(InfraError::NotRoot { uid });
    }
    // Before 5.11 map memory is charged to RLIMIT_MEMLOCK, whose default runs out after a
    // few maps; as root, lifting it is allowed and harmless.
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
    sys::probe().map_err(|errno| InfraError::NoBpf {
        errno: crate::errno::name(errno),
    })?;
    Ok(KernelVersion::running()?)
}

/// Runs `cases` on this kernel, one after the other (a fork or a reused descriptor number
/// must not race with another case's descriptors).
pub fn run_cases(
    kernel: &str,
    cases: &[Case],
    mut on_case: impl FnMut(&CaseResult),
) -> Result<KernelRun, InfraError> {
    let start = Instant::now();
    let (version, release) = preflight()?;
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let result = run_case(case, version);
        on_case(&result);
        results.push(result);
    }
    Ok(KernelRun {
        kernel: kernel.to_string(),
        release: Some(release),
        arch: crate::vm::arch::running_machine(),
        version: Some(version),
        status: KernelStatus::Ran,
        duration_ms: start.elapsed().as_millis() as u64,
        cmdline: std::fs::read_to_string("/proc/cmdline")
            .ok()
            .map(|line| line.trim().to_string()),
        harness: None,
        accel: None,
        phases: None,
        note: None,
        cases: results,
    })
}

/// The longest a case may run. Cases take milliseconds, the slowest a few seconds under
/// TCG; a case past this (a step that never returns, a `within` that never holds, many of
/// them) is its own error and the kernel's other cases still run, well inside the 300 s a
/// kernel has by default.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `case` on its own thread, stopped after [`CASE_TIMEOUT`].
pub fn run_case(case: &Case, version: KernelVersion) -> CaseResult {
    run_case_for(case, version, CASE_TIMEOUT)
}

/// Runs `case` on its own thread for `timeout` at most. A case still running then is
/// reported as an error and left behind: a thread stuck in a system call cannot be stopped,
/// so its thread, descriptors, network namespace, cgroup and lent eBPF object stay until
/// the call returns, when it stops before its next step and releases them. Meanwhile it
/// cannot touch what the next cases share: its rlimits are undone here at once (and it
/// sets none later), and the next case that needs the eBPF object loads one of its own.
pub fn run_case_for(case: &Case, version: KernelVersion, timeout: Duration) -> CaseResult {
    let start = Instant::now();
    let finish = |outcome, steps| CaseResult {
        name: case.name.clone(),
        file: case.file.display().to_string(),
        outcome,
        duration_ms: start.elapsed().as_millis() as u64,
        steps,
    };
    if let Some(reason) = unmet_requirement(case, version) {
        return finish(CaseOutcome::Skipped { reason }, Vec::new());
    }
    let owned = case.clone();
    let left_behind = Arc::new(LeftBehind::default());
    let limits_before = ProcessLimits::read();
    let (done, finished) = std::sync::mpsc::channel();
    let case_left_behind = Arc::clone(&left_behind);
    let joined = std::thread::Builder::new()
        .name(case.name.clone())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_isolated(&owned, version, &case_left_behind)
            }));
            // Nobody listens to a case left behind.
            let _ = done.send(result);
        })
        .map_err(|e| format!("cannot start the case's thread: {e}"))
        .and_then(|_| match finished.recv_timeout(timeout) {
            Ok(result) => result.map_err(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(ToString::to_string))
                    .unwrap_or_default();
                format!("the executor panicked: {message}")
            }),
            Err(_) => {
                left_behind.mark(&limits_before);
                Err(format!(
                    "the case did not finish within {}: stopped and left behind (a step that \
                     does not return, or more work than a case should be)",
                    humantime::format_duration(timeout)
                ))
            }
        });
    match joined.and_then(|r| r) {
        Ok(steps) => {
            let by_id = case.steps_by_id();
            let refused = steps
                .iter()
                .find_map(|s| refused_environment(case, by_id.get(s.id.as_str())?, s));
            if let Some(reason) = refused {
                return finish(CaseOutcome::Skipped { reason }, steps);
            }
            let diverged = steps.iter().any(|s| s.verdict == Verdict::Diverged);
            let outcome = if diverged {
                CaseOutcome::Diverged
            } else {
                CaseOutcome::Pass
            };
            finish(outcome, steps)
        }
        Err(message) => finish(CaseOutcome::Error { message }, Vec::new()),
    }
}

/// A step the kernel could not judge for a reason outside sk storage, which makes the case
/// a skip with that reason rather than a failure:
/// - a program (an attached one or the map iterator) refused with EPERM before the verifier
///   checked an instruction (no log but statistics): the machine forbids such programs
///   (lockdown, a restricted host kernel). A verifier rejection always has its reason line;
/// - a sock_diag dump answered ENOENT: no inet_diag handler for the family or protocol
///   (`__sock_diag_cmd`, `inet_diag_lock_handler`), so the kernel has no INET_DIAG at all
///   or not its modules.
fn refused_environment(case: &Case, ran: &Step, step: &StepResult) -> Option<String> {
    let op = &ran.op;
    if let (Op::Diag(_), Actual::Errno { name, .. }) = (op, &step.actual)
        && name == "ENOENT"
    {
        return Some(
            "this kernel answers no inet_diag dump (ENOENT from SOCK_DIAG_BY_FAMILY): \
             CONFIG_INET_DIAG is off, or its inet_diag/tcp_diag/udp_diag modules are not in \
             this kernel's tree"
                .to_string(),
        );
    }
    let Actual::Rejected { errno, message } = &step.actual else {
        return None;
    };
    if errno != "EPERM" || !message.is_empty() {
        return None;
    }
    let program = match op {
        Op::Attach(name) => format!("{} programs", case.programs.get(name)?.kind.name()),
        Op::Iterate(_) => "the sk storage map iterator (a tracing program)".to_string(),
        _ => return None,
    };
    Some(format!(
        "this kernel refused to load {program} before verifying an instruction (EPERM, no \
         verifier log): such programs are not allowed here"
    ))
}

fn unmet_requirement(case: &Case, version: KernelVersion) -> Option<String> {
    // Expectations cover kernels from FIRST_KERNEL on; older ones have no such map at all.
    if version < FIRST_KERNEL {
        return Some(format!(
            "BPF_MAP_TYPE_SK_STORAGE does not exist before {FIRST_KERNEL}; this is {version}"
        ));
    }
    if let Some(min) = case.requires.kernel
        && version < min
    {
        return Some(format!("needs kernel {min} or later; this is {version}"));
    }
    let missing: Vec<String> = case
        .requires
        .capabilities
        .iter()
        .filter(|cap| !caps::has_cap(None, caps::CapSet::Effective, **cap).unwrap_or(false))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Some(format!("needs {} in the effective set", missing.join(", ")));
    }
    programs::unmet(case)
}

/// Runs the case in this (its own) thread: a network namespace of its own, the eBPF object
/// lent to it (loaded as root, unlimited), a user of its own when it limits locked memory,
/// then its resource limits.
fn run_isolated(
    case: &Case,
    version: KernelVersion,
    left_behind: &LeftBehind,
) -> Result<Vec<StepResult>, String> {
    netns::enter_new().map_err(|e| format!("cannot create the case's network namespace: {e}"))?;
    let bpf =
        programs::CaseBpf::start(case).map_err(|e| format!("cannot load the eBPF object: {e}"))?;
    if case.rlimits.memlock.is_some() {
        enter_own_user()?;
    }
    let _limits = CaseLimits::apply(&case.rlimits, left_behind)?;
    let mut world = World::new(case, &sys::Bpf, bpf, left_behind);
    let results = world.run_all(version);
    // Programs are detached and the cgroup removed before the case's sockets close.
    if let Some(bpf) = world.bpf.take() {
        bpf.finish()
            .map_err(|e| format!("cannot clean up the case's cgroup: {e}"))?;
    }
    Ok(results)
}

/// The first uid [`enter_own_user`] gives a case; far above any account's.
const OWN_USERS_FROM: u32 = 0x5eed_0000;

/// Makes this thread's real, effective and saved uid one no other case or process has, with
/// every capability root had. Before 5.11 map memory is charged to the creating user's
/// locked memory (`user->locked_vm`): under root, a case's memlock limit would also count the
/// eBPF object's maps (loaded once per guest) and maps of earlier cases the kernel has not yet
/// freed, so the result would depend on what ran before. Its own user starts from nothing.
fn enter_own_user() -> Result<(), String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let uid = OWN_USERS_FROM + NEXT.fetch_add(1, Ordering::Relaxed);
    let permitted = caps::read(None, caps::CapSet::Permitted)
        .map_err(|e| format!("cannot read the thread's capabilities: {e}"))?;
    nix::sys::prctl::set_keepcaps(true)
        .map_err(|e| format!("cannot keep the capabilities across a change of user: {e}"))?;
    // SAFETY: the raw system call changes the calling thread's credentials only (libc's
    // setresuid would change every thread's), and the thread ends with its case.
    let changed = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    if changed != 0 {
        return Err(format!(
            "cannot run the case as a user of its own (uid {uid}): {}",
            std::io::Error::last_os_error()
        ));
    }
    // A change of uid clears the effective set; the permitted one was kept.
    caps::set(None, caps::CapSet::Effective, &permitted)
        .map_err(|e| format!("cannot restore the capabilities as uid {uid}: {e}"))
}

/// Whether [`run_case_for`] left the case's thread behind after its timeout. The case's
/// process-wide changes, its rlimits, are made and undone under the lock, so that a case
/// left behind makes none after it and undoes none of the later cases'.
#[derive(Default)]
struct LeftBehind(Mutex<bool>);

impl LeftBehind {
    /// Leaves the case behind and puts back the limits it may have changed.
    fn mark(&self, before: &ProcessLimits) {
        let mut left = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *left = true;
        before.restore();
    }

    fn is_marked(&self) -> bool {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The limits a case may set, as they are.
struct ProcessLimits(Vec<(nix::sys::resource::Resource, (u64, u64))>);

impl ProcessLimits {
    fn read() -> Self {
        use nix::sys::resource::{Resource, getrlimit};
        Self(
            [Resource::RLIMIT_MEMLOCK, Resource::RLIMIT_NOFILE]
                .into_iter()
                .filter_map(|resource| Some((resource, getrlimit(resource).ok()?)))
                .collect(),
        )
    }

    fn restore(&self) {
        for (resource, (soft, hard)) in self.0.iter().rev() {
            // Restoring what getrlimit returned cannot fail for root.
            let _ = nix::sys::resource::setrlimit(*resource, *soft, *hard);
        }
    }
}

/// The case's resource limits, in force until dropped. Limits belong to the process, not
/// the case's thread; that is sound because cases run one after another, and a case left
/// behind is kept from them by `left_behind`.
struct CaseLimits<'c> {
    before: ProcessLimits,
    left_behind: &'c LeftBehind,
}

impl<'c> CaseLimits<'c> {
    fn apply(limits: &crate::case::Rlimits, left_behind: &'c LeftBehind) -> Result<Self, String> {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let left = left_behind.0.lock().unwrap_or_else(PoisonError::into_inner);
        if *left {
            return Err("left behind before its limits were set".into());
        }
        let before = ProcessLimits::read();
        let set = [
            (Resource::RLIMIT_MEMLOCK, limits.memlock),
            (Resource::RLIMIT_NOFILE, limits.nofile),
        ]
        .into_iter()
        .filter_map(|(resource, limit)| Some((resource, limit?)))
        .try_for_each(|(resource, limit)| {
            let (_, hard) = getrlimit(resource).map_err(|e| format!("getrlimit: {e}"))?;
            // The hard limit stays, so that the executor (root) can restore the soft one.
            setrlimit(resource, limit, hard)
                .map_err(|e| format!("cannot set {resource:?} to {limit}: {e}"))
        });
        if let Err(e) = set {
            before.restore();
            return Err(e);
        }
        drop(left);
        Ok(CaseLimits {
            before,
            left_behind,
        })
    }
}

impl Drop for CaseLimits<'_> {
    fn drop(&mut self) {
        let left = self
            .left_behind
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A case left behind had its limits undone when it was left.
        if !*left {
            self.before.restore();
        }
    }
}

/// Loads the BTF of every map that declares it, before any step runs: BTF describes the
/// types, and a case that drops privileges must reach map creation's own checks rather
/// than fail earlier at BPF_BTF_LOAD.
fn load_map_btf(
    case: &Case,
    kernel: &dyn MapSyscalls,
) -> HashMap<String, Result<(OwnedFd, btf::MapTypes), String>> {
    case.maps
        .iter()
        .filter(|(_, spec)| spec.btf)
        .map(|(name, spec)| {
            let types = btf::map_types(&spec.key, &spec.value);
            let loaded =
                kernel
                    .load_btf(&types.blob)
                    .map(|fd| (fd, types))
                    .map_err(|(errno, log)| {
                        format!(
                            "the kernel rejected the map's BTF ({}): {log}",
                            crate::errno::name(errno)
                        )
                    });
            (name.clone(), loaded)
        })
        .collect()
}

/// The kernel objects a running case holds; dropped (so closed) when the case ends.
struct World<'c> {
    case: &'c Case,
    /// Where map operations go: the kernel, or a stand-in in unit tests.
    kernel: &'c dyn MapSyscalls,
    btf: HashMap<String, Result<(OwnedFd, btf::MapTypes), String>>,
    maps: HashMap<String, OwnedFd>,
    fds: HashMap<String, OwnedFd>,
    /// The numbers closed sockets had, for `closed_socket` keys and `reuse_fd_of`.
    closed: HashMap<String, RawFd>,
    /// The other ends of socketpairs, until their `pair_of` socket is created.
    pending_pairs: HashMap<String, OwnedFd>,
    /// Each map's id, read when it came to exist: sock_diag answers name maps by id, and a
    /// case may have dropped the capabilities reading it needs by the time it asks.
    map_ids: HashMap<String, u32>,
    /// Identities of the sockets, to match program records with.
    keys: programs::SocketKeys,
    /// The eBPF object, when the case uses programs or the object's maps.
    bpf: Option<programs::CaseBpf>,
    /// Set when the case ran out of time: it stops before its next step.
    left_behind: &'c LeftBehind,
}

fn judge(step: &Step, actual: Actual, version: KernelVersion) -> StepResult {
    // This binary runs on its own architecture's kernels only.
    let arch = crate::vm::Arch::host().unwrap_or_default();
    let variant = step.expect.for_kernel(version, arch);
    let (expected, reason, since) = match variant {
        Some(v) => (v.outcome.clone(), v.reason.clone(), v.range.since),
        None => unreachable!("validation makes variants cover every kernel a case runs on"),
    };
    let verdict = if actual.satisfies(&expected) {
        Verdict::Pass
    } else {
        Verdict::Diverged
    };
    StepResult {
        id: step.id.clone(),
        label: step.label.clone(),
        line: step.line,
        expected,
        reason,
        since,
        actual,
        verdict,
    }
}

impl<'c> World<'c> {
    fn new(
        case: &'c Case,
        kernel: &'c dyn MapSyscalls,
        bpf: Option<programs::CaseBpf>,
        left_behind: &'c LeftBehind,
    ) -> Self {
        let mut world = World {
            case,
            kernel,
            btf: load_map_btf(case, kernel),
            maps: HashMap::new(),
            fds: HashMap::new(),
            closed: HashMap::new(),
            pending_pairs: HashMap::new(),
            map_ids: HashMap::new(),
            keys: programs::SocketKeys::default(),
            bpf,
            left_behind,
        };
        // The object's maps exist from the start.
        let object_maps: Vec<String> = case
            .maps
            .iter()
            .filter(|(_, spec)| spec.bpf.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        for name in object_maps {
            world.remember_map_id(&name);
        }
        world
    }

    fn remember_map_id(&mut self, name: &str) {
        if let Ok(fd) = self.map_fd(name)
            && let Ok(id) = self.kernel.map_id(fd)
        {
            self.map_ids.insert(name.to_string(), id);
        }
    }

    /// Every step of the case, in order, judged against the expectation for `version`.
    fn run_all(&mut self, version: KernelVersion) -> Vec<StepResult> {
        let mut results = Vec::new();
        for step in &self.case.steps {
            if self.left_behind.is_marked() {
                break;
            }
            self.run(step, version, &mut results);
        }
        results
    }

    fn run(&mut self, step: &Step, version: KernelVersion, out: &mut Vec<StepResult>) {
        if let Op::Fork(_) = &step.op {
            let children = &step.children;
            let (actual, child_actuals) = self.fork(children);
            out.push(judge(step, actual, version));
            for (child, actual) in children.iter().zip(child_actuals) {
                out.push(judge(child, actual, version));
            }
            return;
        }
        let mut result = judge(step, self.perform(&step.op), version);
        // A step with `within` asks again until its expectation holds: the kernel frees
        // some things later (a closed map's storages, after an RCU grace period).
        if let Some(deadline) = step
            .within
            .and_then(|within| Instant::now().checked_add(within))
        {
            while result.verdict == Verdict::Diverged
                && Instant::now() < deadline
                && !self.left_behind.is_marked()
            {
                std::thread::sleep(Duration::from_millis(10));
                result = judge(step, self.perform(&step.op), version);
            }
        }
        out.push(result);
    }

    fn map_fd(&self, map: &str) -> Result<RawFd, Actual> {
        if let Some(storage) = self.case.maps[map].bpf {
            let bpf = self
                .bpf
                .as_ref()
                .expect("a case with object maps loads the object");
            return bpf
                .map_fd(storage)
                .map_err(|reason| Actual::NotRun { reason });
        }
        self.maps
            .get(map)
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| Actual::NotRun {
                reason: format!("map {map} was not created"),
            })
    }

    fn socket_fd(&self, name: &str) -> Result<RawFd, Actual> {
        self.fds
            .get(name)
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| Actual::NotRun {
                reason: format!("socket {name} was not created"),
            })
    }

    fn key_fd(&self, key: &KeyRef) -> Result<RawFd, Actual> {
        match key {
            KeyRef::Open(name) => self.socket_fd(name),
            KeyRef::Closed(name) => {
                let fd = *self.closed.get(name).ok_or_else(|| Actual::NotRun {
                    reason: format!("socket {name} was never open"),
                })?;
                if sockets::is_open(fd) {
                    return Err(Actual::NotRun {
                        reason: format!("fd {fd}, which {name} had, is open again"),
                    });
                }
                Ok(fd)
            }
            KeyRef::Raw(fd) if *fd >= 0 && sockets::is_open(*fd) => Err(Actual::NotRun {
                reason: format!("fd {fd} is open in the executor, so it is not a stray number"),
            }),
            KeyRef::Raw(fd) => Ok(*fd),
        }
    }

    /// The key buffer: the descriptor as a C int, padded to the map's key size.
    fn key_bytes(&self, map: &str, fd: RawFd) -> Vec<u8> {
        let size = self.case.maps[map].key_size.max(4) as usize;
        let mut key = vec![0u8; size];
        key[..4].copy_from_slice(&fd.to_le_bytes());
        key
    }

    fn value_buffer(&self, map: &str, value: &[u8]) -> Vec<u8> {
        let spec = &self.case.maps[map];
        let size = (spec.value_size as usize).max(spec.value.size() as usize);
        let mut buf = vec![0u8; size];
        let n = value.len().min(size);
        buf[..n].copy_from_slice(&value[..n]);
        buf
    }

    fn elem_call(&self, op: &Op) -> Result<sys::ElemCall, Actual> {
        let (cmd, args) = match op {
            Op::Update(args) => (bpf_cmd::BPF_MAP_UPDATE_ELEM, args),
            Op::Lookup(args) => (bpf_cmd::BPF_MAP_LOOKUP_ELEM, args),
            Op::Delete(args) => (bpf_cmd::BPF_MAP_DELETE_ELEM, args),
            Op::LookupAndDelete(args) => (bpf_cmd::BPF_MAP_LOOKUP_AND_DELETE_ELEM, args),
            Op::GetNextKey(args) => (bpf_cmd::BPF_MAP_GET_NEXT_KEY, args),
            _ => unreachable!("only element operations build an ElemCall"),
        };
        let map = &args.map;
        let map_fd = self.map_fd(map)?;
        let key_fd = args.key().map(|k| self.key_fd(&k)).transpose()?;
        let value = match (cmd, &args.value) {
            (bpf_cmd::BPF_MAP_DELETE_ELEM, _) => Vec::new(),
            (bpf_cmd::BPF_MAP_GET_NEXT_KEY, _) => {
                vec![0u8; self.case.maps[map].key_size.max(4) as usize]
            }
            (_, Some(value)) => self.value_buffer(map, &self.encode(map, value)?),
            (_, None) => self.value_buffer(map, &[]),
        };
        Ok(sys::ElemCall {
            cmd,
            map_fd,
            key: self.key_bytes(map, key_fd.unwrap_or(-1)),
            value,
            flags: args.flag_bits(op.name()),
            null_key: key_fd.is_none(),
        })
    }

    /// A value of the map's type, as validation has checked it encodes.
    fn encode(&self, map: &str, value: &serde_yaml::Value) -> Result<Vec<u8>, Actual> {
        self.case.maps[map]
            .value
            .encode(value)
            .map_err(|e| Actual::NotRun {
                reason: format!("the value does not fit the map's type: {}", e.problem),
            })
    }

    /// Turns a finished element call into the step's actual outcome.
    fn elem_outcome(&self, op: &Op, result: Result<(), i32>, value: &[u8]) -> Actual {
        match (result, op) {
            (Err(errno), _) => Actual::errno(errno),
            (Ok(()), Op::Lookup(args) | Op::LookupAndDelete(args)) => {
                let ty = &self.case.maps[&args.map].value;
                Actual::Value {
                    value: ty.decode(&value[..ty.size() as usize]),
                }
            }
            (Ok(()), _) => Actual::Ok,
        }
    }

    fn perform(&mut self, op: &Op) -> Actual {
        match self.try_perform(op) {
            Ok(actual) | Err(actual) => actual,
        }
    }

    fn try_perform(&mut self, op: &Op) -> Result<Actual, Actual> {
        Ok(match op {
            Op::CreateMap(name) => self.create_map(name),
            Op::Socket(name) => self.open_socket(name),
            Op::Close(name) => {
                let fd = self.fds.remove(name).ok_or_else(|| Actual::NotRun {
                    reason: format!("socket {name} was not created"),
                })?;
                let number = fd.as_raw_fd();
                self.keys.remember(name, &fd);
                self.closed.insert(name.clone(), number);
                match nix::unistd::close(fd.into_raw_fd()) {
                    Ok(()) => Actual::Ok,
                    Err(errno) => Actual::errno(errno as i32),
                }
            }
            Op::DropCapabilities(list) => {
                for cap in list {
                    if let Err(e) = caps::drop(None, caps::CapSet::Effective, cap.0) {
                        return Err(Actual::NotRun {
                            reason: format!("cannot drop {}: {e}", cap.0),
                        });
                    }
                }
                Actual::Ok
            }
            Op::Update(_)
            | Op::Lookup(_)
            | Op::Delete(_)
            | Op::LookupAndDelete(_)
            | Op::GetNextKey(_) => {
                let mut call = self.elem_call(op)?;
                let result = self.kernel.elem(&mut call);
                self.elem_outcome(op, result, &call.value)
            }
            Op::LookupBatch(args)
            | Op::UpdateBatch(args)
            | Op::DeleteBatch(args)
            | Op::LookupAndDeleteBatch(args) => {
                let map = &args.map;
                let map_fd = self.map_fd(map)?;
                let spec = &self.case.maps[map];
                let mut key_buf = Vec::new();
                for name in &args.sockets {
                    key_buf.extend(self.key_bytes(map, self.socket_fd(name)?));
                }
                let count = args.sockets.len().max(1);
                let mut value_buf: Vec<u8> = if args.values.is_empty() {
                    vec![0u8; spec.value_size as usize * count]
                } else {
                    let mut buf = Vec::new();
                    for value in &args.values {
                        buf.extend(self.value_buffer(map, &self.encode(map, value)?));
                    }
                    buf
                };
                key_buf.resize(key_buf.len().max(spec.key_size as usize * count), 0);
                let cmd = match op {
                    Op::LookupBatch(_) => bpf_cmd::BPF_MAP_LOOKUP_BATCH,
                    Op::UpdateBatch(_) => bpf_cmd::BPF_MAP_UPDATE_BATCH,
                    Op::DeleteBatch(_) => bpf_cmd::BPF_MAP_DELETE_BATCH,
                    _ => bpf_cmd::BPF_MAP_LOOKUP_AND_DELETE_BATCH,
                };
                let count = args.sockets.len() as u32;
                match self
                    .kernel
                    .batch(cmd, map_fd, &mut key_buf, &mut value_buf, count)
                {
                    Ok(_) => Actual::Ok,
                    Err(errno) => Actual::errno(errno),
                }
            }
            Op::CloseMap(name) => {
                let fd = self.maps.remove(name).ok_or_else(|| Actual::NotRun {
                    reason: format!("map {name} was not created"),
                })?;
                errno_outcome(nix::unistd::close(fd.into_raw_fd()))
            }
            Op::Connect(args) => {
                let fd = self.socket_fd(&args.socket)?;
                let target = self.socket_fd(&args.to)?;
                errno_outcome(sockets::connect_to(fd, target))
            }
            Op::SendFd(args) => {
                let fd = self.socket_fd(&args.socket)?;
                let passed = self.socket_fd(&args.fd_of)?;
                errno_outcome(sockets::send_fd(fd, passed))
            }
            Op::Shutdown(args) => {
                let fd = self.socket_fd(&args.socket)?;
                errno_outcome(sockets::shutdown(fd, args.how))
            }
            Op::Send(args) => {
                let fd = self.socket_fd(&args.socket)?;
                let payload = vec![0x5au8; args.bytes as usize];
                let flags = nix::sys::socket::MsgFlags::MSG_DONTWAIT
                    | nix::sys::socket::MsgFlags::MSG_NOSIGNAL;
                transfer_outcome(nix::sys::socket::send(fd, &payload, flags), args.bytes)
            }
            Op::Recv(args) => {
                let fd = self.socket_fd(&args.socket)?;
                let mut buf = vec![0u8; args.bytes as usize];
                let flags = nix::sys::socket::MsgFlags::MSG_DONTWAIT;
                transfer_outcome(nix::sys::socket::recv(fd, &mut buf, flags), args.bytes)
            }
            Op::Fork(_) => unreachable!("forks are run by World::run"),
            Op::Repeat(_) => unreachable!("validation puts a repeat's steps in its place"),
            Op::Threads(groups) => self.threads(groups)?,
            Op::Attach(name) | Op::Detach(name) => {
                let program = &self.case.programs[name];
                let bpf = self
                    .bpf
                    .as_mut()
                    .expect("a case with programs loads the object");
                if matches!(op, Op::Attach(_)) {
                    bpf.attach(program)
                } else {
                    bpf.detach(program)
                }
            }
            Op::Observe(args) => {
                let socket = &args.socket;
                if let Some(fd) = self.fds.get(socket) {
                    self.keys.remember(socket, fd);
                }
                let key = self
                    .keys
                    .get(socket)
                    .cloned()
                    .ok_or_else(|| Actual::NotRun {
                        reason: format!("socket {socket} has no identity to match records with"),
                    })?;
                let program = &self.case.programs[&args.program];
                let bpf = self
                    .bpf
                    .as_mut()
                    .expect("a case with programs loads the object");
                bpf.observe(program, &key, args.callback())
            }
            Op::Setsockopt(args) => {
                let fd = self.socket_fd(&args.socket)?;
                let option = args.option();
                let value = args.value.as_ref().map_or(Ok(Vec::new()), |v| {
                    option.value_type().encode(v).map_err(|e| Actual::NotRun {
                        reason: format!("the value does not fit the option: {}", e.problem),
                    })
                })?;
                errno_outcome(sockets::set_option(fd, option, &value))
            }
            Op::Getsockopt(args) => {
                let fd = self.socket_fd(&args.socket)?;
                let ty = args.option().value_type();
                match sockets::get_option(fd, args.option(), ty.size() as usize) {
                    Ok(bytes) => Actual::Value {
                        value: ty.decode(&bytes),
                    },
                    Err(errno) => Actual::errno(errno as i32),
                }
            }
            Op::Diag(args) => self.diag(args)?,
            Op::Iterate(args) => {
                let map_fd = self.map_fd(&args.map)?;
                let bpf = self
                    .bpf
                    .as_mut()
                    .expect("a case that iterates loads the object");
                let prog_fd = bpf.iterator_program()?;
                inspect::iterate(prog_fd, map_fd)
            }
        })
    }

    /// A sock_diag dump for the socket asking for the storages of the named maps (every
    /// storage when none is named); the answer's map ids are named by the case's maps.
    fn diag(&self, args: &crate::case::steps::DiagOp) -> Result<Actual, Actual> {
        let fd = self.fds.get(&args.socket).ok_or_else(|| Actual::NotRun {
            reason: format!("socket {} was not created", args.socket),
        })?;
        let mut asked = Vec::new();
        for name in &args.maps {
            asked.push(self.map_fd(name)?);
        }
        // Every map of the case that came to exist can be named in the answer.
        let known: Vec<inspect::DiagMap<'_>> = self
            .case
            .maps
            .iter()
            .filter_map(|(name, spec)| {
                Some(inspect::DiagMap {
                    name,
                    id: *self.map_ids.get(name)?,
                    value: &spec.value,
                })
            })
            .collect();
        let socket = crate::case::steps::inspect::family_and_type(&args.socket, &self.case.sockets)
            .ok_or_else(|| Actual::NotRun {
                reason: format!("socket {} is not an inet or inet6 socket", args.socket),
            })?;
        Ok(inspect::diag(fd.as_fd(), socket, &asked, &known))
    }

    fn create_map(&mut self, name: &str) -> Actual {
        let spec = &self.case.maps[name];
        let btf = match self.btf.get(name) {
            None => None,
            Some(Ok((fd, types))) => Some(sys::MapBtf {
                fd,
                key_type_id: types.key_type_id,
                value_type_id: types.value_type_id,
            }),
            Some(Err(reason)) => {
                return Actual::NotRun {
                    reason: reason.clone(),
                };
            }
        };
        let attrs = sys::MapAttrs {
            key_size: spec.key_size,
            value_size: spec.value_size,
            max_entries: spec.max_entries,
            map_flags: spec.flags,
            btf,
        };
        match self.kernel.create_sk_storage_map(&attrs) {
            Ok(fd) => {
                self.maps.insert(name.to_string(), fd);
                self.remember_map_id(name);
                Actual::Ok
            }
            Err(errno) => Actual::errno(errno),
        }
    }

    fn open_socket(&mut self, name: &str) -> Actual {
        let spec = &self.case.sockets[name];
        match &spec.source {
            crate::case::SocketSource::PairOf(end) => {
                return match self.pending_pairs.remove(end) {
                    Some(fd) => self.place(name, Ok(fd)),
                    None => Actual::NotRun {
                        reason: format!("{end}, whose other end this is, was not created"),
                    },
                };
            }
            crate::case::SocketSource::File(path) => {
                return match sockets::open_file(path) {
                    Ok(fd) => self.place(name, Ok(fd)),
                    Err(sockets::FileRefused::Errno(errno)) => self.place(name, Err(errno)),
                    Err(sockets::FileRefused::NotPlain(reason)) => Actual::NotRun { reason },
                };
            }
            _ => {}
        }
        let fds = &self.fds;
        let open = || {
            sockets::open(name, &spec.source, |peer| {
                fds.get(peer).map(AsRawFd::as_raw_fd)
            })
        };
        // With programs, sockets are made inside the case's cgroup so its programs see them.
        let opened = match &self.bpf {
            Some(bpf) => match bpf.in_cgroup(open) {
                Ok(opened) => opened,
                Err(reason) => return Actual::NotRun { reason },
            },
            None => open(),
        };
        let opened = opened.map(|opened| {
            if let Some(other_end) = opened.other_end {
                self.pending_pairs.insert(name.to_string(), other_end);
            }
            opened.fd
        });
        self.place(name, opened)
    }

    /// Puts a new descriptor where its declaration says and records it under `name`.
    fn place(&mut self, name: &str, opened: nix::Result<OwnedFd>) -> Actual {
        let spec = &self.case.sockets[name];
        let placed = opened.and_then(|fd| match &spec.reuse_fd_of {
            Some(old) => match self.closed.get(old) {
                Some(number) => sockets::move_to(fd, *number),
                None => Err(nix::errno::Errno::EBADF),
            },
            None => Ok(fd),
        });
        match placed {
            Ok(fd) => {
                self.keys.remember(name, &fd);
                self.fds.insert(name.to_string(), fd);
                Actual::Ok
            }
            Err(errno) => Actual::errno(errno as i32),
        }
    }

    /// Runs `children` in a forked child on its copies of the descriptors and returns the
    /// fork's own outcome and each child step's.
    fn fork(&mut self, children: &[Step]) -> (Actual, Vec<Actual>) {
        let not_run = |reason: String| {
            let actual = Actual::NotRun { reason };
            (actual.clone(), vec![actual; children.len()])
        };
        // Everything the child needs is prepared here: after fork() the child must not
        // allocate, since another thread may have held the allocator's lock.
        let mut calls = Vec::with_capacity(children.len());
        for child in children {
            calls.push(match &child.op {
                Op::Close(name) => match self.socket_fd(name) {
                    Ok(fd) => Ok(ChildCall::Close(fd)),
                    Err(actual) => Err(actual),
                },
                op => self.elem_call(op).map(ChildCall::Elem),
            });
        }
        let kernel = self.kernel;
        let mut shared = match SharedResults::new(calls.len()) {
            Ok(s) => s,
            Err(e) => return not_run(format!("cannot map memory shared with the child: {e}")),
        };
        // SAFETY: the child only makes the prepared syscalls, writes into the shared
        // mapping and calls _exit.
        match unsafe { nix::unistd::fork() } {
            Err(errno) => not_run(format!("fork failed: {errno}")),
            Ok(nix::unistd::ForkResult::Child) => {
                for (slot, call) in calls.iter_mut().enumerate() {
                    let result = match call {
                        Ok(ChildCall::Elem(c)) => kernel.elem(c).map(|()| c.value.as_slice()),
                        // SAFETY: closing the child's copy of a descriptor it inherited.
                        Ok(ChildCall::Close(fd)) => match unsafe { libc::close(*fd) } {
                            0 => Ok(&[][..]),
                            _ => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
                        },
                        Err(_) => continue,
                    };
                    shared.record(slot, result);
                }
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                let status = nix::sys::wait::waitpid(child, None);
                let fork_actual = match status {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Actual::Ok,
                    other => Actual::NotRun {
                        reason: format!("the child did not exit cleanly: {other:?}"),
                    },
                };
                let actuals = children
                    .iter()
                    .zip(calls)
                    .enumerate()
                    .map(|(slot, (child, call))| match call {
                        Err(actual) => actual,
                        Ok(_) => {
                            let (result, value) = shared.read(slot);
                            self.elem_outcome(&child.op, result, value)
                        }
                    })
                    .collect();
                (fork_actual, actuals)
            }
        }
    }
}

impl World<'_> {
    /// Runs the threads of a threads step at once and counts each operation's outcomes.
    /// Every call is prepared first, so the threads only make syscalls.
    fn threads(&self, groups: &[crate::case::steps::ThreadGroup]) -> Result<Actual, Actual> {
        let expanded = crate::case::steps::expand_threads(groups).map_err(|e| Actual::NotRun {
            reason: format!("cannot expand the threads: {}", e.message),
        })?;
        let mut prepared = Vec::with_capacity(expanded.len());
        for thread in &expanded {
            let calls = thread
                .ops
                .iter()
                .map(|op| Ok((op.name(), self.elem_call(op)?)))
                .collect::<Result<Vec<_>, Actual>>()?;
            prepared.push(calls);
        }
        let kernel = self.kernel;
        let tallies: Vec<Tally> = std::thread::scope(|scope| {
            let running: Vec<_> = prepared
                .into_iter()
                .map(|mut calls| {
                    scope.spawn(move || {
                        let mut tally = Tally::new();
                        for (name, call) in &mut calls {
                            let outcome = match kernel.elem(call) {
                                Ok(()) => "ok".to_string(),
                                Err(errno) => crate::errno::name(errno),
                            };
                            *tally
                                .entry(name.to_string())
                                .or_default()
                                .entry(outcome)
                                .or_default() += 1;
                        }
                        tally
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|thread| thread.join().unwrap_or_default())
                .collect()
        });
        let mut counts = Tally::new();
        for tally in tallies {
            for (op, outcomes) in tally {
                for (outcome, n) in outcomes {
                    *counts
                        .entry(op.clone())
                        .or_default()
                        .entry(outcome)
                        .or_default() += n;
                }
            }
        }
        Ok(Actual::Counts { counts })
    }
}

/// Per operation name, how often each outcome happened.
type Tally = std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>;

enum ChildCall {
    Elem(sys::ElemCall),
    Close(RawFd),
}

/// Memory shared with a forked child: per call, a status word and the value it read.
struct SharedResults {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

/// Room for one call's value; sk storage values are at most about 64 KiB.
const SLOT_VALUE: usize = 64 * 1024;
const SLOT: usize = 16 + SLOT_VALUE;

impl SharedResults {
    fn new(slots: usize) -> nix::Result<Self> {
        let len = (slots * SLOT).max(1);
        // SAFETY: a fresh anonymous shared mapping; unmapped in Drop.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                std::num::NonZeroUsize::new(len).expect("len is at least 1"),
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
            )?
        };
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    fn slot(&mut self, slot: usize) -> &mut [u8] {
        // SAFETY: slot < slots, so the range lies inside the mapping.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(slot * SLOT), SLOT) }
    }

    /// Child side: no allocation.
    fn record(&mut self, slot: usize, result: Result<&[u8], i32>) {
        let buf = self.slot(slot);
        let (errno, value) = match result {
            Ok(v) => (0i32, v),
            Err(e) => (e, &[][..]),
        };
        let n = value.len().min(SLOT_VALUE);
        buf[0] = 1; // written
        buf[4..8].copy_from_slice(&errno.to_le_bytes());
        buf[8..16].copy_from_slice(&(n as u64).to_le_bytes());
        buf[16..16 + n].copy_from_slice(&value[..n]);
    }

    fn read(&mut self, slot: usize) -> (Result<(), i32>, &[u8]) {
        let buf = self.slot(slot);
        if buf[0] != 1 {
            return (Err(libc::ECHILD), &[]);
        }
        let errno = i32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
        let n = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")) as usize;
        let result = if errno == 0 { Ok(()) } else { Err(errno) };
        (result, &buf[16..16 + n])
    }
}

impl Drop for SharedResults {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in new().
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) };
    }
}

fn errno_outcome(result: nix::Result<()>) -> Actual {
    match result {
        Ok(()) => Actual::Ok,
        Err(errno) => Actual::errno(errno as i32),
    }
}

fn transfer_outcome(result: nix::Result<usize>, wanted: u32) -> Actual {
    match result {
        Ok(n) if n == wanted as usize => Actual::Ok,
        Ok(n) => Actual::Returned { value: n as i64 },
        Err(errno) => Actual::errno(errno as i32),
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, path::Path, sync::Mutex};

    use super::*;

    /// A stand-in for bpf(2): records what the executor asks and answers from a script.
    #[derive(Default)]
    struct Scripted {
        /// Per element call, in order: the bytes the kernel would write into the value
        /// buffer, or an errno.
        replies: Mutex<VecDeque<Result<Vec<u8>, i32>>>,
        batch_reply: Option<i32>,
        created: Mutex<Vec<(u32, u32, u32, bool)>>,
        elem_calls: Mutex<Vec<ElemSeen>>,
    }

    /// An element call as the stand-in saw it: command, key bytes, value buffer length,
    /// flags.
    type ElemSeen = (bpf_cmd, Vec<u8>, usize, u64);

    fn null_fd() -> OwnedFd {
        std::fs::File::open("/dev/null").expect("/dev/null").into()
    }

    impl MapSyscalls for Scripted {
        fn map_id(&self, map_fd: RawFd) -> Result<u32, sys::Errno> {
            Ok(map_fd as u32)
        }

        fn load_btf(&self, _blob: &[u8]) -> Result<OwnedFd, (sys::Errno, String)> {
            Ok(null_fd())
        }

        fn create_sk_storage_map(&self, attrs: &sys::MapAttrs<'_>) -> Result<OwnedFd, sys::Errno> {
            self.created.lock().unwrap().push((
                attrs.key_size,
                attrs.value_size,
                attrs.map_flags,
                attrs.btf.is_some(),
            ));
            Ok(null_fd())
        }

        fn elem(&self, call: &mut sys::ElemCall) -> Result<(), sys::Errno> {
            self.elem_calls.lock().unwrap().push((
                call.cmd,
                call.key.clone(),
                call.value.len(),
                call.flags,
            ));
            let reply = self
                .replies
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Ok(Vec::new()));
            reply.map(|bytes| call.value[..bytes.len()].copy_from_slice(&bytes))
        }

        fn batch(
            &self,
            _cmd: bpf_cmd,
            _map_fd: RawFd,
            keys: &mut [u8],
            values: &mut [u8],
            count: u32,
        ) -> Result<u32, sys::Errno> {
            assert_eq!(keys.len() % count.max(1) as usize, 0);
            assert!(!values.is_empty());
            self.batch_reply.map_or(Ok(count), Err)
        }
    }

    fn case(text: &str) -> Case {
        crate::case::parse(Path::new("cases/x.yaml"), text).expect("valid case")
    }

    fn verdicts(results: &[StepResult]) -> Vec<(String, Verdict)> {
        results.iter().map(|r| (r.id.clone(), r.verdict)).collect()
    }

    #[test]
    fn keys_are_the_socket_fd_padded_and_values_fill_the_larger_size() {
        let case = case(
            "name: x\ndescription: d\nmaps:\n  store: { key: u64, value: u16, value_size: 8 }\n\
             sockets:\n  s: { family: inet }\nsteps:\n\
             \x20 - update: { map: store, socket: s, value: 7, flags: NOEXIST }\n    expect: ok\n\
             \x20 - lookup: { map: store, socket: s }\n    expect: { value: 7 }\n",
        );
        let kernel = Scripted::default();
        kernel
            .replies
            .lock()
            .unwrap()
            .extend([Ok(Vec::new()), Ok(7u16.to_le_bytes().to_vec())]);
        let running = LeftBehind::default();
        let mut world = World::new(&case, &kernel, None, &running);
        let results = world.run_all(KernelVersion::new(6, 1, 0));
        assert!(
            results.iter().all(|r| r.verdict == Verdict::Pass),
            "{results:#?}"
        );
        // The declared sizes, NO_PREALLOC by default, BTF described.
        assert_eq!(*kernel.created.lock().unwrap(), [(8, 8, 1, true)]);
        let fd = world.fds["s"].as_raw_fd();
        let calls = kernel.elem_calls.lock().unwrap();
        assert_eq!(calls[0].0, bpf_cmd::BPF_MAP_UPDATE_ELEM);
        let mut key = fd.to_le_bytes().to_vec();
        key.resize(8, 0);
        assert_eq!(
            calls[0].1, key,
            "the fd as a C int, zero-padded to the key size"
        );
        assert_eq!(
            (calls[0].2, calls[0].3),
            (8, 1),
            "value buffer and BPF_NOEXIST"
        );
        assert_eq!(calls[1].0, bpf_cmd::BPF_MAP_LOOKUP_ELEM);
        let lookup = results.iter().find(|r| r.id == "2").expect("lookup step");
        assert_eq!(
            lookup.actual,
            Actual::Value {
                value: serde_json::json!(7)
            }
        );
    }

    #[test]
    fn the_variant_in_force_judges_what_the_kernel_answered() {
        let text = "name: x\ndescription: d\nmaps:\n  store: { value: u32 }\n\
                    sockets:\n  s: { family: inet }\nsteps:\n\
                    \x20 - lookup_batch: { map: store, sockets: [s] }\n    expect:\n\
                    \x20     - { until: \"5.6\", expect: EINVAL, reason: no batch commands }\n\
                    \x20     - { since: \"5.6\", expect: ENOTSUPP, reason: no batch ops }\n";
        let case = case(text);
        let kernel = Scripted {
            batch_reply: Some(524),
            ..Scripted::default()
        };
        let new = World::new(&case, &kernel, None, &LeftBehind::default())
            .run_all(KernelVersion::new(6, 1, 0));
        let old = World::new(&case, &kernel, None, &LeftBehind::default())
            .run_all(KernelVersion::new(5, 4, 0));
        let batch = |results: &[StepResult]| {
            results
                .iter()
                .find(|r| r.id == "1")
                .expect("batch step")
                .clone()
        };
        assert_eq!(batch(&new).verdict, Verdict::Pass, "{new:#?}");
        assert_eq!(batch(&new).reason.as_deref(), Some("no batch ops"));
        let on_old = batch(&old);
        assert_eq!(on_old.verdict, Verdict::Diverged);
        assert_eq!(
            on_old.expected,
            crate::case::Expected::Errno("EINVAL".into())
        );
        assert_eq!(on_old.actual, Actual::errno(524));
    }

    #[test]
    fn a_closed_socket_key_is_its_old_number_and_errnos_are_named() {
        let case = case(
            "name: x\ndescription: d\nmaps:\n  store: { value: u32 }\n\
             sockets:\n  s: { family: inet }\nsteps:\n\
             \x20 - close: s\n    expect: ok\n\
             \x20 - delete: { map: store, closed_socket: s }\n    expect: EBADF\n",
        );
        let kernel = Scripted::default();
        kernel.replies.lock().unwrap().push_back(Err(libc::EBADF));
        let running = LeftBehind::default();
        let mut world = World::new(&case, &kernel, None, &running);
        let results = world.run_all(KernelVersion::new(6, 1, 0));
        assert!(
            verdicts(&results).iter().all(|(_, v)| *v == Verdict::Pass),
            "{results:#?}"
        );
        let old_number = world.closed["s"];
        let calls = kernel.elem_calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, bpf_cmd::BPF_MAP_DELETE_ELEM);
        assert_eq!(calls[0].1, old_number.to_le_bytes());
        let delete = results.last().expect("delete step");
        assert_eq!(
            delete.actual,
            Actual::Errno {
                name: "EBADF".into(),
                code: libc::EBADF
            }
        );
    }

    #[test]
    fn kernels_older_than_sk_storage_skip_every_case_with_one_reason() {
        let case = crate::case::parse(
            Path::new("cases/x.yaml"),
            "name: x\ndescription: d\nmaps:\n  store: { value: u32 }\nsteps:\n  - create_map: store\n    expect: ok\n",
        )
        .expect("valid case");
        let result = run_case(&case, KernelVersion::new(4, 19, 0));
        assert_eq!(
            result.outcome,
            CaseOutcome::Skipped {
                reason: "BPF_MAP_TYPE_SK_STORAGE does not exist before 5.2; this is 4.19".into()
            }
        );
        assert!(result.steps.is_empty());
    }

    #[test]
    fn a_dump_without_inet_diag_skips_the_case_and_other_errnos_do_not() {
        let case = case(
            "name: x\ndescription: d\nsockets:\n  s: { family: inet, listen: true }\nsteps:\n  - diag: { socket: s }\n    expect: { storages: {} }\n",
        );
        let step = |name: &str| StepResult {
            id: "1".into(),
            label: "diag".into(),
            line: None,
            expected: crate::case::Expected::Ok,
            reason: None,
            since: None,
            actual: Actual::Errno {
                name: name.into(),
                code: 0,
            },
            verdict: Verdict::Diverged,
        };
        let diag = case.steps_by_id()["1"];
        let reason = refused_environment(&case, diag, &step("ENOENT")).expect("a skip");
        assert!(reason.contains("CONFIG_INET_DIAG"), "{reason}");
        assert_eq!(refused_environment(&case, diag, &step("EPERM")), None);
    }

    #[test]
    fn a_program_refused_before_verifying_skips_and_a_verifier_rejection_does_not() {
        let case = case(
            "name: x\ndescription: d\nmaps:\n  store: { bpf: no_prealloc }\nsockets:\n  s: { family: inet }\nprograms:\n  p: { type: sock_create, map: store, calls: [ { get: {} } ] }\nsteps:\n  - socket: s\n    expect: ok\n  - attach: p\n    expect: ok\n  - iterate: { map: store }\n    expect: { value: { storages: 0, value_sum: 0 } }\n",
        );
        let rejected = |id: &str, errno: &str, message: &str| StepResult {
            id: id.into(),
            label: String::new(),
            line: None,
            expected: crate::case::Expected::Ok,
            reason: None,
            since: None,
            actual: Actual::Rejected {
                errno: errno.into(),
                message: message.into(),
            },
            verdict: Verdict::Diverged,
        };
        let by_id = case.steps_by_id();
        let refused = |id: &str, errno: &str, message: &str| {
            refused_environment(&case, by_id[id], &rejected(id, errno, message))
        };
        // The iterator's log on a host that refuses tracing programs holds only statistics,
        // which the message leaves out.
        for id in ["2", "3"] {
            let reason = refused(id, "EPERM", "").expect("a skip");
            assert!(
                reason.contains("before verifying an instruction"),
                "{reason}"
            );
        }
        assert!(refused("3", "EPERM", "").unwrap().contains("map iterator"));
        for (errno, message) in [("EPERM", "R1 invalid mem access"), ("EACCES", "")] {
            assert_eq!(refused("3", errno, message), None);
            assert_eq!(refused("2", errno, message), None);
        }
    }
}
