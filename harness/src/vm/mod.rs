//! Booting kernels in virtme-ng (vng) VMs and running one command in each.
//!
//! The guest's root is the host's (a read-only overlay, vng's default) or a directory of
//! the caller's such as the [`MinimalRoot`]; the directories in [`VmSpec::shares`] are
//! mounted in it, so the guest reads its input and writes its results there. One file per
//! concern: [`arch`] names the guests' architectures, [`accel`] probes KVM once per run,
//! [`root`] builds the minimal root, [`guest_exe`] the harness another architecture's
//! guests run, [`command`] builds vng's command line (pure),
//! [`console`] reads the console for kernel trouble and landmarks (pure), [`outcome`]
//! judges a run (pure), [`memo`] remembers the kernels that need 9p, [`safe_path`] keeps
//! every path vng sees safe for the shells it hands them to, [`process`] runs vng under a
//! wall-clock limit and kills what it leaves, [`tools`] finds vng.
//!
//! ```no_run
//! use harness::vm::{self, KernelArg, VmRegistry, VmSpec, Vng};
//! let vng = Vng::locate()?;
//! let registry = VmRegistry::new();
//! registry.cancel_on_ctrl_c()?;
//! let kernel = KernelArg::Image {
//!     vmlinuz: "/cache/boot/vmlinuz-6.1.0-48-cloud-amd64".into(),
//!     release: Some("6.1.0-48-cloud-amd64".into()),
//!     modules: Some("/cache/lib/modules/6.1.0-48-cloud-amd64".into()),
//! };
//! let (accel, why) = vm::probe_accel(&vng, &kernel, &registry, None)?;
//! println!("{why}");
//! let mut spec = VmSpec::new(kernel, accel, vec!["uname".into(), "-r".into()]);
//! spec.retry_crash_once = true;
//! let outcome = vm::run(&spec, &vng, &registry)?;
//! match &outcome.failure {
//!     None => println!("guest exited {:?}: {}", outcome.guest_exit_code, outcome.guest_stdout),
//!     Some(failure) => println!("{failure}\n{}", failure.detail()),
//! }
//! # Ok::<(), vm::VmError>(())
//! ```

pub mod accel;
pub mod arch;
pub mod command;
pub mod console;
pub mod guest_exe;
pub mod memo;
pub mod outcome;
pub mod process;
pub mod root;
pub mod safe_path;
pub mod spec;
pub mod tools;

use std::{io, path::PathBuf};

pub use self::{
    accel::probe_accel,
    arch::Arch,
    console::{ConsoleFinding, Landmark, MarkerKind},
    memo::NinePMemo,
    outcome::{Phases, VmFailure, VmOutcome},
    process::{VmProcess, VmRegistry, run, run_interactive, run_watched},
    root::MinimalRoot,
    spec::{Accel, GuestRootfs, KernelArg, Share, VmSpec, tree_is_built, tree_release},
    tools::Vng,
};

/// Why a VM run could not be attempted (or was cancelled). Trouble inside the guest is not
/// an error: it is a [`VmFailure`] in the outcome.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(
        "virtme-ng (vng) not found{}, nor on PATH: run scripts/setup-vm.sh, or set {} to \
         where it installed its tools",
        venv.as_ref().map(|path| format!(" at {}", path.display())).unwrap_or_default(),
        tools::TOOLS_ENV
    )]
    VngNotFound { venv: Option<PathBuf> },
    #[error("{tool} not found on PATH: {hint}")]
    ToolMissing {
        tool: &'static str,
        hint: &'static str,
    },
    #[error("cannot put {} on vng's PATH", dir.display())]
    BadPath {
        dir: PathBuf,
        #[source]
        source: std::env::JoinPathsError,
    },
    #[error("kernel image {} does not exist: fetch the kernel first (harness kernels fetch)", path.display())]
    KernelImageMissing { path: PathBuf },
    #[error("directory {} to share with the guest does not exist: create it first", path.display())]
    ShareMissing { path: PathBuf },
    #[error(
        "{what} {path:?} cannot be handed to vng: virtme-ng pastes it unquoted into a command \
         line for /bin/sh, where only letters, digits and ._+/- are safe; {fix}"
    )]
    UnsafePath {
        what: &'static str,
        path: PathBuf,
        fix: &'static str,
    },
    #[error("cannot make {} visible to vng under a safe path", path.display())]
    Stage {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot build the guests' root filesystem at {}", path.display())]
    GuestRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("guest memory {memory:?} is not a size such as 1G or 512M")]
    BadMemory { memory: String },
    #[error("mainline kernel tag {tag:?} is not of the form v5.4, v5.9.16 or v6.0-rc3")]
    BadMainlineTag { tag: String },
    #[error("no command given for the guest to run")]
    EmptyCommand,
    #[error("guest command {command:?} contains a NUL byte, which no shell can pass on")]
    CommandHasNul { command: Vec<String> },
    #[error("cannot create a scratch directory for vng (is TMPDIR writable?)")]
    Scratch {
        #[source]
        source: io::Error,
    },
    #[error("cannot write the console log {}", path.display())]
    ConsoleLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read vng's output")]
    Pipe {
        #[source]
        source: io::Error,
    },
    #[error("cannot start {}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("lost track of the vng process")]
    Wait {
        #[source]
        source: io::Error,
    },
    #[error(
        "VM processes survived SIGKILL (stuck in the kernel?): {}; kill them by hand",
        processes.iter().map(|p| format!("{} (pid {})", p.name, p.pid)).collect::<Vec<_>>().join(", ")
    )]
    Strays { processes: Vec<VmProcess> },
    #[error("cannot install the Ctrl-C handler (is another one installed?)")]
    InterruptHandler {
        #[source]
        source: ctrlc::Error,
    },
    #[error("cancelled: every VM was stopped")]
    Cancelled,
}
