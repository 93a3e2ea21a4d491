//! The BPF side of a running case: the eBPF object loaded for it (fresh maps), its cgroup,
//! its programs' parameters, and the records they sent, observed in order.

use std::{
    collections::{HashMap, HashSet},
    os::fd::{AsFd, AsRawFd, RawFd},
    sync::{Mutex, OnceLock, PoisonError},
};

use aya::{programs::ProgramError, sys::SyscallError};
use aya_obj::generated::{BPF_F_CLONE, BPF_F_NO_PREALLOC};

use super::sys::{Kernel, MapSyscalls};

use crate::{
    bpf::{
        BpfError, CallOutcome, CaseCgroup, CgroupError, DeleteResult, GetResult, HostSupport,
        Observation, SkStorageObject, SocketKey, WriteResult,
    },
    case::{Case, Type},
    catalogue::{HelperSet, ProgramKind, SockOpsOp, StorageMap},
    results::{Actual, ObservedCall, ObservedDelete, ObservedGet, ObservedWrite},
};

/// What the running kernel supports, probed once per process.
fn host_support() -> &'static HostSupport {
    static HOST: OnceLock<HostSupport> = OnceLock::new();
    HOST.get_or_init(HostSupport::probe)
}

/// Whether the kernel accepts `BPF_F_CLONE` on an SK_STORAGE map (it refuses the flag
/// with EINVAL where it does not know it), probed once per process.
fn kernel_accepts_clone_flag() -> bool {
    static ACCEPTS: OnceLock<bool> = OnceLock::new();
    *ACCEPTS.get_or_init(|| {
        let int = Type::Int {
            bytes: 4,
            signed: true,
        };
        let types = super::btf::map_types(&int, &int);
        let Ok(btf) = Kernel.load_btf(&types.blob) else {
            // No map could be created either way; let the object's load say why.
            return true;
        };
        let attrs = super::sys::MapAttrs {
            key_size: 4,
            value_size: 4,
            max_entries: 0,
            map_flags: BPF_F_NO_PREALLOC | BPF_F_CLONE,
            btf: Some(super::sys::MapBtf {
                fd: &btf,
                key_type_id: types.key_type_id,
                value_type_id: types.value_type_id,
            }),
        };
        !matches!(Kernel.create_sk_storage_map(&attrs), Err(libc::EINVAL))
    })
}

/// Why `case` cannot run its programs on this kernel, if it cannot.
pub fn unmet(case: &Case) -> Option<String> {
    let uses_clone_map = case.maps.values().any(|m| m.bpf == Some(StorageMap::Clone))
        || case
            .programs
            .values()
            .any(|p| p.params.map == StorageMap::Clone);
    if uses_clone_map && !kernel_accepts_clone_flag() {
        return Some(
            "this kernel refuses BPF_F_CLONE (EINVAL creating an SK_STORAGE map with it), so the eBPF object has no clone map here".into(),
        );
    }
    if iterates(case)
        && let Some(reason) = crate::bpf::iterator_unsupported()
    {
        return Some(reason);
    }
    if case.programs.is_empty() {
        return None;
    }
    let host = host_support();
    case.programs
        .values()
        .find_map(|p| host.runnable(p.kind).err())
        .map(|reason| reason.0)
}

/// The errno of a bpf(2) call the kernel refused, such as an attach (arm64 before 6.4
/// refuses tracing and LSM trampolines with ENOTSUPP): an outcome cases can expect, unlike
/// the harness's own failures.
fn refused_with(error: &BpfError) -> Option<i32> {
    match error {
        BpfError::Program {
            source: ProgramError::SyscallError(SyscallError { io_error, .. }),
            ..
        } => io_error.raw_os_error(),
        _ => None,
    }
}

/// Whether the case attaches the object's iterator to a map.
fn iterates(case: &Case) -> bool {
    case.steps.iter().any(|step| {
        matches!(
            step.action,
            crate::case::Action::Inspect(crate::case::steps::InspectAction::Iterate { .. })
        )
    })
}

/// The eBPF object, loaded once per process and lent to one case at a time.
///
/// Loading it (and verifying its programs) is most of a BPF case's cost, tenfold under
/// TCG. Sharing it keeps cases independent: sk storage lives in the sockets, which all
/// close when their case ends; each case sets its programs' parameters, drains records
/// left from before it, and detaches what it attached.
///
/// A case takes the object out of [`OBJECT`] and gives it back when it finishes. One that
/// panicked or was left behind after its timeout gives nothing back (a panicked case's
/// object is dropped, detaching what it attached), and the next case loads a fresh one.
struct SharedObject {
    object: SkStorageObject,
    /// Programs that passed the verifier in an earlier case.
    loaded: HashSet<(ProgramKind, HelperSet)>,
}

static OBJECT: Mutex<Option<SharedObject>> = Mutex::new(None);

/// Why the object could not be lent to a case or given back, or a socket not made in the
/// case's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

pub struct CaseBpf {
    shared: SharedObject,
    attached: Vec<ProgramKind>,
    cgroup: Option<CaseCgroup>,
    records: Vec<Observation>,
    observed: Vec<bool>,
}

impl CaseBpf {
    /// Lends the object to `case` when it uses programs or the object's maps.
    pub fn start(case: &Case) -> Result<Option<Self>, ObjectError> {
        let uses_object = !case.programs.is_empty()
            || case.maps.values().any(|m| m.bpf.is_some())
            || iterates(case);
        if !uses_object {
            return Ok(None);
        }
        let lent = OBJECT.lock().unwrap_or_else(PoisonError::into_inner).take();
        let mut shared = match lent {
            Some(shared) => shared,
            None => SharedObject {
                object: SkStorageObject::load(kernel_accepts_clone_flag())?,
                loaded: HashSet::new(),
            },
        };
        let object = &mut shared.object;
        object.take_observations()?;
        let thread = nix::unistd::gettid().as_raw() as u32;
        for program in case.programs.values() {
            // Tracing and LSM programs see every socket of the machine: only this case's
            // thread counts.
            let mut params = program.params.clone();
            params.only_thread = Some(thread);
            object.set_params(program.kind, &params)?;
        }
        let cgroup = if case.programs.is_empty() {
            None
        } else {
            Some(CaseCgroup::create(&case.name)?)
        };
        Ok(Some(Self {
            shared,
            attached: Vec::new(),
            cgroup,
            records: Vec::new(),
            observed: Vec::new(),
        }))
    }

    fn object(&mut self) -> &mut SkStorageObject {
        &mut self.shared.object
    }

    /// Runs `create` inside the case's cgroup, so the sockets it makes belong to it.
    pub fn in_cgroup<T>(&self, create: impl FnOnce() -> T) -> Result<T, CgroupError> {
        match &self.cgroup {
            Some(cgroup) => {
                let _inside = cgroup.enter()?;
                Ok(create())
            }
            None => Ok(create()),
        }
    }

    pub fn map_fd(&self, map: StorageMap) -> Result<RawFd, BpfError> {
        self.shared
            .object
            .storage_fd(map)
            .map(|fd| fd.as_fd().as_raw_fd())
    }

    /// The sk storage map iterator program's fd (loaded on first use); a refusal at load
    /// is the step's outcome, as an attach's is.
    pub fn iterator_program(&mut self) -> Result<RawFd, Actual> {
        match self.object().iterator_program() {
            Ok(fd) => Ok(fd.as_raw_fd()),
            Err(BpfError::IteratorRejected {
                errno,
                verifier_log,
                ..
            }) => Err(Actual::Rejected {
                errno,
                message: verifier_message(&verifier_log),
            }),
            Err(e) => Err(Actual::NotRun {
                reason: crate::error_chain(&e),
            }),
        }
    }

    pub fn attach(&mut self, program: &crate::case::ProgramSpec) -> Actual {
        let shared = &mut self.shared;
        // The program whose helper calls are exactly those of the declared calls.
        let helpers = match program.params.calls.helper_set() {
            Ok(helpers) => helpers,
            Err(e) => {
                return Actual::NotRun {
                    reason: crate::error_chain(&e),
                };
            }
        };
        let variant = (program.kind, helpers);
        let load = if shared.loaded.contains(&variant) {
            Ok(())
        } else {
            shared.object.load_program(program.kind, helpers)
        };
        match load {
            Ok(()) => {
                shared.loaded.insert(variant);
            }
            Err(BpfError::Rejected {
                errno,
                verifier_log,
                ..
            }) => {
                return Actual::Rejected {
                    errno,
                    message: verifier_message(&verifier_log),
                };
            }
            Err(e) => {
                return Actual::NotRun {
                    reason: crate::error_chain(&e),
                };
            }
        }
        let Some(cgroup) = &self.cgroup else {
            unreachable!("a case with programs has a cgroup")
        };
        match shared.object.attach(program.kind, helpers, cgroup) {
            Ok(()) => {
                self.attached.push(program.kind);
                Actual::Ok
            }
            Err(e) => match refused_with(&e) {
                Some(errno) => Actual::errno(errno),
                None => Actual::NotRun {
                    reason: crate::error_chain(&e),
                },
            },
        }
    }

    pub fn detach(&mut self, program: &crate::case::ProgramSpec) -> Actual {
        match self.object().detach(program.kind) {
            Ok(()) => {
                self.attached.retain(|kind| *kind != program.kind);
                Actual::Ok
            }
            Err(e) => Actual::NotRun {
                reason: crate::error_chain(&e),
            },
        }
    }

    /// The first record of `program` about `socket` (and `callback`) not observed yet.
    pub fn observe(
        &mut self,
        program: &crate::case::ProgramSpec,
        socket: &SocketKey,
        callback: Option<SockOpsOp>,
    ) -> Actual {
        match self.object().take_observations() {
            Ok(new) => {
                self.observed.extend(new.iter().map(|_| false));
                self.records.extend(new);
            }
            Err(e) => {
                return Actual::NotRun {
                    reason: crate::error_chain(&e),
                };
            }
        }
        let found = self.records.iter().enumerate().position(|(i, record)| {
            !self.observed[i]
                && record.program == program.kind
                && callback.is_none_or(|cb| record.callback == Some(cb))
                && record.is_about(socket)
        });
        let Some(i) = found else {
            return Actual::NoRecord;
        };
        self.observed[i] = true;
        let record = &self.records[i];
        Actual::Observed {
            calls: record.calls.iter().map(observed_call).collect(),
            callback_args: record.callback_args,
        }
    }

    /// Detaches what the case attached, gives the object back and removes the cgroup; a
    /// program that cannot be detached or a cgroup left behind is reported.
    pub fn finish(mut self) -> Result<(), ObjectError> {
        let attached = std::mem::take(&mut self.attached);
        let mut detached = Ok(());
        for kind in attached {
            if let Err(e) = self.object().detach(kind) {
                detached = Err(e);
            }
        }
        let Self { shared, cgroup, .. } = self;
        // Another case's object may be there already when this case was left behind.
        OBJECT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(shared);
        detached?;
        match cgroup {
            Some(cgroup) => Ok(cgroup.remove()?),
            None => Ok(()),
        }
    }
}

fn observed_call(call: &CallOutcome) -> ObservedCall {
    match call {
        CallOutcome::Get(GetResult::NoSocket) => ObservedCall::Get(ObservedGet::NoSocket),
        CallOutcome::Get(GetResult::Null) => ObservedCall::Get(ObservedGet::Null),
        CallOutcome::Get(GetResult::Pointer { storage }) => {
            ObservedCall::Get(ObservedGet::Storage {
                storage: serde_json::json!({
                    "value": storage.value,
                    "events": storage.events,
                    "bytes": storage.bytes,
                }),
            })
        }
        CallOutcome::Delete(DeleteResult::NoSocket) => {
            ObservedCall::Delete(ObservedDelete::NoSocket)
        }
        CallOutcome::Delete(DeleteResult::Returned { value }) => {
            ObservedCall::Delete(ObservedDelete::Returned {
                value: i64::from(*value),
            })
        }
        CallOutcome::Write(WriteResult::Written) => ObservedCall::Write(ObservedWrite::Written),
        CallOutcome::Write(WriteResult::NoStorage) => ObservedCall::Write(ObservedWrite::NoStorage),
    }
}

/// The verifier's reason for a rejection: the line that follows the last instruction it
/// checked (`53: (85) call …`), which every kernel prints the same way, whereas what comes
/// after it (statistics, and from 7.x an explanation block) differs between kernels and
/// would hide real changes. Without an instruction trace, the last line that is not a
/// statistic.
fn verifier_message(log: &str) -> String {
    const STATISTICS: [&str; 5] = [
        "processed ",
        "verification time",
        "stack depth",
        "subprog ",
        "max_states_per_insn",
    ];
    let is_instruction = |line: &str| {
        line.split_once(": (").is_some_and(|(index, _)| {
            !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit())
        })
    };
    let lines: Vec<&str> = log.lines().collect();
    if let Some(last) = lines.iter().rposition(|line| is_instruction(line)) {
        let reason = lines[last + 1..]
            .iter()
            .map(|line| line.trim())
            .find(|line| !line.is_empty() && !line.starts_with(';'));
        if let Some(reason) = reason {
            return reason.to_string();
        }
    }
    lines
        .iter()
        .map(|line| line.trim())
        .rfind(|line| !line.is_empty() && !STATISTICS.iter().any(|s| line.starts_with(s)))
        .unwrap_or_default()
        .to_string()
}

/// Socket identities for matching records, kept for sockets that are closed by then.
#[derive(Default)]
pub struct SocketKeys(HashMap<String, SocketKey>);

impl SocketKeys {
    pub fn remember(&mut self, name: &str, fd: &impl AsFd) {
        if let Ok(key) = SocketKey::of(fd) {
            self.0.insert(name.to_string(), key);
        }
    }

    pub fn get(&self, name: &str) -> Option<&SocketKey> {
        self.0.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_message_is_the_reason_not_the_statistics() {
        let log = "53: (85) call bpf_sk_storage_delete#108\n\
                   program of this type cannot use helper bpf_sk_storage_delete#108\n\
                   verification time 56159 usec\nstack depth 136+0\n\
                   processed 317 insns (limit 1000000) max_states_per_insn 2\n";
        assert_eq!(
            verifier_message(log),
            "program of this type cannot use helper bpf_sk_storage_delete#108"
        );
        assert_eq!(verifier_message(""), "");
        // 7.x explains rejections at length after the classic line.
        let explained = "53: (85) call bpf_sk_storage_delete#108\n\
                         program of this type cannot use helper bpf_sk_storage_delete#108\n\n\
                         Verification failed: Policy: Operation is not allowed\n\
                         Instruction context:\n       53 | (85) call bpf_sk_storage_delete#108\n\
                         verification time 30233 usec\nsubprog 1 (memset) static insns_self 266\n";
        assert_eq!(
            verifier_message(explained),
            "program of this type cannot use helper bpf_sk_storage_delete#108"
        );
        let annotated = "63: (85) call bpf_sk_storage_get#107\n; fun(map, sk)\nunknown func bpf_sk_storage_get#107\n";
        assert_eq!(
            verifier_message(annotated),
            "unknown func bpf_sk_storage_get#107"
        );
    }
}
