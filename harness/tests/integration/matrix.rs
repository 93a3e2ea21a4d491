//! The VM smoke run: boots the kernels of ci/kernels-smoke.toml (5.2 from this project's
//! builds, two Debian kernels of different majors, an arm64 one, and one with a timeout too
//! short to boot)
//! and runs every case in each, pinning which cases each kernel may skip.
//! And a harness killed outright (SIGKILL, no chance to clean up) leaves no VM behind, a
//! case's outcomes do not depend on the cases before it, and paths named to run a command in
//! a shell boot their kernels and run nothing.

use crate::requirements;
use crate::vm_support;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use requirements::Requirement;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The cases each smoke kernel skips, by name: exactly these, so that a probe that wrongly
/// skips a case fails the test. 5.2 has no sockopt, tracing or LSM programs, refuses
/// BPF_F_CLONE, its sock_ops/sock_addr programs cannot reach their socket (cases that need
/// them require 5.3), the build has no INET_DIAG, and it predates the map iterator (5.9).
fn expected_skips(kernel: &str) -> &'static [&'static str] {
    match kernel {
        "5.2" => &[
            "bpf-delete",
            "bpf-writes-userspace-reads",
            "clone-on-accept",
            "clone-seen-by-bpf",
            "delete-then-get",
            "diag-needs-capability",
            "diag-shows-update",
            "diag-two-maps",
            "fentry-tcp-close",
            "fexit-tcp-connect",
            "get-create-with-init-value",
            "get-existing-ignores-init",
            "get-invalid-flags",
            "get-then-delete",
            "get-without-create",
            "iterate-counts-storages",
            "iterate-object-map",
            "lsm-sock-graft",
            "no-clone-without-flag",
            "state-cb-args",
            "state-cb-on-shutdown",
            "storage-outlives-detached-program",
            "write-then-get",
        ],
        _ => &[],
    }
}

/// `harness run` over cases/ with the kernels of ci/kernels-smoke.toml, reports to `out`.
fn smoke_run(args: &[&str], out: &Path) -> Command {
    let mut command = crate::harness_command();
    command
        .current_dir(repo_root())
        .args(["run", "--kernels", "ci/kernels-smoke.toml", "--out"])
        .arg(out)
        .args(args)
        .arg("cases");
    command
}

#[test]
fn smoke_kernels_pass_and_a_hung_kernel_is_only_its_own_error() {
    if let Some((requirement, reason)) = requirements::vm_tools_missing() {
        requirements::missing(requirement, &reason);
        return;
    }
    let out_dir = tempfile::tempdir().expect("temp dir");
    let output = smoke_run(&["-j", "2"], out_dir.path())
        .output()
        .expect("harness runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    // The hung kernel is an infrastructure error, which outranks a pass.
    assert_eq!(output.status.code(), Some(3), "{context}");

    let text =
        std::fs::read_to_string(out_dir.path().join("results.json")).expect("report written");
    let results: harness::results::RunResults = serde_json::from_str(&text).expect("report parses");
    let names: Vec<&str> = results.kernels.iter().map(|k| k.kernel.as_str()).collect();
    assert_eq!(
        names,
        ["5.2", "6.1", "7.3", "6.1-arm64", "6.1-tiny-timeout"],
        "{context}"
    );
    // scripts/test points HARNESS_KERNELS_DIR at this project's old kernels when they are
    // beside the checkout; then 5.2 must really run.
    let ran = if std::env::var_os("HARNESS_KERNELS_DIR").is_some() {
        &results.kernels[..4]
    } else {
        requirements::missing(
            Requirement::OldKernels,
            "HARNESS_KERNELS_DIR is not set: the smoke run covers no kernel before 5.10",
        );
        match &results.kernels[0].status {
            harness::results::KernelStatus::Skipped { reason } => {
                assert!(reason.contains("not on this machine"), "{reason}")
            }
            other => panic!("an absent optional kernel must be a skip, got {other:?}"),
        }
        &results.kernels[1..4]
    };
    for kernel in ran {
        assert_eq!(
            kernel.status,
            harness::results::KernelStatus::Ran,
            "{}: {context}",
            kernel.kernel
        );
        let version = kernel.version.expect("the guest reports its version");
        let (series, machine) = match kernel.kernel.strip_suffix("-arm64") {
            Some(series) => (series, "aarch64"),
            None => (kernel.kernel.as_str(), "x86_64"),
        };
        assert_eq!(
            version
                .to_string()
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join("."),
            series
        );
        assert_eq!(kernel.arch.as_deref(), Some(machine), "{}", kernel.kernel);
        assert!(!kernel.cases.is_empty());
        let mut skipped = Vec::new();
        for case in &kernel.cases {
            match &case.outcome {
                harness::results::CaseOutcome::Pass => {}
                harness::results::CaseOutcome::Skipped { .. } => skipped.push(case.name.as_str()),
                other => panic!("{} on {}: {other:?}\n{context}", case.name, kernel.kernel),
            }
        }
        skipped.sort_unstable();
        assert_eq!(
            skipped,
            expected_skips(&kernel.kernel),
            "skipped on {}\n{context}",
            kernel.kernel
        );
    }
    match &results.kernels[4].status {
        harness::results::KernelStatus::Error { message, .. } => {
            assert!(message.starts_with("timed out after 2s"), "{message}")
        }
        other => panic!("the tiny timeout must be an error, got {other:?}"),
    }
}

/// Before 5.11 a case's memlock limit counts every map its user holds. A case that limits
/// locked memory runs as a user of its own, so its outcomes do not depend on the BPF cases
/// before it (whose eBPF object stays loaded, charged to root): the same on 5.4 and 5.10
/// alone and after one.
#[test]
fn a_memlock_case_does_the_same_alone_and_after_a_bpf_case() {
    if let Some((requirement, reason)) = requirements::vm_tools_missing() {
        requirements::missing(requirement, &reason);
        return;
    }
    if std::env::var_os("HARNESS_KERNELS_DIR").is_none() {
        requirements::missing(
            Requirement::OldKernels,
            "HARNESS_KERNELS_DIR is not set: 5.4 is one of this project's builds",
        );
        return;
    }
    let memlock = "cases/memlock-limit-counts-maps-before-5-11.yaml";
    let run = |cases: &[&str]| {
        let out = tempfile::tempdir().expect("temp dir");
        let output = crate::harness_command()
            .current_dir(repo_root())
            .args([
                "run", "--kernel", "5.4", "--kernel", "5.10", "-j", "2", "--out",
            ])
            .arg(out.path())
            .args(cases)
            .output()
            .expect("harness runs");
        let context = format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(0), "{context}");
        let results =
            harness::results::read_json(&out.path().join("results.json")).expect("results");
        results
            .kernels
            .iter()
            .map(|kernel| {
                let names: Vec<&str> = kernel.cases.iter().map(|c| c.name.as_str()).collect();
                assert_eq!(names.last(), Some(&"memlock-limit-counts-maps-before-5-11"));
                let case = kernel.cases.last().expect("the memlock case ran");
                let outcomes: Vec<String> =
                    case.steps.iter().map(|s| s.actual.to_string()).collect();
                (kernel.kernel.clone(), names.len(), outcomes)
            })
            .collect::<Vec<_>>()
    };
    let after = run(&["cases/bpf/bpf-delete.yaml", memlock]);
    let alone = run(&[memlock]);
    for ((kernel, cases_after, outcomes_after), (_, cases_alone, outcomes_alone)) in
        after.iter().zip(&alone)
    {
        assert_eq!((*cases_after, *cases_alone), (2, 1), "{kernel}");
        assert_eq!(outcomes_after, outcomes_alone, "{kernel}");
        // 16 maps of one page fit under 64 KiB, the 17th does not.
        assert_eq!(outcomes_alone.last().map(String::as_str), Some("EPERM (1)"));
        assert_eq!(outcomes_alone.iter().filter(|o| *o == "ok").count(), 16);
    }
}

#[test]
fn a_killed_harness_leaves_no_vm_behind() {
    if let Some((requirement, reason)) = requirements::vm_tools_missing() {
        requirements::missing(requirement, &reason);
        return;
    }
    let out_dir = tempfile::tempdir().expect("temp dir");
    let mut harness = smoke_run(&["--kernel", "6.1"], out_dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("harness runs");
    let harness_pid = harness.id() as i32;

    // The VM's processes: every member of the process groups of the harness's children.
    let vm_processes = || {
        let all = processes();
        let groups: HashSet<i32> = all
            .iter()
            .filter(|p| p.parent == harness_pid)
            .map(|p| p.group)
            .collect();
        all.into_iter()
            .filter(|p| groups.contains(&p.group) && p.pid != harness_pid)
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let running = loop {
        let running = vm_processes();
        if running.iter().any(|p| p.name.starts_with("qemu-system")) {
            break running;
        }
        assert!(Instant::now() < deadline, "no QEMU showed up: {running:?}");
        std::thread::sleep(Duration::from_millis(100));
    };

    kill(Pid::from_raw(harness_pid), Signal::SIGKILL).unwrap();
    harness.wait().unwrap();

    let pids: HashSet<i32> = running.iter().map(|p| p.pid).collect();
    let guests = out_dir.path().join("guests");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<Process> = processes()
            .into_iter()
            .filter(|p| pids.contains(&p.pid))
            .collect();
        let guest_dirs = std::fs::read_dir(&guests).map_or(0, |dir| dir.count());
        if left.is_empty() && guest_dirs == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline || !left.is_empty(),
            "the killed harness left {guest_dirs} guest directories in {}",
            guests.display()
        );
        assert!(
            Instant::now() < deadline,
            "VM processes outlived the killed harness: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Debug)]
struct Process {
    pid: i32,
    parent: i32,
    group: i32,
    name: String,
}

/// Live processes (zombies left out), from /proc.
fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (name) state ppid pgrp ...": the name may hold spaces and parentheses.
            let name = &stat[stat.find('(')? + 1..stat.rfind(')')?];
            let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
            let state = rest.next()?;
            let parent = rest.next()?.parse().ok()?;
            let group = rest.next()?.parse().ok()?;
            (state != "Z" && state != "X").then(|| Process {
                pid,
                parent,
                group,
                name: name.to_string(),
            })
        })
        .collect()
}

/// vng 1.42 pastes paths unquoted into `/bin/sh` command lines. Every kind of path a user or
/// a repository hands the harness, named to run a command there (`$(…)`, backticks, `;`,
/// quotes, spaces, newlines), boots its kernel and runs nothing: `--kernel` paths,
/// kernels.toml's `local` image and modules, `HARNESS_KERNELS_DIR`, `XDG_CACHE_HOME` (the
/// Debian kernel's image and modules come from there) and `--out`. Each command would
/// create a marker of its own kind beside `$SK_MARK`.
#[test]
fn paths_named_to_run_commands_boot_their_kernels_and_run_nothing() {
    if let Some((requirement, reason)) = requirements::vm_tools_missing() {
        requirements::missing(requirement, &reason);
        return;
    }
    let Some(kernels_dir) = std::env::var_os("HARNESS_KERNELS_DIR") else {
        requirements::missing(
            Requirement::OldKernels,
            "HARNESS_KERNELS_DIR is not set: 5.4 is one of this project's builds",
        );
        return;
    };
    let (vng, debian) = match vm_support::prerequisites() {
        Ok(found) => found,
        Err((requirement, reason)) => {
            requirements::missing(requirement, &reason);
            return;
        }
    };
    let harness::vm::KernelArg::Image {
        vmlinuz: debian_image,
        modules: Some(debian_modules),
        ..
    } = &debian.arg
    else {
        panic!("Debian's 6.1 is an image with modules: {:?}", debian.arg);
    };
    let old_image = Path::new(&kernels_dir).join("5.4.286/bzImage");
    let base = tempfile::tempdir().expect("temp dir");
    let hostile = |kind: &str, name: &str| {
        let dir = base
            .path()
            .join(name.replace("CMD", &format!("touch $SK_MARK.{kind}")));
        std::fs::create_dir_all(&dir).expect("a directory of that name");
        dir
    };
    let link = |target: &Path, link: PathBuf| {
        std::os::unix::fs::symlink(target, &link).expect("link");
        link
    };
    // `--kernel` takes the real path of what it is given: the image must be in such a place.
    let by_path = [
        hostile("kernel", "k `CMD` \"q\" 'q'"),
        hostile("newline", "k\n;CMD;\n"),
    ]
    .map(|dir| {
        let image = dir.join("bzImage");
        std::fs::copy(&old_image, &image).expect("a copy of 5.4's image");
        image
    });
    // kernels.toml's paths are taken as written: links of such names will do.
    let kernels_dir = hostile("kernels-dir", "kd$(CMD)");
    link(old_image.parent().unwrap(), kernels_dir.join("5.4.286"));
    let image = link(debian_image, hostile("local", "v;CMD;").join("vmlinuz"));
    let modules = link(
        debian_modules,
        hostile("modules", "m $(CMD)").join(&debian.release),
    );
    let cache = hostile("cache", "c\"q\" $(CMD)");
    link(
        &harness::cache_dir().expect("a cache directory"),
        cache.join("sk-storage-harness"),
    );
    let out = base.path().join("o$(touch${IFS}$SK_MARK.out)");
    let toml = |path: &Path| toml::Value::String(path.to_str().unwrap().into()).to_string();
    let kernels_toml = base.path().join("kernels.toml");
    std::fs::write(
        &kernels_toml,
        format!(
            "[[kernel]]\nname = \"kernels-dir\"\n\
             local = {{ vmlinuz = \"${{HARNESS_KERNELS_DIR}}/5.4.286/bzImage\" }}\n\
             [[kernel]]\nname = \"local\"\n\
             local = {{ vmlinuz = {}, modules = {} }}\n\
             [[kernel]]\nname = \"cache\"\n\
             debian = {{ suite = \"bookworm\", series = \"6.1\" }}\n",
            toml(&image),
            toml(&modules)
        ),
    )
    .expect("kernels.toml written");

    let output = crate::harness_command()
        .current_dir(repo_root())
        .args(["run", "--kernels"])
        .arg(&kernels_toml)
        .args([
            "--kernel",
            "kernels-dir",
            "--kernel",
            "local",
            "--kernel",
            "cache",
        ])
        .arg("--kernel")
        .arg(format!("by-path={}", by_path[0].display()))
        .arg("--kernel")
        .arg(format!("by-path-too={}", by_path[1].display()))
        .args(["-j", "2", "--filter", "update-noexist", "--out"])
        .arg(&out)
        .arg("cases")
        .env("HARNESS_KERNELS_DIR", &kernels_dir)
        .env("XDG_CACHE_HOME", &cache)
        .env("SK_MARK", base.path().join("marker"))
        .output()
        .expect("harness runs");
    let context = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let markers: Vec<String> = std::fs::read_dir(base.path())
        .expect("the test's directory")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with("marker"))
        .collect();
    assert!(markers.is_empty(), "commands ran: {markers:?}\n{context}");
    assert_eq!(output.status.code(), Some(0), "{context}");
    let results = harness::results::read_json(&out.join("results.json")).expect("results");
    let ran: Vec<(&str, &harness::results::KernelStatus, usize)> = results
        .kernels
        .iter()
        .map(|kernel| (kernel.kernel.as_str(), &kernel.status, kernel.cases.len()))
        .collect();
    assert_eq!(ran.len(), 5, "{ran:?}");
    for (kernel, status, cases) in ran {
        assert_eq!(
            (status, cases),
            (&harness::results::KernelStatus::Ran, 1),
            "{kernel}: {context}"
        );
    }

    // The control: such a path handed to vng as it is does run its command. The root's
    // is pasted into virtiofsd's command line, which virtme-run starts through a shell
    // (`--run`'s was too, before the carried fix that runs virtme-run in vng's process).
    let control = base.path().join("control");
    let root = base.path().join("r$(touch${IFS}$SK_MARK.root)");
    std::fs::create_dir(&root).expect("a directory of that name");
    Command::new(vng.program())
        .arg(format!("--run={}", old_image.display()))
        .arg(format!("--root={}", root.display()))
        .args(["--exec", "true", "--dry-run"])
        .env("PATH", vng.search_path())
        .env("SK_MARK", &control)
        .output()
        .expect("vng runs");
    assert!(
        control.with_extension("root").exists(),
        "vng no longer hands --root to a shell: the staging of paths (vm::safe_path) may go"
    );
}

/// A Debian kernel given as `debian:SUITE` needs no kernels.toml: the suite's newest kernel
/// of the default flavour is fetched, verified and booted, and named by its version.
#[test]
fn a_debian_kernel_given_by_suite_runs_and_records_without_a_kernel_list() {
    if let Some((requirement, reason)) = requirements::vm_tools_missing() {
        requirements::missing(requirement, &reason);
        return;
    }
    // The same suite's kernel, fetched here first: a machine without a mirror skips.
    if let Err((requirement, reason)) = vm_support::prerequisites() {
        requirements::missing(requirement, &reason);
        return;
    }
    // `record` takes its kernels as `run` does; with a case that agrees it proposes nothing.
    for command in ["run", "record"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("out");
        let run = crate::harness_command()
            // Outside the project: no kernels.toml is found.
            .current_dir(dir.path())
            .args([
                command,
                "--kernel",
                "debian:bookworm",
                "--case",
                "freeze-map",
                "--out",
            ])
            .arg(&out)
            .arg(repo_root().join("cases"))
            .output()
            .expect("the harness runs");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(0), "{command}: stderr: {stderr}");
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json"))
                .expect("JSON");
        let kernel = &results["kernels"][0];
        let name = kernel["kernel"].as_str().expect("a name");
        assert!(
            name.starts_with("6.1."),
            "{command}: named by its version: {name}"
        );
        assert_eq!(
            kernel["version"], name,
            "{command}: the guest reports the version it is named by"
        );
        assert_eq!(kernel["cases"][0]["outcome"]["status"], "pass", "{command}");
    }
}
