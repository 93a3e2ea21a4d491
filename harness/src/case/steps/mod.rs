//! The steps of a case: one enum, [`Op`], read straight from the YAML (a step is a mapping
//! of `expect` and exactly one operation, see [`decl`]), checked against the case by
//! [`Op::check`], and run by the executor (`crate::exec`).
//!
//! Adding a step kind: a variant of `Op` with its arguments and its arm in `Op::check` (the
//! check itself beside the arguments, in the file of its concern), its arm in the executor,
//! and its entry in cases/README.md.

mod context;
mod decl;
pub mod inspect;
pub mod maps;
mod process;
mod programs;
mod repeat;
mod sockets;
pub(super) mod template;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

pub(in crate::case) use self::{
    context::{Context, Life, State, StepCheck, Validation},
    sockets::describe_socket,
};
pub use self::{
    decl::StepDecl,
    inspect::{DiagOp, IterateOp},
    maps::{BatchOp, MapOp},
    process::Capability,
    programs::ObserveOp,
    repeat::{RepeatOp, ThreadGroup, expand_threads},
    sockets::{ConnectOp, SendFdOp, ShutdownHow, ShutdownOp, SocketOption, SockoptOp, Transfer},
};
use super::checked::Checked;

/// One operation of a step. The YAML key is the variant's name in snake case.
#[derive(Debug, Clone, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Op {
    /// Create a declared map here instead of before the first step.
    CreateMap(String),
    /// Close the case's descriptor of a map created by bpf(2); the kernel frees the map,
    /// and the storages it gave sockets, once nothing else holds it.
    CloseMap(String),
    /// Create a declared socket here instead of before the first step.
    Socket(String),
    /// connect(2) an open socket to a bound or listening one.
    Connect(ConnectOp),
    /// shutdown(2) one or both directions of an open socket.
    Shutdown(ShutdownOp),
    /// Pass a descriptor over a unix socket (SCM_RIGHTS).
    SendFd(SendFdOp),
    Close(String),
    /// Drop capabilities from the effective set for the rest of the case.
    DropCapabilities(Vec<Capability>),
    Update(MapOp),
    Lookup(MapOp),
    Delete(MapOp),
    LookupAndDelete(MapOp),
    GetNextKey(MapOp),
    LookupBatch(BatchOp),
    UpdateBatch(BatchOp),
    DeleteBatch(BatchOp),
    LookupAndDeleteBatch(BatchOp),
    Send(Transfer),
    Recv(Transfer),
    /// A child process runs these steps on its copies of the descriptors.
    Fork(Vec<StepDecl>),
    /// Steps run `times` times in order, with `{i}` the iteration in their strings.
    Repeat(RepeatOp),
    /// Threads run map operations at the same time; the step expects outcome counts.
    Threads(Vec<ThreadGroup>),
    /// Load a declared program (the verifier may refuse it) and attach it.
    Attach(String),
    Detach(String),
    /// The next record of a program about a socket not yet observed.
    Observe(ObserveOp),
    /// setsockopt(2) of a SOL_SOCKET option, or of the harness's own (the setsockopt
    /// program's input).
    Setsockopt(SockoptOp),
    /// getsockopt(2) of a SOL_SOCKET option, or of the harness's own (answered by the
    /// getsockopt program).
    Getsockopt(SockoptOp),
    /// A sock_diag dump of one socket asking for its storage in these maps.
    Diag(DiagOp),
    /// A BPF iterator over a map's storages, read to the end.
    Iterate(IterateOp),
}

/// The maps and sockets that steps create themselves (`create_map`, `socket`), a repeat's in
/// every iteration: the declarations that are not created before the first step.
#[derive(Debug, Default)]
pub(in crate::case) struct CreatedBySteps {
    pub(in crate::case) maps: HashSet<String>,
    pub(in crate::case) sockets: HashSet<String>,
}

impl CreatedBySteps {
    pub(in crate::case) fn of(steps: &[StepDecl]) -> Self {
        let mut created = Self::default();
        created.add(steps);
        created
    }

    fn add(&mut self, steps: &[StepDecl]) {
        for step in steps {
            match &step.op {
                Op::CreateMap(name) => {
                    self.maps.insert(name.clone());
                }
                Op::Socket(name) => {
                    self.sockets.insert(name.clone());
                }
                Op::Repeat(repeat) => {
                    for iteration in repeat.creating_iterations() {
                        self.add(&iteration);
                    }
                }
                _ => {}
            }
        }
    }
}

impl Op {
    /// Every operation's YAML key, for messages.
    pub const NAMES: &'static [&'static str] = <Self as strum::VariantNames>::VARIANTS;

    /// The operation's YAML key.
    pub fn name(&self) -> &'static str {
        self.into()
    }

    /// Checks the operation against the case at this point of its steps: names, lifetimes,
    /// values and flags. Returns the step's label and what it may expect.
    pub(super) fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked> {
        match self {
            Op::CreateMap(map) => maps::check_create(map, cx),
            Op::CloseMap(map) => maps::check_close(map, cx),
            Op::Socket(socket) => sockets::check_create(socket, cx),
            Op::Connect(op) => op.check(cx),
            Op::Shutdown(op) => op.check(cx),
            Op::SendFd(op) => op.check(cx),
            Op::Close(socket) => sockets::check_close(socket, cx),
            Op::DropCapabilities(caps) => process::check_drop(caps),
            Op::Update(op)
            | Op::Lookup(op)
            | Op::Delete(op)
            | Op::LookupAndDelete(op)
            | Op::GetNextKey(op) => op.check(self.name(), cx),
            Op::LookupBatch(op)
            | Op::UpdateBatch(op)
            | Op::DeleteBatch(op)
            | Op::LookupAndDeleteBatch(op) => op.check(self.name(), cx),
            Op::Send(op) | Op::Recv(op) => op.check(self.name(), cx),
            Op::Fork(steps) => process::check_fork(steps, cx),
            Op::Repeat(op) => op.check(cx),
            Op::Threads(groups) => repeat::check_threads(groups, cx),
            Op::Attach(program) => programs::check_attach(program, true, cx),
            Op::Detach(program) => programs::check_attach(program, false, cx),
            Op::Observe(op) => op.check(cx),
            Op::Setsockopt(op) => op.check(true, cx),
            Op::Getsockopt(op) => op.check(false, cx),
            Op::Diag(op) => op.check(cx),
            Op::Iterate(op) => op.check(cx),
        }
    }

    /// What a forked child may run: map operations and close, which need no allocation
    /// between fork and exit.
    pub const CHILD_NAMES: &'static [&'static str] = &["update", "lookup", "delete", "close"];

    pub fn runs_in_child(&self) -> bool {
        Self::CHILD_NAMES.contains(&self.name())
    }

    /// Operations that only read, so that `within` may ask again until the expectation
    /// holds.
    pub const QUERY_NAMES: &'static [&'static str] = &["lookup", "get_next_key", "getsockopt"];

    pub fn is_query(&self) -> bool {
        Self::QUERY_NAMES.contains(&self.name())
    }
}
