//! What an operation's check sees of the case: the declarations, the state of maps,
//! sockets and programs at its step, and the validator, which it reports problems to and
//! asks to check the steps nested in it, through [`Validation`].

use std::collections::HashMap;

use indexmap::IndexMap;

use super::{StepDecl, repeat::RepeatArgs};
use crate::case::{
    MapSpec, ProgramSpec, SocketSpec, Step, flags,
    locate::{FieldPath, Point},
    types::Type,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::case) enum Life {
    NotYet,
    Open,
    Closed,
}

/// What validation tracks while walking the steps in order.
#[derive(Clone, Default)]
pub(in crate::case) struct State {
    pub maps: HashMap<String, Life>,
    pub sockets: HashMap<String, Life>,
    /// Open: attached.
    pub programs: HashMap<String, Life>,
}

/// The case's validated declarations, which steps refer to.
pub(in crate::case) struct Context<'a> {
    pub maps: &'a IndexMap<String, MapSpec>,
    pub sockets: &'a IndexMap<String, SocketSpec>,
    pub programs: &'a IndexMap<String, ProgramSpec>,
}

/// What a check asks of the validator, which implements it: the checks use the validator
/// without the steps depending on it.
pub(in crate::case) trait Validation {
    fn error(&mut self, path: &FieldPath, point: Point, message: String);

    /// An undefined name of `what` (`map`, `socket`, `program`), with the nearest of
    /// `known` as a hint.
    fn unknown_name(&mut self, path: &FieldPath, what: &str, given: &str, known: &[&str]);

    /// `value` encoded as `ty`, counted against the case's budget of values.
    fn encode(&mut self, path: &FieldPath, ty: &Type, value: &serde_yaml::Value)
    -> Option<Vec<u8>>;

    /// The bits of a flags value, from the names of `table`.
    fn flags(
        &mut self,
        value: &serde_yaml::Value,
        path: &FieldPath,
        table: &[flags::Flag],
    ) -> Option<u64>;

    /// Whether the sockets a new descriptor depends on are open here, and a reused number
    /// free; problems are reported at the socket's declaration.
    fn socket_creation_ok(
        &mut self,
        name: &str,
        spec: &SocketSpec,
        sockets: &IndexMap<String, SocketSpec>,
        state: &State,
    ) -> bool;

    /// Checks one step, and gives the steps that run in its place: itself, or a repeat's
    /// steps; `in_child`: it runs in a forked child.
    fn step(
        &mut self,
        path: &FieldPath,
        id: String,
        decl: &StepDecl,
        ctx: &Context<'_>,
        state: &mut State,
        in_child: bool,
    ) -> Option<Vec<Step>>;
}

/// One operation's view of the case while it is checked.
pub struct StepCheck<'c> {
    v: &'c mut dyn Validation,
    pub(in crate::case) ctx: &'c Context<'c>,
    pub(in crate::case) state: &'c mut State,
    /// The operation's value: `steps[2].update`.
    pub path: FieldPath,
    /// The step's id, for the ids of a fork's steps.
    id: String,
    /// The step runs in a forked child.
    in_child: bool,
}

impl<'c> StepCheck<'c> {
    pub(in crate::case) fn new(
        v: &'c mut dyn Validation,
        ctx: &'c Context<'c>,
        state: &'c mut State,
        path: FieldPath,
        id: String,
        in_child: bool,
    ) -> Self {
        Self {
            v,
            ctx,
            state,
            path,
            id,
            in_child,
        }
    }

    pub fn error(&mut self, path: &FieldPath, point: Point, message: impl Into<String>) {
        self.v.error(path, point, message.into());
    }

    /// `value` encoded as `ty`, counted against the case's budget of values.
    pub fn encode(
        &mut self,
        path: &FieldPath,
        ty: &Type,
        value: &serde_yaml::Value,
    ) -> Option<Vec<u8>> {
        self.v.encode(path, ty, value)
    }

    /// The bits of a flags value, from the names of `table`.
    pub fn flags(
        &mut self,
        value: &serde_yaml::Value,
        path: &FieldPath,
        table: &[flags::Flag],
    ) -> Option<u64> {
        self.v.flags(value, path, table)
    }

    /// Whether the declared socket can be created here (see [`Validation`]).
    pub fn socket_creation_ok(&mut self, name: &str) -> bool {
        let spec = &self.ctx.sockets[name];
        self.v
            .socket_creation_ok(name, spec, self.ctx.sockets, self.state)
    }

    /// A declared name of `what` (`map`, `socket`, `program`).
    pub fn declared(&mut self, name: &str, path: &FieldPath, what: &'static str) -> Option<String> {
        let declared = match what {
            "map" => self.ctx.maps.contains_key(name),
            "socket" => self.ctx.sockets.contains_key(name),
            _ => self.ctx.programs.contains_key(name),
        };
        if declared {
            return Some(name.to_string());
        }
        // Only a name not declared needs the list, for its hint.
        let known: Vec<&str> = match what {
            "map" => self.ctx.maps.keys().map(String::as_str).collect(),
            "socket" => self.ctx.sockets.keys().map(String::as_str).collect(),
            _ => self.ctx.programs.keys().map(String::as_str).collect(),
        };
        self.v.unknown_name(path, what, name, &known);
        None
    }

    pub fn socket_name(&mut self, name: &str, path: &FieldPath) -> Option<String> {
        self.declared(name, path, "socket")
    }

    /// A declared map that exists by this step.
    pub fn created_map(&mut self, name: &str, path: &FieldPath) -> Option<String> {
        let name = self.declared(name, path, "map")?;
        match self.state.maps.get(&name) {
            Some(Life::NotYet) => {
                self.error(
                    path,
                    Point::Value,
                    format!("map `{name}` is used before the `create_map: {name}` step"),
                );
                None
            }
            Some(Life::Closed) => {
                self.error(
                    path,
                    Point::Value,
                    format!("map `{name}` is closed by then (`close_map: {name}`)"),
                );
                None
            }
            _ => Some(name),
        }
    }

    /// A declared socket that is open at this step.
    pub fn open_socket(&mut self, name: &str, path: &FieldPath) -> Option<String> {
        let name = self.socket_name(name, path)?;
        match self.state.sockets.get(&name) {
            Some(Life::Open) => Some(name),
            Some(Life::NotYet) => {
                self.error(
                    path,
                    Point::Value,
                    format!("socket `{name}` is used before the `socket: {name}` step creates it"),
                );
                None
            }
            _ => {
                self.error(
                    path,
                    Point::Value,
                    format!("socket `{name}` is closed by then; to use its old number on purpose, write `closed_socket: {name}`"),
                );
                None
            }
        }
    }

    /// Checks every iteration of a repeat; the first iteration with errors stops it, since
    /// the others would repeat them.
    pub fn repeated_steps(&mut self, repeat: &RepeatArgs) -> Option<Vec<Step>> {
        let mut steps = Vec::new();
        for i in 0..repeat.times {
            let decls = match repeat.iteration(i) {
                Ok(decls) => decls,
                Err((j, message)) => {
                    let at = self.path.key("steps").index(j);
                    self.error(&at, Point::Value, message);
                    return None;
                }
            };
            for (j, decl) in decls.iter().enumerate() {
                let step = self.v.step(
                    &self.path.key("steps").index(j),
                    format!("{}.{}.{}", self.id, i + 1, j + 1),
                    decl,
                    self.ctx,
                    self.state,
                    self.in_child,
                )?;
                steps.extend(step);
            }
        }
        Some(steps)
    }

    /// The view of an operation that runs inside this step (a thread's), located at
    /// `path`.
    pub fn at(&mut self, path: FieldPath) -> StepCheck<'_> {
        StepCheck {
            v: &mut *self.v,
            ctx: self.ctx,
            state: &mut *self.state,
            path,
            id: self.id.clone(),
            in_child: self.in_child,
        }
    }

    /// Checks a fork's steps, which its child runs on copies of the descriptors: what the
    /// child closes stays open here.
    pub fn child_steps(&mut self, decls: &[StepDecl]) -> Option<Vec<Step>> {
        let mut child_state = self.state.clone();
        let mut steps = Vec::new();
        for (i, decl) in decls.iter().enumerate() {
            let step = self.v.step(
                &self.path.index(i),
                format!("{}.{}", self.id, i + 1),
                decl,
                self.ctx,
                &mut child_state,
                true,
            )?;
            steps.extend(step);
        }
        Some(steps)
    }
}
