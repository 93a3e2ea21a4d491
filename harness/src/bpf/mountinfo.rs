//! Finds mounts by filesystem type in `/proc/self/mountinfo` (proc(5)), and mounts a
//! filesystem on a temporary directory when none is mounted.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use tempfile::TempDir;

/// One line of mountinfo, the fields this module needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// The directory inside the filesystem that is mounted (`/` for its root).
    pub root: PathBuf,
    pub mount_point: PathBuf,
}

/// The first mount of `fstype` in mountinfo text.
pub fn find_mount(mountinfo: &str, fstype: &str) -> Option<MountEntry> {
    mountinfo.lines().find_map(|line| {
        // Fields: id parent major:minor root mount-point options [optional…] - fstype source super-options
        let (before, after) = line.split_once(" - ")?;
        if after.split(' ').next()? != fstype {
            return None;
        }
        let mut fields = before.split(' ');
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        Some(MountEntry {
            root: PathBuf::from(unescape(root)),
            mount_point: PathBuf::from(unescape(mount_point)),
        })
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A filesystem this process mounted on a fresh temporary directory; unmounted (lazily, so
/// a busy mount cannot make Drop fail) and the directory removed when dropped.
#[derive(Debug)]
pub struct TempMount {
    path: PathBuf,
    /// Taken in Drop, after the unmount.
    dir: Option<TempDir>,
}

impl TempMount {
    pub fn new(fstype: &str) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("sk-storage-{fstype}."))
            .tempdir()?;
        mount(
            Some(fstype),
            dir.path(),
            Some(fstype),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(std::io::Error::from)?;
        Ok(Self {
            path: dir.path().to_owned(),
            dir: Some(dir),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            if umount2(&self.path, MntFlags::MNT_DETACH).is_ok() {
                drop(dir);
            } else {
                // Removing the directory would recurse into the still-mounted filesystem.
                let _kept = dir.keep();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw
50 23 0:40 / /sys/kernel/security rw,nosuid - securityfs securityfs rw
60 23 0:41 /sub /mnt/with\\040space rw - cgroup2 none rw
";

    #[test]
    fn finds_the_first_mount_of_a_type_with_optional_fields() {
        assert_eq!(
            find_mount(HYBRID, "cgroup2"),
            Some(MountEntry {
                root: "/".into(),
                mount_point: "/sys/fs/cgroup/unified".into()
            })
        );
        assert_eq!(
            find_mount(HYBRID, "securityfs").map(|m| m.mount_point),
            Some("/sys/kernel/security".into())
        );
        assert_eq!(find_mount(HYBRID, "bpf"), None);
        // v1 "cgroup" must not match "cgroup2" or the other way round.
        assert_eq!(
            find_mount(HYBRID, "cgroup").map(|m| m.mount_point),
            Some("/sys/fs/cgroup/cpu".into())
        );
    }

    #[test]
    fn unescapes_octal_sequences() {
        let text = HYBRID.lines().last().unwrap_or_default();
        assert_eq!(
            find_mount(text, "cgroup2"),
            Some(MountEntry {
                root: "/sub".into(),
                mount_point: "/mnt/with space".into()
            })
        );
        assert_eq!(unescape(r"a\134b\011"), "a\\b\t");
        assert_eq!(unescape(r"trailing\"), r"trailing\");
    }
}
