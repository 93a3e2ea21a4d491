//! What a program does when it runs, as cases declare it: an ordered list of helper calls
//! per run (per callback for sock_ops); encoded into the object's `PROGRAM_CONFIG` slot
//! (and `SOCK_OPS_CALLS`) for the program before it runs.

use aya_obj::generated::{BPF_F_CLONE, BPF_F_NO_PREALLOC, BPF_LOCAL_STORAGE_GET_F_CREATE};
use serde::{Deserialize, Serialize};
use sk_storage_common::{
    CallList, CallSpec, ProgramConfig, call_op, helper_set, map_name, storage_map,
};

use super::{ProgramKind, SockOpsOp};

/// `BPF_LOCAL_STORAGE_GET_F_CREATE` (= `BPF_SK_STORAGE_GET_F_CREATE`).
pub const F_CREATE: u64 = BPF_LOCAL_STORAGE_GET_F_CREATE as u64;

/// The object's two SK_STORAGE maps (value type [`SocketStorage`](sk_storage_common::SocketStorage), int key, BTF).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageMap {
    /// `map_flags = BPF_F_NO_PREALLOC`.
    NoPrealloc,
    /// `map_flags = BPF_F_NO_PREALLOC | BPF_F_CLONE`: copied to sockets accept() returns.
    Clone,
}

impl StorageMap {
    pub const ALL: [StorageMap; 2] = [StorageMap::NoPrealloc, StorageMap::Clone];

    /// The map's name in the object.
    pub fn map_name(self) -> &'static str {
        match self {
            Self::NoPrealloc => map_name::STORAGE,
            Self::Clone => map_name::STORAGE_CLONE,
        }
    }

    /// The `map_flags` the map is created with.
    pub fn map_flags(self) -> u32 {
        match self {
            Self::NoPrealloc => BPF_F_NO_PREALLOC,
            Self::Clone => BPF_F_NO_PREALLOC | BPF_F_CLONE,
        }
    }

    pub(crate) fn id(self) -> u32 {
        match self {
            Self::NoPrealloc => storage_map::NO_PREALLOC,
            Self::Clone => storage_map::CLONE,
        }
    }

    pub(crate) fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|map| map.id() == id)
    }
}

/// Calls one program run makes, at most: see `sk_storage_common::MAX_CALLS`.
pub const MAX_CALLS: usize = sk_storage_common::MAX_CALLS;

/// One call of a run's list, made in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// `bpf_sk_storage_get(map, sk, value, flags)`.
    Get {
        /// 0, [`F_CREATE`], or anything else (which the kernel answers with NULL).
        flags: u64,
        /// `Some(v)`: pass a [`SocketStorage`](sk_storage_common::SocketStorage) `{ value: v, events: 0, bytes: 0 }` as
        /// `value`; `None`: pass NULL (a created storage is then zero-initialised).
        init: Option<u64>,
    },
    /// `bpf_sk_storage_delete(map, sk)`.
    Delete,
    /// Store `value` into the `value` field of the storage the most recent get of the run
    /// returned; not done (and recorded so) when that get returned NULL or none came
    /// before. After a delete of the run it lands in the deleted storage, unseen.
    Write { value: u64 },
}

/// The sock_ops program's calls on one callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackCalls {
    pub callback: SockOpsOp,
    pub calls: Vec<Call>,
}

/// The calls a program makes: sock_ops per callback (it runs on many callbacks of one
/// socket), every other program the same list on each run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramCalls {
    EachRun(Vec<Call>),
    /// sock_ops: the callbacks it acts on (records only those), each with its calls.
    PerCallback(Vec<CallbackCalls>),
}

impl ProgramCalls {
    /// sock_ops calls: the same list on each of `callbacks`.
    pub fn on_callbacks(callbacks: &[SockOpsOp], calls: &[Call]) -> Self {
        Self::PerCallback(
            callbacks
                .iter()
                .map(|&callback| CallbackCalls {
                    callback,
                    calls: calls.to_vec(),
                })
                .collect(),
        )
    }

    /// Every list, one per callback for sock_ops.
    pub fn lists(&self) -> Vec<&[Call]> {
        match self {
            Self::EachRun(calls) => vec![calls.as_slice()],
            Self::PerCallback(callbacks) => callbacks.iter().map(|c| c.calls.as_slice()).collect(),
        }
    }

    /// The list a run makes on `callback` (sock_ops), or on every run (the others);
    /// `None` for a callback the program does not act on.
    pub fn on(&self, callback: SockOpsOp) -> Option<&[Call]> {
        match self {
            Self::EachRun(calls) => Some(calls),
            Self::PerCallback(callbacks) => callbacks
                .iter()
                .find(|c| c.callback == callback)
                .map(|c| c.calls.as_slice()),
        }
    }

    /// The helpers the lists call together, which selects the program (see [`HelperSet`]).
    pub fn helper_set(&self) -> Result<HelperSet, ParamsError> {
        let calls = || self.lists().into_iter().flatten();
        let get = calls().any(|c| matches!(c, Call::Get { .. }));
        let delete = calls().any(|c| matches!(c, Call::Delete));
        match (get, delete) {
            (true, false) => Ok(HelperSet::Get),
            (false, true) => Ok(HelperSet::Delete),
            (true, true) => Ok(HelperSet::GetDelete),
            (false, false) => Err(ParamsError::NoHelperCall),
        }
    }
}

/// The sk storage helpers a program contains. Each hook has one program per set, and a
/// case's program is the one whose set is exactly what its calls use: the verifier judges
/// every helper call in a program, made or not, so a get-only program must not even
/// contain a delete call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelperSet {
    Get,
    Delete,
    GetDelete,
}

impl HelperSet {
    pub const ALL: [HelperSet; 3] = [HelperSet::Get, HelperSet::Delete, HelperSet::GetDelete];

    /// The function name in the object of `kind`'s program for this set: the hook's name
    /// with the set's suffix (`sock_ops_get`).
    pub fn object_name(self, kind: ProgramKind) -> String {
        let suffix = match self {
            Self::Get => helper_set::GET,
            Self::Delete => helper_set::DELETE,
            Self::GetDelete => helper_set::GET_DELETE,
        };
        format!("{kind}{suffix}")
    }
}

impl std::fmt::Display for HelperSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Get => "get",
            Self::Delete => "delete",
            Self::GetDelete => "get+delete",
        })
    }
}

/// Parameters of one program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramParams {
    pub map: StorageMap,
    /// What each run calls; its shape follows the program (per callback for sock_ops).
    pub calls: ProgramCalls,
    /// sock_ops only: set with `bpf_sock_ops_cb_flags_set` on the established callbacks
    /// (the first with a full socket at each end), whether or not the program acts on
    /// them, e.g. [`SockOpsOp::STATE_CB_FLAG`] to also receive STATE_CB.
    pub sock_ops_cb_flags: u32,
    /// Tracing and LSM only (they see every socket on the host): act only in this thread
    /// (kernel tid, `gettid()`).
    pub only_thread: Option<u32>,
    /// Act only on sockets whose local or remote port is this.
    pub only_port: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("sock_ops callback {op} cannot be selected: the program's callback mask has bits 0-31")]
    SockOpsOpOutOfRange { op: SockOpsOp },
    #[error("sock_ops callback {op} is given two call lists")]
    DuplicateCallback { op: SockOpsOp },
    #[error("a run makes at most {MAX_CALLS} calls, not {count}")]
    TooManyCalls { count: usize },
    #[error(
        "the program calls neither bpf_sk_storage_get nor bpf_sk_storage_delete; the object has no such program"
    )]
    NoHelperCall,
    #[error(
        "program {kind} takes {expected} (sock_ops acts per callback, the others on every run)"
    )]
    CallsShape {
        kind: ProgramKind,
        expected: &'static str,
    },
}

impl ProgramParams {
    /// `calls` on `map`, with no cb flags and no filters.
    pub fn new(map: StorageMap, calls: ProgramCalls) -> Self {
        Self {
            map,
            calls,
            sock_ops_cb_flags: 0,
            only_thread: None,
            only_port: None,
        }
    }

    /// The bytes the eBPF side reads for `kind`: its `PROGRAM_CONFIG` slot and, for
    /// sock_ops, its call list per callback op (the `SOCK_OPS_CALLS` array, all 32 slots).
    pub(crate) fn to_config(
        &self,
        kind: ProgramKind,
    ) -> Result<(ProgramConfig, Option<[CallList; 32]>), ParamsError> {
        let mut config = ProgramConfig {
            map: self.map.id(),
            sock_ops_cb_flags: self.sock_ops_cb_flags,
            only_tid: self.only_thread.unwrap_or(0),
            only_port: self.only_port.map_or(0, u32::from),
            ..ProgramConfig::default()
        };
        let sock_ops = kind == ProgramKind::SockOps;
        match (&self.calls, sock_ops) {
            (ProgramCalls::EachRun(calls), false) => {
                config.calls = call_list(calls)?;
                Ok((config, None))
            }
            (ProgramCalls::PerCallback(callbacks), true) => {
                let mut lists = [CallList::default(); 32];
                for CallbackCalls {
                    callback: op,
                    calls,
                } in callbacks
                {
                    let bit = 1u32
                        .checked_shl(op.0)
                        .ok_or(ParamsError::SockOpsOpOutOfRange { op: *op })?;
                    if config.sock_ops_mask & bit != 0 {
                        return Err(ParamsError::DuplicateCallback { op: *op });
                    }
                    config.sock_ops_mask |= bit;
                    lists[op.0 as usize] = call_list(calls)?;
                }
                Ok((config, Some(lists)))
            }
            (_, true) => Err(ParamsError::CallsShape {
                kind,
                expected: "calls per callback",
            }),
            (_, false) => Err(ParamsError::CallsShape {
                kind,
                expected: "the calls of every run",
            }),
        }
    }
}

fn call_list(calls: &[Call]) -> Result<CallList, ParamsError> {
    if calls.len() > MAX_CALLS {
        return Err(ParamsError::TooManyCalls { count: calls.len() });
    }
    let mut list = CallList::default();
    for (slot, call) in list.calls.iter_mut().zip(calls) {
        *slot = match *call {
            Call::Get { flags, init } => CallSpec {
                op: call_op::GET,
                pass_init: u32::from(init.is_some()),
                flags,
                value: init.unwrap_or(0),
            },
            Call::Delete => CallSpec {
                op: call_op::DELETE,
                ..CallSpec::default()
            },
            Call::Write { value } => CallSpec {
                op: call_op::WRITE,
                value,
                ..CallSpec::default()
            },
        };
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(flags: u64, init: Option<u64>) -> Call {
        Call::Get { flags, init }
    }

    #[test]
    fn sock_ops_lists_are_encoded_per_callback_op() {
        let params = ProgramParams {
            sock_ops_cb_flags: SockOpsOp::STATE_CB_FLAG,
            ..ProgramParams::new(
                StorageMap::Clone,
                ProgramCalls::PerCallback(vec![
                    CallbackCalls {
                        callback: SockOpsOp::ACTIVE_ESTABLISHED_CB,
                        calls: vec![get(F_CREATE, Some(7)), Call::Write { value: 9 }],
                    },
                    CallbackCalls {
                        callback: SockOpsOp::STATE_CB,
                        calls: vec![get(0, None), Call::Delete],
                    },
                ]),
            )
        };
        let (config, lists) = params.to_config(ProgramKind::SockOps).expect("config");
        let lists = lists.expect("sock_ops lists");
        assert_eq!(config.sock_ops_mask, (1 << 4) | (1 << 10));
        assert_eq!(config.sock_ops_cb_flags, 4);
        assert_eq!(config.map, storage_map::CLONE);
        assert_eq!(config.calls, CallList::default(), "sock_ops uses its lists");
        let active = lists[4].calls;
        assert_eq!(
            active[0],
            CallSpec {
                op: call_op::GET,
                pass_init: 1,
                flags: F_CREATE,
                value: 7
            }
        );
        assert_eq!((active[1].op, active[1].value), (call_op::WRITE, 9));
        assert_eq!(active[2].op, call_op::NONE);
        let state = lists[10].calls;
        assert_eq!((state[0].op, state[0].pass_init), (call_op::GET, 0));
        assert_eq!(state[1].op, call_op::DELETE);
        assert!(lists[5].calls.iter().all(|c| c.op == call_op::NONE));
        assert_eq!(
            params.calls.helper_set().expect("set"),
            HelperSet::GetDelete
        );
    }

    #[test]
    fn each_run_lists_filters_and_map_are_encoded() {
        let params = ProgramParams {
            only_thread: Some(1234),
            only_port: Some(8080),
            ..ProgramParams::new(
                StorageMap::NoPrealloc,
                ProgramCalls::EachRun(vec![Call::Delete, get(2, None)]),
            )
        };
        let (config, lists) = params.to_config(ProgramKind::Setsockopt).expect("config");
        assert!(lists.is_none());
        assert_eq!(config.calls.calls[0].op, call_op::DELETE);
        assert_eq!(
            (config.calls.calls[1].op, config.calls.calls[1].flags),
            (call_op::GET, 2)
        );
        assert_eq!((config.only_tid, config.only_port), (1234, 8080));
        assert_eq!(config.map, storage_map::NO_PREALLOC);
    }

    #[test]
    fn the_helper_set_is_exactly_what_the_calls_use() {
        let set = |calls: Vec<Call>| ProgramCalls::EachRun(calls).helper_set();
        let write = Call::Write { value: 1 };
        assert_eq!(
            set(vec![get(0, None), write.clone()]).ok(),
            Some(HelperSet::Get)
        );
        assert_eq!(set(vec![Call::Delete]).ok(), Some(HelperSet::Delete));
        assert_eq!(
            set(vec![Call::Delete, get(0, None)]).ok(),
            Some(HelperSet::GetDelete)
        );
        assert!(matches!(set(vec![write]), Err(ParamsError::NoHelperCall)));
        // sock_ops: the union over its callbacks.
        let per_callback = ProgramCalls::PerCallback(vec![
            CallbackCalls {
                callback: SockOpsOp::ACTIVE_ESTABLISHED_CB,
                calls: vec![get(F_CREATE, None)],
            },
            CallbackCalls {
                callback: SockOpsOp::STATE_CB,
                calls: vec![Call::Delete],
            },
        ]);
        assert_eq!(per_callback.helper_set().ok(), Some(HelperSet::GetDelete));
        assert_eq!(
            per_callback.on(SockOpsOp::STATE_CB),
            Some([Call::Delete].as_slice())
        );
        assert_eq!(per_callback.on(SockOpsOp::PASSIVE_ESTABLISHED_CB), None);
    }

    #[test]
    fn malformed_parameters_are_refused() {
        let too_many = ProgramParams::new(
            StorageMap::NoPrealloc,
            ProgramCalls::EachRun(vec![Call::Delete; MAX_CALLS + 1]),
        );
        assert!(matches!(
            too_many.to_config(ProgramKind::Connect4),
            Err(ParamsError::TooManyCalls { count: 5 })
        ));
        assert!(matches!(
            too_many.to_config(ProgramKind::SockOps),
            Err(ParamsError::CallsShape { .. })
        ));
        let on = |ops: &[SockOpsOp]| {
            ProgramParams::new(
                StorageMap::NoPrealloc,
                ProgramCalls::on_callbacks(ops, &[Call::Delete]),
            )
            .to_config(ProgramKind::SockOps)
        };
        assert!(matches!(
            on(&[SockOpsOp(32)]),
            Err(ParamsError::SockOpsOpOutOfRange { .. })
        ));
        assert!(matches!(
            on(&[SockOpsOp::STATE_CB, SockOpsOp::STATE_CB]),
            Err(ParamsError::DuplicateCallback { .. })
        ));
        let sock_ops_list = ProgramParams::new(
            StorageMap::NoPrealloc,
            ProgramCalls::on_callbacks(&[SockOpsOp::STATE_CB], &[Call::Delete]),
        );
        assert!(matches!(
            sock_ops_list.to_config(ProgramKind::SockCreate),
            Err(ParamsError::CallsShape { .. })
        ));
    }

    #[test]
    fn storage_maps_round_trip_and_carry_the_uapi_flags() {
        for map in StorageMap::ALL {
            assert_eq!(StorageMap::from_id(map.id()), Some(map));
        }
        assert_eq!(StorageMap::Clone.map_flags(), 513);
        assert_eq!(StorageMap::NoPrealloc.map_flags(), 1);
    }
}
