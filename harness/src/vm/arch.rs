//! The architectures a kernel of the list can be: each names itself differently to
//! kernels.toml, Debian, vng, QEMU, Rust and `uname -m`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A kernel's architecture (kernels.toml's `arch`, x86_64 unless it says otherwise).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub enum Arch {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The name kernels.toml and the listings use (the kernel's own `ARCH=`).
    pub fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// The architecture of the harness binary running now, which is the host's; `None` on
    /// one no kernel of the list can be.
    pub fn host() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Self::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Self::Arm64)
        } else {
            None
        }
    }

    /// Whether the host runs this architecture itself: guests of any other are emulated
    /// (TCG) and run programs built for them, never the host's.
    pub fn is_host(self) -> bool {
        Self::host() == Some(self)
    }

    /// `uname -m` in a guest of this architecture.
    pub fn uname_machine(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "aarch64",
        }
    }

    /// The architecture `uname -m` names.
    pub fn from_uname_machine(machine: &str) -> Option<Arch> {
        Self::ALL
            .into_iter()
            .find(|arch| arch.uname_machine() == machine)
    }

    /// Debian's name: the end of its kernel flavours (`cloud-arm64`) and of the index path
    /// `binary-arm64`.
    pub fn debian(self) -> &'static str {
        match self {
            Self::X86_64 => "amd64",
            Self::Arm64 => "arm64",
        }
    }

    /// The Debian kernel flavour a `debian` source takes unless it names one: the cloud
    /// kernels are small, boot fastest and have BTF.
    pub fn default_flavour(self) -> String {
        format!("cloud-{}", self.debian())
    }

    /// The architecture of a Debian kernel flavour: its last part (`cloud-arm64`, `rt-arm64`).
    pub fn of_flavour(flavour: &str) -> Option<Arch> {
        let last = flavour.rsplit('-').next()?;
        Self::ALL.into_iter().find(|arch| arch.debian() == last)
    }

    /// The QEMU that runs such a guest, and how to install it.
    pub fn qemu(self) -> (&'static str, &'static str) {
        match self {
            Self::X86_64 => (
                "qemu-system-x86_64",
                "install the Debian package qemu-system-x86 (scripts/setup-vm.sh does)",
            ),
            Self::Arm64 => (
                "qemu-system-aarch64",
                "install the Debian package qemu-system-arm (scripts/setup-vm.sh does)",
            ),
        }
    }

    /// The CPU QEMU emulates for such a guest under TCG, over vng's choice of `max`.
    /// x86_64: QEMU's own default, the x86-64 baseline every Debian and upstream kernel
    /// runs on; under `max` the guest also uses AVX-512 and its larger register state,
    /// which TCG emulates at a cost: a one-case run on 6.1 took 10% longer, every case
    /// 14% (docs/src/benchmarks.md). arm64: vng takes the Cortex-A57 (Armv8.0); the
    /// Neoverse N1 is an Armv8.2 server core as on arm64 clouds (LSE atomics, which the
    /// BPF JIT then emits) and boots as fast under TCG (docs/src/arm64.md), where `max`
    /// took 5× as long (it emulates pointer authentication).
    pub fn emulated_cpu(self) -> &'static str {
        match self {
            Self::X86_64 => "qemu64",
            Self::Arm64 => "neoverse-n1",
        }
    }

    /// The Rust target a static harness for such a guest is built for (musl: the guest's
    /// root has no C library).
    pub fn static_target(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-linux-musl",
            Self::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
}

/// `uname -m` of the running kernel.
pub fn running_machine() -> Option<String> {
    nix::sys::utsname::uname()
        .ok()
        .map(|uts| uts.machine().to_string_lossy().into_owned())
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = String;

    fn from_str(text: &str) -> Result<Arch, String> {
        Self::ALL
            .into_iter()
            .find(|arch| arch.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|arch| arch.name()).collect();
                format!(
                    "`{text}` is not an architecture the harness boots: {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_of_each_architecture() {
        assert_eq!("arm64".parse::<Arch>(), Ok(Arch::Arm64));
        assert_eq!("x86_64".parse::<Arch>(), Ok(Arch::X86_64));
        assert!(
            "aarch64"
                .parse::<Arch>()
                .unwrap_err()
                .contains("x86_64, arm64")
        );
        assert_eq!(Arch::from_uname_machine("aarch64"), Some(Arch::Arm64));
        assert_eq!(Arch::from_uname_machine("riscv64"), None);
        assert_eq!(Arch::Arm64.default_flavour(), "cloud-arm64");
        assert_eq!(Arch::X86_64.default_flavour(), "cloud-amd64");
        assert_eq!(Arch::of_flavour("rt-arm64"), Some(Arch::Arm64));
        assert_eq!(Arch::of_flavour("amd64"), Some(Arch::X86_64));
        assert_eq!(Arch::of_flavour("686-pae"), None);
        assert_eq!(serde_json::to_string(&Arch::Arm64).unwrap(), "\"arm64\"");
        assert_eq!(Arch::default(), Arch::X86_64);
        assert_eq!(Arch::Arm64.qemu().0, "qemu-system-aarch64");
    }

    #[test]
    fn the_host_is_the_architecture_this_test_was_built_for() {
        let host = Arch::host().expect("tests run on x86_64 or aarch64");
        assert_eq!(host.uname_machine(), std::env::consts::ARCH);
        assert_eq!(running_machine().as_deref(), Some(host.uname_machine()));
        assert!(host.is_host());
        assert_eq!(Arch::ALL.iter().filter(|arch| arch.is_host()).count(), 1);
    }
}
