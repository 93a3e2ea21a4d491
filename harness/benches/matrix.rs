//! VM benchmark: per kernel, `harness run --kernel K` against a bare QEMU boot of the same
//! kernel, measured alternated in one run, fastest of BENCH_ROUNDS (default 2) each:
//!
//! - **bare**: QEMU alone, with the guests' accelerator, vCPUs, memory and machine, booting
//!   the kernel with a one-file initramfs (a static busybox of the kernel's architecture as
//!   init, which powers off at once): what the kernel itself costs;
//! - **vng**: `vng -r K --exec true` as a user types it (with the guests' accelerator and
//!   vCPUs, and `--force-9p` for a kernel known to need it);
//! - **one**: `harness run --kernel K -j 1 --case freeze-map`, one case without programs:
//!   the VM machinery's cost;
//! - **all**: `harness run --kernel K -j 1`, every case.
//!
//! An arm64 kernel on an x86_64 host has no vng column: its guests boot on their own
//! minimal root, which vng as a user types it does not have.
//!
//! Then where each harness run's time went (its phases, from results.json), the slowest
//! cases, and the whole matrix at `-j 2`. Prints figures and ratios; asserts nothing.
//!
//! cargo bench --bench matrix                      every kernel of kernels.toml
//! BENCH_KERNELS=6.1,7.3 BENCH_ROUNDS=3 cargo bench --bench matrix

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use harness::{
    kernels::{KernelCache, KernelsFile, NoProgress, ResolvedKernel, Resolver},
    results::KernelRun,
    vm::{self, Accel, Arch, KernelArg, Phases, VmRegistry, Vng},
};

/// vng's guest memory, which the harness keeps: the bare boot gets the same.
const MEMORY: &str = "1G";

/// The case of the "one case" column: userspace map calls only, no eBPF object.
const ONE_CASE: &str = "freeze-map";

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_harness"));
    let file = KernelsFile::load(&root.join("kernels.toml")).expect("kernels.toml is valid");
    let wanted: Option<Vec<String>> = std::env::var("BENCH_KERNELS")
        .ok()
        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect());
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let cache = KernelCache::at(KernelCache::default_root().expect("a cache directory"));
    let mut resolver = Resolver::new(&file, cache).with_progress(&NoProgress);
    let mut kernels = Vec::new();
    for entry in &file.kernels {
        if wanted.as_ref().is_some_and(|w| !w.contains(&entry.name)) {
            continue;
        }
        match resolver.resolve(entry) {
            Ok(ResolvedKernel::Bootable(k)) => {
                kernels.push((entry.name.clone(), k.vmlinuz, entry.arch))
            }
            Ok(_) => eprintln!("{}: not a bootable image here, left out", entry.name),
            Err(e) => eprintln!("{}: cannot fetch ({e}), left out", entry.name),
        }
    }
    let vng = Vng::locate().expect("vng is installed (scripts/setup-vm.sh)");
    let Some((_, first, _)) = kernels.iter().find(|(_, _, arch)| arch.is_host()) else {
        eprintln!("no kernel of this machine's architecture to measure");
        return;
    };
    let first = KernelArg::Image {
        vmlinuz: first.clone(),
        release: None,
        modules: None,
    };
    let memo = |file: &str| harness::cache_dir().map(|dir| dir.join(file));
    let accel_memo = memo("accel-probe.json");
    let (accel, why) = vm::probe_accel(&vng, &first, &VmRegistry::new(), accel_memo.as_deref())
        .expect("accelerator probe");
    // vng as a user types it cannot boot a kernel that needs 9p without being told.
    let nine_p = memo("root-over-9p.json").map(vm::NinePMemo::at);
    println!("{why}; fastest of {rounds} alternated rounds");
    let work = tempfile::tempdir().expect("temp dir");
    let host_busybox = std::env::split_paths(vng.search_path())
        .map(|dir| dir.join("busybox"))
        .find(|path| path.is_file())
        .expect("busybox is installed (scripts/setup-vm.sh)");
    let mut initramfs = std::collections::HashMap::new();
    for (name, _, arch) in &kernels {
        if initramfs.contains_key(arch) {
            continue;
        }
        let busybox = if arch.is_host() {
            host_busybox.clone()
        } else {
            let tools = resolver
                .guest_tools(name, *arch)
                .expect("the guest tools of the architecture");
            let dir = work.path().join(arch.name());
            std::fs::create_dir_all(&dir).expect("a directory for them");
            tools.extract(&dir).expect("busybox is extracted").busybox
        };
        let path = work.path().join(format!("busybox-{arch}.cpio"));
        busybox_initramfs(&busybox, &path);
        initramfs.insert(*arch, path);
    }

    // "one" runs a single case without programs, so that its ratio to bare is the VM
    // machinery's cost (vng, the shares, init, the harness's start); "all" every case.
    println!(
        "{:<10} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
        "kernel", "bare", "vng", "one", "all", "vng/bare", "one/bare", "all/bare"
    );
    let mut phases = Vec::new();
    for (name, vmlinuz, arch) in &kernels {
        // bare, vng, one case, all cases
        let mut best = [Duration::MAX; 4];
        let mut best_runs: [Option<KernelRun>; 2] = [None, None];
        for _ in 0..rounds {
            let bare = time_bare_qemu(&vng, vmlinuz, &initramfs[arch], *arch, accel);
            // vng as a user types it boots on the host's root, which another architecture's
            // guests cannot use.
            let plain = arch
                .is_host()
                .then(|| {
                    let over_9p = nine_p.as_ref().is_some_and(|memo| {
                        memo.needs_9p(&KernelArg::Image {
                            vmlinuz: vmlinuz.clone(),
                            release: None,
                            modules: None,
                        })
                    });
                    time_plain_vng(&vng, vmlinuz, accel, over_9p)
                })
                .flatten();
            let one = harness_run(
                &exe,
                &root,
                &["--kernel", name, "-j", "1", "--case", ONE_CASE],
            );
            let all = harness_run(&exe, &root, &["--kernel", name, "-j", "1"]);
            for (slot, took) in [bare, plain].into_iter().enumerate() {
                if let Some(took) = took {
                    best[slot] = best[slot].min(took);
                }
            }
            for (index, run) in [one, all].into_iter().enumerate() {
                let Some((took, run)) = run else { continue };
                if took < best[2 + index] {
                    best[2 + index] = took;
                    best_runs[index] = run.kernels.into_iter().next();
                }
            }
        }
        let secs = |d: Duration| {
            if d == Duration::MAX {
                "-".to_string()
            } else {
                format!("{:.2}s", d.as_secs_f64())
            }
        };
        let ratio = |d: Duration| {
            if d == Duration::MAX || best[0] == Duration::MAX {
                "-".to_string()
            } else {
                format!("{:.2}x", d.as_secs_f64() / best[0].as_secs_f64())
            }
        };
        println!(
            "{name:<10} {:>6} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
            secs(best[0]),
            secs(best[1]),
            secs(best[2]),
            secs(best[3]),
            ratio(best[1]),
            ratio(best[2]),
            ratio(best[3]),
        );
        let [one, all] = best_runs;
        phases.push((name.clone(), one, all));
    }

    println!("\nphases of those runs (s): one case → all cases");
    let header = Phases::NAMES;
    println!("{:<10} {}", "kernel", header.join(" | "));
    for (name, one, all) in &phases {
        let cells: Vec<String> = (0..header.len())
            .map(|i| {
                let at = |run: &Option<KernelRun>| {
                    run.as_ref()
                        .and_then(|run| run.phases)
                        .map(|p| format!("{:.2}", p.named()[i].1 as f64 / 1000.0))
                        .unwrap_or_else(|| "?".into())
                };
                format!("{} → {}", at(one), at(all))
            })
            .collect();
        println!("{name:<10} {}", cells.join(" | "));
    }
    println!("\nslowest cases of the all-cases runs");
    for (name, _, all) in &phases {
        let Some(all) = all else { continue };
        let mut cases: Vec<(&str, u64)> = all
            .cases
            .iter()
            .map(|case| (case.name.as_str(), case.duration_ms))
            .collect();
        cases.sort_by_key(|(_, ms)| std::cmp::Reverse(*ms));
        let slowest: Vec<String> = cases
            .iter()
            .take(3)
            .map(|(case, ms)| format!("{case} {ms} ms"))
            .collect();
        println!("{name:<10} {}", slowest.join(", "));
    }

    let kernel_args: Vec<&str> = kernels
        .iter()
        .flat_map(|(n, _, _)| ["--kernel", n.as_str()])
        .collect();
    let whole = |extra: &[&str]| {
        harness_run(
            &exe,
            &root,
            &[kernel_args.as_slice(), &["-j", "2"], extra].concat(),
        )
        .map(|(took, _)| took.as_secs_f64())
    };
    if let Some(took) = whole(&[]) {
        println!(
            "\nwhole matrix ({} kernels, every case) at -j 2: {took:.1}s",
            kernels.len()
        );
    }
}

/// Writes to `path` a newc archive holding only `busybox`, as `/busybox`.
fn busybox_initramfs(busybox: &Path, path: &Path) {
    let input = File::open(busybox).expect("busybox is readable");
    let entry = cpio::NewcBuilder::new("busybox").mode(0o100_755).nlink(1);
    cpio::write_cpio(
        std::iter::once((entry, input)),
        File::create(path).expect("temp file"),
    )
    .expect("the initramfs is written");
}

/// QEMU booting `vmlinuz` into busybox, which powers off at once (`rdinit=/busybox --
/// poweroff -f`), on the guests' machine (x86_64: vng's q35; arm64: virt) and CPU
/// (`Arch::emulated_cpu` under TCG) with their accelerator (TCG for another architecture), vCPUs
/// and memory; `None` if it did not power off.
fn time_bare_qemu(
    vng: &Vng,
    vmlinuz: &Path,
    initramfs: &Path,
    arch: Arch,
    accel: Accel,
) -> Option<Duration> {
    let accel = if arch.is_host() { accel } else { Accel::Tcg };
    // Under KVM the guests get vng's `-cpu host`, which `max` is there.
    let cpu = if accel == Accel::Kvm {
        "max"
    } else {
        arch.emulated_cpu()
    };
    let (machine, console) = match arch {
        Arch::X86_64 => ("q35", "ttyS0"),
        Arch::Arm64 => ("virt", "ttyAMA0"),
    };
    let qemu = vng
        .require_qemu(arch)
        .expect("QEMU for the kernel's architecture");
    let started = Instant::now();
    let output = Command::new(qemu)
        .args(["-accel", if accel == Accel::Kvm { "kvm" } else { "tcg" }])
        .args(["-smp", &accel.default_cpus().to_string(), "-m", MEMORY])
        .args(["-machine", machine, "-cpu", cpu, "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        .args([
            "-append",
            &format!("console={console} panic=-1 rdinit=/busybox -- poweroff -f"),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("QEMU runs");
    let took = started.elapsed();
    let console = String::from_utf8_lossy(&output.stdout);
    if console.contains(vm::console::CLEAN_POWER_OFF) {
        Some(took)
    } else {
        eprintln!("bare boot of {} did not power off", vmlinuz.display());
        None
    }
}

/// Wall time of `vng -r KERNEL --exec true` as a user types it, with the guests'
/// accelerator and vCPUs (and `--force-9p` for a kernel that needs it); `None` if it
/// failed.
fn time_plain_vng(vng: &Vng, vmlinuz: &Path, accel: Accel, over_9p: bool) -> Option<Duration> {
    let mut command = Command::new(vng.program());
    command
        .env("PATH", vng.search_path())
        .arg("-r")
        .arg(vmlinuz)
        .arg(format!("--cpus={}", accel.default_cpus()));
    if accel == Accel::Tcg {
        command.arg("--disable-kvm");
    }
    if over_9p {
        command.arg("--force-9p");
    }
    let started = Instant::now();
    let status = command
        .args(["--exec", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("vng runs");
    let took = started.elapsed();
    status.success().then_some(took)
}

/// Wall time and results of one `harness run` with these arguments over cases/; `None` if
/// it did not run every kernel.
fn harness_run(
    exe: &Path,
    root: &Path,
    args: &[&str],
) -> Option<(Duration, harness::results::RunResults)> {
    let out = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let status = Command::new(exe)
        .current_dir(root)
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out.path())
        .arg("cases")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("harness runs");
    let took = started.elapsed();
    if !matches!(status.code(), Some(0 | 1)) {
        eprintln!("harness run {args:?} exited {status}: left out");
        return None;
    }
    let results = harness::results::read_json(&out.path().join(harness::results::RESULTS_JSON))
        .expect("the run wrote its results");
    Some((took, results))
}
