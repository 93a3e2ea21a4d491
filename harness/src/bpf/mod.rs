//! The BPF side: the embedded eBPF object (`ebpf/`), loaded per case, whose programs call
//! `bpf_sk_storage_get` / `bpf_sk_storage_delete` at points of a socket's life and report
//! what the helpers returned.
pub mod cgroup;
pub mod host;
mod mountinfo;
pub mod object;
pub mod observation;
pub mod params;
pub mod program;

pub use cgroup::{CaseCgroup, CgroupError, Membership};
pub use host::{BpfLsm, HostError, HostSupport};
pub use object::{BpfError, SkStorageObject, object_size};
pub use observation::{DeleteResult, GetResult, Observation, ObservedSocket, SocketKey};
pub use params::{F_CREATE, GetCall, ProgramParams, StorageMap};
pub use program::{AttachPoint, CgroupHook, ProgramKind, SkipReason, SockOpsOp};
pub use sk_storage_common::{HARNESS_OPT_STORAGE_VALUE, SOL_HARNESS, SocketStorage};
