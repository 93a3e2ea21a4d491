//! sk-storage harness: runs `BPF_MAP_TYPE_SK_STORAGE` behaviour cases on real kernels.
//!
//! Data flows one way through the modules: `case` (YAML → validated cases) and `kernels`
//! (kernels.toml → fetched, verified kernels) → `matrix` (one VM per kernel, via `vm`, each
//! given its `plan`) →
//! `exec` (runs the cases on the running kernel: in each guest, or on the host with
//! `--host`; `bpf` loads the eBPF programs) → `results` (one serialisable model) →
//! `report` (terminal, JSON, JUnit, Markdown); `bisect` searches an ordered list of kernels
//! for where the results change, and `record` turns results into proposed expectations.
//! `cli` wires them together.
//! `version` is the kernel version type that all of them share; `diagnostic` locates and
//! prints the problems `case` and `kernels` find in their input files.

pub mod bisect;
pub mod bpf;
pub mod case;
pub mod catalogue;
pub mod cli;
pub mod diagnostic;
pub mod errno;
pub mod exec;
pub mod input_file;
pub mod kernels;
pub mod matrix;
pub mod names;
pub mod plan;
pub mod printable;
pub mod record;
pub mod report;
pub mod results;
pub mod version;
pub mod vm;

/// `$XDG_CACHE_HOME/sk-storage-harness` (or `~/.cache/…`): kernels and the accelerator
/// probe's verdict are kept under it.
pub fn cache_dir() -> Option<std::path::PathBuf> {
    dirs::cache_dir().map(|dir| dir.join("sk-storage-harness"))
}

/// An error with its causes, "outer: cause: root cause", as anyhow's `{:#}` prints it, and
/// printable: an error can quote its input (a path, a results file's text), whose control
/// characters are escaped ([`printable::escape`]).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    printable::escape(&text).into_owned()
}
