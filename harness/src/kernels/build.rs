//! Builds a `tree =` kernel of kernels.toml with vng (`vng --build`) and the project's
//! config fragment (`ci/kernel.config`: what the cases need on top of vng's minimal config),
//! and remembers what it built: the build runs again only when the source state or the
//! fragment changed.
//!
//! The source state of a git tree is its HEAD, its status and its diff against HEAD; of
//! any other tree (an unpacked `linux-source` package), the size and mtime of every source
//! file, generated headers excepted, which the build itself writes.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The record a finished build leaves in the tree.
const MARKER: &str = ".sk-harness-build.json";

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Marker {
    /// Digest of the source state and the fragment the build used.
    key: String,
    release: String,
    seconds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read the source state of {}: {source}", tree.display())]
    State {
        tree: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the config fragment {}: {source}", path.display())]
    Fragment {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start vng --build in {}: {source}", tree.display())]
    Start {
        tree: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the build of {} failed (log: {}): {tail}", tree.display(), log.display())]
    Failed {
        tree: PathBuf,
        log: PathBuf,
        tail: String,
    },
}

/// A tree ready to boot, and whether this call built it (and how long it took).
#[derive(Debug, PartialEq)]
pub struct BuiltTree {
    pub release: String,
    pub built_now: Option<Duration>,
}

/// Builds `tree` with `fragment` unless it was built from this very source state and
/// fragment; the build's output goes to `log`.
pub fn ensure_built(
    tree: &Path,
    fragment: &Path,
    vng: &crate::vm::Vng,
    log: &Path,
) -> Result<BuiltTree, BuildError> {
    build_with(tree, fragment, vng.program(), Some(vng.search_path()), log)
}

/// [`ensure_built`] with the vng program and its `PATH` given apart, for tests.
fn build_with(
    tree: &Path,
    fragment: &Path,
    vng: &Path,
    search_path: Option<&std::ffi::OsString>,
    log: &Path,
) -> Result<BuiltTree, BuildError> {
    let fragment_text = std::fs::read(fragment).map_err(|source| BuildError::Fragment {
        path: fragment.to_path_buf(),
        source,
    })?;
    let key = build_key(tree, &fragment_text).map_err(|source| BuildError::State {
        tree: tree.to_path_buf(),
        source,
    })?;
    if let Some(marker) = read_marker(tree)
        && marker.key == key
        && crate::vm::tree_is_built(tree)
    {
        return Ok(BuiltTree {
            release: marker.release,
            built_now: None,
        });
    }
    // vng runs in the tree: the fragment must not be relative to where the harness runs.
    let fragment = std::path::absolute(fragment).map_err(|source| BuildError::Fragment {
        path: fragment.to_path_buf(),
        source,
    })?;
    let started = Instant::now();
    let log_file = std::fs::File::create(log).map_err(|source| BuildError::Start {
        tree: tree.to_path_buf(),
        source,
    })?;
    let mut command = std::process::Command::new(vng);
    if let Some(path) = search_path {
        command.env("PATH", path);
    }
    let status = command
        .current_dir(tree)
        .arg("--build")
        .arg("--config")
        .arg(&fragment)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().map_err(|source| BuildError::Start {
            tree: tree.to_path_buf(),
            source,
        })?)
        .stderr(log_file)
        .status()
        .map_err(|source| BuildError::Start {
            tree: tree.to_path_buf(),
            source,
        })?;
    let release = crate::vm::tree_release(tree).filter(|_| crate::vm::tree_is_built(tree));
    let Some(release) = release.filter(|_| status.success()) else {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        return Err(BuildError::Failed {
            tree: tree.to_path_buf(),
            log: log.to_path_buf(),
            tail: {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(5)..].join(" | ")
            },
        });
    };
    let seconds = started.elapsed();
    // Taken again after the build: it writes files that look like sources (linker scripts,
    // headers such as arch/x86/boot/voffset.h), which an unchanged tree keeps as they are.
    let key = build_key(tree, &fragment_text).map_err(|source| BuildError::State {
        tree: tree.to_path_buf(),
        source,
    })?;
    let marker = Marker {
        key,
        release: release.clone(),
        seconds: seconds.as_secs(),
    };
    if let Ok(mut file) = std::fs::File::create(tree.join(MARKER)) {
        let _ = file.write_all(
            serde_json::to_string_pretty(&marker)
                .unwrap_or_default()
                .as_bytes(),
        );
    }
    Ok(BuiltTree {
        release,
        built_now: Some(seconds),
    })
}

fn read_marker(tree: &Path) -> Option<Marker> {
    // A marker is a few lines; a tree's file of that name that is more is not one.
    let bytes = crate::input_file::read_regular(&tree.join(MARKER), 1 << 20).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A digest of what the build depends on: the fragment and the source state.
fn build_key(tree: &Path, fragment: &[u8]) -> std::io::Result<String> {
    let mut hash = Sha256::new();
    hash.update(fragment);
    if tree.join(".git").exists() {
        for args in [
            &["rev-parse", "HEAD"][..],
            &["status", "--porcelain=v1", "--untracked-files=no"][..],
            &["diff", "HEAD"][..],
        ] {
            let output = std::process::Command::new("git")
                .arg("-C")
                .arg(tree)
                .args(args)
                .output()?;
            hash.update(&output.stdout);
        }
    } else {
        let mut files = Vec::new();
        source_files(tree, tree, &mut files)?;
        files.sort();
        for (path, size, mtime) in files {
            hash.update(path.as_bytes());
            hash.update(size.to_le_bytes());
            hash.update(mtime.to_le_bytes());
        }
    }
    Ok(super::download::hex(&hash.finalize()))
}

/// Every source file below `dir` with its size and mtime, paths relative to `root`.
fn source_files(root: &Path, dir: &Path, out: &mut Vec<(String, u64, i64)>) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let meta = entry.metadata()?;
        if meta.is_dir() {
            // The build writes generated headers; they are not part of the source.
            if name != "generated" && !name.starts_with('.') {
                source_files(root, &path, out)?;
            }
        } else if is_source(&name) {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            out.push((relative.display().to_string(), meta.len(), meta.mtime()));
        }
    }
    Ok(())
}

fn is_source(name: &str) -> bool {
    [".c", ".h", ".S", ".lds", ".sh", ".pl", ".py"]
        .iter()
        .any(|ext| name.ends_with(ext))
        || name.starts_with("Kconfig")
        || name.starts_with("Makefile")
        || name == "Kbuild"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_sources_and_fragment_but_not_build_outputs() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("Makefile"), "VERSION = 6\n").unwrap();
        std::fs::create_dir_all(tree.path().join("kernel")).unwrap();
        std::fs::write(tree.path().join("kernel/bpf.c"), "int x;\n").unwrap();
        let first = build_key(tree.path(), b"CONFIG_BPF=y\n").unwrap();
        // Build outputs: objects and generated headers.
        std::fs::write(tree.path().join("kernel/bpf.o"), "obj").unwrap();
        std::fs::create_dir_all(tree.path().join("include/generated")).unwrap();
        std::fs::write(tree.path().join("include/generated/autoconf.h"), "#x").unwrap();
        assert_eq!(build_key(tree.path(), b"CONFIG_BPF=y\n").unwrap(), first);
        assert_ne!(build_key(tree.path(), b"CONFIG_BPF=n\n").unwrap(), first);
        std::fs::write(tree.path().join("kernel/bpf.c"), "int xy;\n").unwrap();
        assert_ne!(build_key(tree.path(), b"CONFIG_BPF=y\n").unwrap(), first);
    }

    #[test]
    fn a_tree_built_from_the_same_state_is_not_built_again() {
        let tree = tempfile::tempdir().unwrap();
        let fragment = tree.path().join("frag.config");
        std::fs::write(&fragment, "CONFIG_BPF=y\n").unwrap();
        std::fs::create_dir_all(tree.path().join("arch/x86/boot")).unwrap();
        std::fs::write(tree.path().join("arch/x86/boot/bzImage"), "image").unwrap();
        std::fs::create_dir_all(tree.path().join("include/config")).unwrap();
        std::fs::write(
            tree.path().join("include/config/kernel.release"),
            "6.1.172\n",
        )
        .unwrap();
        let key = build_key(tree.path(), b"CONFIG_BPF=y\n").unwrap();
        let marker = Marker {
            key,
            release: "6.1.172".into(),
            seconds: 1,
        };
        std::fs::write(
            tree.path().join(MARKER),
            serde_json::to_vec(&marker).unwrap(),
        )
        .unwrap();
        // `false` as vng: a build attempt would fail, so success means no build ran.
        let built = build_with(
            tree.path(),
            &fragment,
            Path::new("/bin/false"),
            None,
            &tree.path().join("build.log"),
        )
        .unwrap();
        assert_eq!(
            built,
            BuiltTree {
                release: "6.1.172".into(),
                built_now: None
            }
        );
        std::fs::write(&fragment, "CONFIG_BPF=n\n").unwrap();
        let failed = build_with(
            tree.path(),
            &fragment,
            Path::new("/bin/false"),
            None,
            &tree.path().join("build.log"),
        );
        assert!(
            matches!(failed, Err(BuildError::Failed { .. })),
            "{failed:?}"
        );
    }

    #[test]
    fn files_the_build_writes_do_not_make_the_next_run_build_again() {
        use std::os::unix::fs::PermissionsExt;
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("Makefile"), "VERSION = 6\n").unwrap();
        let fragment = tree.path().join("frag.config");
        std::fs::write(&fragment, "CONFIG_BPF=y\n").unwrap();
        // A stand-in for vng that builds like make does: the image, the release, and a
        // generated linker script that looks like a source file; it counts its runs.
        let vng = tree.path().join("fake-vng");
        std::fs::write(
            &vng,
            "#!/bin/sh\nmkdir -p arch/x86/boot arch/x86/kernel include/config\n\
             echo image > arch/x86/boot/bzImage\necho 6.1.0 > include/config/kernel.release\n\
             date +%s%N > arch/x86/kernel/vmlinux.lds\necho run >> runs.log\n",
        )
        .unwrap();
        std::fs::set_permissions(&vng, std::fs::Permissions::from_mode(0o755)).unwrap();
        let log = tree.path().join("build.log");
        let first = build_with(tree.path(), &fragment, &vng, None, &log).unwrap();
        assert!(first.built_now.is_some());
        let second = build_with(tree.path(), &fragment, &vng, None, &log).unwrap();
        assert_eq!(second.built_now, None, "built again");
        let runs = std::fs::read_to_string(tree.path().join("runs.log")).unwrap();
        assert_eq!(runs.lines().count(), 1);
    }
}
