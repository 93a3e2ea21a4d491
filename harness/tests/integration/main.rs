//! The integration tests: one binary, a module per concern. The case × kernel matrix
//! (`cases.rs`) and the case language's error messages (`case_messages.rs`) are libtest-mimic
//! harnesses of their own, since each builds its list of tests from files.
//!
//! Tests here run in parallel threads of one process: whatever is process-wide (signal
//! handlers, the working directory, the environment) is changed only in a child process
//! (`vm_interrupt`).

/// The harness binary as the tests run it: without colour, and outside GitHub Actions
/// whatever runs the tests, since a run there would annotate the job and write its summary.
fn harness_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_harness"));
    command
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY");
    command
}

#[path = "../support/requirements.rs"]
mod requirements;

mod report_fixture;
mod vm_support;

mod bpf;
mod case_errors;
mod cli;
mod cost_model;
mod docs;
mod fuzz_corpus;
mod kernels_cli;
mod kernels_fetch;
mod matrix;
mod report;
mod report_page;
mod shell;
mod vm;
mod vm_interrupt;
mod workflow;
