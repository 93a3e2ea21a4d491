//! The kernel cache under `$XDG_CACHE_HOME/sk-storage-harness/kernels/`:
//!
//! ```text
//! debian/resolved/<suite>/<flavour>/<series-6.1|version-6.19.6>.json  resolution records
//! debian/resolved/<suite>/guest-tools-<arch>.json                     the guest tools'
//! debian/debs/<pool file name>                                        verified downloads
//! debian/trees/<release>-<hash of the package set>/                   unpacked kernels
//!     .harness-tree.json                                              completeness marker
//! debian/locks/<release>.lock                                         one writer per kernel
//! ```
//!
//! Every entry appears atomically (temporary name in the same directory, then rename), and
//! a tree counts as present only when its marker matches the record and every file the boot
//! reads is as it was unpacked, so an interrupted or damaged entry is detected and rebuilt.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::config::{DebianSelector, DebianSource};
use super::download::{
    FileDigest, PARTIAL_SUFFIX, file_digest, file_matches, partial_prefix, sha256_hex,
};
use super::select::{DebPackage, SelectedKernel};
use super::unpack::KernelFiles;
use crate::vm::Arch;

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
    modules_dir: Option<PathBuf>,
    /// Every file the boot reads, the image and everything below the modules directory, as
    /// unpacked, in path order.
    files: Vec<TreeFile>,
}

/// A file of a tree as it was unpacked from the verified packages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct TreeFile {
    /// Relative to the tree root.
    path: PathBuf,
    digest: FileDigest,
    stamp: Stamp,
}

/// What the file system changes about a file whenever its content may have changed.
///
/// Hashing a whole tree on every use costs too much (a 6.1 cloud kernel's image and modules
/// are 1125 files, 105 MB: 0.12-0.19 s optimised, 5 s in a debug build), so a file whose
/// stamp is unchanged is taken as unpacked, and only a file whose stamp changed is hashed
/// again. The stamp holds the
/// ctime, which every write, truncation or attribute change sets to the current time and
/// which, unlike the mtime, no tool can set back (`touch -r`, `cp -p`). The clock behind it
/// is coarse (a few ms), so a file changed in the tick it was recorded in would keep its
/// stamp: a file whose ctime is not older than the marker's is hashed on every check, as
/// git does with its "racily clean" entries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    inode: u64,
    /// Seconds and nanoseconds.
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            inode: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl TreeFile {
    /// Records `path` (below `root`) as it is now.
    fn record(root: &Path, path: &Path) -> std::io::Result<TreeFile> {
        let stamp = Stamp::of(&std::fs::symlink_metadata(path)?);
        Ok(TreeFile {
            path: path
                .strip_prefix(root)
                .map_err(std::io::Error::other)?
                .to_path_buf(),
            digest: file_digest(path)?,
            stamp,
        })
    }

    /// Why the file below `tree` is no longer the one unpacked, if it is not; `marked` is
    /// the ctime of the marker.
    fn check(&self, tree: &Path, marked: (i64, i64)) -> Result<(), String> {
        let path = tree.join(&self.path);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("{} is missing", path.display()));
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        if !meta.is_file() {
            return Err(format!("{} is no longer a regular file", path.display()));
        }
        if meta.len() != self.digest.size {
            return Err(format!(
                "{} has {} bytes instead of {}",
                path.display(),
                meta.len(),
                self.digest.size
            ));
        }
        if Stamp::of(&meta) == self.stamp && self.stamp.ctime < marked {
            return Ok(());
        }
        // Touched, copied or written since: only the content can tell.
        match file_matches(&path, &self.digest) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "{} was modified since it was unpacked: its SHA256 is no longer {}",
                path.display(),
                self.digest.sha256
            )),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// The marker of `tree` and its ctime, if it can be read.
fn read_marker(tree: &Path) -> Option<(TreeMarker, (i64, i64))> {
    let mut file = crate::input_file::open_regular(&tree.join(MARKER), MAX_RECORD_BYTES).ok()?;
    let meta = file.metadata().ok()?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).ok()?;
    let marker = serde_json::from_slice(&bytes).ok()?;
    Some((marker, (meta.ctime(), meta.ctime_nsec())))
}

/// The files the boot reads: the image and every regular file below the modules directory
/// (symbolic links are not followed: Debian's `build` and `source` links point into header
/// packages, which are not unpacked), once each and in path order.
fn boot_files(files: &KernelFiles) -> std::io::Result<Vec<PathBuf>> {
    let mut found = vec![files.vmlinuz.clone()];
    let mut dirs: Vec<PathBuf> = files.modules_dir.iter().cloned().collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                found.push(entry.path());
            }
        }
    }
    // The split layout keeps its image in the modules directory.
    found.sort();
    found.dedup();
    Ok(found)
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

/// The most bytes of a marker or record read: a marker lists every module file of a kernel
/// (a few thousand, 1–2 MB), so more than this is no file the cache wrote.
const MAX_RECORD_BYTES: u64 = 64 << 20;

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

    /// Where the packages of the guest tools of `arch` in `suite` are recorded.
    fn tools_record_path(&self, suite: &str, arch: Arch) -> PathBuf {
        self.debian()
            .join("resolved")
            .join(suite)
            .join(format!("guest-tools-{}.json", arch.debian()))
    }

    /// The recorded resolution of `source`; an unreadable record counts as absent (the
    /// index is read again).
    pub fn load_record(&self, source: &DebianSource) -> Option<DebianRecord> {
        load_json(&self.record_path(source))
    }

    pub fn store_record(
        &self,
        source: &DebianSource,
        record: &DebianRecord,
    ) -> Result<(), CacheError> {
        store_json(&self.record_path(source), record)
    }

    /// The recorded packages of the guest tools of `arch` in `suite`, as
    /// [`Self::load_record`] reads a kernel's.
    pub fn load_tools_record(&self, suite: &str, arch: Arch) -> Option<Vec<DebPackage>> {
        load_json(&self.tools_record_path(suite, arch))
    }

    pub fn store_tools_record(
        &self,
        suite: &str,
        arch: Arch,
        packages: &[DebPackage],
    ) -> Result<(), CacheError> {
        store_json(&self.tools_record_path(suite, arch), &packages)
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

    /// Checks the tree against its marker: same packages, and every file the boot reads as
    /// it was unpacked (the reason of a damaged tree names the first file that is not).
    pub fn tree_state(&self, kernel: &SelectedKernel) -> TreeState {
        let tree = self.tree_path(kernel);
        if !tree.exists() {
            return TreeState::Missing;
        }
        let (marker, marked) = match read_marker(&tree) {
            Some(read) => read,
            None => {
                return TreeState::Broken(format!(
                    "{} has no valid {MARKER} (an interrupted unpack, or one by an older harness that recorded no file hashes)",
                    tree.display()
                ));
            }
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
        if let Some(why) = marker
            .files
            .iter()
            .find_map(|file| file.check(&tree, marked).err())
        {
            return TreeState::Broken(why);
        }
        TreeState::Ready(KernelFiles {
            vmlinuz: tree.join(marker.vmlinuz),
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
        let recorded = boot_files(files)
            .and_then(|paths| {
                paths
                    .iter()
                    .map(|path| TreeFile::record(staging.path(), path))
                    .collect()
            })
            .map_err(write_error)?;
        let marker = TreeMarker {
            release: kernel.release.clone(),
            packages: kernel
                .packages
                .iter()
                .map(|p| p.digest.sha256.clone())
                .collect(),
            vmlinuz: vmlinuz.clone(),
            modules_dir: modules_dir.clone(),
            files: recorded,
        };
        // Compact: the marker of a tree with modules lists about a thousand files.
        let json = serde_json::to_vec(&marker).map_err(|e| write_error(e.into()))?;
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

fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = crate::input_file::read_regular(path, MAX_RECORD_BYTES).ok()?;
    serde_json::from_slice(&text).ok()
}

fn store_json(path: &Path, value: &impl serde::Serialize) -> Result<(), CacheError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| CacheError::Write {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    write_atomically(path, &json)
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

    const MODULES: [&str; 5] = [
        "kernel/fs/a.ko",
        "kernel/fs/b.ko",
        "kernel/net/c.ko",
        "kernel/net/d.ko",
        "modules.dep",
    ];

    /// Stages and commits a tree with a fake image of `release` and a few modules.
    fn commit(cache: &KernelCache, kernel: &SelectedKernel) -> KernelFiles {
        let staging = cache.staging_dir(kernel).unwrap();
        let boot = staging.path().join("boot");
        std::fs::create_dir_all(&boot).unwrap();
        let vmlinuz = boot.join(format!("vmlinuz-{}", kernel.release));
        std::fs::write(&vmlinuz, fake_bzimage(&kernel.release, 8192)).unwrap();
        let modules_dir = staging.path().join("lib/modules").join(&kernel.release);
        for module in MODULES {
            let path = modules_dir.join(module);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, module.as_bytes()).unwrap();
        }
        // Past a tick of the file system's clock, the files are older than the marker, as
        // after a real unpack, and their stamps are trusted.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let files = KernelFiles {
            vmlinuz,
            modules_dir: Some(modules_dir),
        };
        cache.commit_tree(staging, kernel, &files).unwrap()
    }

    fn broken(cache: &KernelCache, kernel: &SelectedKernel) -> String {
        match cache.tree_state(kernel) {
            TreeState::Broken(reason) => reason,
            other => panic!("expected a damaged tree, got {other:?}"),
        }
    }

    /// Flips the byte at `offset` of `path`, keeping its size and mtime, as a careful
    /// corruption would.
    fn flip_byte(path: &Path, offset: u64) {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mtime = file.metadata().unwrap().modified().unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, offset).unwrap();
        file.write_all_at(&[byte[0] ^ 0xff], offset).unwrap();
        file.set_modified(mtime).unwrap();
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
        let modules = files.modules_dir.clone().unwrap();

        // Touched but unchanged: the content is hashed again and found whole.
        let module = modules.join(MODULES[1]);
        let file = std::fs::File::options().write(true).open(&module).unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(cache.tree_state(&k), TreeState::Ready(files.clone()));

        // One byte of the image flipped, its size and mtime kept.
        let image = std::fs::read(&files.vmlinuz).unwrap();
        flip_byte(&files.vmlinuz, image.len() as u64 - 1);
        assert_eq!(
            broken(&cache, &k),
            format!(
                "{} was modified since it was unpacked: its SHA256 is no longer {}",
                files.vmlinuz.display(),
                sha256_hex(&image)
            )
        );
        // Truncated image.
        std::fs::write(&files.vmlinuz, &image[..100]).unwrap();
        assert!(broken(&cache, &k).ends_with("bytes instead of 8192"));

        // A module changed in the same way, then every second file of the modules deleted:
        // the first file missing in path order is named.
        let files = commit(&cache, &k);
        flip_byte(&modules.join(MODULES[4]), 0);
        assert!(
            broken(&cache, &k)
                .starts_with(&format!("{}/modules.dep was modified", modules.display())),
            "{}",
            broken(&cache, &k)
        );
        for module in MODULES.iter().step_by(2) {
            std::fs::remove_file(modules.join(module)).unwrap();
        }
        assert_eq!(
            broken(&cache, &k),
            format!("{}/kernel/fs/a.ko is missing", modules.display())
        );
        assert!(
            files.vmlinuz.is_file(),
            "the image alone does not make a tree"
        );

        // Marker gone (an interrupted unpack left only files).
        std::fs::remove_file(cache.tree_path(&k).join(MARKER)).unwrap();
        assert!(broken(&cache, &k).contains("has no valid .harness-tree.json"));
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
    fn a_file_is_hashed_only_when_its_stamp_changed_or_is_racy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmlinuz");
        std::fs::write(&path, b"image").unwrap();
        let record = TreeFile::record(dir.path(), &path).unwrap();
        assert_eq!(record.path, Path::new("vmlinuz"));
        assert_eq!(record.digest.sha256, sha256_hex(b"image"));
        // A record whose digest the file does not have: accepted exactly when the content
        // is not read, which shows when it is not.
        let wrong = TreeFile {
            digest: FileDigest {
                size: 5,
                sha256: sha256_hex(b"other"),
            },
            ..record.clone()
        };
        let (secs, nanos) = record.stamp.ctime;
        assert_eq!(wrong.check(dir.path(), (secs + 1, nanos)), Ok(()));
        assert!(
            wrong.check(dir.path(), (secs, nanos)).is_err(),
            "a file as new as the marker may have changed within the clock's tick"
        );
        assert_eq!(record.check(dir.path(), (secs, nanos)), Ok(()));
        std::fs::write(&path, b"imagf").unwrap();
        assert!(record.check(dir.path(), (secs + 1, nanos)).is_err());
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
