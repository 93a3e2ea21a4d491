//! Layouts and constants shared by the eBPF programs (`ebpf/`) and the harness loader
//! (`harness/src/bpf/`), so the two sides cannot drift apart.
//!
//! The layouts are `#[repr(C)]` with explicit padding: the same bytes travel through BPF
//! maps (program parameters in, helper records out, socket storage both ways). The hooks
//! ([`ProgramKind`]) are listed here too, since both sides number them. The `user` feature
//! adds the `aya::Pod` impls the loader needs to read and write the layouts, and serde for
//! [`SocketStorage`] and [`ProgramKind`].
#![no_std]

mod program;

pub use program::{AttachPoint, CgroupProgram, ProgramKind, SkbDirection};

/// Map names in the eBPF object (the `#[btf_map]` statics).
pub mod map_name {
    /// SK_STORAGE map created with `BPF_F_NO_PREALLOC`.
    pub const STORAGE: &str = "STORAGE";
    /// SK_STORAGE map created with `BPF_F_NO_PREALLOC | BPF_F_CLONE`.
    pub const STORAGE_CLONE: &str = "STORAGE_CLONE";
    /// Array of [`crate::ProgramConfig`], indexed by [`crate::ProgramKind::id`].
    pub const PROGRAM_CONFIG: &str = "PROGRAM_CONFIG";
    /// Array of 32 [`crate::CallList`]s, the sock_ops program's calls per callback op.
    pub const SOCK_OPS_CALLS: &str = "SOCK_OPS_CALLS";
    /// Queue (BPF_MAP_TYPE_QUEUE) of [`crate::HelperRecord`].
    pub const RECORDS: &str = "RECORDS";
    /// One-slot array counting records the queue had no room for.
    pub const LOST_RECORDS: &str = "LOST_RECORDS";
}

/// The helper sets a hook's programs are compiled for. A program contains exactly the
/// helper calls of its set: the verifier judges every call in the code, taken or not, so
/// a program that declares only gets must not contain a delete call (and vice versa).
/// The program of set `S` for hook `h` is the object's function `h` + `S`
/// (`sock_ops_get`, `sock_ops_delete`, `sock_ops_get_delete`).
pub mod helper_set {
    pub const GET: &str = "_get";
    pub const DELETE: &str = "_delete";
    pub const GET_DELETE: &str = "_get_delete";
}

/// Which SK_STORAGE map a program uses (`ProgramConfig::map`, `HelperRecord::map`).
pub mod storage_map {
    pub const NO_PREALLOC: u32 = 0;
    pub const CLONE: u32 = 1;
}

/// Calls a program makes in one run, at most. Each call is unrolled in the program (no
/// loops: kernels before 5.3 reject back-edges) and adds a [`CallResult`] to the record,
/// which the program builds on its 512-byte stack; four cover get/write/get/delete.
pub const MAX_CALLS: usize = 4;

/// `CallSpec::op` and `CallResult::op`.
pub mod call_op {
    /// An unused slot: the list ended before it (or the program could not make the call).
    pub const NONE: u32 = 0;
    /// `bpf_sk_storage_get(map, sk, init or NULL, flags)`.
    pub const GET: u32 = 1;
    /// `bpf_sk_storage_delete(map, sk)`.
    pub const DELETE: u32 = 2;
    /// Store `CallSpec::value` into the `value` field of the storage the most recent get of
    /// the run returned.
    pub const WRITE: u32 = 3;
}

/// `CallResult::outcome`.
pub mod call_outcome {
    /// Get or delete: the program had no full socket to pass (request or time-wait
    /// socket), so it did not call the helper.
    pub const NO_SOCKET: u32 = 1;
    /// Get: the helper returned NULL.
    pub const NULL: u32 = 2;
    /// Get: the helper returned a pointer; `CallResult::storage` holds what it pointed to
    /// right after the call.
    pub const POINTER: u32 = 3;
    /// Delete: the helper was called; `CallResult::ret` holds its return value.
    pub const RETURNED: u32 = 4;
    /// Write: the value was stored.
    pub const WRITTEN: u32 = 5;
    /// Write: no get came before it in the run, or the most recent one returned NULL.
    pub const NO_STORAGE: u32 = 6;
}

/// One call of a program's list.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallSpec {
    /// [`call_op`].
    pub op: u32,
    /// Get: 1 passes a [`SocketStorage`] `{ value, 0, 0 }` as the helper's init value, 0
    /// passes NULL.
    pub pass_init: u32,
    /// Get: the helper's `flags`.
    pub flags: u64,
    /// Get: the init value (with `pass_init`); write: the value stored.
    pub value: u64,
}

/// The calls of one run, in order; slots after the list's end are [`call_op::NONE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallList {
    pub calls: [CallSpec; MAX_CALLS],
}

/// What one call of the list did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallResult {
    /// [`call_op`] of the call; NONE for a slot the run did not use.
    pub op: u32,
    /// [`call_outcome`].
    pub outcome: u32,
    /// Delete: the helper's return value (0 or a negative errno).
    pub ret: i32,
    pub _pad: u32,
    /// Get that returned a pointer: the storage right after the call.
    pub storage: SocketStorage,
}

/// The private socket option level the sockopt programs handle; the kernel itself knows no
/// such level, so without the programs `getsockopt`/`setsockopt` fail (EOPNOTSUPP or
/// ENOPROTOOPT, depending on the kernel and protocol).
pub const SOL_HARNESS: i32 = 0x5348_5354;
/// The one option name under [`SOL_HARNESS`]: an 8-byte value kept in the socket's storage.
pub const HARNESS_OPT_STORAGE_VALUE: i32 = 1;

/// The value every SK_STORAGE map in the object holds for a socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize))]
pub struct SocketStorage {
    /// A datum owned by the case: the init value, a value written from userspace, or the
    /// value set through `setsockopt(SOL_HARNESS, HARNESS_OPT_STORAGE_VALUE)`.
    pub value: u64,
    /// Incremented by every program invocation that obtained the storage.
    pub events: u64,
    /// Bytes of the packets the cgroup_skb programs counted.
    pub bytes: u64,
}

/// Parameters of one hook's program, written by userspace before the program runs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramConfig {
    /// [`storage_map`] the helpers are called on.
    pub map: u32,
    /// sock_ops only: bit N set = act on (make the calls of and record) callback op N.
    pub sock_ops_mask: u32,
    /// sock_ops only: passed to `bpf_sock_ops_cb_flags_set` on the established callbacks
    /// when non-zero (e.g. to receive STATE_CB), whether or not the program acts on them.
    pub sock_ops_cb_flags: u32,
    /// Act only in this thread (kernel tid); 0 = any. Applies to programs that run in the
    /// calling task's context (sockopt, connect, sock_create, tracing, LSM).
    pub only_tid: u32,
    /// Act only on sockets whose local or remote port is this; 0 = any.
    pub only_port: u32,
    pub _pad: u32,
    /// The calls of each run. sock_ops takes its lists per callback from `SOCK_OPS_CALLS`
    /// instead.
    pub calls: CallList,
}

/// One program invocation that passed its filters, as sent through the record queue.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HelperRecord {
    /// [`ProgramKind::id`].
    pub program: u32,
    /// sock_ops: the callback op; 0 for the other programs.
    pub event: u32,
    /// sock_ops: the callback's `args[0]` and `args[1]` (STATE_CB: old and new TCP state).
    pub args: [u32; 2],
    /// Program-specific detail: cgroup_skb packet length, sockopt optname; 0 otherwise.
    pub detail: u32,
    /// Kernel thread id of the task the program ran in (meaningless in softirq context).
    pub tid: u32,
    /// Socket cookie (as `SO_COOKIE` reports it) where the program type can read it, else 0.
    pub cookie: u64,
    /// Socket address family (AF_INET, AF_INET6), 0 when unknown.
    pub family: u32,
    /// Local port, host byte order, 0 when unknown or unbound.
    pub local_port: u16,
    /// Remote port, host byte order, 0 when unknown or unconnected.
    pub remote_port: u16,
    /// [`storage_map`] the helpers were called on.
    pub map: u32,
    pub _pad: u32,
    /// One result per call of the list, in order.
    pub calls: [CallResult; MAX_CALLS],
}

// SAFETY: plain-old-data structs: `#[repr(C)]`, integer fields only, no implicit padding.
#[cfg(feature = "user")]
unsafe impl aya::Pod for SocketStorage {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ProgramConfig {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for CallList {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for HelperRecord {}

// The layouts are a contract with the kernel-side maps: catch accidental padding.
const _: () = assert!(core::mem::size_of::<SocketStorage>() == 24);
const _: () = assert!(core::mem::size_of::<CallSpec>() == 24);
const _: () = assert!(core::mem::size_of::<CallResult>() == 40);
const _: () = assert!(core::mem::size_of::<ProgramConfig>() == 24 + 96);
const _: () = assert!(core::mem::size_of::<HelperRecord>() == 48 + 160);
