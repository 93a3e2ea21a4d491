//! Every error message of the case language, pinned by a fixture: `case_messages/NAME.yaml`
//! is loaded and the errors it gives must be exactly `case_messages/NAME.expected` (one
//! trial per fixture). After changing a message on purpose, rewrite the expected files with
//! `BLESS=1 cargo test --test case_messages` and review the diff. An `.expected` file
//! without its `.yaml` fails its own trial: it would pin a message nothing checks.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
};

use libtest_mimic::{Arguments, Failed, Trial};

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/case_messages");
    let (bless, note) = bless_switch(std::env::var_os("BLESS").as_deref());
    if let Some(note) = note {
        eprintln!("{note}");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/case_messages")
        .map(|entry| entry.expect("fixture").path())
        .collect();
    files.sort();
    let has = |path: &Path, ext: &str| path.extension().is_some_and(|e| e == ext);
    let mut trials: Vec<Trial> = files
        .iter()
        .filter(|path| has(path, "yaml"))
        .map(|yaml| {
            let name = yaml
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let yaml = yaml.clone();
            Trial::test(name, move || check(&yaml, bless))
        })
        .collect();
    trials.extend(
        files
            .iter()
            .filter(|path| has(path, "expected") && !path.with_extension("yaml").exists())
            .map(|orphan| {
                let name = orphan
                    .file_name()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned();
                let stem = orphan
                    .file_stem()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned();
                let message = format!(
                    "{name} has no {stem}.yaml beside it: restore the fixture, or remove {name}"
                );
                Trial::test(name, move || Err(message.into()))
            }),
    );
    trials.push(Trial::test("bless-switch", bless_switch_is_exactly_one));
    libtest_mimic::run(&args, trials).exit_code()
}

/// Whether `BLESS` (its value) asks for the expected files to be rewritten, and a note to
/// print. Only `1` does: any other value checks them, so that `BLESS=0` never blesses.
fn bless_switch(value: Option<&OsStr>) -> (bool, Option<String>) {
    match value {
        None => (false, None),
        Some(value) if value == "1" => (true, None),
        Some(value) => (
            false,
            Some(format!(
                "BLESS={value:?}: only BLESS=1 rewrites the expected files; checking them"
            )),
        ),
    }
}

fn bless_switch_is_exactly_one() -> Result<(), Failed> {
    let switch = |value: Option<&str>| bless_switch(value.map(OsStr::new));
    assert_eq!(switch(None), (false, None));
    assert_eq!(switch(Some("1")), (true, None));
    for other in ["0", "", "yes", "true"] {
        let (bless, note) = switch(Some(other));
        assert!(!bless, "BLESS={other:?} blessed");
        assert!(
            note.is_some_and(|n| n.contains("only BLESS=1")),
            "BLESS={other:?} not reported"
        );
    }
    Ok(())
}

fn check(yaml: &Path, bless: bool) -> Result<(), Failed> {
    let text = std::fs::read_to_string(yaml).map_err(|e| format!("{}: {e}", yaml.display()))?;
    // Named by its file name alone, so messages do not depend on where the checkout is.
    let shown = Path::new(yaml.file_name().expect("a file name"));
    let actual = match harness::case::parse(shown, &text) {
        Ok(_) => {
            return Err(format!("{} is valid; a fixture must give errors", shown.display()).into());
        }
        Err(errors) => format!("{errors}\n"),
    };
    let expected_path = yaml.with_extension("expected");
    if bless {
        std::fs::write(&expected_path, &actual).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(&expected_path).map_err(|e| {
        format!(
            "{}: {e}; run with BLESS=1 to write it from the current output",
            expected_path.display()
        )
    })?;
    if actual == expected {
        Ok(())
    } else {
        Err(
            format!("expected:\n{expected}\nactual:\n{actual}(BLESS=1 rewrites the expected file)")
                .into(),
        )
    }
}
