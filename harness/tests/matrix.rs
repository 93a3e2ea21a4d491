//! The VM smoke run: boots the kernels of ci/kernels-smoke.toml (two Debian kernels of
//! different majors and one with a timeout too short to boot) and runs every case in each.

use std::{path::PathBuf, process::Command};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// VMs need root (for the guest's BPF), QEMU and vng; without them the test says why.
fn vm_tools_missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root".into());
    }
    if harness::vm::Vng::locate().is_err() {
        return Some("virtme-ng is not installed (scripts/setup-vm.sh installs it)".into());
    }
    None
}

#[test]
fn smoke_kernels_pass_and_a_hung_kernel_is_only_its_own_error() {
    if let Some(reason) = vm_tools_missing() {
        eprintln!("skipping the VM smoke run: {reason}");
        return;
    }
    let out_dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(repo_root())
        .args([
            "run",
            "--kernels",
            "ci/kernels-smoke.toml",
            "-j",
            "2",
            "--out",
        ])
        .arg(out_dir.path())
        .arg("cases")
        .env("NO_COLOR", "1")
        .output()
        .expect("harness runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    // The hung kernel is an infrastructure error, which outranks a pass.
    assert_eq!(output.status.code(), Some(3), "{context}");

    let text =
        std::fs::read_to_string(out_dir.path().join("results.json")).expect("report written");
    let results: harness::results::RunResults = serde_json::from_str(&text).expect("report parses");
    let names: Vec<&str> = results.kernels.iter().map(|k| k.kernel.as_str()).collect();
    assert_eq!(names, ["6.1", "7.3", "6.1-tiny-timeout"], "{context}");
    for kernel in &results.kernels[..2] {
        assert_eq!(
            kernel.status,
            harness::results::KernelStatus::Ran,
            "{}: {context}",
            kernel.kernel
        );
        let version = kernel.version.expect("the guest reports its version");
        assert_eq!(
            version
                .to_string()
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join("."),
            kernel.kernel
        );
        assert!(!kernel.cases.is_empty());
        for case in &kernel.cases {
            assert!(
                matches!(
                    case.outcome,
                    harness::results::CaseOutcome::Pass
                        | harness::results::CaseOutcome::Skipped { .. }
                ),
                "{} on {}: {:?}\n{context}",
                case.name,
                kernel.kernel,
                case.outcome
            );
        }
    }
    match &results.kernels[2].status {
        harness::results::KernelStatus::Error { message, .. } => {
            assert!(message.starts_with("timed out after 2s"), "{message}")
        }
        other => panic!("the tiny timeout must be an error, got {other:?}"),
    }
}
