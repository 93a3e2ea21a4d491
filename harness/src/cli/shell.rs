//! `harness shell KERNEL [CASE]`: the kernel booted as a run boots it (same root, modules
//! and command line), with the terminal as its console, a shell, bpftool and harness-guest
//! inside, and, with a case, that case's state after its steps held while the shell runs.

use std::path::PathBuf;

use super::{
    CaseSelection, EXIT_BAD_INPUT, EXIT_INFRA, EXIT_PASS, KernelChoice, VmLimits, load_cases,
};
use crate::{matrix::GuestRoot, results::KernelStatus};

#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// The kernel: a name of the list, a kernel image or built tree, or
    /// `debian:SUITE[/VERSION][@FLAVOUR]`, as `run --kernel` takes them.
    #[arg(value_name = "NAME|PATH|debian:SUITE[/VERSION]")]
    kernel: String,
    /// A case, by name: its steps run first, and its maps, programs and sockets stay while
    /// the shell runs.
    case: Option<String>,
    /// Where the case is: case files or directories.
    /// [default: the project's cases]
    #[arg(long, default_values_os_t = [super::project::path("cases")], hide_default_value = true)]
    cases: Vec<PathBuf>,
    /// The kernel list.
    /// [default: the project's kernels.toml]
    #[arg(long, default_value_os_t = super::project::path("kernels.toml"), hide_default_value = true)]
    kernels: PathBuf,
    /// Guest memory, over kernels.toml, e.g. 2G.
    #[arg(long, value_parser = super::memory_arg)]
    memory: Option<String>,
    /// The root filesystem a kernel image boots on, as for `run`.
    #[arg(long, value_enum, default_value_t = GuestRoot::Minimal)]
    guest_root: GuestRoot,
    /// Where the guest's work directory goes.
    /// [default: the project's target/sk-storage-shell]
    #[arg(long, default_value_os_t = super::project::path("target/sk-storage-shell"), hide_default_value = true)]
    out: PathBuf,
}

pub fn run(args: &ShellArgs) -> u8 {
    let select = CaseSelection {
        names: args.case.iter().cloned().collect(),
        ..CaseSelection::default()
    };
    let cases = match args.case {
        Some(_) => match load_cases(&args.cases, &select) {
            Ok(cases) => cases,
            Err(code) => return code,
        },
        None => Vec::new(),
    };
    if cases.len() > 1 {
        eprintln!(
            "error: {} cases are named {}; give the one to hold",
            cases.len(),
            crate::printable::escape(args.case.as_deref().unwrap_or_default())
        );
        return EXIT_BAD_INPUT;
    }
    let choice = KernelChoice {
        list: &args.kernels,
        kernel: std::slice::from_ref(&args.kernel),
    };
    let limits = VmLimits {
        jobs: 1,
        memory: args.memory.clone(),
        timeout: None,
        cpus: None,
        guest_root: args.guest_root,
        shell: true,
    };
    eprintln!("booting {} …", crate::printable::escape(&args.kernel));
    let results = match super::run_matrix(&choice, limits, &args.out, &cases, None) {
        Ok(results) => results,
        Err(code) => return code,
    };
    match results.kernels.first().map(|run| &run.status) {
        Some(KernelStatus::Ran) => EXIT_PASS,
        Some(KernelStatus::Error { message, .. }) => {
            eprintln!("error: {}", crate::printable::escape(message));
            EXIT_INFRA
        }
        Some(KernelStatus::Skipped { reason }) => {
            eprintln!("error: {}", crate::printable::escape(reason));
            EXIT_INFRA
        }
        None => EXIT_INFRA,
    }
}
