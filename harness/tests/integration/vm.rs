//! End to end: real vng VMs booting a Debian cloud kernel (under TCG here, where nested KVM
//! is broken). Skips, saying why, only where vng/QEMU are not installed or no Debian
//! package source is configured.

use crate::requirements;
use crate::vm_support;

use std::{
    fs,
    net::ToSocketAddrs,
    thread,
    time::{Duration, Instant},
};

use harness::vm::{self, KernelArg, MarkerKind, VmFailure, VmRegistry, VmSpec};
use vm_support::{prerequisites, survivors, wait_for_qemu};

macro_rules! prerequisites_or_skip {
    () => {
        match prerequisites() {
            Ok(found) => found,
            Err((requirement, reason)) => {
                requirements::missing(requirement, &reason);
                return;
            }
        }
    };
}

#[test]
fn a_debian_guest_writes_into_a_shared_directory() {
    let (vng, kernel) = prerequisites_or_skip!();
    let registry = VmRegistry::new();
    let (accel, why) = vm::probe_accel(&vng, &kernel.arg.clone(), &registry, None).unwrap();
    eprintln!("{why}");
    let shared = tempfile::tempdir().unwrap();
    let out = shared.path().join("release");
    let mut spec = VmSpec::new(
        kernel.arg.clone(),
        accel,
        vec![
            "sh".into(),
            "-c".into(),
            format!("uname -r > '{}'; echo to-stdout", out.display()),
        ],
    );
    spec.shares = vec![vm::Share::writable_in_place(shared.path().to_path_buf())];
    spec.console_log = Some(shared.path().join("console.log"));

    let outcome = vm::run(&spec, &vng, &registry).unwrap();

    assert!(
        outcome.is_success(),
        "{:?}\n{}",
        outcome.failure,
        outcome
            .failure
            .as_ref()
            .map(VmFailure::detail)
            .unwrap_or_default()
    );
    assert_eq!(fs::read_to_string(&out).unwrap().trim(), kernel.release);
    assert_eq!(outcome.guest_stdout.trim(), "to-stdout");
    assert_eq!(
        fs::read_to_string(shared.path().join("console.log")).unwrap(),
        outcome.console
    );
    assert!(
        outcome
            .console
            .contains(&format!("Linux version {}", kernel.release))
    );
    eprintln!(
        "{} booted and ran the command in {:.1}s under {accel}",
        kernel.release,
        outcome.duration.as_secs_f64()
    );
}

#[test]
fn a_guest_on_the_minimal_root_loads_modules_and_hands_back_its_exit_code() {
    let (vng, kernel) = prerequisites_or_skip!();
    let registry = VmRegistry::new();
    let work = tempfile::tempdir().unwrap();
    let root = vm::MinimalRoot::build(
        work.path(),
        std::path::Path::new(env!("CARGO_BIN_EXE_harness-guest")),
        vng.search_path(),
    )
    .unwrap();
    let shared = tempfile::tempdir().unwrap();
    // harness-guest runs from the root, and modprobe finds the kernel's modules
    // (inet_diag is one on Debian's 6.1) through the modules share.
    let mut spec = VmSpec::new(
        kernel.arg.clone(),
        vm::Accel::Tcg,
        vec![
            "sh".into(),
            "-c".into(),
            format!(
                "{} --version > /harness/version && modprobe inet_diag && \
                 grep -q '^inet_diag ' /proc/modules && exit 3",
                vm::root::HARNESS_IN_GUEST
            ),
        ],
    );
    spec.root = vm::GuestRootfs::Dir(root.path().to_path_buf());
    spec.shares = vec![
        vm::Share {
            guest: vm::root::WORK_IN_GUEST.into(),
            host: shared.path().to_path_buf(),
            writable: true,
        },
        root.modules_share(
            &kernel.release,
            kernel.modules.as_deref().expect("Debian's 6.1 has modules"),
        )
        .unwrap(),
    ];

    let outcome = vm::run(&spec, &vng, &registry).unwrap();

    assert_eq!(outcome.failure, None, "{}", outcome.console);
    // Without udev, vng cannot read the code (it exits 255); the console's log line has it.
    assert_eq!(outcome.vng_status, Some(255));
    assert_eq!(outcome.guest_exit_code, Some(3), "{}", outcome.console);
    assert!(outcome.console.contains("unable to find udevd, skip udev"));
    assert!(
        fs::read_to_string(shared.path().join("version"))
            .unwrap()
            .starts_with("harness-guest ")
    );
    let phases = outcome.phases(Duration::ZERO).expect("every landmark");
    eprintln!("minimal root on {}: {phases:?}", kernel.release);
}

#[test]
fn a_kernel_that_needed_9p_is_remembered_and_booted_over_9p_at_once() {
    let Ok(vng) = vm::Vng::locate() else {
        requirements::missing(requirements::Requirement::Vm, "vng is not installed");
        return;
    };
    let Some(dir) = std::env::var_os("HARNESS_KERNELS_DIR") else {
        requirements::missing(
            requirements::Requirement::OldKernels,
            "HARNESS_KERNELS_DIR is not set: no 5.2 image (it has no virtiofs) to boot",
        );
        return;
    };
    let kernel = KernelArg::Image {
        vmlinuz: std::path::Path::new(&dir).join("5.2.1/bzImage"),
        release: None,
        modules: None,
    };
    let memo_dir = tempfile::tempdir().unwrap();
    let registry = VmRegistry::new();
    let spec = VmSpec::new(kernel.clone(), vm::Accel::Tcg, vec!["true".into()]);
    let memo = vm::NinePMemo::at(memo_dir.path().join("root-over-9p.json"));

    let first = vm::run_watched(&spec, &vng, &registry, Some(&memo), &|_| {}).unwrap();
    let second = vm::run_watched(&spec, &vng, &registry, Some(&memo), &|_| {}).unwrap();

    assert!(first.is_success(), "{:?}", first.failure);
    assert!(second.is_success(), "{:?}", second.failure);
    assert!(first.fell_back_to_9p, "5.2 has no virtiofs");
    assert!(memo.needs_9p(&kernel));
    assert!(
        !second.fell_back_to_9p,
        "the second boot went over 9p at once"
    );
    for outcome in [&first, &second] {
        assert!(!outcome.console.contains(vm::console::ROOT_NOT_MOUNTED));
    }
}

#[test]
fn a_guest_past_its_timeout_is_killed_with_qemu_and_virtiofsd() {
    let (vng, kernel) = prerequisites_or_skip!();
    let registry = VmRegistry::new();
    // Sleeping keeps the guest busy past the limit under KVM and TCG alike; the limit is
    // long enough for QEMU and virtiofsd to be running when it strikes.
    let mut spec = VmSpec::new(
        kernel.arg.clone(),
        vm::Accel::Tcg,
        vec!["sleep".into(), "600".into()],
    );
    spec.timeout = Duration::from_secs(10);

    let started = Instant::now();
    let processes = thread::scope(|scope| {
        let running = scope.spawn(|| vm::run(&spec, &vng, &registry));
        let processes = wait_for_qemu(&registry, 1, spec.timeout);
        let outcome = running.join().unwrap().unwrap();
        match &outcome.failure {
            Some(VmFailure::Timeout { after, .. }) => assert_eq!(*after, spec.timeout),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(outcome.guest_exit_code, None);
        processes
    });

    assert!(started.elapsed() < spec.timeout + Duration::from_secs(10));
    assert_eq!(
        survivors(&processes),
        [],
        "VM processes outlived the timeout"
    );
    assert!(registry.running_processes().is_empty());
}

/// A guest whose command crashes the kernel through sysrq.
fn panicking_guest(kernel: &KernelArg) -> VmSpec {
    VmSpec::new(
        kernel.clone(),
        vm::Accel::Tcg,
        vec![
            "sh".into(),
            "-c".into(),
            "echo c > /proc/sysrq-trigger".into(),
        ],
    )
}

#[test]
fn a_panicking_guest_is_reported_and_retried_once() {
    let (vng, kernel) = prerequisites_or_skip!();
    let registry = VmRegistry::new();
    let mut spec = panicking_guest(&kernel.arg);
    spec.retry_crash_once = true;

    let outcome = vm::run(&spec, &vng, &registry).unwrap();

    assert_eq!(outcome.vng_status, Some(255));
    assert_eq!(outcome.guest_exit_code, None);
    for failure in [outcome.failure.as_ref(), outcome.retried_after.as_ref()] {
        match failure {
            Some(VmFailure::KernelError { finding, excerpt }) => {
                assert_eq!(finding.kind, MarkerKind::Panic);
                assert!(finding.line.contains("sysrq triggered crash"), "{finding}");
                assert!(excerpt.contains("Call Trace"), "{excerpt}");
            }
            other => panic!("expected a kernel panic, got {other:?}"),
        }
    }
}

#[test]
fn a_guest_that_halts_after_a_panic_is_stopped_as_a_panic_not_a_timeout() {
    let (vng, kernel) = prerequisites_or_skip!();
    let registry = VmRegistry::new();
    let mut spec = panicking_guest(&kernel.arg);
    // panic=0 (after vng's panic=-1, so it wins) halts the guest instead of rebooting it.
    spec.append = vec!["panic=0".into()];
    // Waiting this long would be a Timeout failure, not the panic.
    spec.timeout = Duration::from_secs(600);

    let outcome = vm::run(&spec, &vng, &registry).unwrap();

    // vng did not exit by itself: it was stopped.
    assert_eq!(outcome.vng_status, None);
    match &outcome.failure {
        Some(VmFailure::KernelError { finding, .. }) => {
            assert_eq!(finding.kind, MarkerKind::Panic);
            assert!(finding.line.contains("sysrq triggered crash"), "{finding}");
        }
        other => panic!("expected a kernel panic, got {other:?}"),
    }
    assert!(registry.running_processes().is_empty());
}

#[test]
fn a_mainline_kernel_that_cannot_be_downloaded_fails_fast() {
    const ARCHIVE: &str = "kernel.ubuntu.com:443";
    let vng = match vm::Vng::locate() {
        Ok(vng) => vng,
        Err(error) => {
            eprintln!("skipped: {error}");
            return;
        }
    };
    if ARCHIVE.to_socket_addrs().is_ok() {
        eprintln!("skipped: {ARCHIVE} resolves, so vng could really download v5.4 here");
        return;
    }
    let registry = VmRegistry::new();
    let mut spec = VmSpec::new(
        KernelArg::Mainline { tag: "v5.4".into() },
        vm::Accel::Tcg,
        vec!["true".into()],
    );
    spec.timeout = Duration::from_secs(60);

    let outcome = vm::run(&spec, &vng, &registry).unwrap();

    match &outcome.failure {
        Some(failure @ VmFailure::FetchFailed { tag, .. }) => {
            assert_eq!(tag, "v5.4");
            assert!(
                failure
                    .summary()
                    .starts_with("could not fetch mainline kernel v5.4: ")
            );
            eprintln!("{failure}");
        }
        other => panic!(
            "expected a fetch failure, got {other:?}\n{}",
            outcome.console
        ),
    }
    assert!(outcome.duration < spec.timeout + Duration::from_secs(10));
}
