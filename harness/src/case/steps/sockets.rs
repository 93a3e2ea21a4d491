//! Socket lifecycle steps: create, connect, shutdown, close, and traffic.

use serde::{Deserialize, Serialize};

use crate::case::{
    SocketSource,
    locate::Point,
    validate::{Checked, Life, Outcomes, StepCheck, describe_socket},
};

pub(super) fn check_create(socket: &str, cx: &mut StepCheck<'_, '_>) -> Option<Checked> {
    let path = cx.path.clone();
    let socket = cx.declared(socket, &path, "socket")?;
    if cx.state.sockets.get(&socket) != Some(&Life::NotYet) {
        cx.v.error(
            &path,
            Point::Value,
            format!("socket `{socket}` is already created; declare another name for a new socket"),
        );
        return None;
    }
    let spec = &cx.ctx.sockets[&socket];
    if !cx
        .v
        .socket_creation_ok(&socket, spec, cx.ctx.sockets, cx.state)
    {
        return None;
    }
    cx.state.sockets.insert(socket.clone(), Life::Open);
    let label = format!("create socket {socket} ({})", describe_socket(spec));
    Some(Checked::new(label, Outcomes::Status))
}

pub(super) fn check_close(socket: &str, cx: &mut StepCheck<'_, '_>) -> Option<Checked> {
    let path = cx.path.clone();
    let socket = cx.open_socket(socket, &path)?;
    cx.state.sockets.insert(socket.clone(), Life::Closed);
    Some(Checked::new(format!("close {socket}"), Outcomes::Status))
}

/// connect(2) `socket` to the address of `to`, as a step of its own so that anything can
/// happen between socket() and connect().
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectOp {
    pub socket: String,
    pub to: String,
}

impl ConnectOp {
    pub(super) fn check(&self, cx: &mut StepCheck<'_, '_>) -> Option<Checked> {
        let path = cx.path.clone();
        let socket = cx.open_socket(&self.socket, &path.key("socket"))?;
        let target = cx.open_socket(&self.to, &path.key("to"))?;
        let (
            SocketSource::New {
                family, kind, bind, ..
            },
            SocketSource::New {
                family: to_family,
                kind: to_kind,
                bind: to_bound,
                ..
            },
        ) = (
            &cx.ctx.sockets[&socket].source,
            &cx.ctx.sockets[&target].source,
        )
        else {
            cx.v.error(
                &path,
                Point::Value,
                "connect joins two new sockets (declared with `family`)",
            );
            return None;
        };
        if family != to_family || kind != to_kind {
            cx.v.error(
                &path.key("to"),
                Point::Value,
                format!("`{target}` has another family or type than `{socket}`"),
            );
            return None;
        }
        if !to_bound {
            cx.v.error(
                &path.key("to"),
                Point::Value,
                format!("`{target}` has no address: give it `listen: true` (stream) or `bind: true` (dgram)"),
            );
            return None;
        }
        if *bind {
            cx.v.error(
                &path.key("socket"),
                Point::Value,
                format!("`{socket}` binds or listens: a connecting socket does neither here"),
            );
            return None;
        }
        Some(Checked::new(
            format!("connect {socket} to {target}"),
            Outcomes::Status,
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownHow {
    Read,
    Write,
    Both,
}

/// shutdown(2): the socket stays open, with one or both directions closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownOp {
    pub socket: String,
    pub how: ShutdownHow,
}

impl ShutdownOp {
    pub(super) fn check(&self, cx: &mut StepCheck<'_, '_>) -> Option<Checked> {
        let path = cx.path.clone();
        let socket = cx.open_socket(&self.socket, &path.key("socket"))?;
        let how = match self.how {
            ShutdownHow::Read => "SHUT_RD",
            ShutdownHow::Write => "SHUT_WR",
            ShutdownHow::Both => "SHUT_RDWR",
        };
        Some(Checked::new(
            format!("shutdown {socket} ({how})"),
            Outcomes::Status,
        ))
    }
}

/// send(2) or recv(2) of `bytes` bytes, without blocking.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub socket: String,
    pub bytes: u32,
}

impl Transfer {
    pub(super) fn check(&self, op: &str, cx: &mut StepCheck<'_, '_>) -> Option<Checked> {
        let path = cx.path.clone();
        let socket = cx.open_socket(&self.socket, &path.key("socket"))?;
        Some(Checked::new(
            format!("{op} {} bytes on {socket}", self.bytes),
            Outcomes::Status,
        ))
    }
}
