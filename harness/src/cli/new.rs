//! `harness new NAME`: a commented case to start from, which validates as written.

use std::{io::Write, path::PathBuf};

use super::{EXIT_BAD_INPUT, EXIT_INFRA, EXIT_PASS};

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The case's name, which is also its file's: lowercase letters, digits, `-`, `_` and
    /// `.`.
    name: String,
    /// The directory to write NAME.yaml in.
    /// [default: the project's cases]
    #[arg(long, default_value_os_t = super::project::path("cases"), hide_default_value = true)]
    dir: PathBuf,
}

/// The case's text: a map, a socket, a step, and a step whose expectation depends on the
/// kernel's version, each saying what to fill in.
fn template(name: &str) -> String {
    format!(
        r#"# A case of the sk-storage harness (the case language: docs/src/cases/ in its book).
# `harness check` validates it; `harness run --host --case {name}` runs it on this kernel.
name: {name}
description: >
  What this case pins and why, with a source a reader can open: a kernel file and
  function, a commit and the release it first shipped in, Documentation/bpf/map_sk_storage.rst.
# The maps and sockets the steps name, created before the first step.
maps:
  store: {{ value: u32 }}
sockets:
  s: {{ family: inet, type: stream }}
steps:
  - update: {{ map: store, socket: s, value: 7 }}
    expect: ok
  # Where kernels differ, one variant per range of versions, [since, until), each with its
  # reason. Write what the kernels do: `harness record` proposes variants from a run.
  - lookup: {{ map: store, socket: s }}
    expect:
      - until: "5.10"
        expect: {{ value: 7 }}
        reason: before the change (name its commit and first release)
      - since: "5.10"
        expect: {{ value: 7 }}
        reason: from the change on
"#
    )
}

pub fn run(args: &NewArgs) -> u8 {
    let text = template(&args.name);
    // Validated as the file it will be, beside nothing else: a bad name is refused with
    // the case language's own message, and nothing is written.
    let staging = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("error: cannot create a temporary directory: {e}");
            return EXIT_INFRA;
        }
    };
    let file_name = format!("{}.yaml", args.name);
    let staged = staging.path().join(&file_name);
    if let Err(e) = std::fs::write(&staged, &text) {
        eprintln!("error: cannot write {}: {e}", staged.display());
        return EXIT_INFRA;
    }
    let path = args.dir.join(&file_name);
    if let Err(errors) = crate::case::load(std::slice::from_ref(&staged)) {
        // Said of the file it would have been.
        let said = errors.to_string();
        eprintln!(
            "{}",
            said.replace(&staged.display().to_string(), &path.display().to_string())
        );
        return EXIT_BAD_INPUT;
    }
    if args.dir.is_dir()
        && let Ok(cases) = crate::case::load(std::slice::from_ref(&args.dir))
        && let Some(taken) = cases.iter().find(|case| case.name == args.name)
    {
        eprintln!(
            "error: {} already names the case {}",
            taken.file.display(),
            args.name
        );
        return EXIT_BAD_INPUT;
    }
    let written = std::fs::create_dir_all(&args.dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?
            .write_all(text.as_bytes())
    });
    match written {
        Ok(()) => {
            println!("{}", path.display());
            EXIT_PASS
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!("error: {} exists; nothing was written", path.display());
            EXIT_BAD_INPUT
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            EXIT_INFRA
        }
    }
}
