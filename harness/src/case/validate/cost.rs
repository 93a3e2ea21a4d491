//! The cost model: what a case will cost to check, run and report, computed from the case
//! as written before any repeat, thread or repeated declaration is expanded, in
//! overflow-checked arithmetic. A figure past its limit ([`crate::case::limits`]) is an
//! error where the case first goes over it, and the case is checked no further, so nothing
//! it asks for is built.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::Validator;
use crate::case::{
    limits::{
        MAX_DECLARED_COPIES, MAX_EXPRESSION_BYTES, MAX_SLOW_STEPS, MAX_STEPS, MAX_STRING_BYTES,
        MAX_THREAD_OPERATIONS, MAX_THREADS_AT_ONCE, MAX_TRANSFER_BYTES, MAX_WITHIN_TOTAL,
    },
    locate::{FieldPath, Point},
    model::CaseFile,
    steps::{
        Kind, Op, ProcessOp, RepeatOp, SocketOp, StepDecl, StepKind, ThreadGroup, ThreadsOp,
        template,
    },
};

/// A case's figures, repeats and repeated declarations multiplied out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Steps the case's `steps` run (a fork's own steps included): its rows in the results,
    /// besides one set-up step per declared map or socket that no step creates.
    pub steps: u64,
    /// Map operations all its threads run.
    pub thread_operations: u64,
    /// The most threads one of its `threads` steps starts.
    pub threads_at_once: u64,
    /// Steps that take milliseconds each: fork, attach, detach, threads, diag, iterate.
    pub slow_steps: u64,
    /// Copies its repeated declarations make.
    pub declared_copies: u64,
    /// Bytes of all its strings once expanded, at most.
    pub string_bytes: u64,
    /// The `within` waits of its steps, added up.
    pub within: Duration,
    /// Bytes its send and recv steps move.
    pub transfer_bytes: u64,
}

/// A figure summed over the case; `None` once it no longer fits 64 bits.
type Count = Option<u64>;

/// The figures of a case that add up, each with the first place it went past its limit.
#[derive(Default)]
struct Totals {
    steps: Total<u64>,
    thread_operations: Total<u64>,
    slow_steps: Total<u64>,
    declared_copies: Total<u64>,
    string_bytes: Total<u64>,
    within: Total<Duration>,
    transfer_bytes: Total<u64>,
}

struct Total<T> {
    /// `None`: past what the type holds.
    sum: Option<T>,
    over_at: Option<FieldPath>,
}

impl<T: Default> Default for Total<T> {
    fn default() -> Self {
        Self {
            sum: Some(T::default()),
            over_at: None,
        }
    }
}

impl Total<u64> {
    fn add(&mut self, n: Count) {
        self.sum = self.sum.zip(n).and_then(|(a, b)| a.checked_add(b));
    }
}

impl Total<Duration> {
    fn add(&mut self, d: Option<Duration>) {
        self.sum = self.sum.zip(d).and_then(|(a, b)| a.checked_add(b));
    }
}

impl<T: PartialOrd + Copy> Total<T> {
    /// Notes `path` as where the sum first went past `limit`.
    fn settle(&mut self, limit: T, path: &FieldPath) {
        if self.over_at.is_none() && self.sum.is_none_or(|sum| sum > limit) {
            self.over_at = Some(path.clone());
        }
    }

    /// The sum, when it never went past its limit.
    fn accepted(&self) -> Option<T> {
        self.sum.filter(|_| self.over_at.is_none())
    }
}

/// The slow kinds of step, for a message: `fork, attach and iterate`.
fn slow_kinds() -> String {
    let names = Kind::names_where(Kind::is_slow);
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// `n`, or how far past 64 bits it went.
fn figure(n: Count) -> String {
    n.map_or_else(|| format!("more than {}", u64::MAX), |n| n.to_string())
}

fn times(a: Count, b: u64) -> Count {
    a.and_then(|a| a.checked_mul(b))
}

struct Walk<'w, 'a> {
    v: &'w mut Validator<'a>,
    totals: Totals,
    threads_at_once: u64,
    /// An expression too long or a threads step too wide was reported.
    refused: bool,
}

impl Validator<'_> {
    /// The case's cost, or `None` when some figure is past its limit (each such figure is
    /// reported, where the case first goes over it).
    pub(super) fn cost(&mut self, raw: &CaseFile) -> Option<Cost> {
        let mut walk = Walk {
            v: self,
            totals: Totals::default(),
            threads_at_once: 0,
            refused: false,
        };
        walk.declarations("maps", raw.maps.iter().map(|(n, d)| (n, d.repeat, d)));
        walk.declarations("sockets", raw.sockets.iter().map(|(n, d)| (n, d.repeat, d)));
        let steps = FieldPath::default().key("steps");
        for (i, step) in raw.steps.iter().enumerate() {
            let path = steps.index(i);
            walk.step(step, &path, Some(1), false);
            walk.settle(&path.key(step.name));
        }
        walk.finish()
    }
}

impl Walk<'_, '_> {
    fn declarations<'d, T: Serialize + 'd>(
        &mut self,
        section: &str,
        decls: impl Iterator<Item = (&'d String, Option<u32>, &'d T)>,
    ) {
        for (name, repeat, decl) in decls {
            let path = FieldPath::default().key(section).key(name.as_str());
            let copies = repeat.map(u64::from);
            if let Some(copies) = copies {
                self.totals.declared_copies.add(Some(copies));
                self.totals
                    .declared_copies
                    .settle(MAX_DECLARED_COPIES, &path.key("repeat"));
            }
            let templated = copies.is_some();
            let count = Some(copies.unwrap_or(1));
            self.string(name, &path, count, templated);
            let written = serde_yaml::to_value(decl).expect("declarations serialise");
            self.strings(&written, &path, count, templated);
            self.settle(&path);
        }
    }

    /// Adds a step run `count` times; `templated`: its strings are expanded (in a repeat).
    fn step(&mut self, decl: &StepDecl, path: &FieldPath, count: Count, templated: bool) {
        let op_path = path.key(decl.name);
        self.strings(&decl.expect, &path.key("expect"), count, templated);
        if let Some(within) = decl.within {
            let waits = count
                .and_then(|n| u32::try_from(n).ok())
                .and_then(|n| within.checked_mul(n));
            self.totals.within.add(waits);
        }
        match &decl.op {
            Op::Repeat(RepeatOp::Repeat(repeat)) => {
                let count = times(count, u64::from(repeat.times));
                for (j, step) in repeat.steps.iter().enumerate() {
                    self.step(step, &op_path.key("steps").index(j), count, true);
                }
                // The repeat is not a step of its own: its steps take its place.
                return;
            }
            Op::Process(ProcessOp::Fork(children)) => {
                for (j, step) in children.iter().enumerate() {
                    self.step(step, &op_path.index(j), count, templated);
                }
            }
            Op::Threads(ThreadsOp::Threads(groups)) => self.threads(groups, &op_path, count),
            op => {
                if let Op::Sockets(SocketOp::Send(transfer) | SocketOp::Recv(transfer)) = op {
                    self.totals
                        .transfer_bytes
                        .add(times(count, u64::from(transfer.bytes)));
                }
                let written = serde_yaml::to_value(op).expect("operations serialise");
                self.strings(&written, &op_path, count, templated);
            }
        }
        self.totals.steps.add(count);
        if decl.op.kind().is_slow() {
            self.totals.slow_steps.add(count);
        }
    }

    fn threads(&mut self, groups: &[ThreadGroup], path: &FieldPath, count: Count) {
        let mut at_once: Count = Some(0);
        for (g, group) in groups.iter().enumerate() {
            at_once = at_once.and_then(|n| n.checked_add(u64::from(group.count)));
            let runs = times(
                times(count, u64::from(group.count)),
                u64::from(group.repeat),
            );
            self.totals
                .thread_operations
                .add(times(runs, group.steps.len() as u64));
            for (j, op) in group.steps.iter().enumerate() {
                let written = serde_yaml::to_value(op).expect("operations serialise");
                // Every thread's copy of its steps is expanded, `{t}` and `{i}` substituted.
                let at = path.index(g).key("steps").index(j);
                self.strings(&written, &at, runs, true);
            }
        }
        if at_once.is_none_or(|n| n > MAX_THREADS_AT_ONCE) {
            self.refuse(
                path,
                Point::Value,
                format!(
                    "{} threads at once, more than the {MAX_THREADS_AT_ONCE} one `threads` step may start",
                    figure(at_once)
                ),
            );
        }
        self.threads_at_once = self.threads_at_once.max(at_once.unwrap_or(u64::MAX));
    }

    /// Adds the strings of `value` (keys included), each `count` times.
    fn strings(&mut self, value: &Value, path: &FieldPath, count: Count, templated: bool) {
        match value {
            Value::String(text) => self.string(text, path, count, templated),
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.strings(item, &path.index(i), count, templated);
                }
            }
            Value::Mapping(entries) => {
                for (key, item) in entries {
                    let at = match key.as_str() {
                        Some(name) => path.key(name),
                        None => path.clone(),
                    };
                    self.strings(key, &at, count, templated);
                    self.strings(item, &at, count, templated);
                }
            }
            // An operation is written as a value tagged with its name.
            Value::Tagged(tagged) => self.strings(&tagged.value, path, count, templated),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn string(&mut self, text: &str, path: &FieldPath, count: Count, templated: bool) {
        let size = if templated {
            match template::expanded_size(text) {
                Ok(size) => size,
                Err(length) => {
                    self.refuse(
                        path,
                        Point::Value,
                        format!(
                            "an expression of {length} bytes, more than the {MAX_EXPRESSION_BYTES} one `{{…}}` may have: expressions are integers, `i`, `t`, `+`, `-` and `*`"
                        ),
                    );
                    return;
                }
            }
        } else {
            text.len() as u64
        };
        self.totals.string_bytes.add(times(count, size));
    }

    fn refuse(&mut self, path: &FieldPath, point: Point, message: String) {
        self.v.error(path, point, message);
        self.refused = true;
    }

    /// Notes the figures that `path` took past their limits.
    fn settle(&mut self, path: &FieldPath) {
        let t = &mut self.totals;
        t.steps.settle(MAX_STEPS, path);
        t.thread_operations.settle(MAX_THREAD_OPERATIONS, path);
        t.slow_steps.settle(MAX_SLOW_STEPS, path);
        t.string_bytes.settle(MAX_STRING_BYTES, path);
        t.within.settle(MAX_WITHIN_TOTAL, path);
        t.transfer_bytes.settle(MAX_TRANSFER_BYTES, path);
    }

    /// Reports each figure past its limit where it went over, with the whole case's figure.
    fn finish(self) -> Option<Cost> {
        let Walk {
            v,
            totals: t,
            threads_at_once,
            refused,
        } = self;
        let once = "once repeats are multiplied out";
        // Totals point at the step that went over; copies at the `repeat` that did.
        let counted = [
            (
                &t.steps,
                Point::Key,
                format!(
                    "the case runs {} steps {once}, more than the {MAX_STEPS} a case may; split it",
                    figure(t.steps.sum)
                ),
            ),
            (
                &t.thread_operations,
                Point::Key,
                format!(
                    "the case's threads run {} operations {once}, more than the {MAX_THREAD_OPERATIONS} a case may",
                    figure(t.thread_operations.sum)
                ),
            ),
            (
                &t.slow_steps,
                Point::Key,
                format!(
                    "the case runs {} {} steps {once}, more than the {MAX_SLOW_STEPS} a case may (each takes milliseconds)",
                    figure(t.slow_steps.sum),
                    slow_kinds()
                ),
            ),
            (
                &t.declared_copies,
                Point::Value,
                format!(
                    "the repeated declarations add up to {} copies, more than the {MAX_DECLARED_COPIES} a case may",
                    figure(t.declared_copies.sum)
                ),
            ),
            (
                &t.string_bytes,
                Point::Key,
                format!(
                    "the case's strings come to {} bytes {once} (a `{{…}}` counts as 20), more than the {MAX_STRING_BYTES} (16 MiB) a case may",
                    figure(t.string_bytes.sum)
                ),
            ),
            (
                &t.transfer_bytes,
                Point::Key,
                format!(
                    "the case's send and recv steps move {} bytes {once}, more than the {MAX_TRANSFER_BYTES} (64 MiB) a case may",
                    figure(t.transfer_bytes.sum)
                ),
            ),
        ];
        let mut over = refused;
        for (total, point, message) in counted {
            if let Some(path) = &total.over_at {
                v.error(path, point, message);
                over = true;
            }
        }
        if let Some(path) = &t.within.over_at {
            let waits = t.within.sum.map_or_else(
                || "more than any duration".to_string(),
                |sum| humantime::format_duration(sum).to_string(),
            );
            v.error(
                path,
                Point::Key,
                format!(
                    "the case's `within` waits add up to {waits} {once}, more than the {} a case may",
                    humantime::format_duration(MAX_WITHIN_TOTAL)
                ),
            );
            over = true;
        }
        if over {
            return None;
        }
        Some(Cost {
            steps: t.steps.accepted()?,
            thread_operations: t.thread_operations.accepted()?,
            threads_at_once,
            slow_steps: t.slow_steps.accepted()?,
            declared_copies: t.declared_copies.accepted()?,
            string_bytes: t.string_bytes.accepted()?,
            within: t.within.accepted()?,
            transfer_bytes: t.transfer_bytes.accepted()?,
        })
    }
}
