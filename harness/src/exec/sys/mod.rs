//! The system calls the executor's steps make, behind one seam: [`Kernel`], the running
//! kernel, in every run; a scripted stand-in in the executor's unit tests, so its logic
//! (buffers, keys, outcomes, the expectation in force) is tested without BPF.
//!
//! Cases need the kernel's exact errno for every attribute and flag combination, including
//! invalid ones that a library would refuse before the system call; so these are thin
//! wrappers that return the raw errno.

mod bpf;
#[cfg(test)]
pub mod scripted;
mod socket;

use std::os::fd::{OwnedFd, RawFd};

use aya_obj::generated::bpf_cmd;

pub use self::bpf::{ElemCall, MapAttrs, MapBtf, iterator_create, link_map_iterator, probe};
use crate::case::steps::{ResolvedOption, ShutdownHow};

/// An errno from the kernel.
pub type Errno = i32;

/// The bpf(2) calls of map steps. `Sync`: the threads of a threads step share it.
pub trait MapSyscalls: Sync {
    fn load_btf(&self, blob: &[u8]) -> Result<OwnedFd, (Errno, String)>;
    fn create_sk_storage_map(&self, attrs: &MapAttrs<'_>) -> Result<OwnedFd, Errno>;
    /// Runs a prepared element call; must not allocate (it also runs in a forked child).
    fn elem(&self, call: &mut ElemCall) -> Result<(), Errno>;
    fn batch(
        &self,
        cmd: bpf_cmd,
        map_fd: RawFd,
        keys: &mut [u8],
        values: &mut [u8],
        count: u32,
    ) -> Result<u32, Errno>;
    /// The map's id (`BPF_OBJ_GET_INFO_BY_FD`), which sock_diag answers name maps by.
    fn map_id(&self, map_fd: RawFd) -> Result<u32, Errno>;
    /// `BPF_MAP_FREEZE`.
    fn freeze(&self, map_fd: RawFd) -> Result<(), Errno>;
}

/// The calls of socket steps on descriptors the case holds, and close(2) of any of them
/// (a map's too).
pub trait SocketSyscalls: Sync {
    /// close(2); must not allocate (it also runs in a forked child).
    fn close(&self, fd: RawFd) -> Result<(), Errno>;
    /// Connects `fd` to the address `target` is bound to.
    fn connect_to(&self, fd: RawFd, target: RawFd) -> Result<(), Errno>;
    /// Sends `passed` over the unix socket `fd` (SCM_RIGHTS).
    fn send_fd(&self, fd: RawFd, passed: RawFd) -> Result<(), Errno>;
    fn shutdown(&self, fd: RawFd, how: ShutdownHow) -> Result<(), Errno>;
    /// send(2) without blocking; the bytes sent.
    fn send(&self, fd: RawFd, payload: &[u8]) -> Result<usize, Errno>;
    /// recv(2) without blocking; the bytes received.
    fn recv(&self, fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno>;
    /// setsockopt(2) of `option` with `value` (bytes in the option's layout).
    fn set_option(&self, fd: RawFd, option: &ResolvedOption, value: &[u8]) -> Result<(), Errno>;
    /// getsockopt(2) of `option` into `size` bytes; shorter answers are zero-padded.
    fn get_option(&self, fd: RawFd, option: &ResolvedOption, size: usize)
    -> Result<Vec<u8>, Errno>;
}

/// Every call a step makes.
pub trait Syscalls: MapSyscalls + SocketSyscalls {}

impl<T: MapSyscalls + SocketSyscalls> Syscalls for T {}

/// A call made ready before it runs where nothing may allocate: in a forked child, or on
/// threads racing each other. Every buffer exists before the call.
pub enum Prepared {
    Elem(ElemCall),
    Close(RawFd),
}

impl Prepared {
    /// Makes the call, allocating nothing; on success, the call's value buffer.
    pub fn run(&mut self, kernel: &dyn Syscalls) -> Result<&[u8], Errno> {
        match self {
            Prepared::Elem(call) => kernel.elem(call).map(|()| call.value.as_slice()),
            Prepared::Close(fd) => kernel.close(*fd).map(|()| &[][..]),
        }
    }
}

/// Whether this process has descriptor `fd` open.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// The running kernel.
pub struct Kernel;
