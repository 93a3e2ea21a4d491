//! What the programs report: each `HelperRecord` from the record queue as a plain
//! [`Observation`], and the socket identity cases match observations by.

use std::{
    io,
    os::fd::{AsFd, AsRawFd},
};

use nix::sys::socket::{SockaddrStorage, getpeername, getsockname};
use serde::Serialize;
use sk_storage_common::{HelperRecord, SocketStorage, call_op, call_outcome};

use crate::catalogue::{ProgramKind, SockOpsOp, StorageMap};

/// What one call of a run's list did, in the order of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "call", content = "result", rename_all = "snake_case")]
pub enum CallOutcome {
    Get(GetResult),
    Delete(DeleteResult),
    Write(WriteResult),
}

/// What `bpf_sk_storage_get` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum GetResult {
    /// The program had no full socket to pass (request or time-wait socket), so it did not
    /// call the helper.
    NoSocket,
    /// The helper returned NULL.
    Null,
    /// The helper returned a pointer to this storage (as read right after the call, before
    /// the later calls and the program's own update changed it).
    Pointer { storage: SocketStorage },
}

/// What `bpf_sk_storage_delete` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeleteResult {
    NoSocket,
    /// The helper's return value: 0 or a negative errno (-ENOENT without storage).
    Returned {
        value: i32,
    },
}

/// What a write of the list did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum WriteResult {
    /// The value was stored in the storage the most recent get returned.
    Written,
    /// No get came before it, or the most recent one returned NULL (or had no socket).
    NoStorage,
}

/// The socket a record is about, as far as the program type can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ObservedSocket {
    /// The socket cookie (sock_ops, cgroup_skb, connect4/6); `None` where the program type
    /// cannot read it (sockopt, sock_create, tracing, LSM).
    pub cookie: Option<u64>,
    /// AF_INET / AF_INET6, 0 when unknown.
    pub family: u32,
    /// Host byte order; 0 while unbound. In connect4/6 the socket is not bound yet.
    pub local_port: u16,
    /// Host byte order. In connect4/6: the port being connected to.
    pub remote_port: u16,
}

/// One program run that passed its filters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Observation {
    pub program: ProgramKind,
    /// sock_ops: the callback.
    pub callback: Option<SockOpsOp>,
    /// sock_ops: the callback's `args[0]` and `args[1]` (STATE_CB: the old and the new TCP
    /// state, `TCP_ESTABLISHED` = 1 …).
    pub callback_args: Option<[u32; 2]>,
    /// cgroup_skb: the packet length; sockopt: the optname; 0 otherwise.
    pub detail: u32,
    /// Tracing and LSM: the thread the program ran in.
    pub thread: Option<u32>,
    pub socket: ObservedSocket,
    pub map: StorageMap,
    /// One outcome per call of the run's list, in order.
    pub calls: Vec<CallOutcome>,
}

#[derive(Debug, thiserror::Error)]
pub enum ObservationError {
    #[error(
        "a record carries unknown {field} {value}; the embedded eBPF object and the loader disagree, rebuild the harness"
    )]
    UnknownCode { field: &'static str, value: u32 },
}

impl Observation {
    pub(crate) fn from_record(record: &HelperRecord) -> Result<Self, ObservationError> {
        let unknown = |field, value| ObservationError::UnknownCode { field, value };
        let program = ProgramKind::from_id(record.program)
            .ok_or_else(|| unknown("program", record.program))?;
        let map = StorageMap::from_id(record.map).ok_or_else(|| unknown("map", record.map))?;
        let calls = record
            .calls
            .iter()
            .filter(|call| call.op != call_op::NONE)
            .map(|call| {
                let outcome = match (call.op, call.outcome) {
                    (call_op::GET, call_outcome::NO_SOCKET) => {
                        CallOutcome::Get(GetResult::NoSocket)
                    }
                    (call_op::GET, call_outcome::NULL) => CallOutcome::Get(GetResult::Null),
                    (call_op::GET, call_outcome::POINTER) => CallOutcome::Get(GetResult::Pointer {
                        storage: call.storage,
                    }),
                    (call_op::DELETE, call_outcome::NO_SOCKET) => {
                        CallOutcome::Delete(DeleteResult::NoSocket)
                    }
                    (call_op::DELETE, call_outcome::RETURNED) => {
                        CallOutcome::Delete(DeleteResult::Returned { value: call.ret })
                    }
                    (call_op::WRITE, call_outcome::WRITTEN) => {
                        CallOutcome::Write(WriteResult::Written)
                    }
                    (call_op::WRITE, call_outcome::NO_STORAGE) => {
                        CallOutcome::Write(WriteResult::NoStorage)
                    }
                    (call_op::GET | call_op::DELETE | call_op::WRITE, other) => {
                        return Err(unknown("call outcome", other));
                    }
                    (other, _) => return Err(unknown("call", other)),
                };
                Ok(outcome)
            })
            .collect::<Result<_, _>>()?;
        let sock_ops = program == ProgramKind::SockOps;
        Ok(Self {
            program,
            callback: sock_ops.then_some(SockOpsOp(record.event)),
            callback_args: sock_ops.then_some(record.args),
            detail: record.detail,
            thread: (record.tid != 0).then_some(record.tid),
            socket: ObservedSocket {
                cookie: (record.cookie != 0).then_some(record.cookie),
                family: record.family,
                local_port: record.local_port,
                remote_port: record.remote_port,
            },
            map,
            calls,
        })
    }

    /// Whether this observation is about the socket `key` describes: by cookie where the
    /// program could read it, otherwise by the (local, remote) port pair. A connect4/6
    /// record always has a cookie, so its not-yet-bound local port does not matter.
    pub fn is_about(&self, key: &SocketKey) -> bool {
        match self.socket.cookie {
            Some(cookie) => cookie == key.cookie,
            None => {
                self.socket.local_port == key.local_port
                    && self.socket.remote_port == key.remote_port
            }
        }
    }

    /// The storage the run's first get returned, if it returned a pointer.
    pub fn storage(&self) -> Option<SocketStorage> {
        self.calls.iter().find_map(|call| match call {
            CallOutcome::Get(GetResult::Pointer { storage }) => Some(*storage),
            _ => None,
        })
    }
}

/// How userspace names a socket to match observations against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SocketKey {
    /// `SO_COOKIE`.
    pub cookie: u64,
    /// Host byte order, 0 when unbound.
    pub local_port: u16,
    /// Host byte order, 0 when not connected.
    pub remote_port: u16,
}

impl SocketKey {
    /// Reads the socket's cookie and ports now (ports change with bind/connect: take the
    /// key after them).
    pub fn of(socket: &impl AsFd) -> io::Result<Self> {
        let fd = socket.as_fd();
        let cookie = socket_cookie(fd.as_raw_fd())?;
        let port = |address: nix::Result<SockaddrStorage>| match address {
            Ok(address) => Ok(port_of(&address)),
            Err(nix::errno::Errno::ENOTCONN) => Ok(0),
            Err(e) => Err(io::Error::from(e)),
        };
        Ok(Self {
            cookie,
            local_port: port(getsockname(fd.as_raw_fd()))?,
            remote_port: port(getpeername(fd.as_raw_fd()))?,
        })
    }
}

/// `getsockopt(SO_COOKIE)`, which nix does not wrap.
fn socket_cookie(fd: std::os::fd::RawFd) -> io::Result<u64> {
    let mut cookie = 0u64;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `cookie`.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    if ret == 0 {
        Ok(cookie)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn port_of(address: &SockaddrStorage) -> u16 {
    if let Some(v4) = address.as_sockaddr_in() {
        v4.port()
    } else if let Some(v6) = address.as_sockaddr_in6() {
        v6.port()
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sk_storage_common::CallResult;

    fn result(op: u32, outcome: u32) -> CallResult {
        CallResult {
            op,
            outcome,
            ..CallResult::default()
        }
    }

    fn record() -> HelperRecord {
        let storage = SocketStorage {
            value: 5,
            events: 0,
            bytes: 0,
        };
        HelperRecord {
            program: ProgramKind::SockOps.id(),
            event: 10,
            args: [1, 4],
            detail: 0,
            tid: 0,
            cookie: 99,
            family: 2,
            local_port: 40000,
            remote_port: 8080,
            map: 1,
            _pad: 0,
            calls: [
                CallResult {
                    storage,
                    ..result(call_op::GET, call_outcome::POINTER)
                },
                result(call_op::WRITE, call_outcome::WRITTEN),
                CallResult {
                    ret: -2,
                    ..result(call_op::DELETE, call_outcome::RETURNED)
                },
                result(call_op::NONE, 0),
            ],
        }
    }

    #[test]
    fn records_become_observations_with_one_outcome_per_call() {
        let observation = Observation::from_record(&record()).expect("observation");
        assert_eq!(observation.program, ProgramKind::SockOps);
        assert_eq!(observation.callback, Some(SockOpsOp::STATE_CB));
        assert_eq!(observation.callback_args, Some([1, 4]));
        assert_eq!(observation.map, StorageMap::Clone);
        let storage = SocketStorage {
            value: 5,
            events: 0,
            bytes: 0,
        };
        assert_eq!(
            observation.calls,
            [
                CallOutcome::Get(GetResult::Pointer { storage }),
                CallOutcome::Write(WriteResult::Written),
                CallOutcome::Delete(DeleteResult::Returned { value: -2 }),
            ]
        );
        assert_eq!(observation.storage(), Some(storage));
        assert_eq!(observation.thread, None);
        assert_eq!(observation.socket.cookie, Some(99));
    }

    #[test]
    fn unknown_codes_are_refused() {
        let mut bad = record();
        bad.calls[1].outcome = 42;
        assert!(matches!(
            Observation::from_record(&bad),
            Err(ObservationError::UnknownCode {
                field: "call outcome",
                value: 42
            })
        ));
        bad.calls[1].op = 9;
        assert!(matches!(
            Observation::from_record(&bad),
            Err(ObservationError::UnknownCode {
                field: "call",
                value: 9
            })
        ));
    }

    #[test]
    fn matching_uses_the_cookie_when_present_and_ports_otherwise() {
        let with_cookie = Observation::from_record(&record()).expect("observation");
        let key = SocketKey {
            cookie: 99,
            local_port: 1,
            remote_port: 2,
        };
        assert!(with_cookie.is_about(&key));
        assert!(!with_cookie.is_about(&SocketKey { cookie: 98, ..key }));

        let without_cookie = Observation::from_record(&HelperRecord {
            program: ProgramKind::Setsockopt.id(),
            cookie: 0,
            ..record()
        })
        .expect("observation");
        assert_eq!(without_cookie.callback, None);
        assert_eq!(without_cookie.callback_args, None);
        assert!(without_cookie.is_about(&SocketKey {
            cookie: 1,
            local_port: 40000,
            remote_port: 8080
        }));
        assert!(!without_cookie.is_about(&SocketKey {
            cookie: 1,
            local_port: 40000,
            remote_port: 8081
        }));
    }
}
