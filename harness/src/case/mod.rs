//! Case files: YAML → validated [`Case`]s, or errors that name file, line, column and field.
//!
//! `model` is the serde shape, `validate` checks names, references, socket lifetimes,
//! values and version ranges across the whole case, `locate` turns a field path back into a
//! line and column, `types` lays out key and value types.

mod locate;
mod model;
pub mod types;
mod validate;
pub mod version;

use std::{
    fmt,
    path::{Path, PathBuf},
};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use self::{
    types::Type,
    version::{KernelVersion, VersionRange},
};

/// The first kernel with `BPF_MAP_TYPE_SK_STORAGE`; expectations must cover every kernel
/// from here (or from the case's `requires.kernel`) on.
pub const FIRST_KERNEL: KernelVersion = KernelVersion::new(5, 2, 0);

/// A validated case, ready to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    pub requires: Requirements,
    pub maps: IndexMap<String, MapSpec>,
    pub sockets: IndexMap<String, SocketSpec>,
    pub programs: IndexMap<String, ProgramSpec>,
    /// Set-up steps (declared maps and sockets no step creates) come first, then the
    /// case's own steps.
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Requirements {
    pub kernel: Option<KernelVersion>,
    pub capabilities: Vec<caps::Capability>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapSpec {
    pub key: Type,
    pub value: Type,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub btf: bool,
    /// The eBPF object's map, which the object creates; `None`: created by bpf(2).
    pub bpf: Option<crate::bpf::StorageMap>,
}

/// A program of the eBPF object, with what it does when it runs (its map is in `params`,
/// named by `map`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgramSpec {
    pub kind: crate::bpf::ProgramKind,
    pub map: String,
    pub params: crate::bpf::ProgramParams,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketSpec {
    pub source: SocketSource,
    pub reuse_fd_of: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SocketSource {
    New {
        family: Family,
        kind: SockType,
        bind: bool,
        listen: bool,
        connect: Option<String>,
    },
    Accept(String),
    Dup(String),
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    Inet,
    Inet6,
    Unix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SockType {
    Stream,
    Dgram,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// `3`, `3.1` inside a fork, `setup.2` for set-up.
    pub id: String,
    /// What the step does, for reports: `update store[s] = 7 (NOEXIST)`.
    pub label: String,
    pub op: Op,
    pub expect: Expectation,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    CreateMap(String),
    Socket(String),
    Close(String),
    DropCapabilities(Vec<caps::Capability>),
    Update {
        map: String,
        key: KeyRef,
        value: Vec<u8>,
        flags: u64,
    },
    Lookup {
        map: String,
        key: KeyRef,
        flags: u64,
    },
    Delete {
        map: String,
        key: KeyRef,
    },
    LookupAndDelete {
        map: String,
        key: KeyRef,
        flags: u64,
    },
    GetNextKey {
        map: String,
        key: Option<KeyRef>,
    },
    Batch {
        kind: BatchKind,
        map: String,
        keys: Vec<String>,
        values: Vec<Vec<u8>>,
    },
    Send {
        socket: String,
        bytes: u32,
    },
    Recv {
        socket: String,
        bytes: u32,
    },
    /// The child process runs these steps on its copies of the descriptors.
    Fork(Vec<Step>),
    /// Load the program (the verifier may refuse it) and attach it.
    Attach(String),
    Detach(String),
    /// The next record of `program` about `socket` not yet observed.
    Observe {
        program: String,
        socket: String,
        callback: Option<crate::bpf::SockOpsOp>,
    },
    /// setsockopt(SOL_HARNESS, HARNESS_OPT_STORAGE_VALUE): the setsockopt program's input.
    SetStorageOpt {
        socket: String,
        value: u64,
    },
    /// getsockopt(SOL_HARNESS, HARNESS_OPT_STORAGE_VALUE): answered by the getsockopt program.
    GetStorageOpt {
        socket: String,
    },
}

/// The socket a map operation is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyRef {
    Open(String),
    /// The number a closed socket had: deliberately stale.
    Closed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchKind {
    Lookup,
    Update,
    Delete,
    LookupAndDelete,
}

/// What a step should produce, per kernel version range.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Expectation {
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variant {
    #[serde(flatten)]
    pub range: VersionRange,
    pub outcome: Expected,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An expected outcome. Values are JSON in the shape `Type::decode` produces, where the
/// string `any` matches anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    Ok,
    Errno(String),
    Value(serde_json::Value),
    /// What a program's helper calls returned; `None` where the program makes no such call.
    Observed {
        get: Option<ExpectedGet>,
        delete: Option<ExpectedDelete>,
    },
    /// The program did not run for the socket (no record left).
    NoRecord,
    /// The kernel refused the program at load; the verifier log contains this text.
    Rejected(String),
}

/// What `bpf_sk_storage_get` returned, as a case expects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedGet {
    Null,
    /// The program had no full socket to pass.
    NoSocket,
    /// A pointer to this storage (JSON, `any` allowed), as the get returned it.
    Storage(serde_json::Value),
}

/// What `bpf_sk_storage_delete` returned, as a case expects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedDelete {
    Returned(i64),
    NoSocket,
}

impl Expectation {
    pub fn always(outcome: Expected) -> Self {
        Self {
            variants: vec![Variant {
                range: VersionRange::default(),
                outcome,
                reason: None,
            }],
        }
    }

    /// The variant in force on `version`; validation guarantees one exists for every
    /// version the case runs on.
    pub fn for_version(&self, version: KernelVersion) -> Option<&Variant> {
        self.variants.iter().find(|v| v.range.contains(version))
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => write!(f, "ok"),
            Self::Errno(name) => write!(f, "{name}"),
            Self::Value(v) => write!(f, "value {v}"),
            Self::Observed { get, delete } => {
                let mut parts = Vec::new();
                if let Some(get) = get {
                    parts.push(format!(
                        "get {}",
                        match get {
                            ExpectedGet::Null => "NULL".to_string(),
                            ExpectedGet::NoSocket => "not called (no socket)".to_string(),
                            ExpectedGet::Storage(v) => format!("-> {v}"),
                        }
                    ));
                }
                if let Some(delete) = delete {
                    parts.push(format!(
                        "delete {}",
                        match delete {
                            ExpectedDelete::Returned(v) => crate::results::describe_return(*v),
                            ExpectedDelete::NoSocket => "not called (no socket)".to_string(),
                        }
                    ));
                }
                write!(f, "{}", parts.join(", "))
            }
            Self::NoRecord => write!(f, "no record (the program did not run for the socket)"),
            Self::Rejected(text) => write!(f, "rejected at load, log containing {text:?}"),
        }
    }
}

/// A problem in a case file, located as precisely as the YAML allows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}:{column}: {}{message}", file.display(), field_prefix(field))]
pub struct CaseError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the offending field, e.g. `steps[2].update.map`.
    pub field: String,
    pub message: String,
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

/// Every problem found while loading cases; loading goes on past a bad file so one run
/// reports them all.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct LoadErrors {
    pub errors: Vec<CaseError>,
}

/// Finds case files: each path is a `.yaml`/`.yml` file or a directory searched
/// recursively; the result is sorted so runs are deterministic.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadErrors> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_yaml(path, &mut files, &mut errors);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            errors.push(CaseError {
                file: path.clone(),
                line: 0,
                column: 0,
                field: String::new(),
                message: "no such file or directory".into(),
            });
        }
    }
    files.sort();
    files.dedup();
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(LoadErrors { errors })
    }
}

fn collect_yaml(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<CaseError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(CaseError {
                file: dir.to_path_buf(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("cannot read directory: {e}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, files, errors);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(path);
        }
    }
}

/// Loads and validates every case under `paths`. Duplicate case names are errors too,
/// since reports and `--filter` identify cases by name.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Case>, LoadErrors> {
    let files = discover(paths)?;
    let mut cases: Vec<Case> = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => match validate::parse(&file, &text) {
                Ok(case) => cases.push(case),
                Err(mut errs) => errors.append(&mut errs),
            },
            Err(e) => errors.push(CaseError {
                file: file.clone(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    for (i, case) in cases.iter().enumerate() {
        if let Some(first) = cases[..i].iter().find(|c| c.name == case.name) {
            errors.push(CaseError {
                file: case.file.clone(),
                line: 1,
                column: 1,
                field: "name".into(),
                message: format!(
                    "case name `{}` is already used by {}",
                    case.name,
                    first.file.display()
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(LoadErrors { errors })
    }
}

/// Parses one case from text; `file` is used in error messages only.
pub fn parse(file: &Path, text: &str) -> Result<Case, LoadErrors> {
    validate::parse(file, text).map_err(|errors| LoadErrors { errors })
}

/// "; did you mean `x`?" when a candidate is close to `given`, else nothing.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(given, candidates)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// The candidate closest to `given`, if it is close enough to be a likely typo.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (given.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&given.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}
