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
//! object.load_program(program)?;                        // Err(BpfError::Rejected{verifier_log,..})
//! object.attach(program, &cgroup)?;
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
//! Every program, when it runs and passes its filters, calls the helpers its
//! [`ProgramParams`](crate::catalogue::ProgramParams) ask for (get with `flags` and an optional init value, then optionally
//! delete) on one of the two maps ([`StorageMap`](crate::catalogue::StorageMap)), then sends one record. After a get that
//! returned a pointer it updates the storage: `events += 1` always, plus:
//!
//! | program ([`ProgramKind`](crate::catalogue::ProgramKind)) | runs on | socket passed | extra update / effect | `detail` |
//! |---|---|---|---|---|
//! | `sock_ops` | the callbacks in `sock_ops_callbacks` | `ctx->sk` (NULL → NoSocket) | optional `bpf_sock_ops_cb_flags_set` on the established callbacks | `args[1]` |
//! | `skb_ingress`, `skb_egress` | every packet | `bpf_sk_fullsock(skb->sk)` | `bytes += len` | packet length |
//! | `setsockopt` | `setsockopt(SOL_HARNESS, …)` only | `ctx->sk` | `value = *(u64 *)optval`; the kernel's handler is skipped | optname |
//! | `getsockopt` | `getsockopt(SOL_HARNESS, …)` only | `ctx->sk` | answers with `value` (retval 0); without storage the kernel's error stays | optname |
//! | `connect4`, `connect6` | connect() | `ctx->sk` | — | 0 |
//! | `sock_create` | socket() | the context | — (get only: the program contains no delete call) | 0 |
//! | `sock_create_delete` | socket() | the context | calls delete, which cgroup_sock may not: rejected at load | 0 |
//! | `fentry_tcp_close` | tcp_close() entry | `struct sock *` argument | — | 0 |
//! | `fexit_tcp_connect` | tcp_connect() exit (ports set, SYN queued) | `struct sock *` argument | — | 0 |
//! | `lsm_sock_graft` | accept(), for the new socket | `struct sock *` argument | — | 0 |
//!
//! # Records
//!
//! The programs write `sk_storage_common::HelperRecord` (80 bytes, `#[repr(C)]`) to the
//! object's record queue (`RECORDS`, a BPF_MAP_TYPE_QUEUE of 4,096 records, which every
//! kernel from 5.2 offers to every program type here; overflow is counted in
//! `LOST_RECORDS` and reported as [`BpfError::RecordsLost`]).
//! [`SkStorageObject::take_observations`] turns them into [`Observation`]s: program,
//! sock_ops callback, socket identity (cookie where the program type can read it —
//! sock_ops, cgroup_skb, connect — otherwise local/remote ports), thread (tracing/LSM),
//! map, get flags, [`GetResult`] (`NotCalled` / `NoSocket` / `Null` / `Pointer{storage}`
//! with the storage as the get returned it, before the update), and [`DeleteResult`]
//! (`NotCalled` / `NoSocket` / `Returned{value}`: 0 or -ENOENT). [`Observation::is_about`]
//! matches one against a [`SocketKey`] taken from a socket fd.
//!
//! The storage value of both maps is [`SocketStorage`] `{ value, events, bytes }` (u64
//! each, 24 bytes); userspace reads and writes it by socket fd through
//! [`SkStorageObject::storage`] / [`SkStorageObject::storage_mut`] (aya's `SkStorage`), or
//! raw `bpf(2)` on [`SkStorageObject::storage_fd`].
mod btf_compat;
pub mod cgroup;
pub mod host;
mod mountinfo;
pub mod object;
pub mod observation;

pub use cgroup::{CaseCgroup, CgroupError, Membership};
pub use host::{BpfLsm, HostError, HostSupport, SkipReason, program_type};
pub use object::{BpfError, SkStorageObject, iterator_unsupported, object_size};
pub use observation::{DeleteResult, GetResult, Observation, ObservedSocket, SocketKey};
pub use sk_storage_common::{HARNESS_OPT_STORAGE_VALUE, SOL_HARNESS, SocketStorage};
