//! Expectations: the outcome a step may have (by the kind of step), and version variants
//! that cover every kernel the case runs on.

use serde_yaml::Value;

use super::{Validator, declarations::object_value_type};
use crate::{
    case::{
        Expectation, Expected, ExpectedCall, ExpectedDelete, ExpectedGet, ExpectedWrite, Variant,
        checked::Outcomes,
        locate::{FieldPath, Point},
        model::{ArchDecl, VariantDecl},
        types::Type,
    },
    catalogue::Call,
    diagnostic::did_you_mean,
    version::{KernelVersion, VersionRange},
    vm::Arch,
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
        let mut variants: Vec<Variant> = Vec::new();
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
            let arch = match &decl.arch {
                None => None,
                Some(arch) => Some(self.architectures(&item_path.key("arch"), arch)?),
            };
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
                arch,
                outcome,
                reason: Some(self.share(decl.reason.trim())),
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
        // Each architecture's kernels get exactly one variant each: the variants for it do
        // not overlap and leave no gap. Sorted by where they begin, two that overlap are
        // neighbours (or one overlaps the neighbour in between), so checking neighbours is
        // n log n for a step's many variants.
        let qualified = variants.iter().any(|v| v.arch.is_some());
        for arch in Arch::ALL {
            let (on, kernels) = if qualified {
                (format!(" on {arch}"), format!("{arch} kernels"))
            } else {
                (String::new(), "kernels".to_string())
            };
            let mut of_arch: Vec<(usize, &Variant)> = variants
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_for(arch))
                .collect();
            of_arch.sort_by_key(|(i, v)| (v.range.since, *i));
            if let Some((earlier, later)) = of_arch
                .windows(2)
                .map(|pair| (pair[0], pair[1]))
                .find(|((_, a), (_, b))| a.range.overlaps(&b.range))
            {
                let ((j, first), (i, second)) = if earlier.0 < later.0 {
                    (earlier, later)
                } else {
                    (later, earlier)
                };
                self.error(
                    &path.index(i),
                    Point::Value,
                    format!("versions {}{on} overlap variant {j} ({}): ranges are half-open [since, until) and must not overlap", second.range, first.range),
                );
                return None;
            }
            if let Some(gap) = first_gap(of_arch.iter().map(|(_, v)| v.range), self.min_version) {
                self.error(
                    path,
                    Point::Value,
                    format!(
                        "no variant covers {kernels} {gap}: every kernel from {} on needs an expectation",
                        self.min_version
                    ),
                );
                return None;
            }
        }
        Some(Expectation { variants })
    }

    /// A variant's architectures, each named once.
    fn architectures(&mut self, path: &FieldPath, decl: &ArchDecl) -> Option<Vec<Arch>> {
        let names = match decl {
            ArchDecl::One(name) => std::slice::from_ref(name),
            ArchDecl::Many(names) => names.as_slice(),
        };
        if names.is_empty() {
            self.error(path, Point::Value, "an empty list of architectures is for no kernel: name one, or leave `arch` out for all");
            return None;
        }
        let mut archs = Vec::new();
        for name in names {
            match name.parse::<Arch>() {
                Ok(arch) if archs.contains(&arch) => {
                    self.error(path, Point::Value, format!("{arch} is named twice"));
                    return None;
                }
                Ok(arch) => archs.push(arch),
                Err(message) => {
                    self.error(path, Point::Value, message);
                    return None;
                }
            }
        }
        Some(archs)
    }

    fn outcome(
        &mut self,
        path: &FieldPath,
        value: &Value,
        outcomes: &Outcomes,
    ) -> Option<Expected> {
        match (outcomes, value) {
            (Outcomes::Counts(ops), Value::Mapping(m))
                if m.len() == 1 && m.contains_key("counts") =>
            {
                self.counts(&path.key("counts"), ops, &m["counts"])
            }
            (Outcomes::Counts(_), _) => {
                self.error(
                    path,
                    Point::Value,
                    "threads expect `{ counts: { OPERATION: { ok: N, ERRNO: N } } }` (a count, a comparison such as \"> 0\", or `any`)",
                );
                None
            }
            (Outcomes::Calls { .. }, Value::String(text)) if text == "no_record" => {
                Some(Expected::NoRecord)
            }
            (Outcomes::Calls { calls, sock_ops }, Value::Mapping(m)) => {
                self.calls_outcome(path, m, calls, *sock_ops)
            }
            (Outcomes::Calls { .. }, _) => {
                self.error(
                    path,
                    Point::Value,
                    "expect what each call did, `{ calls: [ { get: … }, { delete: … } ] }`, or `no_record`",
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
            // A kernel that loads the program may still refuse to attach it (ENOTSUPP for
            // a trampoline on arm64 before 6.4).
            (Outcomes::Load, Value::String(text)) if crate::errno::code(text).is_some() => {
                Some(Expected::Errno(text.clone()))
            }
            (Outcomes::Load, _) => {
                self.error(
                    path,
                    Point::Value,
                    "a program load expects `ok`, `{ rejected: \"text in the verifier log\" }`, or the errno name of a refused attach",
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

    /// `{ OPERATION: { OUTCOME: count } }`, for the operations the threads run.
    fn counts(&mut self, path: &FieldPath, ops: &[&str], value: &Value) -> Option<Expected> {
        let Value::Mapping(per_op) = value else {
            self.error(
                path,
                Point::Value,
                "counts are a mapping of operation names",
            );
            return None;
        };
        let count_type = Type::Int {
            bytes: 8,
            signed: false,
        };
        let mut counts = indexmap::IndexMap::new();
        for (op, outcomes) in per_op {
            let op = op.as_str().unwrap_or("?");
            let op_path = path.key(op);
            if !ops.contains(&op) {
                let hint = did_you_mean(op, ops.iter().copied());
                self.error(
                    &op_path,
                    Point::Key,
                    format!(
                        "the threads run no `{op}` (they run {}){hint}",
                        ops.join(", ")
                    ),
                );
                return None;
            }
            let Value::Mapping(outcomes) = outcomes else {
                self.error(
                    &op_path,
                    Point::Value,
                    "give each outcome (`ok`, an errno name) its count",
                );
                return None;
            };
            let mut per_outcome = indexmap::IndexMap::new();
            for (outcome, count) in outcomes {
                let outcome = outcome.as_str().unwrap_or("?");
                let at = op_path.key(outcome);
                if outcome != "ok" && crate::errno::code(outcome).is_none() {
                    let hint = did_you_mean(
                        outcome,
                        std::iter::once("ok").chain(crate::errno::known_names()),
                    );
                    self.error(
                        &at,
                        Point::Key,
                        format!("unknown outcome `{outcome}`: `ok` or an errno name{hint}"),
                    );
                    return None;
                }
                let count = count_type
                    .expected(count)
                    .map_err(|e| self.value_error(&at, e))
                    .ok()?;
                per_outcome.insert(outcome.to_string(), count);
            }
            counts.insert(op.to_string(), per_outcome);
        }
        // Threads that did nothing must not pass: some `ok` count must exclude zero.
        let zero = serde_json::json!(0);
        let proves_work = counts.values().any(|c| {
            c.get("ok")
                .is_some_and(|ok| !crate::case::types::value_matches(ok, &zero))
        });
        if !proves_work {
            self.error(
                path,
                Point::Value,
                "say that some operation succeeded (`ok: \"> 0\"` or a count): threads that did nothing must not pass",
            );
            return None;
        }
        Some(Expected::Counts(counts))
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

    /// `{ calls: [ { get: … }, { delete: … }, { write: … } ], args: [A0, A1] }`: one result
    /// per declared call, in order; `args` (sock_ops) the callback's `args[0]` and `args[1]`.
    fn calls_outcome(
        &mut self,
        path: &FieldPath,
        m: &serde_yaml::Mapping,
        declared: &[Call],
        sock_ops: bool,
    ) -> Option<Expected> {
        for key in m.keys() {
            let key = key.as_str().unwrap_or("?");
            let allowed = key == "calls" || (key == "args" && sock_ops);
            if !allowed {
                let why = if key == "args" {
                    "only sock_ops callbacks have arguments".to_string()
                } else {
                    "expected `calls` (and `args` for sock_ops)".to_string()
                };
                self.error(
                    &path.key(key),
                    Point::Key,
                    format!("unexpected `{key}`: {why}"),
                );
                return None;
            }
        }
        let Some(Value::Sequence(results)) = m.get("calls") else {
            self.error(
                path,
                Point::Value,
                "list what each declared call did under `calls`, in order",
            );
            return None;
        };
        if results.len() != declared.len() {
            self.error(
                &path.key("calls"),
                Point::Value,
                format!(
                    "the program makes {} calls here ({}): give one result for each, in order",
                    declared.len(),
                    describe_calls(declared)
                ),
            );
            return None;
        }
        let mut calls = Vec::new();
        for (i, (result, call)) in results.iter().zip(declared).enumerate() {
            calls.push(self.call_result(&path.key("calls").index(i), result, call)?);
        }
        let callback_args = match m.get("args") {
            None => None,
            Some(Value::Sequence(args)) if args.len() == 2 => {
                let mut expected = Vec::new();
                for (i, arg) in args.iter().enumerate() {
                    expected.push(self.callback_arg(&path.key("args").index(i), arg)?);
                }
                Some(expected)
            }
            Some(_) => {
                self.error(&path.key("args"), Point::Value, "`args` are the callback's args[0] and args[1]: two integers, TCP state names (for STATE_CB), comparisons or `any`");
                return None;
            }
        };
        Some(Expected::Observed {
            calls,
            callback_args,
        })
    }

    /// One call's result: `{ get: null | no_socket | { value, events, bytes } }`,
    /// `{ delete: 0 | ERRNO | no_socket }`, `{ write: written | no_storage }`.
    fn call_result(
        &mut self,
        path: &FieldPath,
        result: &Value,
        call: &Call,
    ) -> Option<ExpectedCall> {
        let declared = call_name(call);
        let Value::Mapping(m) = result else {
            self.error(
                path,
                Point::Value,
                format!("the declared call here is a {declared}: expect `{{ {declared}: … }}`"),
            );
            return None;
        };
        let (key, value) = match m.iter().next() {
            Some((key, value)) if m.len() == 1 => (key.as_str().unwrap_or("?"), value),
            _ => {
                self.error(
                    path,
                    Point::Value,
                    format!("one result per call: `{{ {declared}: … }}`"),
                );
                return None;
            }
        };
        if key != declared {
            self.error(
                &path.key(key),
                Point::Key,
                format!("the declared call here is a {declared}, not a {key}"),
            );
            return None;
        }
        let at = path.key(key);
        match (call, value) {
            (Call::Get { .. }, Value::Null) => Some(ExpectedCall::Get(ExpectedGet::Null)),
            (Call::Get { .. }, Value::String(s)) if s == "no_socket" => {
                Some(ExpectedCall::Get(ExpectedGet::NoSocket))
            }
            (Call::Get { .. }, v @ Value::Mapping(_)) => self
                .expected_value(&at, &object_value_type(), v)
                .map(|v| ExpectedCall::Get(ExpectedGet::Storage(v))),
            (Call::Get { .. }, _) => {
                self.error(&at, Point::Value, "get returns `null` (NULL), the storage `{ value, events, bytes }`, or `no_socket`");
                None
            }
            (Call::Delete, Value::Number(n)) if n.as_i64() == Some(0) => {
                Some(ExpectedCall::Delete(ExpectedDelete::Returned(0)))
            }
            (Call::Delete, Value::String(s)) if s == "no_socket" => {
                Some(ExpectedCall::Delete(ExpectedDelete::NoSocket))
            }
            (Call::Delete, Value::String(s)) if crate::errno::code(s).is_some() => {
                Some(ExpectedCall::Delete(ExpectedDelete::Returned(-i64::from(
                    crate::errno::code(s).unwrap_or_default(),
                ))))
            }
            (Call::Delete, _) => {
                self.error(
                    &at,
                    Point::Value,
                    "delete returns 0, an errno name (ENOENT for -ENOENT), or `no_socket`",
                );
                None
            }
            (Call::Write { .. }, Value::String(s)) if s == "written" => {
                Some(ExpectedCall::Write(ExpectedWrite::Written))
            }
            (Call::Write { .. }, Value::String(s)) if s == "no_storage" => {
                Some(ExpectedCall::Write(ExpectedWrite::NoStorage))
            }
            (Call::Write { .. }, _) => {
                self.error(&at, Point::Value, "a write is `written`, or `no_storage` when the last get returned NULL (or none came before)");
                None
            }
        }
    }

    /// A callback argument: an integer, a TCP state name, a comparison or `any`.
    fn callback_arg(&mut self, path: &FieldPath, arg: &Value) -> Option<serde_json::Value> {
        if let Some(name) = arg.as_str()
            && let Some((_, state)) = TCP_STATES.iter().find(|(n, _)| *n == name)
        {
            return Some(serde_json::json!(state));
        }
        let ty = Type::Int {
            bytes: 4,
            signed: false,
        };
        ty.expected(arg)
            .map_err(|mut e| {
                if arg.as_str().is_some_and(|a| a.starts_with("TCP_")) {
                    let names = TCP_STATES.iter().map(|(n, _)| *n);
                    let hint = did_you_mean(arg.as_str().unwrap_or_default(), names.clone());
                    e.problem = format!(
                        "unknown TCP state (known: {}){hint}",
                        names.collect::<Vec<_>>().join(", ")
                    );
                }
                self.value_error(path, e)
            })
            .ok()
    }
}

/// TCP states as include/net/tcp_states.h numbers them, which STATE_CB passes in its
/// arguments.
const TCP_STATES: &[(&str, u32)] = &[
    ("TCP_ESTABLISHED", 1),
    ("TCP_SYN_SENT", 2),
    ("TCP_SYN_RECV", 3),
    ("TCP_FIN_WAIT1", 4),
    ("TCP_FIN_WAIT2", 5),
    ("TCP_TIME_WAIT", 6),
    ("TCP_CLOSE", 7),
    ("TCP_CLOSE_WAIT", 8),
    ("TCP_LAST_ACK", 9),
    ("TCP_LISTEN", 10),
    ("TCP_CLOSING", 11),
    ("TCP_NEW_SYN_RECV", 12),
];

fn call_name(call: &Call) -> &'static str {
    match call {
        Call::Get { .. } => "get",
        Call::Delete => "delete",
        Call::Write { .. } => "write",
    }
}

fn describe_calls(calls: &[Call]) -> String {
    calls.iter().map(call_name).collect::<Vec<_>>().join(", ")
}

/// The first range of kernels at or after `from` that none of `ranges` covers.
fn first_gap(
    ranges: impl Iterator<Item = VersionRange>,
    from: KernelVersion,
) -> Option<VersionRange> {
    let mut ranges: Vec<VersionRange> = ranges.collect();
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
        let variant = |since: Option<&str>, until: Option<&str>| VersionRange {
            since: since.map(v),
            until: until.map(v),
        };
        let full = [variant(None, Some("5.6")), variant(Some("5.6"), None)];
        assert_eq!(first_gap(full.into_iter(), v("5.2")), None);
        let late = [variant(Some("5.4"), None)];
        assert_eq!(first_gap(late.into_iter(), v("5.4")), None);
        assert_eq!(
            first_gap(late.into_iter(), v("5.2")),
            Some(VersionRange {
                since: Some(v("5.2")),
                until: Some(v("5.4"))
            })
        );
        let open_end = [variant(None, Some("6.1"))];
        assert_eq!(
            first_gap(open_end.into_iter(), v("5.2")),
            Some(VersionRange {
                since: Some(v("6.1")),
                until: None
            })
        );
    }
}
