//! Which kernels cannot mount their root over virtiofs, remembered between runs: such a
//! kernel's first boot over virtiofs ends at "VFS: Unable to mount root fs" and is booted
//! again over 9p (see [`run`](super::run)), which costs 5.2–5.9 about 6 s a run here.

use std::{
    collections::BTreeSet,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::spec::KernelArg;

/// A file listing the kernels that needed 9p, each by what identifies its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NinePMemo {
    path: PathBuf,
}

impl NinePMemo {
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    /// Whether `kernel`, as it is on disk now, needed 9p before.
    pub fn needs_9p(&self, kernel: &KernelArg) -> bool {
        identity(kernel).is_some_and(|id| self.read().contains(&id))
    }

    /// Notes that `kernel` needed 9p. Failing to write only costs the next run a boot.
    pub fn remember(&self, kernel: &KernelArg) {
        let Some(id) = identity(kernel) else { return };
        let mut known = self.read();
        if known.insert(id) {
            let _ = self.write(&known);
        }
    }

    fn read(&self) -> BTreeSet<String> {
        read_json(&self.path).unwrap_or_default()
    }

    fn write(&self, known: &BTreeSet<String>) -> std::io::Result<()> {
        write_json(&self.path, known)
    }
}

/// The most bytes a memo is read to: each holds a few lines.
const MAX_MEMO_BYTES: u64 = 1 << 20;

/// The memo at `path`, when it holds one. A file that is missing or does not parse is no
/// memo; one that is no regular file or larger than a memo ever is (a FIFO, a link to
/// /dev/zero) is refused unread, said on stderr, and replaced when the memo is written.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    match crate::input_file::read_regular(path, MAX_MEMO_BYTES) {
        Ok(bytes) => serde_json::from_slice(&bytes).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            let ignored = format!("{}: {e}", path.display());
            eprintln!("warning: ignoring {}", crate::printable::escape(&ignored));
            None
        }
    }
}

/// Writes `value` as JSON to `path` in one step (a whole new file renamed over the old),
/// creating its directory: how the VM layer's memos are kept.
pub(super) fn write_json(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut file, value)?;
    file.persist(path)?;
    Ok(())
}

/// The image a kernel boots, by path, size and modification time: another build at the
/// same path is another kernel. A mainline tag names its build.
fn identity(kernel: &KernelArg) -> Option<String> {
    let image = match kernel {
        KernelArg::Image { vmlinuz, .. } => vmlinuz.clone(),
        KernelArg::Tree { path } => path.join("arch/x86/boot/bzImage"),
        KernelArg::Mainline { tag } => return Some(format!("mainline {tag}")),
    };
    let meta = image.metadata().ok()?;
    Some(format!(
        "{} ({} bytes, modified {})",
        image.display(),
        meta.size(),
        meta.mtime()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_is_remembered_until_its_image_changes() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("bzImage");
        std::fs::write(&image, b"a kernel").unwrap();
        let kernel = KernelArg::Image {
            vmlinuz: image.clone(),
            release: None,
            modules: None,
        };
        let memo = NinePMemo::at(dir.path().join("cache/root-over-9p.json"));
        assert!(!memo.needs_9p(&kernel));
        memo.remember(&kernel);
        assert!(memo.needs_9p(&kernel));
        let other = KernelArg::Mainline { tag: "v5.4".into() };
        assert!(!memo.needs_9p(&other));
        memo.remember(&other);
        assert!(memo.needs_9p(&kernel) && memo.needs_9p(&other));
        std::fs::write(&image, b"another build, longer").unwrap();
        assert!(
            !memo.needs_9p(&kernel),
            "a rebuilt image is tried over virtiofs again"
        );
    }

    #[test]
    fn a_memo_that_is_a_fifo_or_a_device_is_no_memo_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = KernelArg::Mainline { tag: "v5.4".into() };
        let fifo = dir.path().join("fifo.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let zero = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for path in [fifo, zero] {
            let memo = NinePMemo::at(path.clone());
            let started = std::time::Instant::now();
            assert!(!memo.needs_9p(&kernel));
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
            memo.remember(&kernel);
            assert!(path.is_file() && memo.needs_9p(&kernel));
        }
    }
}
