//! VM benchmark: per kernel, `harness run --kernel K` against a bare `vng --exec true` boot
//! of the same kernel with the same accelerator (fastest of BENCH_ROUNDS each, default 2);
//! then the whole matrix with `-j 2` against `-j 1`. Prints figures and ratios measured in
//! this one run; asserts nothing.
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
    vm::{self, KernelArg, VmRegistry, VmSpec, Vng},
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
        "{:<8} {:>10} {:>12} {:>7}",
        "kernel", "bare boot", "harness run", "ratio"
    );
    let names: Vec<String> = kernels.iter().map(|(n, _)| n.clone()).collect();
    // Boot times vary by several seconds from one boot to the next under TCG: alternate the
    // two measurements and keep the fastest of each.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    for (name, arg) in &kernels {
        let bare_spec = VmSpec::new(arg.clone(), accel, vec!["true".into()]).bare_boot();
        let mut bare_best = Duration::MAX;
        let mut harness_best = Duration::MAX;
        for _ in 0..rounds {
            let started = Instant::now();
            let bare = vm::run(&bare_spec, &vng, &registry).expect("bare boot runs");
            if !bare.is_success() {
                println!(
                    "{name:<8} bare boot failed: {:?}",
                    bare.failure.map(|f| f.summary())
                );
                continue;
            }
            bare_best = bare_best.min(started.elapsed());
            harness_best =
                harness_best.min(time_harness(&exe, &root, &["--kernel", name, "-j", "1"]));
        }
        if bare_best == Duration::MAX {
            continue;
        }
        println!(
            "{name:<8} {:>9.1}s {:>11.1}s {:>6.2}x",
            bare_best.as_secs_f64(),
            harness_best.as_secs_f64(),
            harness_best.as_secs_f64() / bare_best.as_secs_f64()
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
