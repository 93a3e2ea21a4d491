//! VM benchmark: per kernel, `harness run --kernel K` against a bare `vng -r K --exec true`
//! of the same kernel with the same accelerator and vCPUs, as a user types it ("vng
//! boot"), and against the same bare boot with all the harness's VM settings (unused
//! modules blacklisted: "tuned boot", so the last ratio is what the harness's own work
//! costs). Fastest of BENCH_ROUNDS each (default 2). Then the whole matrix with `-j 2`
//! against `-j 1`. Prints figures and ratios measured in this one run; asserts nothing.
//!
//! cargo bench --bench matrix                      every kernel of kernels.toml
//! BENCH_KERNELS=6.1,7.3 cargo bench --bench matrix

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use harness::{
    kernels::{KernelCache, KernelsFile, NoProgress, ResolvedKernel, Resolver},
    vm::{self, Accel, KernelArg, VmRegistry, VmSpec, Vng},
};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_harness"));
    let file = KernelsFile::load(&root.join("kernels.toml")).expect("kernels.toml is valid");
    let wanted: Option<Vec<String>> = std::env::var("BENCH_KERNELS")
        .ok()
        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect());
    let cache = KernelCache::at(KernelCache::default_root().expect("a cache directory"));
    let mut resolver = Resolver::new(&file, cache).with_progress(&NoProgress);
    let mut kernels = Vec::new();
    for entry in &file.kernels {
        if wanted.as_ref().is_some_and(|w| !w.contains(&entry.name)) {
            continue;
        }
        match resolver.resolve(entry) {
            Ok(ResolvedKernel::Bootable(k)) => kernels.push((
                entry.name.clone(),
                KernelArg::Image {
                    vmlinuz: k.vmlinuz,
                    release: Some(k.release),
                },
            )),
            Ok(_) => eprintln!("{}: not a bootable image, left out", entry.name),
            Err(e) => eprintln!("{}: cannot fetch ({e}), left out", entry.name),
        }
    }
    let vng = Vng::locate().expect("vng is installed (scripts/setup-vm.sh)");
    let registry = VmRegistry::new();
    let Some((_, first)) = kernels.first() else {
        eprintln!("no kernel to measure");
        return;
    };
    let (accel, why) = vm::probe_accel(&vng, first, &registry, None).expect("accelerator probe");
    println!("{why}");
    println!(
        "{:<8} {:>10} {:>10} {:>12} {:>9} {:>9}",
        "kernel", "vng boot", "tuned boot", "harness run", "/vng", "/tuned"
    );
    let names: Vec<String> = kernels.iter().map(|(n, _)| n.clone()).collect();
    // Boot times vary by several seconds from one boot to the next under TCG: alternate the
    // measurements and keep the fastest of each.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    for (name, arg) in &kernels {
        let KernelArg::Image { vmlinuz, .. } = arg else {
            continue;
        };
        let tuned_spec = VmSpec::new(arg.clone(), accel, vec!["true".into()]).bare_boot();
        let mut vng_best = Duration::MAX;
        let mut tuned_best = Duration::MAX;
        let mut harness_best = Duration::MAX;
        for _ in 0..rounds {
            if let Some(took) = time_plain_vng(&vng, vmlinuz, accel) {
                vng_best = vng_best.min(took);
            }
            let started = Instant::now();
            let tuned = vm::run(&tuned_spec, &vng, &registry).expect("bare boot runs");
            if tuned.is_success() {
                tuned_best = tuned_best.min(started.elapsed());
            } else {
                println!(
                    "{name:<8} tuned bare boot failed: {:?}",
                    tuned.failure.map(|f| f.summary())
                );
            }
            harness_best =
                harness_best.min(time_harness(&exe, &root, &["--kernel", name, "-j", "1"]));
        }
        if vng_best == Duration::MAX || tuned_best == Duration::MAX {
            continue;
        }
        println!(
            "{name:<8} {:>9.1}s {:>9.1}s {:>11.1}s {:>8.2}x {:>8.2}x",
            vng_best.as_secs_f64(),
            tuned_best.as_secs_f64(),
            harness_best.as_secs_f64(),
            harness_best.as_secs_f64() / vng_best.as_secs_f64(),
            harness_best.as_secs_f64() / tuned_best.as_secs_f64()
        );
    }
    let kernel_args: Vec<&str> = names
        .iter()
        .flat_map(|n| ["--kernel", n.as_str()])
        .collect();
    let sequential = time_harness(
        &exe,
        &root,
        &[kernel_args.as_slice(), &["-j", "1"]].concat(),
    );
    let parallel = time_harness(
        &exe,
        &root,
        &[kernel_args.as_slice(), &["-j", "2"]].concat(),
    );
    println!(
        "whole matrix ({} kernels): -j 1 {:.1}s, -j 2 {:.1}s, ratio {:.2}",
        names.len(),
        sequential.as_secs_f64(),
        parallel.as_secs_f64(),
        parallel.as_secs_f64() / sequential.as_secs_f64()
    );
}

/// Wall time of `vng -r KERNEL --exec true` as a user types it (vng's own defaults for
/// memory and command line) on the same machine: `--disable-kvm` under TCG, and the
/// harness's vCPU count (vng's default is every host CPU, but under TCG two vCPUs crash
/// 7.3 guests, so the harness boots one); `None` if it failed.
fn time_plain_vng(vng: &Vng, vmlinuz: &Path, accel: Accel) -> Option<Duration> {
    let mut command = Command::new(vng.program());
    command
        .env("PATH", vng.search_path())
        .arg("-r")
        .arg(vmlinuz)
        .arg(format!("--cpus={}", accel.default_cpus()));
    if accel == Accel::Tcg {
        command.arg("--disable-kvm");
    }
    let started = Instant::now();
    let status = command
        .args(["--exec", "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("vng runs");
    let elapsed = started.elapsed();
    if status.success() {
        Some(elapsed)
    } else {
        eprintln!("vng -r {} --exec true exited {status}", vmlinuz.display());
        None
    }
}

/// Wall time of one `harness run` with these arguments over cases/.
fn time_harness(exe: &Path, root: &Path, args: &[&str]) -> Duration {
    let out = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let status = Command::new(exe)
        .current_dir(root)
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(out.path())
        .arg("cases")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("harness runs");
    let elapsed = started.elapsed();
    if !matches!(status.code(), Some(0 | 1)) {
        eprintln!("harness run {args:?} exited {status}: its time includes a failure");
    }
    elapsed
}
