//! What cases may name of the eBPF object: its programs (hooks, attach points, sock_ops
//! callbacks) and maps, and what a program is asked to do. Plain data shared by the case
//! language and the loader (`bpf`), so that the case language does not depend on the loader.
//!
//! The hooks are one table, [`ProgramKind`], kept in `sk_storage_common` because the eBPF
//! programs number them too. A new hook is: its variant and its arm in `ProgramKind::hook`
//! (sk-storage-common/src/program.rs), its programs in ebpf/src/programs.rs, and a test.

mod params;
mod program;

pub use params::{
    Call, CallbackCalls, F_CREATE, HelperSet, MAX_CALLS, ParamsError, ProgramCalls, ProgramParams,
    StorageMap,
};
pub use program::SockOpsOp;
pub use sk_storage_common::{AttachPoint, CgroupProgram, ProgramKind, SkbDirection};
