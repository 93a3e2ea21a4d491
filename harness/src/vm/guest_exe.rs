//! The harness a guest of another architecture runs: a static build of the same source for
//! that architecture ([`Arch::static_target`]). cargo makes it from the checkout this binary
//! was built from, into the same target directory; its fingerprints keep that build until
//! the source changes, so a run costs a no-op cargo call (about a second). A harness
//! installed without its checkout is given one in `HARNESS_GUEST_EXE_<ARCH>`.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use super::Arch;

/// The variable that names a ready-made guest harness of `arch`.
pub fn env_var(arch: Arch) -> String {
    format!("HARNESS_GUEST_EXE_{}", arch.name().to_uppercase())
}

/// The harness binary guests of `arch` run: `host_exe` for the host's architecture, else
/// the one [`env_var`] names, else a cross build from this binary's checkout. `Err` says
/// why there is none.
pub fn guest_exe(arch: Arch, host_exe: &Path) -> Result<PathBuf, String> {
    if arch.is_host() {
        return Ok(host_exe.to_path_buf());
    }
    if let Some(given) = std::env::var_os(env_var(arch)).filter(|path| !path.is_empty()) {
        return Ok(PathBuf::from(given));
    }
    // Once per process: a bisection runs the matrix once per kernel, all with one build.
    static BUILT: Mutex<Vec<(Arch, Result<PathBuf, String>)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, exe)) = built.iter().find(|(of, _)| *of == arch) {
        return exe.clone();
    }
    let exe = build_from_checkout(arch);
    built.push((arch, exe.clone()));
    exe
}

/// The cross build from this binary's checkout, if it still exists.
fn build_from_checkout(arch: Arch) -> Result<PathBuf, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .ok_or_else(|| {
            format!(
                "no {arch} build of the harness: this binary's checkout is gone; set {} to \
                 one (`cargo build --release -p harness --target {}` in a checkout)",
                env_var(arch),
                arch.static_target()
            )
        })?;
    cross_build(workspace, arch)
}

/// `cargo build --release -p harness --target …` in `workspace`, and the binary it made.
fn cross_build(workspace: &Path, arch: Arch) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let output = duct::cmd!(
        cargo,
        "build",
        "--release",
        "--locked",
        "-p",
        "harness",
        "--bin",
        "harness",
        "--target",
        arch.static_target(),
        "--message-format=json-render-diagnostics"
    )
    .dir(workspace)
    .stdout_capture()
    .stderr_capture()
    .unchecked()
    .run()
    .map_err(|e| format!("cannot run cargo to build the {arch} harness: {e}"))?;
    let failed = || {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        format!(
            "building the {arch} harness (cargo build --release -p harness --target {}) \
             failed; scripts/setup-vm.sh installs the target and its C cross compiler:\n{}",
            arch.static_target(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    };
    if !output.status.success() {
        return Err(failed());
    }
    executable(&String::from_utf8_lossy(&output.stdout)).ok_or_else(failed)
}

/// The harness binary in cargo's JSON messages (its `compiler-artifact` line).
fn executable(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "harness"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_is_read_from_cargos_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"harness","kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"harness","kind":["bin"]},"executable":"/t/aarch64-unknown-linux-musl/release/harness"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable(messages),
            Some(PathBuf::from(
                "/t/aarch64-unknown-linux-musl/release/harness"
            ))
        );
        assert_eq!(executable(r#"{"reason":"build-finished"}"#), None);
        assert_eq!(env_var(Arch::Arm64), "HARNESS_GUEST_EXE_ARM64");
    }

    #[test]
    fn the_hosts_guests_run_this_binary() {
        let host = Arch::host().unwrap();
        assert_eq!(
            guest_exe(host, Path::new("/bin/harness")),
            Ok(PathBuf::from("/bin/harness"))
        );
    }
}
