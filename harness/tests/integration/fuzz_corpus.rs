//! The fuzzing corpus (fuzz/corpus/, grown by `scripts/fuzz`) replayed through the loaders it
//! was found for, as ordinary tests: every input that once reached a new path, and every
//! crasher kept after its fix, must end in a result or located errors, quickly.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// What one input may cost even under a debug build; the loaders' own limits keep it far
/// below.
const PER_INPUT: Duration = Duration::from_secs(5);

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

fn replay(target: &str, load: impl Fn(&str)) {
    for file in corpus(target) {
        let bytes = std::fs::read(&file).expect("read corpus input");
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let started = Instant::now();
        load(text);
        assert!(
            started.elapsed() < PER_INPUT,
            "{} took {:?}",
            file.display(),
            started.elapsed()
        );
    }
}

#[test]
fn case_loader_corpus() {
    replay("case_loader", |text| {
        let _ = harness::case::parse(Path::new("fuzz.yaml"), text);
    });
}

#[test]
fn kernels_toml_corpus() {
    replay("kernels_toml", |text| {
        let _ = harness::kernels::KernelsFile::parse(text, Path::new("/nonexistent/kernels.toml"));
    });
}

#[test]
fn results_readers_corpus() {
    replay("results_readers", harness::report::read_and_show_every_way);
}
