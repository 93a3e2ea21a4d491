//! Expectations: the outcome a step may have (by the kind of step), and version variants
//! that cover every kernel the case runs on.

use serde_yaml::Value;

use super::{Outcomes, Validator, declarations::object_value_type};
use crate::case::{
    Expectation, Expected, ExpectedDelete, ExpectedGet, Variant, did_you_mean,
    locate::{FieldPath, Point},
    model::VariantDecl,
    types::Type,
    version::{KernelVersion, VersionRange},
};

const DIAG_OUTCOMES: &str = "a diag returns the socket's storages: expect `{ storages: { MAP: value, … } }` (`{ storages: {} }` for none), `not_listed`, or an errno name";

impl Validator<'_> {
    pub(super) fn expectation(
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
            (Outcomes::Storages(_), Value::String(text)) if text == "not_listed" => {
                Some(Expected::NotListed)
            }
            (Outcomes::Storages(maps), Value::Mapping(m))
                if m.len() == 1 && m.contains_key("storages") =>
            {
                self.expected_storages(&path.key("storages"), maps, &m["storages"])
            }
            (Outcomes::Storages(_), Value::Mapping(_)) => {
                self.error(path, Point::Value, DIAG_OUTCOMES);
                None
            }
            (Outcomes::Storages(_), Value::String(text)) if text == "ok" => {
                self.error(path, Point::Value, DIAG_OUTCOMES);
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

    /// `{ MAP: value, … }`: the maps named are among those the step asked for, each value
    /// of its map's type.
    fn expected_storages(
        &mut self,
        path: &FieldPath,
        maps: &indexmap::IndexMap<String, Type>,
        value: &Value,
    ) -> Option<Expected> {
        let Value::Mapping(given) = value else {
            self.error(
                path,
                Point::Value,
                "storages are a mapping of map name → value (`{}` for none)",
            );
            return None;
        };
        let mut storages = serde_json::Map::new();
        for (key, value) in given {
            let name = key.as_str().unwrap_or("?");
            let Some(ty) = maps.get(name) else {
                let hint = did_you_mean(name, maps.keys().map(String::as_str));
                self.error(
                    &path.key(name),
                    Point::Key,
                    format!(
                        "`{name}` is not a map the step asks for (asked: {}){hint}",
                        maps.keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                return None;
            };
            let expected = self.expected_value(&path.key(name), ty, value)?;
            storages.insert(name.to_string(), expected);
        }
        Some(Expected::Storages(serde_json::Value::Object(storages)))
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
        Some(Expected::Observed { get, delete })
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

#[cfg(test)]
mod tests {
    use super::*;

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
