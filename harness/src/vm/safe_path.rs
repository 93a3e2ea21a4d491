//! Paths on their way to vng, made safe for the shells vng hands them to.
//!
//! virtme-ng 1.42 pastes paths unquoted into command lines that `/bin/sh` runs: virtme-run's
//! (`--run`, `--root`, `--rwdir`/`--rodir`, and for a mainline kernel its download under
//! `$HOME/.cache/virtme-ng`; the vng that `scripts/setup-vm.sh` patches splits that one with
//! `shlex` instead, which still breaks at spaces), virtiofsd's for each share (virtiofsd's
//! own path, its socket in `$TMPDIR`, the shared directory) and zstd's for each compressed
//! module it puts in the initramfs (the module's resolved path). A path with `$(…)`,
//! backticks, `;`, quotes, spaces or newlines there runs commands or breaks the boot;
//! `ci/upstream/` has the fix for vng.
//!
//! So vng sees only paths made of [safe bytes](is_safe_word): [`Staging`] links the real files
//! under names chosen here, in a temporary directory whose own path is checked, and
//! [`check_kernel`] says, before anything boots, what no link can make safe. The vng command
//! line itself checks every path it carries ([`vng_args`](super::command::vng_args)).

use std::{
    collections::HashSet,
    ffi::OsString,
    fs,
    os::unix::{ffi::OsStrExt, fs::symlink},
    path::{Path, PathBuf},
};

use super::{
    VmError,
    spec::{KernelArg, Share, VmSpec},
    tools::Vng,
};

/// Whether `word` is non-empty and made only of letters, digits and `._+/-`: bytes that
/// `/bin/sh` gives no meaning to and at which vng splits nothing (it splits share options at
/// `=`). `+` is in Debian's releases (`6.12.117+deb13-cloud-amd64`).
pub fn is_safe_word(word: &[u8]) -> bool {
    !word.is_empty()
        && word
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._+/-".contains(b))
}

/// Whether `path` is absolute and made of [safe bytes](is_safe_word) only.
pub fn is_safe(path: &Path) -> bool {
    let bytes = path.as_os_str().as_bytes();
    bytes.starts_with(b"/") && is_safe_word(bytes)
}

/// Nothing when `path` [is safe](is_safe), else why vng must not get it.
pub fn check(what: &'static str, path: &Path, fix: &'static str) -> Result<(), VmError> {
    if is_safe(path) {
        Ok(())
    } else {
        Err(VmError::UnsafePath {
            what,
            path: path.to_path_buf(),
            fix,
        })
    }
}

/// Where to make what vng must see at its real path (a guest root, a directory the guest
/// sees at the same path): `preferred` when its path is safe, else the temporary directory.
pub fn safe_dir(preferred: &Path) -> Result<PathBuf, VmError> {
    match fs::canonicalize(preferred) {
        Ok(path) if is_safe(&path) => Ok(path),
        _ => temp_dir(),
    }
}

/// `$TMPDIR` when its path is safe, else `/tmp`.
fn temp_dir() -> Result<PathBuf, VmError> {
    let candidates = [std::env::temp_dir(), PathBuf::from("/tmp")];
    candidates
        .iter()
        .filter_map(|dir| fs::canonicalize(dir).ok())
        .find(|dir| is_safe(dir) && dir.is_dir())
        .ok_or_else(|| VmError::UnsafePath {
            what: "the temporary directory",
            path: std::env::temp_dir(),
            fix: "set TMPDIR to a directory with such a path",
        })
}

/// vng's own place: vng shares its guest tools, which lie beside it, with every guest
/// through virtiofsd's command line, and names them on the kernel command line of guests on
/// the host's root. No link can move them; vng finds them from where it is installed.
pub fn check_vng(vng: &Vng) -> Result<(), VmError> {
    check(
        "vng, installed as",
        vng.program(),
        "install the VM tools under such a path: HARNESS_TOOLS=/opt/sk-storage-harness \
         scripts/setup-vm.sh",
    )
}

/// The files depmod writes into a modules directory: its index, which names each module's
/// file. vng decompresses every `.zst` module the index names through `/bin/sh`, by its
/// resolved path, and a directory's own index may name any path.
const DEPMOD_OUTPUT: &[&str] = &[
    "modules.alias",
    "modules.alias.bin",
    "modules.builtin.alias.bin",
    "modules.builtin.bin",
    "modules.dep",
    "modules.dep.bin",
    "modules.devname",
    "modules.softdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.weakdep",
];

/// Whether vng may read the index of the modules in `dir` as it is: there is one (without
/// `modules.dep` vng has depmod write one from the module files) and it names no `.zst`
/// module. Otherwise the staged modules leave it out, and vng indexes the module files
/// anew: that costs a boot seconds where the modules are xz-compressed (1.7 s for 6.12's
/// here), which is why a harmless index is kept.
fn index_is_kept(dir: &Path) -> Result<bool, VmError> {
    if !dir.join("modules.dep").is_file() {
        return Ok(false);
    }
    for name in DEPMOD_OUTPUT {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        let bytes = fs::read(&path).map_err(|source| VmError::Stage { path, source })?;
        // The index stores each module's path whole, text or binary.
        if bytes.windows(4).any(|window| window == b".zst") {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What can make a kernel impossible to hand to vng safely, found before anything boots:
/// a release that is not a safe file name (the modules' mount point in the guest and their
/// directory vng reads are named by it) and, where vng will index the modules anew, a
/// zstd-compressed module whose real path is not safe (vng decompresses each through
/// `/bin/sh` by that path, whatever link leads to it).
pub fn check_kernel(kernel: &KernelArg) -> Result<(), VmError> {
    let KernelArg::Image {
        release,
        modules: Some(modules),
        ..
    } = kernel
    else {
        return Ok(());
    };
    let release = release.as_deref().unwrap_or_default();
    // One path component: it names a directory under lib/modules.
    if !is_safe_word(release.as_bytes()) || release.contains('/') || matches!(release, "." | "..") {
        return Err(VmError::UnsafePath {
            what: "the release of a kernel with modules,",
            path: release.into(),
            fix: "its modules are mounted in the guest at /lib/modules/<release>; rebuild the \
                  kernel with a plain LOCALVERSION",
        });
    }
    if index_is_kept(modules)? {
        return Ok(());
    }
    let mut seen = HashSet::new();
    check_compressed_modules(modules, true, &mut seen)
}

/// Walks `dir` as depmod does (following links, skipping the top level's `build` and `source`
/// trees), checking the real path of every `.zst` file.
fn check_compressed_modules(
    dir: &Path,
    top: bool,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), VmError> {
    let io_error = |source| VmError::Stage {
        path: dir.to_path_buf(),
        source,
    };
    // A directory reached twice (a link loop) is walked once.
    if !seen.insert(fs::canonicalize(dir).map_err(io_error)?) {
        return Ok(());
    }
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let name = path.file_name().unwrap_or_default();
        if top && (name == "build" || name == "source") {
            continue;
        }
        if path.is_dir() {
            check_compressed_modules(&path, false, seen)?;
        } else if name.as_bytes().ends_with(b".zst")
            // A link that leads nowhere holds no module for depmod to index.
            && let Some(real) = real_path(&path)?
        {
            check(
                "the zstd-compressed module",
                &real,
                "a link does not help, vng resolves it; decompress the modules (zstd -d --rm, \
                 then depmod) or move them to such a path",
            )?;
        }
    }
    Ok(())
}

/// The real path of `path`, or `None` when it leads nowhere (a dangling link).
fn real_path(path: &Path) -> Result<Option<PathBuf>, VmError> {
    match fs::canonicalize(path) {
        Ok(real) => Ok(Some(real)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(VmError::Stage {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A temporary directory through which vng sees one VM's files, each under a name chosen
/// here; also vng's working directory, its `TMPDIR` and its `HOME`. Removed on drop.
#[derive(Debug)]
pub struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    /// An empty staging directory in the temporary directory.
    pub fn new() -> Result<Staging, VmError> {
        let dir = tempfile::Builder::new()
            .prefix("harness-vng-")
            .tempdir_in(temp_dir()?)
            .map_err(|source| VmError::Scratch { source })?;
        let staging = Staging { dir };
        staging.create_dir(&staging.path().join("tmp"))?;
        Ok(staging)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `spec` as vng sees it: the kernel and the shares that the guest sees elsewhere than
    /// at their own path are links in here. A guest root and a share at its own path must
    /// be where the guest finds them, so they are left for [`vng_args`] to check.
    ///
    /// [`vng_args`]: super::command::vng_args
    pub fn stage(&self, spec: &VmSpec) -> Result<VmSpec, VmError> {
        check_kernel(&spec.kernel)?;
        let kernel = match &spec.kernel {
            KernelArg::Image {
                vmlinuz,
                release,
                modules,
            } => self.stage_image(vmlinuz, release.as_deref(), modules.as_deref())?,
            KernelArg::Tree { path } => KernelArg::Tree {
                path: self.link("tree", path)?,
            },
            KernelArg::Mainline { tag } => KernelArg::Mainline { tag: tag.clone() },
        };
        let shares = spec
            .shares
            .iter()
            .enumerate()
            .map(|(index, share)| {
                if share.guest == share.host {
                    return Ok(share.clone());
                }
                // virtiofsd opens the shared directory with O_NOFOLLOW: the link must be a
                // directory on the way, not the last component.
                let link = self.link(&format!("share-{index}"), &share.host)?;
                Ok(Share {
                    host: link.join("."),
                    ..share.clone()
                })
            })
            .collect::<Result<_, VmError>>()?;
        Ok(VmSpec {
            kernel,
            shares,
            ..spec.clone()
        })
    }

    /// vng's environment: `TMPDIR` (its virtiofsd sockets), `PATH` with a link to virtiofsd
    /// first (vng runs it by the path it finds), and `HOME` (its cache of mainline kernels),
    /// all in here.
    pub fn environment(&self, vng: &Vng) -> Result<Vec<(&'static str, OsString)>, VmError> {
        let mut search_path = OsString::new();
        if let Some(virtiofsd) = vng.virtiofsd() {
            let bin = self.path().join("bin");
            self.create_dir(&bin)?;
            self.link("bin/virtiofsd", virtiofsd)?;
            search_path.push(bin);
            search_path.push(":");
        }
        search_path.push(vng.search_path());
        let mut environment = vec![
            ("TMPDIR", self.path().join("tmp").into_os_string()),
            ("PATH", search_path),
        ];
        if let Some(home) = std::env::var_os("HOME").filter(|home| Path::new(home).is_dir()) {
            environment.push(("HOME", self.link("home", Path::new(&home))?.into()));
        }
        Ok(environment)
    }

    /// `kernel/boot/vmlinuz`, and the modules at `kernel/lib/modules/<release>` where vng
    /// looks for them (the nearest `lib/modules` above the image). That directory links
    /// every entry of the modules directory, the index ([`DEPMOD_OUTPUT`]) only when
    /// [kept](index_is_kept).
    fn stage_image(
        &self,
        vmlinuz: &Path,
        release: Option<&str>,
        modules: Option<&Path>,
    ) -> Result<KernelArg, VmError> {
        let lib_modules = self.path().join("kernel/lib/modules");
        self.create_dir(&lib_modules)?;
        self.create_dir(&self.path().join("kernel/boot"))?;
        let image = self.link("kernel/boot/vmlinuz", vmlinuz)?;
        let staged_modules = match (modules, release) {
            (Some(modules), Some(release)) => {
                let staged = lib_modules.join(release);
                self.create_dir(&staged)?;
                let keep_index = index_is_kept(modules)?;
                let entries = fs::read_dir(modules).map_err(|source| VmError::Stage {
                    path: modules.to_path_buf(),
                    source,
                })?;
                for entry in entries {
                    let name = entry
                        .map_err(|source| VmError::Stage {
                            path: modules.to_path_buf(),
                            source,
                        })?
                        .file_name();
                    if !keep_index && DEPMOD_OUTPUT.iter().any(|index| name == *index) {
                        continue;
                    }
                    // Debian's `build` and `source` lead to headers that are seldom there.
                    let Some(target) = real_path(&modules.join(&name))? else {
                        continue;
                    };
                    let link = staged.join(&name);
                    symlink(&target, &link).map_err(|source| VmError::Stage {
                        path: link.clone(),
                        source,
                    })?;
                }
                Some(staged)
            }
            _ => None,
        };
        Ok(KernelArg::Image {
            vmlinuz: image,
            release: release.map(str::to_string),
            modules: staged_modules,
        })
    }

    /// A link named `name` in here to the real path of `target`.
    fn link(&self, name: &str, target: &Path) -> Result<PathBuf, VmError> {
        let stage_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VmError::Stage { path, source }
        };
        let real = fs::canonicalize(target).map_err(stage_error(target))?;
        let link = self.path().join(name);
        symlink(&real, &link).map_err(stage_error(&link))?;
        Ok(link)
    }

    fn create_dir(&self, dir: &Path) -> Result<(), VmError> {
        fs::create_dir_all(dir).map_err(|source| VmError::Stage {
            path: dir.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests;
