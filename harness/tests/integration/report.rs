//! Every report format over one hand-built run (`report_fixture`).

use crate::report_fixture;
use crate::requirements;

use harness::{
    case::Expected,
    kernels::KernelsFile,
    report::{self, changes, human::Human, junit, markdown, matrix},
    results::{
        self, CaseOutcome, CaseResult, JsonLayout, KernelRun, KernelStatus, MergeError, ReadError,
        RunResults, SCHEMA_VERSION,
    },
    version::KernelVersion,
};
use serde_json::json;

use report_fixture::*;
use requirements::Requirement;

fn render(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    write(&mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("reports are UTF-8")
}

#[test]
fn matrix_snapshot() {
    let text = render(|out| matrix::write(out, &fixture(), Human::plain(), matrix::Rows::All));
    insta::assert_snapshot!(text);
}

#[test]
fn matrix_colour_only_adds_escape_codes() {
    let plain = render(|out| matrix::write(out, &fixture(), Human::plain(), matrix::Rows::All));
    let coloured = render(|out| {
        matrix::write(
            out,
            &fixture(),
            Human {
                color: true,
                ..Human::plain()
            },
            matrix::Rows::All,
        )
    });
    assert!(coloured.contains("\x1b["), "no colour in {coloured:?}");
    assert_eq!(strip_ansi_escapes::strip_str(&coloured), plain);
}

#[test]
fn matrix_of_12_kernels_by_60_cases_fits_any_width_with_the_same_cells() {
    let template = linux_5_10().cases[1].clone();
    let cases: Vec<CaseResult> = (0..60)
        .map(|i| CaseResult {
            name: format!("lookup-delete-without-storage-on-a-closed-socket-{i}"),
            ..template.clone()
        })
        .collect();
    let kernels = (0..12)
        .map(|i| KernelRun {
            kernel: format!("trixie-backports-7.{i}"),
            cases: cases.clone(),
            ..linux_5_10()
        })
        .collect();
    let run = RunResults::new(kernels);
    for (width, blocks) in [(60, 3), (80, 2), (100, 2), (120, 2), (160, 1)] {
        let text = render(|out| {
            matrix::write(
                out,
                &run,
                Human {
                    color: false,
                    width,
                },
                matrix::Rows::All,
            )
        });
        for line in text.lines() {
            assert!(
                line.chars().count() <= width,
                "wider than {width}: {line:?}"
            );
        }
        let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("case ")).collect();
        assert_eq!(headers.len(), blocks, "at {width}:\n{text}");
        // Every kernel once, every case once per block: the same cells at any width.
        assert_eq!(text.matches("trixie-…").count(), 12, "at {width}");
        // The cells, the legend's `pass` and each kernel's tally.
        assert_eq!(text.matches("pass").count(), 12 * 60 + 1 + 12, "at {width}");
    }
}

#[test]
fn changes_snapshot() {
    let text = render(|out| changes::write(out, &fixture(), Human::plain()));
    insta::assert_snapshot!(text);
}

#[test]
fn behaviour_changes_are_found_even_when_expected() {
    let found = changes::across_kernels(&fixture()).changes;
    let summary: Vec<(&str, &str, bool)> = found
        .iter()
        .map(|c| (c.case.as_str(), c.step.as_str(), c.expected()))
        .collect();
    // storage-charged-to-optmem step 2 did not run on 6.12: no change is claimed.
    assert_eq!(
        summary,
        [
            ("update-noexist", "2", false),
            ("f-lock-without-spin-lock", "2", false),
            ("create-value-size-limits", "1", true),
        ]
    );
    let divergences = changes::divergences(&fixture());
    let where_: Vec<(&str, &str, &str)> = divergences
        .iter()
        .map(|d| (d.kernel.as_str(), d.case.as_str(), d.step.as_str()))
        .collect();
    // A step that could not run did not do what was expected either.
    assert_eq!(
        where_,
        [
            ("5.10", "f-lock-without-spin-lock", "2"),
            ("6.12", "update-noexist", "2"),
            ("6.12", "storage-charged-to-optmem", "2"),
        ]
    );
    assert_eq!(
        divergences[0].reason.as_deref(),
        Some("F_LOCK needs a bpf_spin_lock in the value (map_sk_storage.rst)")
    );
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!(markdown::render(&fixture()));
}

/// A run as bad as a report can get: every step of 30 cases diverges on each of 12
/// kernels, each with a long value, and each kernel does something else.
#[test]
fn markdown_of_a_flood_of_divergences_stays_under_githubs_limit_and_leads_with_them() {
    let kernels: Vec<KernelRun> = (0..12)
        .map(|k| KernelRun {
            kernel: format!("6.{k}"),
            version: Some(KernelVersion::new(6, k, 0)),
            cases: (0..30)
                .map(|c| {
                    let steps = (1..=10)
                        .map(|s| {
                            step(
                                &s.to_string(),
                                "lookup store[s]",
                                Expected::Value(json!(0)),
                                // A struct of 200 fields: lists are summarised,
                                // structs are printed whole and then cut.
                                value(serde_json::Value::Object(
                                    (0..200).map(|f| (format!("field{f}"), json!(k))).collect(),
                                )),
                            )
                        })
                        .collect();
                    case(&format!("case-{c}"), CaseOutcome::Diverged, steps)
                })
                .collect(),
            ..linux_5_10()
        })
        .collect();
    let md = markdown::render(&results(kernels));
    assert!(md.len() <= markdown::MAX_BYTES, "{} bytes", md.len());
    let at = |heading: &str| md.find(heading).unwrap_or_else(|| panic!("no {heading}"));
    assert!(at("### Divergences") < at("### Behaviour changes the cases do not expect"));
    assert!(at("### Behaviour changes the cases do not expect") < at("### Kernels"));
    assert!(md.contains("more divergences, left out"), "the list is cut");
    assert!(md.contains("more changes, left out"), "the list is cut");
    assert!(
        md.contains("more characters in results.json)"),
        "values are cut"
    );
    assert!(md.contains("<details><summary>Matrix: 30 case(s) × 12 kernel(s)</summary>"));

    // A matrix too large to show twice is folded only while it fits.
    let wide: Vec<KernelRun> = (0..12)
        .map(|k| KernelRun {
            kernel: format!("6.{k}"),
            version: Some(KernelVersion::new(6, k, 0)),
            cases: (0..3000)
                .map(|c| case(&format!("case-{c}"), CaseOutcome::Diverged, Vec::new()))
                .collect(),
            ..linux_5_10()
        })
        .collect();
    let md = markdown::render(&results(wide));
    assert!(md.len() <= markdown::MAX_BYTES, "{} bytes", md.len());
    assert!(md.contains("### Cases that diverged or failed\n\n| case |"));
    assert!(md.contains("The whole matrix does not fit in this summary: see report.html."));
}

#[test]
fn markdown_folds_the_matrix_and_shows_the_troubled_cases() {
    let md = markdown::render(&fixture());
    let troubled = md
        .split("### Cases that diverged or failed")
        .nth(1)
        .expect("a table of the cases that diverged or failed")
        .split("<details>")
        .next()
        .expect("before the folded matrix");
    // The cases that diverged or failed where they ran; 7.3's failure is its own section.
    let cases: Vec<&str> = troubled
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .collect();
    assert_eq!(
        cases,
        [
            "update-noexist",
            "f-lock-without-spin-lock",
            "storage-charged-to-optmem"
        ]
    );
    assert!(md.contains("<details><summary>Matrix: 7 case(s) × 3 kernel(s)</summary>"));

    let all_passed = results(vec![linux_5_10()]);
    let mut all_passed = all_passed;
    all_passed.kernels[0]
        .cases
        .retain(|c| c.outcome == CaseOutcome::Pass);
    let md = markdown::render(&all_passed);
    assert!(!md.contains("### Cases that diverged or failed"), "{md}");
    assert!(md.contains("<details><summary>Matrix: 4 case(s) × 1 kernel(s)</summary>"));
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!(results::to_json(&fixture(), JsonLayout::Pretty));
}

#[test]
fn junit_snapshot_parses_back_with_the_right_counts() {
    let xml = junit::to_xml(&fixture()).expect("serialises");
    insta::assert_snapshot!(xml);

    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("valid JUnit XML");
    let counts: Vec<(String, usize, usize, usize, usize)> = parsed
        .test_suites
        .iter()
        .map(|s| (s.name.to_string(), s.tests, s.failures, s.errors, s.skipped))
        .collect();
    // 7.3 failed to boot: every case of the matrix is an error there, not one boot test.
    assert_eq!(
        counts,
        [
            ("5.10".to_string(), 6, 1, 0, 1),
            ("6.12".to_string(), 7, 1, 1, 0),
            ("7.3".to_string(), 7, 0, 7, 0),
        ]
    );
    let classes: Vec<&str> = parsed
        .test_suites
        .iter()
        .map(|s| {
            s.test_cases[0]
                .classname
                .as_ref()
                .expect("a class")
                .as_str()
        })
        .collect();
    assert_eq!(classes, ["kernel_5_10", "kernel_6_12", "kernel_7_3"]);
    let not_run = &parsed.test_suites[2].test_cases[1];
    assert_eq!(not_run.name.as_str(), "update-noexist");
    let quick_junit::TestCaseStatus::NonSuccess { kind, message, .. } = &not_run.status else {
        panic!(
            "a case of the failed kernel must be a non-success: {:?}",
            not_run.status
        );
    };
    assert_eq!(*kind, quick_junit::NonSuccessKind::Error);
    assert_eq!(
        message.as_ref().map(|m| m.as_str()),
        Some(
            "kernel 7.3 failed before this case ran: kernel panic while booting (console line 412)"
        )
    );
    let log = parsed.test_suites[2]
        .system_err
        .as_ref()
        .expect("the console tail is the suite's system-err");
    assert!(
        log.as_str().contains("Kernel panic - not syncing"),
        "{log:?}"
    );
    assert!(
        !log.as_str().contains('\x1b'),
        "escape codes are not valid XML: {log:?}"
    );
}

/// The testcases' `file` and `line` attributes, which CI reporters read but junit-10.xsd
/// does not list, taken out (their values are escaped: no quote ends one early).
fn without_file_and_line(xml: &str) -> String {
    let mut out = xml.to_string();
    for attribute in [" file=\"", " line=\""] {
        while let Some(start) = out.find(attribute) {
            let end = start + attribute.len() + out[start + attribute.len()..].find('"').unwrap();
            out.replace_range(start..=end, "");
        }
    }
    out
}

/// junit.xml validates against the common JUnit schema (tests/data/junit-10.xsd), with
/// xmllint, but for the testcases' `file` and `line`; the fixture holds every kind of
/// testcase (pass, failure, skip, case error, the cases of a failed kernel) and a console
/// tail.
#[test]
fn junit_validates_against_the_common_schema() {
    let Some(xmllint) = which::which("xmllint").ok() else {
        requirements::missing(
            Requirement::Xmllint,
            "xmllint is not installed (scripts/setup-browser.sh installs libxml2-utils)",
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit-10.xsd");
    let skipped_kernel = KernelRun::without_cases(
        "5.2",
        KernelStatus::Skipped {
            reason: "no image here".into(),
        },
    );
    let mut kernels = fixture().kernels;
    kernels.push(skipped_kernel);
    for (name, run) in [
        ("fixture", results(kernels)),
        ("alone", results(vec![linux_7_3()])),
    ] {
        let file = dir.path().join(format!("{name}.xml"));
        let xml = junit::to_xml(&run).expect("renders");
        std::fs::write(&file, without_file_and_line(&xml)).expect("writes");
        let out = std::process::Command::new(&xmllint)
            .arg("--noout")
            .arg("--schema")
            .arg(&schema)
            .arg(&file)
            .output()
            .expect("xmllint runs");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn results_json_is_compact_unless_asked_and_reads_back_either_way() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = fixture();
    let compact = report::write_all(&run, &dir.path().join("c"), JsonLayout::Compact)
        .expect("writes compact");
    let pretty =
        report::write_all(&run, &dir.path().join("p"), JsonLayout::Pretty).expect("writes pretty");
    let compact_text = std::fs::read_to_string(&compact.results_json).expect("compact file");
    let pretty_text = std::fs::read_to_string(&pretty.results_json).expect("pretty file");
    assert_eq!(compact_text.lines().count(), 1, "{compact_text}");
    assert!(pretty_text.contains("\n  \"schema\": "), "{pretty_text}");
    assert!(compact_text.len() * 2 < pretty_text.len());
    for file in [&compact.results_json, &pretty.results_json] {
        let back = results::read_json(file).expect("reads back");
        assert_eq!(
            results::to_json(&back, JsonLayout::Compact),
            compact_text,
            "{}",
            file.display()
        );
    }
}

#[test]
fn write_all_then_merge_of_two_ci_jobs_gives_back_the_whole_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let whole = fixture();
    let job_a = results(whole.kernels[..2].to_vec());
    let job_b = results(whole.kernels[2..].to_vec());
    let files_a = report::write_all(&job_a, &dir.path().join("a"), JsonLayout::Compact)
        .expect("writes job a");
    let files_b = report::write_all(&job_b, &dir.path().join("b"), JsonLayout::Compact)
        .expect("writes job b");
    for file in [
        &files_a.junit_xml,
        &files_a.report_md,
        &files_b.results_json,
    ] {
        assert!(file.is_file(), "{} was not written", file.display());
    }

    let inputs = [&files_a.results_json, &files_b.results_json]
        .map(|path| results::read_json(path).expect("reads back"))
        .to_vec();
    let merged = results::merge(inputs).expect("no kernel in both");
    assert_eq!(
        results::to_json(&merged, JsonLayout::Compact),
        results::to_json(&whole, JsonLayout::Compact)
    );

    let out = dir.path().join("merged");
    let files =
        report::write_all(&merged, &out, JsonLayout::Compact).expect("writes the merged report");
    let reread = results::read_json(&files.results_json).expect("reads the merged file");
    assert_eq!(
        results::to_json(&reread, JsonLayout::Compact),
        results::to_json(&whole, JsonLayout::Compact)
    );
    let md = std::fs::read_to_string(&files.report_md).expect("report.md");
    assert_eq!(md, markdown::render(&whole));
    // Atomic writes leave no temporary file behind.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["junit.xml", "report.html", "report.md", "results.json"]
    );
}

#[test]
fn a_merge_spans_its_inputs_and_names_the_kernels_of_another_build() {
    let job_a = RunResults {
        ended: at("2026-05-04T12:01:00Z"),
        ..results(vec![linux_5_10()])
    };
    let job_b = RunResults {
        started: at("2026-05-04T11:59:00Z"),
        harness: build("fedcba9876543210fedcba9876543210fedcba98"),
        accel: Some(harness::vm::Accel::Tcg),
        ..results(vec![linux_6_12(), linux_7_3()])
    };
    let merged = results::merge(vec![job_a.clone(), job_b.clone()]).expect("merges");
    assert_eq!(merged.started, job_b.started);
    assert_eq!(merged.ended, job_b.ended);
    assert_eq!(merged.harness, job_a.harness);
    assert_eq!(merged.accel, job_a.accel);
    assert_eq!(merged.kernels[0].harness, None);
    assert_eq!(merged.kernels[1].harness, Some(job_b.harness.clone()));
    assert_eq!(merged.kernels[2].accel, Some(harness::vm::Accel::Tcg));
    assert_eq!(
        results::build_differences(&merged).as_deref(),
        Some(
            "the kernels were run by different harness builds: 5.10 ran harness 0.1.0 \
             (0123456789ab); 6.12, 7.3 ran harness 0.1.0 (fedcba987654)"
        )
    );
    assert!(markdown::render(&merged).contains("different harness builds"));
    // The same build throughout has nothing to say.
    let same = results::merge(vec![job_a, results(vec![linux_6_12()])]).expect("merges");
    assert_eq!(results::build_differences(&same), None);
}

#[test]
fn a_merge_by_kernel_list_turns_unreadable_results_into_error_rows_and_absent_optional_kernels_into_skips()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |kernel: &str, text: &str| {
        std::fs::create_dir_all(dir.path().join(kernel)).expect("creates the kernel's dir");
        std::fs::write(dir.path().join(kernel).join("results.json"), text).expect("writes");
    };
    write(
        "5.10",
        &results::to_json(&results(vec![linux_5_10()]), JsonLayout::Compact),
    );
    write("6.1", r#"{"schema": 2, "kernels": []}"#);
    write(
        "6.12",
        &results::to_json(&results(vec![linux_5_10()]), JsonLayout::Compact),
    );
    write(
        "7.3",
        &results::to_json(&results(vec![linux_7_3()]), JsonLayout::Compact),
    );
    // 5.2 and 5.4 are optional images absent here: 5.2 had no job, 5.4's ran elsewhere.
    write(
        "5.4",
        &results::to_json(
            &results(vec![KernelRun {
                kernel: "5.4".into(),
                ..linux_5_10()
            }]),
            JsonLayout::Compact,
        ),
    );
    let list_dir = tempfile::tempdir().expect("temp dir");
    let list = list_dir.path().join("kernels.toml");
    let absent = |name: &str| {
        format!(
            "[[kernel]]\nname = \"{name}\"\nlocal = {{ vmlinuz = \"none/bzImage\", optional = true }}\n"
        )
    };
    let mut text = absent("5.2") + &absent("5.4");
    for name in ["5.10", "6.1", "6.2", "6.12", "7.3"] {
        text.push_str(&format!(
            "[[kernel]]\nname = \"{name}\"\nhost = true\nnote = \"{name}'s note\"\n"
        ));
    }
    std::fs::write(&list, text).expect("writes kernels.toml");
    let file = KernelsFile::load(&list).expect("a valid list");
    let merged = results::merge_dir(&file, dir.path()).expect("merges");
    let rows: Vec<(&str, String)> = merged
        .kernels
        .iter()
        .map(|k| {
            let status = match &k.status {
                KernelStatus::Error { message, .. } => message.clone(),
                KernelStatus::Skipped { reason } => format!("skipped: {reason}"),
                other => format!("{other:?}"),
            };
            (k.kernel.as_str(), status)
        })
        .collect();
    let path = |kernel: &str| dir.path().join(kernel).join("results.json");
    assert_eq!(
        rows,
        [
            (
                "5.2",
                format!(
                    "skipped: {}",
                    file.kernels[0].absent_reason().expect("absent")
                )
            ),
            ("5.4", "Ran".to_string()),
            ("5.10", "Ran".to_string()),
            (
                "6.1",
                format!(
                    "no results for this kernel: {} has results schema 2, but this harness \
                     reads schema {SCHEMA_VERSION}; produce it again with this harness version",
                    path("6.1").display()
                )
            ),
            (
                "6.2",
                format!(
                    "no results for this kernel: cannot read results file {}: No such file or \
                     directory (os error 2)",
                    path("6.2").display()
                )
            ),
            (
                "6.12",
                format!(
                    "no results for this kernel: {} holds kernels [\"5.10\"], not only \"6.12\"",
                    path("6.12").display()
                )
            ),
            (
                "7.3",
                "kernel panic while booting (console line 412)".to_string()
            ),
        ]
    );
    // Every kernel of the list carries its note, whether its results were found or not.
    let notes: Vec<Option<&str>> = merged.kernels.iter().map(|k| k.note.as_deref()).collect();
    assert_eq!(
        notes,
        [
            None,
            None,
            Some("5.10's note"),
            Some("6.1's note"),
            Some("6.2's note"),
            Some("6.12's note"),
            Some("7.3's note")
        ]
    );
}

#[test]
fn merging_a_kernel_twice_names_it_and_both_inputs() {
    let err =
        results::merge(vec![fixture(), results(vec![linux_6_12()])]).expect_err("6.12 is in both");
    assert!(
        matches!(
            &err,
            MergeError::DuplicateKernel { kernel, first: 0, second: 1 } if kernel == "6.12"
        ),
        "{err:?}"
    );
    assert_eq!(err.inputs(), [0, 1]);
    assert!(err.to_string().contains("\"6.12\""), "{err}");
}

#[test]
fn another_schema_is_refused_when_reading_and_merging() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("results.json");
    let next = SCHEMA_VERSION + 1;
    std::fs::write(
        &path,
        format!(r#"{{"schema": {next}, "kernels": [{{"kernel": "x", "new": 1}}]}}"#),
    )
    .expect("writes");
    let err = results::read_json(&path).expect_err("the next schema is not ours");
    assert!(
        matches!(err, ReadError::Schema { found, .. } if found == u64::from(next)),
        "{err:?}"
    );

    let mut other = fixture();
    other.schema = next;
    let err = results::merge(vec![fixture(), other]).expect_err("schemas differ");
    assert!(
        matches!(err, MergeError::Schema { input: 1, found } if found == next),
        "{err:?}"
    );
}

#[test]
fn a_results_file_of_the_wrong_shape_names_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("results.json");
    let mut text = serde_json::to_value(results(Vec::new())).expect("serialises");
    text["kernels"] = serde_json::json!([{"kernel": "x"}]);
    std::fs::write(&path, text.to_string()).expect("writes");
    let err = results::read_json(&path).expect_err("status is missing");
    let ReadError::Shape { source, .. } = &err else {
        panic!("expected a shape error, got {err:?}");
    };
    assert_eq!(source.path().to_string(), "kernels[0]");
}

/// What JSON readers would take differently, or every view would read one way of several,
/// is refused with the file and the field: a key given twice in an object, a kernel given
/// twice, a case given twice in one kernel, and anything after the results.
#[test]
fn a_results_file_with_a_key_kernel_or_case_given_twice_is_refused_by_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("results.json");
    let whole = results::to_json(&fixture(), JsonLayout::Compact);
    let kernels = serde_json::to_value(fixture()).expect("serialises")["kernels"].clone();
    let mut twice_a_kernel = serde_json::to_value(fixture()).expect("serialises");
    twice_a_kernel["kernels"][1] = kernels[0].clone();
    let mut twice_a_case = serde_json::to_value(fixture()).expect("serialises");
    twice_a_case["kernels"][0]["cases"][1] = kernels[0]["cases"][0].clone();
    let cases = [
        (
            whole.replacen("\"schema\":3,", "\"schema\":3,\"schema\":3,", 1),
            "results.json is not valid JSON (is it a results.json written by `harness run`?): the key \"schema\" is given twice at line 1 column 20",
        ),
        (
            whole.replacen("\"duration_ms\":", "\"duration_ms\":1,\"duration_ms\":", 1),
            "results.json is not valid JSON in kernels[0] (is it a results.json written by `harness run`?): the key \"duration_ms\" is given twice",
        ),
        (
            twice_a_kernel.to_string(),
            "results.json: kernels[1].kernel: kernel \"5.10\" is kernels[0] already",
        ),
        (
            twice_a_case.to_string(),
            "results.json: kernels[0].cases[1].name: case \"create-defaults\" is kernels[0].cases[0] already",
        ),
        (
            format!("{whole} {{}}"),
            "results.json is not valid JSON (is it a results.json written by `harness run`?): trailing characters",
        ),
    ];
    for (text, message) in cases {
        std::fs::write(&path, text).expect("writes");
        let error = results::read_json(&path).expect_err("refused");
        let said = harness::error_chain(&error).replace(&format!("{}/", dir.path().display()), "");
        assert!(said.starts_with(message), "{said}");
    }
}

/// A results file is read up to 256 MiB of JSON: a gzip of zeros that would inflate past it
/// is refused after that much, not read to its end.
#[test]
fn a_results_file_that_inflates_past_the_bound_is_refused() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("results.json.gz");
    let mut gzip = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).expect("creates"),
        flate2::Compression::fast(),
    );
    let block = vec![b' '; 1 << 20];
    for _ in 0..=(results::MAX_RESULTS_BYTES >> 20) {
        gzip.write_all(&block).expect("writes");
    }
    gzip.finish().expect("finishes");
    let error = results::read_json(&path).expect_err("too large");
    assert!(
        harness::error_chain(&error).ends_with("more than 268435456 bytes of results JSON"),
        "{error:?}"
    );
}

/// A console tail of 30 MB in a results file (a guest that printed without end, or a
/// hostile file) costs every report only its last lines, each cut: results.json alone keeps
/// it whole.
#[test]
fn reports_embed_only_the_end_of_a_huge_console_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut failed = linux_7_3();
    let line = "x".repeat(99);
    let mut tail = format!("{line}\n").repeat(200_000);
    tail.push_str(&"y".repeat(10_000_000));
    let KernelStatus::Error { log_tail, .. } = &mut failed.status else {
        panic!("7.3 failed in the fixture")
    };
    *log_tail = Some(tail);
    let files =
        report::write_all(&results(vec![failed]), dir.path(), JsonLayout::Compact).expect("writes");
    for file in [&files.report_html, &files.report_md, &files.junit_xml] {
        let size = std::fs::metadata(file).expect("written").len();
        assert!(size < 200_000, "{}: {size} bytes", file.display());
    }
    let page = std::fs::read_to_string(&files.report_html).expect("report.html");
    assert!(page.contains("… 199901 earlier line(s) in results.json"));
    assert!(page.contains("… (9999500 more characters in results.json)"));
    assert!(
        std::fs::metadata(&files.results_json)
            .expect("written")
            .len()
            > 30_000_000
    );
}

/// kernels.toml's note on a kernel shows beside it in report.md's and report.html's kernel
/// lines, escaped as each format escapes text.
#[test]
fn a_kernels_note_shows_in_the_kernel_lines() {
    let mut noted = linux_5_10();
    noted.note = Some("built with <debug> *options*".into());
    let results = results(vec![noted, linux_6_12()]);
    let md = markdown::render(&results);
    assert!(
        md.contains("- `5.10 (5.10.244)` (built with \\<debug\\> \\*options\\*): 4 pass,"),
        "{md}"
    );
    let page = report::html::render(&results);
    assert!(
        page.contains(
            "<li><b>5.10</b> (5.10.244) <i>built with &#60;debug&#62; *options*</i>: 4 pass,"
        ),
        "{page}"
    );
}

#[test]
fn reports_are_replaced_as_a_set_and_readable_by_everyone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let first = fixture();
    let files =
        report::write_all(&first, dir.path(), JsonLayout::Compact).expect("writes the first set");
    for file in [
        &files.results_json,
        &files.junit_xml,
        &files.report_md,
        &files.report_html,
    ] {
        let mode = std::fs::metadata(file)
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{}", file.display());
    }

    // The second run cannot put report.md in place: nothing of its set may land.
    std::fs::remove_file(&files.report_md).expect("remove report.md");
    std::fs::create_dir(&files.report_md).expect("a directory in its place");
    let second = results(first.kernels[..1].to_vec());
    let error = report::write_all(&second, dir.path(), JsonLayout::Compact)
        .expect_err("report.md cannot be written");
    assert!(error.to_string().contains("report.md"), "{error}");
    let kept = results::read_json(&files.results_json).expect("the first results.json");
    assert_eq!(
        results::to_json(&kept, JsonLayout::Compact),
        results::to_json(&first, JsonLayout::Compact)
    );
    assert_eq!(
        std::fs::read_to_string(&files.junit_xml).expect("junit.xml"),
        harness::report::junit::to_xml(&first).expect("renders")
    );
    let leftovers = std::fs::read_dir(dir.path()).expect("out dir").count();
    assert_eq!(leftovers, 4, "temporary files left behind");
}

/// docs/src/behaviour.md is what the committed default-matrix run and the cases generate: a
/// change to either (or to the atlas) that leaves the page stale fails here.
/// `BLESS=1 cargo test --test integration behaviour_page` writes it again.
#[test]
fn behaviour_page_is_what_the_committed_run_and_the_cases_generate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = "docs/behaviour/default-matrix.json.gz";
    let results = results::read_json(&root.join(source)).expect("the committed run reads");
    let cases = harness::case::load(&[root.join("cases")]).expect("the cases load");
    let page = report::atlas::page(&results, &cases, source);
    let path = root.join("docs/src/behaviour.md");
    if std::env::var("BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &page).expect("writes the page");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == page,
        "docs/src/behaviour.md is stale: run `BLESS=1 cargo test --test integration behaviour_page` and review the diff"
    );
    // The book's "What the kernels do" quotes the evidence of the same run.
    let intro = std::fs::read_to_string(root.join("docs/src/what-the-kernels-do.md"))
        .expect("docs/src/what-the-kernels-do.md");
    let boundaries =
        report::evidence::boundary_summary(&report::evidence::boundary_evidence(&cases, &results));
    assert!(
        intro.contains(&boundaries),
        "docs/src/what-the-kernels-do.md does not quote the committed run's `{boundaries}`"
    );
}
