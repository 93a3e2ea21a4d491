//! What a running case holds: its maps, sockets and eBPF object, and the names the steps
//! reach them by.

use std::{
    collections::HashMap,
    os::fd::{AsRawFd, OwnedFd, RawFd},
};

use super::{
    btf, case_bpf,
    isolation::LeftBehind,
    sys::{self, Syscalls},
};
use crate::{
    case::{Case, KeyRef},
    results::Actual,
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
    pub(super) keys: case_bpf::SocketKeys,
    /// The eBPF object, when the case uses programs or the object's maps.
    pub(super) bpf: Option<case_bpf::CaseBpf>,
    /// Set when the case ran out of time: it stops before its next step.
    pub(super) left_behind: &'c LeftBehind,
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
        bpf: Option<case_bpf::CaseBpf>,
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
            keys: case_bpf::SocketKeys::default(),
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
                if sys::is_open(fd) {
                    return Err(Actual::NotRun {
                        reason: format!("fd {fd}, which {name} had, is open again"),
                    });
                }
                Ok(Some(fd))
            }
            KeyRef::Raw(fd) if *fd >= 0 && sys::is_open(*fd) => Err(Actual::NotRun {
                reason: format!("fd {fd} is open in the executor, so it is not a stray number"),
            }),
            KeyRef::Raw(fd) => Ok(Some(*fd)),
        }
    }

    /// The eBPF object, which a case with programs, object maps or an iterator loads.
    pub(super) fn object(&self) -> &case_bpf::CaseBpf {
        self.bpf
            .as_ref()
            .expect("a case with programs, object maps or an iterator loads the object")
    }

    pub(super) fn object_mut(&mut self) -> &mut case_bpf::CaseBpf {
        self.bpf
            .as_mut()
            .expect("a case with programs, object maps or an iterator loads the object")
    }
}
