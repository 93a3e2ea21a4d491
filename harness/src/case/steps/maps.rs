//! Map operations from userspace: create and close, the element commands and the batch
//! commands.

use serde::{Deserialize, Serialize};

use super::{Life, StepCheck, StepKind};
use crate::case::{
    KeyRef,
    checked::{Checked, Outcomes},
    flags,
    locate::Point,
};

operations! {
    pub enum MapOp as MapOpKind {
        /// Create a declared map here instead of before the first step.
        CreateMap(String),
        /// Close the case's descriptor of a map created by bpf(2); the kernel frees the map,
        /// and the storages it gave sockets, once nothing else holds it.
        CloseMap(String),
        /// Freeze a map created by bpf(2) (`BPF_MAP_FREEZE`): the syscall side may no longer
        /// change it.
        FreezeMap(String),
        Update(ElemArgs),
        Lookup(ElemArgs),
        Delete(ElemArgs),
        LookupAndDelete(ElemArgs),
        GetNextKey(ElemArgs),
        LookupBatch(BatchArgs),
        UpdateBatch(BatchArgs),
        DeleteBatch(BatchArgs),
        LookupAndDeleteBatch(BatchArgs),
    }
    runs_in_child: [Update, Lookup, Delete],
    queries: [Lookup, GetNextKey],
    slow: [],
}

impl MapOpKind {
    /// What threads may run: element operations, which the executor prepares before the
    /// threads start.
    pub fn runs_in_thread(self) -> bool {
        matches!(
            self,
            Self::Update | Self::Lookup | Self::Delete | Self::LookupAndDelete
        )
    }
}

/// What the executor runs for a map step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapAction {
    Create { map: String },
    Close { map: String },
    Freeze { map: String },
    Elem(ElemAction),
    Batch(BatchAction),
}

impl MapAction {
    /// The operation's YAML key, which names it in a threads step's counts.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => MapOpKind::CreateMap.name(),
            Self::Close { .. } => MapOpKind::CloseMap.name(),
            Self::Freeze { .. } => MapOpKind::FreezeMap.name(),
            Self::Elem(elem) => elem.command.name(),
            Self::Batch(batch) => batch.command.into(),
        }
    }
}

/// An element command with its key, value and flags resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElemAction {
    pub command: ElemCommand,
    pub map: String,
    pub key: KeyRef,
    /// update: the value in the map's value type; empty for the others.
    pub value: Vec<u8>,
    pub flags: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ElemCommand {
    Update,
    Lookup,
    Delete,
    LookupAndDelete,
    GetNextKey,
}

impl ElemCommand {
    /// The operation's YAML key.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The command returns the storage's value.
    pub fn reads_value(self) -> bool {
        matches!(self, Self::Lookup | Self::LookupAndDelete)
    }

    fn flag_table(self) -> &'static [flags::Flag] {
        match self {
            Self::Update => flags::UPDATE,
            Self::Lookup | Self::LookupAndDelete => flags::LOOKUP,
            Self::Delete | Self::GetNextKey => &[],
        }
    }
}

/// A batch command over the storages of these sockets (and these values, for update), in
/// order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchAction {
    pub command: BatchCommand,
    pub map: String,
    pub sockets: Vec<String>,
    /// update_batch: one value per socket, in the map's value type.
    pub values: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BatchCommand {
    LookupBatch,
    UpdateBatch,
    DeleteBatch,
    LookupAndDeleteBatch,
}

impl MapOp {
    pub(super) fn check(&self, cx: &mut StepCheck<'_>) -> Option<Checked<MapAction>> {
        match self {
            MapOp::CreateMap(map) => check_create(map, cx),
            MapOp::CloseMap(map) => check_close(map, cx),
            MapOp::FreezeMap(map) => {
                let path = cx.path.clone();
                let map = cx.created_map(map, &path)?;
                Some(Checked::new(
                    format!("freeze map {map}"),
                    Outcomes::Status,
                    MapAction::Freeze { map },
                ))
            }
            MapOp::Update(args) => args.check(ElemCommand::Update, cx),
            MapOp::Lookup(args) => args.check(ElemCommand::Lookup, cx),
            MapOp::Delete(args) => args.check(ElemCommand::Delete, cx),
            MapOp::LookupAndDelete(args) => args.check(ElemCommand::LookupAndDelete, cx),
            MapOp::GetNextKey(args) => args.check(ElemCommand::GetNextKey, cx),
            MapOp::LookupBatch(args) => args.check(BatchCommand::LookupBatch, cx),
            MapOp::UpdateBatch(args) => args.check(BatchCommand::UpdateBatch, cx),
            MapOp::DeleteBatch(args) => args.check(BatchCommand::DeleteBatch, cx),
            MapOp::LookupAndDeleteBatch(args) => args.check(BatchCommand::LookupAndDeleteBatch, cx),
        }
    }
}

/// An element command keyed by a descriptor. Exactly one of `socket` (an open socket),
/// `closed_socket` (the number a closed socket had, on purpose) or `fd` (a number as is)
/// names the key; `get_next_key` may leave all out for a NULL key.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElemArgs {
    pub map: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_socket: Option<String>,
    /// A raw descriptor number: one never opened, -1, a number past the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// update only: the value, in the map's value type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub value: Option<serde_yaml::Value>,
    /// A name, a list of names, or an integer for raw bits the kernel must refuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub flags: Option<serde_yaml::Value>,
}

impl ElemArgs {
    fn check(&self, command: ElemCommand, cx: &mut StepCheck<'_>) -> Option<Checked<MapAction>> {
        let path = cx.path.clone();
        let op = command.name();
        let map = cx.created_map(&self.map, &path.key("map"))?;
        let ctx = cx.ctx;
        let spec = &ctx.maps[&map];
        let key = self.check_key(command == ElemCommand::GetNextKey, cx);
        let (value, value_text) = match (&self.value, command == ElemCommand::Update) {
            (Some(v), true) => (
                cx.encode(&path.key("value"), &spec.value, v)?,
                render_yaml(v),
            ),
            (None, true) => {
                cx.error(&path, Point::Value, "update needs a `value`");
                return None;
            }
            (Some(_), false) => {
                cx.error(
                    &path.key("value"),
                    Point::Key,
                    format!("{op} takes no value: the expected value goes in `expect`"),
                );
                return None;
            }
            (None, false) => (Vec::new(), String::new()),
        };
        let table = command.flag_table();
        let bits = match &self.flags {
            Some(_) if table.is_empty() => {
                cx.error(
                    &path.key("flags"),
                    Point::Key,
                    format!("{op} takes no flags"),
                );
                return None;
            }
            Some(f) => cx.flags(f, &path.key("flags"), table)?,
            None => 0,
        };
        let key = key?;
        let flag_text = flags::render(bits, table);
        let label = match command {
            ElemCommand::Update => format!("update {map}[{key}] = {value_text}{flag_text}"),
            ElemCommand::GetNextKey => format!("get_next_key {map} after {key}"),
            _ => format!("{op} {map}[{key}]{flag_text}"),
        };
        let action = MapAction::Elem(ElemAction {
            command,
            map,
            key,
            value,
            flags: bits,
        });
        // A lookup's value is decoded into its result.
        Some(if command.reads_value() {
            Checked::new(label, Outcomes::Value(spec.value.clone()), action)
                .reading(u64::from(spec.value.size()))
        } else {
            Checked::new(label, Outcomes::Status, action)
        })
    }

    /// [`KeyRef::Null`] is allowed for get_next_key only (`optional`).
    fn check_key(&self, optional: bool, cx: &mut StepCheck<'_>) -> Option<KeyRef> {
        let path = cx.path.clone();
        let given: Vec<&str> = [
            ("socket", self.socket.is_some()),
            ("closed_socket", self.closed_socket.is_some()),
            ("fd", self.fd.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if given.len() > 1 {
            cx.error(
                &path.key(given[1]),
                Point::Key,
                format!(
                    "name the key once: `{}` and `{}` both given",
                    given[0], given[1]
                ),
            );
            return None;
        }
        if let Some(s) = &self.socket {
            return cx.open_socket(s, &path.key("socket")).map(KeyRef::Open);
        }
        if let Some(s) = &self.closed_socket {
            let at = path.key("closed_socket");
            let name = cx.socket_name(s, &at)?;
            if cx.state.sockets.get(&name) == Some(&Life::Closed) {
                return Some(KeyRef::Closed(name));
            }
            cx.error(
                &at,
                Point::Value,
                format!("socket `{name}` is not closed here; use `socket: {name}`"),
            );
            return None;
        }
        if let Some(fd) = self.fd {
            return Some(KeyRef::Raw(fd));
        }
        if optional {
            return Some(KeyRef::Null);
        }
        cx.error(
            &path,
            Point::Value,
            "name the key with `socket` (`closed_socket` for a closed one's number, `fd` for a raw number)",
        );
        None
    }
}

/// A batch command: the keys (and values, for update) in order.
#[derive(schemars::JsonSchema, Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchArgs {
    pub map: String,
    #[serde(default)]
    pub sockets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub values: Vec<serde_yaml::Value>,
}

impl BatchArgs {
    fn check(&self, command: BatchCommand, cx: &mut StepCheck<'_>) -> Option<Checked<MapAction>> {
        let path = cx.path.clone();
        let op: &str = command.into();
        let map = cx.created_map(&self.map, &path.key("map"))?;
        let mut sockets = Vec::new();
        for (i, s) in self.sockets.iter().enumerate() {
            sockets.push(cx.open_socket(s, &path.key("sockets").index(i))?);
        }
        let mut values = Vec::new();
        if command == BatchCommand::UpdateBatch {
            if self.values.len() != sockets.len() {
                cx.error(
                    &path,
                    Point::Value,
                    "update_batch needs one value per socket",
                );
                return None;
            }
            let ctx = cx.ctx;
            let ty = &ctx.maps[&map].value;
            for (i, v) in self.values.iter().enumerate() {
                values.push(cx.encode(&path.key("values").index(i), ty, v)?);
            }
        } else if !self.values.is_empty() {
            cx.error(
                &path.key("values"),
                Point::Key,
                format!("{op} takes no values"),
            );
            return None;
        }
        let label = format!("{op} {map} [{}]", sockets.join(", "));
        let action = MapAction::Batch(BatchAction {
            command,
            map,
            sockets,
            values,
        });
        Some(Checked::new(label, Outcomes::Status, action))
    }
}

fn check_create(map: &str, cx: &mut StepCheck<'_>) -> Option<Checked<MapAction>> {
    let path = cx.path.clone();
    let map = cx.declared(map, &path, "map")?;
    if cx.state.maps.get(&map) != Some(&Life::NotYet) {
        cx.error(
            &path,
            Point::Value,
            format!("map `{map}` is already created by an earlier step"),
        );
        return None;
    }
    cx.state.maps.insert(map.clone(), Life::Open);
    Some(Checked::new(
        format!("create map {map}"),
        Outcomes::Status,
        MapAction::Create { map },
    ))
}

fn check_close(map: &str, cx: &mut StepCheck<'_>) -> Option<Checked<MapAction>> {
    let path = cx.path.clone();
    let map = cx.created_map(map, &path)?;
    if cx.ctx.maps[&map].bpf.is_some() {
        cx.error(
            &path,
            Point::Value,
            format!("map `{map}` belongs to the eBPF object, which holds it until the case ends; close_map closes maps created by bpf(2)"),
        );
        return None;
    }
    cx.state.maps.insert(map.clone(), Life::Closed);
    Some(Checked::new(
        format!("close map {map}"),
        Outcomes::Status,
        MapAction::Close { map },
    ))
}

fn render_yaml(value: &serde_yaml::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "?".into())
}
