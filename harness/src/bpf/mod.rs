//! The BPF side: the embedded eBPF object (`ebpf/`), loaded per case, whose programs call
//! `bpf_sk_storage_get` / `bpf_sk_storage_delete` at points of a socket's life and report
//! what the helpers returned.
//!
//! # Driving a case
//!
//! ```text
//! let host = HostSupport::probe();                     // program types, BTF, BPF LSM
//! host.runnable(program)?;                              // Err(SkipReason) → skip the case
//! let mut object = SkStorageObject::load(true)?;        // fresh maps; true: BPF_F_CLONE works
//! let cgroup = CaseCgroup::create(case_name)?;          // child of the cgroup2 mount
//! object.set_params(program, &params)?;                 // what the program does (any time)
//! let helpers = params.calls.helper_set()?;             // picks the hook's program
//! object.load_program(program, helpers)?;               // Err(BpfError::Rejected{verifier_log,..})
//! object.attach(program, helpers, &cgroup)?;
//! { let _in = cgroup.enter()?; /* create the case's sockets */ }
//! /* traffic: connect, accept, send, setsockopt, close … */
//! let observations = object.take_observations()?;      // Vec<Observation>, in run order
//! object.storage(StorageMap::NoPrealloc)?.get(&socket, 0)   // userspace view, same storage
//! object.detach(program)?; drop(object); cgroup.remove()?;
//! ```
//!
//! A socket belongs to the cgroup of the task that created it, so only socket creation has
//! to happen inside [`CaseCgroup::enter`]; accepted sockets inherit their listener's cgroup.
//! Tracing and LSM programs are global: restrict them with [`ProgramParams::only_thread`](crate::catalogue::ProgramParams::only_thread)
//! and [`ProgramParams::only_port`](crate::catalogue::ProgramParams::only_port).
//!
//! # What each program does
//!
//! Each hook ([`ProgramKind`](crate::catalogue::ProgramKind)) has three programs in the object,
//! one per [`HelperSet`](crate::catalogue::HelperSet) (get only, delete only, both), named
//! `<hook>_get`, `<hook>_delete`, `<hook>_get_delete`: the verifier judges every helper
//! call a program contains, so the loader takes the one whose helpers are exactly those of
//! the declared calls. Every program, when it runs and passes its filters, makes the calls
//! of its [`ProgramParams`](crate::catalogue::ProgramParams) in order (up to
//! [`MAX_CALLS`](crate::catalogue::MAX_CALLS): get with `flags` and an optional init value,
//! delete, or write a value into the storage the last get returned; sock_ops has a list per
//! callback) on one of the two maps ([`StorageMap`](crate::catalogue::StorageMap)), then
//! sends one record. If the last get of the run returned a pointer, it then updates that
//! storage: `events += 1` always, plus what its hook does, which the docs of each
//! [`ProgramKind`](crate::catalogue::ProgramKind) variant say (when it runs, the socket it
//! passes, its effect, its record's `detail`).
//!
//! # Records
//!
//! The programs write `sk_storage_common::HelperRecord` (208 bytes, `#[repr(C)]`) to the
//! object's record queue (`RECORDS`, a BPF_MAP_TYPE_QUEUE of 4,096 records, which every
//! kernel from 5.2 offers to every program type here; overflow is counted in
//! `LOST_RECORDS` and reported as [`BpfError::RecordsLost`]).
//! [`SkStorageObject::take_observations`] turns them into [`Observation`]s: program,
//! sock_ops callback and its `args[0]`/`args[1]`, socket identity (cookie where the program
//! type can read it — sock_ops, cgroup_skb, connect — otherwise local/remote ports), thread
//! (tracing/LSM), map, and one [`CallOutcome`] per call in order: [`GetResult`] (`NoSocket`
//! / `Null` / `Pointer{storage}` with the storage read right after the call),
//! [`DeleteResult`] (`NoSocket` / `Returned{value}`: 0 or -ENOENT), [`WriteResult`]
//! (`Written` / `NoStorage`). [`Observation::is_about`] matches one against a [`SocketKey`]
//! taken from a socket fd.
//!
//! The storage value of both maps is [`SocketStorage`] `{ value, events, bytes }` (u64
//! each, 24 bytes); userspace reads and writes it by socket fd through
//! [`SkStorageObject::storage`] / [`SkStorageObject::storage_mut`] (aya's `SkStorage`), or
//! raw `bpf(2)` on [`SkStorageObject::storage_fd`].
mod attach;
mod btf_compat;
pub mod cgroup;
pub mod host;
mod mountinfo;
pub mod object;
pub mod observation;

pub use cgroup::{CaseCgroup, CgroupError, Membership};
pub use host::{BpfLsm, HostError, HostSupport, SkipReason};
pub use object::{BpfError, SkStorageObject, iterator_unsupported, object_size};
pub use observation::{
    CallOutcome, DeleteResult, GetResult, Observation, ObservedSocket, SocketKey, WriteResult,
};
pub use sk_storage_common::{HARNESS_OPT_STORAGE_VALUE, SOL_HARNESS, SocketStorage};
