//! Map operations from userspace: create, the element commands and the batch commands.

use serde::{Deserialize, Serialize};

use super::{Life, StepCheck};
use crate::case::{
    KeyRef,
    checked::{Checked, Outcomes},
    flags,
    locate::Point,
};

/// An element command keyed by a descriptor. Exactly one of `socket` (an open socket),
/// `closed_socket` (the number a closed socket had, on purpose) or `fd` (a number as is)
/// names the key; `get_next_key` may leave all out for a NULL key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapOp {
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
    pub value: Option<serde_yaml::Value>,
    /// A name, a list of names, or an integer for raw bits the kernel must refuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<serde_yaml::Value>,
}

impl MapOp {
    /// The key, as validation has checked it (`None`: a NULL key).
    pub fn key(&self) -> Option<KeyRef> {
        match (&self.socket, &self.closed_socket, self.fd) {
            (Some(s), ..) => Some(KeyRef::Open(s.clone())),
            (_, Some(s), _) => Some(KeyRef::Closed(s.clone())),
            (.., Some(fd)) => Some(KeyRef::Raw(fd)),
            _ => None,
        }
    }

    /// The flag bits, for the command `op` names; validation has checked the names.
    pub fn flag_bits(&self, op: &str) -> u64 {
        self.flags
            .as_ref()
            .and_then(|value| flags::resolve(value, flag_table(op)).ok())
            .unwrap_or(0)
    }

    pub(super) fn check(&self, op: &str, cx: &mut StepCheck<'_>) -> Option<Checked> {
        let path = cx.path.clone();
        let map = cx.created_map(&self.map, &path.key("map"))?;
        let spec = &cx.ctx.maps[&map];
        let key = self.check_key(op == "get_next_key", cx);
        let takes_value = op == "update";
        let value_text = match (&self.value, takes_value) {
            (Some(v), true) => {
                cx.encode(&path.key("value"), &spec.value, v)?;
                Some(render_yaml(v))
            }
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
            (None, false) => None,
        };
        let table = flag_table(op);
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
        let key_text = key.as_ref().map_or_else(|| "NULL".to_string(), render_key);
        let flag_text = flags::render(bits, table);
        let label = match op {
            "update" => format!(
                "update {map}[{key_text}] = {}{flag_text}",
                value_text.unwrap_or_default()
            ),
            "get_next_key" => format!("get_next_key {map} after {key_text}"),
            _ => format!("{op} {map}[{key_text}]{flag_text}"),
        };
        // A lookup's value is decoded into its result.
        Some(if matches!(op, "lookup" | "lookup_and_delete") {
            Checked::new(label, Outcomes::Value(spec.value.clone()))
                .reading(u64::from(spec.value.size()))
        } else {
            Checked::new(label, Outcomes::Status)
        })
    }

    /// `Some(None)` is "no key" (allowed for get_next_key only).
    fn check_key(&self, optional: bool, cx: &mut StepCheck<'_>) -> Option<Option<KeyRef>> {
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
            return cx
                .open_socket(s, &path.key("socket"))
                .map(|s| Some(KeyRef::Open(s)));
        }
        if let Some(s) = &self.closed_socket {
            let at = path.key("closed_socket");
            let name = cx.socket_name(s, &at)?;
            if cx.state.sockets.get(&name) == Some(&Life::Closed) {
                return Some(Some(KeyRef::Closed(name)));
            }
            cx.error(
                &at,
                Point::Value,
                format!("socket `{name}` is not closed here; use `socket: {name}`"),
            );
            return None;
        }
        if let Some(fd) = self.fd {
            return Some(Some(KeyRef::Raw(fd)));
        }
        if optional {
            return Some(None);
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchOp {
    pub map: String,
    #[serde(default)]
    pub sockets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<serde_yaml::Value>,
}

impl BatchOp {
    pub(super) fn check(&self, op: &str, cx: &mut StepCheck<'_>) -> Option<Checked> {
        let path = cx.path.clone();
        let map = cx.created_map(&self.map, &path.key("map"))?;
        let mut keys = Vec::new();
        for (i, s) in self.sockets.iter().enumerate() {
            keys.push(cx.open_socket(s, &path.key("sockets").index(i))?);
        }
        if op == "update_batch" {
            if self.values.len() != keys.len() {
                cx.error(
                    &path,
                    Point::Value,
                    "update_batch needs one value per socket",
                );
                return None;
            }
            let ty = &cx.ctx.maps[&map].value;
            for (i, v) in self.values.iter().enumerate() {
                cx.encode(&path.key("values").index(i), ty, v)?;
            }
        } else if !self.values.is_empty() {
            cx.error(
                &path.key("values"),
                Point::Key,
                format!("{op} takes no values"),
            );
            return None;
        }
        Some(Checked::new(
            format!("{op} {map} [{}]", keys.join(", ")),
            Outcomes::Status,
        ))
    }
}

pub(super) fn check_create(map: &str, cx: &mut StepCheck<'_>) -> Option<Checked> {
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
    Some(Checked::new(format!("create map {map}"), Outcomes::Status))
}

pub(super) fn check_close(map: &str, cx: &mut StepCheck<'_>) -> Option<Checked> {
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
    Some(Checked::new(format!("close map {map}"), Outcomes::Status))
}

fn flag_table(op: &str) -> &'static [flags::Flag] {
    match op {
        "update" => flags::UPDATE,
        "lookup" | "lookup_and_delete" => flags::LOOKUP,
        _ => &[],
    }
}

pub fn render_key(key: &KeyRef) -> String {
    match key {
        KeyRef::Open(s) => s.clone(),
        KeyRef::Closed(s) => format!("closed {s}"),
        KeyRef::Raw(fd) => format!("fd {fd}"),
    }
}

fn render_yaml(value: &serde_yaml::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "?".into())
}
