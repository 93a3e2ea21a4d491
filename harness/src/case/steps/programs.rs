//! Steps about the eBPF object's programs: attach, detach, observe what they did.

use serde::{Deserialize, Serialize};

use super::{Life, StepCheck};
use crate::{
    case::{
        checked::{Checked, Outcomes},
        locate::Point,
    },
    catalogue::{ProgramKind, SockOpsOp},
};

operations! {
    pub enum ProgramOp as ProgramOpKind {
        /// Load a declared program (the verifier may refuse it) and attach it.
        Attach(String),
        Detach(String),
        /// The next record of a program about a socket not yet observed.
        Observe(ObserveArgs),
    }
    runs_in_child: [],
    queries: [],
    slow: [Attach, Detach],
}

/// What the executor runs for a program step; programs and sockets by their declared names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramAction {
    Attach {
        program: String,
    },
    Detach {
        program: String,
    },
    Observe {
        program: String,
        socket: String,
        /// sock_ops: only records of this callback.
        callback: Option<SockOpsOp>,
    },
}

impl ProgramOp {
    pub(super) fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<ProgramAction>> {
        match self {
            ProgramOp::Attach(program) => check_attach(program, true, cx),
            ProgramOp::Detach(program) => check_attach(program, false, cx),
            ProgramOp::Observe(args) => args.check(cx),
        }
    }
}

fn check_attach(
    program: &str,
    attach: bool,
    cx: &mut StepCheck<'_>,
) -> Option<Checked<ProgramAction>> {
    let path = cx.path.clone();
    let program = cx.declared(program, &path, "program")?;
    let attached = cx.state.programs.get(&program) == Some(&Life::Open);
    if attach == attached {
        let now = if attached {
            "already attached"
        } else {
            "not attached"
        };
        cx.error(
            &path,
            Point::Value,
            format!("program `{program}` is {now} here"),
        );
        return None;
    }
    let kind = cx.ctx.programs[&program].kind;
    if attach {
        cx.state.programs.insert(program.clone(), Life::Open);
        let label = format!("load and attach {program} ({})", kind.name());
        Some(Checked::new(
            label,
            Outcomes::Load,
            ProgramAction::Attach { program },
        ))
    } else {
        cx.state.programs.insert(program.clone(), Life::Closed);
        let label = format!("detach {program} ({})", kind.name());
        Some(Checked::new(
            label,
            Outcomes::Status,
            ProgramAction::Detach { program },
        ))
    }
}

/// The next record `program` left about `socket` that no earlier step observed.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveArgs {
    pub program: String,
    /// The socket the record is about (open or already closed).
    pub socket: String,
    /// sock_ops: only records of this callback (uapi name without `BPF_SOCK_OPS_`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
}

impl ObserveArgs {
    fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<ProgramAction>> {
        let path = cx.path.clone();
        let program = cx.declared(&self.program, &path.key("program"), "program")?;
        let socket = cx.socket_name(&self.socket, &path.key("socket"))?;
        if cx.state.sockets.get(&socket) == Some(&Life::NotYet) {
            cx.error(
                &path.key("socket"),
                Point::Value,
                format!("socket `{socket}` does not exist yet here"),
            );
            return None;
        }
        let spec = &cx.ctx.programs[&program];
        let callback = match &self.callback {
            None => None,
            Some(_) if spec.kind != ProgramKind::SockOps => {
                cx.error(
                    &path.key("callback"),
                    Point::Key,
                    "`callback` applies to sock_ops programs only",
                );
                return None;
            }
            Some(cb) => match SockOpsOp::from_name(cb) {
                Some(op) if spec.params.calls.on(op).is_some() => Some(op),
                Some(_) => {
                    cx.error(
                        &path.key("callback"),
                        Point::Value,
                        format!("program `{program}` does not act on {cb}: give it calls under its `callbacks`"),
                    );
                    return None;
                }
                None => {
                    cx.error(
                        &path.key("callback"),
                        Point::Value,
                        format!(
                            "unknown sock_ops callback `{cb}` (uapi name without BPF_SOCK_OPS_)"
                        ),
                    );
                    return None;
                }
            },
        };
        let on = callback
            .and_then(|c| c.name())
            .map(|c| format!(" on {c}"))
            .unwrap_or_default();
        let label = format!(
            "observe {program} ({}) about {socket}{on}",
            spec.kind.name()
        );
        // The record's calls are the list of its callback; without one, the lists of all
        // callbacks must agree.
        let lists = spec.params.calls.lists();
        let calls = match callback {
            Some(op) => spec.params.calls.on(op).unwrap_or_default(),
            None if lists.windows(2).all(|w| w[0] == w[1]) => lists[0],
            None => {
                cx.error(
                    &path,
                    Point::Value,
                    format!("program `{program}` makes other calls on other callbacks: say which with `callback`"),
                );
                return None;
            }
        };
        let outcomes = Outcomes::Calls {
            calls: calls.to_vec(),
            sock_ops: spec.kind == ProgramKind::SockOps,
        };
        let action = ProgramAction::Observe {
            program,
            socket,
            callback,
        };
        Some(Checked::new(label, outcomes, action))
    }
}
