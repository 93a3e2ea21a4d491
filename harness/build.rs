//! Builds the eBPF object (`ebpf/`, package `sk-storage-ebpf`) with the nightly toolchain
//! and bpf-linker through aya-build, into `OUT_DIR/sk-storage-ebpf`, which
//! `harness/src/bpf/object.rs` embeds. Set-up: `scripts/setup-bpf.sh`.
//!
//! With `AYA_BUILD_SKIP=1` (a machine without the BPF toolchain) an empty file is embedded
//! instead and loading the object reports how to get a real one.
//!
//! It also sets `HARNESS_GIT_COMMIT`, the commit results.json names (`unknown` outside a git
//! checkout).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;
use aya_build::{Package, Toolchain};

/// The eBPF binary's name: the file aya-build leaves in OUT_DIR.
const EBPF_BINARY: &str = "sk-storage-ebpf";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no parent directory", manifest_dir.display()))?;
    let ebpf_dir = workspace.join("ebpf");
    let common_dir = workspace.join("sk-storage-common");
    // aya-build watches the eBPF package; the layouts it shares with us live next to it.
    println!("cargo:rerun-if-changed={}", common_dir.display());
    println!(
        "cargo:rustc-env=HARNESS_GIT_COMMIT={}",
        git_commit(workspace)
    );

    let ebpf_dir_str = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not valid UTF-8", ebpf_dir.display()))?;
    aya_build::build_ebpf(
        [Package {
            name: EBPF_BINARY,
            root_dir: ebpf_dir_str,
            ..Package::default()
        }],
        Toolchain::default(),
    )
    .context(
        "building the eBPF object failed; run scripts/setup-bpf.sh (nightly rust-src and bpf-linker), or set AYA_BUILD_SKIP=1 to build the harness without its BPF programs",
    )?;

    let object = PathBuf::from(std::env::var("OUT_DIR")?).join(EBPF_BINARY);
    if !object.exists() {
        // Only reached with AYA_BUILD_SKIP: aya-build returned without building.
        fs::write(&object, [])?;
    }
    Ok(())
}

/// The checkout's HEAD commit, watched so that a new commit rebuilds; `unknown` without git.
fn git_commit(workspace: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(workspace)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| text.trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return "unknown".into();
    };
    // HEAD moves by rewriting HEAD itself (checkout), its branch's ref, or packed-refs. A
    // watched path that does not exist would rebuild every time: only existing ones.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let refs = ["HEAD", "packed-refs"]
        .into_iter()
        .map(String::from)
        .chain(branch);
    for name in refs {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    commit
}
