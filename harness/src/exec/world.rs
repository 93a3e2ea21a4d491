//! What a running case holds, and the run loop: each step's action goes to the module of
//! its concern, which performs it on the world.

use std::{
    collections::HashMap,
    os::fd::{AsRawFd, OwnedFd, RawFd},
    time::{Duration, Instant},
};

use super::{
    btf, inspect,
    isolation::LeftBehind,
    maps, process, programs, sockets,
    sys::{self, Syscalls},
    threads,
};
use crate::{
    case::{Action, Case, KeyRef, Step},
    results::{Actual, StepResult, Verdict},
    version::KernelVersion,
};

/// The kernel objects a running case holds; dropped (so closed) when the case ends.
pub(super) struct World<'c> {
    pub(super) case: &'c Case,
    /// Where steps' calls go: the kernel, or a stand-in in unit tests.
    pub(super) kernel: &'c dyn Syscalls,
    pub(super) btf: HashMap<String, Result<(OwnedFd, btf::MapTypes), String>>,
    pub(super) maps: HashMap<String, OwnedFd>,
    pub(super) fds: HashMap<String, OwnedFd>,
    /// The numbers closed sockets had, for `closed_socket` keys and `reuse_fd_of`.
    pub(super) closed: HashMap<String, RawFd>,
    /// The other ends of socketpairs, until their `pair_of` socket is created.
    pub(super) pending_pairs: HashMap<String, OwnedFd>,
    /// Each map's id, read when it came to exist: sock_diag answers name maps by id, and a
    /// case may have dropped the capabilities reading it needs by the time it asks.
    pub(super) map_ids: HashMap<String, u32>,
    /// Identities of the sockets, to match program records with.
    pub(super) keys: programs::SocketKeys,
    /// The eBPF object, when the case uses programs or the object's maps.
    pub(super) bpf: Option<programs::CaseBpf>,
    /// Set when the case ran out of time: it stops before its next step.
    left_behind: &'c LeftBehind,
}

/// A call made ready before it runs where nothing may allocate: in a forked child, or on
/// threads racing each other. Every buffer exists before the call.
pub(super) enum Prepared {
    Elem(sys::ElemCall),
    Close(RawFd),
}

impl Prepared {
    /// Makes the call, allocating nothing; on success, the call's value buffer.
    pub(super) fn run(&mut self, kernel: &dyn Syscalls) -> Result<&[u8], sys::Errno> {
        match self {
            Prepared::Elem(call) => kernel.elem(call).map(|()| call.value.as_slice()),
            Prepared::Close(fd) => kernel.close(*fd).map(|()| &[][..]),
        }
    }
}

/// Loads the BTF of every map that declares it, before any step runs: BTF describes the
/// types, and a case that drops privileges must reach map creation's own checks rather
/// than fail earlier at BPF_BTF_LOAD.
fn load_map_btf(
    case: &Case,
    kernel: &dyn Syscalls,
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

fn judge(step: &Step, actual: Actual, version: KernelVersion) -> StepResult {
    // This binary runs on its own architecture's kernels only.
    let arch = crate::vm::Arch::host().unwrap_or_default();
    let variant = step.expect.for_kernel(version, arch);
    let (expected, reason, since) = match variant {
        Some(v) => (v.outcome.clone(), v.reason.clone(), v.range.since),
        None => unreachable!("validation makes variants cover every kernel a case runs on"),
    };
    StepResult {
        line: step.line,
        reason,
        since,
        ..StepResult::judged(step.id.clone(), step.label.clone(), expected, actual)
    }
}

/// The outcome of a call that returns nothing but its status.
pub(super) fn status(result: Result<(), sys::Errno>) -> Actual {
    match result {
        Ok(()) => Actual::Ok,
        Err(errno) => Actual::errno(errno),
    }
}

impl<'c> World<'c> {
    pub(super) fn new(
        case: &'c Case,
        kernel: &'c dyn Syscalls,
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

    pub(super) fn remember_map_id(&mut self, name: &str) {
        if let Ok(fd) = self.map_fd(name)
            && let Ok(id) = self.kernel.map_id(fd)
        {
            self.map_ids.insert(name.to_string(), id);
        }
    }

    /// Every step of the case, in order, judged against the expectation for `version`.
    pub(super) fn run_all(&mut self, version: KernelVersion) -> Vec<StepResult> {
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
        let (actual, children) = self.perform(step);
        let mut result = judge(step, actual, version);
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
                result = judge(step, self.perform(step).0, version);
            }
        }
        out.push(result);
        for (child, actual) in step.children.iter().zip(children) {
            out.push(judge(child, actual, version));
        }
    }

    /// The step's outcome and, for a fork, each of its children's.
    fn perform(&mut self, step: &Step) -> (Actual, Vec<Actual>) {
        let performed = match &step.action {
            Action::Maps(action) => maps::perform(self, action),
            Action::Sockets(action) => sockets::perform(self, action),
            Action::Programs(action) => programs::perform(self, action),
            Action::Threads(action) => threads::perform(self, action),
            Action::Inspect(action) => inspect::perform(self, action),
            Action::Process(action) => return process::perform(self, action, &step.children),
        };
        let (Ok(actual) | Err(actual)) = performed;
        (actual, Vec::new())
    }

    /// The action's call, made ready to run where nothing may allocate.
    pub(super) fn prepare(&self, action: &Action) -> Result<Prepared, Actual> {
        match action {
            Action::Maps(action) => maps::prepare(self, action),
            Action::Sockets(action) => sockets::prepare(self, action),
            _ => Err(Actual::NotRun {
                reason: "only element operations and close run where nothing may allocate".into(),
            }),
        }
    }

    /// The outcome of the action's prepared call, from what the call returned.
    pub(super) fn prepared_outcome(
        &self,
        action: &Action,
        result: Result<&[u8], sys::Errno>,
    ) -> Actual {
        match action {
            Action::Maps(action) => maps::prepared_outcome(self, action, result),
            _ => status(result.map(drop)),
        }
    }

    pub(super) fn map_fd(&self, map: &str) -> Result<RawFd, Actual> {
        if let Some(storage) = self.case.maps[map].bpf {
            return self.object().map_fd(storage).map_err(|e| Actual::NotRun {
                reason: crate::error_chain(&e),
            });
        }
        self.maps
            .get(map)
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| Actual::NotRun {
                reason: format!("map {map} was not created"),
            })
    }

    pub(super) fn socket_fd(&self, name: &str) -> Result<RawFd, Actual> {
        self.fds
            .get(name)
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| Actual::NotRun {
                reason: format!("socket {name} was not created"),
            })
    }

    /// The key's descriptor number; `None`: a NULL key.
    pub(super) fn key_fd(&self, key: &KeyRef) -> Result<Option<RawFd>, Actual> {
        match key {
            KeyRef::Null => Ok(None),
            KeyRef::Open(name) => self.socket_fd(name).map(Some),
            KeyRef::Closed(name) => {
                let fd = *self.closed.get(name).ok_or_else(|| Actual::NotRun {
                    reason: format!("socket {name} was never open"),
                })?;
                if sockets::is_open(fd) {
                    return Err(Actual::NotRun {
                        reason: format!("fd {fd}, which {name} had, is open again"),
                    });
                }
                Ok(Some(fd))
            }
            KeyRef::Raw(fd) if *fd >= 0 && sockets::is_open(*fd) => Err(Actual::NotRun {
                reason: format!("fd {fd} is open in the executor, so it is not a stray number"),
            }),
            KeyRef::Raw(fd) => Ok(Some(*fd)),
        }
    }

    /// The eBPF object, which a case with programs, object maps or an iterator loads.
    pub(super) fn object(&self) -> &programs::CaseBpf {
        self.bpf
            .as_ref()
            .expect("a case with programs, object maps or an iterator loads the object")
    }

    pub(super) fn object_mut(&mut self) -> &mut programs::CaseBpf {
        self.bpf
            .as_mut()
            .expect("a case with programs, object maps or an iterator loads the object")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use aya_obj::generated::bpf_cmd;

    use super::*;
    use crate::exec::sys::scripted::Scripted;

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
    fn socket_steps_go_through_the_seam_with_the_descriptors_the_case_named() {
        let case = case(
            "name: x\ndescription: d\nsockets:\n  tx: { family: unix, type: stream, socketpair: true }\n\
             \x20 rx: { pair_of: tx }\nsteps:\n\
             \x20 - send: { socket: tx, bytes: 3 }\n    expect: ok\n\
             \x20 - recv: { socket: rx, bytes: 3 }\n    expect: ok\n\
             \x20 - shutdown: { socket: tx, how: write }\n    expect: ok\n\
             \x20 - send: { socket: tx, bytes: 1 }\n    expect: EPIPE\n\
             \x20 - close: rx\n    expect: ok\n",
        );
        let kernel = Scripted::default();
        let running = LeftBehind::default();
        let mut world = World::new(&case, &kernel, None, &running);
        let results = world.run_all(KernelVersion::new(6, 1, 0));
        assert!(
            results.iter().all(|r| r.verdict == Verdict::Pass),
            "{results:#?}"
        );
        let (tx, rx) = (world.fds["tx"].as_raw_fd(), world.closed["rx"]);
        assert_eq!(
            *kernel.socket_calls.lock().unwrap(),
            [
                ("send", tx),
                ("recv", rx),
                ("shutdown", tx),
                ("send", tx),
                ("close", rx)
            ]
        );
    }

    #[test]
    fn threads_run_their_prepared_calls_and_count_the_outcomes() {
        let case = case(
            "name: x\ndescription: d\nmaps:\n  store: { value: u32 }\n\
             sockets:\n  s: { family: inet }\nsteps:\n\
             \x20 - threads:\n      - count: 2\n        repeat: 3\n        steps:\n\
             \x20         - lookup: { map: store, socket: s }\n\
             \x20   expect: { counts: { lookup: { ok: 6 } } }\n",
        );
        let kernel = Scripted::default();
        let running = LeftBehind::default();
        let results =
            World::new(&case, &kernel, None, &running).run_all(KernelVersion::new(6, 1, 0));
        assert!(
            results.iter().all(|r| r.verdict == Verdict::Pass),
            "{results:#?}"
        );
        let calls = kernel.elem_calls.lock().unwrap();
        assert_eq!(calls.len(), 6);
        assert!(calls.iter().all(|c| c.0 == bpf_cmd::BPF_MAP_LOOKUP_ELEM));
    }
}
