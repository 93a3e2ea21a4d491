//! Creates the descriptors a case declares: sockets bound, listening, connected or
//! accepted over loopback, dups, and non-socket files.

use std::{
    os::{
        fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::fs::{FileTypeExt, MetadataExt},
    },
    path::Path,
};

use nix::{
    errno::Errno,
    fcntl::{FcntlArg, OFlag, fcntl},
    sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType as NixSockType, SockaddrIn, SockaddrIn6,
        UnixAddr, accept4, bind, listen, socket,
    },
    sys::stat::{major, minor},
};

use crate::{
    case::{Family, SockType, SocketSource},
    exec::sys::{self, Kernel, SocketSyscalls},
};

/// A descriptor just opened, and for a socketpair its other end, which waits for the
/// socket declared `pair_of` it.
pub struct Opened {
    pub fd: OwnedFd,
    pub other_end: Option<OwnedFd>,
}

/// Opens the descriptor `source` describes. `peer` resolves the sockets it refers to; a
/// `pair_of` socket is the other end kept when its pair was opened, which the caller holds.
pub fn open(
    name: &str,
    source: &SocketSource,
    peer: impl Fn(&str) -> Option<RawFd>,
) -> Result<Opened, Errno> {
    let alone = |fd| Opened {
        fd,
        other_end: None,
    };
    match source {
        // Validation allows a socketpair only as a plain unix socket.
        SocketSource::New {
            kind,
            socketpair: true,
            ..
        } => {
            let (fd, other_end) = nix::sys::socket::socketpair(
                AddressFamily::Unix,
                sock_type(*kind),
                None,
                SockFlag::SOCK_CLOEXEC,
            )?;
            Ok(Opened {
                fd,
                other_end: Some(other_end),
            })
        }
        SocketSource::New {
            family,
            kind,
            bind: binds,
            listen: listens,
            connect: target,
            socketpair: false,
        } => {
            let domain = match family {
                Family::Inet => AddressFamily::Inet,
                Family::Inet6 => AddressFamily::Inet6,
                Family::Unix => AddressFamily::Unix,
            };
            let fd = socket(domain, sock_type(*kind), SockFlag::SOCK_CLOEXEC, None)?;
            if *binds {
                match family {
                    Family::Inet => bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0))?,
                    Family::Inet6 => bind(
                        fd.as_raw_fd(),
                        &SockaddrIn6::from(std::net::SocketAddrV6::new(
                            std::net::Ipv6Addr::LOCALHOST,
                            0,
                            0,
                            0,
                        )),
                    )?,
                    // Abstract addresses belong to the case's network namespace.
                    Family::Unix => bind(
                        fd.as_raw_fd(),
                        &UnixAddr::new_abstract(format!("sk-harness/{name}").as_bytes())?,
                    )?,
                }
            }
            if *listens {
                listen(&fd, Backlog::new(16)?)?;
                // accept() of a declared socket must never block the run: without a
                // pending connection it fails with EAGAIN instead.
                let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
                fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
            }
            if let Some(target) = target {
                let target = peer(target).ok_or(Errno::EBADF)?;
                Kernel
                    .connect_to(fd.as_raw_fd(), target)
                    .map_err(Errno::from_raw)?;
            }
            Ok(alone(fd))
        }
        SocketSource::Accept(listener) => {
            let listener = peer(listener).ok_or(Errno::EBADF)?;
            // SAFETY: the listener stays open for the duration of the call.
            let listener = unsafe { std::os::fd::BorrowedFd::borrow_raw(listener) };
            // A connect() over loopback returns once the client sent its ACK, before the
            // listener has processed it (seen as EAGAIN under load): wait, boundedly, for
            // the connection to be pending. Without one, accept still fails with EAGAIN.
            let mut ready = [nix::poll::PollFd::new(
                listener,
                nix::poll::PollFlags::POLLIN,
            )];
            let _ = nix::poll::poll(&mut ready, ACCEPT_WAIT_MS);
            accept4(listener, SockFlag::SOCK_CLOEXEC).map(alone)
        }
        SocketSource::Dup(of) => {
            let of = peer(of).ok_or(Errno::EBADF)?;
            // SAFETY: `of` is open; the duplicate is a new descriptor we own.
            nix::unistd::dup(unsafe { std::os::fd::BorrowedFd::borrow_raw(of) }).map(alone)
        }
        SocketSource::PairOf(_) => unreachable!("the caller holds a socketpair's other end"),
        SocketSource::File(_) => unreachable!("the caller opens files with open_file"),
        SocketSource::ReceivedOn(on) => receive_fd(peer(on).ok_or(Errno::EBADF)?).map(alone),
    }
}

/// Why a `file:` descriptor was not opened.
pub enum FileRefused {
    /// open(2) failed.
    Errno(Errno),
    /// The file is something the executor does not open for a case: the reason.
    NotPlain(String),
}

/// Opens a `file:` descriptor: without blocking (a FIFO would hold open(2) until a writer
/// came), and only a regular file or the null device, whose opening does nothing else (a
/// device's open may act: a watchdog starts counting down).
pub fn open_file(path: &Path) -> Result<OwnedFd, FileRefused> {
    let (file, meta) = crate::input_file::open_without_blocking(path)
        .map_err(|e| FileRefused::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    let null_device = meta.file_type().is_char_device()
        && (major(meta.rdev()), minor(meta.rdev())) == (NULL_DEVICE_MAJOR, NULL_DEVICE_MINOR);
    if meta.is_file() || null_device {
        Ok(file.into())
    } else {
        Err(FileRefused::NotPlain(format!(
            "{} is {}: a `file:` descriptor is a regular file or /dev/null",
            path.display(),
            crate::input_file::kind(&meta)
        )))
    }
}

/// /dev/null's device numbers (Documentation/admin-guide/devices.txt).
const NULL_DEVICE_MAJOR: u64 = 1;
const NULL_DEVICE_MINOR: u64 = 3;

/// How long a declared accept waits for its connection to be pending.
const ACCEPT_WAIT_MS: u16 = 2000;

fn sock_type(kind: SockType) -> NixSockType {
    match kind {
        SockType::Stream => NixSockType::Stream,
        SockType::Dgram => NixSockType::Datagram,
        SockType::Seqpacket => NixSockType::SeqPacket,
    }
}

/// Receives one descriptor sent with SCM_RIGHTS on `fd`, without blocking.
fn receive_fd(fd: RawFd) -> Result<OwnedFd, Errno> {
    let mut byte = [0u8; 1];
    let mut data = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = nix::sys::socket::recvmsg::<()>(
        fd,
        &mut data,
        Some(&mut space),
        nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in message.cmsgs()? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&received) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(received) });
        }
    }
    // A message without a descriptor: nothing was passed.
    Err(Errno::ENOMSG)
}

/// Moves `fd` to the number `target`, which must be free. Used to put a new socket on a
/// closed socket's number deterministically instead of hoping the kernel reuses it.
pub fn move_to(fd: OwnedFd, target: RawFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() == target {
        return Ok(fd);
    }
    if sys::is_open(target) {
        return Err(Errno::EBUSY);
    }
    // SAFETY: target is free (checked above) and dup3 makes it a copy of fd, which we own.
    let ret = unsafe { libc::dup3(fd.as_raw_fd(), target, libc::O_CLOEXEC) };
    Errno::result(ret)?;
    // SAFETY: dup3 returned target as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(target) })
}
