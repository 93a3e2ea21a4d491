//! Finding vng and the programs it drives (QEMU, virtiofsd), as `scripts/setup-vm.sh`
//! installs them.

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
};

use super::VmError;

/// Overrides where `scripts/setup-vm.sh` put its tools (default
/// `$XDG_DATA_HOME/sk-storage-harness`, i.e. `~/.local/share/sk-storage-harness`).
pub const TOOLS_ENV: &str = "HARNESS_TOOLS";
const QEMU: &str = "qemu-system-x86_64";
const VIRTIOFSD: &str = "virtiofsd";
/// Where vng itself looks for virtiofsd besides PATH (virtme/commands/run.py).
const VIRTIOFSD_SYSTEM_PATHS: &[&str] = &[
    "/usr/libexec/virtiofsd",
    "/usr/lib/virtiofsd/virtiofsd",
    "/usr/lib/qemu/virtiofsd",
];

/// A located vng and the PATH its process gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vng {
    program: PathBuf,
    /// The venv's bin/ first (vng runs virtme-run and virtiofsd from there), then the
    /// user's PATH.
    search_path: OsString,
    qemu: PathBuf,
    virtiofsd: Option<PathBuf>,
}

impl Vng {
    /// Looks in the project's venv first, then on PATH; checks QEMU too.
    pub fn locate() -> Result<Vng, VmError> {
        let user_path = env::var_os("PATH").unwrap_or_default();
        let venv_vng = tools_dir().map(|dir| dir.join("venv").join("bin").join("vng"));
        let program = venv_vng
            .clone()
            .filter(|candidate| is_executable(candidate))
            .or_else(|| find_on_path("vng", &user_path))
            .ok_or(VmError::VngNotFound { venv: venv_vng })?;
        let bin = program.parent().unwrap_or(Path::new("/")).to_path_buf();
        let search_path = prepend_path(&bin, &user_path)?;
        let qemu = find_on_path(QEMU, &search_path).ok_or(VmError::ToolMissing {
            tool: QEMU,
            hint: "install the Debian package qemu-system-x86 (scripts/setup-vm.sh does)",
        })?;
        let virtiofsd = find_on_path(VIRTIOFSD, &search_path).or_else(|| {
            VIRTIOFSD_SYSTEM_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|path| is_executable(path))
        });
        Ok(Vng {
            program,
            search_path,
            qemu,
            virtiofsd,
        })
    }

    /// A vng stand-in for unit tests: `program` as vng, `virtiofsd` as its virtiofsd.
    #[cfg(test)]
    pub(crate) fn for_tests(program: &str, virtiofsd: Option<&str>) -> Vng {
        Vng {
            program: program.into(),
            search_path: env::var_os("PATH").unwrap_or_default(),
            qemu: QEMU.into(),
            virtiofsd: virtiofsd.map(PathBuf::from),
        }
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The QEMU vng will run (the first on its PATH).
    pub fn qemu(&self) -> &Path {
        &self.qemu
    }

    /// The QEMU that runs guests of `arch` (vng calls `qemu-system-<machine>`).
    pub fn require_qemu(&self, arch: super::Arch) -> Result<PathBuf, VmError> {
        let (program, hint) = arch.qemu();
        find_on_path(program, &self.search_path).ok_or(VmError::ToolMissing {
            tool: program,
            hint,
        })
    }

    /// The PATH to give vng's process.
    pub fn search_path(&self) -> &OsString {
        &self.search_path
    }

    /// The virtiofsd vng will run, when there is one.
    pub fn virtiofsd(&self) -> Option<&Path> {
        self.virtiofsd.as_deref()
    }

    /// virtiofsd, which every guest that does not use 9p needs: without it vng silently
    /// falls back to 9p, which Debian's cloud kernels lack.
    pub fn require_virtiofsd(&self) -> Result<&Path, VmError> {
        self.virtiofsd.as_deref().ok_or(VmError::ToolMissing {
            tool: VIRTIOFSD,
            hint: "run scripts/setup-vm.sh (it builds virtiofsd with cargo)",
        })
    }
}

/// `$HARNESS_TOOLS`, else `$XDG_DATA_HOME/sk-storage-harness` (`~/.local/share/…`).
pub fn tools_dir() -> Option<PathBuf> {
    match env::var_os(TOOLS_ENV) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::data_dir().map(|dir| dir.join("sk-storage-harness")),
    }
}

fn prepend_path(dir: &Path, path: &OsString) -> Result<OsString, VmError> {
    let dirs = std::iter::once(dir.to_path_buf()).chain(env::split_paths(path));
    env::join_paths(dirs).map_err(|source| VmError::BadPath {
        dir: dir.to_path_buf(),
        source,
    })
}

pub(super) fn find_on_path(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_finds_executables_only() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        let plain = dir.path().join("data");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::write(&plain, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = prepend_path(dir.path(), &OsString::from("/nonexistent")).unwrap();
        assert_eq!(find_on_path("tool", &path), Some(exe));
        assert_eq!(find_on_path("data", &path), None);
        assert_eq!(find_on_path("missing", &path), None);
    }
}
