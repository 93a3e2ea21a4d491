//! Every error message of the case language, pinned by a fixture: `case_messages/NAME.yaml`
//! is loaded and the errors it gives must be exactly `case_messages/NAME.expected` (one
//! trial per fixture). After changing a message on purpose, rewrite the expected files with
//! `BLESS=1 cargo test --test case_messages` and review the diff.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/case_messages");
    let bless = std::env::var_os("BLESS").is_some();
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/case_messages")
        .map(|entry| entry.expect("fixture").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    fixtures.sort();
    let trials = fixtures
        .into_iter()
        .map(|yaml| {
            let name = yaml
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            Trial::test(name, move || check(&yaml, bless))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
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
