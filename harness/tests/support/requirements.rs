//! What a test needs from the machine, and what happens when it is missing.
//!
//! A test whose subject cannot run here (no root, no BPF, no tracing programs, no VM tools,
//! no network, no kernels before 5.10, no browser or xmllint) skips with a printed reason, so
//! the suite still works on a laptop. Where the environment declares a requirement in
//! `HARNESS_REQUIRE` (a comma-separated list of the names below; `.ci/run` declares all but
//! `tracing`, which its host refuses), its absence fails the test instead: CI never goes
//! green by skipping what it promised to test.

use strum::VariantNames;

pub const ENV: &str = "HARNESS_REQUIRE";

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumString, strum::Display, VariantNames)]
#[strum(serialize_all = "kebab-case")]
pub enum Requirement {
    /// Running as root (BPF maps, cgroups, namespaces, VMs).
    Root,
    /// bpf(2) works on the running kernel, with the cgroup program types the cases attach.
    Bpf,
    /// The running kernel loads tracing programs (fentry/fexit, BPF iterators) and BPF LSM
    /// programs. A machine may refuse them outright (EPERM, no verifier log) and still be a
    /// fine host, as this project's CI host is: `.ci/run` does not declare it.
    Tracing,
    /// virtme-ng and QEMU are installed.
    Vm,
    /// A Debian mirror answers (kernel downloads).
    Network,
    /// This project's kernels before 5.10 are found through HARNESS_KERNELS_DIR.
    OldKernels,
    /// Headless Chromium, which loads report.html (scripts/setup-browser.sh installs it).
    Browser,
    /// xmllint, which validates junit.xml against the JUnit schema (scripts/setup-browser.sh).
    Xmllint,
}

impl Requirement {
    /// Whether the environment declares this requirement.
    pub fn is_declared(self) -> bool {
        declared(std::env::var(ENV).unwrap_or_default().as_str()).contains(&self)
    }
}

/// The requirements a list names. A name that is none of them is a typo that would make
/// CI skip what it meant to require, so it fails the test.
fn declared(list: &str) -> Vec<Requirement> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            name.parse().unwrap_or_else(|_| {
                panic!(
                    "{ENV} names `{name}`, which is none of {}",
                    Requirement::VARIANTS.join(", ")
                )
            })
        })
        .collect()
}

/// Reports that `requirement` is missing: a skip with `reason` on stderr, or a failure where
/// the environment declared it. The caller returns right after.
#[track_caller]
pub fn missing(requirement: Requirement, reason: &str) {
    if requirement.is_declared() {
        panic!("{ENV} declares `{requirement}`, but it is missing here: {reason}");
    }
    eprintln!("skipped ({requirement} is not available): {reason}");
}

#[test]
fn a_declared_list_names_requirements_exactly() {
    use Requirement::*;
    assert_eq!(declared("root, vm,network"), [Root, Vm, Network]);
    assert_eq!(declared("old-kernels"), [OldKernels]);
    assert_eq!(declared(""), []);
}

#[test]
#[should_panic(expected = "HARNESS_REQUIRE names `vms`, which is none of root, bpf")]
fn a_declared_name_that_is_no_requirement_fails() {
    declared("root,vms");
}

/// A kernel of kernels.toml that this machine cannot have: an optional image that is absent
/// (this project's kernels before 5.10, found through HARNESS_KERNELS_DIR).
pub fn kernel_missing(entry: &harness::kernels::KernelEntry) -> Option<(Requirement, String)> {
    entry
        .absent_reason()
        .map(|reason| (Requirement::OldKernels, format!("{}: {reason}", entry.name)))
}

#[test]
fn an_absent_optional_kernel_is_missing_old_kernels() {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = dir.path().join("kernels.toml");
    std::fs::write(
        &list,
        "[[kernel]]\nname = \"5.2\"\nlocal = { vmlinuz = \"none/bzImage\", optional = true }\n\
         [[kernel]]\nname = \"host\"\nhost = true\n",
    )
    .expect("writes kernels.toml");
    let file = harness::kernels::KernelsFile::load(&list).expect("a valid list");
    let (requirement, reason) = kernel_missing(&file.kernels[0]).expect("5.2 is absent");
    assert_eq!(requirement, Requirement::OldKernels);
    assert!(
        reason.starts_with("5.2: the image none/bzImage is not on this machine"),
        "{reason}"
    );
    assert_eq!(kernel_missing(&file.kernels[1]), None);
}

/// VMs need root (for the guest's BPF), QEMU and vng; without them the test says why.
pub fn vm_tools_missing() -> Option<(Requirement, String)> {
    if !nix::unistd::geteuid().is_root() {
        return Some((Requirement::Root, "booting VMs with the harness".into()));
    }
    let Ok(vng) = harness::vm::Vng::locate() else {
        return Some((
            Requirement::Vm,
            "virtme-ng is not installed (scripts/setup-vm.sh installs it)".into(),
        ));
    };
    // The smoke run boots an arm64 kernel too.
    if let Err(e) = vng.require_qemu(harness::vm::Arch::Arm64) {
        return Some((Requirement::Vm, e.to_string()));
    }
    None
}
