//! Host-run benchmark: wall time of the whole `harness run --host cases` process and of
//! each case inside it. Prints figures; asserts nothing.
//!
//! cargo bench --bench host

use std::{path::PathBuf, process::Command, time::Instant};

use harness::results::RunResults;

const ROUNDS: usize = 5;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_harness"));
    let mut walls = Vec::new();
    let mut last = None;
    for _ in 0..ROUNDS {
        let out_dir = tempfile::tempdir().expect("temp dir");
        let started = Instant::now();
        let output = Command::new(&exe)
            .current_dir(&root)
            .args(["run", "--host", "--format", "json", "--out"])
            .arg(out_dir.path())
            .arg("cases")
            .output()
            .expect("harness runs");
        walls.push(started.elapsed().as_secs_f64());
        if !output.status.success() {
            eprintln!(
                "the host run did not pass (exit {:?}); figures would mean nothing",
                output.status.code()
            );
            eprintln!("{}", String::from_utf8_lossy(&output.stderr));
            std::process::exit(1);
        }
        last = Some(serde_json::from_slice::<RunResults>(&output.stdout).expect("JSON results"));
    }
    walls.sort_by(f64::total_cmp);
    let run = &last.expect("at least one round").kernels[0];
    println!(
        "host run of {} cases on {}: wall {:.3} s median, {:.3} s min of {ROUNDS} (process start to exit)",
        run.cases.len(),
        run.version.map(|v| v.to_string()).unwrap_or_default(),
        walls[ROUNDS / 2],
        walls[0]
    );
    println!("per case (last round):");
    let mut cases: Vec<_> = run.cases.iter().collect();
    cases.sort_by_key(|c| std::cmp::Reverse(c.duration_ms));
    for case in cases {
        println!("  {:>5} ms  {}", case.duration_ms, case.name);
    }
}
