//! The hooks of the eBPF object, listed once: what cases call them, the section their
//! programs are in, where they attach, and their id, shared by the programs (`ebpf/`) and
//! the loader (`harness/`).
//!
//! A new hook is a variant of [`ProgramKind`] with its arm in `ProgramKind::hook`, its
//! programs in `ebpf/src/programs.rs` and a test. Its name and id follow from the variant.

use core::fmt;

/// One hook of the object, with one program per helper set ([`crate::helper_set`]): the
/// object's functions are the hook's name with the set's suffix (`sock_ops_get`…). Cases
/// name a hook by its variant in snake_case (`sock_ops`, `fexit_tcp_connect`); its id is
/// its position here.
///
/// Each program that runs and passes its filters (`ProgramConfig::only_tid`, `only_port`)
/// makes its calls and sends one record; when the last get of the run returned storage it
/// then adds 1 to `events` there, and does what its variant says.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::VariantArray,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(
    feature = "user",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[repr(u32)]
pub enum ProgramKind {
    /// On the callbacks its call lists name (`ProgramConfig::sock_ops_mask`), with
    /// `ctx->sk` (NULL on callbacks without a full socket). On the established callbacks it
    /// first calls `bpf_sock_ops_cb_flags_set(sock_ops_cb_flags)`, whether it acts on them
    /// or not. Records the op and the callback's `args[0]`, `args[1]`.
    SockOps,
    /// On every packet, with `bpf_sk_fullsock(skb->sk)`; adds the packet's length to
    /// `bytes`, which its record's `detail` holds.
    SkbIngress,
    /// As `SkbIngress`.
    SkbEgress,
    /// On `getsockopt(SOL_HARNESS, …)` only, with `ctx->sk`: answers
    /// [`crate::HARNESS_OPT_STORAGE_VALUE`] with the stored `value` (without storage the
    /// kernel's error stays). `detail`: the optname.
    Getsockopt,
    /// On `setsockopt(SOL_HARNESS, …)` only, with `ctx->sk`: stores the option's 8 bytes in
    /// `value` and skips the kernel's handler. `detail`: the optname.
    Setsockopt,
    /// In connect(), with `ctx->sk`.
    Connect4,
    /// As `Connect4`.
    Connect6,
    /// In socket(), with the context as the socket. cgroup_sock programs may call the get
    /// helper only, so its programs with delete calls are rejected at load.
    SockCreate,
    /// On entry to tcp_close(), with its `struct sock *`.
    FentryTcpClose,
    /// On return from tcp_connect() (ports set, SYN queued), with its `struct sock *`. Not
    /// fexit/tcp_close: the socket may be freed by the time tcp_close returns.
    FexitTcpConnect,
    /// In accept(), for the new socket (`struct sock *`).
    LsmSockGraft,
}

impl ProgramKind {
    /// Every hook, in id order.
    pub const ALL: &'static [Self] = <Self as strum::VariantArray>::VARIANTS;
    /// The length of `PROGRAM_CONFIG`.
    pub const COUNT: usize = Self::ALL.len();

    /// The table: each hook's section and attach point. The section must be the one the
    /// hook's programs are compiled into (their `aya_ebpf` attribute makes it); the harness
    /// tests that.
    const fn hook(self) -> (&'static str, AttachPoint) {
        use AttachPoint::{Cgroup, Fentry, Fexit, Lsm};
        match self {
            Self::SockOps => ("sockops", Cgroup(CgroupProgram::SockOps)),
            Self::SkbIngress => (
                "cgroup_skb/ingress",
                Cgroup(CgroupProgram::Skb(SkbDirection::Ingress)),
            ),
            Self::SkbEgress => (
                "cgroup_skb/egress",
                Cgroup(CgroupProgram::Skb(SkbDirection::Egress)),
            ),
            Self::Getsockopt => ("cgroup/getsockopt", Cgroup(CgroupProgram::Sockopt)),
            Self::Setsockopt => ("cgroup/setsockopt", Cgroup(CgroupProgram::Sockopt)),
            Self::Connect4 => ("cgroup/connect4", Cgroup(CgroupProgram::SockAddr)),
            Self::Connect6 => ("cgroup/connect6", Cgroup(CgroupProgram::SockAddr)),
            Self::SockCreate => ("cgroup/sock_create", Cgroup(CgroupProgram::Sock)),
            Self::FentryTcpClose => ("fentry/tcp_close", Fentry("tcp_close")),
            Self::FexitTcpConnect => ("fexit/tcp_connect", Fexit("tcp_connect")),
            Self::LsmSockGraft => ("lsm/sock_graft", Lsm("sock_graft")),
        }
    }

    /// The name cases use.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The inverse of [`ProgramKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.name() == name)
    }

    /// The libbpf-style section of the hook's programs (`sockops`, `cgroup_skb/ingress`,
    /// `fentry/tcp_close`…), which names the hook in kernel vocabulary.
    pub const fn section(self) -> &'static str {
        self.hook().0
    }

    pub const fn attach_point(self) -> AttachPoint {
        self.hook().1
    }

    /// The hook's slot in `PROGRAM_CONFIG` and the `program` of its records, shared by
    /// its programs.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The inverse of [`ProgramKind::id`].
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.get(id as usize).copied()
    }
}

impl fmt::Display for ProgramKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a hook's programs attach, which decides their program type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachPoint {
    /// To the case's cgroup: the program runs for sockets created in it.
    Cgroup(CgroupProgram),
    /// To a kernel function, by its BTF name. Runs for every socket on the host, so the
    /// program's `only_tid` / `only_port` filters matter.
    Fentry(&'static str),
    Fexit(&'static str),
    /// To an LSM hook, by its name without the `bpf_lsm_` prefix; global like tracing
    /// programs.
    Lsm(&'static str),
}

/// The program types that attach to a cgroup. Which attach type of its program type a hook
/// has (getsockopt or setsockopt, connect4 or connect6…) is its section's, as the loader
/// reads it from the object; only cgroup_skb takes its direction at attach as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupProgram {
    SockOps,
    Skb(SkbDirection),
    Sockopt,
    SockAddr,
    Sock,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkbDirection {
    Ingress,
    Egress,
}
