//! aya's side of the catalogue's attach points, for probing and loading alike: the program
//! type the host is probed for, how a program is loaded, and the link that attaching it
//! makes. A hook at an attach point listed here needs nothing in this file; a new kind of
//! attach point adds its arm to each match.

use std::sync::OnceLock;

use aya::{
    Btf,
    programs::{
        CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr,
        CgroupSockopt, FEntry, FExit, Link, Lsm, LsmAttachType, Program, ProgramError, ProgramType,
        SockOps, cgroup_skb::CgroupSkbLink, cgroup_sock::CgroupSockLink,
        cgroup_sock_addr::CgroupSockAddrLink, cgroup_sockopt::CgroupSockoptLink,
        fentry::FEntryLink, fexit::FExitLink, lsm::LsmLink, sock_ops::SockOpsLink,
    },
};

use super::cgroup::CaseCgroup;
use crate::catalogue::{AttachPoint, CgroupProgram, SkbDirection};

/// The running kernel's BTF, parsed on first use and kept for the process: the probes,
/// the object's loader and the tracing programs' attachment all use this one parse.
pub(super) fn kernel_btf() -> &'static Result<Btf, String> {
    static KERNEL_BTF: OnceLock<Result<Btf, String>> = OnceLock::new();
    KERNEL_BTF.get_or_init(|| Btf::from_sys_fs().map_err(|e| e.to_string()))
}

/// The kernel's program type for programs that attach at `attach`.
pub fn program_type(attach: AttachPoint) -> ProgramType {
    match attach {
        AttachPoint::Cgroup(CgroupProgram::SockOps) => ProgramType::SockOps,
        AttachPoint::Cgroup(CgroupProgram::Skb(_)) => ProgramType::CgroupSkb,
        AttachPoint::Cgroup(CgroupProgram::Sockopt) => ProgramType::CgroupSockopt,
        AttachPoint::Cgroup(CgroupProgram::SockAddr) => ProgramType::CgroupSockAddr,
        AttachPoint::Cgroup(CgroupProgram::Sock) => ProgramType::CgroupSock,
        AttachPoint::Fentry(_) | AttachPoint::Fexit(_) => ProgramType::Tracing,
        AttachPoint::Lsm(_) => ProgramType::Lsm(LsmAttachType::Mac),
    }
}

#[derive(Debug)]
pub(super) enum LoadError {
    /// The program attaches by kernel BTF, which could not be read.
    KernelBtf(String),
    Program(ProgramError),
}

impl From<ProgramError> for LoadError {
    fn from(error: ProgramError) -> Self {
        Self::Program(error)
    }
}

/// Loads `program`, which attaches at `attach` (`BPF_PROG_LOAD`). Tracing and LSM programs
/// find their target in `kernel_btf`.
pub(super) fn load(
    program: &mut Program,
    attach: AttachPoint,
    kernel_btf: &Result<Btf, String>,
) -> Result<(), LoadError> {
    let btf = || {
        kernel_btf
            .as_ref()
            .map_err(|reason| LoadError::KernelBtf(reason.clone()))
    };
    let loaded = match attach {
        AttachPoint::Cgroup(CgroupProgram::SockOps) => <&mut SockOps>::try_from(program)?.load(),
        AttachPoint::Cgroup(CgroupProgram::Skb(_)) => <&mut CgroupSkb>::try_from(program)?.load(),
        AttachPoint::Cgroup(CgroupProgram::Sockopt) => {
            <&mut CgroupSockopt>::try_from(program)?.load()
        }
        AttachPoint::Cgroup(CgroupProgram::SockAddr) => {
            <&mut CgroupSockAddr>::try_from(program)?.load()
        }
        AttachPoint::Cgroup(CgroupProgram::Sock) => <&mut CgroupSock>::try_from(program)?.load(),
        AttachPoint::Fentry(function) => <&mut FEntry>::try_from(program)?.load(function, btf()?),
        AttachPoint::Fexit(function) => <&mut FExit>::try_from(program)?.load(function, btf()?),
        AttachPoint::Lsm(hook) => <&mut Lsm>::try_from(program)?.load(hook, btf()?),
    };
    Ok(loaded?)
}

/// A link the object owns; dropping it detaches the program.
#[derive(Debug)]
pub(super) enum OwnedLink {
    SockOps(SockOpsLink),
    CgroupSkb(CgroupSkbLink),
    CgroupSockopt(CgroupSockoptLink),
    CgroupSockAddr(CgroupSockAddrLink),
    CgroupSock(CgroupSockLink),
    FEntry(FEntryLink),
    FExit(FExitLink),
    Lsm(LsmLink),
}

impl OwnedLink {
    pub(super) fn detach(self) -> Result<(), ProgramError> {
        match self {
            Self::SockOps(link) => link.detach(),
            Self::CgroupSkb(link) => link.detach(),
            Self::CgroupSockopt(link) => link.detach(),
            Self::CgroupSockAddr(link) => link.detach(),
            Self::CgroupSock(link) => link.detach(),
            Self::FEntry(link) => link.detach(),
            Self::FExit(link) => link.detach(),
            Self::Lsm(link) => link.detach(),
        }
    }
}

/// Attaches a loaded `program`, which attaches at `attach`: cgroup programs to `cgroup`,
/// tracing and LSM programs globally. The attach type of cgroup programs other than
/// cgroup_skb is the one aya read from their section.
pub(super) fn attach(
    program: &mut Program,
    attach: AttachPoint,
    cgroup: &CaseCgroup,
) -> Result<OwnedLink, ProgramError> {
    // aya attaches through bpf links from 5.7, where the kernel rejects attach flags, and
    // with BPF_PROG_ATTACH before, where no flag means one program per attach point and
    // cgroup: each case has its own cgroup and attaches one program per hook.
    let mode = CgroupAttachMode::Single;
    let link = match attach {
        AttachPoint::Cgroup(CgroupProgram::SockOps) => {
            let p = <&mut SockOps>::try_from(program)?;
            let id = p.attach(cgroup, mode)?;
            OwnedLink::SockOps(p.take_link(id)?)
        }
        AttachPoint::Cgroup(CgroupProgram::Skb(direction)) => {
            let p = <&mut CgroupSkb>::try_from(program)?;
            let direction = match direction {
                SkbDirection::Ingress => CgroupSkbAttachType::Ingress,
                SkbDirection::Egress => CgroupSkbAttachType::Egress,
            };
            let id = p.attach(cgroup, direction, mode)?;
            OwnedLink::CgroupSkb(p.take_link(id)?)
        }
        AttachPoint::Cgroup(CgroupProgram::Sockopt) => {
            let p = <&mut CgroupSockopt>::try_from(program)?;
            let id = p.attach(cgroup, mode)?;
            OwnedLink::CgroupSockopt(p.take_link(id)?)
        }
        AttachPoint::Cgroup(CgroupProgram::SockAddr) => {
            let p = <&mut CgroupSockAddr>::try_from(program)?;
            let id = p.attach(cgroup, mode)?;
            OwnedLink::CgroupSockAddr(p.take_link(id)?)
        }
        AttachPoint::Cgroup(CgroupProgram::Sock) => {
            let p = <&mut CgroupSock>::try_from(program)?;
            let id = p.attach(cgroup, mode)?;
            OwnedLink::CgroupSock(p.take_link(id)?)
        }
        AttachPoint::Fentry(_) => {
            let p = <&mut FEntry>::try_from(program)?;
            let id = p.attach()?;
            OwnedLink::FEntry(p.take_link(id)?)
        }
        AttachPoint::Fexit(_) => {
            let p = <&mut FExit>::try_from(program)?;
            let id = p.attach()?;
            OwnedLink::FExit(p.take_link(id)?)
        }
        AttachPoint::Lsm(_) => {
            let p = <&mut Lsm>::try_from(program)?;
            let id = p.attach()?;
            OwnedLink::Lsm(p.take_link(id)?)
        }
    };
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::ProgramKind;

    #[test]
    fn every_program_maps_to_its_kernel_program_type() {
        let of = |kind: ProgramKind| program_type(kind.attach_point());
        assert_eq!(of(ProgramKind::SockOps), ProgramType::SockOps);
        assert_eq!(of(ProgramKind::SkbEgress), ProgramType::CgroupSkb);
        assert_eq!(of(ProgramKind::Setsockopt), ProgramType::CgroupSockopt);
        assert_eq!(of(ProgramKind::Connect6), ProgramType::CgroupSockAddr);
        assert_eq!(of(ProgramKind::SockCreate), ProgramType::CgroupSock);
        assert_eq!(of(ProgramKind::FentryTcpClose), ProgramType::Tracing);
        assert_eq!(
            of(ProgramKind::LsmSockGraft),
            ProgramType::Lsm(LsmAttachType::Mac)
        );
    }
}
