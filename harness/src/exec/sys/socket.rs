//! The socket calls of socket steps.

use std::os::fd::RawFd;

use nix::{
    errno::Errno as NixErrno,
    sys::socket::{
        ControlMessage, MsgFlags, Shutdown, SockaddrStorage, connect, getsockname, sendmsg,
    },
};

use super::{Errno, Kernel, SocketSyscalls};
use crate::case::steps::{ResolvedOption, ShutdownHow};

fn raw(result: nix::Result<()>) -> Result<(), Errno> {
    result.map_err(|errno| errno as Errno)
}

impl SocketSyscalls for Kernel {
    fn close(&self, fd: RawFd) -> Result<(), Errno> {
        // SAFETY: the caller gives up the descriptor; nothing uses the number afterwards.
        match unsafe { libc::close(fd) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
        }
    }

    fn connect_to(&self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
        let connected = getsockname::<SockaddrStorage>(target).and_then(|addr| connect(fd, &addr));
        raw(connected)
    }

    /// With one byte of data, which stream sockets need to carry the message.
    fn send_fd(&self, fd: RawFd, passed: RawFd) -> Result<(), Errno> {
        let fds = [passed];
        let control = [ControlMessage::ScmRights(&fds)];
        let data = [std::io::IoSlice::new(b"F")];
        raw(sendmsg::<()>(fd, &data, &control, MsgFlags::MSG_DONTWAIT, None).map(drop))
    }

    fn shutdown(&self, fd: RawFd, how: ShutdownHow) -> Result<(), Errno> {
        let how = match how {
            ShutdownHow::Read => Shutdown::Read,
            ShutdownHow::Write => Shutdown::Write,
            ShutdownHow::Both => Shutdown::Both,
        };
        raw(nix::sys::socket::shutdown(fd, how))
    }

    /// MSG_NOSIGNAL: a send on a shut down socket answers EPIPE instead of killing the run.
    fn send(&self, fd: RawFd, payload: &[u8]) -> Result<usize, Errno> {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        nix::sys::socket::send(fd, payload, flags).map_err(|errno| errno as Errno)
    }

    fn recv(&self, fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
        nix::sys::socket::recv(fd, buf, MsgFlags::MSG_DONTWAIT).map_err(|errno| errno as Errno)
    }

    fn set_option(&self, fd: RawFd, option: &ResolvedOption, value: &[u8]) -> Result<(), Errno> {
        // SAFETY: passes a buffer we own, with its length.
        let ret = unsafe {
            libc::setsockopt(
                fd,
                option.level,
                option.optname,
                value.as_ptr().cast(),
                value.len() as libc::socklen_t,
            )
        };
        raw(NixErrno::result(ret).map(drop))
    }

    fn get_option(
        &self,
        fd: RawFd,
        option: &ResolvedOption,
        size: usize,
    ) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; size];
        let mut len = size as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into the buffer we own.
        let ret = unsafe {
            libc::getsockopt(
                fd,
                option.level,
                option.optname,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        NixErrno::result(ret)
            .map(|_| buf)
            .map_err(|errno| errno as Errno)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};

    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

    use super::*;
    use crate::case::types::Type;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("a unix socketpair")
    }

    #[test]
    fn transfers_count_bytes_and_never_block() {
        let (a, b) = pair();
        assert_eq!(Kernel.send(a.as_raw_fd(), b"abc"), Ok(3));
        let mut buf = [0u8; 8];
        assert_eq!(Kernel.recv(b.as_raw_fd(), &mut buf), Ok(3), "a short read");
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(Kernel.recv(b.as_raw_fd(), &mut buf), Err(libc::EAGAIN));
    }

    #[test]
    fn a_send_after_shutdown_answers_epipe_without_a_signal() {
        let (a, _b) = pair();
        assert_eq!(Kernel.shutdown(a.as_raw_fd(), ShutdownHow::Write), Ok(()));
        assert_eq!(Kernel.send(a.as_raw_fd(), b"x"), Err(libc::EPIPE));
    }

    #[test]
    fn a_passed_descriptor_arrives_with_its_byte() {
        let (a, b) = pair();
        let (passed, _) = pair();
        assert_eq!(Kernel.send_fd(a.as_raw_fd(), passed.as_raw_fd()), Ok(()));
        let mut buf = [0u8; 4];
        assert_eq!(Kernel.recv(b.as_raw_fd(), &mut buf), Ok(1));
        assert_eq!(
            Kernel.send_fd(a.as_raw_fd(), -1),
            Err(libc::EBADF),
            "the kernel checks the passed descriptor"
        );
    }

    #[test]
    fn connect_reaches_the_address_the_target_is_bound_to() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
        let client = nix::sys::socket::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("a socket");
        assert_eq!(
            Kernel.connect_to(client.as_raw_fd(), listener.as_raw_fd()),
            Ok(())
        );
        assert_eq!(
            Kernel.connect_to(client.as_raw_fd(), -1),
            Err(libc::EBADF),
            "the target's address is read first"
        );
    }

    #[test]
    fn options_are_set_and_read_in_their_layout() {
        let (a, _b) = pair();
        let keepalive = ResolvedOption {
            level: libc::SOL_SOCKET,
            optname: libc::SO_KEEPALIVE,
            value: Type::Int {
                bytes: 4,
                signed: true,
            },
        };
        let fd = a.as_raw_fd();
        assert_eq!(Kernel.get_option(fd, &keepalive, 4), Ok(vec![0; 4]));
        assert_eq!(
            Kernel.set_option(fd, &keepalive, &1i32.to_ne_bytes()),
            Ok(())
        );
        assert_eq!(
            Kernel.get_option(fd, &keepalive, 8),
            Ok(vec![1, 0, 0, 0, 0, 0, 0, 0]),
            "a shorter answer is zero-padded"
        );
        assert_eq!(
            Kernel.set_option(fd, &keepalive, &[1]),
            Err(libc::EINVAL),
            "the kernel checks the length"
        );
    }

    #[test]
    fn close_gives_the_number_up() {
        let (a, _b) = pair();
        assert_eq!(Kernel.close(a.into_raw_fd()), Ok(()));
        assert_eq!(Kernel.close(-1), Err(libc::EBADF));
    }
}
