//! Socket steps: creating the descriptors a case declares, closing them, and the calls
//! made on them.

mod open;

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};

use super::{
    sys::Prepared,
    world::{World, status},
};
use crate::{
    case::{
        SocketSource,
        steps::{Direction, SocketAction},
    },
    results::Actual,
};

/// The byte a send step fills its payload with.
const PAYLOAD_BYTE: u8 = 0x5a;

pub(super) fn perform(world: &mut World<'_>, action: &SocketAction) -> Result<Actual, Actual> {
    let kernel = world.kernel;
    Ok(match action {
        SocketAction::Create { socket } => create(world, socket),
        SocketAction::Close { socket } => {
            let fd = world.fds.remove(socket).ok_or_else(|| Actual::NotRun {
                reason: format!("socket {socket} was not created"),
            })?;
            world.keys.remember(socket, &fd);
            world.closed.insert(socket.clone(), fd.as_raw_fd());
            status(kernel.close(fd.into_raw_fd()))
        }
        SocketAction::Connect { socket, to } => {
            status(kernel.connect_to(world.socket_fd(socket)?, world.socket_fd(to)?))
        }
        SocketAction::SendFd { socket, fd_of } => {
            status(kernel.send_fd(world.socket_fd(socket)?, world.socket_fd(fd_of)?))
        }
        SocketAction::Shutdown { socket, how } => {
            status(kernel.shutdown(world.socket_fd(socket)?, *how))
        }
        SocketAction::Transfer {
            socket,
            direction,
            bytes,
        } => {
            let fd = world.socket_fd(socket)?;
            let mut buf = vec![PAYLOAD_BYTE; *bytes as usize];
            let moved = match direction {
                Direction::Send => kernel.send(fd, &buf),
                Direction::Recv => kernel.recv(fd, &mut buf),
            };
            match moved {
                Ok(n) if n == *bytes as usize => Actual::Ok,
                Ok(n) => Actual::Returned { value: n as i64 },
                Err(errno) => Actual::errno(errno),
            }
        }
        SocketAction::SetOption {
            socket,
            option,
            value,
        } => status(kernel.set_option(world.socket_fd(socket)?, option, value)),
        SocketAction::GetOption { socket, option } => {
            let fd = world.socket_fd(socket)?;
            match kernel.get_option(fd, option, option.value.size() as usize) {
                Ok(bytes) => Actual::Value {
                    value: option.value.decode(&bytes),
                },
                Err(errno) => Actual::errno(errno),
            }
        }
    })
}

/// A close, made ready for a forked child: it closes the child's copy.
pub(super) fn prepare(world: &World<'_>, action: &SocketAction) -> Result<Prepared, Actual> {
    match action {
        SocketAction::Close { socket } => world.socket_fd(socket).map(Prepared::Close),
        _ => Err(Actual::NotRun {
            reason: "a forked child closes sockets but makes no other socket call".into(),
        }),
    }
}

fn create(world: &mut World<'_>, name: &str) -> Actual {
    let spec = &world.case.sockets[name];
    match &spec.source {
        SocketSource::PairOf(end) => {
            return match world.pending_pairs.remove(end) {
                Some(fd) => place(world, name, Ok(fd)),
                None => Actual::NotRun {
                    reason: format!("{end}, whose other end this is, was not created"),
                },
            };
        }
        SocketSource::File(path) => {
            return match open::open_file(path) {
                Ok(fd) => place(world, name, Ok(fd)),
                Err(open::FileRefused::Errno(errno)) => place(world, name, Err(errno)),
                Err(open::FileRefused::NotPlain(reason)) => Actual::NotRun { reason },
            };
        }
        _ => {}
    }
    let fds = &world.fds;
    let opening = || {
        open::open(name, &spec.source, |peer| {
            fds.get(peer).map(AsRawFd::as_raw_fd)
        })
    };
    // With programs, sockets are made inside the case's cgroup so its programs see them.
    let opened = match &world.bpf {
        Some(bpf) => match bpf.in_cgroup(opening) {
            Ok(opened) => opened,
            Err(e) => {
                return Actual::NotRun {
                    reason: crate::error_chain(&e),
                };
            }
        },
        None => opening(),
    };
    let opened = opened.map(|opened| {
        if let Some(other_end) = opened.other_end {
            world.pending_pairs.insert(name.to_string(), other_end);
        }
        opened.fd
    });
    place(world, name, opened)
}

/// Puts a new descriptor where its declaration says and records it under `name`.
fn place(world: &mut World<'_>, name: &str, opened: nix::Result<OwnedFd>) -> Actual {
    let spec = &world.case.sockets[name];
    let placed = opened.and_then(|fd| match &spec.reuse_fd_of {
        Some(old) => match world.closed.get(old) {
            Some(number) => open::move_to(fd, *number),
            None => Err(nix::errno::Errno::EBADF),
        },
        None => Ok(fd),
    });
    match placed {
        Ok(fd) => {
            world.keys.remember(name, &fd);
            world.fds.insert(name.to_string(), fd);
            Actual::Ok
        }
        Err(errno) => Actual::errno(errno as i32),
    }
}
