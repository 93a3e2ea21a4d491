//! Case files: YAML → validated [`Case`]s, or errors that name file, line, column and field.
//!
//! `prescan` refuses deep nesting and duplicate keys before anything else reads the YAML,
//! `model` is the serde shape of the declarations and `steps` the step enum, `validate`
//! checks names, references, socket lifetimes, values and version ranges across the whole
//! case, `locate` turns a field path back into a line and column, `types` lays out key and
//! value types.

mod locate;
mod model;
mod prescan;
pub mod steps;
pub mod types;
mod validate;
pub mod version;

use std::{
    fmt,
    io::Read,
    path::{Path, PathBuf},
};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use self::{
    steps::Op,
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
    /// `3`, `3.1` inside a fork, `setup.2` for set-up: counted from 1, while the field path
    /// of the same step in a validation error counts from 0 (`steps[2]`, `steps[2].fork[0]`).
    pub id: String,
    /// What the step does, for reports: `update store[s] = 7 (NOEXIST)`.
    pub label: String,
    pub op: Op,
    pub expect: Expectation,
    /// A fork's steps, checked; empty for other steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Step>,
}

/// The socket a map operation is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyRef {
    Open(String),
    /// The number a closed socket had: deliberately stale.
    Closed(String),
    /// A number as the case gives it (never opened, negative, past the table).
    Raw(i32),
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
    /// A sock_diag answer for the socket carrying exactly these storages (JSON object of
    /// map name → value, `any` allowed).
    Storages(serde_json::Value),
    /// The sock_diag dump did not list the socket.
    NotListed,
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
                            ExpectedDelete::Returned(v) => crate::errno::describe_return(*v),
                            ExpectedDelete::NoSocket => "not called (no socket)".to_string(),
                        }
                    ));
                }
                write!(f, "{}", parts.join(", "))
            }
            Self::NoRecord => write!(f, "no record (the program did not run for the socket)"),
            Self::Rejected(text) => write!(f, "rejected at load, log containing {text:?}"),
            Self::Storages(storages) => write!(f, "storages {storages}"),
            Self::NotListed => write!(f, "not listed by the dump"),
        }
    }
}

/// A problem in a case file, located as precisely as the YAML allows.
#[derive(Debug, Clone)]
pub struct CaseError {
    pub file: PathBuf,
    /// 1-based line and column; `None` for a problem with the file as a whole (missing,
    /// unreadable, too large), which has no place in it to point at.
    pub location: Option<(usize, usize)>,
    /// Dotted path of the offending field, e.g. `steps[2].update.map`.
    pub field: String,
    pub message: String,
}

impl CaseError {
    /// A problem with the file or directory itself rather than a place in it.
    fn of_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            location: None,
            field: String::new(),
            message: message.into(),
        }
    }
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for CaseError {}

/// Every problem found while loading cases; loading goes on past a bad file so one run
/// reports them all.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct LoadErrors {
    pub errors: Vec<CaseError>,
}

/// The largest case file read, in bytes. The largest case in cases/ is under 3 KB; 1 MiB is
/// hundreds of times that, and bounds what parsing and validation may cost (a 50 MB file
/// took gigabytes). Reading stops one byte past it, so a file that never ends (a symlink to
/// /dev/zero) costs no more.
pub const MAX_CASE_FILE_BYTES: u64 = 1 << 20;

/// Finds case files: each path is a `.yaml`/`.yml` file or a directory searched
/// recursively (following symlinks); the result is sorted so runs are deterministic.
/// A `.yaml` entry that is not a regular file (a FIFO, a device) and a directory symlink
/// that leads back to a directory being searched are errors, not skipped.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadErrors> {
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
                errors.push(CaseError::of_file(path, "no such file or directory"));
            }
            Err(e) => errors.push(CaseError::of_file(path, format!("cannot read: {e}"))),
        }
    }
    files.sort();
    files.dedup();
    errors.sort_by(|a, b| a.file.cmp(&b.file));
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(LoadErrors { errors })
    }
}

/// A directory's identity, which every path to it (through symlinks too) shares.
fn dir_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

fn not_regular(path: &Path) -> CaseError {
    CaseError::of_file(
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
    errors: &mut Vec<CaseError>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(CaseError::of_file(
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
                errors.push(CaseError::of_file(
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
                    errors.push(CaseError::of_file(
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
                errors.push(CaseError::of_file(&path, format!("cannot read: {e}")))
            }
            // Neither a case nor a directory of cases (a dangling link, a socket…).
            Ok(_) | Err(_) => {}
        }
    }
}

/// Reads a case file: at most [`MAX_CASE_FILE_BYTES`] (one byte more tells a larger file),
/// and UTF-8, with the place of the first byte that is not.
fn read_case(file: &Path) -> Result<String, CaseError> {
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_CASE_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| CaseError::of_file(file, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_CASE_FILE_BYTES {
        return Err(CaseError::of_file(
            file,
            format!(
                "larger than {MAX_CASE_FILE_BYTES} bytes (1 MiB), the most a case file may be; \
                 real cases are a few KB"
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
        let line = valid.matches('\n').count() + 1;
        let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
        let column = valid[line_start..].chars().count() + 1;
        CaseError {
            file: file.to_path_buf(),
            location: Some((line, column)),
            field: String::new(),
            message: format!(
                "not valid UTF-8 (byte {:#04x}): a case file is UTF-8 text",
                e.as_bytes()[e.utf8_error().valid_up_to()]
            ),
        }
    })
}

/// Loads and validates every case under `paths`. Duplicate case names are errors too,
/// since reports and `--filter` identify cases by name.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Case>, LoadErrors> {
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
            errors.push(CaseError {
                file: case.file.clone(),
                location: Some((1, 1)),
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
