//! What cases may name of the eBPF object: its programs (names, attach points, sock_ops
//! callbacks) and maps, and what a program is asked to do. Plain data shared by the case
//! language and the loader (`bpf`), so that the case language does not depend on the loader.

mod params;
mod program;

pub use params::{
    Call, CallbackCalls, F_CREATE, HelperSet, MAX_CALLS, ParamsError, ProgramCalls, ProgramParams,
    StorageMap,
};
pub use program::{AttachPoint, CgroupHook, ProgramKind, SockOpsOp};
