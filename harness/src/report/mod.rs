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
pub mod github;
pub mod html;
pub mod human;
pub mod junit;
pub mod markdown;
pub mod matrix;
mod md;

use std::{
    io,
    path::{Path, PathBuf},
};

use owo_colors::{OwoColorize, Style};

use crate::{
    results::{
        JsonLayout, KernelRun, RESULTS_JSON, RunResults, build_differences, merge, parse_json,
        to_json,
    },
    version::KernelVersion,
};

/// The files [`write_all`] leaves in the output directory.
pub const JUNIT_XML: &str = "junit.xml";
pub const REPORT_MD: &str = "report.md";
pub const REPORT_HTML: &str = "report.html";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Read(#[from] crate::results::ReadError),
    #[error("cannot write {} (check that the output directory is writable)", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot serialise the JUnit report")]
    Junit(#[source] quick_junit::SerializeError),
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
