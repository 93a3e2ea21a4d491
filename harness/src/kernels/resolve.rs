//! From a kernels.toml entry to something bootable, using the cache first.
//!
//! A Debian source is resolved once (the signed index's answer is recorded in the cache)
//! and then fetched, verified and unpacked once; later resolves read the record and the
//! tree's marker and check the tree's files against it, with no network. A damaged tree is
//! rebuilt from the verified packages. `refresh` re-reads the indexes.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::cache::{CacheError, DebianRecord, KernelCache, TreeState};
use super::config::{DebianSource, KernelEntry, KernelSource, KernelsFile};
use super::download::{FetchError, Http, NoProgress, Progress, file_matches};
use super::index::{IndexError, SuiteIndex, fetch_suite_index};
use super::mirror::{Mirror, NoMirror, find_mirror};
use super::select::{DebPackage, SelectError, SelectedKernel, kernel_versions, select_kernel};
use super::unpack::{
    KernelFiles, UnpackError, image_info, image_release, locate_kernel, unpack_deb,
};
use crate::results::{KernelRun, KernelStatus as RunStatus};
use crate::vm::Arch;

/// A kernel image on disk, ready for `vng -r <vmlinuz>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootableKernel {
    pub name: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>` (or `usr/lib/modules/…`) beside the image, when the kernel
    /// has modules: a local image's `modules`, else where vng would look from the image
    /// ([`modules_above`]).
    pub modules_dir: Option<PathBuf>,
    /// The release the image announces (`uname -r` in the guest), e.g.
    /// `6.12.117+deb13-cloud-amd64`.
    pub release: String,
}

/// What the caller must do to run a kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedKernel {
    /// Boot this image (a Debian kernel from the cache, or a local build).
    Bootable(BootableKernel),
    /// `vng -r <tag>`: vng downloads the Ubuntu mainline build itself.
    Mainline { name: String, tag: String },
    /// A kernel source tree: built by the harness first when `build` (see `build.rs`),
    /// otherwise booted as it was built.
    Tree {
        name: String,
        path: PathBuf,
        build: bool,
    },
    /// Run on the running kernel, no VM.
    Host { name: String, release: String },
    /// An optional local image that is not on this machine: nothing to run, nothing wrong.
    Absent {
        name: String,
        vmlinuz: String,
        why: String,
    },
}

impl ResolvedKernel {
    /// Why an absent kernel does not run, and how to get one.
    pub fn absent_reason(vmlinuz: &str, why: &str) -> String {
        format!(
            "the image {vmlinuz} is not on this machine ({why}); to run this kernel, get such a \
             build: with internet, `mainline = \"vX.Y\"` in kernels.toml lets vng download one, or \
             build it from upstream sources as docs/src/kernels.md (\"Kernels before 5.10\") describes"
        )
    }

    pub fn name(&self) -> &str {
        match self {
            ResolvedKernel::Bootable(kernel) => &kernel.name,
            ResolvedKernel::Mainline { name, .. }
            | ResolvedKernel::Tree { name, .. }
            | ResolvedKernel::Host { name, .. }
            | ResolvedKernel::Absent { name, .. } => name,
        }
    }
}

impl KernelEntry {
    /// For an `optional` local image that is absent, why it cannot run here and how to get
    /// one; `None` for every other kernel.
    pub fn absent_reason(&self) -> Option<String> {
        match &self.source {
            KernelSource::Absent { vmlinuz, why } => {
                Some(ResolvedKernel::absent_reason(vmlinuz, why))
            }
            _ => None,
        }
    }

    /// Why this kernel cannot run on this machine as the list stands, if it cannot: an
    /// `optional` local image that is absent ([`Self::absent_reason`]), or a Debian kernel
    /// when no Debian mirror is configured (a CI runner of another distribution with no
    /// `$HARNESS_DEBIAN_MIRROR`). A CI matrix gives such a kernel no job, and the merged
    /// report shows it as a skip with this reason.
    pub fn cannot_run_here(&self, file: &KernelsFile) -> Option<String> {
        match &self.source {
            KernelSource::Debian(_) => find_mirror(file.mirror.as_deref())
                .err()
                .map(|e| e.to_string()),
            _ => self.absent_reason(),
        }
    }

    /// This kernel's row in the results when it ran no case: its note and the machine of
    /// its architecture, as a run of the list gives them.
    pub fn row_without_cases(&self, status: RunStatus) -> KernelRun {
        KernelRun {
            note: self.note.clone(),
            arch: Some(self.arch.uname_machine().to_string()),
            ..KernelRun::without_cases(&self.name, status)
        }
    }
}

/// What `kernels list` shows for one kernel, found without network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelStatus {
    /// The resolved release, when known without network.
    pub release: Option<String>,
    pub cache: CacheState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheState {
    /// Unpacked, complete, bootable offline.
    Ready,
    /// Resolved earlier; the packages still have to be fetched.
    NotFetched,
    /// The unpacked tree is incomplete or damaged; the next fetch or run rebuilds it.
    Broken { reason: String },
    /// The suite's index has not been read yet.
    NotResolved,
    /// Nothing of ours to cache: a local image, a source tree, a mainline build (vng's own
    /// cache) or the host.
    NotCached,
    /// An optional local image that is not on this machine.
    Absent { why: String },
}

impl fmt::Display for CacheState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheState::Ready => f.write_str("cached"),
            CacheState::NotFetched => f.write_str("not fetched"),
            CacheState::Broken { reason } => write!(f, "damaged: {reason}"),
            CacheState::NotResolved => f.write_str("not resolved"),
            CacheState::NotCached => f.write_str("-"),
            CacheState::Absent { why } => write!(f, "absent, skipped ({why})"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("kernel {kernel}")]
    Mirror {
        kernel: String,
        #[source]
        source: NoMirror,
    },
    #[error("kernel {kernel}: cannot read the Debian index")]
    Index {
        kernel: String,
        #[source]
        source: Box<IndexError>,
    },
    #[error("kernel {kernel}: fix `debian` in kernels.toml")]
    Select {
        kernel: String,
        #[source]
        source: Box<SelectError>,
    },
    #[error(
        "kernel {kernel}: cannot download {package}{}",
        refetch_hint(kernel, source)
    )]
    Download {
        kernel: String,
        package: String,
        #[source]
        source: FetchError,
    },
    #[error("kernel {kernel}: cannot unpack")]
    Unpack {
        kernel: String,
        #[source]
        source: UnpackError,
    },
    #[error(
        "kernel {kernel}: the {suite} index for {arch} has no {package}, which its guest runs \
         (Debian's static build: the guest's root has no C library)"
    )]
    NoGuestTool {
        kernel: String,
        package: String,
        suite: String,
        arch: Arch,
    },
    #[error("kernel {kernel}: cache error")]
    Cache {
        kernel: String,
        #[source]
        source: CacheError,
    },
    #[error(
        "kernel {kernel}: the packages of {release} hold no kernel image (looked for boot/vmlinuz-{release} and usr/lib/modules/{release}/vmlinuz)"
    )]
    NoImage { kernel: String, release: String },
    #[error("kernel {kernel}: {} announces release {found:?}, expected {expected}", path.display())]
    ReleaseMismatch {
        kernel: String,
        path: PathBuf,
        expected: String,
        found: Option<String>,
    },
    #[error("kernel {kernel}: cannot tell the release of {}: it is neither a bzImage nor an arm64 Image with its banner; give `modules` (its lib/modules/<release> directory) in kernels.toml", path.display())]
    UnknownLocalRelease { kernel: String, path: PathBuf },
    #[error("kernel {kernel}: {} is an {image} kernel, but kernels.toml lists an {listed} one; set `arch = \"{image}\"` on it", path.display())]
    WrongArch {
        kernel: String,
        path: PathBuf,
        image: Arch,
        listed: Arch,
    },
    #[error(
        "kernel {kernel}: {} has SHA256 {found}, but kernels.toml pins {expected}; refusing another image than the one the list names (fix the image or update the pin)",
        path.display()
    )]
    ImageChanged {
        kernel: String,
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("kernel {kernel}: cannot read {}", path.display())]
    Read {
        kernel: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A 404 on a pool file means the suite moved on since the index was recorded.
fn refetch_hint(kernel: &str, error: &FetchError) -> String {
    match error.status() {
        Some(404) => format!(
            " (the mirror no longer has it; run `harness kernels fetch --refresh {kernel}` to re-read the index)"
        ),
        _ => String::new(),
    }
}

/// Resolves kernels of one kernels.toml, sharing the HTTP client, the mirror choice and the
/// indexes already read between them.
pub struct Resolver<'a> {
    file: &'a KernelsFile,
    pub(super) cache: KernelCache,
    progress: &'a dyn Progress,
    pub(super) refresh: bool,
    http: Option<Http>,
    mirror: Option<Mirror>,
    /// Indexes read in this run, by (suite, architecture).
    indexes: HashMap<(String, String), SuiteIndex>,
}

impl<'a> Resolver<'a> {
    pub fn new(file: &'a KernelsFile, cache: KernelCache) -> Resolver<'a> {
        Resolver {
            file,
            cache,
            progress: &NoProgress,
            refresh: false,
            http: None,
            mirror: None,
            indexes: HashMap::new(),
        }
    }

    /// Reports download progress to `progress`.
    pub fn with_progress(mut self, progress: &'a dyn Progress) -> Resolver<'a> {
        self.progress = progress;
        self
    }

    /// Re-reads the suites' indexes instead of trusting recorded resolutions.
    pub fn refreshing(mut self, refresh: bool) -> Resolver<'a> {
        self.refresh = refresh;
        self
    }

    pub fn cache(&self) -> &KernelCache {
        &self.cache
    }

    /// Makes `entry` runnable: for a Debian source, resolves (recorded answer first), then
    /// downloads, verifies and unpacks whatever the cache lacks.
    pub fn resolve(&mut self, entry: &KernelEntry) -> Result<ResolvedKernel, ResolveError> {
        let name = entry.name.clone();
        match &entry.source {
            KernelSource::Debian(source) => {
                let record = self.debian_record(&name, source)?;
                let files = self.ensure_tree(&name, &record.kernel)?;
                Ok(ResolvedKernel::Bootable(BootableKernel {
                    name,
                    vmlinuz: files.vmlinuz,
                    modules_dir: files.modules_dir,
                    release: record.kernel.release,
                }))
            }
            KernelSource::Local {
                vmlinuz,
                modules,
                sha256,
            } => {
                if let Some(expected) = sha256 {
                    check_pinned_image(&name, vmlinuz, expected)?;
                }
                let release = local_release(&name, entry.arch, vmlinuz, modules.as_deref())?;
                Ok(ResolvedKernel::Bootable(BootableKernel {
                    name,
                    vmlinuz: vmlinuz.clone(),
                    modules_dir: modules.clone().or_else(|| modules_above(vmlinuz, &release)),
                    release,
                }))
            }
            KernelSource::Absent { vmlinuz, why } => Ok(ResolvedKernel::Absent {
                name,
                vmlinuz: vmlinuz.clone(),
                why: why.clone(),
            }),
            KernelSource::Mainline { tag } => Ok(ResolvedKernel::Mainline {
                name,
                tag: tag.clone(),
            }),
            KernelSource::Tree { path, build } => Ok(ResolvedKernel::Tree {
                name,
                path: path.clone(),
                build: *build,
            }),
            KernelSource::Host => Ok(ResolvedKernel::Host {
                release: host_release(&name)?,
                name,
            }),
        }
    }

    /// What is known about `entry` without network.
    pub fn status(&self, entry: &KernelEntry) -> KernelStatus {
        match &entry.source {
            KernelSource::Debian(source) => match self.cache.load_record(source) {
                None => KernelStatus {
                    release: None,
                    cache: CacheState::NotResolved,
                },
                Some(record) => KernelStatus {
                    cache: match self.cache.tree_state(&record.kernel) {
                        TreeState::Ready(_) => CacheState::Ready,
                        TreeState::Missing => CacheState::NotFetched,
                        TreeState::Broken(reason) => CacheState::Broken { reason },
                    },
                    release: Some(record.kernel.release),
                },
            },
            KernelSource::Local {
                vmlinuz, modules, ..
            } => KernelStatus {
                release: local_release(&entry.name, entry.arch, vmlinuz, modules.as_deref()).ok(),
                cache: CacheState::NotCached,
            },
            KernelSource::Absent { why, .. } => KernelStatus {
                release: None,
                cache: CacheState::Absent { why: why.clone() },
            },
            KernelSource::Mainline { .. } | KernelSource::Tree { .. } => KernelStatus {
                release: None,
                cache: CacheState::NotCached,
            },
            KernelSource::Host => KernelStatus {
                release: host_release(&entry.name).ok(),
                cache: CacheState::NotCached,
            },
        }
    }

    /// The Debian versions of every `flavour` kernel in `suite`, oldest first, from the
    /// suite's signed index (read now: a ladder is for the index as it is). `label` names
    /// the request in errors.
    pub fn suite_versions(
        &mut self,
        label: &str,
        suite: &str,
        flavour: &str,
    ) -> Result<Vec<String>, ResolveError> {
        let index = self.suite_index(label, suite, flavour)?;
        Ok(kernel_versions(&index.packages, flavour))
    }

    /// The signed index of `suite` for the flavour's architecture, read once per run.
    fn suite_index(
        &mut self,
        kernel: &str,
        suite: &str,
        flavour: &str,
    ) -> Result<&SuiteIndex, ResolveError> {
        self.suite_index_of(kernel, suite, flavour.rsplit('-').next().unwrap_or(flavour))
    }

    /// The signed index of `suite` for `arch` (Debian's name, `arm64`), read once per run.
    pub(super) fn suite_index_of(
        &mut self,
        kernel: &str,
        suite: &str,
        arch: &str,
    ) -> Result<&SuiteIndex, ResolveError> {
        let key = (suite.to_string(), arch.to_string());
        if !self.indexes.contains_key(&key) {
            let mirror = self.mirror(kernel)?.url.clone();
            let keyring = self.file.keyring.as_path();
            let index = fetch_suite_index(self.http(), &mirror, suite, arch, keyring).map_err(
                |source| ResolveError::Index {
                    kernel: kernel.to_string(),
                    source: Box::new(source),
                },
            )?;
            self.indexes.insert(key.clone(), index);
        }
        Ok(&self.indexes[&key])
    }

    /// The recorded resolution, or a fresh one from the signed index (then recorded).
    fn debian_record(
        &mut self,
        kernel: &str,
        source: &DebianSource,
    ) -> Result<DebianRecord, ResolveError> {
        if !self.refresh
            && let Some(record) = self.cache.load_record(source)
        {
            return Ok(record);
        }
        let index = self.suite_index(kernel, &source.suite, &source.flavour)?;
        let selected =
            select_kernel(&index.packages, source).map_err(|source| ResolveError::Select {
                kernel: kernel.to_string(),
                source: Box::new(source),
            })?;
        let record = DebianRecord {
            suite: source.suite.clone(),
            flavour: source.flavour.clone(),
            selector: source.selector.clone(),
            index_date: index.date.clone(),
            kernel: selected,
        };
        self.cache
            .store_record(source, &record)
            .map_err(|source| ResolveError::Cache {
                kernel: kernel.to_string(),
                source,
            })?;
        Ok(record)
    }

    /// The unpacked tree of `selected`, building it from verified .debs if it is missing
    /// or damaged.
    fn ensure_tree(
        &mut self,
        kernel: &str,
        selected: &SelectedKernel,
    ) -> Result<KernelFiles, ResolveError> {
        let cache_error = |source| ResolveError::Cache {
            kernel: kernel.to_string(),
            source,
        };
        if let TreeState::Ready(files) = self.cache.tree_state(selected) {
            return Ok(files);
        }
        let _lock = self.cache.lock(selected).map_err(cache_error)?;
        // Another process may have built it while this one waited for the lock.
        match self.cache.tree_state(selected) {
            TreeState::Ready(files) => return Ok(files),
            TreeState::Broken(reason) => self.progress.rebuilding(kernel, &reason),
            TreeState::Missing => {}
        }
        self.cache.remove_leftovers(selected).map_err(cache_error)?;
        for package in &selected.packages {
            self.fetch_deb(kernel, package)?;
        }
        let staging = self.cache.staging_dir(selected).map_err(cache_error)?;
        for package in &selected.packages {
            unpack_deb(&self.cache.deb_path(package), staging.path()).map_err(|source| {
                ResolveError::Unpack {
                    kernel: kernel.to_string(),
                    source,
                }
            })?;
        }
        let files = locate_kernel(staging.path(), &selected.release).ok_or_else(|| {
            ResolveError::NoImage {
                kernel: kernel.to_string(),
                release: selected.release.clone(),
            }
        })?;
        let announced = image_release(&files.vmlinuz).map_err(|source| ResolveError::Read {
            kernel: kernel.to_string(),
            path: files.vmlinuz.clone(),
            source,
        })?;
        if announced.as_deref() != Some(selected.release.as_str()) {
            return Err(ResolveError::ReleaseMismatch {
                kernel: kernel.to_string(),
                path: self.cache.deb_path(&selected.packages[0]),
                expected: selected.release.clone(),
                found: announced,
            });
        }
        self.cache
            .commit_tree(staging, selected, &files)
            .map_err(cache_error)
    }

    /// The verified .deb of `package` in the cache, downloaded unless it is there already.
    pub(super) fn fetch_deb(
        &mut self,
        kernel: &str,
        package: &DebPackage,
    ) -> Result<PathBuf, ResolveError> {
        let deb = self.cache.deb_path(package);
        if file_matches(&deb, &package.digest).unwrap_or(false) {
            return Ok(deb);
        }
        std::fs::create_dir_all(self.cache.debs_dir()).map_err(|source| ResolveError::Cache {
            kernel: kernel.to_string(),
            source: CacheError::Write {
                path: self.cache.debs_dir(),
                source,
            },
        })?;
        let url = format!("{}/{}", self.mirror(kernel)?.url, package.filename);
        let progress = self.progress;
        self.http()
            .download_verified(&url, &package.digest, &deb, &package.name, progress)
            .map_err(|source| ResolveError::Download {
                kernel: kernel.to_string(),
                package: package.name.clone(),
                source,
            })?;
        Ok(deb)
    }

    fn http(&mut self) -> &Http {
        self.http.get_or_insert_with(Http::new)
    }

    fn mirror(&mut self, kernel: &str) -> Result<&Mirror, ResolveError> {
        if self.mirror.is_none() {
            let mirror = find_mirror(self.file.mirror.as_deref()).map_err(|source| {
                ResolveError::Mirror {
                    kernel: kernel.to_string(),
                    source,
                }
            })?;
            self.mirror = Some(mirror);
        }
        Ok(self.mirror.as_ref().expect("set just above"))
    }
}

/// Refuses a local image whose SHA256 is not the one kernels.toml pins.
fn check_pinned_image(kernel: &str, vmlinuz: &Path, expected: &str) -> Result<(), ResolveError> {
    let bytes = crate::input_file::read_regular(vmlinuz, super::unpack::MAX_IMAGE_BYTES).map_err(
        |source| ResolveError::Read {
            kernel: kernel.to_string(),
            path: vmlinuz.to_path_buf(),
            source,
        },
    )?;
    let found = super::download::sha256_hex(&bytes);
    if found == expected {
        Ok(())
    } else {
        Err(ResolveError::ImageChanged {
            kernel: kernel.to_string(),
            path: vmlinuz.to_path_buf(),
            expected: expected.to_string(),
            found,
        })
    }
}

/// A local image's release: from the image (a bzImage's header, an arm64 Image's banner),
/// else its modules directory's name. An image of another architecture than the entry's
/// is refused: it would be booted by the wrong QEMU.
fn local_release(
    kernel: &str,
    arch: Arch,
    vmlinuz: &Path,
    modules: Option<&Path>,
) -> Result<String, ResolveError> {
    let image = image_info(vmlinuz).map_err(|source| ResolveError::Read {
        kernel: kernel.to_string(),
        path: vmlinuz.to_path_buf(),
        source,
    })?;
    if let Some(found) = image.arch
        && found != arch
    {
        return Err(ResolveError::WrongArch {
            kernel: kernel.to_string(),
            path: vmlinuz.to_path_buf(),
            image: found,
            listed: arch,
        });
    }
    image
        .release
        .or_else(|| {
            modules
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
        })
        .ok_or_else(|| ResolveError::UnknownLocalRelease {
            kernel: kernel.to_string(),
            path: vmlinuz.to_path_buf(),
        })
}

/// The modules of `release` where vng looks for an image's: under the nearest directory
/// above the image that has `lib/modules` (or `usr/lib/modules`), `/` at the latest.
fn modules_above(vmlinuz: &Path, release: &str) -> Option<PathBuf> {
    let image = std::path::absolute(vmlinuz).ok()?;
    let root = image.ancestors().skip(1).find_map(|dir| {
        if dir.join("lib/modules").is_dir() {
            Some(dir.to_path_buf())
        } else if dir.join("usr/lib/modules").is_dir() {
            Some(dir.join("usr"))
        } else {
            None
        }
    })?;
    Some(root.join("lib/modules").join(release)).filter(|dir| dir.is_dir())
}

const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

fn host_release(kernel: &str) -> Result<String, ResolveError> {
    std::fs::read_to_string(OSRELEASE)
        .map(|s| s.trim().to_string())
        .map_err(|source| ResolveError::Read {
            kernel: kernel.to_string(),
            path: PathBuf::from(OSRELEASE),
            source,
        })
}

#[cfg(test)]
mod tests;
