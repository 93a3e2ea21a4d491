//! The case's declarations: requirements, maps, sockets and programs.

use std::path::PathBuf;

use indexmap::IndexMap;

use super::Validator;
use crate::{
    case::{
        FIRST_KERNEL, Family, MapSpec, ProgramSpec, Requirements, SockType, SocketSource,
        SocketSpec, flags,
        locate::{FieldPath, Point},
        model::{CallDecl, CaseFile, MapDecl, ProgramDecl, SocketDecl},
        steps::{Life, State, template},
        types::Type,
    },
    catalogue,
    diagnostic::did_you_mean,
};

impl Validator<'_> {
    /// The declarations of `section` with each `repeat: N` one replaced by its N copies,
    /// `{i}` substituted in the name and the fields.
    pub(super) fn expand_repeated<T>(
        &mut self,
        section: &str,
        decls: &IndexMap<String, T>,
        repeat: impl Fn(&T) -> Option<u32>,
    ) -> IndexMap<String, T>
    where
        T: Clone + serde::Serialize + serde::de::DeserializeOwned,
    {
        let mut expanded = IndexMap::new();
        for (name, decl) in decls {
            let path = FieldPath::default().key(section).key(name.as_str());
            let Some(times) = repeat(decl) else {
                expanded.insert(name.clone(), decl.clone());
                continue;
            };
            if !name.contains('{') {
                self.error(&path, Point::Key, "a repeated declaration names its copies with `{i}` (e.g. `s{i}`), which counts from 0");
                let kind = if section == "maps" { "map" } else { "socket" };
                self.invalid_declarations.insert((kind, name.clone()));
                continue;
            }
            let written = serde_json::to_value(decl).expect("declarations serialise");
            for i in 0..times {
                let vars = [("i", i64::from(i))];
                let copy = template::expand_name(name, &vars).and_then(|copy_name| {
                    let value = template::expand(&written, &vars)?;
                    let copy = serde_json::from_value(value).map_err(|e| e.to_string())?;
                    Ok((copy_name, copy))
                });
                match copy {
                    Ok((copy_name, _))
                        if expanded.contains_key(&copy_name) || decls.contains_key(&copy_name) =>
                    {
                        let other = match self.templates.get(&copy_name) {
                            Some(template) if template == name => {
                                "another of its copies".to_string()
                            }
                            Some(template) => format!("a copy of `{template}`"),
                            None => "declared on its own".to_string(),
                        };
                        self.error(&path, Point::Key, format!("copy {i} is named `{copy_name}`, which is {other}: the copies' names must be unique"));
                        break;
                    }
                    Ok((copy_name, copy)) => {
                        self.templates.insert(copy_name.clone(), name.clone());
                        expanded.insert(copy_name, copy);
                    }
                    Err(message) => {
                        self.error(&path, Point::Key, message);
                        break;
                    }
                }
            }
        }
        expanded
    }

    pub(super) fn requirements(&mut self, raw: &CaseFile) -> Requirements {
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
        Requirements {
            kernel: raw.requires.kernel,
            capabilities: raw.requires.capabilities.iter().map(|c| c.0).collect(),
        }
    }

    pub(super) fn maps(&mut self, decls: &IndexMap<String, MapDecl>) -> IndexMap<String, MapSpec> {
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
            "no_prealloc" => catalogue::StorageMap::NoPrealloc,
            "clone" => catalogue::StorageMap::Clone,
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
            match flags::MAP.iter().find(|(n, _)| n == flag) {
                Some((_, bit)) => flags |= bit,
                None => {
                    let hint = did_you_mean(flag, flags::MAP.iter().map(|(n, _)| *n));
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

    pub(super) fn programs(
        &mut self,
        decls: &IndexMap<String, ProgramDecl>,
        maps: &IndexMap<String, MapSpec>,
    ) -> IndexMap<String, ProgramSpec> {
        let mut programs: IndexMap<String, ProgramSpec> = IndexMap::new();
        for (name, decl) in decls {
            let path = FieldPath::default().key("programs").key(name.as_str());
            let Some(kind) = catalogue::ProgramKind::from_name(&decl.kind) else {
                let known: Vec<&str> = catalogue::ProgramKind::ALL
                    .iter()
                    .map(|k| k.name())
                    .collect();
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
            let Some(calls) = self.program_calls(&path, kind, decl) else {
                continue;
            };
            let mut params = catalogue::ProgramParams::new(map, calls);
            if let Some(names) = &decl.cb_flags {
                if kind != catalogue::ProgramKind::SockOps {
                    self.error(
                        &path.key("cb_flags"),
                        Point::Key,
                        "`cb_flags` applies to sock_ops programs only",
                    );
                    continue;
                }
                let names = serde_yaml::Value::Sequence(
                    names
                        .iter()
                        .cloned()
                        .map(serde_yaml::Value::String)
                        .collect(),
                );
                match self.flags(
                    &names,
                    &path.key("cb_flags"),
                    catalogue::SockOpsOp::CB_FLAGS,
                ) {
                    Some(bits) => params.sock_ops_cb_flags = bits as u32,
                    None => continue,
                }
            }
            if let Err(e) = params.to_config(kind).and(params.calls.helper_set()) {
                let at = if kind == catalogue::ProgramKind::SockOps {
                    "callbacks"
                } else {
                    "calls"
                };
                self.error(&path.key(at), Point::Value, e.to_string());
                continue;
            }
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

    /// A program's calls: `calls` for every program type but sock_ops, `callbacks` (each
    /// with its list) for sock_ops.
    fn program_calls(
        &mut self,
        path: &FieldPath,
        kind: catalogue::ProgramKind,
        decl: &ProgramDecl,
    ) -> Option<catalogue::ProgramCalls> {
        let sock_ops = kind == catalogue::ProgramKind::SockOps;
        match (&decl.calls, &decl.callbacks, sock_ops) {
            (Some(calls), None, false) => self
                .calls(&path.key("calls"), calls)
                .map(catalogue::ProgramCalls::EachRun),
            (None, Some(callbacks), true) => {
                let mut lists = Vec::new();
                for (name, calls) in callbacks {
                    let at = path.key("callbacks").key(name.as_str());
                    let Some(callback) = catalogue::SockOpsOp::from_name(name) else {
                        self.error(&at, Point::Key, format!("unknown sock_ops callback `{name}` (uapi name without BPF_SOCK_OPS_, e.g. ACTIVE_ESTABLISHED_CB)"));
                        return None;
                    };
                    let calls = self.calls(&at, calls)?;
                    lists.push(catalogue::CallbackCalls { callback, calls });
                }
                Some(catalogue::ProgramCalls::PerCallback(lists))
            }
            (_, Some(_), false) => {
                self.error(&path.key("callbacks"), Point::Key, "`callbacks` applies to sock_ops programs only: give the calls of each run in `calls`");
                None
            }
            (Some(_), _, true) => {
                self.error(&path.key("calls"), Point::Key, "a sock_ops program runs on many callbacks: give each its calls under `callbacks`, e.g. `callbacks: { ACTIVE_ESTABLISHED_CB: [ { get: { flags: F_CREATE } } ] }`");
                None
            }
            (None, None, true) => {
                self.error(path, Point::Value, "say what the program does on which callbacks: `callbacks: { CALLBACK: [calls] }`");
                None
            }
            (None, None, false) => {
                self.error(path, Point::Value, "say what the program calls on each run: `calls: [ { get: { flags: F_CREATE } }, delete, { write: 7 } ]`");
                None
            }
        }
    }

    fn calls(&mut self, path: &FieldPath, decls: &[CallDecl]) -> Option<Vec<catalogue::Call>> {
        let mut calls = Vec::new();
        for (i, decl) in decls.iter().enumerate() {
            calls.push(match decl {
                CallDecl::Get(get) => catalogue::Call::Get {
                    flags: match &get.flags {
                        None => 0,
                        Some(f) => {
                            self.flags(f, &path.index(i).key("get").key("flags"), flags::GET)?
                        }
                    },
                    init: get.init,
                },
                CallDecl::Delete => catalogue::Call::Delete,
                CallDecl::Write(value) => catalogue::Call::Write { value: *value },
            });
        }
        Some(calls)
    }

    fn type_of(&mut self, path: &FieldPath, expr: &crate::case::types::TypeExpr) -> Option<Type> {
        Type::from_expr(expr)
            .map_err(|e| self.value_error(path, e))
            .ok()
    }

    pub(super) fn sockets(
        &mut self,
        decls: &IndexMap<String, SocketDecl>,
    ) -> IndexMap<String, SocketSpec> {
        let mut sockets = IndexMap::new();
        let names: Vec<&str> = decls.keys().map(String::as_str).collect();
        for (name, decl) in decls {
            let path = FieldPath::default().key("sockets").key(name.as_str());
            let kinds = [
                ("family", decl.family.is_some()),
                ("accept", decl.accept.is_some()),
                ("dup", decl.dup.is_some()),
                ("pair_of", decl.pair_of.is_some()),
                ("received_on", decl.received_on.is_some()),
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
                        "say what the descriptor is with exactly one of `family` (a new socket), `accept`, `dup`, `pair_of`, `received_on` or `file`; found {}",
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
                ("pair_of", &decl.pair_of),
                ("received_on", &decl.received_on),
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
                ("socketpair", decl.socketpair),
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
                    "seqpacket" if family == Some(Family::Unix) => Some(SockType::Seqpacket),
                    "seqpacket" => {
                        self.error(
                            &path.key("type"),
                            Point::Value,
                            "seqpacket sockets are unix sockets here (inet seqpacket is SCTP)",
                        );
                        None
                    }
                    other => {
                        let hint = did_you_mean(other, ["stream", "dgram", "seqpacket"]);
                        self.error(
                            &path.key("type"),
                            Point::Value,
                            format!(
                                "unknown socket type `{other}`: stream, dgram or seqpacket{hint}"
                            ),
                        );
                        None
                    }
                };
                if decl.socketpair
                    && (family != Some(Family::Unix)
                        || decl.bind
                        || decl.listen
                        || decl.connect.is_some())
                {
                    self.error(
                        &path.key("socketpair"),
                        Point::Key,
                        "socketpair(2) makes two connected unix sockets: no binding, listening or connecting",
                    );
                }
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
                        socketpair: decl.socketpair,
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
                } else if let Some(end) = &decl.pair_of {
                    SocketSource::PairOf(end.clone())
                } else if let Some(on) = &decl.received_on {
                    SocketSource::ReceivedOn(on.clone())
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
                SocketSource::PairOf(end) => {
                    let pairs = matches!(
                        sockets.get(end).map(|t| &t.source),
                        Some(SocketSource::New {
                            socketpair: true,
                            ..
                        })
                    );
                    let first = sockets.iter().find(
                        |(_, other)| matches!(&other.source, SocketSource::PairOf(e) if e == end),
                    );
                    if sockets.contains_key(end) && !pairs {
                        self.error(
                            &path.key("pair_of"),
                            Point::Value,
                            format!(
                                "`{end}` is not made by socketpair(2): give it `socketpair: true`"
                            ),
                        );
                    } else if let Some((first, _)) = first.filter(|(first, _)| *first != name) {
                        self.error(
                            &path.key("pair_of"),
                            Point::Value,
                            format!("`{end}` has one other end, `{first}`"),
                        );
                    }
                }
                SocketSource::ReceivedOn(on) => {
                    let unix = matches!(
                        sockets.get(on).map(|t| &t.source),
                        Some(
                            SocketSource::New {
                                family: Family::Unix,
                                ..
                            } | SocketSource::PairOf(_)
                        )
                    );
                    if sockets.contains_key(on) && !unix {
                        self.error(
                            &path.key("received_on"),
                            Point::Value,
                            format!("descriptors travel over unix sockets: `{on}` is not one"),
                        );
                    }
                }
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

    /// The sockets a new descriptor depends on must be open, and a reused number free;
    /// problems are reported at the socket's declaration.
    pub(in crate::case) fn socket_creation_ok(
        &mut self,
        name: &str,
        spec: &SocketSpec,
        sockets: &IndexMap<String, SocketSpec>,
        state: &State,
    ) -> bool {
        let before = self.errors.len();
        let path = &FieldPath::default().key("sockets").key(name);
        let needs_open = match &spec.source {
            SocketSource::New { connect, .. } => connect.clone().map(|c| ("connect", c)),
            SocketSource::Accept(l) => Some(("accept", l.clone())),
            SocketSource::Dup(s) => Some(("dup", s.clone())),
            SocketSource::PairOf(s) => Some(("pair_of", s.clone())),
            SocketSource::ReceivedOn(s) => Some(("received_on", s.clone())),
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
        self.errors.len() == before
    }
}

/// The eBPF object's storage value, `SocketStorage` in sk-storage-common.
pub(super) fn object_value_type() -> Type {
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
