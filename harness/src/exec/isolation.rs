//! What keeps a case from the cases after it: a user of its own, resource limits undone
//! when it ends, and a case left behind after its timeout making no more changes.

use std::sync::{Mutex, PoisonError};

use nix::{
    errno::Errno,
    sys::resource::{Resource, getrlimit, setrlimit},
};

/// Why a case could not be set apart from the others; the case's error.
#[derive(Debug, thiserror::Error)]
pub(super) enum IsolationError {
    #[error("cannot read the thread's capabilities: {0}")]
    ReadCapabilities(caps::errors::CapsError),
    #[error("cannot keep the capabilities across a change of user: {0}")]
    KeepCapabilities(Errno),
    #[error("cannot run the case as a user of its own (uid {uid}): {error}")]
    OwnUser { uid: u32, error: std::io::Error },
    #[error("cannot restore the capabilities as uid {uid}: {error}")]
    RestoreCapabilities {
        uid: u32,
        error: caps::errors::CapsError,
    },
    #[error("left behind before its limits were set")]
    LeftBehind,
    #[error("getrlimit: {0}")]
    ReadLimit(Errno),
    #[error("cannot set {resource:?} to {limit}: {error}")]
    SetLimit {
        resource: Resource,
        limit: u64,
        error: Errno,
    },
}

/// The first uid [`enter_own_user`] gives a case; far above any account's.
const OWN_USERS_FROM: u32 = 0x5eed_0000;

/// Makes this thread's real, effective and saved uid one no other case or process has, with
/// every capability root had. Before 5.11 map memory is charged to the creating user's
/// locked memory (`user->locked_vm`): under root, a case's memlock limit would also count the
/// eBPF object's maps (loaded once per guest) and maps of earlier cases the kernel has not yet
/// freed, so the result would depend on what ran before. Its own user starts from nothing.
pub(super) fn enter_own_user() -> Result<(), IsolationError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let uid = OWN_USERS_FROM + NEXT.fetch_add(1, Ordering::Relaxed);
    let permitted =
        caps::read(None, caps::CapSet::Permitted).map_err(IsolationError::ReadCapabilities)?;
    nix::sys::prctl::set_keepcaps(true).map_err(IsolationError::KeepCapabilities)?;
    // SAFETY: the raw system call changes the calling thread's credentials only (libc's
    // setresuid would change every thread's), and the thread ends with its case.
    let changed = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    if changed != 0 {
        return Err(IsolationError::OwnUser {
            uid,
            error: std::io::Error::last_os_error(),
        });
    }
    // A change of uid clears the effective set; the permitted one was kept.
    caps::set(None, caps::CapSet::Effective, &permitted)
        .map_err(|error| IsolationError::RestoreCapabilities { uid, error })
}

/// Whether [`run_case_for`] left the case's thread behind after its timeout. The case's
/// process-wide changes, its rlimits, are made and undone under the lock, so that a case
/// left behind makes none after it and undoes none of the later cases'.
#[derive(Default)]
pub(super) struct LeftBehind(Mutex<bool>);

impl LeftBehind {
    /// Leaves the case behind and puts back the limits it may have changed.
    pub(super) fn mark(&self, before: &ProcessLimits) {
        let mut left = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *left = true;
        before.restore();
    }

    pub(super) fn is_marked(&self) -> bool {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The limits a case may set, as they are.
pub(super) struct ProcessLimits(Vec<(Resource, (u64, u64))>);

impl ProcessLimits {
    pub(super) fn read() -> Self {
        Self(
            [Resource::RLIMIT_MEMLOCK, Resource::RLIMIT_NOFILE]
                .into_iter()
                .filter_map(|resource| Some((resource, getrlimit(resource).ok()?)))
                .collect(),
        )
    }

    fn restore(&self) {
        for (resource, (soft, hard)) in self.0.iter().rev() {
            // Restoring what getrlimit returned cannot fail for root.
            let _ = setrlimit(*resource, *soft, *hard);
        }
    }
}

/// The case's resource limits, in force until dropped. Limits belong to the process, not
/// the case's thread; that is sound because cases run one after another, and a case left
/// behind is kept from them by `left_behind`.
pub(super) struct CaseLimits<'c> {
    before: ProcessLimits,
    left_behind: &'c LeftBehind,
}

impl<'c> CaseLimits<'c> {
    pub(super) fn apply(
        limits: &crate::case::Rlimits,
        left_behind: &'c LeftBehind,
    ) -> Result<Self, IsolationError> {
        let left = left_behind.0.lock().unwrap_or_else(PoisonError::into_inner);
        if *left {
            return Err(IsolationError::LeftBehind);
        }
        let before = ProcessLimits::read();
        let set = [
            (Resource::RLIMIT_MEMLOCK, limits.memlock),
            (Resource::RLIMIT_NOFILE, limits.nofile),
        ]
        .into_iter()
        .filter_map(|(resource, limit)| Some((resource, limit?)))
        .try_for_each(|(resource, limit)| {
            let (_, hard) = getrlimit(resource).map_err(IsolationError::ReadLimit)?;
            // The hard limit stays, so that the executor (root) can restore the soft one.
            setrlimit(resource, limit, hard).map_err(|error| IsolationError::SetLimit {
                resource,
                limit,
                error,
            })
        });
        if let Err(e) = set {
            before.restore();
            return Err(e);
        }
        drop(left);
        Ok(CaseLimits {
            before,
            left_behind,
        })
    }
}

impl Drop for CaseLimits<'_> {
    fn drop(&mut self) {
        let left = self
            .left_behind
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A case left behind had its limits undone when it was left.
        if !*left {
            self.before.restore();
        }
    }
}
