//! When two observations of one step differ in behaviour: the one rule every view uses
//! (changes between kernels, `diff`, `bisect`, the atlas).
//!
//! A case pins what it states exactly: the kind of outcome (ok, an errno, a value, a
//! rejection…), an errno's name, the text a rejection's message must contain, and every
//! value, field, count or call it gives literally. A comparison (`">= 2"`) pins only
//! whether it holds. What the case leaves open is drift: parts under `any`, a number that
//! still satisfies its comparison, the counts of a threads step beyond their comparisons,
//! the errno of a rejection (the case states its text), sock_ops callback arguments a case
//! does not list, and why a step could not run. Drift is shown apart and never counted as
//! a change of behaviour.
//!
//! Two sides may expect different things (versioned variants): a part either side pins is
//! pinned. When neither side's expectation speaks of the outcome the kernels showed (both
//! did something of another kind than expected), every difference is pinned: nothing was
//! left open.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use serde_json::Value as Json;

use super::{Actual, ObservedCall, ObservedGet};
use crate::case::{
    Expected, ExpectedCall, ExpectedGet,
    types::{ANY, Comparison},
};

/// One step as one kernel ran it: what its case expected there, and what it did.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub expected: &'a Expected,
    pub actual: &'a Actual,
}

/// How two observations of a step differ: the parts that differ and the case pins, and
/// those that differ and it leaves open. Parts are named as a reader finds them in the
/// outcome: `outcome` (its kind), `errno`, `message`, `value.count`, `value[0–8119]`,
/// `counts.update.EEXIST`, `calls[1]`, `callback_args[0]`, `not-run reason`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub pinned: Vec<String>,
    pub drift: Vec<String>,
}

impl Difference {
    /// A change of behaviour: the sides differ in something the case pins.
    pub fn is_change(&self) -> bool {
        !self.pinned.is_empty()
    }

    /// The sides differ only in what the case leaves open.
    pub fn is_drift(&self) -> bool {
        self.pinned.is_empty() && !self.drift.is_empty()
    }

    pub fn is_same(&self) -> bool {
        self.pinned.is_empty() && self.drift.is_empty()
    }
}

/// How `after` differs from `before`.
pub fn compare(before: Observed<'_>, after: Observed<'_>) -> Difference {
    let (a, b) = (before.actual, after.actual);
    if a == b {
        return Difference::default();
    }
    // Why a step could not run is the harness's account, not the kernel's behaviour.
    if let (Actual::NotRun { .. }, Actual::NotRun { .. }) = (a, b) {
        return Difference {
            pinned: Vec::new(),
            drift: vec!["not-run reason".into()],
        };
    }
    // Every differing part, in the order the outcome reads; what either side pins is a
    // subset of them, named alike.
    let differing = parts(None, a, b);
    let pins: Vec<HashSet<String>> = [before.expected, after.expected]
        .into_iter()
        .filter_map(|expected| pinned_by(expected, a, b))
        .map(HashSet::from_iter)
        .collect();
    let is_pinned = |part: &String| pins.is_empty() || pins.iter().any(|p| p.contains(part));
    let (pinned, drift) = differing.into_iter().partition(is_pinned);
    Difference {
        pinned: compact(pinned),
        drift: compact(drift),
    }
}

/// The coarse class of an outcome (its kind, and an errno's name): what a sweep's edges
/// follow, where every iteration expects its own value.
pub fn outcome_class(actual: &Actual) -> String {
    match actual {
        Actual::Errno { name, .. } => name.clone(),
        other => kind(other).to_string(),
    }
}

/// The differing parts `expected` pins, or `None` when it speaks of another kind of
/// outcome than both sides showed.
fn pinned_by(expected: &Expected, a: &Actual, b: &Actual) -> Option<Vec<String>> {
    let speaks = <&str>::from(expected) == kind(a) && kind(a) == kind(b);
    // Different kinds of outcome are always a change, whatever either side expects.
    (speaks || kind(a) != kind(b)).then(|| parts(Some(expected), a, b))
}

/// The parts in which `a` and `b` differ, each only where `expected` pins it (`None`:
/// everything is pinned).
fn parts(expected: Option<&Expected>, a: &Actual, b: &Actual) -> Vec<String> {
    let mut out = Vec::new();
    match (a, b) {
        _ if kind(a) != kind(b) => out.push("outcome".into()),
        (Actual::Errno { name: x, .. }, Actual::Errno { name: y, .. }) if x != y => {
            out.push("errno".into());
        }
        (Actual::Returned { value: x }, Actual::Returned { value: y }) if x != y => {
            out.push("returned".into());
        }
        (Actual::Value { value: x }, Actual::Value { value: y }) => {
            let pin = match expected {
                Some(Expected::Value(pin)) => Some(Pin::Json(pin)),
                None => Some(Pin::Exact),
                Some(_) => None,
            };
            json_parts(pin, x, y, "value", &mut out);
        }
        (Actual::Storages { storages: x }, Actual::Storages { storages: y }) => {
            let pin = match expected {
                Some(Expected::Storages(pin)) => Some(Pin::Json(pin)),
                None => Some(Pin::Exact),
                Some(_) => None,
            };
            json_parts(pin, x, y, "storages", &mut out);
        }
        (
            Actual::Rejected {
                errno: errno_a,
                message: x,
            },
            Actual::Rejected {
                errno: errno_b,
                message: y,
            },
        ) => {
            let (errno_pinned, message_pinned) = match expected {
                None => (true, x != y),
                Some(Expected::Rejected(text)) => (false, x.contains(text) != y.contains(text)),
                Some(_) => (false, false),
            };
            if errno_a != errno_b && errno_pinned {
                out.push("errno".into());
            }
            if message_pinned {
                out.push("message".into());
            }
        }
        (Actual::Counts { counts: x }, Actual::Counts { counts: y }) => {
            let pin = match expected {
                Some(Expected::Counts(pin)) => Some(Some(pin)),
                None => Some(None),
                Some(_) => None,
            };
            if let Some(pin) = pin {
                counts_parts(pin, x, y, &mut out);
            }
        }
        (
            Actual::Observed {
                calls: x,
                callback_args: args_x,
            },
            Actual::Observed {
                calls: y,
                callback_args: args_y,
            },
        ) => {
            // The calls, and the callback's arguments: those the expectation lists, none
            // when it lists none, all of them when nothing is left open.
            let (calls, args) = match expected {
                Some(Expected::Observed {
                    calls,
                    callback_args,
                }) => (
                    Some(calls.as_slice()),
                    callback_args.as_deref().map(Pin::Args),
                ),
                None => (None, Some(Pin::Exact)),
                Some(_) => return out,
            };
            calls_parts(calls, x, y, &mut out);
            let json = |args: &Option<[u32; 2]>| serde_json::json!(args);
            json_parts(
                args,
                &json(args_x),
                &json(args_y),
                "callback_args",
                &mut out,
            );
        }
        _ => {}
    }
    out
}

/// What pins a JSON value: the expected JSON (with `any` and comparisons), everything, or
/// callback arguments (a list of expected values).
#[derive(Clone, Copy)]
enum Pin<'a> {
    Json(&'a Json),
    Args(&'a [Json]),
    Exact,
}

/// Pushes the paths under `path` where `x` and `y` differ and `pin` pins the difference
/// (`None`: nothing is pinned).
fn json_parts(pin: Option<Pin<'_>>, x: &Json, y: &Json, path: &str, out: &mut Vec<String>) {
    let Some(pin) = pin else { return };
    if x == y {
        return;
    }
    match pin {
        Pin::Json(Json::String(s)) if s == ANY => {}
        Pin::Json(Json::String(s)) if Comparison::parse(s).is_some() => {
            let holds = |v: &Json| {
                let n = v.as_i64().map(i128::from).or(v.as_u64().map(i128::from));
                n.zip(Comparison::parse(s)).map(|(n, c)| c.holds(n))
            };
            if holds(x) != holds(y) {
                out.push(path.to_string());
            }
        }
        Pin::Args(elements) => match (x, y) {
            (Json::Array(xs), Json::Array(ys)) if xs.len() == ys.len() => {
                for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                    let pin = elements.get(i).map(Pin::Json);
                    json_parts(pin, x, y, &format!("{path}[{i}]"), out);
                }
            }
            _ => json_parts(Some(Pin::Exact), x, y, path, out),
        },
        Pin::Json(Json::Array(pins)) => match (x, y) {
            (Json::Array(xs), Json::Array(ys))
                if xs.len() == pins.len() && ys.len() == pins.len() =>
            {
                for (i, ((pin, x), y)) in pins.iter().zip(xs).zip(ys).enumerate() {
                    json_parts(Some(Pin::Json(pin)), x, y, &format!("{path}[{i}]"), out);
                }
            }
            // A shape the kernels did not follow leaves nothing open.
            _ => json_parts(Some(Pin::Exact), x, y, path, out),
        },
        Pin::Exact => match (x, y) {
            (Json::Array(xs), Json::Array(ys)) if xs.len() == ys.len() => {
                for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                    json_parts(Some(Pin::Exact), x, y, &format!("{path}[{i}]"), out);
                }
            }
            (Json::Object(xs), Json::Object(ys)) => {
                let keys: BTreeSet<&String> = xs.keys().chain(ys.keys()).collect();
                for key in keys {
                    let (x, y) = (xs.get(key), ys.get(key));
                    match (x, y) {
                        (Some(x), Some(y)) => {
                            json_parts(Some(Pin::Exact), x, y, &format!("{path}.{key}"), out);
                        }
                        _ => out.push(format!("{path}.{key}")),
                    }
                }
            }
            _ => out.push(path.to_string()),
        },
        Pin::Json(Json::Object(pins)) => match (x, y) {
            (Json::Object(xs), Json::Object(ys)) => {
                let keys: BTreeSet<&String> = xs.keys().chain(ys.keys()).collect();
                for key in keys {
                    let field = format!("{path}.{key}");
                    match (xs.get(key), ys.get(key), pins.get(key)) {
                        (Some(x), Some(y), pin) => {
                            // A field the expectation does not list fails it: pinned.
                            let pin = pin.map_or(Pin::Exact, Pin::Json);
                            json_parts(Some(pin), x, y, &field, out);
                        }
                        _ => out.push(field),
                    }
                }
            }
            _ => json_parts(Some(Pin::Exact), x, y, path, out),
        },
        // A literal number, string, boolean or null: compared whole.
        Pin::Json(_) => json_parts(Some(Pin::Exact), x, y, path, out),
    }
}

/// Counts of a threads step: a listed count is pinned as its expectation says (a number,
/// a comparison, `any`); an outcome the expectation does not list fails it whenever it
/// happens, so whether it happened is pinned and how often is drift.
fn counts_parts(
    pin: Option<&indexmap::IndexMap<String, indexmap::IndexMap<String, Json>>>,
    x: &BTreeMap<String, BTreeMap<String, u64>>,
    y: &BTreeMap<String, BTreeMap<String, u64>>,
    out: &mut Vec<String>,
) {
    let count = |counts: &BTreeMap<String, BTreeMap<String, u64>>, op: &str, outcome: &str| {
        counts
            .get(op)
            .and_then(|c| c.get(outcome))
            .copied()
            .unwrap_or(0)
    };
    let mut keys: BTreeSet<(&str, &str)> = BTreeSet::new();
    for counts in [x, y] {
        for (op, outcomes) in counts {
            keys.extend(outcomes.keys().map(|o| (op.as_str(), o.as_str())));
        }
    }
    for (op, outcome) in keys {
        let (m, n) = (count(x, op, outcome), count(y, op, outcome));
        if m == n {
            continue;
        }
        let path = format!("counts.{op}.{outcome}");
        match pin.map(|pin| pin.get(op).and_then(|o| o.get(outcome))) {
            None => out.push(path),
            Some(Some(listed)) => {
                json_parts(
                    Some(Pin::Json(listed)),
                    &Json::from(m),
                    &Json::from(n),
                    &path,
                    out,
                );
            }
            Some(None) if (m == 0) != (n == 0) => out.push(path),
            Some(None) => {}
        }
    }
}

/// A program's calls: how many there were and what each returned are pinned; a storage a
/// get returned is pinned as the expected call's storage says.
fn calls_parts(
    pin: Option<&[ExpectedCall]>,
    x: &[ObservedCall],
    y: &[ObservedCall],
    out: &mut Vec<String>,
) {
    if x.len() != y.len() {
        out.push("calls".into());
        return;
    }
    for (i, (cx, cy)) in x.iter().zip(y).enumerate() {
        let path = format!("calls[{i}]");
        match (cx, cy) {
            (
                ObservedCall::Get(ObservedGet::Storage { storage: sx }),
                ObservedCall::Get(ObservedGet::Storage { storage: sy }),
            ) => {
                // Where the expectation lists another call or none, that the call differs
                // from it fails it already: the storage is then compared whole.
                let storage_pin = match pin.and_then(|calls| calls.get(i)) {
                    Some(ExpectedCall::Get(ExpectedGet::Storage(storage))) => Pin::Json(storage),
                    _ => Pin::Exact,
                };
                json_parts(Some(storage_pin), sx, sy, &format!("{path}.storage"), out);
            }
            (cx, cy) if cx != cy => out.push(path),
            _ => {}
        }
    }
}

/// The kind of an outcome, as results.json names it.
fn kind(actual: &Actual) -> &'static str {
    actual.into()
}

/// Runs of indexes of one list, `value[0]` … `value[8119]`, as one part `value[0–8119]`.
fn compact(parts: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // The run being built: its prefix, first and last index.
    let mut run: Option<(String, u64, u64)> = None;
    let flush = |run: &mut Option<(String, u64, u64)>, out: &mut Vec<String>| {
        if let Some((prefix, first, last)) = run.take() {
            out.push(if first == last {
                format!("{prefix}[{first}]")
            } else {
                format!("{prefix}[{first}–{last}]")
            });
        }
    };
    for part in parts {
        let indexed = part
            .strip_suffix(']')
            .and_then(|p| p.rsplit_once('['))
            .and_then(|(prefix, index)| Some((prefix.to_string(), index.parse::<u64>().ok()?)));
        match (indexed, &mut run) {
            (Some((prefix, index)), Some((current, _, last)))
                if *current == prefix && index == *last + 1 =>
            {
                *last = index;
            }
            (Some((prefix, index)), _) => {
                flush(&mut run, &mut out);
                run = Some((prefix, index, index));
            }
            (None, _) => {
                flush(&mut run, &mut out);
                out.push(part);
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compare_with(expected: (&Expected, &Expected), actual: (&Actual, &Actual)) -> Difference {
        compare(
            Observed {
                expected: expected.0,
                actual: actual.0,
            },
            Observed {
                expected: expected.1,
                actual: actual.1,
            },
        )
    }

    fn value(v: Json) -> Actual {
        Actual::Value { value: v }
    }

    fn diff(pinned: &[&str], drift: &[&str]) -> Difference {
        Difference {
            pinned: pinned.iter().map(|p| p.to_string()).collect(),
            drift: drift.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn kinds_and_errnos_are_always_pinned() {
        let ok = Expected::Ok;
        let enomem = Expected::Errno("ENOMEM".into());
        assert_eq!(
            compare_with((&ok, &enomem), (&Actual::Ok, &Actual::errno(libc::ENOMEM))),
            diff(&["outcome"], &[])
        );
        // Both diverge from what they expect, yet the errno changed.
        assert_eq!(
            compare_with(
                (&ok, &ok),
                (&Actual::errno(libc::EINVAL), &Actual::errno(524))
            ),
            diff(&["errno"], &[])
        );
        let same = compare_with((&ok, &ok), (&Actual::Ok, &Actual::Ok));
        assert!(same.is_same());
    }

    #[test]
    fn literal_fields_are_pinned_and_open_ones_drift() {
        let expected = Expected::Value(json!({ "count": ">= 2", "lock": "any", "tag": 7 }));
        let before = value(json!({ "count": 2, "lock": 0, "tag": 7 }));
        // Still >= 2, the lock is open: drift only.
        let after = value(json!({ "count": 5, "lock": 1, "tag": 7 }));
        let d = compare_with((&expected, &expected), (&before, &after));
        assert_eq!(d, diff(&[], &["value.count", "value.lock"]));
        assert!(d.is_drift() && !d.is_change());
        // The comparison no longer holds, the literal changed: pinned.
        let after = value(json!({ "count": 1, "lock": 0, "tag": 8 }));
        assert_eq!(
            compare_with((&expected, &expected), (&before, &after)),
            diff(&["value.count", "value.tag"], &[])
        );
    }

    #[test]
    fn a_list_changed_throughout_is_one_range() {
        let expected = Expected::Value(json!(vec![1; 8120]));
        let d = compare_with(
            (&expected, &expected),
            (&value(json!(vec![1; 8120])), &value(json!(vec![2; 8120]))),
        );
        assert_eq!(d, diff(&["value[0–8119]"], &[]));
        let d = compare_with(
            (&expected, &expected),
            (&value(json!([1, 1, 1, 1])), &value(json!([1, 2, 3, 1]))),
        );
        // The kernels returned another length than expected: nothing is left open.
        assert_eq!(d.pinned, ["value[1–2]"]);
        let d = compare_with(
            (&expected, &expected),
            (&value(json!([1, 1, 1])), &value(json!([1, 2, 3, 1]))),
        );
        assert_eq!(d.pinned, ["value"], "lists of different lengths");
    }

    #[test]
    fn a_rejection_pins_its_text_not_its_errno() {
        let old = Expected::Rejected("unknown func bpf_sk_storage_delete#108".into());
        let new = Expected::Rejected("program of this type cannot use helper".into());
        let rejected = |errno: &str, message: &str| Actual::Rejected {
            errno: errno.into(),
            message: message.into(),
        };
        let before = rejected("EINVAL", "unknown func bpf_sk_storage_delete#108");
        let after = rejected(
            "EINVAL",
            "program of this type cannot use helper bpf_sk_storage_delete#108",
        );
        assert_eq!(
            compare_with((&old, &new), (&before, &after)),
            diff(&["message"], &[])
        );
        let after = rejected("EACCES", "unknown func bpf_sk_storage_delete#108 (2)");
        assert_eq!(
            compare_with((&old, &old), (&before, &after)),
            diff(&[], &["errno", "message"])
        );
    }

    #[test]
    fn thread_counts_drift_unless_an_unlisted_outcome_appears_or_a_bound_breaks() {
        let expected = Expected::Counts(
            serde_json::from_value(json!({ "update": { "ok": "> 0", "EEXIST": "any" } })).unwrap(),
        );
        let counts = |ok: u64, eexist: u64, enoent: u64| {
            let mut update = BTreeMap::from([("ok".to_string(), ok)]);
            for (name, n) in [("EEXIST", eexist), ("ENOENT", enoent)] {
                if n > 0 {
                    update.insert(name.to_string(), n);
                }
            }
            Actual::Counts {
                counts: BTreeMap::from([("update".to_string(), update)]),
            }
        };
        let e = (&expected, &expected);
        assert_eq!(
            compare_with(e, (&counts(900, 100, 0), &counts(950, 50, 0))),
            diff(&[], &["counts.update.EEXIST", "counts.update.ok"])
        );
        assert_eq!(
            compare_with(e, (&counts(900, 100, 0), &counts(0, 1000, 0))).pinned,
            ["counts.update.ok"]
        );
        assert_eq!(
            compare_with(e, (&counts(900, 100, 0), &counts(900, 90, 10))),
            diff(&["counts.update.ENOENT"], &["counts.update.EEXIST"])
        );
    }

    #[test]
    fn program_calls_and_callback_arguments() {
        let storage = |v: i64| {
            ObservedCall::Get(ObservedGet::Storage {
                storage: json!({ "value": v, "events": 1 }),
            })
        };
        let observed = |calls: Vec<ObservedCall>, args: [u32; 2]| Actual::Observed {
            calls,
            callback_args: Some(args),
        };
        let expected = Expected::Observed {
            calls: vec![ExpectedCall::Get(ExpectedGet::Storage(
                json!({ "value": 5, "events": "any" }),
            ))],
            callback_args: Some(vec![json!(7), json!("any")]),
        };
        let e = (&expected, &expected);
        assert_eq!(
            compare_with(
                e,
                (
                    &observed(vec![storage(5)], [7, 1]),
                    &observed(vec![storage(5)], [7, 2])
                )
            ),
            diff(&[], &["callback_args[1]"])
        );
        assert_eq!(
            compare_with(
                e,
                (
                    &observed(vec![storage(5)], [7, 1]),
                    &observed(vec![storage(6)], [8, 1])
                )
            ),
            diff(&["calls[0].storage.value", "callback_args[0]"], &[])
        );
        let null = ObservedCall::Get(ObservedGet::Null);
        assert_eq!(
            compare_with(
                e,
                (
                    &observed(vec![storage(5)], [7, 1]),
                    &observed(vec![null.clone()], [7, 1])
                )
            )
            .pinned,
            ["calls[0]"]
        );
        assert_eq!(
            compare_with(
                e,
                (
                    &observed(vec![storage(5)], [7, 1]),
                    &observed(vec![null.clone(), null], [7, 1])
                )
            )
            .pinned,
            ["calls"]
        );
    }

    #[test]
    fn not_run_reasons_and_unforeseen_outcomes() {
        let ok = Expected::Ok;
        let not_run = |why: &str| Actual::NotRun { reason: why.into() };
        assert_eq!(
            compare_with(
                (&ok, &ok),
                (
                    &not_run("verification time 3 usec"),
                    &not_run("verification time 4 usec")
                )
            ),
            diff(&[], &["not-run reason"])
        );
        // Neither side expected a value: nothing was left open.
        assert_eq!(
            compare_with(
                (&ok, &ok),
                (&value(json!({ "a": 1 })), &value(json!({ "a": 2 })))
            ),
            diff(&["value.a"], &[])
        );
    }

    #[test]
    fn sweeps_follow_the_outcome_class() {
        assert_eq!(outcome_class(&Actual::errno(libc::ENOMEM)), "ENOMEM");
        assert_eq!(outcome_class(&value(json!(3))), "value");
        assert_eq!(outcome_class(&Actual::Ok), "ok");
    }
}
