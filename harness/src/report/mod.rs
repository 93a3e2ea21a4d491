//! Views of the result model: the terminal summary and machine formats.

pub mod human;

use std::{io, path::Path};

use crate::results::RunResults;

/// Writes `contents` to `path` atomically: a reader sees the old file or the new one, never
/// half of it, and an interrupted run leaves no partial report.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

pub fn to_json(results: &RunResults) -> String {
    serde_json::to_string_pretty(results).expect("the result model always serialises")
}
