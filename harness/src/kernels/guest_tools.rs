//! The static programs a guest of a foreign architecture runs besides the harness, from
//! Debian's packages of that architecture through the same signed chain as the kernels
//! (InRelease → Packages → .deb SHA256), recorded and kept in the same cache.
//!
//! A guest of the host's architecture runs the host's busybox and kmod; one of another
//! architecture cannot, and vng boots it with its shell init, `virtme-init`, a bash script
//! (on the host's architecture it runs its own binary, virtme-ng-init). So such a guest gets
//! busybox (vng's init line and initramfs, virtme-init's commands, modprobe) and bash.

use std::path::{Path, PathBuf};

use super::resolve::{ResolveError, Resolver};
use super::select::{BASH, BUSYBOX, GUEST_TOOLS, GuestTool, select_package};
use super::unpack::{UnpackError, extract_program};
use crate::vm::Arch;

/// The suite the guest tools come from: one codename, so that every machine's guests run
/// the same programs (a suite alias such as `stable` changes with each release).
pub const SUITE: &str = "bookworm";

/// The verified packages of one architecture's guest tools, in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestTools {
    pub arch: Arch,
    busybox: PathBuf,
    bash: PathBuf,
}

/// The programs of [`GuestTools`], extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPrograms {
    pub busybox: PathBuf,
    pub bash: PathBuf,
}

impl GuestTools {
    /// Writes the programs into `dir`.
    pub fn extract(&self, dir: &Path) -> Result<GuestPrograms, UnpackError> {
        let programs = GuestPrograms {
            busybox: dir.join(BUSYBOX.program),
            bash: dir.join(BASH.program),
        };
        extract_program(&self.busybox, BUSYBOX.program, &programs.busybox)?;
        extract_program(&self.bash, BASH.program, &programs.bash)?;
        Ok(programs)
    }
}

impl Resolver<'_> {
    /// The guest tools of `arch`: the packages recorded earlier, or those the signed index
    /// of [`SUITE`] names now (then recorded), downloaded and verified unless the cache has
    /// them. `kernel` is the kernel that needs them, which errors name.
    pub fn guest_tools(&mut self, kernel: &str, arch: Arch) -> Result<GuestTools, ResolveError> {
        let missing = |tool: GuestTool| ResolveError::NoGuestTool {
            kernel: kernel.to_string(),
            package: tool.package.to_string(),
            suite: SUITE.to_string(),
            arch,
        };
        let recorded = self
            .cache
            .load_tools_record(SUITE, arch)
            .filter(|_| !self.refresh);
        let packages = match recorded {
            Some(packages) => packages,
            None => {
                let index = self.suite_index_of(kernel, SUITE, arch.debian())?;
                let packages = GUEST_TOOLS
                    .into_iter()
                    .map(|tool| {
                        select_package(&index.packages, tool.package).ok_or_else(|| missing(tool))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.cache
                    .store_tools_record(SUITE, arch, &packages)
                    .map_err(|source| ResolveError::Cache {
                        kernel: kernel.to_string(),
                        source,
                    })?;
                packages
            }
        };
        let mut fetch = |tool: GuestTool| {
            let package = packages
                .iter()
                .find(|package| package.name == tool.package)
                .ok_or_else(|| missing(tool))?;
            self.fetch_deb(kernel, package)
        };
        Ok(GuestTools {
            arch,
            busybox: fetch(BUSYBOX)?,
            bash: fetch(BASH)?,
        })
    }
}
