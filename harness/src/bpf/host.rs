//! What the running kernel offers the BPF side: the program types it knows, kernel BTF,
//! whether BPF LSM programs would be called, and the memlock limit older kernels charge
//! maps to. Everything is probed, never inferred from the version number.

use std::{fs, path::Path};

use aya::{programs::ProgramType, sys::is_program_supported};
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};

use super::{
    mountinfo::{TempMount, find_mount},
    program::ProgramKind,
};

const MOUNTINFO: &str = "/proc/self/mountinfo";
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot raise RLIMIT_MEMLOCK (kernels before 5.11 charge BPF maps to it); run as root")]
    Memlock(#[source] nix::Error),
}

/// Whether BPF LSM programs are called on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BpfLsm {
    /// `bpf` is in the active LSM list.
    Active,
    /// Loaded LSM programs would never run: the kernel command line leaves `bpf` out.
    Inactive { active_lsms: String },
    /// The list could not be read (no securityfs).
    Unknown { reason: String },
}

/// The facts about the running kernel that decide whether a program can run.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSupport {
    pub kernel_btf: bool,
    pub bpf_lsm: BpfLsm,
    /// Program types of the object's programs that the kernel does not know: loading a
    /// trivial program of the type fails before the verifier (aya's probe). A probe that
    /// fails otherwise counts as known, so the real load reports what went wrong.
    pub missing_program_types: Vec<ProgramType>,
}

impl HostSupport {
    pub fn probe() -> Self {
        let mut missing_program_types = Vec::new();
        for kind in ProgramKind::ALL {
            let program_type = kind.program_type();
            if !missing_program_types.contains(&program_type)
                && matches!(is_program_supported(program_type), Ok(false))
            {
                missing_program_types.push(program_type);
            }
        }
        Self {
            kernel_btf: Path::new(KERNEL_BTF).exists(),
            bpf_lsm: probe_bpf_lsm(),
            missing_program_types,
        }
    }
}

/// Reads the active LSM list from securityfs, mounting it on a temporary directory for the
/// read when it is not mounted (as on hosts whose init does not mount it).
fn probe_bpf_lsm() -> BpfLsm {
    let mountinfo = match fs::read_to_string(MOUNTINFO) {
        Ok(text) => text,
        Err(e) => {
            return BpfLsm::Unknown {
                reason: format!("reading {MOUNTINFO}: {e}"),
            };
        }
    };
    let list = match find_mount(&mountinfo, "securityfs") {
        Some(entry) => fs::read_to_string(entry.mount_point.join("lsm")),
        None => TempMount::new("securityfs").and_then(|m| fs::read_to_string(m.path().join("lsm"))),
    };
    match list {
        Ok(list) => bpf_lsm_from_list(&list),
        Err(e) => BpfLsm::Unknown {
            reason: format!("reading the LSM list from securityfs: {e}"),
        },
    }
}

fn bpf_lsm_from_list(list: &str) -> BpfLsm {
    let list = list.trim();
    if list.split(',').any(|lsm| lsm == "bpf") {
        BpfLsm::Active
    } else {
        BpfLsm::Inactive {
            active_lsms: list.to_owned(),
        }
    }
}

/// Lifts RLIMIT_MEMLOCK: before 5.11 map memory counts against it and the default limit is
/// used up after a dozen small maps (seen on 5.10). Without CAP_SYS_RESOURCE (some
/// containers) only the soft limit can rise, to the hard one; from 5.11 on the limit does
/// not matter, so that is not an error.
pub fn raise_memlock_limit() -> Result<(), HostError> {
    if setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY).is_ok() {
        return Ok(());
    }
    let (_, hard) = getrlimit(Resource::RLIMIT_MEMLOCK).map_err(HostError::Memlock)?;
    setrlimit(Resource::RLIMIT_MEMLOCK, hard, hard).map_err(HostError::Memlock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_must_be_a_whole_entry_of_the_lsm_list() {
        assert_eq!(
            bpf_lsm_from_list("lockdown,capability,landlock,bpf\n"),
            BpfLsm::Active
        );
        assert_eq!(
            bpf_lsm_from_list("lockdown,capability,bpfx"),
            BpfLsm::Inactive {
                active_lsms: "lockdown,capability,bpfx".into()
            }
        );
    }

    #[test]
    fn this_host_knows_the_cgroup_program_types() {
        let host = HostSupport::probe();
        for kind in [
            ProgramKind::SockOps,
            ProgramKind::SkbIngress,
            ProgramKind::Connect4,
        ] {
            assert!(
                !host.missing_program_types.contains(&kind.program_type()),
                "{host:?}"
            );
        }
    }
}
