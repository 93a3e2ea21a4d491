//! Every case × kernel as its own test named `<kernel>::<case>` (libtest-mimic), so that
//! cargo test and nextest name, list, filter and report each one:
//!
//! - `host::<case>` runs on the running kernel;
//! - `<kernel>::<case>`, for each VM kernel of kernels.toml, is ignored unless
//!   `HARNESS_TEST_KERNELS` (comma-separated names) lists the kernel, or `--ignored` /
//!   `--include-ignored` (nextest: `--run-ignored`) asks for it.
//!
//! `cargo test --test cases -- 6.1::` runs 6.1's trials. A kernel boots once, at its first
//! trial, running every case of it that the run selected; its trials read their results from
//! that boot. Under nextest, which runs each test in its own process, the first process of the
//! run to need a kernel boots it with all its cases and the others read the results it leaves
//! (`NEXTEST_RUN_ID` names the run).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

#[path = "support/requirements.rs"]
mod requirements;

use harness::{
    case::{self, Case},
    exec,
    kernels::{KernelEntry, KernelSource, KernelsFile},
    report::human::Human,
    results::{CaseOutcome, CaseResult, KernelRun, KernelStatus},
};
use libtest_mimic::{Arguments, Failed, Trial};
use requirements::Requirement;

/// The kernels whose trials run without `--ignored`.
const KERNELS_ENV: &str = "HARNESS_TEST_KERNELS";

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // Host cases fork and place sockets on chosen descriptor numbers, and VMs share two
    // cores: one trial at a time.
    args.test_threads = Some(1);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cases = match case::load(&[root.join("cases")]) {
        Ok(cases) => cases,
        Err(errors) => {
            eprintln!("{errors}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let file = match KernelsFile::load(&root.join("kernels.toml")) {
        Ok(file) => Arc::new(file),
        Err(e) => {
            eprintln!("{}", harness::error_chain(&e));
            return std::process::ExitCode::FAILURE;
        }
    };
    let wanted = match wanted_kernels(&file) {
        Ok(wanted) => wanted,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::FAILURE;
        }
    };

    let mut trials = host_trials(&cases);
    trials.push(no_state_left_behind(&cases));
    let mut vm_trials = Vec::new();
    for entry in file
        .kernels
        .iter()
        .filter(|k| k.source != KernelSource::Host)
    {
        let boot = Arc::new(Boot {
            file: Arc::clone(&file),
            entry: entry.clone(),
            all: cases.clone(),
            selected: Mutex::new(Vec::new()),
            run: OnceLock::new(),
        });
        for case in &cases {
            let (shared, name) = (Arc::clone(&boot), case.name.clone());
            let trial = Trial::test(format!("{}::{}", entry.name, case.name), move || {
                shared.outcome(&name)
            })
            .with_ignored_flag(!wanted.contains(&entry.name));
            // The boot runs the cases whose trials this invocation will run.
            if !args.is_filtered_out(&trial) && !args.is_ignored(&trial) {
                boot.selected
                    .lock()
                    .expect("selection lock")
                    .push(case.clone());
            }
            vm_trials.push(trial);
        }
    }
    trials.extend(vm_trials);
    libtest_mimic::run(&args, trials).exit_code()
}

/// The names in `HARNESS_TEST_KERNELS`, each a VM kernel of the list.
fn wanted_kernels(file: &KernelsFile) -> Result<Vec<String>, String> {
    let list = std::env::var(KERNELS_ENV).unwrap_or_default();
    let names: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(String::from)
        .collect();
    for name in &names {
        if !file
            .kernels
            .iter()
            .any(|k| k.name == *name && k.source != KernelSource::Host)
        {
            return Err(format!(
                "{KERNELS_ENV} names `{name}`, which is no VM kernel of {}",
                file.path.display()
            ));
        }
    }
    Ok(names)
}

/// `host::<case>`: each case on the running kernel.
fn host_trials(cases: &[Case]) -> Vec<Trial> {
    let preflight = exec::preflight().map_err(|e| e.to_string());
    // Without root or BPF the cases cannot run: listed as ignored, with the reason printed
    // below, rather than failed; unless the environment declares those requirements.
    let required = Requirement::Root.is_declared() || Requirement::Bpf.is_declared();
    if let Err(reason) = &preflight {
        eprintln!("host cases are ignored: {reason}");
    }
    cases
        .iter()
        .map(|case| {
            let preflight = preflight.clone();
            let ignored = preflight.is_err() && !required;
            let case = case.clone();
            Trial::test(format!("host::{}", case.name), move || {
                let (version, _) =
                    preflight.map_err(|e| Failed::from(format!("cannot run here: {e}")))?;
                let result = exec::run_case(&case, version);
                let run = KernelRun {
                    version: Some(version),
                    ..KernelRun::without_cases("host", KernelStatus::Ran)
                };
                judge(&run, &result, is_host_limitation)
            })
            .with_ignored_flag(ignored)
        })
        .collect()
}

/// `host::no-state-left-behind`: every case, twice over, leaves the process as the first
/// pass left it (the eBPF object, loaded by the first BPF case, stays): no descriptor, limit,
/// user, cgroup or network namespace of a case outlives it, and no program or link it loaded.
fn no_state_left_behind(cases: &[Case]) -> Trial {
    let cases = cases.to_vec();
    let ignored = exec::preflight().is_err()
        && !(Requirement::Root.is_declared() || Requirement::Bpf.is_declared());
    Trial::test("host::no-state-left-behind", move || {
        exec::run_cases("host", &cases, |_| {}).map_err(|e| Failed::from(e.to_string()))?;
        let before = ProcessState::now();
        exec::run_cases("host", &cases, |_| {}).map_err(|e| Failed::from(e.to_string()))?;
        let after = ProcessState::now();
        if before == after {
            Ok(())
        } else {
            Err(format!("a case left state behind:\nbefore {before:#?}\nafter {after:#?}").into())
        }
    })
    .with_ignored_flag(ignored)
}

/// What a case could leave behind in the process that runs the cases.
#[derive(Debug, PartialEq)]
struct ProcessState {
    descriptors: usize,
    memlock: (u64, u64),
    nofile: (u64, u64),
    uid: u32,
    cgroup: String,
    netns: String,
    bpf_programs: usize,
    bpf_links: usize,
}

impl ProcessState {
    fn now() -> Self {
        use aya_obj::generated::bpf_cmd::{BPF_LINK_GET_NEXT_ID, BPF_PROG_GET_NEXT_ID};
        use nix::sys::resource::{Resource, getrlimit};
        let count = |dir: &str| std::fs::read_dir(dir).map_or(0, |d| d.count());
        Self {
            descriptors: count("/proc/self/fd"),
            memlock: getrlimit(Resource::RLIMIT_MEMLOCK).expect("getrlimit"),
            nofile: getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit"),
            uid: nix::unistd::getuid().as_raw(),
            cgroup: std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            netns: std::fs::read_link("/proc/thread-self/ns/net")
                .map(|l| l.display().to_string())
                .unwrap_or_default(),
            bpf_programs: bpf_ids(BPF_PROG_GET_NEXT_ID),
            bpf_links: bpf_ids(BPF_LINK_GET_NEXT_ID),
        }
    }
}

/// How many BPF objects of a kind the kernel holds (programs, links), counted by id.
fn bpf_ids(command: aya_obj::generated::bpf_cmd) -> usize {
    // `union bpf_attr` for the *_GET_NEXT_ID commands: start_id, next_id.
    let mut attr = [0u32; 4];
    let mut count = 0;
    loop {
        // SAFETY: bpf(2) reads start_id and writes next_id within the attr we own.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                command as libc::c_int,
                attr.as_mut_ptr(),
                std::mem::size_of_val(&attr),
            )
        };
        if rc != 0 {
            return count;
        }
        attr[0] = attr[1];
        count += 1;
    }
}

/// Skips the host may show: what the machine forbids or its kernel lacks, found by probing
/// (programs or the map iterator refused outright, BPF LSM off, a program type or flag the kernel
/// does not have, a kernel older than a case requires). Any other skip, e.g. a probe that
/// fails to tell, fails the test; the VM smoke run pins the exact skips per kernel.
fn is_host_limitation(reason: &str) -> bool {
    [
        "before verifying an instruction (EPERM, no verifier log)",
        "BPF LSM is not enabled",
        "(loading a trivial one fails before the verifier)",
        "this kernel refuses BPF_F_CLONE",
        "or later; this is",
    ]
    .iter()
    .any(|known| reason.contains(known))
}

/// A pass, or a skip `accepted` says the kernel may show, passes (the skip says so on
/// stderr); anything else fails with the case as `harness run` prints it.
fn judge(run: &KernelRun, result: &CaseResult, accepted: fn(&str) -> bool) -> Result<(), Failed> {
    match &result.outcome {
        CaseOutcome::Pass => Ok(()),
        CaseOutcome::Skipped { reason } if accepted(reason) => {
            eprintln!("{}::{}: skipped: {reason}", run.kernel, result.name);
            Ok(())
        }
        _ => {
            let mut text = Vec::new();
            let run = KernelRun {
                duration_ms: result.duration_ms,
                cases: vec![result.clone()],
                ..run.clone()
            };
            Human::plain()
                .kernel_summary(&mut text, &run)
                .map_err(|e| Failed::from(e.to_string()))?;
            Err(String::from_utf8_lossy(&text).into_owned().into())
        }
    }
}

/// One VM kernel's boot, shared by its trials.
struct Boot {
    file: Arc<KernelsFile>,
    entry: KernelEntry,
    all: Vec<Case>,
    /// The cases this invocation runs on the kernel, known before the first trial starts.
    selected: Mutex<Vec<Case>>,
    run: OnceLock<Result<KernelRun, String>>,
}

impl Boot {
    /// The trial of case `name`: the boot's verdict on it.
    fn outcome(&self, name: &str) -> Result<(), Failed> {
        if let Some((requirement, reason)) =
            requirements::vm_tools_missing().or_else(|| requirements::kernel_missing(&self.entry))
        {
            requirements::missing(requirement, &reason);
            return Ok(());
        }
        let run = self.run.get_or_init(|| self.results());
        let run = run.as_ref().map_err(|e| Failed::from(e.clone()))?;
        match &run.status {
            KernelStatus::Ran => {}
            // A run that names its kernel skips none: an absent one is caught above.
            KernelStatus::Skipped { reason } => {
                return Err(format!("kernel {} was skipped: {reason}", run.kernel).into());
            }
            KernelStatus::Error { message, log_tail } => {
                return Err(format!(
                    "kernel {} failed: {message}\n{}",
                    run.kernel,
                    log_tail.as_deref().unwrap_or("")
                )
                .into());
            }
        }
        let result = run
            .cases
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("the boot of {} did not run {name}", run.kernel))?;
        // Skips in a VM are the kernel's own (a feature it lacks, probed); the smoke run
        // in tests/integration/matrix.rs pins which.
        judge(run, result, |_| true)
    }

    /// This invocation's boot, or under nextest the run's boot of every case, which the
    /// first process to get here makes and the others read.
    fn results(&self) -> Result<KernelRun, String> {
        let Ok(run_id) = std::env::var("NEXTEST_RUN_ID") else {
            let selected = self.selected.lock().expect("selection lock").clone();
            return boot(&self.file, &self.entry, &selected);
        };
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cases-{run_id}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock_path = dir.join(format!("{}.lock", self.entry.name));
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("cannot lock {}: {e}", lock_path.display()))?;
        let saved = dir.join(format!("{}.json", self.entry.name));
        if let Ok(text) = std::fs::read_to_string(&saved) {
            return serde_json::from_str::<Result<KernelRun, String>>(&text)
                .map_err(|e| format!("{}: {e}", saved.display()))?;
        }
        let run = boot(&self.file, &self.entry, &self.all);
        let text = serde_json::to_string(&run).expect("results serialise");
        std::fs::write(&saved, text).map_err(|e| format!("{}: {e}", saved.display()))?;
        run
    }
}

/// Boots `entry` once and runs `cases` in it: `harness run --kernel` in a process of its
/// own, which owns Ctrl-C (a process may install that handler only once, and a run may
/// boot several kernels).
fn boot(file: &KernelsFile, entry: &KernelEntry, cases: &[Case]) -> Result<KernelRun, String> {
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    // Outside GitHub Actions whatever runs the tests: a run there writes the job's summary.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("run")
        .arg("--kernels")
        .arg(&file.path)
        .args(["--kernel", &entry.name, "--out"])
        .arg(out.path())
        .args(cases.iter().map(|case| &case.file))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the harness: {e}"))?;
    let path = out.path().join(harness::results::RESULTS_JSON);
    let results = harness::results::read_json(&path).map_err(|e| {
        format!(
            "{}\n{}",
            harness::error_chain(&e),
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    results
        .kernels
        .into_iter()
        .next()
        .ok_or_else(|| format!("the run of {} reported no kernel", entry.name))
}
