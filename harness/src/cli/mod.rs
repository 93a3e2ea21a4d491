//! Command line: parses arguments with clap and dispatches to the stages.
use std::process::ExitCode;

pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
