//! The YAML shape of a case file, for serde only: structure, field names and scalar types.
//! Names, references, flags, values and expectations are checked in `validate`, which
//! knows the whole case.

use indexmap::IndexMap;
use serde::Deserialize;

use super::{
    steps::{Capability, StepDecl},
    types::TypeExpr,
};
use crate::version::KernelVersion;

#[derive(schemars::JsonSchema, Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub requires: Requires,
    #[serde(default)]
    pub rlimits: super::Rlimits,
    #[serde(default)]
    pub maps: IndexMap<String, MapDecl>,
    #[serde(default)]
    pub sockets: IndexMap<String, SocketDecl>,
    #[serde(default)]
    pub programs: IndexMap<String, ProgramDecl>,
    pub steps: Vec<StepDecl>,
}

#[derive(schemars::JsonSchema, Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// The oldest kernel the case applies to; older kernels report a skip.
    pub kernel: Option<KernelVersion>,
    /// Capabilities the executor must hold (`CAP_SYS_ADMIN`, `CAP_BPF`, …).
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

/// A `BPF_MAP_TYPE_SK_STORAGE` map. Defaults (applied in `validate`) are what the kernel
/// requires (int key, `max_entries` 0, `NO_PREALLOC`, BTF), so a case about an invalid
/// creation spells out only the attribute it breaks. With `bpf`, the map is one of the eBPF
/// object's maps instead, with the object's fixed attributes and value type.
#[derive(schemars::JsonSchema, Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MapDecl {
    /// `no_prealloc` or `clone`: the eBPF object's map the programs use.
    pub bpf: Option<String>,
    pub key: Option<TypeExpr>,
    pub value: Option<TypeExpr>,
    /// Overrides the size derived from `key`.
    pub key_size: Option<u32>,
    /// Overrides the size derived from `value`.
    pub value_size: Option<u32>,
    pub max_entries: Option<u32>,
    pub flags: Option<Vec<String>>,
    /// `false` creates the map with no BTF at all (btf_fd and type ids 0).
    pub btf: Option<bool>,
    /// Declare this many maps, named (and valued) with `{i}` from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
}

/// A program of the eBPF object and what it does when it runs.
#[derive(schemars::JsonSchema, Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct ProgramDecl {
    /// The program: sock_ops, skb_ingress, skb_egress, getsockopt, setsockopt, connect4,
    /// connect6, sock_create, fentry_tcp_close, fexit_tcp_connect, lsm_sock_graft.
    #[serde(rename = "type")]
    #[schemars(schema_with = "program_types")]
    pub kind: String,
    /// A map declared with `bpf:`.
    pub map: String,
    /// Every program type but sock_ops: the helper calls of each run, in order.
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    #[schemars(with = "Option<Vec<CallDecl>>")]
    pub calls: Option<Vec<CallDecl>>,
    /// sock_ops only: the callbacks it acts on, each with its calls in order.
    #[serde(default, with = "serde_yaml::with::singleton_map_recursive")]
    #[schemars(with = "Option<IndexMap<String, Vec<CallDecl>>>")]
    pub callbacks: Option<IndexMap<String, Vec<CallDecl>>>,
    /// sock_ops only: `bpf_sock_ops_cb_flags_set` flags (e.g. STATE_CB_FLAG), set on the
    /// established callbacks.
    pub cb_flags: Option<Vec<String>>,
}

/// One helper call of a program's run: `{ get: { flags, init } }`, `delete`, or
/// `{ write: N }` (into the storage the last get returned).
#[derive(schemars::JsonSchema, Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CallDecl {
    Get(GetDecl),
    Delete,
    Write(u64),
}

#[derive(schemars::JsonSchema, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GetDecl {
    /// `F_CREATE`, or an integer for flags the kernel must refuse; default 0.
    #[schemars(with = "Option<serde_json::Value>")]
    pub flags: Option<serde_yaml::Value>,
    /// The storage's `value` when F_CREATE creates it; left out, NULL is passed (zeroed).
    pub init: Option<u64>,
}

/// A file descriptor the case uses: a new socket, an accepted or duplicated one, the other
/// end of a socketpair, one received over a unix socket, or a non-socket file (for the
/// ENOTSOCK cases). Exactly one of `family`, `accept`, `dup`, `pair_of`, `received_on`,
/// `file` says which.
#[derive(schemars::JsonSchema, Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SocketDecl {
    pub family: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Bind to the loopback address (port 0) or, for unix, an abstract address.
    #[serde(default)]
    pub bind: bool,
    /// Bind and listen (stream sockets).
    #[serde(default)]
    pub listen: bool,
    /// Connect to this bound or listening socket.
    pub connect: Option<String>,
    /// Accept a pending connection on this listening socket.
    pub accept: Option<String>,
    /// dup(2) of this socket.
    pub dup: Option<String>,
    /// Open this path read-only: a descriptor that is not a socket.
    pub file: Option<String>,
    /// Create it with socketpair(2) (unix); the other end is the socket declared with
    /// `pair_of` this one.
    #[serde(default)]
    pub socketpair: bool,
    /// The other end of this socketpair socket.
    pub pair_of: Option<String>,
    /// The descriptor received with SCM_RIGHTS on this unix socket (after a `send_fd`).
    pub received_on: Option<String>,
    /// Place the new descriptor at the number this (closed) socket had.
    pub reuse_fd_of: Option<String>,
    /// Declare this many sockets, named (and referring) with `{i}` from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
}

/// One variant of a versioned expectation.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct VariantDecl {
    pub since: Option<KernelVersion>,
    pub until: Option<KernelVersion>,
    /// One architecture or a list (`arm64`, `[x86_64, arm64]`); every one when absent.
    pub arch: Option<ArchDecl>,
    #[schemars(with = "serde_json::Value")]
    pub expect: serde_yaml::Value,
    pub reason: String,
}

/// A variant's `arch`: one name or a list of them.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(untagged)]
pub enum ArchDecl {
    One(String),
    Many(Vec<String>),
}

/// The hooks' names, as the one table of hooks gives them (editors complete them).
fn program_types(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = crate::catalogue::ProgramKind::ALL
        .iter()
        .map(|kind| kind.name())
        .collect();
    schemars::json_schema!({ "type": "string", "enum": names })
}
