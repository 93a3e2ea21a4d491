//! Socket lifecycle steps: create, connect, shutdown, pass, close, traffic and options.

use serde::{Deserialize, Serialize};

use super::{Life, StepCheck};
use crate::case::{
    Family, SockType, SocketSource, SocketSpec, Type,
    checked::{Checked, Outcomes},
    locate::Point,
};

operations! {
    pub enum SocketOp as SocketOpKind {
        /// Create a declared socket here instead of before the first step.
        Socket(String),
        /// connect(2) an open socket to a bound or listening one.
        Connect(ConnectArgs),
        /// shutdown(2) one or both directions of an open socket.
        Shutdown(ShutdownArgs),
        /// Pass a descriptor over a unix socket (SCM_RIGHTS).
        SendFd(SendFdArgs),
        Close(String),
        Send(TransferArgs),
        Recv(TransferArgs),
        /// setsockopt(2) of a SOL_SOCKET option, or of the harness's own (the setsockopt
        /// program's input).
        Setsockopt(SockoptArgs),
        /// getsockopt(2) of a SOL_SOCKET option, or of the harness's own (answered by the
        /// getsockopt program).
        Getsockopt(SockoptArgs),
    }
    runs_in_child: [Close],
    queries: [Getsockopt],
    slow: [],
}

/// What the executor runs for a socket step; sockets by their declared names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketAction {
    Create {
        socket: String,
    },
    Connect {
        socket: String,
        to: String,
    },
    Shutdown {
        socket: String,
        how: ShutdownHow,
    },
    SendFd {
        socket: String,
        fd_of: String,
    },
    Close {
        socket: String,
    },
    Transfer {
        socket: String,
        direction: Direction,
        bytes: u32,
    },
    SetOption {
        socket: String,
        option: ResolvedOption,
        /// In the option's layout.
        value: Vec<u8>,
    },
    GetOption {
        socket: String,
        option: ResolvedOption,
    },
}

/// Which way a transfer goes: send(2) or recv(2).
#[derive(
    schemars::JsonSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Direction {
    Send,
    Recv,
}

impl SocketOp {
    pub(super) fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<SocketAction>> {
        match self {
            SocketOp::Socket(socket) => check_create(socket, cx),
            SocketOp::Connect(args) => args.check(cx),
            SocketOp::Shutdown(args) => args.check(cx),
            SocketOp::SendFd(args) => args.check(cx),
            SocketOp::Close(socket) => check_close(socket, cx),
            SocketOp::Send(args) => args.check(Direction::Send, cx),
            SocketOp::Recv(args) => args.check(Direction::Recv, cx),
            SocketOp::Setsockopt(args) => args.check(true, cx),
            SocketOp::Getsockopt(args) => args.check(false, cx),
        }
    }
}

fn check_create(socket: &str, cx: &mut StepCheck<'_>) -> Option<Checked<SocketAction>> {
    let path = cx.path.clone();
    let socket = cx.declared(socket, &path, "socket")?;
    if cx.state.sockets.get(&socket) != Some(&Life::NotYet) {
        cx.error(
            &path,
            Point::Value,
            format!("socket `{socket}` is already created; declare another name for a new socket"),
        );
        return None;
    }
    if !cx.socket_creation_ok(&socket) {
        return None;
    }
    let spec = &cx.ctx.sockets[&socket];
    cx.state.sockets.insert(socket.clone(), Life::Open);
    let label = format!("create socket {socket} ({})", describe_socket(spec));
    Some(Checked::new(
        label,
        Outcomes::Status,
        SocketAction::Create { socket },
    ))
}

fn check_close(socket: &str, cx: &mut StepCheck<'_>) -> Option<Checked<SocketAction>> {
    let path = cx.path.clone();
    let socket = cx.open_socket(socket, &path)?;
    cx.state.sockets.insert(socket.clone(), Life::Closed);
    Some(Checked::new(
        format!("close {socket}"),
        Outcomes::Status,
        SocketAction::Close { socket },
    ))
}

/// How reports describe a declared descriptor: `inet stream, listening`.
pub(in crate::case) fn describe_socket(spec: &SocketSpec) -> String {
    let mut text = match &spec.source {
        SocketSource::New {
            family,
            kind,
            listen,
            bind,
            connect,
            socketpair,
        } => {
            let family = match family {
                Family::Inet => "inet",
                Family::Inet6 => "inet6",
                Family::Unix => "unix",
            };
            let kind = match kind {
                SockType::Stream => "stream",
                SockType::Dgram => "dgram",
                SockType::Seqpacket => "seqpacket",
            };
            let role = match (listen, bind, connect) {
                (true, _, _) => ", listening".to_string(),
                (_, true, _) => ", bound".to_string(),
                (_, _, Some(peer)) => format!(", connected to {peer}"),
                _ if *socketpair => ", one end of a socketpair".to_string(),
                _ => String::new(),
            };
            format!("{family} {kind}{role}")
        }
        SocketSource::Accept(l) => format!("accepted from {l}"),
        SocketSource::Dup(s) => format!("dup of {s}"),
        SocketSource::PairOf(s) => format!("the other end of {s}"),
        SocketSource::ReceivedOn(s) => format!("received over {s} (SCM_RIGHTS)"),
        SocketSource::File(p) => format!("file {}", p.display()),
    };
    if let Some(old) = &spec.reuse_fd_of {
        text.push_str(&format!(", at {old}'s old fd number"));
    }
    text
}

/// connect(2) `socket` to the address of `to`, as a step of its own so that anything can
/// happen between socket() and connect().
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectArgs {
    pub socket: String,
    pub to: String,
}

impl ConnectArgs {
    fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<SocketAction>> {
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
            cx.error(
                &path,
                Point::Value,
                "connect joins two new sockets (declared with `family`)",
            );
            return None;
        };
        if family != to_family || kind != to_kind {
            cx.error(
                &path.key("to"),
                Point::Value,
                format!("`{target}` has another family or type than `{socket}`"),
            );
            return None;
        }
        if !to_bound {
            cx.error(
                &path.key("to"),
                Point::Value,
                format!("`{target}` has no address: give it `listen: true` (stream) or `bind: true` (dgram)"),
            );
            return None;
        }
        if *bind {
            cx.error(
                &path.key("socket"),
                Point::Value,
                format!("`{socket}` binds or listens: a connecting socket does neither here"),
            );
            return None;
        }
        Some(Checked::new(
            format!("connect {socket} to {target}"),
            Outcomes::Status,
            SocketAction::Connect { socket, to: target },
        ))
    }
}

/// sendmsg(2) of `fd_of`'s descriptor over the unix socket `socket` (SCM_RIGHTS); the
/// receiving end takes it as a socket declared `received_on` its peer.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendFdArgs {
    pub socket: String,
    pub fd_of: String,
}

impl SendFdArgs {
    fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<SocketAction>> {
        let path = cx.path.clone();
        let socket = cx.open_socket(&self.socket, &path.key("socket"))?;
        let passed = cx.open_socket(&self.fd_of, &path.key("fd_of"))?;
        Some(Checked::new(
            format!("send {passed}'s descriptor over {socket} (SCM_RIGHTS)"),
            Outcomes::Status,
            SocketAction::SendFd {
                socket,
                fd_of: passed,
            },
        ))
    }
}

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownHow {
    Read,
    Write,
    Both,
}

/// shutdown(2): the socket stays open, with one or both directions closed.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownArgs {
    pub socket: String,
    pub how: ShutdownHow,
}

impl ShutdownArgs {
    fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<SocketAction>> {
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
            SocketAction::Shutdown {
                socket,
                how: self.how,
            },
        ))
    }
}

/// send(2) or recv(2) of `bytes` bytes, without blocking.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferArgs {
    pub socket: String,
    pub bytes: u32,
}

impl TransferArgs {
    fn check(&self, direction: Direction, cx: &mut StepCheck<'_>) -> Option<Checked<SocketAction>> {
        let path = cx.path.clone();
        let socket = cx.open_socket(&self.socket, &path.key("socket"))?;
        let op: &str = direction.into();
        Some(Checked::new(
            format!("{op} {} bytes on {socket}", self.bytes),
            Outcomes::Status,
            SocketAction::Transfer {
                socket,
                direction,
                bytes: self.bytes,
            },
        ))
    }
}

/// A socket option a case may set or read.
#[derive(Debug)]
struct SocketOption {
    name: &'static str,
    level: i32,
    optname: i32,
    /// Read-only options (SO_MEMINFO, SO_COOKIE…) refuse `setsockopt` at validation.
    settable: bool,
    value: OptionValue,
}

#[derive(Debug, Clone, Copy)]
enum OptionValue {
    /// The kernel's `int`.
    Int,
    U64,
    /// `u32[SK_MEMINFO_VARS]`, named as in include/uapi/linux/sock_diag.h.
    MemInfo,
}

/// The harness's own option, which the sockopt programs answer: what `setsockopt` and
/// `getsockopt` use when the case names no option.
const HARNESS_STORAGE_OPTION: &str = "HARNESS_STORAGE_VALUE";

const OPTIONS: &[SocketOption] = &[
    SocketOption {
        name: HARNESS_STORAGE_OPTION,
        level: sk_storage_common::SOL_HARNESS,
        optname: sk_storage_common::HARNESS_OPT_STORAGE_VALUE,
        settable: true,
        value: OptionValue::U64,
    },
    int_option("SO_REUSEADDR", libc::SO_REUSEADDR),
    int_option("SO_TYPE", libc::SO_TYPE),
    int_option("SO_ERROR", libc::SO_ERROR),
    int_option("SO_SNDBUF", libc::SO_SNDBUF),
    int_option("SO_RCVBUF", libc::SO_RCVBUF),
    int_option("SO_KEEPALIVE", libc::SO_KEEPALIVE),
    int_option("SO_PRIORITY", libc::SO_PRIORITY),
    int_option("SO_REUSEPORT", libc::SO_REUSEPORT),
    int_option("SO_MARK", libc::SO_MARK),
    int_option("SO_PROTOCOL", libc::SO_PROTOCOL),
    int_option("SO_DOMAIN", libc::SO_DOMAIN),
    SocketOption {
        name: "SO_MEMINFO",
        level: libc::SOL_SOCKET,
        optname: libc::SO_MEMINFO,
        settable: false,
        value: OptionValue::MemInfo,
    },
    SocketOption {
        name: "SO_COOKIE",
        level: libc::SOL_SOCKET,
        optname: libc::SO_COOKIE,
        settable: false,
        value: OptionValue::U64,
    },
];

const fn int_option(name: &'static str, optname: i32) -> SocketOption {
    SocketOption {
        name,
        level: libc::SOL_SOCKET,
        optname,
        settable: true,
        value: OptionValue::Int,
    }
}

/// A socket option as the executor sets or reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolvedOption {
    pub level: i32,
    pub optname: i32,
    /// The option's value as the kernel lays it out.
    pub value: Type,
}

impl SocketOption {
    fn named(name: &str) -> Option<&'static SocketOption> {
        OPTIONS.iter().find(|o| o.name == name)
    }

    fn resolved(&self) -> ResolvedOption {
        ResolvedOption {
            level: self.level,
            optname: self.optname,
            value: self.value_type(),
        }
    }

    /// The option's value as the kernel lays it out.
    fn value_type(&self) -> Type {
        let u32_type = || Type::Int {
            bytes: 4,
            signed: false,
        };
        match self.value {
            OptionValue::Int => Type::Int {
                bytes: 4,
                signed: true,
            },
            OptionValue::U64 => Type::Int {
                bytes: 8,
                signed: false,
            },
            OptionValue::MemInfo => Type::Struct {
                fields: [
                    "rmem_alloc",
                    "rcvbuf",
                    "wmem_alloc",
                    "sndbuf",
                    "fwd_alloc",
                    "wmem_queued",
                    "optmem",
                    "backlog",
                    "drops",
                ]
                .into_iter()
                .map(|name| (name.to_string(), u32_type()))
                .collect(),
            },
        }
    }
}

/// setsockopt(2) or getsockopt(2) of `option` (a SOL_SOCKET name such as SO_RCVBUF or
/// SO_MEMINFO; left out, the harness's own option that the sockopt programs answer).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SockoptArgs {
    pub socket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
    /// setsockopt only: the value, in the option's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub value: Option<serde_yaml::Value>,
}

impl SockoptArgs {
    fn check(&self, set: bool, cx: &mut StepCheck<'_>) -> Option<Checked<SocketAction>> {
        let path = cx.path.clone();
        let socket = cx.open_socket(&self.socket, &path.key("socket"))?;
        let name = self.option.as_deref().unwrap_or(HARNESS_STORAGE_OPTION);
        let Some(option) = SocketOption::named(name) else {
            let names = OPTIONS.iter().map(|o| o.name);
            let hint = crate::diagnostic::did_you_mean(name, names.clone());
            cx.error(
                &path.key("option"),
                Point::Value,
                format!(
                    "unknown socket option `{name}` (known: {}){hint}",
                    names.collect::<Vec<_>>().join(", ")
                ),
            );
            return None;
        };
        let resolved = option.resolved();
        match (set, &self.value) {
            (true, Some(value)) if option.settable => {
                let bytes = cx.encode(&path.key("value"), &resolved.value, value)?;
                Some(Checked::new(
                    format!(
                        "setsockopt({name}) on {socket} = {}",
                        serde_json::to_string(value).unwrap_or_default()
                    ),
                    Outcomes::Status,
                    SocketAction::SetOption {
                        socket,
                        option: resolved,
                        value: bytes,
                    },
                ))
            }
            (true, Some(_)) => {
                cx.error(
                    &path.key("option"),
                    Point::Value,
                    format!("{name} can only be read: use getsockopt"),
                );
                None
            }
            (true, None) => {
                cx.error(&path, Point::Value, "setsockopt needs a `value`");
                None
            }
            (false, None) => Some(Checked::new(
                format!("getsockopt({name}) on {socket}"),
                Outcomes::Value(resolved.value.clone()),
                SocketAction::GetOption {
                    socket,
                    option: resolved,
                },
            )),
            (false, Some(_)) => {
                cx.error(
                    &path.key("value"),
                    Point::Key,
                    "getsockopt takes no value: the expected one goes in `expect`",
                );
                None
            }
        }
    }
}
