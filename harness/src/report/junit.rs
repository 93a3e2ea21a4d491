//! JUnit XML for CI test reporters: a testsuite per kernel, a testcase per case.
//!
//! A divergence is a `failure` (the kernel behaves otherwise than the case says), a case
//! the harness could not run is an `error` (infrastructure), and a kernel that failed to
//! boot or died gets one `<kernel>/boot` testcase in error carrying its console's tail.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::ReportError;
use crate::results::{CaseOutcome, CaseResult, KernelRun, KernelStatus, RunResults, Verdict};

const REPORT_NAME: &str = "sk-storage-harness";

pub fn report(results: &RunResults) -> Report {
    let mut report = Report::new(REPORT_NAME);
    report.set_time(Duration::from_millis(
        results.kernels.iter().map(|k| k.duration_ms).sum(),
    ));
    report.add_test_suites(results.kernels.iter().map(suite));
    report
}

pub fn to_xml(results: &RunResults) -> Result<String, ReportError> {
    report(results).to_string().map_err(ReportError::Junit)
}

fn suite(run: &KernelRun) -> TestSuite {
    let mut suite = TestSuite::new(&run.kernel);
    suite.set_time(Duration::from_millis(run.duration_ms));
    if let Some(release) = &run.release {
        suite.add_property(Property::new("release", release));
    }
    if let Some(version) = run.version {
        suite.add_property(Property::new("version", version.to_string()));
    }
    if let KernelStatus::Error { message, log_tail } = &run.status {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_type("kernel error").set_message(message);
        if let Some(tail) = log_tail {
            status.set_description(tail);
        }
        let mut case = TestCase::new(format!("{}/boot", run.kernel), status);
        case.set_classname(&run.kernel)
            .set_time(Duration::from_millis(run.duration_ms));
        suite.add_test_case(case);
    }
    if let KernelStatus::Skipped { reason } = &run.status {
        let mut status = TestCaseStatus::skipped();
        status.set_message(reason);
        let mut case = TestCase::new(format!("{}/boot", run.kernel), status);
        case.set_classname(&run.kernel);
        suite.add_test_case(case);
    }
    suite.add_test_cases(run.cases.iter().map(|case| test_case(&run.kernel, case)));
    suite
}

fn test_case(kernel: &str, case: &CaseResult) -> TestCase {
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
                        "step {}: {}\n  expected: {}\n  actual:   {}{reason}",
                        s.id, s.label, s.expected, s.actual
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_type("diverged")
                .set_message(message)
                .set_description(format!("{}\n{body}", case.file));
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
        .set_classname(kernel)
        .set_time(Duration::from_millis(case.duration_ms));
    test_case
}
