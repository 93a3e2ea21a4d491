//! Case files: YAML → validated [`Case`]s, or errors that name file, line, column and field.
//!
//! `prescan` refuses deep nesting and duplicate keys before anything else reads the YAML,
//! `model` is the serde shape of the declarations and `steps` the step enum with each
//! operation's check, `checked` what the checks give back, `validate` checks names,
//! references, socket lifetimes, values and version ranges across the whole case, `locate`
//! turns a field path back into a line and column, `types` lays out key and value types,
//! `flags` names flag bits.

mod checked;
mod flags;
pub mod limits;
mod locate;
mod model;
mod prescan;
pub mod schema;
pub mod steps;
pub mod types;
mod validate;

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use self::types::Brief;
pub use self::{
    checked::KeyRef,
    steps::{Action, Op},
    types::Type,
    validate::Cost,
};
use crate::{
    diagnostic::{Diagnostic, Diagnostics, line_column},
    version::{KernelVersion, VersionRange},
    vm::Arch,
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
    pub rlimits: Rlimits,
    pub maps: IndexMap<String, MapSpec>,
    pub sockets: IndexMap<String, SocketSpec>,
    pub programs: IndexMap<String, ProgramSpec>,
    /// Set-up steps (declared maps and sockets no step creates) come first, then the
    /// case's own steps.
    pub steps: Vec<Step>,
    /// What validation computed the case costs before expanding it.
    pub cost: Cost,
}

impl Case {
    /// Every step by its id, a fork's own steps included: built once, so that finding the
    /// steps of results costs as much as the steps.
    pub fn steps_by_id(&self) -> HashMap<&str, &Step> {
        fn add<'a>(steps: &'a [Step], into: &mut HashMap<&'a str, &'a Step>) {
            for step in steps {
                into.insert(&step.id, step);
                add(&step.children, into);
            }
        }
        let mut by_id = HashMap::new();
        add(&self.steps, &mut by_id);
        by_id
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Requirements {
    pub kernel: Option<KernelVersion>,
    pub capabilities: Vec<caps::Capability>,
}

/// Resource limits the case runs under, in place of the executor's own (which lifts
/// `RLIMIT_MEMLOCK`). Unset limits stay as they are.
#[derive(schemars::JsonSchema, Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimits {
    /// `RLIMIT_MEMLOCK` in bytes: what kernels before 5.11 charge map memory to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memlock: Option<u64>,
    /// `RLIMIT_NOFILE`: the first descriptor number open(2) and socket(2) may not return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nofile: Option<u64>,
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
    pub bpf: Option<crate::catalogue::StorageMap>,
}

/// A program of the eBPF object, with what it does when it runs (its map is in `params`,
/// named by `map`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgramSpec {
    pub kind: crate::catalogue::ProgramKind,
    pub map: String,
    pub params: crate::catalogue::ProgramParams,
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
        /// Created with socketpair(2); the other end waits for its `PairOf` socket.
        socketpair: bool,
    },
    Accept(String),
    Dup(String),
    /// The other end of this socketpair socket.
    PairOf(String),
    /// Received with SCM_RIGHTS on this unix socket.
    ReceivedOn(String),
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
    /// Unix only here (inet seqpacket would be SCTP).
    Seqpacket,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// `3`, `3.1` inside a fork, `setup.2` for set-up: counted from 1, while the field path
    /// of the same step in a validation error counts from 0 (`steps[2]`, `steps[2].fork[0]`).
    pub id: String,
    /// What the step does, for reports: `update store[s] = 7 (NOEXIST)`.
    pub label: String,
    /// The step's line in the case file (a set-up step's: its declaration's), so that a
    /// report can point at it; `None` where the file could not be located.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What the executor runs, resolved by the step's check.
    pub action: Action,
    pub expect: Expectation,
    /// Ask again until the expectation holds, for this long at most (queries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<std::time::Duration>,
    /// A fork's steps, checked; empty for other steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Step>,
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
    /// The architectures whose kernels the variant is for; every one's when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Vec<Arch>>,
    pub outcome: Expected,
    /// Shared by every copy of a repeated step: a repeat's steps take one copy of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Arc<str>>,
}

/// An expected outcome. Values are JSON in the shape `Type::decode` produces, where the
/// string `any` matches anything.
/// Its kind, `<&str>::from(&expected)`, names the kind of [`Actual`](crate::results::Actual)
/// it speaks of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Expected {
    Ok,
    Errno(String),
    Value(serde_json::Value),
    /// What each call of the program's run did, in the order of its call list.
    Observed {
        calls: Vec<ExpectedCall>,
        /// sock_ops: the callback's `args[0]` and `args[1]` (numbers, comparisons or `any`);
        /// `None` does not check them.
        callback_args: Option<Vec<serde_json::Value>>,
    },
    /// The program did not run for the socket (no record left).
    NoRecord,
    /// The kernel refused the program at load; the verifier log contains this text.
    Rejected(String),
    /// How often each operation of a threads step had each outcome (`ok` or an errno
    /// name): a count, a comparison (`"> 0"`) or `any`. An outcome that happened but is not
    /// listed diverges; a listed one that never happened counts 0.
    Counts(IndexMap<String, IndexMap<String, serde_json::Value>>),
    /// A sock_diag answer for the socket carrying exactly these storages (JSON object of
    /// map name → value, `any` allowed).
    Storages(serde_json::Value),
    /// The sock_diag dump did not list the socket.
    NotListed,
}

/// One call of a program's run, as a case expects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedCall {
    Get(ExpectedGet),
    Delete(ExpectedDelete),
    Write(ExpectedWrite),
}

/// What a write of the call list did, as a case expects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedWrite {
    Written,
    NoStorage,
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
                arch: None,
                outcome,
                reason: None,
            }],
        }
    }

    /// The variant in force on `version` of `arch`; validation guarantees one exists for
    /// every kernel the case runs on.
    pub fn for_kernel(&self, version: KernelVersion, arch: Arch) -> Option<&Variant> {
        self.variants.iter().find(|v| v.applies(version, arch))
    }
}

impl Variant {
    /// Whether the variant is for `version` of `arch`.
    pub fn applies(&self, version: KernelVersion, arch: Arch) -> bool {
        self.range.contains(version) && self.is_for(arch)
    }

    /// Whether the variant is for kernels of `arch`.
    pub fn is_for(&self, arch: Arch) -> bool {
        self.arch.as_ref().is_none_or(|archs| archs.contains(&arch))
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => write!(f, "ok"),
            Self::Errno(name) => write!(f, "{name}"),
            Self::Value(v) => write!(f, "value {}", Brief(v)),
            Self::Observed {
                calls,
                callback_args,
            } => {
                let calls: Vec<String> = calls
                    .iter()
                    .map(|call| match call {
                        ExpectedCall::Get(ExpectedGet::Null) => "get NULL".to_string(),
                        ExpectedCall::Get(ExpectedGet::NoSocket) => {
                            "get not called (no socket)".to_string()
                        }
                        ExpectedCall::Get(ExpectedGet::Storage(v)) => {
                            format!("get -> {}", Brief(v))
                        }
                        ExpectedCall::Delete(ExpectedDelete::Returned(v)) => {
                            format!("delete {}", crate::errno::describe_return(*v))
                        }
                        ExpectedCall::Delete(ExpectedDelete::NoSocket) => {
                            "delete not called (no socket)".to_string()
                        }
                        ExpectedCall::Write(ExpectedWrite::Written) => "write done".to_string(),
                        ExpectedCall::Write(ExpectedWrite::NoStorage) => {
                            "write not done (no storage)".to_string()
                        }
                    })
                    .collect();
                write!(f, "{}", calls.join(", "))?;
                if let Some(args) = callback_args {
                    write!(f, " (callback args {})", serde_json::json!(args))?;
                }
                Ok(())
            }
            Self::NoRecord => write!(f, "no record (the program did not run for the socket)"),
            Self::Rejected(text) => write!(f, "rejected at load, log containing {text:?}"),
            Self::Counts(counts) => write!(f, "counts {}", serde_json::json!(counts)),
            Self::Storages(storages) => write!(f, "storages {}", Brief(storages)),
            Self::NotListed => write!(f, "not listed by the dump"),
        }
    }
}

/// Finds case files: each path is a `.yaml`/`.yml` file or a directory searched
/// recursively (following symlinks); the result is sorted so runs are deterministic.
/// A `.yaml` entry that is not a regular file (a FIFO, a device) and a directory symlink
/// that leads back to a directory being searched are errors, not skipped.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostics> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                collect_yaml(path, &mut vec![dir_id(&meta)], &mut files, &mut errors);
            }
            Ok(meta) if meta.is_file() => files.push(path.clone()),
            Ok(_) => errors.push(not_regular(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                errors.push(Diagnostic::of_file(
                    path,
                    "no such file or directory (the case files and directories are the arguments)",
                ));
            }
            Err(e) => errors.push(Diagnostic::of_file(path, format!("cannot read: {e}"))),
        }
    }
    files.sort();
    files.dedup();
    errors.sort_by(|a, b| a.file.cmp(&b.file));
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(Diagnostics(errors))
    }
}

/// A directory's identity, which every path to it (through symlinks too) shares.
fn dir_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

fn not_regular(path: &Path) -> Diagnostic {
    Diagnostic::of_file(
        path,
        "not a regular file (a FIFO, device or socket): a case is a regular YAML file",
    )
}

/// Searches `dir`; `open` holds the identities of `dir` and the directories it is in, so a
/// symlink back to one of them is reported as a loop instead of being followed forever.
fn collect_yaml(
    dir: &Path,
    open: &mut Vec<(u64, u64)>,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<Diagnostic>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(Diagnostic::of_file(
                dir,
                format!("cannot read directory: {e}"),
            ));
            return;
        }
    };
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(e) => {
                errors.push(Diagnostic::of_file(
                    dir,
                    format!("cannot read directory: {e}"),
                ));
                continue;
            }
        };
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        // metadata follows symlinks: a link to a case file or a case directory counts as one.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                let id = dir_id(&meta);
                if open.contains(&id) {
                    errors.push(Diagnostic::of_file(
                        &path,
                        "directory loop: this leads back to a directory that contains it (a symlink to `.` or a parent?)",
                    ));
                } else {
                    open.push(id);
                    collect_yaml(&path, open, files, errors);
                    open.pop();
                }
            }
            Ok(meta) if meta.is_file() => {
                if is_yaml {
                    files.push(path);
                }
            }
            Ok(_) if is_yaml => errors.push(not_regular(&path)),
            Err(e) if is_yaml => {
                errors.push(Diagnostic::of_file(&path, format!("cannot read: {e}")))
            }
            // Neither a case nor a directory of cases (a dangling link, a socket…).
            Ok(_) | Err(_) => {}
        }
    }
}

/// Reads a case file: a regular file of at most [`limits::MAX_CASE_FILE_BYTES`], and UTF-8, with
/// the place of the first byte that is not.
pub(crate) fn read_case(file: &Path) -> Result<String, Diagnostic> {
    // The file's name is printed beside the case in every report.
    if crate::printable::has_control(&file.to_string_lossy()) {
        return Err(Diagnostic::of_file(
            file,
            "the path holds a control character: a case's file is named in reports, rename it",
        ));
    }
    let bytes =
        crate::input_file::read_regular(file, limits::MAX_CASE_FILE_BYTES).map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::FileTooLarge {
                format!(
                    "larger than {} bytes (1 MiB), the most a case file may be; \
                 real cases are a few KB",
                    limits::MAX_CASE_FILE_BYTES
                )
            } else {
                format!("cannot read: {e}")
            };
            Diagnostic::of_file(file, why)
        })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
        Diagnostic::at(
            file,
            line_column(&valid, valid.len()),
            "",
            format!(
                "not valid UTF-8 (byte {:#04x}): a case file is UTF-8 text",
                e.as_bytes()[e.utf8_error().valid_up_to()]
            ),
        )
    })
}

/// Loads and validates every case under `paths`. Duplicate case names are errors too,
/// since reports and `--filter` identify cases by name.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Case>, Diagnostics> {
    let files = discover(paths)?;
    let mut cases: Vec<Case> = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match read_case(&file) {
            Ok(text) => match validate::parse(&file, &text) {
                Ok(case) => cases.push(case),
                Err(mut errs) => errors.append(&mut errs),
            },
            Err(e) => errors.push(e),
        }
    }
    for (i, case) in cases.iter().enumerate() {
        if let Some(first) = cases[..i].iter().find(|c| c.name == case.name) {
            errors.push(Diagnostic::at(
                &case.file,
                (1, 1),
                "name",
                format!(
                    "case name `{}` is already used by {}",
                    case.name,
                    first.file.display()
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(Diagnostics(errors))
    }
}

/// Parses one case from text; `file` is used in error messages only.
pub fn parse(file: &Path, text: &str) -> Result<Case, Diagnostics> {
    validate::parse(file, text).map_err(Diagnostics)
}
