//! The YAML shape of a case file, for serde only: structure, field names and scalar types.
//! Names, references, flags, values and expectations are checked in `validate`, which
//! knows the whole case.

use indexmap::IndexMap;
use serde::Deserialize;

use super::{types::TypeExpr, version::KernelVersion};

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub requires: Requires,
    #[serde(default)]
    pub maps: IndexMap<String, MapDecl>,
    #[serde(default)]
    pub sockets: IndexMap<String, SocketDecl>,
    /// Each step is a mapping of one operation plus `expect`; parsed in `validate` so its
    /// errors can name the operation.
    pub steps: Vec<IndexMap<String, serde_yaml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// The oldest kernel the case applies to; older kernels report a skip.
    pub kernel: Option<KernelVersion>,
    /// Capabilities the executor must hold (`CAP_SYS_ADMIN`, `CAP_BPF`, …).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

fn default_key() -> TypeExpr {
    TypeExpr::Named("int".into())
}

fn default_map_flags() -> Vec<String> {
    vec!["NO_PREALLOC".into()]
}

fn yes() -> bool {
    true
}

/// A `BPF_MAP_TYPE_SK_STORAGE` map. Defaults are what the kernel requires (int key,
/// `max_entries` 0, `NO_PREALLOC`, BTF), so a case about an invalid creation spells out
/// only the attribute it breaks.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct MapDecl {
    #[serde(default = "default_key")]
    pub key: TypeExpr,
    pub value: TypeExpr,
    /// Overrides the size derived from `key`.
    pub key_size: Option<u32>,
    /// Overrides the size derived from `value`.
    pub value_size: Option<u32>,
    #[serde(default)]
    pub max_entries: u32,
    #[serde(default = "default_map_flags")]
    pub flags: Vec<String>,
    /// `false` creates the map with no BTF at all (btf_fd and type ids 0).
    #[serde(default = "yes")]
    pub btf: bool,
}

/// A file descriptor the case uses: a new socket, an accepted or duplicated one, or a
/// non-socket file (for the ENOTSOCK cases). Exactly one of `family`, `accept`, `dup`,
/// `file` says which.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
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
    /// Place the new descriptor at the number this (closed) socket had.
    pub reuse_fd_of: Option<String>,
}

/// Arguments of map operations keyed by a socket. Exactly one of `socket` (an open
/// socket) or `closed_socket` (the number a closed socket had, on purpose) names the key.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct MapOpArgs {
    pub map: String,
    pub socket: Option<String>,
    pub closed_socket: Option<String>,
    pub value: Option<serde_yaml::Value>,
    pub flags: Option<serde_yaml::Value>,
}

/// Arguments of the batch operations: the keys (and values, for update) in order.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct BatchArgs {
    pub map: String,
    #[serde(default)]
    pub sockets: Vec<String>,
    #[serde(default)]
    pub values: Vec<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct TransferArgs {
    pub socket: String,
    pub bytes: u32,
}

/// One variant of a versioned expectation.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct VariantDecl {
    pub since: Option<KernelVersion>,
    pub until: Option<KernelVersion>,
    pub expect: serde_yaml::Value,
    pub reason: String,
}
