//! The kernel cache under `$XDG_CACHE_HOME/sk-storage-harness/kernels/`:
//!
//! ```text
//! debian/resolved/<suite>/<flavour>/<series-6.1|version-6.19.6>.json  resolution records
//! debian/debs/<pool file name>                                        verified downloads
//! debian/trees/<release>-<hash of the package set>/                   unpacked kernels
//!     .harness-tree.json                                              completeness marker
//! debian/locks/<release>.lock                                         one writer per kernel
//! ```
//!
//! Every entry appears atomically (temporary name in the same directory, then rename), and
//! a tree counts as present only when its marker matches the record and its image is whole,
//! so an interrupted or damaged entry is detected and rebuilt.

use std::path::{Path, PathBuf};

use super::config::{DebianSelector, DebianSource};
use super::download::{PARTIAL_SUFFIX, partial_prefix, sha256_hex};
use super::select::{DebPackage, SelectedKernel};
use super::unpack::{KernelFiles, image_release};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no cache directory: neither $XDG_CACHE_HOME nor $HOME is set; set one of them")]
    NoCacheDir,
    #[error("cannot write the kernel cache at {} (check its permissions and free space)", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `kernels list` and `resolve` remember about a Debian source: the index's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DebianRecord {
    pub suite: String,
    pub flavour: String,
    pub selector: DebianSelector,
    /// The Release file's `Date` of the index that answered.
    pub index_date: Option<String>,
    pub kernel: SelectedKernel,
}

/// Contents of a tree's completeness marker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct TreeMarker {
    release: String,
    /// SHA256 of every package unpacked into the tree, in record order.
    packages: Vec<String>,
    /// Paths relative to the tree root.
    vmlinuz: PathBuf,
    vmlinuz_size: u64,
    modules_dir: Option<PathBuf>,
}

/// State of the unpacked tree of a resolved kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeState {
    Ready(KernelFiles),
    Missing,
    /// Present but incomplete or damaged (the reason says how).
    Broken(String),
}

const MARKER: &str = ".harness-tree.json";

#[derive(Debug, Clone)]
pub struct KernelCache {
    root: PathBuf,
}

impl KernelCache {
    /// `$XDG_CACHE_HOME/sk-storage-harness/kernels` (or `~/.cache/…`).
    pub fn default_root() -> Result<PathBuf, CacheError> {
        crate::cache_dir()
            .map(|dir| dir.join("kernels"))
            .ok_or(CacheError::NoCacheDir)
    }

    pub fn at(root: impl Into<PathBuf>) -> KernelCache {
        KernelCache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn debian(&self) -> PathBuf {
        self.root.join("debian")
    }

    fn record_path(&self, source: &DebianSource) -> PathBuf {
        let selector = match &source.selector {
            DebianSelector::Series(series) => format!("series-{series}"),
            DebianSelector::Version(version) => format!("version-{version}"),
        };
        self.debian()
            .join("resolved")
            .join(&source.suite)
            .join(&source.flavour)
            .join(format!("{selector}.json"))
    }

    /// The recorded resolution of `source`; an unreadable record counts as absent (the
    /// index is read again).
    pub fn load_record(&self, source: &DebianSource) -> Option<DebianRecord> {
        let text = std::fs::read(self.record_path(source)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn store_record(
        &self,
        source: &DebianSource,
        record: &DebianRecord,
    ) -> Result<(), CacheError> {
        let path = self.record_path(source);
        let json = serde_json::to_vec_pretty(record).map_err(|e| CacheError::Write {
            path: path.clone(),
            source: e.into(),
        })?;
        write_atomically(&path, &json)
    }

    /// Where a package's .deb is kept: its pool file name, which is unique per version.
    pub fn deb_path(&self, package: &DebPackage) -> PathBuf {
        let file_name = package
            .filename
            .rsplit('/')
            .next()
            .unwrap_or(&package.filename);
        self.debian().join("debs").join(file_name)
    }

    pub fn debs_dir(&self) -> PathBuf {
        self.debian().join("debs")
    }

    fn trees_dir(&self) -> PathBuf {
        self.debian().join("trees")
    }

    /// The tree of this exact package set (a rebuilt package with the same release gets
    /// its own tree).
    pub fn tree_path(&self, kernel: &SelectedKernel) -> PathBuf {
        let joined: String = kernel
            .packages
            .iter()
            .map(|p| p.digest.sha256.as_str())
            .collect();
        let tag = &sha256_hex(joined.as_bytes())[..12];
        self.trees_dir().join(format!("{}-{tag}", kernel.release))
    }

    /// Checks the tree against its marker: same packages, image present with its size
    /// and announcing the expected release.
    pub fn tree_state(&self, kernel: &SelectedKernel) -> TreeState {
        let tree = self.tree_path(kernel);
        if !tree.exists() {
            return TreeState::Missing;
        }
        let marker: TreeMarker = match std::fs::read(tree.join(MARKER))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        {
            Some(marker) => marker,
            None => return TreeState::Broken(format!("{} has no valid {MARKER}", tree.display())),
        };
        let expected: Vec<&str> = kernel
            .packages
            .iter()
            .map(|p| p.digest.sha256.as_str())
            .collect();
        if marker.release != kernel.release || marker.packages != expected {
            return TreeState::Broken(format!(
                "{} was unpacked from other packages",
                tree.display()
            ));
        }
        let vmlinuz = tree.join(&marker.vmlinuz);
        match std::fs::metadata(&vmlinuz) {
            Ok(meta) if meta.len() == marker.vmlinuz_size => {}
            Ok(meta) => {
                return TreeState::Broken(format!(
                    "{} has {} bytes instead of {}",
                    vmlinuz.display(),
                    meta.len(),
                    marker.vmlinuz_size
                ));
            }
            Err(e) => return TreeState::Broken(format!("{}: {e}", vmlinuz.display())),
        }
        if image_release(&vmlinuz).ok().flatten().as_deref() != Some(kernel.release.as_str()) {
            return TreeState::Broken(format!(
                "{} does not announce release {}",
                vmlinuz.display(),
                kernel.release
            ));
        }
        TreeState::Ready(KernelFiles {
            vmlinuz,
            modules_dir: marker.modules_dir.map(|dir| tree.join(dir)),
        })
    }

    /// An empty directory beside the trees to unpack `kernel` into before
    /// [`Self::commit_tree`].
    pub fn staging_dir(&self, kernel: &SelectedKernel) -> Result<tempfile::TempDir, CacheError> {
        let trees = self.trees_dir();
        create_dir(&trees)?;
        tempfile::Builder::new()
            .prefix(&staging_prefix(kernel))
            .tempdir_in(&trees)
            .map_err(|source| CacheError::Write {
                path: trees,
                source,
            })
    }

    /// Removes the partial downloads and staging directories of `kernel` that a killed
    /// process left behind. Call it holding [`Self::lock`]: then no live process owns them.
    pub fn remove_leftovers(&self, kernel: &SelectedKernel) -> Result<(), CacheError> {
        for package in &kernel.packages {
            let prefix = partial_prefix(&self.deb_path(package));
            remove_matching(&self.debs_dir(), |name| {
                name.starts_with(&prefix) && name.ends_with(PARTIAL_SUFFIX)
            })?;
        }
        let staging = staging_prefix(kernel);
        remove_matching(&self.trees_dir(), |name| name.starts_with(&staging))
    }

    /// Marks `staging` complete for `kernel` and renames it into place, replacing a
    /// damaged tree if there is one.
    pub fn commit_tree(
        &self,
        staging: tempfile::TempDir,
        kernel: &SelectedKernel,
        files: &KernelFiles,
    ) -> Result<KernelFiles, CacheError> {
        let tree = self.tree_path(kernel);
        let write_error = |source| CacheError::Write {
            path: tree.clone(),
            source,
        };
        let relative = |path: &Path| path.strip_prefix(staging.path()).map(Path::to_path_buf);
        let (Ok(vmlinuz), Ok(modules_dir)) = (
            relative(&files.vmlinuz),
            files.modules_dir.as_deref().map(relative).transpose(),
        ) else {
            return Err(write_error(std::io::Error::other(
                "kernel files outside the staging tree",
            )));
        };
        let marker = TreeMarker {
            release: kernel.release.clone(),
            packages: kernel
                .packages
                .iter()
                .map(|p| p.digest.sha256.clone())
                .collect(),
            vmlinuz_size: std::fs::metadata(&files.vmlinuz)
                .map_err(write_error)?
                .len(),
            vmlinuz: vmlinuz.clone(),
            modules_dir: modules_dir.clone(),
        };
        let json = serde_json::to_vec_pretty(&marker).map_err(|e| write_error(e.into()))?;
        std::fs::write(staging.path().join(MARKER), json).map_err(write_error)?;
        if tree.exists() {
            std::fs::remove_dir_all(&tree).map_err(write_error)?;
        }
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, &tree) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(write_error(e));
        }
        Ok(KernelFiles {
            vmlinuz: tree.join(vmlinuz),
            modules_dir: modules_dir.map(|dir| tree.join(dir)),
        })
    }

    /// Blocks until this process is the only one filling `kernel`'s cache entries; the
    /// lock is released when the returned file is dropped.
    pub fn lock(&self, kernel: &SelectedKernel) -> Result<std::fs::File, CacheError> {
        let dir = self.debian().join("locks");
        create_dir(&dir)?;
        let path = dir.join(format!("{}.lock", kernel.release));
        let file = std::fs::File::create(&path).map_err(|source| CacheError::Write {
            path: path.clone(),
            source,
        })?;
        file.lock()
            .map_err(|source| CacheError::Write { path, source })?;
        Ok(file)
    }
}

fn staging_prefix(kernel: &SelectedKernel) -> String {
    format!(".unpacking-{}-", kernel.release)
}

/// Deletes the entries of `dir` whose name matches (a missing `dir` has none).
fn remove_matching(dir: &Path, matches: impl Fn(&str) -> bool) -> Result<(), CacheError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if !matches(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|source| CacheError::Write { path, source })?;
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), CacheError> {
    std::fs::create_dir_all(dir).map_err(|source| CacheError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes through a temporary file in the same directory and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir(dir)?;
    let write_error = |source| CacheError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
    std::io::Write::write_all(&mut temp, bytes).map_err(write_error)?;
    temp.persist(path).map_err(|e| write_error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::download::FileDigest;
    use crate::kernels::select::Layout;
    use crate::kernels::unpack::test_support::fake_bzimage;

    fn kernel(release: &str) -> SelectedKernel {
        SelectedKernel {
            release: release.into(),
            version: "1.0-1".into(),
            layout: Layout::Classic,
            packages: vec![DebPackage {
                name: format!("linux-image-{release}"),
                version: "1.0-1".into(),
                filename: format!("pool/main/l/linux/linux-image-{release}_1.0-1_amd64.deb"),
                digest: FileDigest {
                    size: 3,
                    sha256: "ab".repeat(32),
                },
            }],
            missing: Vec::new(),
        }
    }

    /// Stages and commits a tree with a fake image of `release`.
    fn commit(cache: &KernelCache, kernel: &SelectedKernel) -> KernelFiles {
        let staging = cache.staging_dir(kernel).unwrap();
        let boot = staging.path().join("boot");
        std::fs::create_dir_all(&boot).unwrap();
        let vmlinuz = boot.join(format!("vmlinuz-{}", kernel.release));
        std::fs::write(&vmlinuz, fake_bzimage(&kernel.release, 8192)).unwrap();
        let files = KernelFiles {
            vmlinuz,
            modules_dir: None,
        };
        cache.commit_tree(staging, kernel, &files).unwrap()
    }

    #[test]
    fn record_round_trip_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::at(dir.path());
        let source = DebianSource {
            suite: "bookworm".into(),
            selector: DebianSelector::Series("6.1".into()),
            flavour: "cloud-amd64".into(),
        };
        assert_eq!(cache.load_record(&source), None);
        let record = DebianRecord {
            suite: "bookworm".into(),
            flavour: "cloud-amd64".into(),
            selector: source.selector.clone(),
            index_date: Some("Sat, 11 Jul 2026 10:16:37 UTC".into()),
            kernel: kernel("6.1.0-50-cloud-amd64"),
        };
        cache.store_record(&source, &record).unwrap();
        assert_eq!(cache.load_record(&source), Some(record.clone()));
        assert_eq!(
            cache.record_path(&source),
            dir.path()
                .join("debian/resolved/bookworm/cloud-amd64/series-6.1.json")
        );
        assert_eq!(
            cache.deb_path(&record.kernel.packages[0]),
            dir.path()
                .join("debian/debs/linux-image-6.1.0-50-cloud-amd64_1.0-1_amd64.deb")
        );
        std::fs::write(cache.record_path(&source), b"{ truncated").unwrap();
        assert_eq!(
            cache.load_record(&source),
            None,
            "a damaged record is re-resolved"
        );
    }

    #[test]
    fn committed_tree_is_ready_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::at(dir.path());
        let k = kernel("6.1.0-50-cloud-amd64");
        assert_eq!(cache.tree_state(&k), TreeState::Missing);
        let files = commit(&cache, &k);
        assert_eq!(cache.tree_state(&k), TreeState::Ready(files.clone()));
        assert!(files.vmlinuz.starts_with(cache.tree_path(&k)));

        // Truncated image.
        let image = std::fs::read(&files.vmlinuz).unwrap();
        std::fs::write(&files.vmlinuz, &image[..100]).unwrap();
        assert!(
            matches!(cache.tree_state(&k), TreeState::Broken(r) if r.contains("bytes instead of"))
        );
        // Same size, header overwritten.
        std::fs::write(&files.vmlinuz, vec![0u8; image.len()]).unwrap();
        assert!(
            matches!(cache.tree_state(&k), TreeState::Broken(r) if r.contains("does not announce"))
        );
        // Marker gone (an interrupted unpack left only files).
        std::fs::remove_file(cache.tree_path(&k).join(MARKER)).unwrap();
        assert!(matches!(cache.tree_state(&k), TreeState::Broken(r) if r.contains("no valid")));
        // Committing again replaces the damaged tree.
        let files = commit(&cache, &k);
        assert_eq!(cache.tree_state(&k), TreeState::Ready(files));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("debian/trees"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no staging directories left: {leftovers:?}"
        );
    }

    #[test]
    fn other_package_set_gets_another_tree() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::at(dir.path());
        let k = kernel("6.1.0-50-cloud-amd64");
        commit(&cache, &k);
        let mut rebuilt = k.clone();
        rebuilt.packages[0].digest.sha256 = "cd".repeat(32);
        assert_ne!(cache.tree_path(&k), cache.tree_path(&rebuilt));
        assert_eq!(cache.tree_state(&rebuilt), TreeState::Missing);
    }
}
