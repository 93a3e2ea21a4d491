//! Looking at a map's storages from userspace other than by key: a sock_diag dump of one
//! socket (`diag`) and a BPF iterator over a map (`iterate`).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::StepCheck;
use crate::case::{
    Family, SockType, SocketSource,
    checked::{Checked, Outcomes},
    locate::Point,
    types::Type,
};

operations! {
    pub enum InspectOp as InspectOpKind {
        /// A sock_diag dump of one socket asking for its storage in these maps.
        Diag(DiagArgs),
        /// A BPF iterator over a map's storages, read to the end.
        Iterate(IterateArgs),
    }
    runs_in_child: [],
    queries: [],
    slow: [Diag, Iterate],
}

/// What the executor runs for an inspect step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectAction {
    Diag {
        socket: String,
        /// The socket's family and type, which pick the dump's family and protocol.
        family: Family,
        kind: SockType,
        /// Empty: every storage of the socket.
        maps: Vec<String>,
    },
    Iterate {
        map: String,
    },
}

impl InspectOp {
    pub(super) fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<InspectAction>> {
        match self {
            InspectOp::Diag(args) => args.check(cx),
            InspectOp::Iterate(args) => args.check(cx),
        }
    }
}

/// A NETLINK_SOCK_DIAG dump (`SOCK_DIAG_BY_FAMILY`) with `INET_DIAG_REQ_SK_BPF_STORAGES`
/// naming these maps, answered for `socket` (a TCP or UDP socket over inet or inet6).
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagArgs {
    pub socket: String,
    /// The maps whose storage the dump asks for, in order; empty asks for every storage
    /// the socket has (the kernel's "dump all").
    #[serde(default)]
    pub maps: Vec<String>,
}

impl DiagArgs {
    fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<InspectAction>> {
        let path = cx.path.clone();
        let socket = cx.open_socket(&self.socket, &path.key("socket"))?;
        let Some((family @ (Family::Inet | Family::Inet6), kind)) =
            family_and_type(&socket, cx.ctx.sockets)
        else {
            cx.error(
                &path.key("socket"),
                Point::Value,
                format!(
                    "`{socket}` is not an inet or inet6 socket: inet_diag answers only for TCP and UDP sockets (declare it, or the socket it accepts from or dups, with `family: inet` or `inet6`)"
                ),
            );
            return None;
        };
        let mut maps = IndexMap::new();
        for (i, map) in self.maps.iter().enumerate() {
            let at = path.key("maps").index(i);
            let map = cx.created_map(map, &at)?;
            if maps.contains_key(&map) {
                cx.error(
                    &at,
                    Point::Value,
                    format!("map `{map}` is named twice (the kernel refuses that with EEXIST; name it once)"),
                );
                return None;
            }
            let ty: Type = cx.ctx.maps[&map].value.clone();
            maps.insert(map, ty);
        }
        let names: Vec<String> = maps.keys().cloned().collect();
        let label = if names.is_empty() {
            format!("diag {socket} (every map)")
        } else {
            format!("diag {socket} [{}]", names.join(", "))
        };
        if maps.is_empty() {
            // The kernel answers with the socket's storage in every map: any of the case's.
            maps = cx
                .ctx
                .maps
                .iter()
                .map(|(name, spec)| (name.clone(), spec.value.clone()))
                .collect();
        }
        // Every storage the answer carries is decoded into the result.
        let reads = maps.values().map(|ty| u64::from(ty.size())).sum();
        let action = InspectAction::Diag {
            socket,
            family,
            kind,
            maps: names,
        };
        Some(Checked::new(label, Outcomes::Storages(maps), action).reading(reads))
    }
}

/// The family and type of a declared socket: its own, or that of the socket it accepts
/// from, dups or pairs with; `None` for a file, a received descriptor, or a chain that
/// does not end in a new socket.
fn family_and_type(
    name: &str,
    sockets: &IndexMap<String, crate::case::SocketSpec>,
) -> Option<(Family, SockType)> {
    let mut name = name;
    for _ in 0..=sockets.len() {
        match &sockets.get(name)?.source {
            SocketSource::New { family, kind, .. } => return Some((*family, *kind)),
            SocketSource::Accept(from) | SocketSource::Dup(from) | SocketSource::PairOf(from) => {
                name = from
            }
            // What arrives over a unix socket is whatever a step sent.
            SocketSource::ReceivedOn(_) | SocketSource::File(_) => return None,
        }
    }
    None
}

/// A BPF iterator (`bpf_iter__bpf_sk_storage_map`) attached to `map` and read to the end.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IterateArgs {
    pub map: String,
}

impl IterateArgs {
    fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<InspectAction>> {
        let path = cx.path.clone();
        let map = cx.created_map(&self.map, &path.key("map"))?;
        Some(Checked::new(
            format!("iterate {map}"),
            Outcomes::Value(iteration_type()),
            InspectAction::Iterate { map },
        ))
    }
}

/// What an iteration returns: how many storages the iterator saw and the sum of their
/// first 8 bytes (the `value` field of the eBPF object's maps).
pub fn iteration_type() -> Type {
    let u64 = || Type::Int {
        bytes: 8,
        signed: false,
    };
    Type::Struct {
        fields: vec![("storages".into(), u64()), ("value_sum".into(), u64())],
    }
}
