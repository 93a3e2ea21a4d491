//! Layouts and constants shared by the eBPF programs (`ebpf/`) and the harness loader
//! (`harness/src/bpf/`), so the two sides cannot drift apart.
//!
//! Everything here is `#[repr(C)]` with explicit padding: the same bytes travel through BPF
//! maps (program parameters in, helper records out, socket storage both ways). The `user`
//! feature adds the `aya::Pod` impls the loader needs to read and write them, and
//! `serde::Serialize` for [`SocketStorage`].
#![no_std]

/// Map names in the eBPF object (the `#[btf_map]` statics).
pub mod map_name {
    /// SK_STORAGE map created with `BPF_F_NO_PREALLOC`.
    pub const STORAGE: &str = "STORAGE";
    /// SK_STORAGE map created with `BPF_F_NO_PREALLOC | BPF_F_CLONE`.
    pub const STORAGE_CLONE: &str = "STORAGE_CLONE";
    /// Array of [`crate::ProgramConfig`], indexed by [`crate::program_id`].
    pub const PROGRAM_CONFIG: &str = "PROGRAM_CONFIG";
    /// Queue (BPF_MAP_TYPE_QUEUE) of [`crate::HelperRecord`].
    pub const RECORDS: &str = "RECORDS";
    /// One-slot array counting records the queue had no room for.
    pub const LOST_RECORDS: &str = "LOST_RECORDS";
}

/// Index of each program in `PROGRAM_CONFIG` and the `program` field of its records.
pub mod program_id {
    pub const SOCK_OPS: u32 = 0;
    pub const SKB_INGRESS: u32 = 1;
    pub const SKB_EGRESS: u32 = 2;
    pub const GETSOCKOPT: u32 = 3;
    pub const SETSOCKOPT: u32 = 4;
    pub const CONNECT4: u32 = 5;
    pub const CONNECT6: u32 = 6;
    pub const SOCK_CREATE: u32 = 7;
    pub const SOCK_CREATE_DELETE: u32 = 8;
    pub const FENTRY_TCP_CLOSE: u32 = 9;
    pub const FEXIT_TCP_CONNECT: u32 = 10;
    pub const LSM_SOCK_GRAFT: u32 = 11;
    /// Number of programs, the length of `PROGRAM_CONFIG`.
    pub const COUNT: u32 = 12;
}

/// Which SK_STORAGE map a program uses (`ProgramConfig::map`, `HelperRecord::map`).
pub mod storage_map {
    pub const NO_PREALLOC: u32 = 0;
    pub const CLONE: u32 = 1;
}

/// Bits of `ProgramConfig::actions`: the helpers a program calls, in this order.
pub mod action {
    /// Call `bpf_sk_storage_get`.
    pub const GET: u32 = 1;
    /// Call `bpf_sk_storage_delete` (after the get, when both are set).
    pub const DELETE: u32 = 2;
}

/// `HelperRecord::get`: what `bpf_sk_storage_get` did.
pub mod get_outcome {
    pub const NOT_CALLED: u32 = 0;
    /// The helper returned NULL.
    pub const NULL: u32 = 1;
    /// The helper returned a pointer; `HelperRecord::storage` holds what it pointed to.
    pub const POINTER: u32 = 2;
    /// The program had no full socket to pass (e.g. a request or time-wait socket).
    pub const NO_SOCKET: u32 = 3;
}

/// `HelperRecord::delete`: what `bpf_sk_storage_delete` did.
pub mod delete_outcome {
    pub const NOT_CALLED: u32 = 0;
    /// The helper was called; `HelperRecord::delete_ret` holds its return value.
    pub const CALLED: u32 = 1;
    pub const NO_SOCKET: u32 = 3;
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

/// Parameters of one program, written by userspace before the program runs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgramConfig {
    /// [`storage_map`] the helpers are called on.
    pub map: u32,
    /// [`action`] bits.
    pub actions: u32,
    /// `flags` argument of `bpf_sk_storage_get`.
    pub get_flags: u64,
    /// 1: pass `init` as the helper's `value` argument; 0: pass NULL.
    pub pass_init: u32,
    /// sock_ops only: bit N set = act on callback op N.
    pub sock_ops_mask: u32,
    /// sock_ops only: passed to `bpf_sock_ops_cb_flags_set` on the established callbacks
    /// when non-zero (e.g. to receive STATE_CB).
    pub sock_ops_cb_flags: u32,
    /// Act only in this thread (kernel tid); 0 = any. Applies to programs that run in the
    /// calling task's context (sockopt, connect, sock_create, tracing, LSM).
    pub only_tid: u32,
    /// Act only on sockets whose local or remote port is this; 0 = any.
    pub only_port: u32,
    pub _pad: u32,
    /// Passed to `bpf_sk_storage_get` when `pass_init` is 1.
    pub init: SocketStorage,
}

/// One program invocation that passed its filters, as sent through the record queue.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HelperRecord {
    /// [`program_id`].
    pub program: u32,
    /// Program-specific event: the sock_ops callback op; 0 for the other programs.
    pub event: u32,
    /// Program-specific detail: sock_ops `args[1]` (the new state in STATE_CB), cgroup_skb
    /// packet length, sockopt optname; 0 otherwise.
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
    /// [`get_outcome`].
    pub get: u32,
    /// `flags` passed to `bpf_sk_storage_get`.
    pub get_flags: u64,
    /// The storage as the get returned it, before this program changed it.
    pub storage: SocketStorage,
    /// [`delete_outcome`].
    pub delete: u32,
    /// Return value of `bpf_sk_storage_delete` (0 or a negative errno).
    pub delete_ret: i32,
}

// SAFETY: plain-old-data structs: `#[repr(C)]`, integer fields only, no implicit padding.
#[cfg(feature = "user")]
unsafe impl aya::Pod for SocketStorage {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ProgramConfig {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for HelperRecord {}

// The layouts are a contract with the kernel-side maps: catch accidental padding.
const _: () = assert!(core::mem::size_of::<SocketStorage>() == 24);
const _: () = assert!(core::mem::size_of::<ProgramConfig>() == 64);
const _: () = assert!(core::mem::size_of::<HelperRecord>() == 80);
