//! What a program does when it runs, as cases declare it; encoded into the object's
//! `PROGRAM_CONFIG` slot for the program before it runs.

use serde::{Deserialize, Serialize};
use sk_storage_common::{ProgramConfig, SocketStorage, action, map_name, storage_map};

use super::SockOpsOp;

/// `BPF_LOCAL_STORAGE_GET_F_CREATE` (= `BPF_SK_STORAGE_GET_F_CREATE`).
pub const F_CREATE: u64 = 1;

/// The object's two SK_STORAGE maps (value type [`SocketStorage`], int key, BTF).
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
        const NO_PREALLOC: u32 = 1;
        const CLONE: u32 = 1 << 9;
        match self {
            Self::NoPrealloc => NO_PREALLOC,
            Self::Clone => NO_PREALLOC | CLONE,
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

/// A `bpf_sk_storage_get(map, sk, value, flags)` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetCall {
    /// 0, [`F_CREATE`], or anything else (which the kernel answers with NULL).
    pub flags: u64,
    /// `Some(v)`: pass a [`SocketStorage`] `{ value: v, events: 0, bytes: 0 }` as `value`;
    /// `None`: pass NULL (a created storage is then zero-initialised).
    pub init: Option<u64>,
}

/// Parameters of one program. The default is the specification's sock_ops example:
/// get-or-create (F_CREATE, no init value) on the established callbacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramParams {
    pub map: StorageMap,
    /// `None`: the program does not call `bpf_sk_storage_get`.
    pub get: Option<GetCall>,
    /// Call `bpf_sk_storage_delete` (after the get when both are asked for).
    pub delete: bool,
    /// sock_ops only: the callbacks the program acts on.
    pub sock_ops_callbacks: Vec<SockOpsOp>,
    /// sock_ops only: set with `bpf_sock_ops_cb_flags_set` on the established callbacks,
    /// e.g. [`SockOpsOp::STATE_CB_FLAG`] to also receive STATE_CB.
    pub sock_ops_cb_flags: u32,
    /// Tracing and LSM only (they see every socket on the host): act only in this thread
    /// (kernel tid, `gettid()`).
    pub only_thread: Option<u32>,
    /// Act only on sockets whose local or remote port is this.
    pub only_port: Option<u16>,
}

impl Default for ProgramParams {
    fn default() -> Self {
        Self {
            map: StorageMap::NoPrealloc,
            get: Some(GetCall {
                flags: F_CREATE,
                init: None,
            }),
            delete: false,
            sock_ops_callbacks: vec![
                SockOpsOp::ACTIVE_ESTABLISHED_CB,
                SockOpsOp::PASSIVE_ESTABLISHED_CB,
            ],
            sock_ops_cb_flags: 0,
            only_thread: None,
            only_port: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("sock_ops callback {op} cannot be selected: the program's callback mask has bits 0-31")]
    SockOpsOpOutOfRange { op: SockOpsOp },
}

impl ProgramParams {
    /// The bytes the eBPF side reads.
    pub(crate) fn to_config(&self) -> Result<ProgramConfig, ParamsError> {
        let mut sock_ops_mask = 0u32;
        for &op in &self.sock_ops_callbacks {
            let bit = 1u32
                .checked_shl(op.0)
                .ok_or(ParamsError::SockOpsOpOutOfRange { op })?;
            sock_ops_mask |= bit;
        }
        let mut actions = 0;
        if self.get.is_some() {
            actions |= action::GET;
        }
        if self.delete {
            actions |= action::DELETE;
        }
        let (get_flags, init) = match &self.get {
            Some(GetCall { flags, init }) => (*flags, *init),
            None => (0, None),
        };
        Ok(ProgramConfig {
            map: self.map.id(),
            actions,
            get_flags,
            pass_init: u32::from(init.is_some()),
            sock_ops_mask,
            sock_ops_cb_flags: self.sock_ops_cb_flags,
            only_tid: self.only_thread.unwrap_or(0),
            only_port: self.only_port.map_or(0, u32::from),
            _pad: 0,
            init: SocketStorage {
                value: init.unwrap_or(0),
                ..SocketStorage::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_specification_example() {
        let config = ProgramParams::default().to_config().expect("config");
        assert_eq!(config.actions, action::GET);
        assert_eq!(config.get_flags, F_CREATE);
        assert_eq!(config.pass_init, 0);
        assert_eq!(config.sock_ops_mask, (1 << 4) | (1 << 5));
        assert_eq!(config.map, storage_map::NO_PREALLOC);
        assert_eq!((config.only_tid, config.only_port), (0, 0));
    }

    #[test]
    fn init_value_delete_filters_and_map_are_encoded() {
        let params = ProgramParams {
            map: StorageMap::Clone,
            get: Some(GetCall {
                flags: 2,
                init: Some(7),
            }),
            delete: true,
            sock_ops_callbacks: vec![SockOpsOp::STATE_CB],
            sock_ops_cb_flags: SockOpsOp::STATE_CB_FLAG,
            only_thread: Some(1234),
            only_port: Some(8080),
        };
        let config = params.to_config().expect("config");
        assert_eq!(config.actions, action::GET | action::DELETE);
        assert_eq!((config.get_flags, config.pass_init), (2, 1));
        assert_eq!(config.init.value, 7);
        assert_eq!(config.sock_ops_mask, 1 << 10);
        assert_eq!(config.sock_ops_cb_flags, 4);
        assert_eq!((config.only_tid, config.only_port), (1234, 8080));
        assert_eq!(config.map, storage_map::CLONE);
    }

    #[test]
    fn delete_only_and_out_of_range_callbacks() {
        let delete_only = ProgramParams {
            get: None,
            delete: true,
            ..ProgramParams::default()
        };
        assert_eq!(
            delete_only.to_config().expect("config").actions,
            action::DELETE
        );
        let out_of_range = ProgramParams {
            sock_ops_callbacks: vec![SockOpsOp(32)],
            ..ProgramParams::default()
        };
        assert!(matches!(
            out_of_range.to_config(),
            Err(ParamsError::SockOpsOpOutOfRange { .. })
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
