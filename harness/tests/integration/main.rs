//! The integration tests: one binary, a module per concern. The case × kernel matrix
//! (`cases.rs`) and the case language's error messages (`case_messages.rs`) are libtest-mimic
//! harnesses of their own, since each builds its list of tests from files.
//!
//! Tests here run in parallel threads of one process: whatever is process-wide (signal
//! handlers, the working directory, the environment) is changed only in a child process
//! (`vm_interrupt`).

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
mod vm;
mod vm_interrupt;
mod workflow;
