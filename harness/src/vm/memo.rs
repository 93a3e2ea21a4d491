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
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write(&self, known: &BTreeSet<String>) -> std::io::Result<()> {
        write_json(&self.path, known)
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
}
