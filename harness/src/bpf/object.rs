//! The embedded eBPF object, loaded once per case so its maps start empty: parameters in,
//! programs loaded and attached, observations out, storage maps shared with userspace.

use std::{collections::BTreeMap, io, os::fd::AsFd, os::fd::BorrowedFd, sync::OnceLock};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{Array, Map, MapData, MapError, Queue, SkStorage},
    programs::{Iter, Program, ProgramError},
};
use aya_obj::{btf::BtfKind, generated::BPF_F_NO_PREALLOC};
use sk_storage_common::{CallList, HelperRecord, ProgramConfig, SocketStorage, map_name};

use super::{
    attach::{self, LoadError, OwnedLink},
    btf_compat::{set_map_flags, widen_small_enums},
    cgroup::CaseCgroup,
    host::{HostError, raise_memlock_limit},
    observation::{Observation, ObservationError},
};
use crate::catalogue::{
    AttachPoint, HelperSet, ParamsError, ProgramKind, ProgramParams, StorageMap,
};

/// Built by harness/build.rs (aya-build, nightly, bpf-linker with BTF); empty when the
/// build ran with AYA_BUILD_SKIP.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sk-storage-ebpf"));

/// Size of the embedded eBPF object in bytes.
pub fn object_size() -> usize {
    OBJECT.len()
}

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error(
        "this harness binary was built without its eBPF object (AYA_BUILD_SKIP); run scripts/setup-bpf.sh and rebuild without AYA_BUILD_SKIP"
    )]
    NotBuilt,
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("cannot make the eBPF object's BTF loadable on older kernels: {0}")]
    BtfCompat(String),
    #[error("cannot load the eBPF object (its maps are created at this point); are you root?")]
    Load(#[source] EbpfError),
    #[error(
        "the eBPF object has no {what} named {name}; the embedded object and the loader disagree, rebuild the harness"
    )]
    Missing { what: &'static str, name: String },
    #[error("map {name} of the eBPF object")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The kernel refused the program at `BPF_PROG_LOAD`: an outcome cases can expect.
    #[error(
        "the kernel rejected program {program} ({helpers} helpers, {section}) at load with {errno}{hint}\nverifier log:\n{verifier_log}"
    )]
    Rejected {
        program: ProgramKind,
        helpers: HelperSet,
        section: &'static str,
        /// The errno name, e.g. `EACCES` (verifier) or `EINVAL`.
        errno: String,
        /// The verifier's log; empty when the kernel refused before verifying.
        verifier_log: String,
        /// An explanation for known refusals that have no verifier log.
        hint: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot {action} program {program} ({section})")]
    Program {
        program: ProgramKind,
        section: &'static str,
        action: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error(
        "cannot read the kernel's BTF (/sys/kernel/btf/vmlinux), which {program} needs to find its attach point: {reason}"
    )]
    KernelBtf {
        program: ProgramKind,
        /// The parse error, kept as text: the parse is shared by the whole process.
        reason: String,
    },
    #[error("program {program} is not attached")]
    NotAttached { program: ProgramKind },
    #[error("program {program} is already attached; detach it first")]
    AlreadyAttached { program: ProgramKind },
    #[error(transparent)]
    Observation(#[from] ObservationError),
    #[error(
        "cannot read the kernel's BTF (/sys/kernel/btf/vmlinux), which the sk storage map iterator attaches by: {0}"
    )]
    IteratorBtf(String),
    /// The kernel refused the iterator program at `BPF_PROG_LOAD`, as [`BpfError::Rejected`].
    #[error(
        "the kernel rejected the sk storage map iterator ({ITERATOR_SECTION}) at load with {errno}\nverifier log:\n{verifier_log}"
    )]
    IteratorRejected {
        errno: String,
        verifier_log: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot {action} the sk storage map iterator ({ITERATOR_SECTION})")]
    Iterator {
        action: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error(
        "{lost} program runs found the record queue full and their records are lost; the case produced too much traffic (the queue holds 4,096 records)"
    )]
    RecordsLost { lost: u64 },
}

impl BpfError {
    fn missing_map(name: &str) -> Self {
        Self::Missing {
            what: "map",
            name: name.into(),
        }
    }

    /// The verifier log of a rejected program.
    pub fn verifier_log(&self) -> Option<&str> {
        match self {
            Self::Rejected { verifier_log, .. } => Some(verifier_log),
            _ => None,
        }
    }
}

/// Shown with a rejection that has no verifier log: the kernel refused to set up the
/// program before verifying it.
fn rejection_hint(program: ProgramKind, verifier_log: &str) -> &'static str {
    if !verifier_log.trim().is_empty() {
        return "";
    }
    match program.attach_point() {
        AttachPoint::Cgroup(_) => " (no verifier log: the kernel refused before verifying)",
        AttachPoint::Fentry(_) | AttachPoint::Fexit(_) | AttachPoint::Lsm(_) => {
            " (no verifier log: the kernel refused before verifying; tracing and LSM programs need BPF trampolines, which kernels without CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS do not offer; run this case on another kernel)"
        }
    }
}

/// One instance of the eBPF object: fresh maps, programs loaded and attached on request.
/// Dropping it detaches every program and frees the maps (and with them every socket's
/// storage in them).
pub struct SkStorageObject {
    /// Declared first so links are dropped (detached) before the programs are unloaded.
    links: BTreeMap<ProgramKind, OwnedLink>,
    records: Queue<MapData, HelperRecord>,
    lost_reported: u64,
    ebpf: Ebpf,
}

impl SkStorageObject {
    /// Loads the object: creates its maps (empty). Programs are loaded separately so a
    /// rejected program is a result of its own and does not prevent the others.
    ///
    /// `clone_flag`: whether the kernel accepts `BPF_F_CLONE`. Without it the object's clone
    /// twin is created as a plain NO_PREALLOC map (the kernel would refuse the whole object
    /// otherwise), and cases must not use it.
    pub fn load(clone_flag: bool) -> Result<Self, BpfError> {
        if OBJECT.is_empty() {
            return Err(BpfError::NotBuilt);
        }
        raise_memlock_limit()?;
        // The kernel's BTF (several MB) is parsed once per process, not once per case:
        // under TCG that parse dominated every case's time.
        let object = compatible_object(clone_flag)
            .as_ref()
            .map_err(|e| BpfError::BtfCompat(e.clone()))?;
        let mut ebpf = EbpfLoader::new()
            .btf(attach::kernel_btf().as_ref().ok())
            .load(object)
            .map_err(BpfError::Load)?;
        let records = ebpf
            .take_map(map_name::RECORDS)
            .ok_or_else(|| BpfError::missing_map(map_name::RECORDS))
            .and_then(|map| {
                Queue::try_from(map).map_err(|source| BpfError::Map {
                    name: map_name::RECORDS,
                    source,
                })
            })?;
        Ok(Self {
            links: BTreeMap::new(),
            records,
            lost_reported: 0,
            ebpf,
        })
    }

    /// Writes what `program` does when it runs. Takes effect for its next runs, so it can
    /// also change between steps of a case, as long as the calls keep the helper set of
    /// the program loaded ([`ProgramCalls::helper_set`](crate::catalogue::ProgramCalls::helper_set)).
    pub fn set_params(
        &mut self,
        program: ProgramKind,
        params: &ProgramParams,
    ) -> Result<(), BpfError> {
        let (config, sock_ops_lists) = params.to_config(program)?;
        let name = map_name::PROGRAM_CONFIG;
        let mut configs: Array<&mut MapData, ProgramConfig> = self.map_mut(name)?;
        configs
            .set(program.id(), config, 0)
            .map_err(|source| BpfError::Map { name, source })?;
        let Some(lists) = sock_ops_lists else {
            return Ok(());
        };
        let name = map_name::SOCK_OPS_CALLS;
        let mut per_op: Array<&mut MapData, CallList> = self.map_mut(name)?;
        for (op, list) in (0u32..).zip(lists) {
            per_op
                .set(op, list, 0)
                .map_err(|source| BpfError::Map { name, source })?;
        }
        Ok(())
    }

    /// Loads the program of hook `program` that contains the helper calls of `helpers`
    /// (`BPF_PROG_LOAD`). A verifier rejection is [`BpfError::Rejected`] with the verifier
    /// log.
    pub fn load_program(
        &mut self,
        program: ProgramKind,
        helpers: HelperSet,
    ) -> Result<(), BpfError> {
        let handle = program_handle(&mut self.ebpf, program, helpers)?;
        attach::load(handle, program.attach_point(), attach::kernel_btf()).map_err(|e| match e {
            LoadError::KernelBtf(reason) => BpfError::KernelBtf { program, reason },
            LoadError::Program(ProgramError::LoadError {
                io_error,
                verifier_log,
            }) => {
                let verifier_log = verifier_log.to_string();
                BpfError::Rejected {
                    program,
                    helpers,
                    section: program.section(),
                    errno: errno_name(&io_error),
                    hint: rejection_hint(program, &verifier_log),
                    verifier_log,
                    source: io_error,
                }
            }
            LoadError::Program(other) => program_error(program, "load", other),
        })
    }

    /// Attaches a loaded program (one per hook at a time): cgroup programs to `cgroup`
    /// (several programs may share an attach point), tracing and LSM programs globally
    /// (filter them with `ProgramParams::only_thread` / `only_port`).
    pub fn attach(
        &mut self,
        program: ProgramKind,
        helpers: HelperSet,
        cgroup: &CaseCgroup,
    ) -> Result<(), BpfError> {
        if self.links.contains_key(&program) {
            return Err(BpfError::AlreadyAttached { program });
        }
        let handle = program_handle(&mut self.ebpf, program, helpers)?;
        let link = attach::attach(handle, program.attach_point(), cgroup)
            .map_err(|e| program_error(program, "attach", e))?;
        self.links.insert(program, link);
        Ok(())
    }

    /// Detaches the hook's attached program; it stays loaded and can be attached again.
    pub fn detach(&mut self, program: ProgramKind) -> Result<(), BpfError> {
        let link = self
            .links
            .remove(&program)
            .ok_or(BpfError::NotAttached { program })?;
        link.detach()
            .map_err(|e| program_error(program, "detach", e))
    }

    /// Everything the programs reported since the last call, in the order the runs
    /// pushed their records. A run that happens in softirq context (e.g. the ACK that
    /// completes a handshake) may land after the syscall that caused it returned: take
    /// observations after a synchronising step (accept, recv, close).
    pub fn take_observations(&mut self) -> Result<Vec<Observation>, BpfError> {
        let mut observations = Vec::new();
        loop {
            match self.records.pop(0) {
                Ok(record) => observations.push(Observation::from_record(&record)?),
                Err(MapError::ElementNotFound) => break,
                Err(source) => {
                    return Err(BpfError::Map {
                        name: map_name::RECORDS,
                        source,
                    });
                }
            }
        }
        let lost = self.lost_records()?;
        if lost > self.lost_reported {
            self.lost_reported = lost;
            return Err(BpfError::RecordsLost { lost });
        }
        Ok(observations)
    }

    fn lost_records(&self) -> Result<u64, BpfError> {
        let name = map_name::LOST_RECORDS;
        let lost: Array<&MapData, u64> = self.map(name)?;
        lost.get(&0, 0)
            .map_err(|source| BpfError::Map { name, source })
    }

    /// The object's map `name` as the aya type `M` (an `Array`, an `SkStorage`…).
    fn map<'a, M>(&'a self, name: &'static str) -> Result<M, BpfError>
    where
        M: TryFrom<&'a Map, Error = MapError>,
    {
        let map = self
            .ebpf
            .map(name)
            .ok_or_else(|| BpfError::missing_map(name))?;
        M::try_from(map).map_err(|source| BpfError::Map { name, source })
    }

    /// [`Self::map`] for writing.
    fn map_mut<'a, M>(&'a mut self, name: &'static str) -> Result<M, BpfError>
    where
        M: TryFrom<&'a mut Map, Error = MapError>,
    {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| BpfError::missing_map(name))?;
        M::try_from(map).map_err(|source| BpfError::Map { name, source })
    }

    /// The storage map for lookups by socket fd from userspace (the same storage the
    /// programs see).
    pub fn storage(&self, map: StorageMap) -> Result<SkStorage<&MapData, SocketStorage>, BpfError> {
        self.map(map.map_name())
    }

    /// The storage map for updates and deletes by socket fd from userspace.
    pub fn storage_mut(
        &mut self,
        map: StorageMap,
    ) -> Result<SkStorage<&mut MapData, SocketStorage>, BpfError> {
        self.map_mut(map.map_name())
    }

    /// The sk storage map iterator program, loaded on first use (BPF_PROG_LOAD with
    /// BPF_TRACE_ITER); attach it to a map with a `BPF_LINK_CREATE` that names the map.
    pub fn iterator_program(&mut self) -> Result<BorrowedFd<'_>, BpfError> {
        let handle = self
            .ebpf
            .program_mut(ITERATOR_PROGRAM)
            .ok_or(BpfError::Missing {
                what: "program",
                name: ITERATOR_PROGRAM.to_string(),
            })?;
        let error = |action| move |source| BpfError::Iterator { action, source };
        let iter = <&mut Iter>::try_from(handle).map_err(error("find"))?;
        if iter.fd().is_err() {
            let btf = attach::kernel_btf()
                .as_ref()
                .map_err(|reason| BpfError::IteratorBtf(reason.clone()))?;
            iter.load("bpf_sk_storage_map", btf).map_err(|e| match e {
                ProgramError::LoadError {
                    io_error,
                    verifier_log,
                } => BpfError::IteratorRejected {
                    errno: errno_name(&io_error),
                    verifier_log: verifier_log.to_string(),
                    source: io_error,
                },
                other => error("load")(other),
            })?;
        }
        Ok(iter.fd().map_err(error("load"))?.as_fd())
    }

    /// The storage map's fd, for raw `bpf(2)` calls that need every errno.
    pub fn storage_fd(&self, map: StorageMap) -> Result<BorrowedFd<'_>, BpfError> {
        let name = map.map_name();
        match self.ebpf.map(name) {
            Some(Map::SkStorage(data)) => Ok(data.fd().as_fd()),
            _ => Err(BpfError::Missing {
                what: "SK_STORAGE map",
                name: name.into(),
            }),
        }
    }
}

/// `EPERM`, or the error's text when it carries no errno.
fn errno_name(error: &io::Error) -> String {
    error
        .raw_os_error()
        .map_or_else(|| error.to_string(), crate::errno::name)
}

/// The object's iterator over SK_STORAGE maps, which `iterate` steps attach to a map.
const ITERATOR_PROGRAM: &str = "sk_storage_iter";
const ITERATOR_SECTION: &str = "iter/bpf_sk_storage_map";
/// The kernel function an sk storage map iterator attaches to, by BTF
/// (`DEFINE_BPF_ITER_FUNC(bpf_sk_storage_map, …)` in net/core/bpf_sk_storage.c).
const ITERATOR_TARGET: &str = "bpf_iter_bpf_sk_storage_map";

/// Why the sk storage map iterator cannot run on this kernel, if it cannot: it attaches by
/// kernel BTF, to a target that 5.9 added (commit 5ce6e77c9edf "bpf: Implement bpf
/// iterator for sock local storage map"). Probed in the kernel's BTF, not by version.
pub fn iterator_unsupported() -> Option<String> {
    match attach::kernel_btf() {
        Err(reason) => Some(format!(
            "the sk storage map iterator attaches by kernel BTF, which cannot be read here (/sys/kernel/btf/vmlinux): {reason}"
        )),
        Ok(btf) => btf
            .id_by_type_name_kind(ITERATOR_TARGET, BtfKind::Func)
            .err()
            .map(|_| {
                format!(
                    "this kernel has no sk storage map iterator: its BTF has no {ITERATOR_TARGET} (added in 5.9, commit 5ce6e77c9edf)"
                )
            }),
    }
}

/// The embedded object with BTF every kernel from 5.2 accepts and, without `clone_flag`,
/// its clone twin made a plain map; each variant prepared once per process.
fn compatible_object(clone_flag: bool) -> &'static Result<Vec<u8>, String> {
    static OBJECT_BYTES: [OnceLock<Result<Vec<u8>, String>>; 2] =
        [OnceLock::new(), OnceLock::new()];
    OBJECT_BYTES[usize::from(clone_flag)].get_or_init(|| {
        let widened = widen_small_enums(OBJECT).map_err(|e| e.to_string())?;
        if clone_flag {
            return Ok(widened);
        }
        set_map_flags(&widened, map_name::STORAGE_CLONE, BPF_F_NO_PREALLOC)
            .map_err(|e| e.to_string())
    })
}

fn program_handle(
    ebpf: &mut Ebpf,
    program: ProgramKind,
    helpers: HelperSet,
) -> Result<&mut Program, BpfError> {
    let name = helpers.object_name(program);
    ebpf.program_mut(&name).ok_or(BpfError::Missing {
        what: "program",
        name,
    })
}

fn program_error(program: ProgramKind, action: &'static str, source: ProgramError) -> BpfError {
    BpfError::Program {
        program,
        section: program.section(),
        action,
        source,
    }
}

#[cfg(test)]
mod tests {
    use aya_obj::{Object, generated::bpf_insn};
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

    use super::OBJECT;
    use crate::catalogue::{Call, F_CREATE, HelperSet, ProgramCalls, ProgramKind};

    const BPF_CALL: u8 = 0x85;
    /// `src_reg` of a call to a BPF function of the object (a helper call has 0).
    const BPF_PSEUDO_CALL: u8 = 1;
    const SK_STORAGE_GET: i32 = 107;
    const SK_STORAGE_DELETE: i32 = 108;

    fn parsed() -> Option<Object> {
        if OBJECT.is_empty() {
            eprintln!("skipping: the harness was built without its eBPF object (AYA_BUILD_SKIP)");
            return None;
        }
        Some(Object::parse(OBJECT).expect("parse the embedded object"))
    }

    fn instructions<'a>(object: &'a Object, name: &str) -> &'a [bpf_insn] {
        let program = object
            .programs
            .get(name)
            .unwrap_or_else(|| panic!("the object has no program {name}"));
        &object.functions[&program.function_key()].instructions
    }

    fn helper_calls(instructions: &[bpf_insn]) -> Vec<i32> {
        instructions
            .iter()
            .filter(|insn| insn.code == BPF_CALL && insn.src_reg() == 0)
            .map(|insn| insn.imm)
            .collect()
    }

    #[test]
    fn a_get_and_write_list_loads_the_get_only_program_which_has_no_delete_call() {
        let Some(object) = parsed() else { return };
        let calls = ProgramCalls::EachRun(vec![
            Call::Get {
                flags: F_CREATE,
                init: None,
            },
            Call::Write { value: 7 },
        ]);
        let helpers = calls.helper_set().expect("helper set");
        assert_eq!(helpers, HelperSet::Get);
        for &kind in ProgramKind::ALL {
            let name = helpers.object_name(kind);
            let calls = helper_calls(instructions(&object, &name));
            assert!(calls.contains(&SK_STORAGE_GET), "{name}: {calls:?}");
            assert!(!calls.contains(&SK_STORAGE_DELETE), "{name}: {calls:?}");
        }
    }

    #[test]
    fn every_hook_has_one_program_per_helper_set_with_exactly_its_helpers() {
        let Some(object) = parsed() else { return };
        for &kind in ProgramKind::ALL {
            for helpers in HelperSet::ALL {
                let name = helpers.object_name(kind);
                let instructions = instructions(&object, &name);
                let calls = helper_calls(instructions);
                let (get, delete) = match helpers {
                    HelperSet::Get => (true, false),
                    HelperSet::Delete => (false, true),
                    HelperSet::GetDelete => (true, true),
                };
                assert_eq!(calls.contains(&SK_STORAGE_GET), get, "{name}: {calls:?}");
                assert_eq!(
                    calls.contains(&SK_STORAGE_DELETE),
                    delete,
                    "{name}: {calls:?}"
                );
                // Everything inlined: kernels before 5.3 reject back-edges, and older ones
                // restrict BPF-to-BPF calls with these pointer types.
                assert!(
                    !instructions
                        .iter()
                        .any(|insn| insn.code == BPF_CALL && insn.src_reg() == BPF_PSEUDO_CALL),
                    "{name} calls another BPF function"
                );
                // 5.2 loads at most 4,096 instructions per program.
                assert!(
                    instructions.len() < 2048,
                    "{name}: {} instructions",
                    instructions.len()
                );
            }
        }
    }

    #[test]
    fn every_hook_s_programs_are_in_the_section_its_table_entry_names() {
        if parsed().is_none() {
            return;
        }
        let elf = object::File::parse(OBJECT).expect("parse the embedded object as ELF");
        for &kind in ProgramKind::ALL {
            for helpers in HelperSet::ALL {
                let name = helpers.object_name(kind);
                let section = elf
                    .symbol_by_name(&name)
                    .and_then(|symbol| symbol.section_index())
                    .and_then(|index| elf.section_by_index(index).ok())
                    .unwrap_or_else(|| panic!("the object has no program {name}"));
                assert_eq!(section.name(), Ok(kind.section()), "{name}");
            }
        }
    }
}
