//! A scripted stand-in for the kernel, for the executor's unit tests.

use std::{
    collections::VecDeque,
    os::fd::{OwnedFd, RawFd},
    sync::Mutex,
};

use aya_obj::generated::bpf_cmd;

use super::{ElemCall, Errno, Kernel, MapAttrs, MapSyscalls, SocketSyscalls};
use crate::case::steps::{ResolvedOption, ShutdownHow};

/// A stand-in for the kernel's map calls: records what the executor asks and answers from a
/// script. Socket calls are recorded and then made on the real descriptors, which the
/// executor's unit tests create.
#[derive(Default)]
pub struct Scripted {
    /// Per element call, in order: the bytes the kernel would write into the value
    /// buffer, or an errno.
    pub replies: Mutex<VecDeque<Result<Vec<u8>, i32>>>,
    pub batch_reply: Option<i32>,
    pub created: Mutex<Vec<(u32, u32, u32, bool)>>,
    pub elem_calls: Mutex<Vec<ElemSeen>>,
    /// Each socket call's name and descriptor, in order.
    pub socket_calls: Mutex<Vec<(&'static str, RawFd)>>,
}

/// An element call as the stand-in saw it: command, key bytes, value buffer length,
/// flags.
pub type ElemSeen = (bpf_cmd, Vec<u8>, usize, u64);

fn null_fd() -> OwnedFd {
    std::fs::File::open("/dev/null").expect("/dev/null").into()
}

impl MapSyscalls for Scripted {
    fn map_id(&self, map_fd: RawFd) -> Result<u32, Errno> {
        Ok(map_fd as u32)
    }

    fn load_btf(&self, _blob: &[u8]) -> Result<OwnedFd, (Errno, String)> {
        Ok(null_fd())
    }

    fn create_sk_storage_map(&self, attrs: &MapAttrs<'_>) -> Result<OwnedFd, Errno> {
        self.created.lock().unwrap().push((
            attrs.key_size,
            attrs.value_size,
            attrs.map_flags,
            attrs.btf.is_some(),
        ));
        Ok(null_fd())
    }

    fn elem(&self, call: &mut ElemCall) -> Result<(), Errno> {
        self.elem_calls.lock().unwrap().push((
            call.cmd,
            call.key.clone(),
            call.value.len(),
            call.flags,
        ));
        let reply = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(Vec::new()));
        reply.map(|bytes| call.value[..bytes.len()].copy_from_slice(&bytes))
    }

    fn batch(
        &self,
        _cmd: bpf_cmd,
        _map_fd: RawFd,
        keys: &mut [u8],
        values: &mut [u8],
        count: u32,
    ) -> Result<u32, Errno> {
        assert_eq!(keys.len() % count.max(1) as usize, 0);
        assert!(!values.is_empty());
        self.batch_reply.map_or(Ok(count), Err)
    }
}

impl Scripted {
    fn socket_call(&self, name: &'static str, fd: RawFd) {
        self.socket_calls.lock().unwrap().push((name, fd));
    }
}

impl SocketSyscalls for Scripted {
    fn close(&self, fd: RawFd) -> Result<(), Errno> {
        self.socket_call("close", fd);
        Kernel.close(fd)
    }

    fn connect_to(&self, fd: RawFd, target: RawFd) -> Result<(), Errno> {
        self.socket_call("connect", fd);
        Kernel.connect_to(fd, target)
    }

    fn send_fd(&self, fd: RawFd, passed: RawFd) -> Result<(), Errno> {
        self.socket_call("send_fd", fd);
        Kernel.send_fd(fd, passed)
    }

    fn shutdown(&self, fd: RawFd, how: ShutdownHow) -> Result<(), Errno> {
        self.socket_call("shutdown", fd);
        Kernel.shutdown(fd, how)
    }

    fn send(&self, fd: RawFd, payload: &[u8]) -> Result<usize, Errno> {
        self.socket_call("send", fd);
        Kernel.send(fd, payload)
    }

    fn recv(&self, fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
        self.socket_call("recv", fd);
        Kernel.recv(fd, buf)
    }

    fn set_option(&self, fd: RawFd, option: &ResolvedOption, value: &[u8]) -> Result<(), Errno> {
        self.socket_call("setsockopt", fd);
        Kernel.set_option(fd, option, value)
    }

    fn get_option(
        &self,
        fd: RawFd,
        option: &ResolvedOption,
        size: usize,
    ) -> Result<Vec<u8>, Errno> {
        self.socket_call("getsockopt", fd);
        Kernel.get_option(fd, option, size)
    }
}
