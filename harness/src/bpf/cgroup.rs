//! A cgroup v2 per case, so the case's cgroup programs see only the case's sockets.
//!
//! A socket belongs to the cgroup of the task that created it, fixed at `socket()` (an
//! accepted socket inherits its listener's). So the process only has to be inside the case's
//! cgroup while it creates the case's sockets: [`CaseCgroup::enter`] moves it in and the
//! returned guard moves it back. cgroup v2 moves whole processes, not threads, so entries
//! are serialised process-wide: two cases (e.g. parallel tests) never have the process in
//! two cgroups at once.

use std::{
    fs::{self, File},
    io,
    os::fd::{AsFd, BorrowedFd},
    path::{Path, PathBuf},
    sync::{
        Mutex, MutexGuard, TryLockError,
        atomic::{AtomicU32, Ordering},
    },
    thread,
    time::Duration,
};

use super::mountinfo::{TempMount, find_mount};

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";
/// rmdir of a cgroup whose last task just left can briefly fail with EBUSY.
const REMOVE_ATTEMPTS: u32 = 50;
const REMOVE_RETRY_DELAY: Duration = Duration::from_millis(20);

static MEMBERSHIP: Mutex<()> = Mutex::new(());
/// How long [`CaseCgroup::enter`] waits for another case to leave its cgroup. Sockets are
/// made inside in a moment; a wait longer than this is a case left behind in a call that
/// does not return (a connect that retries its SYN), which must not stop the others.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(10);
static NEXT_CGROUP: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "no cgroup2 filesystem is mounted and mounting one on a temporary directory failed; the kernel needs CONFIG_CGROUPS and the harness needs root"
    )]
    Mount(#[source] io::Error),
    #[error("{proc_cgroup} has no cgroup v2 entry (\"0::/path\"); is cgroup2 enabled?")]
    NoV2Membership { proc_cgroup: &'static str },
    #[error(
        "this process's cgroup {cgroup} is outside the cgroup2 mount {mount} (which shows {root}); run the harness where it can see its own cgroup"
    )]
    OutsideMount {
        cgroup: String,
        mount: PathBuf,
        root: PathBuf,
    },
    #[error("cannot create cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot move process {pid} into cgroup {path}")]
    Move {
        pid: u32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "another case has been inside its cgroup for {} (left behind in a call that does not return?): cannot enter {path}",
        humantime::format_duration(MEMBERSHIP_WAIT)
    )]
    Occupied { path: PathBuf },
    #[error(
        "cannot remove cgroup {path}; a process created inside it may still run (see its cgroup.procs)"
    )]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where the cgroup2 hierarchy is reachable: an existing mount, or one made for this case.
#[derive(Debug)]
enum Cgroup2Mount {
    Existing { mount_point: PathBuf, root: PathBuf },
    Temporary(TempMount),
}

impl Cgroup2Mount {
    /// Reuses the first cgroup2 mount (e.g. /sys/fs/cgroup/unified on hybrid hosts); never
    /// mounts over an existing hierarchy, only on a fresh temporary directory.
    fn find_or_mount() -> Result<Self, CgroupError> {
        let mountinfo = read(Path::new(MOUNTINFO))?;
        match find_mount(&mountinfo, "cgroup2") {
            Some(entry) => Ok(Self::Existing {
                mount_point: entry.mount_point,
                root: entry.root,
            }),
            None => TempMount::new("cgroup2")
                .map(Self::Temporary)
                .map_err(CgroupError::Mount),
        }
    }

    fn mount_point(&self) -> &Path {
        match self {
            Self::Existing { mount_point, .. } => mount_point,
            Self::Temporary(mount) => mount.path(),
        }
    }

    fn root(&self) -> &Path {
        match self {
            Self::Existing { root, .. } => root,
            Self::Temporary(_) => Path::new("/"),
        }
    }

    /// The directory of the cgroup this process is in now.
    fn current_cgroup_dir(&self) -> Result<PathBuf, CgroupError> {
        let proc_cgroup = read(Path::new(PROC_CGROUP))?;
        let cgroup = v2_cgroup_path(&proc_cgroup).ok_or(CgroupError::NoV2Membership {
            proc_cgroup: PROC_CGROUP,
        })?;
        let relative =
            Path::new(cgroup)
                .strip_prefix(self.root())
                .map_err(|_| CgroupError::OutsideMount {
                    cgroup: cgroup.to_owned(),
                    mount: self.mount_point().to_owned(),
                    root: self.root().to_owned(),
                })?;
        Ok(self.mount_point().join(relative))
    }
}

/// The cgroup v2 path in `/proc/<pid>/cgroup` text (the `0::` line).
fn v2_cgroup_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.trim_end_matches(" (deleted)"))
}

/// A directory name for a case's cgroup: unique in the process, recognisable on the host.
fn cgroup_dir_name(pid: u32, serial: u32, label: &str) -> String {
    let label: String = label
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("sk-storage-harness.{pid}.{serial}.{label}")
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

fn move_process(pid: u32, cgroup_dir: &Path) -> Result<(), CgroupError> {
    fs::write(cgroup_dir.join("cgroup.procs"), pid.to_string()).map_err(|source| {
        CgroupError::Move {
            pid,
            path: cgroup_dir.to_owned(),
            source,
        }
    })
}

/// A child cgroup created for one case; removed (and a temporary cgroup2 mount unmounted)
/// when dropped or by [`CaseCgroup::remove`], which reports failures.
#[derive(Debug)]
pub struct CaseCgroup {
    dir: PathBuf,
    /// Kept open for attaching programs.
    file: File,
    /// Dropped after the directory is removed (field order).
    mount: Cgroup2Mount,
}

impl CaseCgroup {
    /// Creates `sk-storage-harness.<pid>.<n>.<label>` at the top of the cgroup2 hierarchy.
    pub fn create(label: &str) -> Result<Self, CgroupError> {
        let mount = Cgroup2Mount::find_or_mount()?;
        let serial = NEXT_CGROUP.fetch_add(1, Ordering::Relaxed);
        let dir = mount
            .mount_point()
            .join(cgroup_dir_name(std::process::id(), serial, label));
        let create_error = |source| CgroupError::Create {
            path: dir.clone(),
            source,
        };
        fs::create_dir(&dir).map_err(create_error)?;
        match File::open(&dir) {
            Ok(file) => Ok(Self { dir, file, mount }),
            Err(source) => {
                // Best effort: the directory is empty, nothing can hold it.
                let _ = fs::remove_dir(&dir);
                Err(create_error(source))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves this process into the cgroup until the guard is dropped; sockets created
    /// meanwhile belong to the cgroup for their whole life. Waits while another case of
    /// this process is inside its own cgroup, [`MEMBERSHIP_WAIT`] at most.
    pub fn enter(&self) -> Result<Membership<'_>, CgroupError> {
        let lock = wait_for_membership().ok_or_else(|| CgroupError::Occupied {
            path: self.dir.clone(),
        })?;
        let previous = self.mount.current_cgroup_dir()?;
        let pid = std::process::id();
        move_process(pid, &self.dir)?;
        Ok(Membership {
            previous,
            pid,
            _lock: lock,
            _cgroup: self,
        })
    }

    /// Removes the cgroup, reporting a failure (Drop only tries).
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.remove_dir()
    }

    fn remove_dir(&mut self) -> Result<(), CgroupError> {
        if !self.dir.exists() {
            return Ok(());
        }
        let mut attempt = 1;
        loop {
            match fs::remove_dir(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < REMOVE_ATTEMPTS => {
                    attempt += 1;
                    thread::sleep(REMOVE_RETRY_DELAY);
                }
                Err(source) => {
                    return Err(CgroupError::Remove {
                        path: self.dir.clone(),
                        source,
                    });
                }
            }
        }
    }
}

impl AsFd for CaseCgroup {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Drop for CaseCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove_dir() {
            // Drop cannot return the error; leaving a cgroup behind must not go unnoticed.
            eprintln!("warning: {e}: {}", e.source_message());
        }
    }
}

impl CgroupError {
    fn source_message(&self) -> String {
        std::error::Error::source(self).map_or_else(String::new, ToString::to_string)
    }
}

/// The lock on the process's membership, when another holder lets go of it in time.
fn wait_for_membership() -> Option<MutexGuard<'static, ()>> {
    let deadline = std::time::Instant::now() + MEMBERSHIP_WAIT;
    loop {
        match MEMBERSHIP.try_lock() {
            Ok(lock) => return Some(lock),
            Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => return None,
        }
    }
}

/// The process is inside a [`CaseCgroup`] while this lives; dropping it moves the process
/// back to the cgroup it came from.
#[derive(Debug)]
pub struct Membership<'a> {
    previous: PathBuf,
    pid: u32,
    _lock: MutexGuard<'static, ()>,
    _cgroup: &'a CaseCgroup,
}

impl Drop for Membership<'_> {
    fn drop(&mut self) {
        // A failure leaves the process in the case cgroup; CaseCgroup's removal then fails
        // with EBUSY and says so.
        let _ = move_process(self.pid, &self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_v2_line_of_proc_cgroup() {
        let hybrid = "12:pids:/\n1:name=systemd:/init.scope\n0::/init.scope\n";
        assert_eq!(v2_cgroup_path(hybrid), Some("/init.scope"));
        assert_eq!(v2_cgroup_path("0::/gone (deleted)\n"), Some("/gone"));
        assert_eq!(v2_cgroup_path("3:cpu:/\n"), None);
    }

    #[test]
    fn cgroup_names_are_unique_per_serial_and_safe() {
        assert_eq!(
            cgroup_dir_name(42, 7, "sock-ops/clone on accept"),
            "sk-storage-harness.42.7.sock-ops_clone_on_accept"
        );
        assert_ne!(cgroup_dir_name(1, 1, "a"), cgroup_dir_name(1, 2, "a"));
    }

    #[test]
    fn a_case_cgroup_takes_new_sockets_and_is_removed_afterwards() {
        let cgroup = CaseCgroup::create("unit-test").expect("create cgroup");
        let dir = cgroup.path().to_owned();
        let inside = || {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).expect("cgroup.procs");
            procs.lines().any(|p| p == std::process::id().to_string())
        };
        {
            let _membership = cgroup.enter().expect("enter");
            assert!(inside());
        }
        assert!(!inside(), "the process went back to its cgroup");
        cgroup.remove().expect("remove");
        assert!(!dir.exists());
    }
}
