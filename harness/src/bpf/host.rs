//! What the running kernel offers the BPF side: the program types it knows, kernel BTF,
//! whether BPF LSM programs would be called, and the memlock limit older kernels charge
//! maps to. Everything is probed, never inferred from the version number.

use std::fmt;
use std::{fs, path::Path};

use std::os::fd::{FromRawFd, OwnedFd};

use aya::{
    programs::{LsmAttachType, ProgramType},
    sys::is_program_supported,
};
use aya_obj::{
    btf::BtfKind,
    generated::{
        bpf_attach_type::{self, BPF_LSM_MAC, BPF_TRACE_FENTRY},
        bpf_attr, bpf_cmd,
        bpf_prog_type::{self, BPF_PROG_TYPE_LSM, BPF_PROG_TYPE_TRACING},
    },
};
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};

use super::{
    attach::program_type,
    mountinfo::{TempMount, find_mount},
};
use crate::catalogue::{AttachPoint, ProgramKind};

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
            let program_type = program_type(kind.attach_point());
            if !missing_program_types.contains(&program_type) && !kernel_knows(program_type) {
                missing_program_types.push(program_type);
            }
        }
        Self {
            kernel_btf: Path::new(KERNEL_BTF).exists(),
            bpf_lsm: probe_bpf_lsm(),
            missing_program_types,
        }
    }

    /// Whether running `kind` can tell anything on this kernel: the kernel knows its
    /// program type, tracing and LSM programs have kernel BTF to attach by, and an LSM program
    /// would actually be called. A verifier rejection is not a skip: it is a result.
    pub fn runnable(&self, kind: ProgramKind) -> Result<(), SkipReason> {
        let program_type = program_type(kind.attach_point());
        if self.missing_program_types.contains(&program_type) {
            return Err(SkipReason(format!(
                "this kernel has no {program_type:?} programs (loading a trivial one fails before the verifier), so {} cannot run here",
                kind.section()
            )));
        }
        let attach = kind.attach_point();
        if !matches!(attach, AttachPoint::Cgroup(_)) && !self.kernel_btf {
            return Err(SkipReason(format!(
                "{} programs attach by kernel BTF and /sys/kernel/btf/vmlinux is missing (CONFIG_DEBUG_INFO_BTF)",
                kind.section()
            )));
        }
        if let AttachPoint::Lsm(_) = attach {
            match &self.bpf_lsm {
                BpfLsm::Active => {}
                BpfLsm::Inactive { active_lsms } => {
                    return Err(SkipReason(format!(
                        "BPF LSM is not enabled (active LSMs: {active_lsms}); boot with `lsm=…,bpf` on the kernel command line"
                    )));
                }
                BpfLsm::Unknown { reason } => {
                    return Err(SkipReason(format!(
                        "cannot tell whether BPF LSM is enabled: {reason}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Whether the kernel knows `program_type`. aya's probe also attaches tracing and LSM
/// programs, and answers no when that fails with ENOTSUPP, as on arm64 before 6.4, which
/// has no ftrace direct calls for BPF trampolines: a kernel that loads a trivial program of
/// the type knows it, and the cases report the attach's ENOTSUPP as their outcome.
fn kernel_knows(program_type: ProgramType) -> bool {
    // Tracing and LSM first by a trivial program of our own, which uses the kernel BTF the
    // process parsed once: aya's probe of those types parses it again (under TCG that
    // parse is a large part of the first BPF case's time). Only where it does not load is
    // aya asked, with the same answer as before.
    let own_probe = match program_type {
        ProgramType::Tracing => Some((BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, "bpf_fentry_test1")),
        ProgramType::Lsm(LsmAttachType::Mac) => {
            Some((BPF_PROG_TYPE_LSM, BPF_LSM_MAC, "bpf_lsm_bpf"))
        }
        _ => None,
    };
    if own_probe.is_some_and(|(program_type, attach_type, function)| {
        trivial_program_loads(program_type, attach_type, function)
    }) {
        return true;
    }
    !matches!(is_program_supported(program_type), Ok(false))
}

/// Whether `r0 = 0; exit` loads as a program of `program_type` attaching (`attach_type`)
/// to the kernel function `function`, found in the kernel's BTF.
fn trivial_program_loads(
    program_type: bpf_prog_type,
    attach_type: bpf_attach_type,
    function: &str,
) -> bool {
    let Ok(btf_id) = super::attach::kernel_btf()
        .as_ref()
        .map_err(drop)
        .and_then(|btf| {
            btf.id_by_type_name_kind(function, BtfKind::Func)
                .map_err(drop)
        })
    else {
        return false;
    };
    // BPF_ALU64 | BPF_MOV | BPF_K (r0 = 0), then BPF_JMP | BPF_EXIT; the opcode is the low
    // byte of each little-endian instruction.
    let instructions: [u64; 2] = [0xb7, 0x95];
    let license = c"GPL";
    // SAFETY: bpf_attr is a plain C union; all-zero is its neutral value.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    // SAFETY: writing the PROG_LOAD member of the zeroed union.
    let load = unsafe { &mut attr.__bindgen_anon_3 };
    load.prog_type = program_type as u32;
    load.insn_cnt = instructions.len() as u32;
    load.insns = instructions.as_ptr() as u64;
    load.license = license.as_ptr() as u64;
    load.expected_attach_type = attach_type as u32;
    load.attach_btf_id = btf_id;
    // SAFETY: attr is a valid bpf_attr of the size passed; the instructions and the
    // license it points to outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            bpf_cmd::BPF_PROG_LOAD as libc::c_long,
            std::ptr::from_mut(&mut attr),
            std::mem::size_of::<bpf_attr>(),
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: a file descriptor the kernel just returned to us alone.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    true
}

/// Why a program cannot meaningfully run on this kernel; the case is skipped with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkipReason(pub String);

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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

    fn host(kernel_btf: bool, bpf_lsm: BpfLsm, missing: Vec<ProgramType>) -> HostSupport {
        HostSupport {
            kernel_btf,
            bpf_lsm,
            missing_program_types: missing,
        }
    }

    #[test]
    fn a_program_type_the_kernel_lacks_skips_its_programs_only() {
        let old = host(true, BpfLsm::Active, vec![ProgramType::Tracing]);
        for kind in [ProgramKind::FentryTcpClose, ProgramKind::FexitTcpConnect] {
            let reason = old.runnable(kind).unwrap_err();
            assert!(reason.0.contains("no Tracing programs"), "{reason}");
            assert!(reason.0.contains(kind.section()), "{reason}");
        }
        assert!(old.runnable(ProgramKind::SockOps).is_ok());
        assert!(old.runnable(ProgramKind::LsmSockGraft).is_ok());
    }

    #[test]
    fn tracing_needs_kernel_btf_and_lsm_needs_bpf_in_the_lsm_list() {
        let no_btf = host(false, BpfLsm::Active, Vec::new());
        assert!(no_btf.runnable(ProgramKind::SockOps).is_ok());
        assert!(no_btf.runnable(ProgramKind::FentryTcpClose).is_err());

        let inactive = host(
            true,
            BpfLsm::Inactive {
                active_lsms: "lockdown,capability".into(),
            },
            Vec::new(),
        );
        let reason = inactive.runnable(ProgramKind::LsmSockGraft).unwrap_err();
        assert!(reason.0.contains("lsm=…,bpf"), "{reason}");
        assert!(inactive.runnable(ProgramKind::FexitTcpConnect).is_ok());
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
                !host
                    .missing_program_types
                    .contains(&program_type(kind.attach_point())),
                "{host:?}"
            );
        }
    }
}
