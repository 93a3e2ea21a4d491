//! The in-guest executor (`harness::cli::guest`).

fn main() -> std::process::ExitCode {
    harness::cli::guest::main()
}
