//! End-to-end tests of the `harness` binary: exit codes, error locations, reports; and the
//! book and README checked against the binary and the code (`docs`).

use crate::requirements;

use std::{path::PathBuf, process::Output};

use requirements::Requirement;

fn harness(args: &[&str]) -> Output {
    command(args).output().expect("the harness binary runs")
}

/// The binary with `args`, run from the repository's root as a user would.
fn command(args: &[&str]) -> std::process::Command {
    let mut command = crate::harness_command();
    command.args(args).current_dir(repo_root());
    command
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Kernel-facing tests need root; anywhere else they say so instead of failing (unless the
/// environment declares root a requirement).
fn can_use_bpf() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        requirements::missing(Requirement::Root, "creating BPF maps");
        false
    }
}

#[test]
fn check_accepts_every_shipped_case() {
    let out = harness(&["check", "cases"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("cases are valid\n"));
}

#[test]
fn check_reports_file_line_column_and_exits_2() {
    let out = harness(&["check", "harness/tests/fixtures/invalid"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "harness/tests/fixtures/invalid/misspelt-field.yaml:4:12: maps.store.valeu: unknown field `valeu`"
        ),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("did you mean `value`?"), "stderr: {stderr}");
}

#[test]
fn a_memory_size_is_checked_before_vng_sees_it() {
    for memory in ["1G;touch pwned", "$(touch pwned)", "lots"] {
        let out = harness(&["run", "--kernel", "6.1", "--memory", memory, "cases"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{memory}: {stderr}");
        assert!(stderr.contains("is not a memory size"), "{stderr}");
    }
}

#[test]
fn a_kernel_vng_cannot_be_handed_safely_is_refused_before_anything_boots() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("vmlinux"), "not a bzImage").unwrap();
    // vng decompresses a zstd module through /bin/sh by its real path when it indexes the
    // modules (here there is no index); a release names the modules' mount point.
    let zstd = dir.path().join("m $(touch $SK_MARK)/6.1.0-test");
    std::fs::create_dir_all(zstd.join("kernel/fs")).unwrap();
    std::fs::write(zstd.join("kernel/fs/virtiofs.ko.zst"), "a module").unwrap();
    std::fs::create_dir_all(dir.path().join("r/6.1;touch x")).unwrap();
    let kernels = dir.path().join("kernels.toml");
    std::fs::write(
        &kernels,
        "[[kernel]]\nname = \"zstd\"\n\
         local = { vmlinuz = \"vmlinux\", modules = \"m $(touch $SK_MARK)/6.1.0-test\" }\n\
         [[kernel]]\nname = \"release\"\n\
         local = { vmlinuz = \"vmlinux\", modules = \"r/6.1;touch x\" }\n",
    )
    .unwrap();
    let kernels = kernels.to_str().unwrap();
    for (kernel, what) in [
        ("zstd", "the zstd-compressed module"),
        ("release", "the release of a kernel with modules"),
    ] {
        let out = command(&["run", "--kernels", kernels, "--kernel", kernel, "cases"])
            .env("SK_MARK", dir.path().join("marker"))
            .output()
            .expect("the harness binary runs");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{kernel}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "kernel {kernel}: refused before anything booted: {what}"
            )),
            "{stderr}"
        );
    }
    assert!(!dir.path().join("marker").exists());
}

#[test]
fn run_refuses_bad_input_without_running_anything() {
    let out = harness(&["run", "--host", "cases", "harness/tests/fixtures/invalid"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).is_empty(),
        "nothing may run: {}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("nothing was run"));
}

#[test]
fn host_run_passes_every_shipped_case() {
    if !can_use_bpf() {
        return;
    }
    let out = harness(&["run", "--host", "cases"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("host: "))
        .unwrap_or_default();
    assert!(summary.contains(" 0 diverged, "), "{summary}");
    assert!(summary.contains(" 0 errors"), "{summary}");
    // A skip must say why (tracing programs refused by this machine, a newer kernel needed).
    for line in stdout.lines().filter(|l| l.starts_with("skip ")) {
        assert!(line.contains(" ("), "a skip without a reason: {line}");
    }
}

/// Each form of repetition the book documents has a case in tests/fixtures/repeat/: all
/// are valid, and all pass on the running kernel.
#[test]
fn every_repeat_form_of_the_book_is_valid_and_passes() {
    let fixtures = "harness/tests/fixtures/repeat";
    let out = harness(&["check", fixtures]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "4 cases are valid\n");
    if !can_use_bpf() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().display().to_string();
    let out = harness(&[
        "run", "--host", "--format", "json", "--out", &out_dir, fixtures,
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let cases = json["kernels"][0]["cases"].as_array().expect("cases");
    let passed: Vec<&str> = cases
        .iter()
        .filter(|c| c["outcome"]["status"] == "pass")
        .map(|c| c["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        passed,
        [
            "repeat-creates",
            "repeat-declarations",
            "repeat-steps",
            "repeat-threads"
        ]
    );
    // A repeat's steps take its place: step 1, iteration 3, its seventh step.
    let creates = &cases[0]["steps"];
    let last = &creates[creates.as_array().expect("steps").len() - 1];
    assert_eq!(last["id"], "1.3.7");
    assert_eq!(last["label"], "close map m2");
}

/// `optional = true` excuses an absent image from a run of the whole list (a skip, exit 0),
/// never from a run that names the kernel: that is an error row and exit 3, so a run that
/// tested nothing cannot pass. The image is absent, so no VM is booted.
#[test]
fn an_absent_optional_kernel_named_with_kernel_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = dir.path().join("kernels.toml");
    std::fs::write(
        &list,
        "[[kernel]]\nname = \"old\"\n\
         local = { vmlinuz = \"no-such-dir/bzImage\", optional = true }\n",
    )
    .expect("writes kernels.toml");
    let run = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out).display().to_string();
        let list = list.display().to_string();
        let mut args = vec![
            "run",
            "--kernels",
            &list,
            "--out",
            &out,
            "--filter",
            "update-noexist",
        ];
        args.extend_from_slice(extra);
        args.push("cases");
        harness(&args)
    };
    let status = |out: &str| {
        let results = std::fs::read_to_string(dir.path().join(out).join("results.json"))
            .expect("results written");
        let results: serde_json::Value = serde_json::from_str(&results).expect("results parse");
        results["kernels"][0]["status"].clone()
    };

    let whole = run("whole", &[]);
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole.stderr));
    assert_eq!(status("whole")["status"], "skipped");

    let named = run("named", &["--kernel", "old"]);
    assert_eq!(named.status.code(), Some(3), "{}", text(&named.stderr));
    let stderr = text(&named.stderr);
    assert!(
        stderr.contains("old: error: the image no-such-dir/bzImage is not on this machine"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "it was asked for by name, and `optional = true` excuses an absent kernel only \
             from a run of the whole list"
        ),
        "{stderr}"
    );
    assert_eq!(status("named")["status"], "error");
}

#[test]
fn wrong_expectation_is_diverged_with_exit_1() {
    if !can_use_bpf() {
        return;
    }
    let out = harness(&["run", "--host", "harness/tests/fixtures/diverging"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let expected = "DIVERGED wrong-expectation (harness/tests/fixtures/diverging/wrong-expectation.yaml)\n  \
                    step 2: update store[s] = 2 (NOEXIST) \
                    [harness/tests/fixtures/diverging/wrong-expectation.yaml:12]\n    \
                    expected: ok\n    \
                    actual:   EEXIST (17)\n";
    assert!(stdout.contains(expected), "stdout: {stdout}");
    // Only the wrong step diverges; the others are judged on their own.
    assert_eq!(stdout.matches("  step ").count(), 1, "stdout: {stdout}");
}

/// In GitHub Actions a divergence is an annotation on its step's line, and report.md the
/// job's summary.
#[test]
fn in_github_actions_a_divergence_is_annotated_and_the_report_summarised() {
    if !can_use_bpf() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let summary = dir.path().join("summary.md");
    let out = command(&[
        "run",
        "--host",
        "--out",
        dir.path().to_str().unwrap(),
        "harness/tests/fixtures/diverging",
    ])
    .env("GITHUB_ACTIONS", "true")
    .env("GITHUB_STEP_SUMMARY", &summary)
    .output()
    .expect("the harness binary runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "::error file=harness/tests/fixtures/diverging/wrong-expectation.yaml,line=12,\
             title=wrong-expectation diverged on host"
        ),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("::step 2 (update store[s] = 2 (NOEXIST)): expected ok, got EEXIST (17)\n"),
        "stderr: {stderr}"
    );
    let report_md = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    assert_eq!(
        std::fs::read_to_string(&summary).expect("the job summary"),
        report_md
    );
}

#[test]
fn json_output_carries_every_step() {
    if !can_use_bpf() {
        return;
    }
    let out = harness(&[
        "run",
        "--host",
        "--format",
        "json",
        "harness/tests/fixtures/diverging",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let kernel = &json["kernels"][0];
    assert_eq!(kernel["kernel"], "host");
    assert_eq!(kernel["status"]["status"], "ran");
    let case = &kernel["cases"][0];
    assert_eq!(case["outcome"]["status"], "diverged");
    let steps = case["steps"].as_array().expect("steps");
    // Two set-up steps (map, socket) and the case's three.
    assert_eq!(steps.len(), 5);
    assert_eq!(
        steps[3]["actual"],
        serde_json::json!({ "kind": "errno", "name": "EEXIST", "code": 17 })
    );
    assert_eq!(steps[3]["verdict"], "diverged");
    assert_eq!(
        steps[4]["actual"],
        serde_json::json!({ "kind": "value", "value": 1 })
    );
}

/// A saved run of `big.yaml` (which expects `ok`) on 7.0.13, which did ok, and 7.1.13,
/// which did ENOMEM.
fn record_fixture(dir: &std::path::Path) -> PathBuf {
    let case = dir.join("big.yaml");
    std::fs::write(
        &case,
        "name: big\ndescription: a large value\nmaps:\n  m: { value: \"u8[8121]\" }\nsockets:\n  s: { family: inet }\nsteps:\n  - update: { map: m, socket: s, value: 1 }\n    expect: ok\n",
    )
    .expect("writes the case");
    let kernel = |name: &str, version: &str, actual: serde_json::Value| {
        serde_json::json!({
            "kernel": name, "release": format!("{version}+deb13-cloud-amd64"), "version": version,
            "status": { "status": "ran" }, "duration_ms": 1,
            "cases": [{
                "name": "big", "file": case.display().to_string(),
                "outcome": { "status": "diverged" }, "duration_ms": 1,
                "steps": [{
                    "id": "1", "label": "update m[s] = 1", "expected": "ok",
                    "actual": actual, "verdict": "diverged"
                }]
            }]
        })
    };
    let results = dir.join("results.json");
    let run = serde_json::json!({
        "schema": harness::results::SCHEMA_VERSION,
        "started": "2026-11-29T12:00:00Z",
        "ended": "2026-11-29T12:01:00Z",
        "harness": { "version": "0.1.0", "commit": "unknown" },
        "kernels": [
            kernel("7.1", "7.1.13", serde_json::json!({ "kind": "errno", "name": "ENOMEM", "code": 12 })),
            kernel("7.0", "7.0.13", serde_json::json!({ "kind": "ok" })),
        ]
    });
    std::fs::write(&results, run.to_string()).expect("writes the results");
    results
}

#[test]
fn record_replaces_an_expectation_from_one_kernel_and_writes_it_only_when_asked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let results = record_fixture(dir.path());
    let dir_arg = dir.path().display().to_string();
    let results_arg = results.display().to_string();
    let args = [
        "record",
        &dir_arg,
        "--kernel",
        "7.1",
        "--results",
        &results_arg,
    ];

    let out = harness(&args);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "  step 1: expects ENOMEM for all kernels (was ok for all kernels)\n  one kernel cannot place a version split: record with several kernels, --kernel A --kernel B or a results file holding several, to propose one\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("-    expect: ok\n+    expect: ENOMEM\n"),
        "{stdout}"
    );
    let recorded = dir.path().join("big.yaml.recorded");
    assert!(!recorded.exists(), "a diff writes nothing");

    let out = harness(&[&args[..], &["--write"]].concat());
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    // The proposal is a valid case.
    let checked = dir.path().join("checked");
    std::fs::create_dir(&checked).expect("creates a directory");
    std::fs::copy(&recorded, checked.join("big.yaml")).expect("copies the proposal");
    let out = harness(&["check", &checked.display().to_string()]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
}

#[test]
fn record_splits_between_the_kernels_of_a_saved_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let results = record_fixture(dir.path());
    let dir_arg = dir.path().display().to_string();
    let results_arg = results.display().to_string();

    // Every kernel of the results by default; --kernel, repeated, names the same two.
    for kernels in [&[][..], &["--kernel", "7.1", "--kernel", "7.0"][..]] {
        let args = [
            &["record", &dir_arg, "--results", &results_arg][..],
            kernels,
        ]
        .concat();
        let out = harness(&args);
        assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(
                "  step 1: expects ok for < 7.1, ENOMEM for >= 7.1 (was ok for all kernels)\n"
            ),
            "{stdout}"
        );
        assert!(
            stdout.contains(
                "+      - since: \"7.1\"\n+        expect: ENOMEM\n+        reason: \"recorded: ok on 7.0.13, ENOMEM on 7.1.13; kernels between them not run\"\n"
            ),
            "{stdout}"
        );
        assert!(!stdout.contains("one kernel"), "{stdout}");
    }

    let out = harness(&[
        "record",
        &dir_arg,
        "--results",
        &results_arg,
        "--kernel",
        "7.7",
    ]);
    assert_eq!(out.status.code(), Some(2), "stdout: {}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("no kernel named `7.7`; did you mean `7.1`?"),
        "{}",
        text(&out.stderr)
    );
    let out = harness(&["record", "--help"]);
    assert!(
        text(&out.stdout).contains("Exit codes: 0 nothing to record, 1 edits proposed or refused, 2 bad input, 3 a kernel did not run"),
        "{}",
        text(&out.stdout)
    );
}

/// A case whose step does not return (a connect past the listener's backlog waits minutes
/// for its SYN to be answered) is stopped at its timeout as that case's error, and the
/// next case runs as if it had not been.
#[test]
fn a_case_past_its_timeout_is_its_error_and_the_next_case_runs() {
    if !can_use_bpf() {
        return;
    }
    let stuck = harness::case::parse(
        std::path::Path::new("stuck.yaml"),
        "name: stuck\ndescription: more connections than the listener's backlog\n\
         sockets:\n  l: { family: inet, listen: true }\n  \"c{i}\": { family: inet, connect: l, repeat: 40 }\n\
         steps:\n  - close: l\n    expect: ok\n",
    )
    .expect("a valid case");
    let next = harness::case::parse(
        std::path::Path::new("next.yaml"),
        "name: next\ndescription: an update after the stuck case\nmaps:\n  store: { value: u32 }\n\
         sockets:\n  s: { family: inet }\nsteps:\n  - update: { map: store, socket: s, value: 1 }\n    expect: ok\n",
    )
    .expect("a valid case");
    let (version, _) = harness::exec::preflight().expect("this machine runs cases");
    let started = std::time::Instant::now();
    let result = harness::exec::run_case_for(&stuck, version, std::time::Duration::from_secs(2));
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let harness::results::CaseOutcome::Error { message } = &result.outcome else {
        panic!("{:?}", result.outcome)
    };
    assert!(
        message.starts_with("the case did not finish within 2s: stopped and left behind"),
        "{message}"
    );
    let after = harness::exec::run_case(&next, version);
    assert_eq!(
        after.outcome,
        harness::results::CaseOutcome::Pass,
        "{after:?}"
    );
}

/// A FIFO (open() would wait for a writer) and a link to /dev/zero (a read never ends) in
/// the place of kernels.toml or a results file are refused at once, each by its path.
#[test]
fn a_fifo_or_a_device_as_an_input_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let zero = dir.path().join("zero");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for (file, kind) in [(&fifo, "a FIFO"), (&zero, "a character device")] {
        let path = file.to_str().unwrap();
        for (args, exit) in [
            (vec!["kernels", "--kernels", path, "list"], 2),
            (
                vec!["run", "--kernels", path, "--kernel", "6.1", "cases"],
                2,
            ),
            (vec!["report", "show", path], 2),
            (vec!["diff", path, path], 2),
        ] {
            let started = std::time::Instant::now();
            let out = harness(&args);
            let stderr = text(&out.stderr);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{args:?}"
            );
            assert_eq!(out.status.code(), Some(exit), "{args:?}: {stderr}");
            assert!(
                stderr.contains(path) && stderr.contains(&format!("not a regular file but {kind}")),
                "{args:?}: {stderr}"
            );
        }
    }
}

/// A kernel image given by path that is a FIFO (reading its header would wait for a
/// writer) is that kernel's error at once, not a run that never ends.
#[test]
fn a_kernel_image_that_is_a_fifo_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("bzImage");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let started = std::time::Instant::now();
    let out = harness(&[
        "run",
        "--kernel",
        fifo.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
        "cases/update-noexist.yaml",
    ]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot read {}: not a regular file but a FIFO",
            fifo.display()
        )),
        "{stderr}"
    );
}

/// A case's `file:` descriptor that names a FIFO is not opened (open() would wait for a
/// writer): its set-up step did not run, saying why, and the run goes on.
#[test]
fn a_file_descriptor_naming_a_fifo_is_not_opened() {
    if !can_use_bpf() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let case = dir.path().join("fifo.yaml");
    std::fs::write(
        &case,
        format!(
            "name: fifo\ndescription: a FIFO as a descriptor\nmaps:\n  store: {{ value: u32 }}\n\
             sockets:\n  f: {{ file: {} }}\nsteps:\n  - lookup: {{ map: store, socket: f }}\n    expect: EBADF\n",
            fifo.display()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let started = std::time::Instant::now();
    let out = harness(&[
        "run",
        "--host",
        "--out",
        out_dir.to_str().unwrap(),
        case.to_str().unwrap(),
    ]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "actual:   not run: {} is a FIFO: a `file:` descriptor is a regular file or /dev/null",
            fifo.display()
        )),
        "{stdout}"
    );
}

/// What a results file can hold that a terminal would act on: escape sequences that retitle
/// it (OSC) and clear it (CSI), a bell, a bidirectional override.
const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[2J\u{202e}";

/// A run whose every text carries [`HOSTILE`]: names, labels, reasons, messages, a console
/// tail, an errno's name, a rejection, keys of values and counts; `actual` says what the
/// diverging step did, so two such runs can differ.
fn hostile_results(actual: harness::results::Actual) -> harness::results::RunResults {
    use harness::results::*;
    let text = |what: &str| format!("{what}{HOSTILE}");
    let step = StepResult {
        id: "1".into(),
        label: text("update m[s] = 1"),
        line: Some(9),
        expected: harness::case::Expected::Rejected(text("verifier")),
        reason: Some(text("because").into()),
        since: None,
        actual,
        verdict: Verdict::Diverged,
    };
    let ran = KernelRun {
        version: Some(harness::version::KernelVersion::new(6, 1, 0)),
        release: Some(text("6.1.0")),
        cmdline: Some(text("console=ttyS0")),
        cases: vec![
            CaseResult {
                name: text("case"),
                file: text("cases/x.yaml"),
                outcome: CaseOutcome::Diverged,
                duration_ms: 1,
                steps: vec![
                    step.clone(),
                    StepResult {
                        id: "2".into(),
                        actual: Actual::Counts {
                            counts: [(text("update"), [(text("E1"), 1)].into())].into(),
                        },
                        ..step.clone()
                    },
                ],
            },
            CaseResult {
                name: text("error"),
                file: text("cases/y.yaml"),
                outcome: CaseOutcome::Error {
                    message: text("panicked"),
                },
                duration_ms: 1,
                steps: Vec::new(),
            },
        ],
        ..KernelRun::without_cases(&text("6.1"), KernelStatus::Ran)
    };
    let failed = KernelRun::without_cases(
        &text("7.0"),
        KernelStatus::Error {
            message: text("timed out"),
            log_tail: Some(format!("{}\n{}", text("line one"), text("line two"))),
        },
    );
    let skipped = KernelRun::without_cases(
        &text("5.2"),
        KernelStatus::Skipped {
            reason: text("absent"),
        },
    );
    RunResults::new(vec![ran, failed, skipped])
}

/// No text of a results file reaches the terminal or a report with its control characters:
/// every view prints them escaped (`\x1b`), results.json keeps them as JSON escapes.
#[test]
fn a_hostile_results_file_prints_escaped_in_every_view_and_report() {
    use harness::results::Actual;
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    let new = dir.path().join("new.json");
    let write = |path: &std::path::Path, actual| {
        let results = hostile_results(actual);
        std::fs::write(
            path,
            harness::results::to_json(&results, Default::default()),
        )
        .unwrap();
    };
    write(
        &old,
        Actual::Rejected {
            errno: format!("EPERM{HOSTILE}"),
            message: format!("R1 {HOSTILE}"),
        },
    );
    write(
        &new,
        Actual::Value {
            value: serde_json::json!({ format!("field{HOSTILE}"): 1 }),
        },
    );
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let merged = dir.path().join("merged");
    let mut outputs = Vec::new();
    for format in [
        "matrix", "changes", "edges", "atlas", "markdown", "html", "junit",
    ] {
        outputs.push(harness(&["report", "show", new, "--format", format]));
    }
    outputs.push(harness(&["report", "show", new, "--only-changed"]));
    outputs.push(harness(&["diff", old, new]));
    outputs.push(harness(&[
        "diff",
        old,
        "--old-kernel",
        "nope",
        "--new-kernel",
        "x",
    ]));
    outputs.push(harness(&["report", "evidence", new, "cases"]));
    outputs.push(harness(&[
        "report",
        "merge",
        old,
        "--out",
        merged.to_str().unwrap(),
    ]));
    let mut shown = String::new();
    for out in &outputs {
        shown.push_str(&text(&out.stdout));
        shown.push_str(&text(&out.stderr));
    }
    for file in ["report.md", "junit.xml", "report.html"] {
        shown.push_str(&std::fs::read_to_string(merged.join(file)).unwrap());
    }
    for control in ['\x1b', '\x07', '\u{202e}'] {
        assert!(!shown.contains(control), "{control:?} in:\n{shown}");
    }
    // A console tail loses its escape sequences (colours, mostly) and shows what is left.
    for seen in [
        "6.1\\x1b]0;pwned\\x07",
        "line two\\u{202e}",
        "panicked\\x1b",
        "R1 \\x1b",
    ] {
        assert!(shown.contains(seen), "{seen} not in:\n{shown}");
    }
    // results.json keeps every text as it was, escaped the JSON way.
    let json = std::fs::read_to_string(merged.join("results.json")).unwrap();
    assert!(json.contains("\\u001b]0;pwned\\u0007") && !json.contains('\x1b'));
}

/// kernels.toml's note and paths print escaped in `kernels list`, which shows the note.
#[test]
fn kernels_list_shows_the_note_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kernels.toml");
    std::fs::write(
        &file,
        "[[kernel]]\nname = \"mine\"\nlocal = { vmlinuz = \"/nonexistent/\\u001b[2Jbz\", optional = true }\nnote = \"built by hand \\u001b]0;pwned\\u0007\"\n",
    )
    .unwrap();
    let out = harness(&["kernels", "--kernels", file.to_str().unwrap(), "list"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains('\x1b'), "{stdout}");
    assert!(
        stdout.contains("NOTE") && stdout.contains("built by hand \\x1b]0;pwned\\x07"),
        "{stdout}"
    );
}

/// Two runs that differ only in why a step could not run (a reason that quotes the
/// verifier's time) did the same: `diff` exits 0 and says the difference is drift.
#[test]
fn diff_of_runs_that_differ_only_in_a_not_run_reason_exits_0() {
    use harness::results::*;
    let dir = tempfile::tempdir().unwrap();
    let run = |reason: &str| {
        let step = StepResult {
            id: "1".into(),
            label: "attach ops".into(),
            line: Some(9),
            expected: harness::case::Expected::Ok,
            reason: None,
            since: None,
            actual: Actual::NotRun {
                reason: reason.into(),
            },
            verdict: Verdict::Diverged,
        };
        let kernel = KernelRun {
            version: Some(harness::version::KernelVersion::new(6, 1, 0)),
            cases: vec![CaseResult {
                name: "attach".into(),
                file: "cases/attach.yaml".into(),
                outcome: CaseOutcome::Diverged,
                duration_ms: 1,
                steps: vec![step],
            }],
            ..KernelRun::without_cases("6.1", KernelStatus::Ran)
        };
        harness::results::to_json(&RunResults::new(vec![kernel]), Default::default())
    };
    let (old, new) = (dir.path().join("old.json"), dir.path().join("new.json"));
    std::fs::write(&old, run("load failed: verification time 3012 usec")).unwrap();
    std::fs::write(&new, run("load failed: verification time 2987 usec")).unwrap();
    let out = harness(&["diff", old.to_str().unwrap(), new.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(
            "drift (not a change): 1 step(s) differ in what the case leaves open: not-run reason"
        ),
        "{}",
        text(&out.stdout)
    );
}

/// From a directory inside the project the defaults are the project's; from outside, the
/// error names the flag that points elsewhere.
#[test]
fn the_project_is_found_from_below_and_a_missing_list_names_its_flag() {
    let inside = command(&["check"])
        .current_dir(repo_root().join("cases/selftest"))
        .output()
        .expect("runs");
    assert!(inside.status.success(), "stderr: {}", text(&inside.stderr));
    assert!(text(&inside.stdout).ends_with("cases are valid\n"));

    let outside = tempfile::tempdir().expect("temp dir");
    let out = command(&["kernels", "list"])
        .current_dir(outside.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("point --kernels at another file"),
        "stderr: {}",
        text(&out.stderr)
    );
    let out = command(&["check"])
        .current_dir(outside.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "cases: no such file or directory (the case files and directories are the arguments)"
        ),
        "stderr: {}",
        text(&out.stderr)
    );
}

/// `--color always` colours a log that is no terminal, `never` nothing; `--quiet` leaves
/// stderr to errors and warnings.
#[test]
fn colour_and_quiet_are_asked_for() {
    if !can_use_bpf() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--host", "--out", out_dir, "--filter", "basic"];
        args.extend_from_slice(extra);
        harness(&args)
    };
    let always = run(&["--color", "always"]);
    assert!(
        text(&always.stdout).contains("\x1b["),
        "{}",
        text(&always.stdout)
    );
    let never = run(&["--color", "never"]);
    assert!(!text(&never.stdout).contains('\x1b'));
    // NO_COLOR, which every run here sets, yields to an explicit `always`.
    let quiet = run(&["--quiet"]);
    assert_eq!(quiet.status.code(), never.status.code());
    assert_eq!(text(&quiet.stderr), "", "quiet stderr");
    assert!(
        text(&never.stdout).lines().count() > text(&quiet.stdout).lines().count(),
        "no line per case: {}",
        text(&quiet.stdout)
    );
}

/// Completion scripts and the manual page come from the same command definition.
#[test]
fn completions_and_the_manual_page() {
    let bash = harness(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = text(&bash.stdout);
    for word in ["_harness()", "bisect-run", "--kernels", "--color"] {
        assert!(script.contains(word), "{word} missing from the bash script");
    }
    let fish = harness(&["completions", "fish"]);
    assert!(text(&fish.stdout).contains("complete -c harness"));
    let man = harness(&["man"]);
    assert!(man.status.success());
    let page = text(&man.stdout);
    assert!(page.contains(".TH harness 1"), "{page}");
    assert!(page.contains("SK_STORAGE"));
}

/// `run --list` lists the selected cases without running them; `--case` takes exact names
/// and globs, and one that matches nothing is bad input naming the nearest case.
#[test]
fn run_lists_cases_selected_by_name_or_glob() {
    let out = harness(&[
        "run",
        "--list",
        "--case",
        "clone-seen-by-bpf",
        "--case",
        "selftest-*",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.contains(
            &"clone-seen-by-bpf cases/bpf/clone-seen-by-bpf.yaml kernel>=5.4 program=sock_ops"
        ),
        "{stdout}"
    );
    assert!(lines.len() > 2, "the selftest cases too: {stdout}");
    assert!(
        lines
            .iter()
            .skip(1)
            .all(|line| line.starts_with("selftest-")),
        "{stdout}"
    );

    let json = harness(&[
        "run",
        "--list",
        "--format",
        "json",
        "--case",
        "clone-seen-by-bpf",
    ]);
    let listed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(listed[0]["requires"]["kernel"], "5.4");
    assert_eq!(listed[0]["programs"][0], "sock_ops");

    let typo = harness(&["run", "--list", "--case", "clone-seen-by-bfp"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains(
            "--case \"clone-seen-by-bfp\" matches no case; did you mean `clone-seen-by-bpf`?"
        ),
        "stderr: {}",
        text(&typo.stderr)
    );
}

/// `new` writes a case that validates as written, and never over another.
#[test]
fn new_writes_a_case_that_validates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = dir.path().to_str().unwrap();
    let out = harness(&["new", "my-first-case", "--dir", cases]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let path = dir.path().join("my-first-case.yaml");
    assert_eq!(text(&out.stdout).trim(), path.display().to_string());
    let check = harness(&["check", cases]);
    assert!(check.status.success(), "stderr: {}", text(&check.stderr));
    let written = std::fs::read_to_string(&path).expect("the case");
    assert!(
        written.contains("since: \"5.10\""),
        "a versioned variant block: {written}"
    );

    let again = harness(&["new", "my-first-case", "--dir", cases]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&path).expect("the case"), written);
    let bad = harness(&["new", "Bad Name", "--dir", cases]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("a case name is lowercase letters"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing else written"
    );
}

/// `harness schema` is a JSON Schema every shipped case satisfies, and which refuses what
/// the loader refuses by key: an unknown field, two operations in a step, a step's unknown
/// key.
#[test]
fn every_case_satisfies_the_schema_which_refuses_unknown_keys() {
    let out = harness(&["schema"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let read = |text: &str| -> serde_json::Value {
        serde_yaml::from_str::<serde_json::Value>(text).expect("YAML")
    };
    let mut checked = 0;
    for entry in walk(&repo_root().join("cases")) {
        let text = std::fs::read_to_string(&entry).expect("a case");
        let errors: Vec<String> = validator
            .iter_errors(&read(&text))
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", entry.display());
        checked += 1;
    }
    assert!(checked > 70, "{checked} cases");
    let case = |steps: &str| {
        read(&format!(
            "name: x\ndescription: d\nmaps:\n  m: {{ value: u32 }}\nsockets:\n  s: {{ family: inet }}\nsteps:\n{steps}"
        ))
    };
    assert!(validator.is_valid(&case(
        "  - update: { map: m, socket: s, value: 1 }\n    expect: ok\n"
    )));
    for bad in [
        "  - update: { map: m, socket: s, valeu: 1 }\n    expect: ok\n",
        "  - update: { map: m, socket: s, value: 1 }\n    lookup: { map: m, socket: s }\n    expect: ok\n",
        "  - update: { map: m, socket: s, value: 1 }\n    expect: ok\n    colour: red\n",
    ] {
        assert!(!validator.is_valid(&case(bad)), "accepted: {bad}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files
}
