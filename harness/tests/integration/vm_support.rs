//! Shared set-up for the VM end-to-end tests: a bootable Debian cloud kernel and the checks
//! that decide whether this machine can boot it at all.
//!
//! The kernel is bookworm's newest 6.1 cloud kernel, resolved by `harness::kernels` into the
//! user's kernel cache (the one `harness run` uses), so only the first run downloads.

use std::{
    fs,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::requirements::Requirement;
use harness::{
    error_chain as chain,
    kernels::{
        FetchError, IndexError, KernelCache, KernelsFile, ResolveError, ResolvedKernel, Resolver,
    },
    vm::{KernelArg, VmProcess, VmRegistry, Vng},
};

pub struct TestKernel {
    pub arg: KernelArg,
    pub release: String,
    pub modules: Option<std::path::PathBuf>,
}

/// vng and a kernel to boot, or what this machine lacks to boot one and why (the caller
/// skips, or fails where the requirement is declared). A kernel that resolves wrongly fails
/// the test instead.
pub fn prerequisites() -> Result<(Vng, TestKernel), (Requirement, String)> {
    // Tests of one binary run in parallel; one download is enough.
    static FETCH: Mutex<()> = Mutex::new(());
    if !nix::unistd::geteuid().is_root() {
        return Err((Requirement::Root, "booting VMs with the harness".into()));
    }
    let vng = Vng::locate().map_err(|error| (Requirement::Vm, chain(&error)))?;
    let _one_at_a_time = FETCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let kernel = bookworm_cloud_kernel().map_err(|reason| (Requirement::Network, reason))?;
    Ok((vng, kernel))
}

fn bookworm_cloud_kernel() -> Result<TestKernel, String> {
    let text = "[[kernel]]\nname = \"6.1\"\ndebian = { suite = \"bookworm\", series = \"6.1\" }\n";
    let file =
        KernelsFile::parse(text, Path::new("vm-test-kernels.toml")).expect("a valid kernels.toml");
    let cache = KernelCache::at(KernelCache::default_root().map_err(|error| chain(&error))?);
    match Resolver::new(&file, cache).resolve(&file.kernels[0]) {
        Ok(ResolvedKernel::Bootable(kernel)) => Ok(TestKernel {
            arg: KernelArg::Image {
                vmlinuz: kernel.vmlinuz,
                release: Some(kernel.release.clone()),
                modules: kernel.modules_dir.clone(),
            },
            release: kernel.release,
            modules: kernel.modules_dir,
        }),
        Ok(other) => panic!("expected a bootable kernel, got {other:?}"),
        Err(error) => {
            Err(mirror_unavailable(&error).unwrap_or_else(|| panic!("{}", chain(&error))))
        }
    }
}

/// Why a resolve failed for want of a Debian mirror (none configured, or unreachable): a
/// reason to skip, as on a machine without network. Any other failure is a test failure.
pub fn mirror_unavailable(error: &ResolveError) -> Option<String> {
    match error {
        ResolveError::Mirror { .. } => Some(format!("no Debian mirror: {}", chain(error))),
        ResolveError::Index { source, .. }
            if matches!(
                &**source,
                IndexError::Fetch {
                    source: FetchError::Request { .. },
                    ..
                }
            ) =>
        {
            Some(format!(
                "the Debian mirror is unreachable: {}",
                chain(&**source)
            ))
        }
        _ => None,
    }
}

/// Waits until the registry shows QEMU and virtiofsd running for some VM, and returns
/// every process of the running VMs at that moment.
pub fn wait_for_qemu(registry: &VmRegistry, vms: usize, limit: Duration) -> Vec<VmProcess> {
    let deadline = Instant::now() + limit;
    loop {
        let processes = registry.running_processes();
        let count = |name: &str| {
            processes
                .iter()
                .filter(|p| p.name.starts_with(name))
                .count()
        };
        if count("qemu-system") >= vms && count("virtiofsd") >= vms {
            return processes;
        }
        assert!(
            Instant::now() < deadline,
            "QEMU and virtiofsd of {vms} VM(s) did not show up within {limit:?}: {processes:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The processes among `processes` that are still alive (zombies count as gone).
pub fn survivors(processes: &[VmProcess]) -> Vec<VmProcess> {
    processes
        .iter()
        .filter(|process| {
            fs::read_to_string(
                Path::new("/proc")
                    .join(process.pid.to_string())
                    .join("stat"),
            )
            .ok()
            .and_then(|stat| {
                let state = stat
                    .get(stat.rfind(')')? + 1..)?
                    .trim_start()
                    .chars()
                    .next()?;
                Some(!matches!(state, 'Z' | 'X'))
            })
            .unwrap_or(false)
        })
        .cloned()
        .collect()
}
