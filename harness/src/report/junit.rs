//! JUnit XML for CI test reporters: a testsuite per kernel, a testcase per case of the
//! matrix.
//!
//! A divergence is a `failure` (the kernel behaves otherwise than the case says), a case
//! the harness could not run is an `error` (infrastructure). A kernel that failed (boot,
//! panic, timeout) reports every case of the matrix it did not run as an `error`, and a
//! skipped kernel every case as `skipped`, so the counts are the matrix's; the failed
//! kernel's console tail is its suite's `system-err`. Only when no kernel ran a case is
//! a failed or skipped kernel one `boot` testcase, so that it still counts.
//!
//! The XML validates against the common JUnit schema (Jenkins' junit-10.xsd, in
//! tests/data/) but for two attributes of a case's testcase that the schema does not list
//! and CI reporters read, `file` and `line` (as pytest's xunit1 family writes them): class
//! names carry no dots, which tools read as package separators (`6.12` would be class `12`
//! of package `6`), and the root has no `skipped` attribute.

use std::{collections::HashMap, time::Duration};

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{ReportError, matrix};
use crate::{
    results::{CaseOutcome, CaseResult, KernelRun, KernelStatus, RunResults, Verdict},
    vm::Arch,
};

const REPORT_NAME: &str = "sk-storage-harness";

pub fn report(results: &RunResults) -> Report {
    let cases: Vec<&str> = matrix::rows(results).iter().map(|row| row.case).collect();
    let mut report = Report::new(REPORT_NAME);
    report.set_time(Duration::from_millis(
        results.kernels.iter().map(|k| k.duration_ms).sum(),
    ));
    report.add_test_suites(results.kernels.iter().map(|run| suite(run, &cases)));
    report
}

pub fn to_xml(results: &RunResults) -> Result<String, ReportError> {
    let report = report(results);
    let xml = report.to_string().map_err(ReportError::Junit)?;
    // quick-junit always writes `testsuites@skipped`, which junit-10.xsd does not allow:
    // validating readers refuse the file. Each suite keeps its own `skipped` count.
    let root_skipped = format!(" skipped=\"{}\"", report.skipped);
    let root = xml.find("<testsuites ").expect("the report has a root");
    let root_end = root + xml[root..].find('>').expect("the root tag ends");
    let attribute = xml[root..root_end]
        .find(&root_skipped)
        .map(|at| root + at)
        .expect("quick-junit writes testsuites@skipped");
    Ok(format!(
        "{}{}",
        &xml[..attribute],
        &xml[attribute + root_skipped.len()..]
    ))
}

/// `kernel_6_12`: the kernel's name as a class name without dots (nor slashes, for a
/// kernel given by path), and its machine unless x86_64 or the name already says it
/// (`kernel_6_1_arm64`, `kernel_mine_aarch64`).
pub fn class_name(kernel: &str, machine: Option<&str>) -> String {
    let name: String = kernel
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    match machine.and_then(Arch::from_uname_machine) {
        Some(arch) if arch != Arch::X86_64 && !kernel.ends_with(arch.name()) => {
            format!("kernel_{name}_{}", arch.uname_machine())
        }
        _ => format!("kernel_{name}"),
    }
}

/// The kernel's testsuite: its cases in the matrix's order, each case it did not run in
/// the state its kernel leaves it (error, skipped); a kernel that ran without a case (a
/// merge of runs of other cases) has no testcase for it.
fn suite(run: &KernelRun, cases: &[&str]) -> TestSuite {
    let class = class_name(&run.kernel, run.arch.as_deref());
    let mut suite = TestSuite::new(&run.kernel);
    suite.set_time(Duration::from_millis(run.duration_ms));
    if let Some(release) = &run.release {
        suite.add_property(Property::new("release", release));
    }
    if let Some(version) = run.version {
        suite.add_property(Property::new("version", version.to_string()));
    }
    if let Some(machine) = &run.arch {
        suite.add_property(Property::new("arch", machine));
    }
    let not_run = match &run.status {
        KernelStatus::Ran => None,
        KernelStatus::Error { message, log_tail } => {
            if let Some(tail) = log_tail {
                suite.set_system_err(tail);
            }
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_type("kernel error").set_message(format!(
                "kernel {} failed before this case ran: {message}",
                run.kernel
            ));
            Some(status)
        }
        KernelStatus::Skipped { reason } => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(format!("kernel {} skipped: {reason}", run.kernel));
            Some(status)
        }
    };
    let by_name: HashMap<&str, &CaseResult> =
        run.cases.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut tests = Vec::with_capacity(cases.len());
    for name in cases {
        match (by_name.get(name), &not_run) {
            (Some(case), _) => tests.push(test_case(&class, case)),
            (None, Some(status)) => {
                let mut test = TestCase::new(*name, status.clone());
                test.set_classname(&class);
                tests.push(test);
            }
            (None, None) => {}
        }
    }
    if tests.is_empty()
        && let Some(status) = not_run
    {
        let mut test = TestCase::new("boot", status);
        test.set_classname(&class);
        tests.push(test);
    }
    suite.add_test_cases(tests);
    suite
}

fn test_case(class: &str, case: &CaseResult) -> TestCase {
    let status = match &case.outcome {
        CaseOutcome::Pass => TestCaseStatus::success(),
        CaseOutcome::Diverged => {
            let diverged: Vec<_> = case
                .steps
                .iter()
                .filter(|s| s.verdict == Verdict::Diverged)
                .collect();
            let message = diverged
                .iter()
                .map(|s| format!("step {}: expected {}, got {}", s.id, s.expected, s.actual))
                .collect::<Vec<_>>()
                .join("; ");
            let body = diverged
                .iter()
                .map(|s| {
                    let reason = s
                        .reason
                        .as_ref()
                        .map(|r| format!("\n  (expected because: {r})"))
                        .unwrap_or_default();
                    format!(
                        "{}: step {}: {}\n  expected: {}\n  actual:   {}{reason}",
                        super::location(&case.file, s.line),
                        s.id,
                        s.label,
                        s.expected,
                        s.actual
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_type("diverged")
                .set_message(message)
                .set_description(body);
            status
        }
        CaseOutcome::Skipped { reason } => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(reason);
            status
        }
        CaseOutcome::Error { message } => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_type("case error").set_message(message);
            status
        }
    };
    let mut test_case = TestCase::new(&case.name, status);
    test_case
        .set_classname(class)
        .set_time(Duration::from_millis(case.duration_ms));
    // Where CI reporters point (GitLab, the JUnit actions of GitHub): the case file, and
    // the line of its first divergence.
    test_case
        .extra
        .insert("file".into(), case.file.as_str().into());
    if let Some(line) = case
        .steps
        .iter()
        .find(|s| s.verdict == Verdict::Diverged)
        .and_then(|s| s.line)
    {
        test_case
            .extra
            .insert("line".into(), line.to_string().into());
    }
    test_case
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_have_no_dots() {
        assert_eq!(class_name("6.12", Some("x86_64")), "kernel_6_12");
        assert_eq!(class_name("host", None), "kernel_host");
        assert_eq!(
            class_name("~/linux/bzImage", None),
            "kernel___linux_bzImage"
        );
        assert_eq!(class_name("6.1-arm64", Some("aarch64")), "kernel_6_1_arm64");
        assert_eq!(class_name("mine", Some("aarch64")), "kernel_mine_aarch64");
    }

    #[test]
    fn a_failed_kernel_alone_is_one_boot_error_and_the_root_has_no_skipped_count() {
        let failed = KernelRun::without_cases(
            "7.3",
            KernelStatus::Error {
                message: "timed out".into(),
                log_tail: Some("[ 1.0] last words".into()),
            },
        );
        let skipped = KernelRun::without_cases(
            "5.2",
            KernelStatus::Skipped {
                reason: "no image".into(),
            },
        );
        let xml = to_xml(&RunResults::new(vec![failed, skipped])).expect("renders");
        let root = xml.lines().nth(1).expect("the root tag");
        assert!(root.starts_with("<testsuites "), "{xml}");
        assert!(!root.contains("skipped="), "{root}");
        let parsed = Report::deserialize_from_str(&xml).expect("parses back");
        let counts: Vec<(&str, usize, usize, usize)> = parsed
            .test_suites
            .iter()
            .map(|s| (s.name.as_str(), s.tests, s.errors, s.skipped))
            .collect();
        assert_eq!(counts, [("7.3", 1, 1, 0), ("5.2", 1, 0, 1)]);
        assert_eq!(parsed.test_suites[0].test_cases[0].name.as_str(), "boot");
        assert!(
            xml.contains("<system-err>[ 1.0] last words</system-err>"),
            "{xml}"
        );
    }
}
