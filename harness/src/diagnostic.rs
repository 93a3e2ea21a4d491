//! Problems in the files the harness reads (case files, kernels.toml), each located by
//! file, line, column and field and printed one way: `file:line:column: field: message`.
//!
//! What both formats share in building a message lives here too: the nearest-name hint
//! ([`did_you_mean`]) and the rewording of serde's and the parsers' errors (`serde_message`,
//! `ParserError`), so a misspelt key reads the same in YAML and TOML.

use std::{
    fmt,
    path::{Path, PathBuf},
};

/// One problem in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column (in characters); `None` for a problem with the file as a
    /// whole (missing, unreadable, too large), which has no place in it to point at.
    pub location: Option<(usize, usize)>,
    /// Dotted path of the offending field, e.g. `steps[2].update.map`; empty where there is
    /// none (a syntax error, a problem with the file).
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    /// A problem at a place in the file: 1-based line and column.
    pub fn at(
        file: &Path,
        location: (usize, usize),
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            location: Some(location),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A problem with the file or directory itself rather than a place in it.
    pub fn of_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            location: None,
            field: String::new(),
            message: message.into(),
        }
    }

    /// A parser's error in `text`, the contents of `file` (a syntax error: no field).
    pub(crate) fn parse_error(file: &Path, text: &str, error: &impl ParserError) -> Self {
        Self {
            file: file.to_path_buf(),
            location: error.position(text),
            field: String::new(),
            message: serde_message(&error.bare_message()),
        }
    }

    /// A deserialisation error, at the field serde_path_to_error followed to it.
    pub(crate) fn deserialize_error<E: ParserError>(
        file: &Path,
        text: &str,
        error: serde_path_to_error::Error<E>,
    ) -> Self {
        let field = field_path(error.path());
        Self {
            field,
            ..Self::parse_error(file, text, &error.into_inner())
        }
    }
}

/// Printable: the file's name, a field (an unknown key) and a message (which quotes the
/// input) can hold control characters, which are escaped.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::printable::escape;
        write!(f, "{}", escape(&self.file.display().to_string()))?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", escape(&self.field))?;
        }
        write!(f, "{}", escape(&self.message))
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem found in one load; loading goes on past the first so one run reports
/// them all. Printed one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Diagnostics(pub Vec<Diagnostic>);

/// 1-based line and column (counted in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// "; did you mean `x`?" when a candidate is close to `given`, else nothing.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(given, candidates)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// The candidate closest to `given`, if it is close enough to be a likely typo.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (given.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&given.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A parser's error as a diagnostic needs it: the place and the bare message. Parsers put
/// their own copy of the position (and serde_yaml its own path) into the message, which
/// would repeat what the diagnostic prints in front.
pub(crate) trait ParserError {
    /// 1-based line and column in `text`, the parsed text.
    fn position(&self, text: &str) -> Option<(usize, usize)>;
    /// The message without the parser's position and path.
    fn bare_message(&self) -> String;
}

impl ParserError for serde_yaml::Error {
    fn position(&self, _text: &str) -> Option<(usize, usize)> {
        serde_yaml::Error::location(self).map(|l| (l.line(), l.column()))
    }

    fn bare_message(&self) -> String {
        let mut message = self.to_string();
        if let Some(l) = serde_yaml::Error::location(self) {
            message = message.replace(&format!(" at line {} column {}", l.line(), l.column()), "");
        }
        // serde_yaml puts its own, shorter path in front.
        if let Some((prefix, rest)) = message.split_once(": ")
            && !prefix.contains(' ')
        {
            message = rest.to_string();
        }
        message
    }
}

impl ParserError for toml::de::Error {
    /// toml gives a byte span; an error without one (rare) points at the start of the file.
    fn position(&self, text: &str) -> Option<(usize, usize)> {
        Some(line_column(text, self.span().map_or(0, |s| s.start)))
    }

    fn bare_message(&self) -> String {
        self.message().to_string()
    }
}

/// serde's message as the reader of a file should see it: an unknown field or variant gets
/// the nearest accepted name as a hint, and an integer that does not fit says so plainly.
pub(crate) fn serde_message(message: &str) -> String {
    out_of_range(message).unwrap_or_else(|| with_suggestion(message))
}

/// serde_yaml reads an integer beyond 64 bits as u128 or i128, then says "invalid type:
/// integer `N` as u128, expected u32"; this says plainly that the integer is out of range.
fn out_of_range(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: integer `")?;
    let (number, rest) = rest.split_once('`')?;
    let expected = rest
        .strip_prefix(" as u128, expected ")
        .or_else(|| rest.strip_prefix(" as i128, expected "))?;
    Some(if expected == "any YAML value" {
        // A value checked later against the map's type, which is at most 64-bit.
        format!("the integer {number} is out of range: integers in a case have at most 64 bits")
    } else {
        format!("the integer {number} is out of range for this field ({expected})")
    })
}

/// Adds "did you mean" to serde's unknown-field and unknown-variant messages. They name the
/// given key and then every accepted one, each in backquotes ("unknown field `sereis`,
/// expected one of `suite`, `series`"); the error exposes the accepted names no other way.
fn with_suggestion(message: &str) -> String {
    let unknown = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix));
    let Some(rest) = unknown else {
        return message.to_string();
    };
    // Every other piece between backquotes is a name: the given one, then the accepted ones.
    let mut names = rest.split('`').step_by(2);
    let given = names.next().unwrap_or_default();
    format!("{message}{}", did_you_mean(given, names))
}

/// serde_spanned's key for the value inside a `Spanned`, which toml shows serde as a map;
/// not a field the user wrote.
const SPANNED_VALUE_KEY: &str = "$__serde_spanned_private_value";

/// `kernel[3].debian.suite` from serde's path. It stops where serde_path_to_error lost
/// track of the key (`?`, as in a syntax error): what follows cannot be named.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if key == SPANNED_VALUE_KEY {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_only_the_parts_it_has() {
        let file = Path::new("kernels.toml");
        assert_eq!(
            Diagnostic::at(file, (3, 12), "kernel[0].cpus", "must be at least 1").to_string(),
            "kernels.toml:3:12: kernel[0].cpus: must be at least 1"
        );
        assert_eq!(
            Diagnostic::at(file, (1, 5), "", "expected `=`").to_string(),
            "kernels.toml:1:5: expected `=`"
        );
        let whole = Diagnostic::of_file(file, "no such file or directory");
        assert_eq!(whole.to_string(), "kernels.toml: no such file or directory");
        let all = Diagnostics(vec![whole.clone(), whole]);
        assert_eq!(
            all.to_string(),
            "kernels.toml: no such file or directory\nkernels.toml: no such file or directory"
        );
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "a\nbé = 1\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (2, 1));
        // `=` is byte 6 but the third character of its line.
        assert_eq!(line_column(text, 6), (2, 4));
        // Inside `é`, and past the end: the nearest place before.
        assert_eq!(line_column(text, 4), (2, 2));
        assert_eq!(line_column(text, 100), (3, 1));
    }

    #[test]
    fn serde_messages_get_hints_and_plain_ranges() {
        assert_eq!(
            serde_message("unknown field `sereis`, expected one of `suite`, `series`"),
            "unknown field `sereis`, expected one of `suite`, `series`; did you mean `series`?"
        );
        assert_eq!(
            serde_message("unknown variant `stram`, expected `stream` or `dgram`"),
            "unknown variant `stram`, expected `stream` or `dgram`; did you mean `stream`?"
        );
        // A given name that contains "expected" is not taken for the list.
        assert_eq!(
            serde_message("unknown field `unexpectd`, expected `unexpected`"),
            "unknown field `unexpectd`, expected `unexpected`; did you mean `unexpected`?"
        );
        assert_eq!(
            serde_message("unknown field `zzz`, there are no fields"),
            "unknown field `zzz`, there are no fields"
        );
        assert_eq!(
            serde_message("invalid type: integer `99999999999999999999` as u128, expected u32"),
            "the integer 99999999999999999999 is out of range for this field (u32)"
        );
        assert_eq!(
            serde_message("invalid type: string \"two\", expected u32"),
            "invalid type: string \"two\", expected u32"
        );
    }

    #[test]
    fn hints_pick_the_nearest_close_name() {
        assert_eq!(suggest("timout", ["timeout", "memory"]), Some("timeout"));
        assert_eq!(suggest("zzz", ["timeout", "memory"]), None);
        assert_eq!(
            did_you_mean("Memroy", ["memory"]),
            "; did you mean `memory`?"
        );
    }
}
