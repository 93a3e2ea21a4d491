//! What to boot and how: [`VmSpec`] and its parts.

use std::{fmt, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::Arch;
use crate::version::KernelVersion;

/// Default wall-clock limit for one boot: a TCG boot takes 6–25 s here, and the cases a
/// few seconds more.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The kernel a VM boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelArg {
    /// A kernel image on disk, with its modules when it has any. vng finds modules by
    /// walking up from the image to `lib/modules/<release>`, which is where the image is
    /// staged with them ([`Staging`](super::safe_path::Staging)).
    Image {
        vmlinuz: PathBuf,
        /// The release the image announces (`6.1.0-48-cloud-amd64`), when known.
        release: Option<String>,
        /// Its `lib/modules/<release>` directory; only a kernel whose release is known has
        /// modules.
        modules: Option<PathBuf>,
    },
    /// An upstream tag such as `v5.4`: vng downloads the Ubuntu mainline build itself.
    Mainline { tag: String },
    /// A built kernel source tree: vng boots its `arch/x86/boot/bzImage` with the tree's
    /// modules.
    Tree { path: PathBuf },
}

impl KernelArg {
    /// The kernel version, when the release or tag tells it.
    pub fn version(&self) -> Option<KernelVersion> {
        match self {
            Self::Image { release, .. } => release
                .as_deref()
                .and_then(|release| KernelVersion::from_uname(release, "").ok()),
            Self::Mainline { tag } => {
                KernelVersion::from_uname(tag.trim_start_matches('v'), "").ok()
            }
            Self::Tree { path } => {
                tree_release(path).and_then(|release| KernelVersion::from_uname(&release, "").ok())
            }
        }
    }
}

impl fmt::Display for KernelArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image { vmlinuz, .. } => write!(f, "{}", vmlinuz.display()),
            Self::Mainline { tag } => write!(f, "mainline {tag}"),
            Self::Tree { path } => write!(f, "tree {}", path.display()),
        }
    }
}

/// The release a built tree announces (`include/config/kernel.release`, which `make`
/// writes), when it has been built.
pub fn tree_release(tree: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(tree.join("include/config/kernel.release"))
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|release| !release.is_empty())
}

/// Whether `tree` holds a built x86 kernel that vng can boot.
pub fn tree_is_built(tree: &std::path::Path) -> bool {
    tree.join("arch/x86/boot/bzImage").is_file() && tree_release(tree).is_some()
}

/// How QEMU runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation through /dev/kvm.
    Kvm,
    /// QEMU's software emulation: slower, but works where nested KVM does not.
    Tcg,
}

impl Accel {
    /// vCPUs a guest gets unless the kernel's entry says otherwise. Under TCG two vCPUs
    /// crashed a 7.3 guest about one boot in eight (Oops in sched_clock_cpu); one never did.
    pub fn default_cpus(self) -> u32 {
        match self {
            Self::Kvm => 2,
            Self::Tcg => 1,
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kvm => "KVM",
            Self::Tcg => "TCG",
        })
    }
}

/// What the guest sees as `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestRootfs {
    /// The host's root, read-only under a writable overlay: vng's default, where every host
    /// program runs in the guest as it is.
    Host,
    /// A directory of the caller's (vng's `--root`), e.g. a
    /// [`MinimalRoot`](super::root::MinimalRoot).
    Dir(PathBuf),
}

/// A host directory mounted in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Where the guest sees it: a directory that exists in the guest's root.
    pub guest: PathBuf,
    pub host: PathBuf,
    pub writable: bool,
}

impl Share {
    /// A directory the guest may write, at the same path as on the host (for the host's
    /// root).
    pub fn writable_in_place(host: PathBuf) -> Share {
        Share {
            guest: host.clone(),
            host,
            writable: true,
        }
    }
}

/// Everything one VM run needs. Build it with [`VmSpec::new`], then adjust the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub kernel: KernelArg,
    /// The guest's architecture: the host's unless the kernel is another's, which QEMU
    /// then emulates (always TCG) and which boots only on a root of its own programs.
    pub arch: Arch,
    /// From [`probe_accel`](super::probe_accel), once per run.
    pub accel: Accel,
    pub cpus: u32,
    /// Guest memory in QEMU's notation (`1G`, `512M`); `None` keeps vng's default (1G).
    pub memory: Option<String>,
    /// Extra kernel command-line words, e.g. `lsm=lockdown,capability,bpf`.
    pub append: Vec<String>,
    /// Keep the guest's udev from loading modules the harness never uses (KVM, crypto
    /// accelerators, input): under TCG that saved 2–3 s of a 12–17 s boot of a 6.1 guest.
    pub skip_unused_modules: bool,
    /// Share the host's root over 9p instead of virtiofs from the start. Without it a guest
    /// that cannot mount its root over virtiofs is booted again over 9p (see
    /// [`run`](super::run)); Debian's cloud kernels have no 9p.
    pub force_9p: bool,
    /// The guest's root filesystem.
    pub root: GuestRootfs,
    /// Host directories mounted in the guest (vng's `--rwdir`/`--rodir`).
    pub shares: Vec<Share>,
    /// Files and directories of the caller's for this VM (e.g. the guest's result
    /// directory, its console log): removed with the VM if the harness dies without
    /// cleaning up (SIGKILL).
    pub remove_if_orphaned: Vec<PathBuf>,
    /// The command the guest runs (program and arguments); its exit code is the run's.
    pub command: Vec<String>,
    /// Wall-clock limit for the whole run, download and boot included.
    pub timeout: Duration,
    /// Where to write the console while the guest runs (it is also kept in the outcome).
    pub console_log: Option<PathBuf>,
    /// Boot once more when vng reports a crash (exit 255 without a clean power-off), and say
    /// so in the outcome.
    pub retry_crash_once: bool,
}

impl VmSpec {
    /// Defaults for booting `kernel` under `accel` to run `command`.
    pub fn new(kernel: KernelArg, accel: Accel, command: Vec<String>) -> VmSpec {
        VmSpec {
            kernel,
            arch: Arch::host().unwrap_or_default(),
            accel,
            cpus: accel.default_cpus(),
            memory: None,
            append: Vec::new(),
            skip_unused_modules: true,
            force_9p: false,
            root: GuestRootfs::Host,
            shares: Vec::new(),
            remove_if_orphaned: Vec::new(),
            command,
            timeout: DEFAULT_TIMEOUT,
            console_log: None,
            retry_crash_once: false,
        }
    }

    /// The same VM with nothing to do (`--exec true`): what a boot alone costs, to compare
    /// a harness run against.
    pub fn bare_boot(&self) -> VmSpec {
        VmSpec {
            command: vec!["true".into()],
            shares: Vec::new(),
            remove_if_orphaned: Vec::new(),
            console_log: None,
            retry_crash_once: false,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(release: Option<&str>) -> KernelArg {
        KernelArg::Image {
            vmlinuz: "/k/vmlinuz".into(),
            release: release.map(str::to_string),
            modules: None,
        }
    }

    #[test]
    fn tcg_guests_get_one_vcpu() {
        assert_eq!(VmSpec::new(image(None), Accel::Tcg, vec![]).cpus, 1);
        assert_eq!(VmSpec::new(image(None), Accel::Kvm, vec![]).cpus, 2);
    }

    #[test]
    fn bare_boot_keeps_the_machine_and_drops_the_work() {
        let mut spec = VmSpec::new(image(None), Accel::Tcg, vec!["harness".into()]);
        spec.append = vec!["lsm=bpf".into()];
        spec.shares = vec![Share::writable_in_place("/out".into())];
        let bare = spec.bare_boot();
        assert_eq!(bare.command, ["true"]);
        assert!(bare.shares.is_empty());
        assert_eq!(bare.append, spec.append);
        assert_eq!(bare.cpus, spec.cpus);
    }
}
