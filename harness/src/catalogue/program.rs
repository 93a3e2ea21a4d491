//! The programs cases name: the hooks of the embedded eBPF object, whose one table
//! (`sk_storage_common::ProgramKind`) the eBPF programs share, and sock_ops callbacks.

use std::fmt;

use aya_obj::generated::{
    BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, BPF_SOCK_OPS_BASE_RTT, BPF_SOCK_OPS_HDR_OPT_LEN_CB,
    BPF_SOCK_OPS_NEEDS_ECN, BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG, BPF_SOCK_OPS_PARSE_HDR_OPT_CB,
    BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB,
    BPF_SOCK_OPS_RETRANS_CB, BPF_SOCK_OPS_RETRANS_CB_FLAG, BPF_SOCK_OPS_RTO_CB,
    BPF_SOCK_OPS_RTO_CB_FLAG, BPF_SOCK_OPS_RTT_CB, BPF_SOCK_OPS_RTT_CB_FLAG,
    BPF_SOCK_OPS_RWND_INIT, BPF_SOCK_OPS_STATE_CB, BPF_SOCK_OPS_STATE_CB_FLAG,
    BPF_SOCK_OPS_TCP_CONNECT_CB, BPF_SOCK_OPS_TCP_LISTEN_CB, BPF_SOCK_OPS_TIMEOUT_INIT,
    BPF_SOCK_OPS_WRITE_HDR_OPT_CB, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG,
};
use serde::{Deserialize, Serialize};

/// A sock_ops callback op (`BPF_SOCK_OPS_*` in the uapi), named as there without the
/// prefix. Unknown numbers (from newer kernels) are kept as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockOpsOp(pub u32);

const SOCK_OPS_NAMES: [(u32, &str); 15] = [
    (BPF_SOCK_OPS_TIMEOUT_INIT as u32, "TIMEOUT_INIT"),
    (BPF_SOCK_OPS_RWND_INIT as u32, "RWND_INIT"),
    (BPF_SOCK_OPS_TCP_CONNECT_CB as u32, "TCP_CONNECT_CB"),
    (
        BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB as u32,
        "ACTIVE_ESTABLISHED_CB",
    ),
    (
        BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB as u32,
        "PASSIVE_ESTABLISHED_CB",
    ),
    (BPF_SOCK_OPS_NEEDS_ECN as u32, "NEEDS_ECN"),
    (BPF_SOCK_OPS_BASE_RTT as u32, "BASE_RTT"),
    (BPF_SOCK_OPS_RTO_CB as u32, "RTO_CB"),
    (BPF_SOCK_OPS_RETRANS_CB as u32, "RETRANS_CB"),
    (BPF_SOCK_OPS_STATE_CB as u32, "STATE_CB"),
    (BPF_SOCK_OPS_TCP_LISTEN_CB as u32, "TCP_LISTEN_CB"),
    (BPF_SOCK_OPS_RTT_CB as u32, "RTT_CB"),
    (BPF_SOCK_OPS_PARSE_HDR_OPT_CB as u32, "PARSE_HDR_OPT_CB"),
    (BPF_SOCK_OPS_HDR_OPT_LEN_CB as u32, "HDR_OPT_LEN_CB"),
    (BPF_SOCK_OPS_WRITE_HDR_OPT_CB as u32, "WRITE_HDR_OPT_CB"),
];

impl SockOpsOp {
    pub const TCP_CONNECT_CB: Self = Self(BPF_SOCK_OPS_TCP_CONNECT_CB as u32);
    pub const ACTIVE_ESTABLISHED_CB: Self = Self(BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB as u32);
    pub const PASSIVE_ESTABLISHED_CB: Self = Self(BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB as u32);
    pub const STATE_CB: Self = Self(BPF_SOCK_OPS_STATE_CB as u32);
    pub const TCP_LISTEN_CB: Self = Self(BPF_SOCK_OPS_TCP_LISTEN_CB as u32);
    /// `BPF_SOCK_OPS_STATE_CB_FLAG`, for `ProgramParams::sock_ops_cb_flags`: turns on
    /// STATE_CB callbacks for the socket.
    pub const STATE_CB_FLAG: u32 = BPF_SOCK_OPS_STATE_CB_FLAG as u32;

    /// The `bpf_sock_ops_cb_flags_set` flags, uapi names without `BPF_SOCK_OPS_`.
    pub const CB_FLAGS: &'static [(&'static str, u64)] = &[
        ("RTO_CB_FLAG", BPF_SOCK_OPS_RTO_CB_FLAG as u64),
        ("RETRANS_CB_FLAG", BPF_SOCK_OPS_RETRANS_CB_FLAG as u64),
        ("STATE_CB_FLAG", BPF_SOCK_OPS_STATE_CB_FLAG as u64),
        ("RTT_CB_FLAG", BPF_SOCK_OPS_RTT_CB_FLAG as u64),
        (
            "PARSE_ALL_HDR_OPT_CB_FLAG",
            BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG as u64,
        ),
        (
            "PARSE_UNKNOWN_HDR_OPT_CB_FLAG",
            BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG as u64,
        ),
        (
            "WRITE_HDR_OPT_CB_FLAG",
            BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG as u64,
        ),
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
    use sk_storage_common::{AttachPoint, CgroupProgram, ProgramKind, SkbDirection};

    use super::*;

    #[test]
    fn every_hook_is_found_by_its_id_and_its_name() {
        for (index, &kind) in ProgramKind::ALL.iter().enumerate() {
            assert_eq!(kind.id() as usize, index, "{kind:?}");
            assert_eq!(ProgramKind::from_id(kind.id()), Some(kind));
            assert_eq!(ProgramKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ProgramKind::from_id(ProgramKind::COUNT as u32), None);
    }

    #[test]
    fn serialised_names_are_the_case_names() {
        for &kind in ProgramKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).expect("serialise"),
                serde_json::Value::from(kind.name())
            );
        }
        assert_eq!(ProgramKind::SockOps.name(), "sock_ops");
        assert_eq!(ProgramKind::Connect4.name(), "connect4");
    }

    #[test]
    fn sections_name_what_the_attach_points_name() {
        for &kind in ProgramKind::ALL {
            let section = kind.section();
            let expected = match kind.attach_point() {
                AttachPoint::Cgroup(CgroupProgram::Skb(SkbDirection::Ingress)) => {
                    "cgroup_skb/ingress".to_string()
                }
                AttachPoint::Cgroup(CgroupProgram::Skb(SkbDirection::Egress)) => {
                    "cgroup_skb/egress".to_string()
                }
                AttachPoint::Cgroup(CgroupProgram::SockOps) => "sockops".to_string(),
                AttachPoint::Cgroup(
                    CgroupProgram::Sockopt | CgroupProgram::SockAddr | CgroupProgram::Sock,
                ) => {
                    assert!(section.starts_with("cgroup/"), "{kind}: {section}");
                    continue;
                }
                AttachPoint::Fentry(function) => format!("fentry/{function}"),
                AttachPoint::Fexit(function) => format!("fexit/{function}"),
                AttachPoint::Lsm(hook) => format!("lsm/{hook}"),
            };
            assert_eq!(section, expected, "{kind}");
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
