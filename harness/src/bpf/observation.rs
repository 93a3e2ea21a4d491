//! What the programs report: each `HelperRecord` from the record queue as a plain
//! [`Observation`], and the socket identity cases match observations by.

use std::{
    io,
    os::fd::{AsFd, AsRawFd},
};

use nix::sys::socket::{SockaddrStorage, getpeername, getsockname};
use serde::Serialize;
use sk_storage_common::{HelperRecord, SocketStorage, delete_outcome, get_outcome};

use crate::catalogue::{ProgramKind, SockOpsOp, StorageMap};

/// What `bpf_sk_storage_get` did in one program run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum GetResult {
    /// The program's parameters did not ask for the call.
    NotCalled,
    /// The program had no full socket to pass (request or time-wait socket), so it did not
    /// call the helper.
    NoSocket,
    /// The helper returned NULL.
    Null,
    /// The helper returned a pointer to this storage (as read right after the call, before
    /// the program updated it).
    Pointer { storage: SocketStorage },
}

/// What `bpf_sk_storage_delete` did in one program run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeleteResult {
    NotCalled,
    NoSocket,
    /// The helper's return value: 0 or a negative errno (-ENOENT without storage).
    Returned {
        value: i32,
    },
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Observation {
    pub program: ProgramKind,
    /// sock_ops: the callback.
    pub callback: Option<SockOpsOp>,
    /// sock_ops: `args[1]` (the new TCP state in STATE_CB); cgroup_skb: the packet length;
    /// sockopt: the optname; 0 otherwise.
    pub detail: u32,
    /// Tracing and LSM: the thread the program ran in.
    pub thread: Option<u32>,
    pub socket: ObservedSocket,
    pub map: StorageMap,
    /// The flags passed to the get (meaningful when it was called).
    pub get_flags: u64,
    pub get: GetResult,
    pub delete: DeleteResult,
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
        let get = match record.get {
            get_outcome::NOT_CALLED => GetResult::NotCalled,
            get_outcome::NO_SOCKET => GetResult::NoSocket,
            get_outcome::NULL => GetResult::Null,
            get_outcome::POINTER => GetResult::Pointer {
                storage: record.storage,
            },
            other => return Err(unknown("get outcome", other)),
        };
        let delete = match record.delete {
            delete_outcome::NOT_CALLED => DeleteResult::NotCalled,
            delete_outcome::NO_SOCKET => DeleteResult::NoSocket,
            delete_outcome::CALLED => DeleteResult::Returned {
                value: record.delete_ret,
            },
            other => return Err(unknown("delete outcome", other)),
        };
        Ok(Self {
            program,
            callback: (program == ProgramKind::SockOps).then_some(SockOpsOp(record.event)),
            detail: record.detail,
            thread: (record.tid != 0).then_some(record.tid),
            socket: ObservedSocket {
                cookie: (record.cookie != 0).then_some(record.cookie),
                family: record.family,
                local_port: record.local_port,
                remote_port: record.remote_port,
            },
            map,
            get_flags: record.get_flags,
            get,
            delete,
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

    /// The storage the get returned, if it returned a pointer.
    pub fn storage(&self) -> Option<SocketStorage> {
        match self.get {
            GetResult::Pointer { storage } => Some(storage),
            _ => None,
        }
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
    use sk_storage_common::program_id;

    fn record() -> HelperRecord {
        HelperRecord {
            program: program_id::SOCK_OPS,
            event: 4,
            detail: 0,
            tid: 0,
            cookie: 99,
            family: 2,
            local_port: 40000,
            remote_port: 8080,
            map: 1,
            get: get_outcome::POINTER,
            get_flags: 1,
            storage: SocketStorage {
                value: 5,
                events: 0,
                bytes: 0,
            },
            delete: delete_outcome::CALLED,
            delete_ret: -2,
        }
    }

    #[test]
    fn records_become_observations() {
        let observation = Observation::from_record(&record()).expect("observation");
        assert_eq!(observation.program, ProgramKind::SockOps);
        assert_eq!(observation.callback, Some(SockOpsOp::ACTIVE_ESTABLISHED_CB));
        assert_eq!(observation.map, StorageMap::Clone);
        assert_eq!(
            observation.storage(),
            Some(SocketStorage {
                value: 5,
                events: 0,
                bytes: 0
            })
        );
        assert_eq!(observation.delete, DeleteResult::Returned { value: -2 });
        assert_eq!(observation.thread, None);
        assert_eq!(observation.socket.cookie, Some(99));
    }

    #[test]
    fn unknown_codes_are_refused() {
        let bad = HelperRecord {
            get: 42,
            ..record()
        };
        assert!(matches!(
            Observation::from_record(&bad),
            Err(ObservationError::UnknownCode {
                field: "get outcome",
                value: 42
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
            program: program_id::SETSOCKOPT,
            cookie: 0,
            ..record()
        })
        .expect("observation");
        assert_eq!(without_cookie.callback, None);
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
