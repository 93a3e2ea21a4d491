//! The run loop: each step's action goes to the module of its concern, which performs it
//! on the world, and its outcome is judged against the expectation in force.

use std::time::{Duration, Instant};

use super::{inspect, maps, process, programs, sockets, threads, world::World};
use crate::{
    case::{Action, Step},
    results::{Actual, StepResult, Verdict},
    version::KernelVersion,
};

/// Every step of the case, in order, judged against the expectation for `version`.
pub(super) fn run_all(world: &mut World<'_>, version: KernelVersion) -> Vec<StepResult> {
    let mut results = Vec::new();
    for step in &world.case.steps {
        if world.left_behind.is_marked() {
            break;
        }
        run(world, step, version, &mut results);
    }
    results
}

fn run(world: &mut World<'_>, step: &Step, version: KernelVersion, out: &mut Vec<StepResult>) {
    let (actual, children) = perform(world, step);
    let mut result = judge(step, actual, version);
    // A step with `within` asks again until its expectation holds: the kernel frees
    // some things later (a closed map's storages, after an RCU grace period).
    if let Some(deadline) = step
        .within
        .and_then(|within| Instant::now().checked_add(within))
    {
        while result.verdict == Verdict::Diverged
            && Instant::now() < deadline
            && !world.left_behind.is_marked()
        {
            std::thread::sleep(Duration::from_millis(10));
            result = judge(step, perform(world, step).0, version);
        }
    }
    out.push(result);
    for (child, actual) in step.children.iter().zip(children) {
        out.push(judge(child, actual, version));
    }
}

/// The step's outcome and, for a fork, each of its children's.
fn perform(world: &mut World<'_>, step: &Step) -> (Actual, Vec<Actual>) {
    let performed = match &step.action {
        Action::Maps(action) => maps::perform(world, action),
        Action::Sockets(action) => sockets::perform(world, action),
        Action::Programs(action) => programs::perform(world, action),
        Action::Threads(action) => threads::perform(world, action),
        Action::Inspect(action) => inspect::perform(world, action),
        Action::Process(action) => return process::perform(world, action, &step.children),
    };
    let (Ok(actual) | Err(actual)) = performed;
    (actual, Vec::new())
}

fn judge(step: &Step, actual: Actual, version: KernelVersion) -> StepResult {
    // This binary runs on its own architecture's kernels only.
    let arch = crate::vm::Arch::host().unwrap_or_default();
    let variant = step.expect.for_kernel(version, arch);
    let (expected, reason, since) = match variant {
        Some(v) => (v.outcome.clone(), v.reason.clone(), v.range.since),
        None => unreachable!("validation makes variants cover every kernel a case runs on"),
    };
    StepResult {
        line: step.line,
        reason,
        since,
        ..StepResult::judged(step.id.clone(), step.label.clone(), expected, actual)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use aya_obj::generated::bpf_cmd;

    use super::*;
    use crate::exec::sys::scripted::Scripted;
    use std::os::fd::AsRawFd;

    use crate::{case::Case, exec::isolation::LeftBehind};

    fn case(text: &str) -> Case {
        crate::case::parse(Path::new("cases/x.yaml"), text).expect("valid case")
    }

    fn verdicts(results: &[StepResult]) -> Vec<(String, Verdict)> {
        results.iter().map(|r| (r.id.clone(), r.verdict)).collect()
    }

    #[test]
    fn keys_are_the_socket_fd_padded_and_values_fill_the_larger_size() {
        let case = case(
            "name: x\ndescription: d\nmaps:\n  store: { key: u64, value: u16, value_size: 8 }\n\
             sockets:\n  s: { family: inet }\nsteps:\n\
             \x20 - update: { map: store, socket: s, value: 7, flags: NOEXIST }\n    expect: ok\n\
             \x20 - lookup: { map: store, socket: s }\n    expect: { value: 7 }\n",
        );
        let kernel = Scripted::default();
        kernel
            .replies
            .lock()
            .unwrap()
            .extend([Ok(Vec::new()), Ok(7u16.to_le_bytes().to_vec())]);
        let running = LeftBehind::default();
        let mut world = World::new(&case, &kernel, None, &running);
        let results = run_all(&mut world, KernelVersion::new(6, 1, 0));
        assert!(
            results.iter().all(|r| r.verdict == Verdict::Pass),
            "{results:#?}"
        );
        // The declared sizes, NO_PREALLOC by default, BTF described.
        assert_eq!(*kernel.created.lock().unwrap(), [(8, 8, 1, true)]);
        let fd = world.fds["s"].as_raw_fd();
        let calls = kernel.elem_calls.lock().unwrap();
        assert_eq!(calls[0].0, bpf_cmd::BPF_MAP_UPDATE_ELEM);
        let mut key = fd.to_le_bytes().to_vec();
        key.resize(8, 0);
        assert_eq!(
            calls[0].1, key,
            "the fd as a C int, zero-padded to the key size"
        );
        assert_eq!(
            (calls[0].2, calls[0].3),
            (8, 1),
            "value buffer and BPF_NOEXIST"
        );
        assert_eq!(calls[1].0, bpf_cmd::BPF_MAP_LOOKUP_ELEM);
        let lookup = results.iter().find(|r| r.id == "2").expect("lookup step");
        assert_eq!(
            lookup.actual,
            Actual::Value {
                value: serde_json::json!(7)
            }
        );
    }

    #[test]
    fn the_variant_in_force_judges_what_the_kernel_answered() {
        let text = "name: x\ndescription: d\nmaps:\n  store: { value: u32 }\n\
                    sockets:\n  s: { family: inet }\nsteps:\n\
                    \x20 - lookup_batch: { map: store, sockets: [s] }\n    expect:\n\
                    \x20     - { until: \"5.6\", expect: EINVAL, reason: no batch commands }\n\
                    \x20     - { since: \"5.6\", expect: ENOTSUPP, reason: no batch ops }\n";
        let case = case(text);
        let kernel = Scripted {
            batch_reply: Some(524),
            ..Scripted::default()
        };
        let new = run_all(
            &mut World::new(&case, &kernel, None, &LeftBehind::default()),
            KernelVersion::new(6, 1, 0),
        );
        let old = run_all(
            &mut World::new(&case, &kernel, None, &LeftBehind::default()),
            KernelVersion::new(5, 4, 0),
        );
        let batch = |results: &[StepResult]| {
            results
                .iter()
                .find(|r| r.id == "1")
                .expect("batch step")
                .clone()
        };
        assert_eq!(batch(&new).verdict, Verdict::Pass, "{new:#?}");
        assert_eq!(batch(&new).reason.as_deref(), Some("no batch ops"));
        let on_old = batch(&old);
        assert_eq!(on_old.verdict, Verdict::Diverged);
        assert_eq!(
            on_old.expected,
            crate::case::Expected::Errno("EINVAL".into())
        );
        assert_eq!(on_old.actual, Actual::errno(524));
    }

    #[test]
    fn a_closed_socket_key_is_its_old_number_and_errnos_are_named() {
        let case = case(
            "name: x\ndescription: d\nmaps:\n  store: { value: u32 }\n\
             sockets:\n  s: { family: inet }\nsteps:\n\
             \x20 - close: s\n    expect: ok\n\
             \x20 - delete: { map: store, closed_socket: s }\n    expect: EBADF\n",
        );
        let kernel = Scripted::default();
        kernel.replies.lock().unwrap().push_back(Err(libc::EBADF));
        let running = LeftBehind::default();
        let mut world = World::new(&case, &kernel, None, &running);
        let results = run_all(&mut world, KernelVersion::new(6, 1, 0));
        assert!(
            verdicts(&results).iter().all(|(_, v)| *v == Verdict::Pass),
            "{results:#?}"
        );
        let old_number = world.closed["s"];
        let calls = kernel.elem_calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, bpf_cmd::BPF_MAP_DELETE_ELEM);
        assert_eq!(calls[0].1, old_number.to_le_bytes());
        let delete = results.last().expect("delete step");
        assert_eq!(
            delete.actual,
            Actual::Errno {
                name: "EBADF".into(),
                code: libc::EBADF
            }
        );
    }

    #[test]
    fn socket_steps_go_through_the_seam_with_the_descriptors_the_case_named() {
        let case = case(
            "name: x\ndescription: d\nsockets:\n  tx: { family: unix, type: stream, socketpair: true }\n\
             \x20 rx: { pair_of: tx }\nsteps:\n\
             \x20 - send: { socket: tx, bytes: 3 }\n    expect: ok\n\
             \x20 - recv: { socket: rx, bytes: 3 }\n    expect: ok\n\
             \x20 - shutdown: { socket: tx, how: write }\n    expect: ok\n\
             \x20 - send: { socket: tx, bytes: 1 }\n    expect: EPIPE\n\
             \x20 - close: rx\n    expect: ok\n",
        );
        let kernel = Scripted::default();
        let running = LeftBehind::default();
        let mut world = World::new(&case, &kernel, None, &running);
        let results = run_all(&mut world, KernelVersion::new(6, 1, 0));
        assert!(
            results.iter().all(|r| r.verdict == Verdict::Pass),
            "{results:#?}"
        );
        let (tx, rx) = (world.fds["tx"].as_raw_fd(), world.closed["rx"]);
        assert_eq!(
            *kernel.socket_calls.lock().unwrap(),
            [
                ("send", tx),
                ("recv", rx),
                ("shutdown", tx),
                ("send", tx),
                ("close", rx)
            ]
        );
    }

    #[test]
    fn threads_run_their_prepared_calls_and_count_the_outcomes() {
        let case = case(
            "name: x\ndescription: d\nmaps:\n  store: { value: u32 }\n\
             sockets:\n  s: { family: inet }\nsteps:\n\
             \x20 - threads:\n      - count: 2\n        repeat: 3\n        steps:\n\
             \x20         - lookup: { map: store, socket: s }\n\
             \x20   expect: { counts: { lookup: { ok: 6 } } }\n",
        );
        let kernel = Scripted::default();
        let running = LeftBehind::default();
        let results = run_all(
            &mut World::new(&case, &kernel, None, &running),
            KernelVersion::new(6, 1, 0),
        );
        assert!(
            results.iter().all(|r| r.verdict == Verdict::Pass),
            "{results:#?}"
        );
        let calls = kernel.elem_calls.lock().unwrap();
        assert_eq!(calls.len(), 6);
        assert!(calls.iter().all(|c| c.0 == bpf_cmd::BPF_MAP_LOOKUP_ELEM));
    }
}
