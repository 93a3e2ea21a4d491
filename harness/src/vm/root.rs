//! The guests' minimal root filesystem, for vng's `--root`: busybox (vng's init line and the
//! command's shell), kmod (the kernel's module requests), the in-guest executor
//! (`harness-guest`) with the libraries it links, and the directories virtme-ng-init mounts
//! over. Nothing else, in particular no udevd, whose coldplug was most of a boot under TCG
//! (6 of 11 s of a 6.1 boot): virtme-ng-init skips udev when the root has none.
//!
//! Without udev the guest has no `/dev/virtio-ports/` links, so virtme-ng-init runs the
//! command on the serial console instead of vng's script ports and cannot hand its exit
//! code back (vng then exits 255); it logs the code on the console, where
//! [`console::boot_progress`](super::console::boot_progress) reads it.

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
};

use super::{VmError, spec::Share};

/// Where the in-guest executor sits in the root, on the shell's PATH under its own name.
pub const HARNESS_IN_GUEST: &str = "/bin/harness-guest";
/// The mount point of the guest's read-write directory (plan in, results out).
pub const WORK_IN_GUEST: &str = "/harness";

/// busybox applets that vng's init line (`mount`, `mkdir`) and virtme-ng-init's command
/// script (`sh`) run, and a few for a human reading a console.
const APPLETS: &[&str] = &[
    "sh", "mount", "umount", "mkdir", "ln", "cat", "ls", "echo", "poweroff",
];
/// The applets virtme-init runs besides [`APPLETS`] (Debian's busybox has no `install`,
/// whose one use, a directory for dbus, the harness does without).
const VIRTME_INIT_APPLETS: &[&str] = &[
    "grep",
    "sed",
    "cut",
    "base64",
    "setsid",
    "id",
    "su",
    "touch",
    "mktemp",
    "chmod",
    "chown",
    "rm",
    "sync",
    "readlink",
    "dirname",
    "uname",
    "ip",
    "mknod",
    "hostname",
    "stty",
    "deallocvt",
    "insmod",
];
/// Directories that must exist for virtme-ng-init's mounts and vng's overlays (`/etc`,
/// `/lib`, `/home`, `/opt`, `/srv`, `/usr`, `/var`, `/tmp` get a tmpfs overlay each).
const DIRECTORIES: &[&str] = &[
    "bin",
    "sbin",
    "dev",
    "etc",
    "home",
    "lib",
    "lib/modules",
    "opt",
    "proc",
    "root",
    "run",
    "srv",
    "sys",
    "tmp",
    "usr",
    "var",
    "harness",
];

/// A minimal root in a temporary directory, removed on drop. One serves every guest of a
/// run: the guests see it read-only, and each kernel's modules are mounted over
/// `/lib/modules/<release>` ([`MinimalRoot::modules_share`]).
#[derive(Debug)]
pub struct MinimalRoot {
    dir: tempfile::TempDir,
}

impl MinimalRoot {
    /// Builds the root under `parent` around `harness_exe` (a `harness-guest`), with the
    /// host's busybox and kmod (found on `search_path`).
    pub fn build(
        parent: &Path,
        harness_exe: &Path,
        search_path: &std::ffi::OsStr,
    ) -> Result<MinimalRoot, VmError> {
        let root = Self::skeleton(parent)?;
        let busybox =
            super::tools::find_on_path("busybox", search_path).ok_or(VmError::ToolMissing {
                tool: "busybox",
                hint: "install the Debian package busybox-static (scripts/setup-vm.sh does)",
            })?;
        root.install_program(&busybox, Path::new("/bin/busybox"))?;
        for applet in APPLETS {
            root.link(Path::new("busybox"), &Path::new("/bin").join(applet))?;
        }
        let kmod = super::tools::find_on_path("kmod", search_path).ok_or(VmError::ToolMissing {
            tool: "kmod",
            hint: "install the Debian package kmod (scripts/setup-vm.sh does)",
        })?;
        root.install_program(&kmod, Path::new("/bin/kmod"))?;
        root.link(Path::new("/bin/kmod"), Path::new("/sbin/modprobe"))?;
        root.install_program(harness_exe, Path::new(HARNESS_IN_GUEST))?;
        Ok(root)
    }

    /// Adds what a person at the guest's shell wants (`harness shell`): every busybox applet,
    /// and bpftool (found on `search_path` or in /usr/sbin, if the host has it) with its
    /// libraries.
    pub fn install_shell_tools(&self, search_path: &std::ffi::OsStr) -> Result<(), VmError> {
        let busybox = self.host_path(Path::new("/bin/busybox"));
        let listed = std::process::Command::new(&busybox)
            .arg("--list")
            .output()
            .map_err(|source| root_error(&busybox, source))?;
        for applet in String::from_utf8_lossy(&listed.stdout).lines() {
            let guest = Path::new("/bin").join(applet);
            if !applet.contains('/') && !self.host_path(&guest).exists() {
                self.link(Path::new("busybox"), &guest)?;
            }
        }
        let mut path = search_path.to_os_string();
        path.push(":/usr/sbin");
        // Without it the shell still works; the guest's description of the case says so.
        if let Some(bpftool) = super::tools::find_on_path("bpftool", &path) {
            self.install_program(&bpftool, Path::new("/bin/bpftool"))?;
        }
        Ok(())
    }

    /// Builds the root of another architecture's guests under `parent`: that architecture's
    /// static `harness_exe` (a `harness-guest`), `busybox` and `bash` (vng's init there is
    /// virtme-init, a bash script). busybox serves as modprobe too: the host's kmod does not
    /// run there.
    pub fn build_foreign(
        parent: &Path,
        harness_exe: &Path,
        busybox: &Path,
        bash: &Path,
    ) -> Result<MinimalRoot, VmError> {
        let root = Self::skeleton(parent)?;
        root.copy(busybox, Path::new("/bin/busybox"))?;
        for applet in APPLETS.iter().chain(VIRTME_INIT_APPLETS) {
            root.link(Path::new("busybox"), &Path::new("/bin").join(applet))?;
        }
        // virtme-init's `#!/usr/bin/env bash`.
        root.create_dir(Path::new("/usr/bin"))?;
        root.link(Path::new("../../bin/busybox"), Path::new("/usr/bin/env"))?;
        root.link(Path::new("../bin/busybox"), Path::new("/sbin/modprobe"))?;
        root.copy(bash, Path::new("/bin/bash"))?;
        root.copy(harness_exe, Path::new(HARNESS_IN_GUEST))?;
        Ok(root)
    }

    /// The directories and /etc files every root has.
    fn skeleton(parent: &Path) -> Result<MinimalRoot, VmError> {
        let dir = tempfile::Builder::new()
            .prefix("guest-root-")
            .tempdir_in(parent)
            .map_err(|source| root_error(parent, source))?;
        let root = MinimalRoot { dir };
        for directory in DIRECTORIES {
            root.create_dir(Path::new(directory))?;
        }
        root.write(Path::new("/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        root.write(Path::new("/etc/group"), "root:x:0:\n")?;
        // vng's init line bind-mounts its own fstab over this one.
        root.write(Path::new("/etc/fstab"), "")?;
        Ok(root)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A read-only share of a kernel's modules at `/lib/modules/<release>`, where the
    /// guest's modprobe looks; its mount point is made here, since the guest sees the root
    /// read-only.
    pub fn modules_share(&self, release: &str, modules_dir: &Path) -> Result<Share, VmError> {
        write_module_index(release, modules_dir)?;
        let guest = Path::new("/lib/modules").join(release);
        self.create_dir(&guest)?;
        Ok(Share {
            guest,
            host: modules_dir.to_path_buf(),
            writable: false,
        })
    }

    /// The host path of `guest` inside the root.
    fn host_path(&self, guest: &Path) -> PathBuf {
        self.path().join(guest.strip_prefix("/").unwrap_or(guest))
    }

    fn create_dir(&self, guest: &Path) -> Result<(), VmError> {
        let path = self.host_path(guest);
        fs::create_dir_all(&path).map_err(|source| root_error(&path, source))
    }

    fn write(&self, guest: &Path, text: &str) -> Result<(), VmError> {
        let path = self.host_path(guest);
        fs::write(&path, text).map_err(|source| root_error(&path, source))
    }

    fn link(&self, target: &Path, guest: &Path) -> Result<(), VmError> {
        let path = self.host_path(guest);
        symlink(target, &path).map_err(|source| root_error(&path, source))
    }

    /// Copies `program` to `guest`, and the shared libraries it loads to their own paths.
    fn install_program(&self, program: &Path, guest: &Path) -> Result<(), VmError> {
        self.copy(program, guest)?;
        for library in shared_libraries(program)? {
            if !self.host_path(&library).exists() {
                self.copy(&library, &library)?;
            }
        }
        Ok(())
    }

    fn copy(&self, from: &Path, guest: &Path) -> Result<(), VmError> {
        let to = self.host_path(guest);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|source| root_error(parent, source))?;
        }
        fs::copy(from, &to).map_err(|source| root_error(from, source))?;
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755))
            .map_err(|source| root_error(&to, source))
    }
}

/// Writes the index of the modules in `modules_dir` (`lib/modules/<release>`) with the
/// host's depmod when it has none: the guest's modprobe finds modules by it (the kernel's
/// requests for inet_diag and the like), while vng indexes only its staged copy. depmod
/// reads modules of any architecture.
fn write_module_index(release: &str, modules_dir: &Path) -> Result<(), VmError> {
    if modules_dir.join("modules.dep").is_file() {
        return Ok(());
    }
    // depmod -b BASE looks in BASE/lib/modules/<release>.
    let base = modules_dir
        .ancestors()
        .nth(3)
        .filter(|base| base.join("lib/modules").join(release) == modules_dir)
        .ok_or_else(|| VmError::GuestRoot {
            path: modules_dir.to_path_buf(),
            source: std::io::Error::other(format!(
                "a kernel's modules must sit in …/lib/modules/{release}"
            )),
        })?;
    let search = std::ffi::OsString::from("/usr/sbin:/sbin:/usr/bin:/bin");
    let depmod = super::tools::find_on_path("depmod", &search).ok_or(VmError::ToolMissing {
        tool: "depmod",
        hint: "install the Debian package kmod (scripts/setup-vm.sh does)",
    })?;
    let output = duct::cmd!(depmod, "-b", base, release)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|source| root_error(modules_dir, source))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(root_error(
            modules_dir,
            std::io::Error::other(format!(
                "depmod failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        ))
    }
}

/// The shared libraries `program` loads, its ELF interpreter included, as the host's
/// dynamic loader resolves them (`ldd`); none for a static program.
fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>, VmError> {
    let output = duct::cmd!("ldd", program)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|source| root_error(program, source))?;
    Ok(parse_ldd(&String::from_utf8_lossy(&output.stdout)))
}

/// The absolute paths in `ldd` output: `libc.so.6 => /lib/…/libc.so.6 (0x…)` and the
/// interpreter's `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has none.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, resolved)) => resolved.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn root_error(path: &Path, source: std::io::Error) -> VmError {
    VmError::GuestRoot {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_the_libraries_and_the_interpreter() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn another_architectures_root_holds_its_own_programs_and_bash_for_virtme_init() {
        let parent = tempfile::tempdir().unwrap();
        let program = |name: &str| {
            let path = parent.path().join(name);
            fs::write(&path, name).unwrap();
            path
        };
        let (exe, busybox, bash) = (program("harness"), program("busybox"), program("bash"));
        let root = MinimalRoot::build_foreign(parent.path(), &exe, &busybox, &bash).unwrap();
        let read = |guest: &str| fs::read_to_string(root.host_path(Path::new(guest))).unwrap();
        assert_eq!(read(HARNESS_IN_GUEST), "harness");
        assert_eq!(read("/bin/bash"), "bash");
        for via_busybox in ["/bin/sh", "/usr/bin/env", "/sbin/modprobe", "/bin/setsid"] {
            assert_eq!(read(via_busybox), "busybox", "{via_busybox}");
        }
        assert!(!root.host_path(Path::new("/bin/kmod")).exists());
    }

    #[test]
    fn the_root_holds_what_the_guest_runs_and_nothing_of_udev() {
        let parent = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let root = match MinimalRoot::build(parent.path(), &exe, &path) {
            Err(VmError::ToolMissing { tool, .. }) => {
                eprintln!("skipped: {tool} is not installed (scripts/setup-vm.sh installs it)");
                return;
            }
            other => other.unwrap(),
        };
        let at = |guest: &str| root.host_path(Path::new(guest));
        assert!(at(HARNESS_IN_GUEST).is_file());
        assert!(at("/bin/sh").exists(), "busybox's sh");
        assert!(at("/sbin/modprobe").exists(), "kmod");
        for library in shared_libraries(&exe).unwrap() {
            assert!(at(&library.display().to_string()).is_file(), "{library:?}");
        }
        for udevd in [
            "/lib/systemd/systemd-udevd",
            "/usr/lib/systemd/systemd-udevd",
            "/bin/udevd",
        ] {
            assert!(!at(udevd).exists(), "{udevd}");
        }
        let modules = parent.path().join("tree/lib/modules/6.1.0-50-cloud-amd64");
        fs::create_dir_all(&modules).unwrap();
        let share = root
            .modules_share("6.1.0-50-cloud-amd64", &modules)
            .unwrap();
        assert!(modules.join("modules.dep").is_file(), "depmod indexed them");
        assert_eq!(share.guest, Path::new("/lib/modules/6.1.0-50-cloud-amd64"));
        assert!(at("/lib/modules/6.1.0-50-cloud-amd64").is_dir());
        assert!(!share.writable);
        let dir = root.path().to_path_buf();
        drop(root);
        assert!(!dir.exists(), "the root is removed with its owner");
    }
}
