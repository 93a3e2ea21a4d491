//! Turns what kernels did into proposed expectations: for every step whose actual outcome
//! on some kernel is not the expectation in force there, an edit of the case file's text
//! that makes it so, for a human to review.
//!
//! Kernels are ordered by the version each reported. Only a variant that some kernel
//! contradicts is edited: its kernels fall into runs of equal outcomes, and each run gets a
//! variant of its own, split between the adjacent kernels observed (at the later kernel's
//! series when the earlier one is in an earlier series, else at its full version). A split
//! is placed only between kernels that both ran the step; with no kernel on the other side
//! (one kernel, or every kernel alike), what the kernels did replaces the variant's
//! outcome. Reasons say which kernels were observed on each side.
//!
//! The edit is made on the text, line by line, so that the rest of the file (comments,
//! layout, quoting) stays as it is; only shapes that can be edited safely are: `expect:`
//! with one value on its line (`ok`, `ENOMEM`, `{ value: 1 }`), or a block list of
//! variants written as block mappings. Anything else (anchors and aliases, flow lists,
//! values over several lines, steps inside a fork or a repeat, outcomes the case language
//! cannot state in a line) is reported as not edited, with why. Every edit is checked
//! before it is proposed: the edited file must validate and expect what every kernel did.

use std::{
    collections::HashMap,
    ops::{Range, RangeInclusive},
};

use saphyr::{LoadableYamlNode, MarkedYaml, YamlData};

use crate::{
    case::{Case, Step, Variant},
    results::{
        Actual, CaseOutcome, KernelRun, KernelStatus, ObservedCall, ObservedDelete, ObservedGet,
        ObservedWrite, StepResult,
    },
    version::{KernelVersion, VersionRange},
    vm::Arch,
};

/// Why a step's outcome replaced its expectation where a version split might belong.
pub const ONE_KERNEL: &str = "one kernel cannot place a version split: record with several kernels, --kernel A --kernel B or a results file holding several, to propose one";

/// What was proposed for one step that some kernel contradicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEdit {
    /// The text now expects what the kernels did; `one_kernel`: a single kernel ran the
    /// step, so its outcome replaced the expectation without a version split.
    Edited {
        step: String,
        what: String,
        one_kernel: bool,
    },
    /// The step was left alone, and why.
    Refused { step: String, why: String },
}

/// The case file's text with the edits made, and what was done per step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub text: String,
    pub edits: Vec<StepEdit>,
}

/// What one kernel did in a step.
#[derive(Debug, Clone, Copy)]
struct Observation<'a> {
    kernel: &'a str,
    version: KernelVersion,
    arch: Arch,
    actual: &'a Actual,
}

/// A kernel that ran the case: its steps by id.
struct RanCase<'a> {
    kernel: &'a KernelRun,
    version: KernelVersion,
    steps: HashMap<&'a str, &'a StepResult>,
}

/// One variant of the proposal: a range, and what it expects there.
#[derive(Debug)]
struct Piece<'a> {
    range: VersionRange,
    /// The spelling of what `seen` did; `None`: the edited variant's own expectation.
    new: Option<String>,
    /// The kernels that did this, and the observed kernels next to them that did otherwise.
    seen: Vec<Observation<'a>>,
    before: Option<Observation<'a>>,
    after: Option<Observation<'a>>,
}

/// The pieces that variant `index` of a step becomes.
struct VariantPlan<'a> {
    index: usize,
    pieces: Vec<Piece<'a>>,
}

/// Proposes `text` (the case file of `case`) edited so that every step expects what each
/// of `kernels` did in it. Only kernels that ran with a version and ran the case (it passed
/// or diverged: not skipped, not failed) count, and only the steps they attempted.
pub fn propose(text: &str, case: &Case, kernels: &[KernelRun]) -> Proposal {
    let results: Vec<RanCase<'_>> = kernels
        .iter()
        .filter(|k| k.status == KernelStatus::Ran)
        .filter_map(|k| {
            let result = k.cases.iter().find(|c| {
                c.name == case.name
                    && matches!(c.outcome, CaseOutcome::Pass | CaseOutcome::Diverged)
            })?;
            Some(RanCase {
                kernel: k,
                version: k.version?,
                steps: result.steps.iter().map(|s| (s.id.as_str(), s)).collect(),
            })
        })
        .collect();
    let layout = Layout {
        newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
        trailing: text.ends_with('\n'),
    };
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let root = MarkedYaml::load_from_str(text)
        .ok()
        .and_then(|docs| docs.into_iter().next());
    let mut edits = Vec::new();
    // Later steps first, so that edits do not move the lines of those still to edit.
    for step in every_step(&case.steps).into_iter().rev() {
        let outcome = propose_step(&mut lines, root.as_ref(), &layout, case, step, &results);
        match outcome {
            Ok(None) => {}
            Ok(Some((what, one_kernel))) => edits.push(StepEdit::Edited {
                step: step.id.clone(),
                what,
                one_kernel,
            }),
            Err(why) => edits.push(StepEdit::Refused {
                step: step.id.clone(),
                why,
            }),
        }
    }
    edits.reverse();
    // Unedited, the file stays as it was, whatever its line ends.
    let text = if edits.iter().any(|e| matches!(e, StepEdit::Edited { .. })) {
        layout.join(&lines)
    } else {
        text.to_string()
    };
    Proposal { text, edits }
}

/// Edits `lines` so that `step` expects what each kernel did in it, when some kernel
/// contradicts it: says what it now expects and whether one kernel alone ran it.
fn propose_step(
    lines: &mut Vec<String>,
    root: Option<&MarkedYaml<'_>>,
    layout: &Layout,
    case: &Case,
    step: &Step,
    results: &[RanCase<'_>],
) -> Result<Option<(String, bool)>, String> {
    let (seen, relabelled) = observations(step, results);
    if seen.iter().all(|o| expects(&step.expect.variants, o)) {
        return Ok(None);
    }
    if let Some(why) = relabelled {
        return Err(why);
    }
    let root = root.ok_or("the file does not parse as YAML")?;
    let unedited = lines.clone();
    let edited = edit_step(lines, root, step, &seen)
        .and_then(|what| check(&layout.join(lines), case, step, &seen).map(|()| what));
    if edited.is_err() {
        *lines = unedited;
    }
    Ok(Some((edited?, seen.len() == 1)))
}

/// How the file ends its lines, which the proposal keeps.
struct Layout {
    newline: &'static str,
    trailing: bool,
}

impl Layout {
    fn join(&self, lines: &[String]) -> String {
        let mut text = lines.join(self.newline);
        if self.trailing {
            text.push_str(self.newline);
        }
        text
    }
}

/// The case's steps in file order, a fork's steps right after it.
fn every_step(steps: &[Step]) -> Vec<&Step> {
    steps
        .iter()
        .flat_map(|s| std::iter::once(s).chain(every_step(&s.children)))
        .collect()
}

/// Whether the variant in force on the kernel's version expects what it did.
fn expects(variants: &[Variant], o: &Observation<'_>) -> bool {
    variants
        .iter()
        .find(|v| v.applies(o.version, o.arch))
        .is_some_and(|v| o.actual.satisfies(&v.outcome))
}

/// What each kernel did in `step`, by version; steps a kernel could not attempt show
/// nothing. The second part says which kernel ran the step under another label, when one
/// did: its results are of an older case, whose step with this number may be another.
fn observations<'a>(
    step: &Step,
    results: &[RanCase<'a>],
) -> (Vec<Observation<'a>>, Option<String>) {
    let mut seen = Vec::new();
    let mut relabelled = None;
    for RanCase {
        kernel,
        version,
        steps,
    } in results
    {
        let Some(ran) = steps.get(step.id.as_str()) else {
            continue;
        };
        if matches!(ran.actual, Actual::NotRun { .. }) {
            continue;
        }
        if ran.label != step.label {
            relabelled.get_or_insert(format!(
                "{} ran step {} as `{}`, which the case now writes `{}`: the results are of an older case; run it again",
                kernel.kernel, step.id, ran.label, step.label
            ));
        }
        seen.push(Observation {
            kernel: &kernel.kernel,
            version: *version,
            arch: kernel.architecture(),
            actual: &ran.actual,
        });
    }
    seen.sort_by_key(|o| o.version);
    (seen, relabelled)
}

/// Edits the expectation of `step` in `lines` so that it expects what `seen` did; says
/// what it now expects.
fn edit_step(
    lines: &mut Vec<String>,
    root: &MarkedYaml<'_>,
    step: &Step,
    seen: &[Observation<'_>],
) -> Result<String, String> {
    let index = match step.id.parse::<usize>() {
        Ok(n) if n > 0 => n - 1,
        _ => {
            return Err(format!(
                "step {} is a set-up step or inside a fork or a repeat; edit by hand",
                step.id
            ));
        }
    };
    let plans = plan(step, seen)?;
    let variants = &step.expect.variants;
    let what = plans
        .iter()
        .map(|p| describe(&variants[p.index], &p.pieces))
        .collect::<Vec<_>>()
        .join("; ");
    match written(lines, root, index)? {
        Written::OneLine {
            line,
            value,
            column,
        } => {
            let [plan] = &plans[..] else {
                return Err("one value stands for one variant; edit by hand".into());
            };
            edit_one_line(
                lines,
                line,
                value,
                column,
                &variants[plan.index],
                &plan.pieces,
            );
        }
        Written::Variants(items) if items.len() == variants.len() => {
            for plan in plans.iter().rev() {
                edit_variant(
                    lines,
                    &items[plan.index],
                    &variants[plan.index],
                    &plan.pieces,
                )?;
            }
        }
        Written::Variants(_) => {
            return Err("its list of variants is not the case's; edit by hand".into());
        }
    }
    Ok(what)
}

/// How each variant that some kernel contradicts is to be split.
fn plan<'a>(step: &Step, seen: &[Observation<'a>]) -> Result<Vec<VariantPlan<'a>>, String> {
    // Splitting ranges is per version; one architecture's variants are the author's.
    if step.expect.variants.iter().any(|v| v.arch.is_some()) {
        return Err(format!(
            "step {} has variants for one architecture; edit by hand",
            step.id
        ));
    }
    if let Some(o) = seen
        .iter()
        .find(|o| step.expect.for_kernel(o.version, o.arch).is_none())
    {
        return Err(format!(
            "no variant covers {} ({}); edit by hand",
            o.version, o.kernel
        ));
    }
    let mut plans = Vec::new();
    for (index, variant) in step.expect.variants.iter().enumerate() {
        let inside: Vec<usize> = (0..seen.len())
            .filter(|&i| variant.range.contains(seen[i].version))
            .collect();
        let (Some(&first), Some(&last)) = (inside.first(), inside.last()) else {
            continue;
        };
        if seen[first..=last]
            .iter()
            .all(|o| o.actual.satisfies(&variant.outcome))
        {
            continue;
        }
        let before = first.checked_sub(1).map(|i| seen[i]);
        let after = seen.get(last + 1).copied();
        plans.push(VariantPlan {
            index,
            pieces: split_variant(variant, &seen[first..=last], before, after)?,
        });
    }
    Ok(plans)
}

/// The pieces `variant` becomes: one per run of equal outcomes among `inside` (its
/// kernels, by version), split between adjacent kernels. A run of a new outcome at either
/// end stops at the split towards the kernel observed next to the variant (`before`,
/// `after`), if any: the rest of the variant, which no kernel ran, keeps its expectation.
fn split_variant<'a>(
    variant: &Variant,
    inside: &[Observation<'a>],
    before: Option<Observation<'a>>,
    after: Option<Observation<'a>>,
) -> Result<Vec<Piece<'a>>, String> {
    let mut runs: Vec<(Option<String>, Vec<Observation<'a>>)> = Vec::new();
    let mut previous: Option<Observation<'a>> = None;
    for o in inside {
        let new = if o.actual.satisfies(&variant.outcome) {
            None
        } else {
            Some(spelling(o.actual)?)
        };
        match runs.last_mut() {
            Some((outcome, members)) if *outcome == new => members.push(*o),
            _ => {
                if let Some(p) = previous
                    && p.version == o.version
                {
                    return Err(format!(
                        "{} and {} both report {} yet did {} and {}: no version split tells them apart; edit by hand",
                        p.kernel,
                        o.kernel,
                        o.version,
                        words(p.actual),
                        words(o.actual)
                    ));
                }
                runs.push((new, vec![*o]));
            }
        }
        previous = Some(*o);
    }
    let mut pieces = Vec::new();
    let mut since = variant.range.since;
    for (k, (new, members)) in runs.iter().enumerate() {
        let (Some(&first), Some(&last)) = (members.first(), members.last()) else {
            continue;
        };
        let is_new = new.is_some();
        let prior = match k.checked_sub(1) {
            Some(j) => runs[j].1.last().copied(),
            None => before.filter(|_| is_new),
        };
        let next = match runs.get(k + 1) {
            Some((_, members)) => members.first().copied(),
            None => after.filter(|_| is_new),
        };
        // A kernel that did the same marks no change, so no split towards it.
        let did_otherwise = |o: &Observation<'_>| spelling(o.actual).ok() != *new;
        if k == 0
            && let Some(p) = prior.filter(did_otherwise)
        {
            let start = at_least(split_between(p.version, first.version), variant.range.since);
            if since != Some(start) {
                pieces.push(Piece::unobserved(since, Some(start)));
                since = Some(start);
            }
        }
        let until = match next.filter(did_otherwise) {
            Some(n) => Some(at_most(
                split_between(last.version, n.version),
                variant.range.until,
            )),
            None => variant.range.until,
        };
        pieces.push(Piece {
            range: VersionRange { since, until },
            new: new.clone(),
            seen: members.clone(),
            before: prior,
            after: next,
        });
        since = until;
    }
    if since != variant.range.until {
        pieces.push(Piece::unobserved(since, variant.range.until));
    }
    Ok(pieces)
}

impl Piece<'_> {
    /// Part of the edited variant that no kernel ran: it keeps the variant's expectation.
    fn unobserved(since: Option<KernelVersion>, until: Option<KernelVersion>) -> Self {
        Self {
            range: VersionRange { since, until },
            new: None,
            seen: Vec::new(),
            before: None,
            after: None,
        }
    }

    /// Where the piece's outcome was recorded, for its reason: its kernels, and the
    /// kernels observed next to it.
    fn evidence(&self, variant: &Variant) -> String {
        let outcome = match (&self.new, self.seen.first()) {
            (Some(_), Some(o)) => words(o.actual),
            _ => brief(variant.outcome.to_string()),
        };
        let before = self.before.map(|o| (words(o.actual), vec![o]));
        let after = self.after.map(|o| (words(o.actual), vec![o]));
        // Kernels next to the piece that did the same are listed with it.
        let mut groups: Vec<(String, Vec<Observation<'_>>)> = Vec::new();
        for (outcome, seen) in before
            .into_iter()
            .chain([(outcome, self.seen.clone())])
            .chain(after)
        {
            match groups.last_mut() {
                Some((last, members)) if *last == outcome => members.extend(seen),
                _ => groups.push((outcome, seen)),
            }
        }
        let around = match (groups.len(), self.before.or(self.after), self.seen.len()) {
            (2.., _, _) => "; kernels between them not run",
            (_, Some(_), _) => "",
            (_, None, 1) => ", the only kernel that ran the step",
            (_, None, _) => ", every kernel that ran the step",
        };
        let parts: Vec<String> = groups
            .iter()
            .map(|(outcome, seen)| format!("{outcome} on {}", versions(seen)))
            .collect();
        format!("recorded: {}{around}", parts.join(", "))
    }
}

/// Where behaviour seen on `new` is taken to start, `old` (an earlier kernel) having done
/// otherwise: `new`'s series when `old` is in an earlier one, else `new` itself.
fn split_between(old: KernelVersion, new: KernelVersion) -> KernelVersion {
    let series = KernelVersion::new(new.major, new.minor, 0);
    if old < series { series } else { new }
}

fn at_least(version: KernelVersion, bound: Option<KernelVersion>) -> KernelVersion {
    bound.map_or(version, |b| version.max(b))
}

fn at_most(version: KernelVersion, bound: Option<KernelVersion>) -> KernelVersion {
    bound.map_or(version, |b| version.min(b))
}

/// `7.0.13`, `7.0.13 and 7.1.13`, `6.1, 6.6 and 6.12`: each version once.
fn versions(seen: &[Observation<'_>]) -> String {
    let mut listed: Vec<String> = Vec::new();
    for o in seen {
        let version = o.version.to_string();
        if !listed.contains(&version) {
            listed.push(version);
        }
    }
    match listed.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => listed.concat(),
    }
}

/// What a step now expects, for the command's output.
fn describe(variant: &Variant, pieces: &[Piece<'_>]) -> String {
    let now: Vec<String> = pieces
        .iter()
        .map(|p| {
            let outcome = match (&p.new, p.seen.first()) {
                (Some(_), Some(o)) => words(o.actual),
                _ => brief(variant.outcome.to_string()),
            };
            format!("{outcome} for {}", p.range)
        })
        .collect();
    format!(
        "expects {} (was {} for {})",
        now.join(", "),
        brief(variant.outcome.to_string()),
        variant.range
    )
}

/// An outcome in a few words, for reasons and messages.
fn words(actual: &Actual) -> String {
    match actual {
        Actual::Errno { name, .. } => name.clone(),
        other => brief(other.to_string()),
    }
}

/// At most 60 characters of `text`: a value of 8 KiB would drown a reason.
fn brief(text: String) -> String {
    const MOST: usize = 60;
    match text.char_indices().nth(MOST) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// The case language's spelling of an outcome, on one line.
fn spelling(actual: &Actual) -> Result<String, String> {
    Ok(match actual {
        Actual::Ok => "ok".into(),
        Actual::Errno { name, .. } if crate::errno::code(name).is_some() => name.clone(),
        Actual::Value { value } => format!("{{ value: {} }}", flow(value)),
        Actual::Storages { storages } => format!("{{ storages: {} }}", flow(storages)),
        Actual::NotListed => "not_listed".into(),
        Actual::NoRecord => "no_record".into(),
        Actual::Rejected { message, .. } if !message.trim().is_empty() => {
            format!("{{ rejected: {} }}", quote(message.trim()))
        }
        Actual::Rejected { errno, .. } => {
            return Err(format!(
                "the kernel refused the program before verifying ({errno}, no verifier log), which a load cannot expect; edit by hand"
            ));
        }
        Actual::Observed {
            calls,
            callback_args,
        } => {
            let calls = calls
                .iter()
                .map(call_spelling)
                .collect::<Result<Vec<_>, _>>()?;
            let args = callback_args
                .map(|[a, b]| format!(", args: [{a}, {b}]"))
                .unwrap_or_default();
            format!("{{ calls: [ {} ]{args} }}", calls.join(", "))
        }
        Actual::Counts { .. } => {
            return Err(
                "thread counts vary from run to run: write them by hand, with comparisons such as \"> 0\" or `any`"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "the kernel did `{other}`, which this command cannot write as an expectation; edit by hand"
            ));
        }
    })
}

fn call_spelling(call: &ObservedCall) -> Result<String, String> {
    Ok(match call {
        ObservedCall::Get(ObservedGet::NoSocket) => "{ get: no_socket }".into(),
        ObservedCall::Get(ObservedGet::Null) => "{ get: null }".into(),
        ObservedCall::Get(ObservedGet::Storage { storage }) => {
            format!("{{ get: {} }}", flow(storage))
        }
        ObservedCall::Delete(ObservedDelete::NoSocket) => "{ delete: no_socket }".into(),
        ObservedCall::Delete(ObservedDelete::Returned { value: 0 }) => "{ delete: 0 }".into(),
        ObservedCall::Delete(ObservedDelete::Returned { value }) => {
            let name = i32::try_from(-value)
                .ok()
                .filter(|code| *code > 0)
                .map(crate::errno::name)
                .filter(|name| crate::errno::code(name).is_some())
                .ok_or(format!(
                    "a delete returned {value}, which a case cannot expect; edit by hand"
                ))?;
            format!("{{ delete: {name} }}")
        }
        ObservedCall::Write(ObservedWrite::Written) => "{ write: written }".into(),
        ObservedCall::Write(ObservedWrite::NoStorage) => "{ write: no_storage }".into(),
    })
}

/// JSON as a one-line YAML flow node, keys bare where YAML reads them as the same text.
fn flow(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) if map.is_empty() => "{}".into(),
        serde_json::Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(key, value)| format!("{}: {}", flow_key(key), flow(value)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        // Numbers, booleans, null, and strings quoted as JSON, which YAML reads alike.
        other => other.to_string(),
    }
}

fn flow_key(key: &str) -> String {
    let bare = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if bare { key.to_string() } else { quote(key) }
}

/// Quoted as JSON, which YAML reads as a double-quoted string whatever the text.
fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// The edited file must validate, and expect on every kernel what it did.
fn check(text: &str, case: &Case, step: &Step, seen: &[Observation<'_>]) -> Result<(), String> {
    let edited = crate::case::parse(&case.file, text)
        .map_err(|e| format!("the edit would not validate ({e}); edit by hand"))?;
    let steps = every_step(&edited.steps);
    let Some(now) = steps.iter().find(|s| s.id == step.id) else {
        return Err(format!("the edit loses step {}; edit by hand", step.id));
    };
    match seen.iter().find(|o| !expects(&now.expect.variants, o)) {
        Some(o) => Err(format!(
            "the edit would still not expect {} on {} ({}); edit by hand",
            o.actual, o.version, o.kernel
        )),
        None => Ok(()),
    }
}

/// A step's `expect:` as the file writes it.
enum Written<'r> {
    /// One value on the key's line: the line, the value's bytes on it, the key's column.
    OneLine {
        line: usize,
        value: Range<usize>,
        column: usize,
    },
    /// A block list of variants.
    Variants(&'r [MarkedYaml<'r>]),
}

/// How `steps[index]` writes its expectation, when it can be edited.
fn written<'r>(
    lines: &[String],
    root: &'r MarkedYaml<'r>,
    index: usize,
) -> Result<Written<'r>, String> {
    let steps = mapping_get(root, "steps")
        .ok_or("no `steps` in the file")?
        .1;
    let YamlData::Sequence(items) = &steps.data else {
        return Err("`steps` is not a list".into());
    };
    let node = items
        .get(index)
        .ok_or(format!("no steps[{index}] in the file"))?;
    if first_char(lines, node) == Some('{') {
        return Err("the step is written as a flow mapping `{ … }`; edit by hand".into());
    }
    let (key, value) = mapping_get(node, "expect").ok_or("the step has no `expect`")?;
    let line = line_of(key);
    if has_anchor_or_alias(&lines[line]) {
        return Err(format!(
            "its expectation is an anchor or an alias (line {}): other steps share it; edit by hand",
            line + 1
        ));
    }
    let on_key_line = line_of(value) == line && value.span.end.line() == value.span.start.line();
    match &value.data {
        YamlData::Sequence(items) if line_of(value) > line => Ok(Written::Variants(items)),
        YamlData::Value(_) | YamlData::Mapping(_) if on_key_line => {
            let start = byte_at(&lines[line], value.span.start.col());
            Ok(Written::OneLine {
                line,
                value: start..value_end(&lines[line], start),
                column: key.span.start.col(),
            })
        }
        _ => Err(format!(
            "its expectation (line {}) is neither one value on its line nor a block list of variants; edit by hand",
            line + 1
        )),
    }
}

/// Replaces the one value on `line` by `pieces`: in place when one new outcome replaces
/// it, else by a block list of variants.
fn edit_one_line(
    lines: &mut Vec<String>,
    line: usize,
    value: Range<usize>,
    column: usize,
    variant: &Variant,
    pieces: &[Piece<'_>],
) {
    let text = lines[line].clone();
    let (head, old, tail) = (
        &text[..value.start],
        &text[value.clone()],
        &text[value.end..],
    );
    if let [Piece { new: Some(new), .. }] = pieces {
        lines[line] = format!("{head}{new}{tail}");
        return;
    }
    let dash = column + 2;
    let mut block = vec![head.trim_end().to_string()];
    for piece in pieces {
        let evidence = piece.evidence(variant);
        let (expect, reason) = match &piece.new {
            Some(new) => (new.clone(), evidence),
            // A comment beside the old value stays with it.
            None => (
                format!("{old}{tail}"),
                format!("as the case expected before recording; {evidence}"),
            ),
        };
        block.extend(new_variant(dash, dash + 2, piece.range, &expect, &reason));
    }
    lines.splice(line..=line, block);
}

/// Replaces the block variant `item` by `pieces`: the variant's own lines, narrowed, for
/// its expectation, new variants for new outcomes.
fn edit_variant(
    lines: &mut Vec<String>,
    item: &MarkedYaml<'_>,
    variant: &Variant,
    pieces: &[Piece<'_>],
) -> Result<(), String> {
    let shape = VariantShape::read(lines, item)?;
    let mut block = Vec::new();
    for piece in pieces {
        match &piece.new {
            Some(new) => block.extend(new_variant(
                shape.dash,
                shape.column,
                piece.range,
                new,
                &piece.evidence(variant),
            )),
            None => block.extend(shape.narrowed(lines, variant.range, piece.range)),
        }
    }
    lines.splice(shape.lines.clone(), block);
    Ok(())
}

/// A variant's lines: `- ` at column `dash`, its fields at `column`.
fn new_variant(
    dash: usize,
    column: usize,
    range: VersionRange,
    expect: &str,
    reason: &str,
) -> Vec<String> {
    let mut fields = Vec::new();
    fields.extend(range.since.map(|v| format!("since: \"{v}\"")));
    fields.extend(range.until.map(|v| format!("until: \"{v}\"")));
    fields.push(format!("expect: {expect}"));
    fields.push(format!("reason: {}", quote(reason)));
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| field_line(dash, column, i == 0, field))
        .collect()
}

/// A field of a block variant; the first carries the dash.
fn field_line(dash: usize, column: usize, first: bool, field: &str) -> String {
    if first {
        let gap = column.saturating_sub(dash + 1).max(1);
        format!("{}-{}{field}", " ".repeat(dash), " ".repeat(gap))
    } else {
        format!("{}{field}", " ".repeat(column))
    }
}

/// A variant written as a block mapping after `- `.
struct VariantShape {
    lines: RangeInclusive<usize>,
    /// The columns of its dash and of its keys.
    dash: usize,
    column: usize,
    /// The lines of `since` and `until`, with the bytes of each one's value.
    since: Option<(usize, Range<usize>)>,
    until: Option<(usize, Range<usize>)>,
}

impl VariantShape {
    fn read(lines: &[String], item: &MarkedYaml<'_>) -> Result<Self, String> {
        let YamlData::Mapping(map) = &item.data else {
            return Err("a variant is not a mapping; edit by hand".into());
        };
        let first = line_of(item);
        let column = item.span.start.col();
        let key_at = byte_at(&lines[first], column);
        // A block variant reads `- since: …`: its first key follows the item's dash.
        let dash = lines[first][..key_at]
            .trim_end()
            .strip_suffix('-')
            .map(|before| before.chars().count())
            .filter(|_| !lines[first][key_at..].starts_with('{'));
        let Some(dash) = dash else {
            return Err(format!(
                "its variants are not block mappings after `- ` (line {}); edit by hand",
                first + 1
            ));
        };
        let mut last = first;
        for (k, v) in map.iter() {
            last = last.max(line_of(k)).max(line_of(v));
        }
        // A value continued on deeper-indented lines belongs to the variant too.
        while lines
            .get(last + 1)
            .is_some_and(|l| !l.trim().is_empty() && indent_of(l) > column)
        {
            last += 1;
        }
        if lines[first..=last].iter().any(|l| has_anchor_or_alias(l)) {
            return Err(format!(
                "its variant (line {}) holds an anchor or an alias; edit by hand",
                first + 1
            ));
        }
        let bound = |name: &str| -> Result<Option<(usize, Range<usize>)>, String> {
            let Some((k, v)) = map.iter().find(|(k, _)| k.data.as_str() == Some(name)) else {
                return Ok(None);
            };
            let line = line_of(k);
            if line_of(v) != line {
                return Err(format!(
                    "`{name}` (line {}) has its value on another line; edit by hand",
                    line + 1
                ));
            }
            let start = byte_at(&lines[line], v.span.start.col());
            Ok(Some((line, start..value_end(&lines[line], start))))
        };
        Ok(Self {
            lines: first..=last,
            dash,
            column,
            since: bound("since")?,
            until: bound("until")?,
        })
    }

    /// The variant's own lines, its range `old` narrowed to `new` (within it).
    fn narrowed(&self, lines: &[String], old: VersionRange, new: VersionRange) -> Vec<String> {
        let first = *self.lines.start();
        let mut out = lines[self.lines.clone()].to_vec();
        let quoted = |v: KernelVersion| format!("\"{v}\"");
        let mut added = Vec::new();
        if let Some(until) = new.until.filter(|u| old.until != Some(*u)) {
            match (&self.until, &self.since) {
                (Some((line, value)), _) => {
                    out[line - first].replace_range(value.clone(), &quoted(until));
                }
                (None, Some((line, _))) => out.insert(
                    line - first + 1,
                    field_line(
                        self.dash,
                        self.column,
                        false,
                        &format!("until: {}", quoted(until)),
                    ),
                ),
                (None, None) => added.push(format!("until: {}", quoted(until))),
            }
        }
        if let Some(since) = new.since.filter(|s| old.since != Some(*s)) {
            match &self.since {
                Some((line, value)) => {
                    out[line - first].replace_range(value.clone(), &quoted(since));
                }
                None => added.insert(0, format!("since: {}", quoted(since))),
            }
        }
        if !added.is_empty() {
            // The dash moves to the first field added.
            let at = byte_at(&out[0], self.dash);
            out[0].replace_range(at..at + 1, " ");
            let added = added
                .iter()
                .enumerate()
                .map(|(i, field)| field_line(self.dash, self.column, i == 0, field));
            out.splice(0..0, added);
        }
        out
    }
}

fn mapping_get<'a>(
    node: &'a MarkedYaml<'a>,
    key: &str,
) -> Option<(&'a MarkedYaml<'a>, &'a MarkedYaml<'a>)> {
    match &node.data {
        YamlData::Mapping(map) => map.iter().find(|(k, _)| k.data.as_str() == Some(key)),
        _ => None,
    }
}

/// 0-based line of a node.
fn line_of(node: &MarkedYaml<'_>) -> usize {
    node.span.start.line() - 1
}

fn first_char(lines: &[String], node: &MarkedYaml<'_>) -> Option<char> {
    let line = lines.get(line_of(node))?;
    line[byte_at(line, node.span.start.col())..].chars().next()
}

/// The byte offset of character column `column` (saphyr counts characters).
fn byte_at(line: &str, column: usize) -> usize {
    line.char_indices()
        .nth(column)
        .map_or(line.len(), |(at, _)| at)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Where the value that starts at byte `start` of `line` ends: before a comment or at the
/// line's end, without trailing blanks.
fn value_end(line: &str, start: usize) -> usize {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut previous = ' ';
    let mut end = line.len();
    for (i, c) in line[start..].char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            // A quote opens a quoted scalar only where one may start (not `it's`).
            None if (c == '"' || c == '\'')
                && (previous.is_whitespace() || "{[,:".contains(previous)) =>
            {
                quote = Some(c);
            }
            None if c == '#' && previous.is_whitespace() => {
                end = start + i;
                break;
            }
            None => {}
        }
        previous = c;
    }
    start + line[start..end].trim_end().len()
}

/// `&name` or `*name` outside quotes: the line defines or uses an anchor.
fn has_anchor_or_alias(line: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => return false,
            None if (c == '&' || c == '*')
                && previous.is_whitespace()
                && line[i + 1..].starts_with(|n: char| n.is_ascii_alphanumeric()) =>
            {
                return true;
            }
            None => {}
        }
        previous = c;
    }
    false
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{
        case::Expected,
        results::{CaseResult, Verdict},
    };

    fn parse(text: &str) -> Case {
        crate::case::parse(Path::new("c.yaml"), text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn v(text: &str) -> KernelVersion {
        text.parse().unwrap()
    }

    /// A kernel that ran the case with `outcome`, each listed step doing what it says.
    fn kernel_with(
        name: &str,
        version: &str,
        case: &Case,
        outcome: CaseOutcome,
        did: &[(&str, Actual)],
    ) -> KernelRun {
        let steps = every_step(&case.steps);
        KernelRun {
            version: Some(v(version)),
            cases: vec![CaseResult {
                name: case.name.clone(),
                file: "c.yaml".into(),
                outcome,
                duration_ms: 0,
                steps: did
                    .iter()
                    .map(|(id, actual)| StepResult {
                        id: (*id).into(),
                        label: steps.iter().find(|s| s.id == *id).unwrap().label.clone(),
                        line: None,
                        expected: Expected::Ok,
                        reason: None,
                        since: None,
                        actual: actual.clone(),
                        verdict: Verdict::Diverged,
                    })
                    .collect(),
            }],
            ..KernelRun::without_cases(name, KernelStatus::Ran)
        }
    }

    fn kernel(name: &str, version: &str, case: &Case, did: &[(&str, Actual)]) -> KernelRun {
        kernel_with(name, version, case, CaseOutcome::Diverged, did)
    }

    /// Proposes, and checks that the proposal validates and that every edited step now
    /// expects what each kernel did in it.
    fn proposed(text: &str, make: impl Fn(&Case) -> Vec<KernelRun>) -> Proposal {
        let case = parse(text);
        let kernels = make(&case);
        let proposal = propose(text, &case, &kernels);
        let edited = parse(&proposal.text);
        let edited_steps = every_step(&edited.steps);
        for edit in &proposal.edits {
            let StepEdit::Edited { step, .. } = edit else {
                continue;
            };
            let now = edited_steps.iter().find(|s| &s.id == step).unwrap();
            for k in &kernels {
                let did = k.cases[0].steps.iter().find(|s| &s.id == step).unwrap();
                let variant = now
                    .expect
                    .for_kernel(k.version.unwrap(), k.architecture())
                    .unwrap();
                assert!(
                    did.actual.satisfies(&variant.outcome),
                    "{} on {}: {}",
                    did.actual,
                    k.kernel,
                    proposal.text
                );
            }
        }
        proposal
    }

    fn edited(proposal: &Proposal) -> Vec<(&str, &str, bool)> {
        proposal
            .edits
            .iter()
            .filter_map(|e| match e {
                StepEdit::Edited {
                    step,
                    what,
                    one_kernel,
                } => Some((step.as_str(), what.as_str(), *one_kernel)),
                StepEdit::Refused { .. } => None,
            })
            .collect()
    }

    fn refused(proposal: &Proposal) -> Vec<(&str, &str)> {
        proposal
            .edits
            .iter()
            .filter_map(|e| match e {
                StepEdit::Refused { step, why } => Some((step.as_str(), why.as_str())),
                StepEdit::Edited { .. } => None,
            })
            .collect()
    }

    const HEAD: &str = "name: c\ndescription: d\nmaps:\n  store: { value: u32 }\n  pair: { value: { a: u32, b: u32 } }\nsockets:\n  s: { family: inet }\nsteps:\n";

    fn errno(name: &str) -> Actual {
        Actual::errno(crate::errno::code(name).unwrap())
    }

    #[test]
    fn one_kernel_replaces_a_flow_mapping_in_place_and_says_it_cannot_split() {
        let text = format!(
            "{HEAD}  - update: {{ map: pair, socket: s, value: {{ a: 1, b: 2 }} }}\n    expect: ok\n  - lookup: {{ map: pair, socket: s }}\n    expect: {{ value: {{ a: 1, b: any }} }} # b varies\n"
        );
        let proposal = proposed(&text, |case| {
            vec![kernel(
                "7.1",
                "7.1.13",
                case,
                &[
                    ("1", Actual::Ok),
                    (
                        "2",
                        Actual::Value {
                            value: serde_json::json!({ "a": 3, "b": 2 }),
                        },
                    ),
                ],
            )]
        });
        assert_eq!(
            proposal.text,
            text.replace(
                "expect: { value: { a: 1, b: any } } # b varies",
                "expect: { value: { a: 3, b: 2 } } # b varies"
            )
        );
        assert_eq!(
            edited(&proposal),
            [(
                "2",
                r#"expects value {"a":3,"b":2} for all kernels (was value {"a":1,"b":"any"} for all kernels)"#,
                true
            )]
        );
        assert!(ONE_KERNEL.starts_with("one kernel cannot place a version split"));
    }

    #[test]
    fn two_kernels_split_a_plain_expectation_at_the_new_kernels_series() {
        let text = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: ok # stored\n  - lookup: {{ map: store, socket: s }}\n    expect: {{ value: 1 }}\n"
        );
        // Named so that their names sort the other way round from their versions.
        let proposal = proposed(&text, |case| {
            vec![
                kernel("a-new", "7.1.13", case, &[("1", errno("ENOMEM"))]),
                kernel("b-old", "7.0.13", case, &[("1", Actual::Ok)]),
            ]
        });
        let want = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect:\n      - until: \"7.1\"\n        expect: ok # stored\n        reason: \"as the case expected before recording; recorded: ok on 7.0.13, ENOMEM on 7.1.13; kernels between them not run\"\n      - since: \"7.1\"\n        expect: ENOMEM\n        reason: \"recorded: ok on 7.0.13, ENOMEM on 7.1.13; kernels between them not run\"\n  - lookup: {{ map: store, socket: s }}\n    expect: {{ value: 1 }}\n"
        );
        assert_eq!(proposal.text, want);
        assert_eq!(
            edited(&proposal),
            [(
                "1",
                "expects ok for < 7.1, ENOMEM for >= 7.1 (was ok for all kernels)",
                false
            )]
        );
    }

    #[test]
    fn kernels_of_one_series_split_at_the_full_version() {
        let text =
            format!("{HEAD}  - lookup: {{ map: store, socket: s }}\n    expect: {{ value: 1 }}\n");
        let proposal = proposed(&text, |case| {
            vec![
                kernel(
                    "old",
                    "7.1.2",
                    case,
                    &[("1", Actual::Value { value: 1.into() })],
                ),
                kernel("new", "7.1.13", case, &[("1", errno("ENOENT"))]),
            ]
        });
        let want = format!(
            "{HEAD}  - lookup: {{ map: store, socket: s }}\n    expect:\n      - until: \"7.1.13\"\n        expect: {{ value: 1 }}\n        reason: \"as the case expected before recording; recorded: value 1 on 7.1.2, ENOENT on 7.1.13; kernels between them not run\"\n      - since: \"7.1.13\"\n        expect: ENOENT\n        reason: \"recorded: value 1 on 7.1.2, ENOENT on 7.1.13; kernels between them not run\"\n"
        );
        assert_eq!(proposal.text, want);
    }

    #[test]
    fn outcomes_that_flip_get_a_variant_per_run() {
        let text =
            format!("{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: ok\n");
        let proposal = proposed(&text, |case| {
            vec![
                kernel("7.0", "7.0.13", case, &[("1", Actual::Ok)]),
                kernel("6.6", "6.6.3", case, &[("1", errno("ENOMEM"))]),
                kernel("6.1", "6.1.5", case, &[("1", Actual::Ok)]),
                kernel("6.12", "6.12.1", case, &[("1", errno("ENOMEM"))]),
            ]
        });
        let want = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect:\n      - until: \"6.6\"\n        expect: ok\n        reason: \"as the case expected before recording; recorded: ok on 6.1.5, ENOMEM on 6.6.3; kernels between them not run\"\n      - since: \"6.6\"\n        until: \"7.0\"\n        expect: ENOMEM\n        reason: \"recorded: ok on 6.1.5, ENOMEM on 6.6.3 and 6.12.1, ok on 7.0.13; kernels between them not run\"\n      - since: \"7.0\"\n        expect: ok\n        reason: \"as the case expected before recording; recorded: ENOMEM on 6.12.1, ok on 7.0.13; kernels between them not run\"\n"
        );
        assert_eq!(proposal.text, want);
        assert_eq!(
            edited(&proposal),
            [(
                "1",
                "expects ok for < 6.6, ENOMEM for >= 6.6, < 7.0, ok for >= 7.0 (was ok for all kernels)",
                false
            )]
        );
    }

    const VARIANTS: &str = "      - until: \"6.8\"\n        expect: ENOMEM\n        reason: before\n      - since: \"6.8\"\n        expect: ok\n        reason: >\n          since 6.8,\n          folded\n";

    #[test]
    fn the_contradicted_variant_of_a_block_list_is_split_and_anchors_are_refused() {
        let text = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: &shared\n{VARIANTS}  - update: {{ map: store, socket: s, value: 2 }}\n    expect:\n{VARIANTS}  - update: {{ map: store, socket: s, value: 3 }}\n    expect: *shared\n"
        );
        let did = |actual: Actual| {
            [
                ("1", actual.clone()),
                ("2", actual.clone()),
                ("3", actual.clone()),
            ]
        };
        let proposal = proposed(&text, |case| {
            vec![
                kernel("6.1", "6.1.5", case, &did(errno("ENOMEM"))),
                kernel("7.0", "7.0.13", case, &did(Actual::Ok)),
                kernel("7.1", "7.1.13", case, &did(errno("ENOMEM"))),
            ]
        });
        assert!(
            matches!(&refused(&proposal)[..], [("1", anchor), ("3", alias)] if anchor.contains("anchor") && alias.contains("alias")),
            "{:?}",
            proposal.edits
        );
        assert_eq!(
            edited(&proposal),
            [(
                "2",
                "expects ok for >= 6.8, < 7.1, ENOMEM for >= 7.1 (was ok for >= 6.8)",
                false
            )]
        );
        let step_2 = "    expect:\n      - until: \"6.8\"\n        expect: ENOMEM\n        reason: before\n      - since: \"6.8\"\n        until: \"7.1\"\n        expect: ok\n        reason: >\n          since 6.8,\n          folded\n      - since: \"7.1\"\n        expect: ENOMEM\n        reason: \"recorded: ok on 7.0.13, ENOMEM on 7.1.13; kernels between them not run\"\n  - update: { map: store, socket: s, value: 3 }";
        assert_eq!(
            proposal.text,
            text.replace(
                &format!(
                    "    expect:\n{VARIANTS}  - update: {{ map: store, socket: s, value: 3 }}"
                ),
                step_2
            )
        );
    }

    #[test]
    fn a_new_outcome_reaches_back_only_to_the_kernel_run_before_it() {
        let text = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect:\n{VARIANTS}"
        );
        let proposal = proposed(&text, |case| {
            vec![
                kernel("6.1", "6.1.5", case, &[("1", errno("ENOMEM"))]),
                kernel("6.12", "6.12.1", case, &[("1", errno("EINVAL"))]),
            ]
        });
        assert!(
            proposal.text.ends_with(
                "      - since: \"6.8\"\n        until: \"6.12\"\n        expect: ok\n        reason: >\n          since 6.8,\n          folded\n      - since: \"6.12\"\n        expect: EINVAL\n        reason: \"recorded: ENOMEM on 6.1.5, EINVAL on 6.12.1; kernels between them not run\"\n"
            ),
            "{}",
            proposal.text
        );
    }

    #[test]
    fn a_kernel_next_to_the_variant_that_did_the_same_places_no_split() {
        let text = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect:\n{VARIANTS}"
        );
        let proposal = proposed(&text, |case| {
            vec![
                kernel("6.1", "6.1.5", case, &[("1", Actual::Ok)]),
                kernel("6.12", "6.12.1", case, &[("1", Actual::Ok)]),
            ]
        });
        assert!(
            proposal.text.contains(
                "    expect:\n      - until: \"6.8\"\n        expect: ok\n        reason: \"recorded: ok on 6.1.5 and 6.12.1\"\n      - since: \"6.8\"\n"
            ),
            "{}",
            proposal.text
        );
    }

    #[test]
    fn long_values_are_cut_short_in_reasons() {
        let text = "name: c\ndescription: d\nmaps:\n  bytes: { value: \"u8[100]\" }\nsockets:\n  s: { family: inet }\nsteps:\n  - update: { map: bytes, socket: s, value: 1 }\n    expect: ok\n  - lookup: { map: bytes, socket: s }\n    expect: { value: 1 }\n";
        let proposal = proposed(text, |case| {
            let ones = Actual::Value {
                value: serde_json::json!(vec![1; 100]),
            };
            vec![
                kernel("7.0", "7.0.13", case, &[("1", Actual::Ok), ("2", ones)]),
                kernel(
                    "7.1",
                    "7.1.13",
                    case,
                    &[("1", Actual::Ok), ("2", errno("ENOENT"))],
                ),
            ]
        });
        // A long list is summarised as every view prints it.
        assert!(
            proposal.text.contains(
                "        reason: \"recorded: value [100 × 1] on 7.0.13, ENOENT on 7.1.13; kernels between them not run\"\n"
            ),
            "{}",
            proposal.text
        );
        // Other long outcomes (a struct of many fields): 60 characters, then an ellipsis.
        assert_eq!(brief("x".repeat(60)), "x".repeat(60));
        assert_eq!(brief("x".repeat(61)), format!("{}…", "x".repeat(60)));
    }

    #[test]
    fn a_kept_variant_without_since_gains_one_above_its_dash() {
        let text = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect:\n{VARIANTS}"
        );
        let proposal = proposed(&text, |case| {
            vec![
                kernel("5.4", "5.4.286", case, &[("1", errno("EINVAL"))]),
                kernel("6.1", "6.1.5", case, &[("1", errno("ENOMEM"))]),
            ]
        });
        assert!(
            proposal.text.contains(
                "    expect:\n      - until: \"6.1\"\n        expect: EINVAL\n        reason: \"recorded: EINVAL on 5.4.286, ENOMEM on 6.1.5; kernels between them not run\"\n      - since: \"6.1\"\n        until: \"6.8\"\n        expect: ENOMEM\n        reason: before\n      - since: \"6.8\"\n"
            ),
            "{}",
            proposal.text
        );
    }

    #[test]
    fn skipped_and_failed_cases_and_kernels_propose_nothing() {
        let text =
            format!("{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: ok\n");
        let proposal = proposed(&text, |case| {
            let did = [("1", errno("ENOMEM"))];
            let skipped = CaseOutcome::Skipped {
                reason: "needs 7.2".into(),
            };
            let failed = CaseOutcome::Error {
                message: "no BTF".into(),
            };
            vec![
                kernel_with("7.1", "7.1.13", case, skipped, &did),
                kernel_with("7.2", "7.2.1", case, failed, &did),
                KernelRun {
                    status: KernelStatus::Error {
                        message: "panic".into(),
                        log_tail: None,
                    },
                    ..kernel("7.3", "7.3.4", case, &did)
                },
            ]
        });
        assert_eq!(proposal.edits, []);
        assert_eq!(proposal.text, text);
    }

    #[test]
    fn steps_not_run_and_kernels_that_agree_with_the_case_propose_nothing() {
        let text =
            format!("{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: ok\n");
        let proposal = proposed(&text, |case| {
            let not_run = Actual::NotRun {
                reason: "no map".into(),
            };
            vec![
                kernel("7.1", "7.1.13", case, &[("1", not_run)]),
                kernel("7.0", "7.0.13", case, &[("1", Actual::Ok)]),
            ]
        });
        assert_eq!(proposal.edits, []);
    }

    #[test]
    fn results_of_an_older_case_are_refused_where_they_contradict_it() {
        let text = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: ok\n  - update: {{ map: store, socket: s, value: 2 }}\n    expect: ok\n"
        );
        let proposal = proposed(&text, |case| {
            let mut run = kernel(
                "7.1",
                "7.1.13",
                case,
                &[("1", Actual::Ok), ("2", errno("ENOMEM"))],
            );
            for step in &mut run.cases[0].steps {
                step.label = format!("old {}", step.label);
            }
            vec![run]
        });
        assert!(
            matches!(&refused(&proposal)[..], [("2", why)] if why.contains("the results are of an older case")),
            "{:?}",
            proposal.edits
        );
        assert_eq!(proposal.text, text);
    }

    #[test]
    fn one_version_with_two_outcomes_is_refused() {
        let text =
            format!("{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: ok\n");
        let proposal = proposed(&text, |case| {
            vec![
                kernel("7.1-a", "7.1.13", case, &[("1", Actual::Ok)]),
                kernel("7.1-b", "7.1.13", case, &[("1", errno("ENOMEM"))]),
            ]
        });
        assert!(
            matches!(&refused(&proposal)[..], [("1", why)] if why.contains("7.1-a and 7.1-b both report 7.1.13")),
            "{:?}",
            proposal.edits
        );
        assert_eq!(proposal.text, text);
    }

    #[test]
    fn shapes_that_cannot_be_edited_safely_are_refused() {
        let text = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: [ {{ until: \"7.1\", expect: ok, reason: r }}, {{ since: \"7.1\", expect: ok, reason: r }} ]\n  - lookup: {{ map: store, socket: s }}\n    expect: {{ value:\n        1 }}\n  - {{ delete: {{ map: store, socket: s }}, expect: ok }}\n  - fork:\n      - lookup: {{ map: store, socket: s }}\n        expect: ENOENT\n    expect: ok\n"
        );
        let proposal = proposed(&text, |case| {
            vec![kernel(
                "7.1",
                "7.1.13",
                case,
                &[
                    ("1", errno("ENOMEM")),
                    ("2", errno("ENOENT")),
                    ("3", errno("ENOENT")),
                    ("4.1", errno("EBADF")),
                ],
            )]
        });
        let refused = refused(&proposal);
        assert!(
            matches!(&refused[..], [("1", list), ("2", lines), ("3", flow), ("4.1", fork)]
                if list.contains("neither") && lines.contains("neither")
                    && flow.contains("flow mapping") && fork.contains("fork")),
            "{refused:?}"
        );
        assert_eq!(proposal.text, text);
    }

    #[test]
    fn storages_are_spelled_in_a_real_case() {
        let text = include_str!("../../cases/inspect/diag-two-maps.yaml");
        let storages = serde_json::json!({ "counters": 100, "labels": { "level": 2, "tag": 7 } });
        let proposal = proposed(text, |case| {
            vec![kernel(
                "6.12",
                "6.12.1",
                case,
                &[(
                    "4",
                    Actual::Storages {
                        storages: storages.clone(),
                    },
                )],
            )]
        });
        assert_eq!(edited(&proposal).len(), 1, "{:?}", proposal.edits);
        assert!(
            proposal.text.contains(
                "      - since: \"5.7\"\n        expect: { storages: { counters: 100, labels: { level: 2, tag: 7 } } }\n        reason: \"recorded: storages {\\\"counters\\\":100,\\\"labels\\\":{\\\"level\\\":2,\\\"tag\\\":7}} on 6.12.1, the only kernel that ran the step\"\n"
            ),
            "{}",
            proposal.text
        );
    }

    #[test]
    fn rejections_and_calls_are_spelled_in_a_real_case() {
        let text = include_str!("../../cases/bpf/sock-ops-get-or-create.yaml");
        let storage = |events: u64| {
            ObservedCall::Get(ObservedGet::Storage {
                storage: serde_json::json!({ "bytes": 0, "events": events, "value": 0 }),
            })
        };
        let proposal = proposed(text, |case| {
            vec![
                kernel(
                    "6.12",
                    "6.12.1",
                    case,
                    &[
                        ("1", Actual::Ok),
                        (
                            "4",
                            Actual::Observed {
                                calls: vec![storage(0)],
                                callback_args: Some([4, 0]),
                            },
                        ),
                    ],
                ),
                kernel(
                    "7.1",
                    "7.1.13",
                    case,
                    &[
                        (
                            "1",
                            Actual::Rejected {
                                errno: "EACCES".into(),
                                message: "R1 invalid mem access 'scalar'".into(),
                            },
                        ),
                        (
                            "4",
                            Actual::Observed {
                                calls: vec![storage(3)],
                                callback_args: Some([4, 0]),
                            },
                        ),
                    ],
                ),
            ]
        });
        assert_eq!(edited(&proposal).len(), 2, "{:?}", proposal.edits);
        assert!(
            proposal.text.contains(
                "      - since: \"7.1\"\n        expect: { rejected: \"R1 invalid mem access 'scalar'\" }\n"
            ),
            "{}",
            proposal.text
        );
        assert!(
            proposal.text.contains(
                "      - since: \"7.1\"\n        expect: { calls: [ { get: { bytes: 0, events: 3, value: 0 } } ], args: [4, 0] }\n"
            ),
            "{}",
            proposal.text
        );
    }

    #[test]
    fn the_fork_step_of_a_real_case_is_refused_and_the_file_kept() {
        let text = include_str!("../../cases/fork-shares-storage.yaml");
        let proposal = proposed(text, |case| {
            vec![kernel("7.1", "7.1.13", case, &[("2.1", errno("ENOENT"))])]
        });
        assert!(
            matches!(&refused(&proposal)[..], [("2.1", why)] if why.contains("fork")),
            "{:?}",
            proposal.edits
        );
        assert_eq!(proposal.text, text);
    }

    #[test]
    fn crlf_files_keep_their_line_ends() {
        let text =
            format!("{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: ok\n")
                .replace('\n', "\r\n");
        let proposal = proposed(&text, |case| {
            vec![kernel("7.1", "7.1.13", case, &[("1", errno("ENOMEM"))])]
        });
        assert_eq!(proposal.text, text.replace("expect: ok", "expect: ENOMEM"));
    }

    #[test]
    fn values_are_written_as_one_line_flow_nodes() {
        let value = serde_json::json!({ "a": [1, 2], "no": "x", "on-off": {}, "z_1": null });
        assert_eq!(
            flow(&value),
            r#"{ a: [1, 2], "no": "x", "on-off": {}, z_1: null }"#
        );
        assert_eq!(
            split_between(v("7.0.13"), v("7.1.13")),
            v("7.1"),
            "a new series"
        );
        assert_eq!(split_between(v("7.1.2"), v("7.1.13")), v("7.1.13"));
        assert_eq!(value_end("  expect: { value: \"a # b\" } # c", 10), 28);
        assert_eq!(value_end("  expect: ok", 10), 12);
    }

    #[test]
    fn anchors_and_aliases_are_told_from_text() {
        assert!(has_anchor_or_alias("    expect: &limited"));
        assert!(has_anchor_or_alias("    expect: *limited"));
        assert!(!has_anchor_or_alias("    reason: \"a *b & c\" # &x"));
        assert!(!has_anchor_or_alias("    reason: a & b, 2 * 3"));
    }
}
