//! Times a bare boot (`vng --exec true`) of a kernel with the settings the harness uses, to
//! compare a harness run against.
//!
//! ```text
//! cargo run --release -p harness --example bare_boot -- --runs 3 path/to/vmlinuz
//! ```

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use harness::vm::{self, KernelArg, VmRegistry, VmSpec, Vng};

/// Boots a kernel with nothing to do and prints how long each boot took.
#[derive(Parser)]
struct Args {
    /// The kernel image to boot.
    vmlinuz: PathBuf,
    /// The release the image announces (decides 9p for kernels before 5.4).
    #[arg(long)]
    release: Option<String>,
    /// How many boots to time; the minimum is the figure to quote.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Let the guest's udev load every module it wants (the harness blacklists some).
    #[arg(long)]
    all_modules: bool,
    /// Extra kernel command-line words.
    #[arg(long)]
    append: Vec<String>,
    /// Use TCG without probing KVM first.
    #[arg(long)]
    tcg: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &Args) -> anyhow::Result<()> {
    let vng = Vng::locate()?;
    let registry = VmRegistry::new();
    registry.cancel_on_ctrl_c()?;
    let kernel = KernelArg::Image {
        vmlinuz: args.vmlinuz.clone(),
        release: args.release.clone(),
    };
    let accel = if args.tcg {
        vm::Accel::Tcg
    } else {
        let (accel, why) = vm::probe_accel(&vng, &kernel, &registry)?;
        eprintln!("{why}");
        accel
    };
    let mut spec = VmSpec::new(kernel, accel, Vec::new()).bare_boot();
    spec.skip_unused_modules = !args.all_modules;
    spec.append.clone_from(&args.append);

    let mut times: Vec<Duration> = Vec::new();
    for run in 1..=args.runs {
        let outcome = vm::run(&spec, &vng, &registry)?;
        if let Some(failure) = &outcome.failure {
            anyhow::bail!("boot {run} failed: {failure}\n{}", failure.detail());
        }
        eprintln!("boot {run}: {:.2}s", outcome.duration.as_secs_f64());
        times.push(outcome.duration);
    }
    let min = times.iter().min().copied().unwrap_or_default();
    println!(
        "{}: bare boot under {accel} with {} vCPU: min {:.2}s of {} runs",
        args.vmlinuz.display(),
        spec.cpus,
        min.as_secs_f64(),
        times.len()
    );
    Ok(())
}
