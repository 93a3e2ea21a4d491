//! The walk over a case's steps: ids, the operation's own check (`Op::check`), the
//! expectation, and forks and repeats, whose steps the checks hand back to it through
//! [`Validation`].

use indexmap::IndexMap;

use super::Validator;
use crate::case::{
    SocketSpec, Step, flags,
    locate::{FieldPath, Point},
    steps::{CheckedStep, Context, Kind, State, StepCheck, StepDecl, StepKind, Validation},
    types::Type,
};

impl Validation for Validator<'_> {
    fn error(&mut self, path: &FieldPath, point: Point, message: String) {
        Validator::error(self, path, point, message);
    }

    fn unknown_name(&mut self, path: &FieldPath, what: &str, given: &str, known: &[&str]) {
        Validator::unknown_name(self, path, what, given, known.iter().copied());
    }

    fn encode(
        &mut self,
        path: &FieldPath,
        ty: &Type,
        value: &serde_yaml::Value,
    ) -> Option<Vec<u8>> {
        if !self.charge(path, ty) {
            return None;
        }
        ty.encode(value).map_err(|e| self.value_error(path, e)).ok()
    }

    fn flags(
        &mut self,
        value: &serde_yaml::Value,
        path: &FieldPath,
        table: &[flags::Flag],
    ) -> Option<u64> {
        Validator::flags(self, value, path, table)
    }

    fn socket_creation_ok(
        &mut self,
        name: &str,
        spec: &SocketSpec,
        sockets: &IndexMap<String, SocketSpec>,
        state: &State,
    ) -> bool {
        Validator::socket_creation_ok(self, name, spec, sockets, state)
    }

    fn step(
        &mut self,
        path: &FieldPath,
        id: String,
        decl: &StepDecl,
        ctx: &Context<'_>,
        state: &mut State,
        in_child: bool,
    ) -> Option<Vec<Step>> {
        let op_path = path.key(decl.name);
        let kind = decl.op.kind();
        if in_child && !kind.runs_in_child() {
            self.error(
                &op_path,
                Point::Key,
                format!(
                    "a forked child runs only {}: `{}` needs the parent",
                    Kind::names_where(Kind::runs_in_child).join(", "),
                    decl.name
                ),
            );
            return None;
        }
        if decl.within.is_some() && !kind.is_query() {
            self.error(
                &path.key("within"),
                Point::Key,
                format!(
                    "`within` asks a step again until its expectation holds, which only queries may do ({}); `{}` changes state",
                    Kind::names_where(Kind::is_query).join(", "),
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
        let checked = decl.op.check(&mut StepCheck::new(
            self,
            ctx,
            state,
            op_path.clone(),
            id.clone(),
            in_child,
        ))?;
        let checked = match checked {
            CheckedStep::Step(checked) => checked,
            // A repeat is replaced by its steps, which say what they expect.
            CheckedStep::Repeat(steps) if decl.expect.is_null() => return Some(steps),
            CheckedStep::Repeat(_) => {
                self.error(
                    &path.key("expect"),
                    Point::Key,
                    "a repeat expects nothing itself: its steps say what they expect",
                );
                return None;
            }
        };
        if !self.charge_read(&op_path, checked.reads) {
            return None;
        }
        let expect = self.expectation(&path.key("expect"), &decl.expect, &checked.outcomes)?;
        Some(vec![Step {
            id,
            label: checked.label,
            line: self.line_of(path),
            action: checked.action,
            expect,
            within: decl.within,
            children: checked.children,
        }])
    }
}
