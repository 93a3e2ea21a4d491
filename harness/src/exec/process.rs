//! Process steps: dropping capabilities, and forked children, which run their steps
//! through the same preparation as threads.

use super::{
    prepare,
    sys::{self, Prepared},
    world::World,
};
use crate::{case::Step, case::steps::ProcessAction, results::Actual};

/// The step's outcome and, for a fork, each child step's.
pub(super) fn perform(
    world: &mut World<'_>,
    action: &ProcessAction,
    children: &[Step],
) -> (Actual, Vec<Actual>) {
    match action {
        ProcessAction::DropCapabilities(list) => (drop_capabilities(list), Vec::new()),
        ProcessAction::Fork => fork(world, children),
    }
}

fn drop_capabilities(list: &[caps::Capability]) -> Actual {
    for cap in list {
        if let Err(e) = caps::drop(None, caps::CapSet::Effective, *cap) {
            return Actual::NotRun {
                reason: format!("cannot drop {cap}: {e}"),
            };
        }
    }
    Actual::Ok
}

/// Runs `children` in a forked child on its copies of the descriptors and returns the
/// fork's own outcome and each child step's.
fn fork(world: &World<'_>, children: &[Step]) -> (Actual, Vec<Actual>) {
    let not_run = |reason: String| {
        let actual = Actual::NotRun { reason };
        (actual.clone(), vec![actual; children.len()])
    };
    // Everything the child needs is prepared here: after fork() the child must not
    // allocate, since another thread may have held the allocator's lock.
    let mut calls: Vec<Result<Prepared, Actual>> = children
        .iter()
        .map(|child| prepare::prepare(world, &child.action))
        .collect();
    let kernel = world.kernel;
    let mut shared = match SharedResults::new(calls.len()) {
        Ok(s) => s,
        Err(e) => return not_run(format!("cannot map memory shared with the child: {e}")),
    };
    // SAFETY: the child only makes the prepared syscalls, writes into the shared
    // mapping and calls _exit.
    match unsafe { nix::unistd::fork() } {
        Err(errno) => not_run(format!("fork failed: {errno}")),
        Ok(nix::unistd::ForkResult::Child) => {
            for (slot, call) in calls.iter_mut().enumerate() {
                if let Ok(call) = call {
                    shared.record(slot, call.run(kernel));
                }
            }
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let status = nix::sys::wait::waitpid(child, None);
            let fork_actual = match status {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Actual::Ok,
                other => Actual::NotRun {
                    reason: format!("the child did not exit cleanly: {other:?}"),
                },
            };
            let actuals = children
                .iter()
                .zip(calls)
                .enumerate()
                .map(|(slot, (child, call))| match call {
                    Err(actual) => actual,
                    Ok(_) => prepare::outcome(world, &child.action, shared.read(slot)),
                })
                .collect();
            (fork_actual, actuals)
        }
    }
}

/// Memory shared with a forked child: per call, a status word and the value it read.
struct SharedResults {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

/// Room for one call's value; sk storage values are at most about 64 KiB.
const SLOT_VALUE: usize = 64 * 1024;
const SLOT: usize = 16 + SLOT_VALUE;

impl SharedResults {
    fn new(slots: usize) -> nix::Result<Self> {
        let len = (slots * SLOT).max(1);
        // SAFETY: a fresh anonymous shared mapping; unmapped in Drop.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                std::num::NonZeroUsize::new(len).expect("len is at least 1"),
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
            )?
        };
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    fn slot(&mut self, slot: usize) -> &mut [u8] {
        // SAFETY: slot < slots, so the range lies inside the mapping.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(slot * SLOT), SLOT) }
    }

    /// Child side: no allocation.
    fn record(&mut self, slot: usize, result: Result<&[u8], sys::Errno>) {
        let buf = self.slot(slot);
        let (errno, value) = match result {
            Ok(v) => (0i32, v),
            Err(e) => (e, &[][..]),
        };
        let n = value.len().min(SLOT_VALUE);
        buf[0] = 1; // written
        buf[4..8].copy_from_slice(&errno.to_le_bytes());
        buf[8..16].copy_from_slice(&(n as u64).to_le_bytes());
        buf[16..16 + n].copy_from_slice(&value[..n]);
    }

    /// What the child's call returned; ECHILD when the child never made it.
    fn read(&mut self, slot: usize) -> Result<&[u8], sys::Errno> {
        let buf = self.slot(slot);
        if buf[0] != 1 {
            return Err(libc::ECHILD);
        }
        let errno = i32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
        let n = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")) as usize;
        if errno == 0 {
            Ok(&buf[16..16 + n])
        } else {
            Err(errno)
        }
    }
}

impl Drop for SharedResults {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in new().
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) };
    }
}
