//! The steps of a case, by concern: each module holds its operations as the YAML writes
//! them (its variant of [`Op`]), their check against the case, and what the check gives
//! the executor to run (its variant of [`Action`]). A step is a mapping of `expect` and
//! exactly one operation, whose key names the operation (see [`decl`]).
//!
//! Adding a step kind: a variant of its concern's operations with its arguments, its check
//! and its action, in the concern's module here; its `perform` in the executor's module of
//! the same name (`crate::exec`); its row in the book's step reference (docs/src/cases/steps.md).

/// One concern's operations: the enum serde reads (each variant a snake_case YAML key), its
/// field-less `…Kind` twin listing every name, and what the walk over the steps knows of
/// the kinds (see [`StepKind`]): those that may run in a forked child, the queries, the slow.
macro_rules! operations {
    (
        $(#[$attr:meta])*
        pub enum $op:ident as $kind:ident { $($variants:tt)* }
        runs_in_child: [$($child:ident),*],
        queries: [$($query:ident),*],
        slow: [$($slow:ident),*] $(,)?
    ) => {
        #[derive(
            schemars::JsonSchema,
            Debug,
            Clone,
            serde::Serialize,
            serde::Deserialize,
            strum::EnumDiscriminants
        )]
        #[serde(rename_all = "snake_case")]
        #[strum_discriminants(
            name($kind),
            derive(strum::VariantArray, strum::IntoStaticStr),
            strum(serialize_all = "snake_case")
        )]
        $(#[$attr])*
        pub enum $op { $($variants)* }

        impl $crate::case::steps::StepKind for $kind {
            fn name(&self) -> &'static str {
                self.into()
            }

            fn runs_in_child(&self) -> bool {
                [$(Self::$child),*].contains(self)
            }

            fn is_query(&self) -> bool {
                [$(Self::$query),*].contains(self)
            }

            fn is_slow(&self) -> bool {
                [$(Self::$slow),*].contains(self)
            }
        }
    };
}

mod context;
mod decl;
mod inspect;
mod maps;
mod process;
mod programs;
mod repeat;
mod sockets;
pub(super) mod template;
mod threads;

use std::collections::HashSet;

use serde::{Deserialize, Deserializer, Serialize};
use strum::VariantArray;

pub(in crate::case) use self::{
    context::{Context, Life, State, StepCheck, Validation},
    sockets::describe_socket,
};
pub use self::{
    decl::StepDecl,
    inspect::{DiagArgs, InspectAction, InspectOp, InspectOpKind, IterateArgs},
    maps::{
        BatchAction, BatchArgs, BatchCommand, ElemAction, ElemArgs, ElemCommand, MapAction, MapOp,
        MapOpKind,
    },
    process::{Capability, ProcessAction, ProcessOp, ProcessOpKind},
    programs::{ObserveArgs, ProgramAction, ProgramOp, ProgramOpKind},
    repeat::{RepeatArgs, RepeatOp, RepeatOpKind},
    sockets::{
        ConnectArgs, Direction, ResolvedOption, SendFdArgs, ShutdownArgs, ShutdownHow,
        SocketAction, SocketOp, SocketOpKind, SockoptArgs, TransferArgs,
    },
    threads::{Run, ThreadGroup, ThreadsAction, ThreadsOp, ThreadsOpKind},
};
use super::{Step, checked::Checked};

/// One operation of a step, by concern. It is written (and serialised) as its concern's
/// operation: a mapping of the operation's key to its arguments.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Op {
    Maps(MapOp),
    Sockets(SocketOp),
    Process(ProcessOp),
    Programs(ProgramOp),
    Repeat(RepeatOp),
    Threads(ThreadsOp),
    Inspect(InspectOp),
}

/// What the executor runs for a validated step: its concern's action, every name, key,
/// flag, value and option resolved by the check.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Maps(MapAction),
    Sockets(SocketAction),
    Process(ProcessAction),
    Programs(ProgramAction),
    Threads(ThreadsAction),
    Inspect(InspectAction),
}

/// A step checked: the step, or a repeat's steps, which take its place.
pub(in crate::case) enum CheckedStep {
    Step(Checked<Action>),
    Repeat(Vec<Step>),
}

/// The kind of an operation, without its arguments: its concern's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Maps(MapOpKind),
    Sockets(SocketOpKind),
    Process(ProcessOpKind),
    Programs(ProgramOpKind),
    Repeat(RepeatOpKind),
    Threads(ThreadsOpKind),
    Inspect(InspectOpKind),
}

/// What the walk over the steps and the cost model know of a kind of operation before it
/// is checked; each concern says which hold of its kinds.
pub trait StepKind {
    /// The operation's YAML key.
    fn name(&self) -> &'static str;

    /// It may run in a forked child: a system call the parent prepares before the fork,
    /// since the child must not allocate.
    fn runs_in_child(&self) -> bool;

    /// It only reads, so that `within` may ask again until its expectation holds.
    fn is_query(&self) -> bool;

    /// It takes milliseconds, and counts against the case's slow steps.
    fn is_slow(&self) -> bool;
}

impl Kind {
    /// Every kind, concern by concern.
    pub fn all() -> impl Iterator<Item = Kind> {
        let maps = MapOpKind::VARIANTS.iter().map(|k| Kind::Maps(*k));
        let sockets = SocketOpKind::VARIANTS.iter().map(|k| Kind::Sockets(*k));
        let process = ProcessOpKind::VARIANTS.iter().map(|k| Kind::Process(*k));
        let programs = ProgramOpKind::VARIANTS.iter().map(|k| Kind::Programs(*k));
        let repeat = RepeatOpKind::VARIANTS.iter().map(|k| Kind::Repeat(*k));
        let threads = ThreadsOpKind::VARIANTS.iter().map(|k| Kind::Threads(*k));
        let inspect = InspectOpKind::VARIANTS.iter().map(|k| Kind::Inspect(*k));
        maps.chain(sockets)
            .chain(process)
            .chain(programs)
            .chain(repeat)
            .chain(threads)
            .chain(inspect)
    }

    /// The kind whose YAML key is `name`.
    pub fn named(name: &str) -> Option<Kind> {
        Self::all().find(|kind| kind.name() == name)
    }

    /// The YAML keys of the kinds of which `holds` is true, for messages.
    pub fn names_where(holds: impl Fn(&Kind) -> bool) -> Vec<&'static str> {
        Self::all()
            .filter(|kind| holds(kind))
            .map(|kind| kind.name())
            .collect()
    }

    fn of_concern(&self) -> &dyn StepKind {
        match self {
            Kind::Maps(kind) => kind,
            Kind::Sockets(kind) => kind,
            Kind::Process(kind) => kind,
            Kind::Programs(kind) => kind,
            Kind::Repeat(kind) => kind,
            Kind::Threads(kind) => kind,
            Kind::Inspect(kind) => kind,
        }
    }
}

impl StepKind for Kind {
    fn name(&self) -> &'static str {
        self.of_concern().name()
    }

    fn runs_in_child(&self) -> bool {
        self.of_concern().runs_in_child()
    }

    fn is_query(&self) -> bool {
        self.of_concern().is_query()
    }

    fn is_slow(&self) -> bool {
        self.of_concern().is_slow()
    }
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
                Op::Maps(MapOp::CreateMap(name)) => {
                    self.maps.insert(name.clone());
                }
                Op::Sockets(SocketOp::Socket(name)) => {
                    self.sockets.insert(name.clone());
                }
                Op::Repeat(RepeatOp::Repeat(repeat)) => {
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
    pub fn names() -> Vec<&'static str> {
        Kind::all().map(|kind| kind.name()).collect()
    }

    pub fn kind(&self) -> Kind {
        match self {
            Op::Maps(op) => Kind::Maps(op.into()),
            Op::Sockets(op) => Kind::Sockets(op.into()),
            Op::Process(op) => Kind::Process(op.into()),
            Op::Programs(op) => Kind::Programs(op.into()),
            Op::Repeat(op) => Kind::Repeat(op.into()),
            Op::Threads(op) => Kind::Threads(op.into()),
            Op::Inspect(op) => Kind::Inspect(op.into()),
        }
    }

    /// The operation's YAML key.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Reads the operation of kind `kind`, whose key is `key`, from its value.
    fn read<'de, D: Deserializer<'de>>(kind: Kind, key: String, value: D) -> Result<Op, D::Error> {
        let keyed = decl::keyed(key, value);
        Ok(match kind {
            Kind::Maps(_) => Op::Maps(MapOp::deserialize(keyed)?),
            Kind::Sockets(_) => Op::Sockets(SocketOp::deserialize(keyed)?),
            Kind::Process(_) => Op::Process(ProcessOp::deserialize(keyed)?),
            Kind::Programs(_) => Op::Programs(ProgramOp::deserialize(keyed)?),
            Kind::Repeat(_) => Op::Repeat(RepeatOp::deserialize(keyed)?),
            Kind::Threads(_) => Op::Threads(ThreadsOp::deserialize(keyed)?),
            Kind::Inspect(_) => Op::Inspect(InspectOp::deserialize(keyed)?),
        })
    }

    /// Checks the operation against the case at this point of its steps: names, lifetimes,
    /// values and flags. Returns the step's label, what it may expect and what the
    /// executor runs, or (a repeat) the steps that take its place.
    pub(in crate::case) fn check(&self, cx: &mut StepCheck<'_>) -> Option<CheckedStep> {
        Some(match self {
            Op::Maps(op) => CheckedStep::Step(op.check(cx)?.map(Action::Maps)),
            Op::Sockets(op) => CheckedStep::Step(op.check(cx)?.map(Action::Sockets)),
            Op::Process(op) => CheckedStep::Step(op.check(cx)?.map(Action::Process)),
            Op::Programs(op) => CheckedStep::Step(op.check(cx)?.map(Action::Programs)),
            Op::Threads(op) => CheckedStep::Step(op.check(cx)?.map(Action::Threads)),
            Op::Inspect(op) => CheckedStep::Step(op.check(cx)?.map(Action::Inspect)),
            Op::Repeat(op) => CheckedStep::Repeat(op.check(cx)?),
        })
    }
}
