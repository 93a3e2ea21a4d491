//! The in-guest executor each guest runs (`harness-guest`, [`crate::cli::guest`]): for the
//! host's architecture, the one cargo built beside this binary; for another architecture, a
//! static build of the same source for it ([`Arch::static_target`]). cargo makes that one
//! from the checkout this binary was built from, into the same target directory; its
//! fingerprints keep that build until the source changes, so a run costs a no-op cargo call
//! (about a second). `HARNESS_GUEST_EXE_<ARCH>` names a ready-made one instead, for a
//! harness installed without its checkout.
//!
//! `cargo run` (the `cargo harness` alias) builds only `harness`: in its checkout's target
//! directory, a `harness-guest` older than this binary is brought up to date by cargo first,
//! so that no guest runs code older than the host's.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
    time::SystemTime,
};

use super::Arch;

/// The executable's name (`harness/src/bin/`), which the host looks for beside its own.
pub const BIN_NAME: &str = "harness-guest";

/// The variable that names a ready-made `harness-guest` of `arch`.
pub fn env_var(arch: Arch) -> String {
    format!("HARNESS_GUEST_EXE_{}", arch.name().to_uppercase())
}

/// The `harness-guest` binary guests of `arch` run: the one [`env_var`] names, else for the
/// host's architecture the one beside `host_exe` (rebuilt first if cargo built `host_exe`
/// after it), else a cross build from this binary's checkout. `Err` says why there is none.
pub fn guest_exe(arch: Arch, host_exe: &Path) -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os(env_var(arch)).filter(|path| !path.is_empty()) {
        return Ok(PathBuf::from(given));
    }
    let checkout = arch.is_host().then(|| checkout_profile(host_exe)).flatten();
    if arch.is_host() {
        let beside = host_exe.with_file_name(BIN_NAME);
        if checkout.is_none() || newer_or_as_new(&beside, host_exe) {
            return if beside.is_file() {
                Ok(beside)
            } else {
                Err(format!(
                    "no {BIN_NAME} beside {}: cargo builds both binaries (`cargo build \
                     --release -p harness`); or set {} to one",
                    host_exe.display(),
                    env_var(arch)
                ))
            };
        }
    }
    // Once per process: a bisection runs the matrix once per kernel, all with one build.
    static BUILT: Mutex<Vec<(Arch, Result<PathBuf, String>)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, exe)) = built.iter().find(|(of, _)| *of == arch) {
        return exe.clone();
    }
    let exe = match checkout {
        Some((workspace, profile)) => rebuild_beside(workspace, arch, &profile),
        None => build_from_checkout(arch),
    };
    built.push((arch, exe.clone()));
    exe
}

/// The host's `harness-guest` brought up to date by cargo in `workspace`'s `profile`, and
/// marked as checked now: a build cargo finds fresh keeps its old time, which would send
/// every later run back to cargo.
fn rebuild_beside(workspace: &Path, arch: Arch, profile: &str) -> Result<PathBuf, String> {
    let exe = cargo_build(workspace, arch, &["--profile", profile])?;
    let _ = std::fs::File::options()
        .write(true)
        .open(&exe)
        .and_then(|file| file.set_modified(SystemTime::now()));
    Ok(exe)
}

/// This binary's checkout and cargo profile, when it runs from the checkout's own target
/// directory (`target/debug/harness`: `dev`; `target/release/harness`: `release`).
fn checkout_profile(host_exe: &Path) -> Option<(&'static Path, String)> {
    let workspace = workspace()?;
    let dir = host_exe.parent()?;
    if dir.parent()?.canonicalize().ok()? != workspace.join("target").canonicalize().ok()? {
        return None;
    }
    let profile = match dir.file_name()?.to_str()? {
        "debug" => "dev",
        other => other,
    };
    Some((workspace, profile.to_string()))
}

/// Whether `file` exists and was modified no earlier than `than`.
fn newer_or_as_new(file: &Path, than: &Path) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    matches!((modified(file), modified(than)), (Some(a), Some(b)) if a >= b)
}

/// The workspace this binary was built from, if it still exists.
fn workspace() -> Option<&'static Path> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .filter(|dir| dir.join("Cargo.toml").is_file())
}

/// The cross build from this binary's checkout, if it still exists.
fn build_from_checkout(arch: Arch) -> Result<PathBuf, String> {
    let workspace = workspace().ok_or_else(|| {
        format!(
            "no {arch} build of {BIN_NAME}: this binary's checkout is gone; set {} to one \
             (`cargo build --release -p harness --bin {BIN_NAME} --target {}` in a checkout)",
            env_var(arch),
            arch.static_target()
        )
    })?;
    let target = arch.static_target();
    cargo_build(workspace, arch, &["--release", "--target", target])
}

/// `cargo build -p harness --bin harness-guest` with `options` in `workspace`, and the
/// binary it made.
fn cargo_build(workspace: &Path, arch: Arch, options: &[&str]) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut args = vec!["build", "--locked", "-p", "harness", "--bin", BIN_NAME];
    args.extend_from_slice(options);
    let output = duct::cmd(
        cargo,
        args.iter()
            .chain(&["--message-format=json-render-diagnostics"]),
    )
    .dir(workspace)
    .stdout_capture()
    .stderr_capture()
    .unchecked()
    .run()
    .map_err(|e| format!("cannot run cargo to build the {arch} {BIN_NAME}: {e}"))?;
    let failed = || {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        format!(
            "building the {arch} {BIN_NAME} (cargo {}) failed; scripts/setup-vm.sh installs \
             the other architectures' targets and C cross compilers:\n{}",
            args.join(" "),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    };
    if !output.status.success() {
        return Err(failed());
    }
    executable(&String::from_utf8_lossy(&output.stdout)).ok_or_else(failed)
}

/// The `harness-guest` binary in cargo's JSON messages (its `compiler-artifact` line).
fn executable(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == BIN_NAME
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_is_read_from_cargos_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"harness","kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"harness-guest","kind":["bin"]},"executable":"/t/aarch64-unknown-linux-musl/release/harness-guest"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable(messages),
            Some(PathBuf::from(
                "/t/aarch64-unknown-linux-musl/release/harness-guest"
            ))
        );
        assert_eq!(executable(r#"{"reason":"build-finished"}"#), None);
        assert_eq!(env_var(Arch::Arm64), "HARNESS_GUEST_EXE_ARM64");
    }

    #[test]
    fn a_binary_in_its_checkouts_target_directory_names_its_profile() {
        let workspace = workspace().unwrap();
        let profile = |path: &str| checkout_profile(&workspace.join(path)).map(|(_, p)| p);
        assert_eq!(
            profile("target/release/harness").as_deref(),
            Some("release")
        );
        assert_eq!(profile("target/debug/harness").as_deref(), Some("dev"));
        assert_eq!(profile("target/debug/deps/harness-0123"), None);
        assert_eq!(checkout_profile(Path::new("/usr/local/bin/harness")), None);
    }

    #[test]
    fn an_older_executor_is_not_as_new() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old"), dir.path().join("new"));
        std::fs::write(&old, "").unwrap();
        std::fs::write(&new, "").unwrap();
        let day_ago = SystemTime::now() - std::time::Duration::from_secs(86_400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(day_ago)
            .unwrap();
        assert!(newer_or_as_new(&new, &old));
        assert!(!newer_or_as_new(&old, &new));
        assert!(!newer_or_as_new(&dir.path().join("missing"), &old));
    }

    #[test]
    fn the_hosts_guests_run_the_executor_beside_this_binary() {
        let host = Arch::host().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let harness = dir.path().join("harness");
        let missing = guest_exe(host, &harness).unwrap_err();
        assert!(missing.contains("no harness-guest beside"), "{missing}");
        std::fs::write(dir.path().join(BIN_NAME), "").unwrap();
        assert_eq!(guest_exe(host, &harness), Ok(dir.path().join(BIN_NAME)));
    }
}
