//! The programs of the embedded eBPF object as a table: names, sections, ids and attach
//! points, which cases name and the loader uses. Each entry is a hook with one program per
//! [`HelperSet`]. Adding a hook touches this table, the matching `ebpf/src/programs.rs`
//! functions and `sk_storage_common::program_id`.

use std::fmt;

use serde::{Deserialize, Serialize};
use sk_storage_common::program_id;

use super::HelperSet;

/// One hook of the embedded object. Each program type the specification names has one (two
/// attach points for cgroup_skb, sockopt and sock_addr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramKind {
    /// `sockops`: its calls on the callbacks `ProgramCalls::PerCallback` lists.
    SockOps,
    /// `cgroup_skb/ingress`: per packet, counts packets and bytes in the storage.
    SkbIngress,
    /// `cgroup_skb/egress`: as `SkbIngress`.
    SkbEgress,
    /// `cgroup/getsockopt`: answers `getsockopt(SOL_HARNESS, 1)` with the stored value.
    Getsockopt,
    /// `cgroup/setsockopt`: stores the value of `setsockopt(SOL_HARNESS, 1)`.
    Setsockopt,
    /// `cgroup/connect4`.
    Connect4,
    /// `cgroup/connect6`.
    Connect6,
    /// `cgroup/sock_create`: cgroup_sock programs may call the get helper only, so its
    /// programs with delete calls are rejected at load.
    SockCreate,
    /// `fentry/tcp_close`: `sk` is a kernel `struct sock *`.
    FentryTcpClose,
    /// `fexit/tcp_connect` (in connect(), ports already set). Not fexit/tcp_close: the
    /// socket may be freed by the time tcp_close returns.
    FexitTcpConnect,
    /// `lsm/sock_graft` (runs in accept() for the new socket): `sk` is a `struct sock *`.
    LsmSockGraft,
}

/// Where a program attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachPoint {
    /// A cgroup attach type: the program runs for sockets created in the case's cgroup.
    Cgroup(CgroupHook),
    /// A kernel function (BTF name); runs for every socket on the host, so the program's
    /// `only_thread` / `only_port` parameters matter.
    Fentry(&'static str),
    Fexit(&'static str),
    /// An LSM hook name (without the `bpf_lsm_` prefix); global like tracing programs.
    Lsm(&'static str),
}

/// The cgroup attach types the object uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupHook {
    SockOps,
    SkbIngress,
    SkbEgress,
    Getsockopt,
    Setsockopt,
    Connect4,
    Connect6,
    SockCreate,
}

struct Spec {
    kind: ProgramKind,
    /// The name cases use; the object's functions append a [`HelperSet`] suffix.
    name: &'static str,
    /// libbpf-style section, for messages in kernel vocabulary.
    section: &'static str,
    id: u32,
    attach: AttachPoint,
}

const SPECS: [Spec; 11] = [
    Spec {
        kind: ProgramKind::SockOps,
        name: "sock_ops",
        section: "sockops",
        id: program_id::SOCK_OPS,
        attach: AttachPoint::Cgroup(CgroupHook::SockOps),
    },
    Spec {
        kind: ProgramKind::SkbIngress,
        name: "skb_ingress",
        section: "cgroup_skb/ingress",
        id: program_id::SKB_INGRESS,
        attach: AttachPoint::Cgroup(CgroupHook::SkbIngress),
    },
    Spec {
        kind: ProgramKind::SkbEgress,
        name: "skb_egress",
        section: "cgroup_skb/egress",
        id: program_id::SKB_EGRESS,
        attach: AttachPoint::Cgroup(CgroupHook::SkbEgress),
    },
    Spec {
        kind: ProgramKind::Getsockopt,
        name: "getsockopt",
        section: "cgroup/getsockopt",
        id: program_id::GETSOCKOPT,
        attach: AttachPoint::Cgroup(CgroupHook::Getsockopt),
    },
    Spec {
        kind: ProgramKind::Setsockopt,
        name: "setsockopt",
        section: "cgroup/setsockopt",
        id: program_id::SETSOCKOPT,
        attach: AttachPoint::Cgroup(CgroupHook::Setsockopt),
    },
    Spec {
        kind: ProgramKind::Connect4,
        name: "connect4",
        section: "cgroup/connect4",
        id: program_id::CONNECT4,
        attach: AttachPoint::Cgroup(CgroupHook::Connect4),
    },
    Spec {
        kind: ProgramKind::Connect6,
        name: "connect6",
        section: "cgroup/connect6",
        id: program_id::CONNECT6,
        attach: AttachPoint::Cgroup(CgroupHook::Connect6),
    },
    Spec {
        kind: ProgramKind::SockCreate,
        name: "sock_create",
        section: "cgroup/sock_create",
        id: program_id::SOCK_CREATE,
        attach: AttachPoint::Cgroup(CgroupHook::SockCreate),
    },
    Spec {
        kind: ProgramKind::FentryTcpClose,
        name: "fentry_tcp_close",
        section: "fentry/tcp_close",
        id: program_id::FENTRY_TCP_CLOSE,
        attach: AttachPoint::Fentry("tcp_close"),
    },
    Spec {
        kind: ProgramKind::FexitTcpConnect,
        name: "fexit_tcp_connect",
        section: "fexit/tcp_connect",
        id: program_id::FEXIT_TCP_CONNECT,
        attach: AttachPoint::Fexit("tcp_connect"),
    },
    Spec {
        kind: ProgramKind::LsmSockGraft,
        name: "lsm_sock_graft",
        section: "lsm/sock_graft",
        id: program_id::LSM_SOCK_GRAFT,
        attach: AttachPoint::Lsm("sock_graft"),
    },
];

impl ProgramKind {
    pub const ALL: [ProgramKind; 11] = [
        ProgramKind::SockOps,
        ProgramKind::SkbIngress,
        ProgramKind::SkbEgress,
        ProgramKind::Getsockopt,
        ProgramKind::Setsockopt,
        ProgramKind::Connect4,
        ProgramKind::Connect6,
        ProgramKind::SockCreate,
        ProgramKind::FentryTcpClose,
        ProgramKind::FexitTcpConnect,
        ProgramKind::LsmSockGraft,
    ];

    fn spec(self) -> &'static Spec {
        // SPECS is in declaration order (checked by a unit test).
        &SPECS[self as usize]
    }

    /// The name cases use.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The function name in the object of the hook's program for `helpers`.
    pub fn object_name(self, helpers: HelperSet) -> String {
        format!("{}{}", self.name(), helpers.suffix())
    }

    /// The inverse of [`ProgramKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        SPECS.iter().find(|spec| spec.name == name).map(|s| s.kind)
    }

    /// The libbpf-style section name (`sockops`, `cgroup_skb/ingress`, `fentry/tcp_close`…).
    pub fn section(self) -> &'static str {
        self.spec().section
    }

    pub fn attach_point(self) -> AttachPoint {
        self.spec().attach
    }

    /// Index into the object's `PROGRAM_CONFIG` and the `program` field of its records,
    /// shared by the hook's programs.
    pub(crate) fn id(self) -> u32 {
        self.spec().id
    }

    pub(crate) fn from_id(id: u32) -> Option<Self> {
        SPECS.iter().find(|spec| spec.id == id).map(|s| s.kind)
    }
}

impl fmt::Display for ProgramKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A sock_ops callback op (`BPF_SOCK_OPS_*` in the uapi), named as there without the
/// prefix. Unknown numbers (from newer kernels) are kept as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockOpsOp(pub u32);

const SOCK_OPS_NAMES: [(u32, &str); 15] = [
    (1, "TIMEOUT_INIT"),
    (2, "RWND_INIT"),
    (3, "TCP_CONNECT_CB"),
    (4, "ACTIVE_ESTABLISHED_CB"),
    (5, "PASSIVE_ESTABLISHED_CB"),
    (6, "NEEDS_ECN"),
    (7, "BASE_RTT"),
    (8, "RTO_CB"),
    (9, "RETRANS_CB"),
    (10, "STATE_CB"),
    (11, "TCP_LISTEN_CB"),
    (12, "RTT_CB"),
    (13, "PARSE_HDR_OPT_CB"),
    (14, "HDR_OPT_LEN_CB"),
    (15, "WRITE_HDR_OPT_CB"),
];

impl SockOpsOp {
    pub const TCP_CONNECT_CB: Self = Self(3);
    pub const ACTIVE_ESTABLISHED_CB: Self = Self(4);
    pub const PASSIVE_ESTABLISHED_CB: Self = Self(5);
    pub const STATE_CB: Self = Self(10);
    pub const TCP_LISTEN_CB: Self = Self(11);
    /// `BPF_SOCK_OPS_STATE_CB_FLAG`, for `ProgramParams::sock_ops_cb_flags`: turns on
    /// STATE_CB callbacks for the socket.
    pub const STATE_CB_FLAG: u32 = 1 << 2;

    /// The `bpf_sock_ops_cb_flags_set` flags, uapi names without `BPF_SOCK_OPS_`.
    pub const CB_FLAGS: &'static [(&'static str, u64)] = &[
        ("RTO_CB_FLAG", 1 << 0),
        ("RETRANS_CB_FLAG", 1 << 1),
        ("STATE_CB_FLAG", Self::STATE_CB_FLAG as u64),
        ("RTT_CB_FLAG", 1 << 3),
        ("PARSE_ALL_HDR_OPT_CB_FLAG", 1 << 4),
        ("PARSE_UNKNOWN_HDR_OPT_CB_FLAG", 1 << 5),
        ("WRITE_HDR_OPT_CB_FLAG", 1 << 6),
    ];

    /// The uapi name without `BPF_SOCK_OPS_`, e.g. `ACTIVE_ESTABLISHED_CB`.
    pub fn name(self) -> Option<&'static str> {
        SOCK_OPS_NAMES
            .iter()
            .find(|(op, _)| *op == self.0)
            .map(|(_, name)| *name)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        SOCK_OPS_NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(op, _)| Self(*op))
    }
}

impl fmt::Display for SockOpsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "sock_ops op {}", self.0),
        }
    }
}

impl Serialize for SockOpsOp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(name) => serializer.serialize_str(name),
            None => serializer.serialize_u32(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for SockOpsOp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Spelled {
            Name(String),
            Number(u32),
        }
        match Spelled::deserialize(deserializer)? {
            Spelled::Number(op) => Ok(Self(op)),
            Spelled::Name(name) => Self::from_name(&name)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown sock_ops op {name:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_follow_the_declaration_order_with_distinct_ids_and_names() {
        for (index, kind) in ProgramKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, index, "{kind:?}");
            assert_eq!(SPECS[index].kind, kind);
            assert_eq!(ProgramKind::from_name(kind.name()), Some(kind));
            assert_eq!(ProgramKind::from_id(kind.id()), Some(kind));
        }
        assert_eq!(SPECS.len() as u32, program_id::COUNT);
    }

    #[test]
    fn serialised_names_are_the_case_names() {
        for kind in ProgramKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).expect("serialise"),
                serde_json::Value::from(kind.name())
            );
        }
    }

    #[test]
    fn sock_ops_ops_round_trip_through_their_uapi_names() {
        assert_eq!(
            SockOpsOp::from_name("PASSIVE_ESTABLISHED_CB"),
            Some(SockOpsOp::PASSIVE_ESTABLISHED_CB)
        );
        assert_eq!(SockOpsOp::STATE_CB.to_string(), "STATE_CB");
        assert_eq!(SockOpsOp(99).to_string(), "sock_ops op 99");
        assert_eq!(SockOpsOp::from_name("ACTIVE_ESTABLISHED"), None);
    }
}
