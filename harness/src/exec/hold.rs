//! `harness shell`: an interactive shell on the terminal while a case's state is held, so
//! that an engineer can look at what the steps left (bpftool, /proc) before it is released.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::fd::{AsFd, AsRawFd},
    path::Path,
    process::{Command, Stdio},
};

use super::world::World;
use crate::{
    printable::escape,
    results::{StepResult, Verdict},
};

/// Prints what the case holds and how its steps went, then runs `sh -i` on the terminal
/// until it exits. The shell is started from the case's thread, so it is in the case's
/// network namespace; the descriptors are this process's (`/proc/PID/fd`).
pub(super) fn shell(world: Option<&World<'_>>, steps: &[StepResult]) {
    let (input, output) = match terminal() {
        Ok(ends) => ends,
        Err(e) => {
            eprintln!("error: no terminal for the shell: {e}");
            return;
        }
    };
    let mut out = &output;
    let (prompt, held) = match world {
        Some(world) => {
            let _ = describe(&mut out, world, steps);
            (
                format!("[{}] # ", escape(&world.case.name)),
                "the case's state",
            )
        }
        None => ("[harness shell] # ".to_string(), "the kernel"),
    };
    let _ = writeln!(
        out,
        "exit the shell to release {held} and power the guest off"
    );
    let shell = Command::new("sh")
        .arg("-i")
        .env("PS1", prompt)
        .stdin(input)
        .stdout(output.try_clone().map_or(Stdio::inherit(), Stdio::from))
        .stderr(Stdio::from(output))
        .status();
    if let Err(e) = shell {
        eprintln!("error: cannot start sh: {e}");
    }
}

/// The terminal's two ends in the guest. vng joins the host's stdin and stdout to the
/// guest's virtio-serial ports `virtme.stdin` and `virtme.stdout`; its init gives them to
/// the command only where udev has named them (`/dev/virtio-ports/…`), and the minimal
/// root has no udev, so the ports are found by name in sysfs. Elsewhere (the host's root
/// with udev, a run on the host) the command's own stdin and stdout are the terminal.
fn terminal() -> std::io::Result<(File, File)> {
    let port = |name: &str| -> std::io::Result<Option<File>> {
        for entry in std::fs::read_dir("/sys/class/virtio-ports")? {
            let entry = entry?;
            let named = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
            if named.trim() == name {
                let device = Path::new("/dev").join(entry.file_name());
                return OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(device)
                    .map(Some);
            }
        }
        Ok(None)
    };
    let by_udev = Path::new("/dev/virtio-ports/virtme.stdin").exists();
    if !by_udev
        && let (Ok(Some(input)), Ok(Some(output))) = (port("virtme.stdin"), port("virtme.stdout"))
    {
        return Ok((input, output));
    }
    let stdin = std::io::stdin().as_fd().try_clone_to_owned()?;
    let stdout = std::io::stdout().as_fd().try_clone_to_owned()?;
    Ok((File::from(stdin), File::from(stdout)))
}

fn describe(out: &mut impl Write, world: &World<'_>, steps: &[StepResult]) -> std::io::Result<()> {
    writeln!(out, "case {}:", escape(&world.case.name))?;
    for step in steps {
        writeln!(
            out,
            "  {} {}: {} (expected {})",
            match step.verdict {
                Verdict::Pass => "pass",
                Verdict::Diverged => "DIVERGED",
            },
            escape(&step.label),
            escape(&step.actual.to_string()),
            escape(&step.expected.to_string())
        )?;
    }
    if !Path::new("/bin/bpftool").exists() && !Path::new("/usr/sbin/bpftool").exists() {
        writeln!(
            out,
            "(no bpftool here: install the Debian package bpftool on the host)"
        )?;
    }
    writeln!(out, "held by the executor, pid {}:", std::process::id())?;
    for name in world.case.maps.keys() {
        match (world.map_fd(name), world.map_ids.get(name)) {
            (Ok(fd), Some(id)) => writeln!(
                out,
                "  map {}: fd {fd}, id {id} (bpftool map dump id {id})",
                escape(name)
            )?,
            (Ok(fd), None) => writeln!(out, "  map {}: fd {fd}", escape(name))?,
            (Err(_), _) => writeln!(out, "  map {}: not open", escape(name))?,
        }
    }
    for (name, fd) in &world.fds {
        writeln!(out, "  socket {}: fd {}", escape(name), fd.as_raw_fd())?;
    }
    for (name, program) in &world.case.programs {
        writeln!(
            out,
            "  program {} ({}): bpftool prog show, bpftool cgroup tree",
            escape(name),
            program.kind.name()
        )?;
    }
    Ok(())
}
