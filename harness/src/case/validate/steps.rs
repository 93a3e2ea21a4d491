//! The walk over a case's steps: ids, the operation's own check ([`Op::check`]), the
//! expectation, and forks; with the primitives the operations' checks share.

use super::{Context, Life, Outcomes, State, Validator};
use crate::case::{
    Expectation, Expected, Step,
    locate::{FieldPath, Point},
    steps::{Op, RepeatOp, StepDecl},
};

/// What an operation's check gives back: how reports name the step, what it may expect,
/// and (for a fork) the checked steps its child runs.
pub struct Checked {
    pub label: String,
    pub outcomes: Outcomes,
    pub children: Vec<Step>,
}

impl Checked {
    pub fn new(label: String, outcomes: Outcomes) -> Self {
        Self {
            label,
            outcomes,
            children: Vec::new(),
        }
    }
}

/// One operation's view of the case while it is checked: the validator (for errors), the
/// declarations, and the state of maps, sockets and programs at this step.
pub struct StepCheck<'c, 'a> {
    pub v: &'c mut Validator<'a>,
    pub ctx: &'c Context<'c>,
    pub state: &'c mut State,
    /// The operation's value: `steps[2].update`.
    pub path: FieldPath,
    /// The step's id, for the ids of a fork's steps.
    id: String,
    /// The step runs in a forked child.
    in_child: bool,
}

impl StepCheck<'_, '_> {
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
        self.v.unknown_name(path, what, name, known.into_iter());
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
                self.v.error(
                    path,
                    Point::Value,
                    format!("map `{name}` is used before the `create_map: {name}` step"),
                );
                None
            }
            Some(Life::Closed) => {
                self.v.error(
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
                self.v.error(
                    path,
                    Point::Value,
                    format!("socket `{name}` is used before the `socket: {name}` step creates it"),
                );
                None
            }
            _ => {
                self.v.error(
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
    pub fn repeated_steps(&mut self, repeat: &RepeatOp) -> Option<Vec<Step>> {
        let mut steps = Vec::new();
        for i in 0..repeat.times {
            let decls = match repeat.iteration(i) {
                Ok(decls) => decls,
                Err((j, message)) => {
                    self.v
                        .error(&self.path.key("steps").index(j), Point::Value, message);
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
                steps.extend(step.spliced());
            }
        }
        Some(steps)
    }

    /// Checks an operation that runs inside this step (a thread's), located at `path`.
    pub fn check_nested(&mut self, op: &Op, path: FieldPath) -> Option<Checked> {
        op.check(&mut StepCheck {
            v: self.v,
            ctx: self.ctx,
            state: self.state,
            path,
            id: self.id.clone(),
            in_child: self.in_child,
        })
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
            );
            match step {
                Some(step) => steps.extend(step.spliced()),
                None => return None,
            }
        }
        Some(steps)
    }
}

impl Validator<'_> {
    /// Checks one step; `in_child`: it runs in a forked child.
    pub(super) fn step(
        &mut self,
        path: &FieldPath,
        id: String,
        decl: &StepDecl,
        ctx: &Context<'_>,
        state: &mut State,
        in_child: bool,
    ) -> Option<Step> {
        let op_path = path.key(decl.name);
        if in_child && !decl.op.runs_in_child() {
            self.error(
                &op_path,
                Point::Key,
                format!(
                    "a forked child runs only {}: `{}` needs the parent",
                    Op::CHILD_NAMES.join(", "),
                    decl.name
                ),
            );
            return None;
        }
        if decl.within.is_some() && !decl.op.is_query() {
            self.error(
                &path.key("within"),
                Point::Key,
                format!(
                    "`within` asks a step again until its expectation holds, which only queries may do ({}); `{}` changes state",
                    Op::QUERY_NAMES.join(", "),
                    decl.name
                ),
            );
            return None;
        }
        if let Some(within) = decl.within
            && within > crate::case::limits::MAX_WITHIN
        {
            self.error(
                &path.key("within"),
                Point::Value,
                format!(
                    "`within` waits {} at most, not {}: what a step waits for takes milliseconds, and a case has {} in all",
                    humantime::format_duration(crate::case::limits::MAX_WITHIN),
                    humantime::format_duration(within),
                    humantime::format_duration(crate::exec::CASE_TIMEOUT)
                ),
            );
            return None;
        }
        let checked = decl.op.check(&mut StepCheck {
            v: self,
            ctx,
            state,
            path: op_path.clone(),
            id: id.clone(),
            in_child,
        })?;
        // What the step reads is decoded into its result (a thread's reads only count).
        let size = |map: &str| u64::from(ctx.maps[map].value.size());
        let read = match &decl.op {
            Op::Lookup(op) | Op::LookupAndDelete(op) => size(&op.map),
            Op::Diag(op) if op.maps.is_empty() => ctx.maps.keys().map(|map| size(map)).sum(),
            Op::Diag(op) => op.maps.iter().map(|map| size(map)).sum(),
            _ => 0,
        };
        if !self.charge_read(&op_path, read) {
            return None;
        }
        // A repeat is replaced by its steps, which say what they expect.
        let expect = if let Op::Repeat(_) = decl.op {
            if !decl.expect.is_null() {
                self.error(
                    &path.key("expect"),
                    Point::Key,
                    "a repeat expects nothing itself: its steps say what they expect",
                );
                return None;
            }
            Expectation::always(Expected::Ok)
        } else {
            self.expectation(&path.key("expect"), &decl.expect, &checked.outcomes)?
        };
        Some(Step {
            id,
            label: checked.label,
            line: self.line_of(path),
            op: decl.op.clone(),
            expect,
            within: decl.within,
            children: checked.children,
        })
    }
}

impl Step {
    /// The steps that run in this one's place: a repeat's expansion, else the step itself.
    pub(in crate::case) fn spliced(self) -> Vec<Step> {
        match self.op {
            Op::Repeat(_) => self.children,
            _ => vec![self],
        }
    }
}
