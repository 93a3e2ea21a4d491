//! Checks a parsed case as a whole and builds the validated [`Case`].
//!
//! Every problem is collected (not just the first) and located by its field path. By
//! concern: `declarations` (requires, maps, sockets, programs), `steps` (the walk over the
//! steps, and what the operations' checks ask of the validator), `expectations` (outcomes
//! and version variants).

mod cost;
mod declarations;
mod expectations;
mod steps;

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::Arc,
};

use serde_yaml::Value;

pub use self::cost::Cost;
use super::{
    Action, Case, Expectation, Expected, FIRST_KERNEL, Step, flags,
    limits::{MAX_CASE_VALUE_BYTES, MAX_NOFILE, MAX_READ_BYTES},
    locate::{FieldPath, Locator, Point, Segment},
    model::CaseFile,
    prescan,
    steps::{
        Context, CreatedBySteps, Life, MapAction, SocketAction, State, Validation, describe_socket,
    },
    types::Type,
};
use crate::{
    diagnostic::{Diagnostic, serde_message, suggest},
    version::KernelVersion,
};

/// Where an error is: line and column, field, and what it says.
type Place = (Option<(usize, usize)>, String, String);

pub(super) struct Validator<'a> {
    file: &'a Path,
    locator: Locator<'a>,
    errors: Vec<Diagnostic>,
    min_version: KernelVersion,
    /// Bytes of values built so far, against [`MAX_CASE_VALUE_BYTES`].
    value_bytes: u32,
    /// Bytes of values the steps so far may read, against [`MAX_READ_BYTES`].
    read_bytes: u64,
    /// Declarations that failed validation, by kind (`map`, `socket`, `program`) and name.
    invalid_declarations: HashSet<(&'static str, String)>,
    /// Names of repeated declarations (`m3`) and the name written in the file (`m{i}`),
    /// so that a problem in a copy points at the declaration.
    templates: HashMap<String, String>,
    /// Strings the case's steps share, one copy each: the reasons of a repeat's steps.
    shared: HashSet<Arc<str>>,
    /// Each error so far, to report the problem of a repeated step or declaration once.
    reported: HashSet<Place>,
}

/// Whether `given` is `declared`, or one of the copies a repeated declaration written
/// `declared` (`s{i}`) would have made.
fn names_match(declared: &str, given: &str) -> bool {
    match (declared.split_once('{'), declared.rsplit_once('}')) {
        (Some((prefix, _)), Some((_, suffix))) => {
            given.len() >= prefix.len() + suffix.len()
                && given.starts_with(prefix)
                && given.ends_with(suffix)
        }
        _ => declared == given,
    }
}

pub(super) fn parse(file: &Path, text: &str) -> Result<Case, Vec<Diagnostic>> {
    let problems = prescan::scan(text);
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|p| Diagnostic::at(file, (p.line, p.column), p.path.to_string(), p.message))
            .collect());
    }
    let mut v = Validator {
        file,
        locator: Locator::new(text),
        errors: Vec::new(),
        min_version: FIRST_KERNEL,
        value_bytes: 0,
        read_bytes: 0,
        invalid_declarations: HashSet::new(),
        templates: HashMap::new(),
        shared: HashSet::new(),
        reported: HashSet::new(),
    };
    let raw: CaseFile = serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(|e| vec![Diagnostic::deserialize_error(file, text, e)])?;
    let Some(cost) = v.cost(&raw) else {
        return Err(v.errors);
    };
    let case = v.case(raw, cost);
    if v.errors.is_empty() {
        Ok(case)
    } else {
        Err(v.errors)
    }
}

impl Validator<'_> {
    pub(super) fn error(&mut self, path: &FieldPath, point: Point, message: impl Into<String>) {
        let path = &self.as_written(path);
        let location = self.locator.locate(path, point);
        let error = Diagnostic {
            file: self.file.to_path_buf(),
            location,
            field: path.to_string(),
            message: message.into(),
        };
        // The copies of a repeated declaration or step share one place in the file: its
        // problem is reported once.
        let place = (error.location, error.field.clone(), error.message.clone());
        if self.reported.insert(place) {
            self.errors.push(error);
        }
    }

    /// `text` as the case's one copy of it.
    pub(super) fn share(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.shared.get(text) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(text);
        self.shared.insert(Arc::clone(&shared));
        shared
    }

    /// The line of the field at `path` (a step, a declaration), for reports.
    pub(super) fn line_of(&self, path: &FieldPath) -> Option<usize> {
        self.locator
            .locate(&self.as_written(path), Point::Key)
            .map(|(line, _)| line)
    }

    /// `path` with a repeated declaration's copy named as the file writes it.
    fn as_written(&self, path: &FieldPath) -> FieldPath {
        let mut written = path.clone();
        if let [Segment::Key(section), Segment::Key(name), ..] = written.0.as_mut_slice()
            && matches!(section.as_str(), "maps" | "sockets")
            && let Some(template) = self.templates.get(name.as_str())
        {
            *name = template.clone();
        }
        written
    }

    /// Counts a value of `ty` against [`MAX_CASE_VALUE_BYTES`] before it is built; the error
    /// is reported once, where the total first goes over.
    pub(super) fn charge(&mut self, path: &FieldPath, ty: &Type) -> bool {
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

    /// Counts `bytes` a step may read (a lookup's value, a diag's storages) against
    /// [`MAX_READ_BYTES`]; the error is reported once, where the total first goes over.
    pub(super) fn charge_read(&mut self, path: &FieldPath, bytes: u64) -> bool {
        let before = self.read_bytes;
        self.read_bytes = before.saturating_add(bytes);
        if self.read_bytes <= MAX_READ_BYTES {
            return true;
        }
        if before <= MAX_READ_BYTES {
            self.error(
                path,
                Point::Key,
                format!("the values the case's steps may read (each lookup at its map's value size, each diag at its maps') add up to more than {MAX_READ_BYTES} bytes (4 MiB) here, the most one case may read; split the case"),
            );
        }
        false
    }

    /// A value or type that does not fit, located at the field inside it that is wrong.
    pub(super) fn value_error(&mut self, path: &FieldPath, e: super::types::ValueMismatch) {
        let at = e
            .path
            .iter()
            .fold(path.clone(), |at, field| at.key(field.as_str()));
        self.error(&at, Point::Value, e.problem);
    }

    /// An undefined name: says which names exist and which one was probably meant. A name
    /// whose declaration failed is not reported again.
    pub(super) fn unknown_name<'n>(
        &mut self,
        path: &FieldPath,
        what: &str,
        given: &str,
        known: impl Iterator<Item = &'n str> + Clone,
    ) {
        if self
            .invalid_declarations
            .iter()
            .any(|(kind, name)| *kind == what && names_match(name, given))
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

    fn case(&mut self, raw: CaseFile, cost: Cost) -> Case {
        let root = FieldPath::default();
        // Lowercase, so that names differ by more than case.
        let valid_name = crate::names::is_valid(&raw.name)
            && raw
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !valid_name {
            self.error(
                &root.key("name"),
                Point::Value,
                format!(
                    "a case name is lowercase letters, digits, `-`, `_` and `.`, beginning with a letter or digit, at most {} characters (it names the case in reports and --filter)",
                    crate::names::MAX_LENGTH
                ),
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
        let map_decls = self.expand_repeated("maps", &raw.maps, |d| d.repeat);
        let socket_decls = self.expand_repeated("sockets", &raw.sockets, |d| d.repeat);
        self.names("maps", map_decls.keys());
        self.names("sockets", socket_decls.keys());
        self.names("programs", raw.programs.keys());
        self.rlimits(&raw.rlimits);
        let maps = self.maps(&map_decls);
        let sockets = self.sockets(&socket_decls);
        let programs = self.programs(&raw.programs, &maps);
        // A declaration that failed has its own error: uses of its name are not reported
        // again as undeclared.
        for (what, declared, valid) in [
            (
                "map",
                map_decls.keys().collect::<Vec<_>>(),
                maps.keys().collect::<Vec<_>>(),
            ),
            (
                "socket",
                socket_decls.keys().collect(),
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
        let created_by_steps = CreatedBySteps::of(&raw.steps);
        let mut state = State::default();
        let mut steps = Vec::new();
        for (name, spec) in &maps {
            if spec.bpf.is_some() {
                // The eBPF object creates its maps when the case starts.
                state.maps.insert(name.clone(), Life::Open);
                continue;
            }
            if created_by_steps.maps.contains(name) {
                state.maps.insert(name.clone(), Life::NotYet);
            } else {
                state.maps.insert(name.clone(), Life::Open);
                steps.push(Step {
                    id: format!("setup.{}", steps.len() + 1),
                    label: format!("create map {name}"),
                    line: self.line_of(&root.key("maps").key(name.as_str())),
                    action: Action::Maps(MapAction::Create { map: name.clone() }),
                    expect: Expectation::always(Expected::Ok),
                    within: None,
                    children: Vec::new(),
                });
            }
        }
        for name in sockets.keys() {
            state.sockets.insert(name.clone(), Life::NotYet);
        }
        for (name, spec) in &sockets {
            if created_by_steps.sockets.contains(name) {
                continue;
            }
            self.socket_creation_ok(name, spec, &sockets, &state);
            state.sockets.insert(name.clone(), Life::Open);
            steps.push(Step {
                id: format!("setup.{}", steps.len() + 1),
                label: format!("create socket {name} ({})", describe_socket(spec)),
                line: self.line_of(&root.key("sockets").key(name.as_str())),
                action: Action::Sockets(SocketAction::Create {
                    socket: name.clone(),
                }),
                expect: Expectation::always(Expected::Ok),
                within: None,
                children: Vec::new(),
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
        for (i, decl) in raw.steps.iter().enumerate() {
            let step = self.step(
                &steps_path.index(i),
                (i + 1).to_string(),
                decl,
                &ctx,
                &mut state,
                false,
            );
            steps.extend(step.into_iter().flatten());
        }
        Case {
            name: raw.name,
            description: raw.description.trim().to_string(),
            file: self.file.to_path_buf(),
            requires,
            rlimits: raw.rlimits,
            maps,
            sockets,
            programs,
            steps,
            cost,
        }
    }

    /// Each declared name of `section` keeps to [`crate::names::RULE`]; a repeated
    /// declaration is reported once, as written.
    fn names<'n>(&mut self, section: &str, names: impl Iterator<Item = &'n String>) {
        for name in names.filter(|name| !crate::names::is_valid(name)) {
            let written = self.templates.get(name).unwrap_or(name).clone();
            let what = match section {
                "maps" => "map",
                "sockets" => "socket",
                _ => "program",
            };
            let made = if written == *name {
                String::new()
            } else {
                " (its copies are named from it)".to_string()
            };
            self.error(
                &FieldPath::default().key(section).key(name.as_str()),
                Point::Key,
                format!(
                    "`{written}` is not a {what} name{made}: {}",
                    crate::names::RULE
                ),
            );
        }
    }

    /// Limits the executor can set: `nofile` at most what a kernel gives its first process
    /// as the hard limit, which the executor cannot raise.
    fn rlimits(&mut self, limits: &super::Rlimits) {
        if let Some(nofile) = limits.nofile
            && nofile > MAX_NOFILE
        {
            self.error(
                &FieldPath::default().key("rlimits").key("nofile"),
                Point::Value,
                format!(
                    "{nofile} is above {MAX_NOFILE}, the hard limit a kernel gives its first process (INR_OPEN_MAX), which a case's limit cannot pass"
                ),
            );
        }
    }

    /// Deserialises a part of the case read as plain YAML (a version variant).
    fn args<T: serde::de::DeserializeOwned>(&mut self, arg: &Value, path: &FieldPath) -> Option<T> {
        match serde_yaml::from_value(arg.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let message = serde_message(&e.to_string());
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

    /// Flags are a name, a list of names, or an integer for raw bits the kernel must reject.
    pub(super) fn flags(
        &mut self,
        value: &Value,
        path: &FieldPath,
        table: &[flags::Flag],
    ) -> Option<u64> {
        flags::resolve(value, table)
            .map_err(|e| {
                let at = e.index.map_or_else(|| path.clone(), |i| path.index(i));
                self.error(&at, Point::Value, e.message);
            })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Arch;

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
        let mut second = parse(path, &again).expect("still valid");
        // The same steps, written on other lines.
        assert_ne!(lines(&first.steps), lines(&second.steps));
        let mut first = first;
        forget_lines(&mut first.steps);
        forget_lines(&mut second.steps);
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
        assert!(matches!(
            &first.steps[12].action,
            Action::Process(crate::case::steps::ProcessAction::Fork)
        ));
        assert_eq!(first.steps[12].children[0].id, "7.1");
    }

    #[test]
    fn each_architecture_gets_its_own_variant() {
        let text = "name: a\ndescription: d\nmaps:\n  m: { value: u32 }\nsteps:\n  - create_map: m\n    expect:\n      - arch: x86_64\n        expect: ok\n        reason: x\n      - arch: [arm64]\n        until: \"6.4\"\n        expect: ENOTSUPP\n        reason: y\n      - arch: arm64\n        since: \"6.4\"\n        expect: ok\n        reason: z\n";
        let case = parse(Path::new("a.yaml"), text).expect("valid");
        let expect = &case.steps[0].expect;
        let outcome = |version: &str, arch| {
            expect
                .for_kernel(version.parse().unwrap(), arch)
                .map(|v| v.outcome.to_string())
        };
        assert_eq!(outcome("6.1.176", Arch::X86_64).as_deref(), Some("ok"));
        assert_eq!(outcome("6.1.176", Arch::Arm64).as_deref(), Some("ENOTSUPP"));
        assert_eq!(outcome("6.12.117", Arch::Arm64).as_deref(), Some("ok"));
    }

    #[test]
    fn what_a_repeat_creates_is_not_created_before_the_first_step() {
        let text = "name: r\ndescription: d\nmaps:\n  kept: { value: u32 }\n  \"m{i}\": { value: u32, repeat: 2 }\nsockets:\n  \"s{i}\": { family: inet, repeat: 2 }\nsteps:\n  - repeat:\n      times: 2\n      steps:\n        - create_map: \"m{i}\"\n          expect: ok\n        - socket: \"s{i}\"\n          expect: ok\n";
        let case = parse(Path::new("r.yaml"), text).expect("valid");
        let steps: Vec<(&str, &str)> = case
            .steps
            .iter()
            .map(|s| (s.id.as_str(), s.label.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                ("setup.1", "create map kept"),
                ("1.1.1", "create map m0"),
                ("1.1.2", "create socket s0 (inet stream)"),
                ("1.2.1", "create map m1"),
                ("1.2.2", "create socket s1 (inet stream)"),
            ]
        );
    }

    fn lines(steps: &[Step]) -> Vec<(String, Option<usize>)> {
        steps
            .iter()
            .flat_map(|s| std::iter::once((s.id.clone(), s.line)).chain(lines(&s.children)))
            .collect()
    }

    fn forget_lines(steps: &mut [Step]) {
        for step in steps {
            step.line = None;
            forget_lines(&mut step.children);
        }
    }

    #[test]
    fn every_step_knows_its_line() {
        let case = parse(Path::new("round-trip.yaml"), VALID).expect("valid");
        let at = |id: &str| lines(&case.steps).into_iter().find(|(i, _)| i == id);
        // Set-up steps point at their declarations, a fork's steps at their own lines.
        assert_eq!(at("setup.1"), Some(("setup.1".into(), Some(6))));
        assert_eq!(at("setup.2"), Some(("setup.2".into(), Some(9))));
        assert_eq!(at("1"), Some(("1".into(), Some(16))));
        assert_eq!(at("7"), Some(("7".into(), Some(30))));
        assert_eq!(at("7.1"), Some(("7.1".into(), Some(31))));

        let repeated = "name: r\ndescription: d\nmaps:\n  m: { value: u32 }\nsockets:\n  s: { family: inet }\nsteps:\n  - repeat:\n      times: 2\n      steps:\n        - update: { map: m, socket: s, value: \"{i}\" }\n          expect: ok\n";
        let case = parse(Path::new("r.yaml"), repeated).expect("valid");
        assert_eq!(
            lines(&case.steps),
            [
                ("setup.1".into(), Some(4)),
                ("setup.2".into(), Some(6)),
                ("1.1.1".into(), Some(11)),
                ("1.2.1".into(), Some(11)),
            ]
        );
    }
}
