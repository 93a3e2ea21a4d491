//! Views of the result model: the terminal summary and matrix, the behaviour changes across
//! kernels, what changed between two runs, the evidence for each versioned expectation,
//! and the files a run leaves in its output directory (JSON, JUnit XML, Markdown, HTML). Every
//! view is a pure function of [`RunResults`] (the evidence also of the cases whose
//! expectations it weighs).

pub mod atlas;
pub mod changes;
pub mod diff;
pub mod edges;
pub mod evidence;
pub mod html;
pub mod human;
pub mod junit;
pub mod markdown;
pub mod matrix;

use std::{
    io,
    path::{Path, PathBuf},
};

use owo_colors::{OwoColorize, Style};

use crate::{
    kernels::KernelEntry,
    results::{HarnessBuild, KernelRun, KernelStatus, RunResults, SCHEMA_VERSION},
    version::KernelVersion,
};

/// The files [`write_all`] leaves in the output directory.
pub const RESULTS_JSON: &str = "results.json";
pub const JUNIT_XML: &str = "junit.xml";
pub const REPORT_MD: &str = "report.md";
pub const REPORT_HTML: &str = "report.html";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read results file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not valid JSON{} (is it a results.json written by `harness run`?)", path.display(), in_field(field))]
    Syntax {
        path: PathBuf,
        /// Where in the file's structure, `.` at its top.
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} does not have the shape of a results.json (schema: docs/src/results.md)", path.display())]
    Shape {
        path: PathBuf,
        #[source]
        source: serde_path_to_error::Error<serde_json::Error>,
    },
    #[error(
        "{} has results schema {found}, but this harness reads schema {SCHEMA_VERSION}; produce it again with this harness version",
        path.display()
    )]
    Schema { path: PathBuf, found: u64 },
    #[error("{}: {field}: {message}", path.display())]
    Repeated {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("cannot write {} (check that the output directory is writable)", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot serialise the JUnit report")]
    Junit(#[source] quick_junit::SerializeError),
}

/// " in FIELD" for a place inside the file, nothing for its top (`.`).
fn in_field(field: &str) -> String {
    if field == "." {
        String::new()
    } else {
        format!(" in {field}")
    }
}

/// Where [`write_all`] put each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    pub results_json: PathBuf,
    pub junit_xml: PathBuf,
    pub report_md: PathBuf,
    pub report_html: PathBuf,
}

/// Writes `results.json`, `junit.xml`, `report.md` and `report.html` into `out_dir` (created
/// if needed) as one set: every file is rendered, written in full under a temporary name and
/// synced before the first one replaces its predecessor, so a failure to write (a full disk,
/// a read-only directory) leaves the previous set whole, and no reader ever sees a
/// half-written file. Only the renames that put the set in place remain, which then fail
/// only with the filesystem itself.
/// The files are readable by everyone (0644), like any build output, so that the user who
/// ran `sudo harness …` and CI's artifact upload can read them. All but results.json show
/// the results [`printable`].
pub fn write_all(
    results: &RunResults,
    out_dir: &Path,
    layout: JsonLayout,
) -> Result<ReportFiles, ReportError> {
    let files = ReportFiles {
        results_json: out_dir.join(RESULTS_JSON),
        junit_xml: out_dir.join(JUNIT_XML),
        report_md: out_dir.join(REPORT_MD),
        report_html: out_dir.join(REPORT_HTML),
    };
    let shown = printable(results);
    let rendered = [
        (&files.results_json, to_json(results, layout)),
        (&files.junit_xml, junit::to_xml(&shown)?),
        (&files.report_md, markdown::render(&shown)),
        (&files.report_html, html::render(&shown)),
    ];
    // A directory in a report file's place would make its rename fail after the others.
    if let Some(path) = rendered
        .iter()
        .map(|(path, _)| *path)
        .find(|path| path.is_dir())
    {
        return Err(ReportError::Write {
            path: path.clone(),
            source: io::Error::new(
                io::ErrorKind::IsADirectory,
                "a directory is in the report file's place",
            ),
        });
    }
    let mut staged = Vec::with_capacity(rendered.len());
    for (path, contents) in rendered {
        let written = stage(path, contents.as_bytes()).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        staged.push((path, written));
    }
    for (path, written) in staged {
        written.persist(path).map_err(|e| ReportError::Write {
            path: path.clone(),
            source: e.error,
        })?;
    }
    Ok(files)
}

/// Writes `contents` to `path` atomically: a reader sees the old file or the new one, never
/// half of it, and an interrupted run leaves no partial file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    stage(path, contents)?.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `contents` written and synced to a temporary file (mode 0644) beside `path`, ready to be
/// renamed over it.
fn stage(path: &Path, contents: &[u8]) -> io::Result<tempfile::NamedTempFile> {
    use std::{io::Write, os::unix::fs::PermissionsExt};
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// How results JSON is laid out. Compact unless asked: pretty-printing puts every element
/// of a lookup's byte array on a line of its own, which made a full matrix's results.json
/// 9.2 MB instead of 2.6 MB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JsonLayout {
    #[default]
    Compact,
    /// Indented, a value per line, for reading by eye.
    Pretty,
}

impl JsonLayout {
    /// `Pretty` when `pretty`, as the `--pretty` flags say.
    pub fn pretty_if(pretty: bool) -> Self {
        if pretty { Self::Pretty } else { Self::Compact }
    }
}

pub fn to_json(results: &RunResults, layout: JsonLayout) -> String {
    match layout {
        JsonLayout::Compact => serde_json::to_string(results),
        JsonLayout::Pretty => serde_json::to_string_pretty(results),
    }
    .expect("the result model always serialises")
}

/// `results` (a [`RunResults`], a kernel's or a case's) with every text in it (names,
/// labels, messages, reasons, keys) escaped by [`crate::printable::escape`], for every view
/// but results.json: a results file, a case or a kernel's console could otherwise put escape
/// sequences on the terminal or in a report. A console tail keeps its last lines
/// ([`shown_tail`]).
pub fn printable<T: serde::Serialize + serde::de::DeserializeOwned>(results: &T) -> T {
    let mut value = serde_json::to_value(results).expect("the result model always serialises");
    escape_texts(&mut value);
    // Escaping changes only texts that held control characters, which no field parsed
    // from text (versions, times, enum tags) can hold and still have been read.
    serde_json::from_value(value).expect("escaped results read back")
}

/// The most of a console tail a view shows: its last lines, each cut like an outcome
/// ([`shorten`]). The harness keeps 40; a results file can hold any number, of any length.
const SHOWN_TAIL_LINES: usize = 100;
const SHOWN_TAIL_LINE_CHARS: usize = 500;

/// A console tail as views show it: the last [`SHOWN_TAIL_LINES`] lines, each escaped and
/// cut, without the console's colours (which are left out rather than shown as escapes).
fn shown_tail(tail: &str) -> String {
    let plain = strip_ansi_escapes::strip_str(tail);
    let lines: Vec<&str> = plain.lines().collect();
    let left_out = lines.len().saturating_sub(SHOWN_TAIL_LINES);
    let mut shown: Vec<String> = lines[left_out..]
        .iter()
        .map(|line| crate::printable::escape(&shorten(line, SHOWN_TAIL_LINE_CHARS)).into_owned())
        .collect();
    if left_out > 0 {
        shown.insert(0, format!("… {left_out} earlier line(s) in results.json"));
    }
    let end = if plain.ends_with('\n') { "\n" } else { "" };
    format!("{}{end}", shown.join("\n"))
}

fn escape_texts(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(escaped) = crate::printable::escape(text) {
                *text = escaped;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(escape_texts),
        Value::Object(fields) => {
            if fields.keys().any(|key| crate::printable::has_control(key)) {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(key, value)| (crate::printable::escape(&key).into_owned(), value))
                    .collect();
            }
            for (key, value) in fields.iter_mut() {
                match value {
                    Value::String(tail) if key == "log_tail" => *tail = shown_tail(tail),
                    value => escape_texts(value),
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The most bytes of results JSON read (after decompression): the default matrix's is under
/// 3 MB, so this bounds what a hostile or broken file can cost, not what a run can write.
pub const MAX_RESULTS_BYTES: u64 = 256 << 20;

/// Reads a `results.json`, or one compressed with gzip (`results.json.gz`: recognised by
/// its first bytes), as [`parse_json`] reads its text.
pub fn read_json(path: &Path) -> Result<RunResults, ReportError> {
    let text = read_text(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_json(path, &text)
}

/// Results JSON `text`, read from `path` (which errors name). The schema number is checked
/// before the rest, so a file from another harness version is reported as such rather than
/// as a confusing missing field. Whatever JSON readers would take differently is refused:
/// a key given twice in an object (most keep the last), and a kernel, or a case of one
/// kernel, given twice (every view would pick one of them). The text is read three times,
/// never into a tree of the whole file (ten times its size): keys and syntax, the schema,
/// the results.
pub fn parse_json(path: &Path, text: &str) -> Result<RunResults, ReportError> {
    let syntax = |field: String, source| ReportError::Syntax {
        path: path.to_path_buf(),
        field,
        source,
    };
    let mut reader = serde_json::Deserializer::from_str(text);
    let UniqueKeys = serde_path_to_error::deserialize(&mut reader)
        .map_err(|e| syntax(e.path().to_string(), e.into_inner()))?;
    reader.end().map_err(|e| syntax(".".into(), e))?;
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: Option<serde_json::Value>,
    }
    if let Ok(Schema {
        schema: Some(found),
    }) = serde_json::from_str(text)
        && let Some(found) = found.as_u64()
        && found != u64::from(SCHEMA_VERSION)
    {
        return Err(ReportError::Schema {
            path: path.to_path_buf(),
            found,
        });
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let results: RunResults =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|source| {
            ReportError::Shape {
                path: path.to_path_buf(),
                source,
            }
        })?;
    refuse_repeats(&results).map_err(|(field, message)| ReportError::Repeated {
        path: path.to_path_buf(),
        field,
        message,
    })?;
    Ok(results)
}

/// The first kernel named twice, or case named twice in one kernel: its field and why.
fn refuse_repeats(results: &RunResults) -> Result<(), (String, String)> {
    for (k, run) in results.kernels.iter().enumerate() {
        if let Some(first) = results.kernels[..k]
            .iter()
            .position(|other| other.kernel == run.kernel)
        {
            return Err((
                format!("kernels[{k}].kernel"),
                format!("kernel {:?} is kernels[{first}] already", run.kernel),
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for (c, case) in run.cases.iter().enumerate() {
            if let Some(first) = seen.insert(case.name.as_str(), c) {
                return Err((
                    format!("kernels[{k}].cases[{c}].name"),
                    format!(
                        "case {:?} is kernels[{k}].cases[{first}] already",
                        case.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// JSON read past, checking only that no object gives a key twice (serde_json would keep
/// the last): one object's keys at a time are held, nothing else.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} is given twice"
                )));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

/// What `report show`, `report merge` and `diff` do with a results file's `text`, their
/// output thrown away: the fuzz target `results_readers` and the replay of its corpus
/// (`harness/tests/integration/fuzz_corpus.rs`) drive the readers and every view through this.
pub fn read_and_show_every_way(text: &str) {
    let Ok(results) = parse_json(Path::new("fuzz.json"), text) else {
        return;
    };
    let mut sink = io::sink();
    let shown = printable(&results);
    let view = human::Human::plain();
    for rows in [matrix::Rows::All, matrix::Rows::ChangedOrTroubled] {
        let _ = matrix::write(&mut sink, &shown, view, rows);
    }
    let _ = changes::write(&mut sink, &shown, view);
    let _ = edges::write(&mut sink, &shown);
    let _ = atlas::write(&mut sink, &atlas::boundaries(&shown), &shown, view.width);
    let _ = markdown::render(&shown);
    let _ = html::render(&shown);
    let _ = junit::to_xml(&shown);
    let _ = to_json(&results, JsonLayout::Pretty);
    let _ = build_differences(&results);
    let _ = merge(vec![results.clone(), RunResults::new(Vec::new())]);
    // Against itself: every kernel is in both inputs.
    let _ = merge(vec![results.clone(), results.clone()]);
    let _ = diff::write(
        &mut sink,
        &diff::by_name(&results, &shown),
        "a",
        "b",
        true,
        false,
    );
    if let [first, .., last] = shown.kernels.as_slice() {
        let _ = diff::write(&mut sink, &diff::pair(first, last), "a", "b", true, false);
    }
}

/// The file's text, decompressed when it is gzip, refused past [`MAX_RESULTS_BYTES`] (and
/// at once when it is no regular file: a FIFO, a device).
fn read_text(path: &Path) -> io::Result<String> {
    use std::io::{BufRead, Read};
    let mut file = io::BufReader::new(crate::input_file::open_regular(path, MAX_RESULTS_BYTES)?);
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut text = String::new();
    reader
        .take(MAX_RESULTS_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_RESULTS_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("more than {MAX_RESULTS_BYTES} bytes of results JSON"),
        ));
    }
    Ok(text)
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(
        "results schema {found}, but this harness merges schema {SCHEMA_VERSION}; produce every input with the same harness version"
    )]
    Schema {
        /// Index of the input in the merged list.
        input: usize,
        found: u32,
    },
    #[error(
        "kernel {kernel:?} is in two inputs; give each CI job its own kernel (`harness run --kernel NAME`) or merge only one of them"
    )]
    DuplicateKernel {
        kernel: String,
        /// Indexes of the two inputs in the merged list.
        first: usize,
        second: usize,
    },
}

impl MergeError {
    /// Indexes of the inputs the error is about, so callers can name their files.
    pub fn inputs(&self) -> Vec<usize> {
        match self {
            Self::Schema { input, .. } => vec![*input],
            Self::DuplicateKernel { first, second, .. } => vec![*first, *second],
        }
    }
}

/// Joins results of separate runs (a CI matrix: one job per kernel) into one, kernels in
/// input order. A kernel may appear only once: two results for it cannot both be right.
/// The merge spans the earliest start to the latest end; its harness build and accelerator
/// are the first input's, and a kernel whose input differs in either keeps its own
/// ([`build_differences`] says which).
pub fn merge(inputs: Vec<RunResults>) -> Result<RunResults, MergeError> {
    let mut merged: Option<RunResults> = None;
    let mut origin: Vec<usize> = Vec::new();
    for (input, results) in inputs.into_iter().enumerate() {
        if results.schema != SCHEMA_VERSION {
            return Err(MergeError::Schema {
                input,
                found: results.schema,
            });
        }
        // The first input sets the build and accelerator its kernels are not marked with.
        let into = merged.get_or_insert_with(|| RunResults {
            schema: results.schema,
            started: results.started,
            ended: results.ended,
            harness: results.harness.clone(),
            accel: results.accel,
            kernels: Vec::new(),
        });
        into.started = into.started.min(results.started);
        into.ended = into.ended.max(results.ended);
        into.accel = into.accel.or(results.accel);
        for mut run in results.kernels {
            if let Some(at) = into.kernels.iter().position(|k| k.kernel == run.kernel) {
                return Err(MergeError::DuplicateKernel {
                    kernel: run.kernel,
                    first: origin[at],
                    second: input,
                });
            }
            if run.harness.is_none() && results.harness != into.harness {
                run.harness = Some(results.harness.clone());
            }
            if run.accel.is_none() && results.accel.is_some() && results.accel != into.accel {
                run.accel = results.accel;
            }
            into.kernels.push(run);
            origin.push(input);
        }
    }
    Ok(merged.unwrap_or_else(|| RunResults::new(Vec::new())))
}

/// Merges per-kernel runs laid out as `dir/<kernel>/results.json`, in the order of
/// `kernels` (kernels.toml's). A kernel whose file is missing, unreadable, or holds other
/// kernels than its own is that kernel's error row rather than a failed merge: its CI job
/// failed before writing one, or wrote another schema. An `optional` kernel whose image is
/// absent here had no job (`harness kernels matrix` leaves it out): without a file, its row
/// is the skip a run of the whole list shows.
pub fn merge_dir(kernels: &[&KernelEntry], dir: &Path) -> Result<RunResults, MergeError> {
    let mut found = Vec::new();
    // Per kernel, the row that stands in for results not found.
    let mut stand_ins = Vec::with_capacity(kernels.len());
    for entry in kernels {
        let kernel = entry.name.as_str();
        let path = dir.join(kernel).join(RESULTS_JSON);
        if let Some(reason) = entry.absent_reason()
            && !path.exists()
        {
            stand_ins.push(Some(
                entry.row_without_cases(KernelStatus::Skipped { reason }),
            ));
            continue;
        }
        let loaded = read_json(&path)
            .map_err(|e| crate::error_chain(&e))
            .and_then(|results| {
                let names: Vec<&str> = results.kernels.iter().map(|k| k.kernel.as_str()).collect();
                if names == [kernel] {
                    Ok(results)
                } else {
                    Err(format!(
                        "{} holds kernels {names:?}, not only {kernel:?}",
                        path.display()
                    ))
                }
            });
        match loaded {
            Ok(mut results) => {
                // The list's note, as a run of the list records it.
                for run in &mut results.kernels {
                    run.note = entry.note.clone();
                }
                found.push(results);
                stand_ins.push(None);
            }
            Err(reason) => stand_ins.push(Some(entry.row_without_cases(KernelStatus::Error {
                message: format!("no results for this kernel: {reason}"),
                log_tail: None,
            }))),
        }
    }
    let mut merged = merge(found)?;
    let mut runs = std::mem::take(&mut merged.kernels).into_iter();
    merged.kernels = stand_ins
        .into_iter()
        // Runs come in `kernels` order, one per kernel without a stand-in.
        .filter_map(|stand_in| stand_in.or_else(|| runs.next()))
        .collect();
    Ok(merged)
}

/// When the kernels of merged results were run by different harness builds, one line
/// saying which kernels ran which build; `None` when a single build ran them all.
pub fn build_differences(results: &RunResults) -> Option<String> {
    let mut builds: Vec<(&HarnessBuild, Vec<&str>)> = Vec::new();
    for run in &results.kernels {
        let build = results.harness_of(run);
        match builds.iter_mut().find(|(b, _)| *b == build) {
            Some((_, kernels)) => kernels.push(&run.kernel),
            None => builds.push((build, vec![&run.kernel])),
        }
    }
    (builds.len() > 1).then(|| {
        let parts: Vec<String> = builds
            .iter()
            .map(|(build, kernels)| format!("{} ran harness {build}", kernels.join(", ")))
            .collect();
        format!(
            "the kernels were run by different harness builds: {}",
            parts.join("; ")
        )
    })
}

/// How every view names a kernel: its name, and the version it reported when the name
/// does not already say it (`6.1 (6.1.158)`, `host (6.18.44)`, `7.3`).
pub fn kernel_label(name: &str, version: Option<KernelVersion>) -> String {
    match version {
        Some(v) if v.to_string() != name => format!("{name} ({v})"),
        _ => name.to_string(),
    }
}

/// [`kernel_label`] of a kernel's run, with its machine when that is not x86_64:
/// `6.1-arm64 (6.1.176, aarch64)`.
pub fn run_label(run: &KernelRun) -> String {
    match run.arch.as_deref() {
        Some(machine) if run.architecture() != crate::vm::Arch::X86_64 => match run.version {
            Some(version) => format!("{} ({version}, {machine})", run.kernel),
            None => format!("{} ({machine})", run.kernel),
        },
        _ => kernel_label(&run.kernel, run.version),
    }
}

/// `file:line`, or the file alone when the line is unknown (results of an older harness).
pub fn location(file: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_string(),
    }
}

/// `text`, or its first `max` characters and how many more there are: an outcome can be
/// a lookup of an 8 KB value, more than a report has room for.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!(
            "{}… ({} more characters in results.json)",
            &text[..cut],
            text[cut..].chars().count()
        ),
        None => text.to_string(),
    }
}

/// `text` in lines of at most `width` characters, the first starting with `first`, the
/// others with `rest`: broken at spaces, and inside a word only when the word alone is
/// wider than a line (a long value).
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let chars = |s: &str| s.chars().count();
    let mut lines = Vec::new();
    let mut line = first.to_string();
    // The characters in `line` and in what is left of `word`, counted once each: a long
    // value wraps in time linear in its length.
    let mut line_chars = chars(first);
    let mut empty = true;
    for mut word in text.split(' ') {
        let mut word_chars = chars(word);
        if !empty && line_chars + 1 + word_chars > width {
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            line_chars = chars(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
            line_chars += 1;
        }
        while line_chars + word_chars > width {
            let take = width.saturating_sub(line_chars).max(1);
            let Some((cut, _)) = word.char_indices().nth(take) else {
                break;
            };
            line.push_str(&word[..cut]);
            word = &word[cut..];
            word_chars -= take;
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            line_chars = chars(rest);
        }
        line.push_str(word);
        line_chars += word_chars;
        empty = false;
    }
    lines.push(line);
    lines
}

/// Colours `text` when `color` is on. Pad before painting: escape codes have no width.
fn paint(text: &str, style: Style, color: bool) -> String {
    if color {
        text.style(style).to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_spaces_and_long_words_are_split() {
        assert_eq!(
            wrap("changed between 7.0 and 7.1: ok → ENOMEM", 20, "  ", "    "),
            ["  changed between", "    7.0 and 7.1: ok", "    → ENOMEM"]
        );
        assert_eq!(
            wrap("value [1,1,1,1,1,1,1,1]", 12, "", "  "),
            ["value", "  [1,1,1,1,1", "  ,1,1,1]"]
        );
        for line in wrap(&"word ".repeat(40), 17, "- ", "  ") {
            assert!(line.chars().count() <= 17, "{line:?}");
        }
    }

    #[test]
    fn long_outcomes_are_cut_and_say_how_much() {
        assert_eq!(shorten("ok", 5), "ok");
        assert_eq!(
            shorten("→→→→→→→", 5),
            "→→→→→… (2 more characters in results.json)"
        );
    }
}
