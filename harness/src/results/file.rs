//! results.json on disk: read (plain or gzip, bounded, strict about what JSON readers would
//! take differently) and written.

use std::{
    io,
    path::{Path, PathBuf},
};

use super::{RunResults, SCHEMA_VERSION};

/// The results file a run leaves in its output directory, and a CI job per kernel.
pub const RESULTS_JSON: &str = "results.json";

/// Why a results file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
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
}

/// " in FIELD" for a place inside the file, nothing for its top (`.`).
fn in_field(field: &str) -> String {
    if field == "." {
        String::new()
    } else {
        format!(" in {field}")
    }
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

/// The most bytes of results JSON read (after decompression): the default matrix's is under
/// 3 MB, so this bounds what a hostile or broken file can cost, not what a run can write.
pub const MAX_RESULTS_BYTES: u64 = 256 << 20;

/// Reads a `results.json`, or one compressed with gzip (`results.json.gz`: recognised by
/// its first bytes), as [`parse_json`] reads its text.
pub fn read_json(path: &Path) -> Result<RunResults, ReadError> {
    let text = read_text(path).map_err(|source| ReadError::Read {
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
pub fn parse_json(path: &Path, text: &str) -> Result<RunResults, ReadError> {
    let syntax = |field: String, source| ReadError::Syntax {
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
        return Err(ReadError::Schema {
            path: path.to_path_buf(),
            found,
        });
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let results: RunResults =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|source| ReadError::Shape {
            path: path.to_path_buf(),
            source,
        })?;
    refuse_repeats(&results).map_err(|(field, message)| ReadError::Repeated {
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
