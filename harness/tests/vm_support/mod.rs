//! Shared set-up for the VM end-to-end tests: a bootable Debian cloud kernel and the checks
//! that decide whether this machine can boot it at all.
//!
//! The kernel comes from the host's apt sources (`apt-get download` + `dpkg-deb -x`, the
//! package that `linux-image-cloud-amd64` depends on) into
//! `$XDG_CACHE_HOME/sk-storage-harness/vm-test-kernels/<release>`, so only the first run
//! downloads. Once `harness::kernels` is committed, its resolver can take this over.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use harness::vm::{KernelArg, VmProcess, VmRegistry, Vng};

pub struct TestKernel {
    pub vmlinuz: PathBuf,
    pub release: String,
}

impl TestKernel {
    pub fn arg(&self) -> KernelArg {
        KernelArg::Image {
            vmlinuz: self.vmlinuz.clone(),
            release: Some(self.release.clone()),
        }
    }
}

/// vng and a kernel to boot, or the reason this machine cannot boot one (printed by the
/// caller as the skip reason).
pub fn prerequisites() -> Result<(Vng, TestKernel), String> {
    // Tests of one binary run in parallel; one download is enough.
    static FETCH: Mutex<()> = Mutex::new(());
    let vng = Vng::locate().map_err(|error| format!("{error}"))?;
    let _one_at_a_time = FETCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let kernel = debian_cloud_kernel()?;
    Ok((vng, kernel))
}

fn debian_cloud_kernel() -> Result<TestKernel, String> {
    let package = cloud_kernel_package()?;
    let release = package
        .strip_prefix("linux-image-")
        .ok_or_else(|| format!("unexpected kernel package name {package}"))?
        .to_string();
    let cache = dirs::cache_dir()
        .ok_or("no cache directory (set XDG_CACHE_HOME or HOME)")?
        .join("sk-storage-harness")
        .join("vm-test-kernels");
    let root = cache.join(&release);
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        fs::create_dir_all(&cache).map_err(|e| format!("create {}: {e}", cache.display()))?;
        let work = tempfile::tempdir_in(&cache)
            .map_err(|e| format!("temp dir in {}: {e}", cache.display()))?;
        run(Command::new("apt-get")
            .arg("download")
            .arg(&package)
            .current_dir(work.path()))?;
        let deb = fs::read_dir(work.path())
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
            .ok_or_else(|| format!("apt-get download {package} left no .deb"))?;
        let unpacked = work.path().join("root");
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
        // Rename is atomic: another test binary unpacking the same kernel at the same time
        // either wins or finds the directory there.
        if let Err(error) = fs::rename(&unpacked, &root)
            && !vmlinuz.is_file()
        {
            return Err(format!("move the kernel into {}: {error}", root.display()));
        }
    }
    Ok(TestKernel { vmlinuz, release })
}

/// The versioned package behind Debian's `linux-image-cloud-amd64` meta-package.
fn cloud_kernel_package() -> Result<String, String> {
    let output = Command::new("apt-cache")
        .args(["depends", "linux-image-cloud-amd64"])
        .output()
        .map_err(|e| format!("apt-cache not usable ({e}): not a Debian host"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends: "))
        .find(|name| name.starts_with("linux-image-") && name.ends_with("-cloud-amd64"))
        .map(str::to_string)
        .ok_or_else(|| "apt knows no linux-image-cloud-amd64: run apt-get update".into())
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
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
