//! Checks a parsed case as a whole and builds the validated [`Case`].
//!
//! Every problem is collected (not just the first) and located by its field path.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    str::FromStr,
};

use indexmap::IndexMap;
use serde_yaml::Value;

use super::{
    BatchKind, Case, CaseError, Expectation, Expected, ExpectedDelete, ExpectedGet, FIRST_KERNEL,
    Family, KeyRef, MapSpec, Op, ProgramSpec, Requirements, SockType, SocketSource, SocketSpec,
    Step, Variant, did_you_mean,
    locate::{FieldPath, Locator, Point},
    model::{
        BatchArgs, CaseFile, MapDecl, MapOpArgs, ObserveArgs, ProgramDecl, SocketDecl, SockoptArgs,
        TransferArgs, VariantDecl,
    },
    prescan, suggest,
    types::Type,
    version::{KernelVersion, VersionRange},
};

/// Step operations, with the one-line summary used in error messages.
const OPERATIONS: &[&str] = &[
    "create_map",
    "socket",
    "close",
    "drop_capabilities",
    "update",
    "lookup",
    "delete",
    "lookup_and_delete",
    "get_next_key",
    "lookup_batch",
    "update_batch",
    "delete_batch",
    "lookup_and_delete_batch",
    "send",
    "recv",
    "fork",
    "attach",
    "detach",
    "observe",
    "setsockopt",
    "getsockopt",
];

/// The program type name that selects sock_create's program with a delete call.
const SOCK_CREATE_DELETE: &str = "sock_create_delete";

/// Operations a forked child may run: map operations and close, which need no allocation
/// between fork and exit.
const CHILD_OPERATIONS: &[&str] = &["update", "lookup", "delete", "close"];

const MAP_FLAGS: &[(&str, u32)] = &[
    ("NO_PREALLOC", 1 << 0),
    ("NO_COMMON_LRU", 1 << 1),
    ("NUMA_NODE", 1 << 2),
    ("RDONLY", 1 << 3),
    ("WRONLY", 1 << 4),
    ("STACK_BUILD_ID", 1 << 5),
    ("ZERO_SEED", 1 << 6),
    ("RDONLY_PROG", 1 << 7),
    ("WRONLY_PROG", 1 << 8),
    ("CLONE", 1 << 9),
    ("MMAPABLE", 1 << 10),
    ("PRESERVE_ELEMS", 1 << 11),
    ("INNER_MAP", 1 << 12),
];

/// The most bytes of values one case may build while it is validated: each update's bytes
/// and each expected value count at their type's size. The largest case in cases/ builds
/// about 84 KB; 1 MiB is 16 values of the kernel's largest (just under 64 KiB). Types are
/// bounded by [`super::types::MAX_TYPE_SIZE`], but without this a 1 MiB file of one-line
/// updates of a 1 MiB type would still build tens of gigabytes. An expected value is JSON,
/// about 32 bytes per element, so this also keeps those under about 32 MB.
const MAX_CASE_VALUE_BYTES: u32 = 1 << 20;

const UPDATE_FLAGS: &[(&str, u64)] = &[("ANY", 0), ("NOEXIST", 1), ("EXIST", 2), ("F_LOCK", 4)];
const LOOKUP_FLAGS: &[(&str, u64)] = &[("F_LOCK", 4)];
const GET_FLAGS: &[(&str, u64)] = &[("F_CREATE", 1)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    NotYet,
    Open,
    Closed,
}

/// What validation tracks while walking the steps in order.
#[derive(Clone, Default)]
struct State {
    maps: HashMap<String, Life>,
    sockets: HashMap<String, Life>,
    /// Open: attached.
    programs: HashMap<String, Life>,
}

struct Validator<'a> {
    file: &'a Path,
    locator: Locator<'a>,
    errors: Vec<CaseError>,
    min_version: KernelVersion,
    /// Bytes of values built so far, against [`MAX_CASE_VALUE_BYTES`].
    value_bytes: u32,
    /// Declarations that failed validation, by kind (`map`, `socket`, `program`) and name.
    invalid_declarations: std::collections::HashSet<(&'static str, String)>,
}

pub(super) fn parse(file: &Path, text: &str) -> Result<Case, Vec<CaseError>> {
    let problems = prescan::scan(text);
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|p| CaseError {
                file: file.to_path_buf(),
                location: Some((p.line, p.column)),
                field: p.path.to_string(),
                message: p.message,
            })
            .collect());
    }
    let mut v = Validator {
        file,
        locator: Locator::new(text),
        errors: Vec::new(),
        min_version: FIRST_KERNEL,
        value_bytes: 0,
        invalid_declarations: std::collections::HashSet::new(),
    };
    let raw: CaseFile =
        match serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text)) {
            Ok(raw) => raw,
            Err(e) => {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let location = inner.location().map(|l| (l.line(), l.column()));
                let mut message = inner.to_string();
                // The location is reported in front; drop serde_yaml's copy of it.
                if let Some(l) = inner.location() {
                    message = message
                        .replace(&format!(" at line {} column {}", l.line(), l.column()), "");
                }
                // serde_yaml puts its own, shorter path in front; ours is in `field`.
                if let Some((prefix, rest)) = message.split_once(": ")
                    && !prefix.contains(' ')
                {
                    message = rest.to_string();
                }
                // A syntax error has no meaningful path: serde_path_to_error shows `?` there.
                let field = field.split(".?").next().unwrap_or_default();
                let field = if field == "." || field == "?" {
                    String::new()
                } else {
                    field.to_string()
                };
                let message = out_of_range(&message).unwrap_or_else(|| with_suggestion(&message));
                return Err(vec![CaseError {
                    file: file.to_path_buf(),
                    location,
                    field,
                    message,
                }]);
            }
        };
    let case = v.case(raw);
    if v.errors.is_empty() {
        Ok(case)
    } else {
        Err(v.errors)
    }
}

/// serde_yaml reads an integer beyond 64 bits as u128 or i128, then says "invalid type:
/// integer `N` as u128, expected u32"; this says plainly that the integer is out of range.
fn out_of_range(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: integer `")?;
    let (number, rest) = rest.split_once('`')?;
    let expected = rest
        .strip_prefix(" as u128, expected ")
        .or_else(|| rest.strip_prefix(" as i128, expected "))?;
    Some(if expected == "any YAML value" {
        // A value checked later against the map's type, which is at most 64-bit.
        format!("the integer {number} is out of range: integers in a case have at most 64 bits")
    } else {
        format!("the integer {number} is out of range for this field ({expected})")
    })
}

/// Adds "did you mean" to serde's unknown-field and unknown-variant messages, which list
/// the expected names in backquotes.
fn with_suggestion(message: &str) -> String {
    let unknown = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix));
    let Some(rest) = unknown else {
        return message.to_string();
    };
    let given = rest.split('`').next().unwrap_or_default();
    let expected: Vec<&str> = rest
        .split_once("expected")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    format!("{message}{}", did_you_mean(given, expected))
}

impl Validator<'_> {
    fn error(&mut self, path: &FieldPath, point: Point, message: impl Into<String>) {
        let location = self.locator.locate(path, point);
        self.errors.push(CaseError {
            file: self.file.to_path_buf(),
            location,
            field: path.to_string(),
            message: message.into(),
        });
    }

    /// Counts a value of `ty` against [`MAX_CASE_VALUE_BYTES`] before it is built; the error
    /// is reported once, where the total first goes over.
    fn charge(&mut self, path: &FieldPath, ty: &Type) -> bool {
        let before = self.value_bytes;
        self.value_bytes = before.saturating_add(ty.size());
        if self.value_bytes <= MAX_CASE_VALUE_BYTES {
            return true;
        }
        if before <= MAX_CASE_VALUE_BYTES {
            self.error(
                path,
                Point::Value,
                format!("the case's values (updates and expected values, at their type's size) add up to more than {MAX_CASE_VALUE_BYTES} bytes (1 MiB) here, the most one case may build; split the case"),
            );
        }
        false
    }

    /// A value or type that does not fit, located at the field inside it that is wrong.
    fn value_error(&mut self, path: &FieldPath, e: super::types::ValueMismatch) {
        let at = e
            .path
            .iter()
            .fold(path.clone(), |at, field| at.key(field.as_str()));
        self.error(&at, Point::Value, e.problem);
    }

    /// An undefined name: says which names exist and which one was probably meant. A name
    /// whose declaration failed is not reported again.
    fn unknown_name<'n>(
        &mut self,
        path: &FieldPath,
        what: &str,
        given: &str,
        known: impl Iterator<Item = &'n str> + Clone,
    ) {
        if self
            .invalid_declarations
            .iter()
            .any(|(kind, name)| *kind == what && name == given)
        {
            return;
        }
        let hint = match suggest(given, known.clone()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => {
                let names: Vec<&str> = known.collect();
                if names.is_empty() {
                    format!("; the case declares no {what}s")
                } else {
                    format!("; declared: {}", names.join(", "))
                }
            }
        };
        self.error(
            path,
            Point::Value,
            format!("no {what} named `{given}`{hint}"),
        );
    }

    fn case(&mut self, raw: CaseFile) -> Case {
        let root = FieldPath::default();
        let valid_name = !raw.name.is_empty()
            && raw
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !valid_name {
            self.error(
                &root.key("name"),
                Point::Value,
                "a case name is lowercase letters, digits, `-`, `_` and `.` (it names the case in reports and --filter)",
            );
        }
        if raw.description.trim().is_empty() {
            self.error(
                &root.key("description"),
                Point::Value,
                "say what the case checks and cite where the fact comes from",
            );
        }
        let requires = self.requirements(&raw);
        let maps = self.maps(&raw.maps);
        let sockets = self.sockets(&raw.sockets);
        let programs = self.programs(&raw.programs, &maps);
        // A declaration that failed has its own error: uses of its name are not reported
        // again as undeclared.
        for (what, declared, valid) in [
            (
                "map",
                raw.maps.keys().collect::<Vec<_>>(),
                maps.keys().collect::<Vec<_>>(),
            ),
            (
                "socket",
                raw.sockets.keys().collect(),
                sockets.keys().collect(),
            ),
            (
                "program",
                raw.programs.keys().collect(),
                programs.keys().collect(),
            ),
        ] {
            for name in declared.into_iter().filter(|name| !valid.contains(name)) {
                self.invalid_declarations.insert((what, name.clone()));
            }
        }

        // A declared map or socket is created before the first step unless a step creates it.
        let created_by_step = |op: &str, name: &str| {
            raw.steps
                .iter()
                .any(|s| s.get(op).and_then(Value::as_str) == Some(name))
        };
        let mut state = State::default();
        let mut steps = Vec::new();
        for (name, spec) in &maps {
            if spec.bpf.is_some() {
                // The eBPF object creates its maps when the case starts.
                state.maps.insert(name.clone(), Life::Open);
                continue;
            }
            if created_by_step("create_map", name) {
                state.maps.insert(name.clone(), Life::NotYet);
            } else {
                state.maps.insert(name.clone(), Life::Open);
                steps.push(Step {
                    id: format!("setup.{}", steps.len() + 1),
                    label: format!("create map {name}"),
                    op: Op::CreateMap(name.clone()),
                    expect: Expectation::always(Expected::Ok),
                });
            }
        }
        for name in sockets.keys() {
            state.sockets.insert(name.clone(), Life::NotYet);
        }
        for (name, spec) in &sockets {
            if created_by_step("socket", name) {
                continue;
            }
            let path = root.key("sockets").key(name.as_str());
            self.check_socket_creation(&path, name, spec, &sockets, &state);
            state.sockets.insert(name.clone(), Life::Open);
            steps.push(Step {
                id: format!("setup.{}", steps.len() + 1),
                label: format!("create socket {name} ({})", describe_socket(spec)),
                op: Op::Socket(name.clone()),
                expect: Expectation::always(Expected::Ok),
            });
        }
        for name in programs.keys() {
            state.programs.insert(name.clone(), Life::NotYet);
        }
        let ctx = Context {
            maps: &maps,
            sockets: &sockets,
            programs: &programs,
        };
        let steps_path = root.key("steps");
        if raw.steps.is_empty() {
            self.error(&steps_path, Point::Value, "a case needs at least one step");
        }
        // Two numberings, on purpose: a field path indexes the YAML list from 0 (`steps[0]`,
        // as in any YAML path), while a step's id, which run reports and any text that says
        // "step N" use, counts from 1 (`1`, `1.2` in a fork). Never mix them in one message.
        for (i, raw_step) in raw.steps.iter().enumerate() {
            if let Some(step) = self.step(
                &steps_path.index(i),
                (i + 1).to_string(),
                raw_step,
                &ctx,
                &mut state,
                false,
            ) {
                steps.push(step);
            }
        }
        Case {
            name: raw.name,
            description: raw.description.trim().to_string(),
            file: self.file.to_path_buf(),
            requires,
            maps,
            sockets,
            programs,
            steps,
        }
    }

    fn requirements(&mut self, raw: &CaseFile) -> Requirements {
        let path = FieldPath::default().key("requires");
        if let Some(kernel) = raw.requires.kernel {
            if kernel < FIRST_KERNEL {
                self.error(
                    &path.key("kernel"),
                    Point::Value,
                    format!("SK_STORAGE maps exist from {FIRST_KERNEL} on; require {FIRST_KERNEL} or later"),
                );
            }
            self.min_version = kernel.max(FIRST_KERNEL);
        }
        let mut capabilities = Vec::new();
        for (i, name) in raw.requires.capabilities.iter().enumerate() {
            match parse_capability(name) {
                Ok(cap) => capabilities.push(cap),
                Err(message) => {
                    self.error(&path.key("capabilities").index(i), Point::Value, message)
                }
            }
        }
        Requirements {
            kernel: raw.requires.kernel,
            capabilities,
        }
    }

    fn maps(&mut self, decls: &IndexMap<String, MapDecl>) -> IndexMap<String, MapSpec> {
        let mut maps = IndexMap::new();
        for (name, decl) in decls {
            let path = FieldPath::default().key("maps").key(name.as_str());
            let spec = match &decl.bpf {
                Some(object_map) => self.object_map(&path, object_map, decl),
                None => self.syscall_map(&path, decl),
            };
            if let Some(spec) = spec {
                maps.insert(name.clone(), spec);
            }
        }
        maps
    }

    /// One of the eBPF object's maps: its attributes are the object's, so none may be set.
    fn object_map(
        &mut self,
        path: &FieldPath,
        object_map: &str,
        decl: &MapDecl,
    ) -> Option<MapSpec> {
        let set = [
            ("key", decl.key.is_some()),
            ("value", decl.value.is_some()),
            ("key_size", decl.key_size.is_some()),
            ("value_size", decl.value_size.is_some()),
            ("max_entries", decl.max_entries.is_some()),
            ("flags", decl.flags.is_some()),
            ("btf", decl.btf.is_some()),
        ];
        if let Some((field, _)) = set.iter().find(|(_, set)| *set) {
            self.error(
                &path.key(*field),
                Point::Key,
                format!("`{field}` is fixed by the eBPF object for a `bpf:` map (value {{ value: u64, events: u64, bytes: u64 }})"),
            );
            return None;
        }
        let storage = match object_map {
            "no_prealloc" => crate::catalogue::StorageMap::NoPrealloc,
            "clone" => crate::catalogue::StorageMap::Clone,
            other => {
                let hint = did_you_mean(other, ["no_prealloc", "clone"]);
                self.error(
                    &path.key("bpf"),
                    Point::Value,
                    format!("the eBPF object has maps `no_prealloc` (NO_PREALLOC) and `clone` (NO_PREALLOC|CLONE), not `{other}`{hint}"),
                );
                return None;
            }
        };
        let key = Type::Int {
            bytes: 4,
            signed: true,
        };
        let value = object_value_type();
        Some(MapSpec {
            key_size: key.size(),
            value_size: value.size(),
            key,
            value,
            max_entries: 0,
            flags: storage.map_flags(),
            btf: true,
            bpf: Some(storage),
        })
    }

    fn syscall_map(&mut self, path: &FieldPath, decl: &MapDecl) -> Option<MapSpec> {
        let key = match &decl.key {
            Some(expr) => self.type_of(&path.key("key"), expr),
            None => Some(Type::Int {
                bytes: 4,
                signed: true,
            }),
        };
        let value = match &decl.value {
            Some(expr) => self.type_of(&path.key("value"), expr),
            None => {
                self.error(
                    path,
                    Point::Value,
                    "a map needs a `value` type (or `bpf:` for one of the eBPF object's maps)",
                );
                None
            }
        };
        let mut flags = 0;
        let names = decl
            .flags
            .clone()
            .unwrap_or_else(|| vec!["NO_PREALLOC".into()]);
        for (i, flag) in names.iter().enumerate() {
            match MAP_FLAGS.iter().find(|(n, _)| n == flag) {
                Some((_, bit)) => flags |= bit,
                None => {
                    let hint = did_you_mean(flag, MAP_FLAGS.iter().map(|(n, _)| *n));
                    self.error(
                        &path.key("flags").index(i),
                        Point::Value,
                        format!("unknown map flag `{flag}` (BPF_F_ prefix left out, e.g. NO_PREALLOC, CLONE){hint}"),
                    );
                }
            }
        }
        let (key, value) = (key?, value?);
        Some(MapSpec {
            key_size: decl.key_size.unwrap_or(key.size()),
            value_size: decl.value_size.unwrap_or(value.size()),
            key,
            value,
            max_entries: decl.max_entries.unwrap_or(0),
            flags,
            btf: decl.btf.unwrap_or(true),
            bpf: None,
        })
    }

    fn programs(
        &mut self,
        decls: &IndexMap<String, ProgramDecl>,
        maps: &IndexMap<String, MapSpec>,
    ) -> IndexMap<String, ProgramSpec> {
        let mut programs: IndexMap<String, ProgramSpec> = IndexMap::new();
        for (name, decl) in decls {
            let path = FieldPath::default().key("programs").key(name.as_str());
            // `sock_create_delete` names the sock_create hook's program with a delete call,
            // which its `delete: true` already selects.
            let kind_name = match decl.kind.as_str() {
                SOCK_CREATE_DELETE => "sock_create",
                other => other,
            };
            let Some(kind) = crate::catalogue::ProgramKind::from_name(kind_name) else {
                let mut known: Vec<&str> = crate::catalogue::ProgramKind::ALL
                    .iter()
                    .map(|k| k.name())
                    .collect();
                if let Some(at) = known.iter().position(|name| *name == "sock_create") {
                    known.insert(at + 1, SOCK_CREATE_DELETE);
                }
                let hint = did_you_mean(&decl.kind, known.iter().copied());
                self.error(
                    &path.key("type"),
                    Point::Value,
                    format!(
                        "unknown program `{}` (the eBPF object has {}){hint}",
                        decl.kind,
                        known.join(", ")
                    ),
                );
                continue;
            };
            if let Some((other, _)) = programs.iter().find(|(_, p)| p.kind == kind) {
                self.error(&path.key("type"), Point::Value, format!("program `{other}` is already the object's {}: a case uses each program once", kind.name()));
                continue;
            }
            let map = match maps.get(&decl.map).map(|m| m.bpf) {
                Some(Some(storage)) => storage,
                Some(None) => {
                    self.error(&path.key("map"), Point::Value, format!("map `{}` is created by bpf(2); programs use the object's maps: declare one with `bpf: no_prealloc` or `bpf: clone`", decl.map));
                    continue;
                }
                None => {
                    self.unknown_name(
                        &path.key("map"),
                        "map",
                        &decl.map,
                        maps.keys().map(String::as_str),
                    );
                    continue;
                }
            };
            let get = match &decl.get {
                None => None,
                Some(get) => {
                    let flags = match &get.flags {
                        None => 0,
                        Some(f) => match self.flags(f, &path.key("get").key("flags"), GET_FLAGS) {
                            Some(bits) => bits,
                            None => continue,
                        },
                    };
                    Some(crate::catalogue::Call::Get {
                        flags,
                        init: get.init,
                    })
                }
            };
            // `get:` and `delete:` declare the call list [get], [delete] or [get, delete].
            let calls: Vec<crate::catalogue::Call> = get
                .into_iter()
                .chain(decl.delete.then_some(crate::catalogue::Call::Delete))
                .collect();
            let calls = match (&decl.callbacks, kind) {
                (callbacks, crate::catalogue::ProgramKind::SockOps) => {
                    let mut ops = Vec::new();
                    match callbacks {
                        Some(names) => {
                            for (i, cb) in names.iter().enumerate() {
                                match crate::catalogue::SockOpsOp::from_name(cb) {
                                    Some(op) => ops.push(op),
                                    None => self.error(&path.key("callbacks").index(i), Point::Value, format!("unknown sock_ops callback `{cb}` (uapi name without BPF_SOCK_OPS_, e.g. ACTIVE_ESTABLISHED_CB)")),
                                }
                            }
                        }
                        None => ops.extend([
                            crate::catalogue::SockOpsOp::ACTIVE_ESTABLISHED_CB,
                            crate::catalogue::SockOpsOp::PASSIVE_ESTABLISHED_CB,
                        ]),
                    }
                    crate::catalogue::ProgramCalls::on_callbacks(&ops, &calls)
                }
                (Some(_), _) => {
                    self.error(
                        &path.key("callbacks"),
                        Point::Key,
                        "`callbacks` applies to sock_ops programs only",
                    );
                    continue;
                }
                (None, _) => crate::catalogue::ProgramCalls::EachRun(calls),
            };
            let params = crate::catalogue::ProgramParams::new(map, calls);
            programs.insert(
                name.clone(),
                ProgramSpec {
                    kind,
                    map: decl.map.clone(),
                    params,
                },
            );
        }
        programs
    }

    fn type_of(&mut self, path: &FieldPath, expr: &super::types::TypeExpr) -> Option<Type> {
        Type::from_expr(expr)
            .map_err(|e| self.value_error(path, e))
            .ok()
    }

    fn sockets(&mut self, decls: &IndexMap<String, SocketDecl>) -> IndexMap<String, SocketSpec> {
        let mut sockets = IndexMap::new();
        let names: Vec<&str> = decls.keys().map(String::as_str).collect();
        for (name, decl) in decls {
            let path = FieldPath::default().key("sockets").key(name.as_str());
            let kinds = [
                ("family", decl.family.is_some()),
                ("accept", decl.accept.is_some()),
                ("dup", decl.dup.is_some()),
                ("file", decl.file.is_some()),
            ];
            let given: Vec<&str> = kinds
                .iter()
                .filter(|(_, set)| *set)
                .map(|(k, _)| *k)
                .collect();
            if given.len() != 1 {
                self.error(
                    &path,
                    Point::Value,
                    format!(
                        "say what the descriptor is with exactly one of `family` (a new socket), `accept`, `dup` or `file`; found {}",
                        if given.is_empty() { "none".to_string() } else { given.join(", ") }
                    ),
                );
                continue;
            }
            let mut refers_to_itself = false;
            for (field, target) in [
                ("connect", &decl.connect),
                ("accept", &decl.accept),
                ("dup", &decl.dup),
                ("reuse_fd_of", &decl.reuse_fd_of),
            ] {
                if let Some(target) = target {
                    if target == name {
                        self.error(
                            &path.key(field),
                            Point::Value,
                            format!("`{name}` cannot refer to itself"),
                        );
                        refers_to_itself = true;
                    } else if !decls.contains_key(target) {
                        self.unknown_name(
                            &path.key(field),
                            "socket",
                            target,
                            names.iter().copied(),
                        );
                    }
                }
            }
            // Its ordering against itself would only repeat the same mistake.
            if refers_to_itself {
                continue;
            }
            let only_new = [
                ("type", decl.kind.is_some()),
                ("bind", decl.bind),
                ("listen", decl.listen),
                ("connect", decl.connect.is_some()),
            ];
            let source = if let Some(family) = &decl.family {
                let family = match family.as_str() {
                    "inet" => Some(Family::Inet),
                    "inet6" => Some(Family::Inet6),
                    "unix" => Some(Family::Unix),
                    other => {
                        let hint = did_you_mean(other, ["inet", "inet6", "unix"]);
                        self.error(
                            &path.key("family"),
                            Point::Value,
                            format!("unknown family `{other}`: inet, inet6 or unix{hint}"),
                        );
                        None
                    }
                };
                let kind = match decl.kind.as_deref().unwrap_or("stream") {
                    "stream" => Some(SockType::Stream),
                    "dgram" => Some(SockType::Dgram),
                    other => {
                        let hint = did_you_mean(other, ["stream", "dgram"]);
                        self.error(
                            &path.key("type"),
                            Point::Value,
                            format!("unknown socket type `{other}`: stream or dgram{hint}"),
                        );
                        None
                    }
                };
                if decl.listen && kind == Some(SockType::Dgram) {
                    self.error(
                        &path.key("listen"),
                        Point::Key,
                        "only stream sockets listen; bind a dgram socket instead",
                    );
                }
                if decl.connect.is_some() && (decl.bind || decl.listen) {
                    self.error(
                        &path.key("connect"),
                        Point::Key,
                        "a connecting socket neither binds nor listens here",
                    );
                }
                match (family, kind) {
                    (Some(family), Some(kind)) => SocketSource::New {
                        family,
                        kind,
                        bind: decl.bind || decl.listen,
                        listen: decl.listen,
                        connect: decl.connect.clone(),
                    },
                    _ => continue,
                }
            } else {
                if let Some((field, _)) = only_new.iter().find(|(_, set)| *set) {
                    self.error(
                        &path.key(*field),
                        Point::Key,
                        format!("`{field}` applies to new sockets (with `family`)"),
                    );
                    continue;
                }
                if let Some(listener) = &decl.accept {
                    SocketSource::Accept(listener.clone())
                } else if let Some(of) = &decl.dup {
                    SocketSource::Dup(of.clone())
                } else {
                    SocketSource::File(PathBuf::from(decl.file.clone().unwrap_or_default()))
                }
            };
            sockets.insert(
                name.clone(),
                SocketSpec {
                    source,
                    reuse_fd_of: decl.reuse_fd_of.clone(),
                },
            );
        }
        // Targets must be of the right kind; checked once all are known.
        for (name, spec) in &sockets {
            let path = FieldPath::default().key("sockets").key(name.as_str());
            match &spec.source {
                SocketSource::New {
                    family,
                    kind,
                    connect: Some(target),
                    ..
                } => match sockets.get(target).map(|t| &t.source) {
                    Some(SocketSource::New {
                        family: tf,
                        kind: tk,
                        bind,
                        ..
                    }) => {
                        if tf != family || tk != kind {
                            self.error(
                                &path.key("connect"),
                                Point::Value,
                                format!("`{target}` has another family or type"),
                            );
                        } else if !bind {
                            self.error(
                                &path.key("connect"),
                                Point::Value,
                                format!("`{target}` has no address: give it `listen: true` (stream) or `bind: true` (dgram)"),
                            );
                        }
                    }
                    Some(_) => self.error(
                        &path.key("connect"),
                        Point::Value,
                        format!("`{target}` is not a new socket"),
                    ),
                    None => {}
                },
                SocketSource::Accept(listener) => {
                    let listens = matches!(
                        sockets.get(listener).map(|t| &t.source),
                        Some(SocketSource::New { listen: true, .. })
                    );
                    if sockets.contains_key(listener) && !listens {
                        self.error(
                            &path.key("accept"),
                            Point::Value,
                            format!("`{listener}` does not listen: give it `listen: true`"),
                        );
                    }
                }
                _ => {}
            }
        }
        sockets
    }

    /// The sockets a new descriptor depends on must be open, and a reused number free.
    fn check_socket_creation(
        &mut self,
        path: &FieldPath,
        name: &str,
        spec: &SocketSpec,
        sockets: &IndexMap<String, SocketSpec>,
        state: &State,
    ) {
        let needs_open = match &spec.source {
            SocketSource::New { connect, .. } => connect.clone().map(|c| ("connect", c)),
            SocketSource::Accept(l) => Some(("accept", l.clone())),
            SocketSource::Dup(s) => Some(("dup", s.clone())),
            SocketSource::File(_) => None,
        };
        if let Some((field, target)) = needs_open {
            match state.sockets.get(&target) {
                Some(Life::Open) | None => {}
                Some(Life::NotYet) => {
                    let when = if sockets.get_index_of(&target) > sockets.get_index_of(name) {
                        "is declared after it"
                    } else {
                        "is created by a later step"
                    };
                    self.error(
                        &path.key(field),
                        Point::Value,
                        format!("`{name}` needs `{target}`, which {when}: declare `{target}` first, or create `{name}` with a `socket` step"),
                    );
                }
                Some(Life::Closed) => self.error(
                    &path.key(field),
                    Point::Value,
                    format!("`{target}` is closed by then"),
                ),
            }
        }
        if let Some(old) = &spec.reuse_fd_of
            && state.sockets.get(old) != Some(&Life::Closed)
        {
            self.error(
                &path.key("reuse_fd_of"),
                Point::Value,
                format!("`{old}` must be closed before `{name}` can take its number: create `{name}` with a `socket` step after `close: {old}`"),
            );
        }
    }

    fn step(
        &mut self,
        path: &FieldPath,
        id: String,
        raw: &IndexMap<String, Value>,
        ctx: &Context<'_>,
        state: &mut State,
        in_child: bool,
    ) -> Option<Step> {
        let allowed = if in_child {
            CHILD_OPERATIONS
        } else {
            OPERATIONS
        };
        let mut op_name = None;
        for key in raw.keys() {
            if key == "expect" {
                continue;
            }
            if !allowed.contains(&key.as_str()) {
                let hint = match suggest(key, allowed.iter().copied().chain(["expect"])) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None if in_child && OPERATIONS.contains(&key.as_str()) => {
                        format!("; a forked child runs only {}", CHILD_OPERATIONS.join(", "))
                    }
                    None => format!("; operations: {}", allowed.join(", ")),
                };
                self.error(
                    &path.key(key.as_str()),
                    Point::Key,
                    format!("unknown step key `{key}`{hint}"),
                );
                return None;
            }
            if let Some(first) = op_name {
                self.error(
                    &path.key(key.as_str()),
                    Point::Key,
                    format!("a step does one thing: `{first}` and `{key}` need two steps"),
                );
                return None;
            }
            op_name = Some(key.as_str());
        }
        let Some(op_name) = op_name else {
            self.error(
                path,
                Point::Value,
                format!("a step needs an operation: {}", allowed.join(", ")),
            );
            return None;
        };
        let Some(expect) = raw.get("expect") else {
            self.error(
                path,
                Point::Value,
                format!("every step says what it expects: add `expect:` to this `{op_name}` step"),
            );
            return None;
        };
        let arg = &raw[op_name];
        let arg_path = path.key(op_name);
        let (op, label, outcomes) = self.op(op_name, arg, &arg_path, &id, ctx, state, in_child)?;
        let expect = self.expectation(&path.key("expect"), expect, &outcomes)?;
        Some(Step {
            id,
            label,
            op,
            expect,
        })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the validation context of one step"
    )]
    fn op(
        &mut self,
        name: &str,
        arg: &Value,
        path: &FieldPath,
        id: &str,
        ctx: &Context<'_>,
        state: &mut State,
        in_child: bool,
    ) -> Option<(Op, String, Outcomes)> {
        match name {
            "create_map" => {
                let map = self.name_arg(arg, path, "map", ctx.maps.keys())?;
                match state.maps.get(&map) {
                    Some(Life::NotYet) => {}
                    _ => {
                        self.error(
                            path,
                            Point::Value,
                            format!("map `{map}` is already created by an earlier step"),
                        );
                        return None;
                    }
                }
                state.maps.insert(map.clone(), Life::Open);
                Some((
                    Op::CreateMap(map.clone()),
                    format!("create map {map}"),
                    Outcomes::Status,
                ))
            }
            "socket" => {
                let socket = self.name_arg(arg, path, "socket", ctx.sockets.keys())?;
                if state.sockets.get(&socket) != Some(&Life::NotYet) {
                    self.error(path, Point::Value, format!("socket `{socket}` is already created; declare another name for a new socket"));
                    return None;
                }
                let spec = &ctx.sockets[&socket];
                let decl_path = FieldPath::default().key("sockets").key(socket.as_str());
                let before = self.errors.len();
                self.check_socket_creation(&decl_path, &socket, spec, ctx.sockets, state);
                if self.errors.len() > before {
                    return None;
                }
                state.sockets.insert(socket.clone(), Life::Open);
                let label = format!("create socket {socket} ({})", describe_socket(spec));
                Some((Op::Socket(socket), label, Outcomes::Status))
            }
            "close" => {
                let socket = self.open_socket(arg, path, ctx, state)?;
                state.sockets.insert(socket.clone(), Life::Closed);
                Some((
                    Op::Close(socket.clone()),
                    format!("close {socket}"),
                    Outcomes::Status,
                ))
            }
            "drop_capabilities" => {
                let names: Vec<String> = self.args(arg, path)?;
                let mut caps = Vec::new();
                for (i, n) in names.iter().enumerate() {
                    match parse_capability(n) {
                        Ok(c) => caps.push(c),
                        Err(message) => self.error(&path.index(i), Point::Value, message),
                    }
                }
                (caps.len() == names.len()).then(|| {
                    (
                        Op::DropCapabilities(caps),
                        format!("drop {}", names.join(", ")),
                        Outcomes::Status,
                    )
                })
            }
            "update" | "lookup" | "delete" | "lookup_and_delete" | "get_next_key" => {
                let args: MapOpArgs = self.args(arg, path)?;
                let map = self.created_map(&args.map, &path.key("map"), ctx, state)?;
                let spec = &ctx.maps[&map];
                let key = self.key_ref(&args, path, ctx, state, name == "get_next_key");
                let (takes_value, flag_table): (bool, &[(&str, u64)]) = match name {
                    "update" => (true, UPDATE_FLAGS),
                    "lookup" | "lookup_and_delete" => (false, LOOKUP_FLAGS),
                    _ => (false, &[]),
                };
                let value = match (&args.value, takes_value) {
                    (Some(_), true) if !self.charge(&path.key("value"), &spec.value) => {
                        return None;
                    }
                    (Some(v), true) => match spec.value.encode(v) {
                        Ok(bytes) => Some((bytes, render_yaml(v))),
                        Err(e) => {
                            self.value_error(&path.key("value"), e);
                            return None;
                        }
                    },
                    (None, true) => {
                        self.error(path, Point::Value, "update needs a `value`");
                        return None;
                    }
                    (Some(_), false) => {
                        self.error(
                            &path.key("value"),
                            Point::Key,
                            format!("{name} takes no value: the expected value goes in `expect`"),
                        );
                        return None;
                    }
                    (None, false) => None,
                };
                let flags = match &args.flags {
                    Some(_) if flag_table.is_empty() => {
                        self.error(
                            &path.key("flags"),
                            Point::Key,
                            format!("{name} takes no flags"),
                        );
                        return None;
                    }
                    Some(f) => self.flags(f, &path.key("flags"), flag_table)?,
                    None => 0,
                };
                let key = key?;
                let key_text = key.as_ref().map_or_else(|| "NULL".to_string(), render_key);
                let flag_text = render_flags(flags, flag_table);
                let (op, label) = match name {
                    "update" => {
                        let (bytes, text) = value.unwrap_or_default();
                        let key = key.unwrap_or(KeyRef::Open(String::new()));
                        (
                            Op::Update {
                                map: map.clone(),
                                key,
                                value: bytes,
                                flags,
                            },
                            format!("update {map}[{key_text}] = {text}{flag_text}"),
                        )
                    }
                    "lookup" => (
                        Op::Lookup {
                            map: map.clone(),
                            key: key.unwrap_or(KeyRef::Open(String::new())),
                            flags,
                        },
                        format!("lookup {map}[{key_text}]{flag_text}"),
                    ),
                    "delete" => (
                        Op::Delete {
                            map: map.clone(),
                            key: key.unwrap_or(KeyRef::Open(String::new())),
                        },
                        format!("delete {map}[{key_text}]"),
                    ),
                    "lookup_and_delete" => (
                        Op::LookupAndDelete {
                            map: map.clone(),
                            key: key.unwrap_or(KeyRef::Open(String::new())),
                            flags,
                        },
                        format!("lookup_and_delete {map}[{key_text}]{flag_text}"),
                    ),
                    _ => (
                        Op::GetNextKey {
                            map: map.clone(),
                            key,
                        },
                        format!("get_next_key {map} after {key_text}"),
                    ),
                };
                let outcomes = if matches!(name, "lookup" | "lookup_and_delete") {
                    Outcomes::Value(spec.value.clone())
                } else {
                    Outcomes::Status
                };
                Some((op, label, outcomes))
            }
            "lookup_batch" | "update_batch" | "delete_batch" | "lookup_and_delete_batch" => {
                let args: BatchArgs = self.args(arg, path)?;
                let map = self.created_map(&args.map, &path.key("map"), ctx, state)?;
                let mut keys = Vec::new();
                for (i, s) in args.sockets.iter().enumerate() {
                    keys.push(self.open_socket(
                        &Value::String(s.clone()),
                        &path.key("sockets").index(i),
                        ctx,
                        state,
                    )?);
                }
                let kind = match name {
                    "lookup_batch" => BatchKind::Lookup,
                    "update_batch" => BatchKind::Update,
                    "delete_batch" => BatchKind::Delete,
                    _ => BatchKind::LookupAndDelete,
                };
                let mut values = Vec::new();
                if kind == BatchKind::Update {
                    if args.values.len() != keys.len() {
                        self.error(
                            path,
                            Point::Value,
                            "update_batch needs one value per socket",
                        );
                        return None;
                    }
                    for (i, v) in args.values.iter().enumerate() {
                        let ty = &ctx.maps[&map].value;
                        if !self.charge(&path.key("values").index(i), ty) {
                            return None;
                        }
                        match ty.encode(v) {
                            Ok(bytes) => values.push(bytes),
                            Err(e) => {
                                self.value_error(&path.key("values").index(i), e);
                                return None;
                            }
                        }
                    }
                } else if !args.values.is_empty() {
                    self.error(
                        &path.key("values"),
                        Point::Key,
                        format!("{name} takes no values"),
                    );
                    return None;
                }
                let label = format!("{name} {map} [{}]", keys.join(", "));
                Some((
                    Op::Batch {
                        kind,
                        map,
                        keys,
                        values,
                    },
                    label,
                    Outcomes::Status,
                ))
            }
            "send" | "recv" => {
                let args: TransferArgs = self.args(arg, path)?;
                let socket = self.open_socket(
                    &Value::String(args.socket.clone()),
                    &path.key("socket"),
                    ctx,
                    state,
                )?;
                let label = format!("{name} {} bytes on {socket}", args.bytes);
                let op = if name == "send" {
                    Op::Send {
                        socket,
                        bytes: args.bytes,
                    }
                } else {
                    Op::Recv {
                        socket,
                        bytes: args.bytes,
                    }
                };
                Some((op, label, Outcomes::Status))
            }
            "attach" | "detach" => {
                let program = self.name_arg(arg, path, "program", ctx.programs.keys())?;
                let attached = state.programs.get(&program) == Some(&Life::Open);
                if (name == "attach") == attached {
                    let now = if attached {
                        "already attached"
                    } else {
                        "not attached"
                    };
                    self.error(
                        path,
                        Point::Value,
                        format!("program `{program}` is {now} here"),
                    );
                    return None;
                }
                let kind = ctx.programs[&program].kind;
                if name == "attach" {
                    state.programs.insert(program.clone(), Life::Open);
                    let label = format!("load and attach {program} ({})", kind.name());
                    Some((Op::Attach(program), label, Outcomes::Load))
                } else {
                    state.programs.insert(program.clone(), Life::Closed);
                    let label = format!("detach {program} ({})", kind.name());
                    Some((Op::Detach(program), label, Outcomes::Status))
                }
            }
            "observe" => {
                let args: ObserveArgs = self.args(arg, path)?;
                let program = self.name_arg(
                    &Value::String(args.program.clone()),
                    &path.key("program"),
                    "program",
                    ctx.programs.keys(),
                )?;
                let socket = self.name_arg(
                    &Value::String(args.socket.clone()),
                    &path.key("socket"),
                    "socket",
                    ctx.sockets.keys(),
                )?;
                if state.sockets.get(&socket) == Some(&Life::NotYet) {
                    self.error(
                        &path.key("socket"),
                        Point::Value,
                        format!("socket `{socket}` does not exist yet here"),
                    );
                    return None;
                }
                let spec = &ctx.programs[&program];
                let callback = match &args.callback {
                    None => None,
                    Some(_) if spec.kind != crate::catalogue::ProgramKind::SockOps => {
                        self.error(
                            &path.key("callback"),
                            Point::Key,
                            "`callback` applies to sock_ops programs only",
                        );
                        return None;
                    }
                    Some(cb) => match crate::catalogue::SockOpsOp::from_name(cb) {
                        Some(op) if spec.params.calls.on(op).is_some() => Some(op),
                        Some(_) => {
                            self.error(&path.key("callback"), Point::Value, format!("program `{program}` does not act on {cb}: add it to its `callbacks`"));
                            return None;
                        }
                        None => {
                            self.error(&path.key("callback"), Point::Value, format!("unknown sock_ops callback `{cb}` (uapi name without BPF_SOCK_OPS_)"));
                            return None;
                        }
                    },
                };
                let on = callback
                    .and_then(|c| c.name())
                    .map(|c| format!(" on {c}"))
                    .unwrap_or_default();
                let label = format!(
                    "observe {program} ({}) about {socket}{on}",
                    spec.kind.name()
                );
                // Declarations give every callback the same list.
                let lists = spec.params.calls.lists();
                let calls = |which: fn(&crate::catalogue::Call) -> bool| {
                    lists.iter().flat_map(|list| list.iter()).any(which)
                };
                let outcomes = Outcomes::Helpers {
                    get: calls(|c| matches!(c, crate::catalogue::Call::Get { .. })),
                    delete: calls(|c| matches!(c, crate::catalogue::Call::Delete)),
                };
                Some((
                    Op::Observe {
                        program,
                        socket,
                        callback,
                    },
                    label,
                    outcomes,
                ))
            }
            "setsockopt" | "getsockopt" => {
                let args: SockoptArgs = self.args(arg, path)?;
                let socket = self.open_socket(
                    &Value::String(args.socket.clone()),
                    &path.key("socket"),
                    ctx,
                    state,
                )?;
                match (name, args.value) {
                    ("setsockopt", Some(value)) => Some((
                        Op::SetStorageOpt {
                            socket: socket.clone(),
                            value,
                        },
                        format!("setsockopt(SOL_HARNESS) on {socket} = {value}"),
                        Outcomes::Status,
                    )),
                    ("getsockopt", None) => Some((
                        Op::GetStorageOpt {
                            socket: socket.clone(),
                        },
                        format!("getsockopt(SOL_HARNESS) on {socket}"),
                        Outcomes::Value(Type::Int {
                            bytes: 8,
                            signed: false,
                        }),
                    )),
                    ("setsockopt", None) => {
                        self.error(
                            path,
                            Point::Value,
                            "setsockopt needs the `value` the program stores",
                        );
                        None
                    }
                    _ => {
                        self.error(
                            &path.key("value"),
                            Point::Key,
                            "getsockopt takes no value: the expected one goes in `expect`",
                        );
                        None
                    }
                }
            }
            "fork" => {
                debug_assert!(!in_child, "CHILD_OPERATIONS has no fork");
                let raw_steps: Vec<IndexMap<String, Value>> = self.args(arg, path)?;
                if raw_steps.is_empty() {
                    self.error(path, Point::Value, "a fork lists the steps its child runs");
                    return None;
                }
                // The child has copies of the descriptors: what it closes stays open here.
                let mut child_state = state.clone();
                let mut steps = Vec::new();
                for (i, raw) in raw_steps.iter().enumerate() {
                    let step = self.step(
                        &path.index(i),
                        format!("{id}.{}", i + 1),
                        raw,
                        ctx,
                        &mut child_state,
                        true,
                    );
                    steps.extend(step);
                }
                (steps.len() == raw_steps.len()).then(|| {
                    (
                        Op::Fork(steps),
                        "fork: the child runs the steps below".to_string(),
                        Outcomes::Status,
                    )
                })
            }
            _ => unreachable!("operation names are checked against OPERATIONS"),
        }
    }

    fn args<T: serde::de::DeserializeOwned>(&mut self, arg: &Value, path: &FieldPath) -> Option<T> {
        match serde_yaml::from_value(arg.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let message = with_suggestion(&e.to_string());
                // Point at the offending key where serde names it.
                let at = message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split('`').next())
                    .map_or_else(|| path.clone(), |field| path.key(field));
                self.error(&at, Point::Key, message);
                None
            }
        }
    }

    fn name_arg<'n>(
        &mut self,
        arg: &Value,
        path: &FieldPath,
        what: &str,
        known: impl Iterator<Item = &'n String> + Clone,
    ) -> Option<String> {
        let Some(name) = arg.as_str() else {
            self.error(
                path,
                Point::Value,
                format!("expected the name of a declared {what}"),
            );
            return None;
        };
        if known.clone().any(|k| k == name) {
            Some(name.to_string())
        } else {
            self.unknown_name(path, what, name, known.map(String::as_str));
            None
        }
    }

    fn created_map(
        &mut self,
        name: &str,
        path: &FieldPath,
        ctx: &Context<'_>,
        state: &State,
    ) -> Option<String> {
        let name = self.name_arg(&Value::String(name.into()), path, "map", ctx.maps.keys())?;
        if state.maps.get(&name) == Some(&Life::NotYet) {
            self.error(
                path,
                Point::Value,
                format!("map `{name}` is used before the `create_map: {name}` step"),
            );
            return None;
        }
        Some(name)
    }

    fn open_socket(
        &mut self,
        arg: &Value,
        path: &FieldPath,
        ctx: &Context<'_>,
        state: &State,
    ) -> Option<String> {
        let name = self.name_arg(arg, path, "socket", ctx.sockets.keys())?;
        match state.sockets.get(&name) {
            Some(Life::Open) => Some(name),
            Some(Life::NotYet) => {
                self.error(
                    path,
                    Point::Value,
                    format!("socket `{name}` is used before the `socket: {name}` step creates it"),
                );
                None
            }
            _ => {
                self.error(
                    path,
                    Point::Value,
                    format!("socket `{name}` is closed by then; to use its old number on purpose, write `closed_socket: {name}`"),
                );
                None
            }
        }
    }

    /// `Ok(None)` is "no key" (allowed for get_next_key only).
    fn key_ref(
        &mut self,
        args: &MapOpArgs,
        path: &FieldPath,
        ctx: &Context<'_>,
        state: &State,
        optional: bool,
    ) -> Option<Option<KeyRef>> {
        match (&args.socket, &args.closed_socket) {
            (Some(s), None) => self
                .open_socket(&Value::String(s.clone()), &path.key("socket"), ctx, state)
                .map(|s| Some(KeyRef::Open(s))),
            (None, Some(s)) => {
                let name = self.name_arg(
                    &Value::String(s.clone()),
                    &path.key("closed_socket"),
                    "socket",
                    ctx.sockets.keys(),
                )?;
                if state.sockets.get(&name) == Some(&Life::Closed) {
                    Some(Some(KeyRef::Closed(name)))
                } else {
                    self.error(
                        &path.key("closed_socket"),
                        Point::Value,
                        format!("socket `{name}` is not closed here; use `socket: {name}`"),
                    );
                    None
                }
            }
            (None, None) if optional => Some(None),
            (None, None) => {
                self.error(
                    path,
                    Point::Value,
                    "name the key with `socket` (or `closed_socket` for a closed one's number)",
                );
                None
            }
            (Some(_), Some(_)) => {
                self.error(
                    &path.key("closed_socket"),
                    Point::Key,
                    "give either `socket` or `closed_socket`, not both",
                );
                None
            }
        }
    }

    /// Flags are a name, a list of names, or an integer for raw bits the kernel must reject.
    fn flags(&mut self, value: &Value, path: &FieldPath, table: &[(&str, u64)]) -> Option<u64> {
        let mut lookup = |name: &str, path: &FieldPath| -> Option<u64> {
            let found = table.iter().find(|(n, _)| *n == name).map(|(_, bit)| *bit);
            if found.is_none() {
                let hint = did_you_mean(name, table.iter().map(|(n, _)| *n));
                let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
                self.error(
                    path,
                    Point::Value,
                    format!("unknown flag `{name}` (known: {}){hint}", names.join(", ")),
                );
            }
            found
        };
        match value {
            Value::String(name) => lookup(name, path),
            Value::Sequence(items) => {
                let mut bits = 0;
                for (i, item) in items.iter().enumerate() {
                    bits |= lookup(item.as_str().unwrap_or("?"), &path.index(i))?;
                }
                Some(bits)
            }
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            _ => {
                self.error(
                    path,
                    Point::Value,
                    "flags are a name, a list of names, or an integer",
                );
                None
            }
        }
    }

    fn expectation(
        &mut self,
        path: &FieldPath,
        value: &Value,
        outcomes: &Outcomes,
    ) -> Option<Expectation> {
        let Value::Sequence(items) = value else {
            return self.outcome(path, value, outcomes).map(Expectation::always);
        };
        let mut variants = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = path.index(i);
            let decl: VariantDecl = self.args(item, &item_path)?;
            let range = VersionRange {
                since: decl.since,
                until: decl.until,
            };
            if range.is_empty() {
                self.error(
                    &item_path.key("until"),
                    Point::Value,
                    "`until` must be later than `since` (until is exclusive)",
                );
                return None;
            }
            if let Some(j) = variants
                .iter()
                .position(|v: &Variant| v.range.overlaps(&range))
            {
                self.error(
                    &item_path,
                    Point::Value,
                    format!("versions {range} overlap variant {j} ({}): ranges are half-open [since, until) and must not overlap", variants[j].range),
                );
                return None;
            }
            if decl.reason.trim().is_empty() {
                self.error(
                    &item_path.key("reason"),
                    Point::Value,
                    "say why kernels differ here (commit or version)",
                );
            }
            let outcome = self.outcome(&item_path.key("expect"), &decl.expect, outcomes)?;
            variants.push(Variant {
                range,
                outcome,
                reason: Some(decl.reason.trim().to_string()),
            });
        }
        if variants.is_empty() {
            self.error(
                path,
                Point::Value,
                "an empty list of variants expects nothing",
            );
            return None;
        }
        if let Some(gap) = first_gap(&variants, self.min_version) {
            self.error(
                path,
                Point::Value,
                format!(
                    "no variant covers kernels {gap}: every kernel from {} on needs an expectation",
                    self.min_version
                ),
            );
            return None;
        }
        Some(Expectation { variants })
    }

    fn outcome(
        &mut self,
        path: &FieldPath,
        value: &Value,
        outcomes: &Outcomes,
    ) -> Option<Expected> {
        match (outcomes, value) {
            (Outcomes::Helpers { .. }, Value::String(text)) if text == "no_record" => {
                Some(Expected::NoRecord)
            }
            (Outcomes::Helpers { get, delete }, Value::Mapping(m)) => {
                self.helper_outcome(path, m, *get, *delete)
            }
            (Outcomes::Helpers { .. }, _) => {
                self.error(
                    path,
                    Point::Value,
                    "expect what the helpers returned, `{ get: …, delete: … }`, or `no_record`",
                );
                None
            }
            (Outcomes::Load, Value::String(text)) if text == "ok" => Some(Expected::Ok),
            (Outcomes::Load, Value::Mapping(m)) if m.len() == 1 && m.contains_key("rejected") => {
                // A rejection must say which: an empty text would accept whatever the
                // verifier says, so the case could not fail.
                match m["rejected"].as_str().map(str::trim) {
                    Some(text) if !text.is_empty() => Some(Expected::Rejected(text.to_string())),
                    _ => {
                        self.error(
                            &path.key("rejected"),
                            Point::Value,
                            "give the text the verifier log must contain (its reason line, e.g. \"unknown func bpf_sk_storage_delete#108\")",
                        );
                        None
                    }
                }
            }
            (Outcomes::Load, _) => {
                self.error(
                    path,
                    Point::Value,
                    "a program load expects `ok` or `{ rejected: \"text in the verifier log\" }`",
                );
                None
            }
            (Outcomes::Value(_), Value::String(text)) if text == "ok" => {
                self.error(
                    path,
                    Point::Value,
                    "this step returns a value: expect `{ value: … }`, or an errno name",
                );
                None
            }
            (_, Value::String(text)) if text == "ok" => Some(Expected::Ok),
            (_, Value::String(text)) if crate::errno::code(text).is_some() => {
                Some(Expected::Errno(text.clone()))
            }
            (_, Value::String(text)) => {
                let hint = did_you_mean(
                    text,
                    std::iter::once("ok").chain(crate::errno::known_names()),
                );
                self.error(path, Point::Value, format!("unknown outcome `{text}`: `ok`, an errno name such as EINVAL, or `{{ value: … }}`{hint}"));
                None
            }
            (Outcomes::Value(ty), Value::Mapping(m)) if m.len() == 1 && m.contains_key("value") => {
                self.expected_value(&path.key("value"), ty, &m["value"])
                    .map(Expected::Value)
            }
            (Outcomes::Status, Value::Mapping(m)) if m.contains_key("value") => {
                self.error(
                    path,
                    Point::Value,
                    "only lookups and getsockopt return a value; expect `ok` or an errno name",
                );
                None
            }
            (_, Value::Number(n)) => {
                self.error(
                    path,
                    Point::Value,
                    format!("write errnos by name (EINVAL, ENOTSUPP for 524), not {n}"),
                );
                None
            }
            _ => {
                self.error(path, Point::Value, "expected `ok`, an errno name, `{ value: … }`, or a list of `{ since, until, expect, reason }` variants");
                None
            }
        }
    }

    fn expected_value(
        &mut self,
        path: &FieldPath,
        ty: &Type,
        value: &Value,
    ) -> Option<serde_json::Value> {
        if !self.charge(path, ty) {
            return None;
        }
        ty.expected(value)
            .map_err(|e| self.value_error(path, e))
            .ok()
    }

    /// `{ get: null | no_socket | { value, events, bytes }, delete: 0 | ENOENT | no_socket }`,
    /// with exactly the calls the program makes.
    fn helper_outcome(
        &mut self,
        path: &FieldPath,
        m: &serde_yaml::Mapping,
        calls_get: bool,
        calls_delete: bool,
    ) -> Option<Expected> {
        for key in m.keys() {
            let key = key.as_str().unwrap_or("?");
            let allowed = (key == "get" && calls_get) || (key == "delete" && calls_delete);
            if !allowed {
                let why = match key {
                    "get" | "delete" => format!(
                        "the program does not call bpf_sk_storage_{key} (see its declaration)"
                    ),
                    _ => "expected `get` and/or `delete`".to_string(),
                };
                self.error(
                    &path.key(key),
                    Point::Key,
                    format!("unexpected `{key}`: {why}"),
                );
                return None;
            }
        }
        for (key, called) in [("get", calls_get), ("delete", calls_delete)] {
            if called && !m.contains_key(key) {
                self.error(
                    path,
                    Point::Value,
                    format!(
                        "the program calls bpf_sk_storage_{key}: say what it returns with `{key}:`"
                    ),
                );
                return None;
            }
        }
        let get = match m.get("get") {
            None => None,
            Some(Value::Null) => Some(ExpectedGet::Null),
            Some(Value::String(s)) if s == "no_socket" => Some(ExpectedGet::NoSocket),
            Some(v @ Value::Mapping(_)) => Some(ExpectedGet::Storage(self.expected_value(
                &path.key("get"),
                &object_value_type(),
                v,
            )?)),
            Some(_) => {
                self.error(&path.key("get"), Point::Value, "get returns `null` (NULL), the storage `{ value, events, bytes }`, or `no_socket`");
                return None;
            }
        };
        let delete = match m.get("delete") {
            None => None,
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Some(ExpectedDelete::Returned(0)),
            Some(Value::String(s)) if s == "no_socket" => Some(ExpectedDelete::NoSocket),
            Some(Value::String(s)) if crate::errno::code(s).is_some() => Some(
                ExpectedDelete::Returned(-i64::from(crate::errno::code(s).unwrap_or_default())),
            ),
            Some(_) => {
                self.error(
                    &path.key("delete"),
                    Point::Value,
                    "delete returns 0, an errno name (ENOENT for -ENOENT), or `no_socket`",
                );
                return None;
            }
        };
        // In the order of the declared list: [get, delete].
        let calls = get
            .map(super::ExpectedCall::Get)
            .into_iter()
            .chain(delete.map(super::ExpectedCall::Delete))
            .collect();
        Some(Expected::Observed {
            calls,
            callback_args: None,
        })
    }
}

struct Context<'a> {
    maps: &'a IndexMap<String, MapSpec>,
    sockets: &'a IndexMap<String, SocketSpec>,
    programs: &'a IndexMap<String, ProgramSpec>,
}

/// What kind of outcome a step can have, for parsing its expectation.
enum Outcomes {
    /// `ok` or an errno.
    Status,
    /// `{ value: … }` of this type, or an errno.
    Value(Type),
    /// `{ get: …, delete: … }` for a program that makes these calls, or `no_record`.
    Helpers { get: bool, delete: bool },
    /// `ok` or `{ rejected: "text in the verifier log" }`.
    Load,
}

/// The eBPF object's storage value, `SocketStorage` in sk-storage-common.
fn object_value_type() -> Type {
    let u64_type = || Type::Int {
        bytes: 8,
        signed: false,
    };
    Type::Struct {
        fields: vec![
            ("value".into(), u64_type()),
            ("events".into(), u64_type()),
            ("bytes".into(), u64_type()),
        ],
    }
}

/// The first range of kernels at or after `from` that no variant covers.
fn first_gap(variants: &[Variant], from: KernelVersion) -> Option<VersionRange> {
    let mut ranges: Vec<VersionRange> = variants.iter().map(|v| v.range).collect();
    ranges.sort_by_key(|r| r.since);
    let mut covered_to = Some(from);
    for r in ranges {
        let cursor = covered_to?;
        if let Some(since) = r.since
            && since > cursor
        {
            return Some(VersionRange {
                since: Some(cursor),
                until: Some(since),
            });
        }
        covered_to = r.until.map(|until| until.max(cursor));
    }
    covered_to.map(|cursor| VersionRange {
        since: Some(cursor),
        until: None,
    })
}

fn parse_capability(name: &str) -> Result<caps::Capability, String> {
    caps::Capability::from_str(name).map_err(|_| {
        let known: Vec<String> = caps::all().iter().map(ToString::to_string).collect();
        let hint = did_you_mean(name, known.iter().map(String::as_str));
        format!("unknown capability `{name}` (write it as in capabilities(7), e.g. CAP_BPF){hint}")
    })
}

fn describe_socket(spec: &SocketSpec) -> String {
    let mut text = match &spec.source {
        SocketSource::New {
            family,
            kind,
            listen,
            bind,
            connect,
        } => {
            let family = match family {
                Family::Inet => "inet",
                Family::Inet6 => "inet6",
                Family::Unix => "unix",
            };
            let kind = match kind {
                SockType::Stream => "stream",
                SockType::Dgram => "dgram",
            };
            let role = match (listen, bind, connect) {
                (true, _, _) => ", listening".to_string(),
                (_, true, _) => ", bound".to_string(),
                (_, _, Some(peer)) => format!(", connected to {peer}"),
                _ => String::new(),
            };
            format!("{family} {kind}{role}")
        }
        SocketSource::Accept(l) => format!("accepted from {l}"),
        SocketSource::Dup(s) => format!("dup of {s}"),
        SocketSource::File(p) => format!("file {}", p.display()),
    };
    if let Some(old) = &spec.reuse_fd_of {
        text.push_str(&format!(", at {old}'s old fd number"));
    }
    text
}

fn render_key(key: &KeyRef) -> String {
    match key {
        KeyRef::Open(s) => s.clone(),
        KeyRef::Closed(s) => format!("closed {s}"),
    }
}

fn render_flags(bits: u64, table: &[(&str, u64)]) -> String {
    if bits == 0 {
        return String::new();
    }
    let mut names: Vec<String> = table
        .iter()
        .filter(|(_, bit)| *bit != 0 && bits & bit == *bit)
        .map(|(n, _)| (*n).to_string())
        .collect();
    let known: u64 = table.iter().map(|(_, b)| b).fold(0, |a, b| a | b);
    if bits & !known != 0 {
        names.push(format!("{:#x}", bits & !known));
    }
    format!(" ({})", names.join("|"))
}

fn render_yaml(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
name: round-trip
description: Every kind of declaration and step, to check the model reads back the same.
requires: { kernel: "5.4", capabilities: [CAP_BPF] }
maps:
  store: { value: { lock: bpf_spin_lock, count: u32, tag: "u8[2]" }, flags: [NO_PREALLOC, CLONE] }
  raw: { key: u64, value: u32, key_size: 8, value_size: 4, max_entries: 1, btf: false, flags: [] }
sockets:
  srv: { family: inet6, listen: true }
  cli: { family: inet6, connect: srv }
  acc: { accept: srv }
  d: { dup: cli }
  f: { file: /dev/null }
  again: { family: unix, type: dgram, reuse_fd_of: d }
steps:
  - create_map: raw
    expect: EINVAL
  - update: { map: store, socket: cli, value: { count: 1, tag: [1, 2] }, flags: [NOEXIST, F_LOCK] }
    expect: ok
  - lookup: { map: store, socket: d, flags: F_LOCK }
    expect: { value: { lock: any, count: 1, tag: 7 } }
  - close: d
    expect: ok
  - lookup: { map: store, closed_socket: d }
    expect:
      - { until: "6.1", expect: EBADF, reason: old }
      - { since: "6.1", expect: EBADF, reason: new }
  - socket: again
    expect: ok
  - fork:
      - delete: { map: store, socket: cli }
        expect: ok
    expect: ok
  - lookup_batch: { map: store, sockets: [cli, acc] }
    expect: ENOTSUPP
  - send: { socket: cli, bytes: 3 }
    expect: ok
  - drop_capabilities: [CAP_SYS_ADMIN]
    expect: ok
"#;

    #[test]
    fn a_valid_case_round_trips_through_the_model() {
        let path = Path::new("round-trip.yaml");
        let first = parse(path, VALID).expect("valid");
        let raw: CaseFile = serde_yaml::from_str(VALID).expect("model");
        let again = serde_yaml::to_string(&raw).expect("serialises");
        let second = parse(path, &again).expect("still valid");
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        // And the model is what the text says.
        assert_eq!(
            first.steps.len(),
            6 + 10,
            "six set-up steps, then the case's"
        );
        assert_eq!(first.maps["store"].flags, 1 | 512);
        assert_eq!(first.maps["store"].value_size, 12);
        assert_eq!(
            first.steps[7].label,
            "update store[cli] = {\"count\":1,\"tag\":[1,2]} (NOEXIST|F_LOCK)"
        );
        assert_eq!(first.steps[10].label, "lookup store[closed d]");
        assert_eq!(first.steps[10].expect.variants.len(), 2);
        assert!(matches!(&first.steps[12].op, Op::Fork(children) if children[0].id == "7.1"));
    }

    #[test]
    fn coverage_gaps_are_found_from_the_minimum_version() {
        let v = |s: &str| s.parse::<KernelVersion>().unwrap();
        let variant = |since: Option<&str>, until: Option<&str>| Variant {
            range: VersionRange {
                since: since.map(v),
                until: until.map(v),
            },
            outcome: Expected::Ok,
            reason: None,
        };
        let full = [variant(None, Some("5.6")), variant(Some("5.6"), None)];
        assert_eq!(first_gap(&full, v("5.2")), None);
        let late = [variant(Some("5.4"), None)];
        assert_eq!(first_gap(&late, v("5.4")), None);
        assert_eq!(
            first_gap(&late, v("5.2")),
            Some(VersionRange {
                since: Some(v("5.2")),
                until: Some(v("5.4"))
            })
        );
        let open_end = [variant(None, Some("6.1"))];
        assert_eq!(
            first_gap(&open_end, v("5.2")),
            Some(VersionRange {
                since: Some(v("6.1")),
                until: None
            })
        );
    }
}
