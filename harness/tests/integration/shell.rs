//! `harness shell` through a pseudo-terminal, as a person uses it: the kernel boots with a
//! case's state held, a command runs in the guest, and `exit` ends the VM.

use crate::{requirements, vm_support};

#[test]
fn a_shell_on_a_held_case_runs_commands_in_the_guest_and_exits() {
    if let Err((requirement, reason)) = vm_support::prerequisites() {
        requirements::missing(requirement, &reason);
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tempfile::tempdir().expect("temp dir");
    let mut command = crate::harness_command();
    command.current_dir(&root).args([
        "shell",
        "--kernels",
        "ci/kernels-smoke.toml",
        "--out",
        out.path().to_str().expect("a UTF-8 temp dir"),
        "6.1",
        "bpf-writes-userspace-reads",
    ]);
    // Booting under TCG takes seconds; a cold kernel cache, a download too.
    let mut session = rexpect::session::spawn_command(command, Some(600_000)).expect("spawn");
    // The held state: the case's steps and its map, by id, for bpftool.
    session
        .exp_string("held by the executor")
        .expect("the case's state is described");
    let (_, map) = session
        .exp_regex(r"map store: fd \d+, id (\d+)")
        .expect("the map's id");
    let id: u32 = map
        .rsplit(' ')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("a map id");
    session
        .exp_string("[bpf-writes-userspace-reads] # ")
        .expect("the prompt");
    // Commands run in the guest, on the guest's kernel, with the case's map still there.
    session
        .send_line("echo in-guest-$((6*7)); uname -r")
        .expect("send");
    session
        .exp_string("in-guest-42")
        .expect("the guest's shell answers");
    session
        .exp_string("-cloud-amd64")
        .expect("the Debian kernel runs");
    session
        .send_line(&format!("bpftool map show id {id}"))
        .expect("send");
    session
        .exp_string("sk_storage")
        .expect("bpftool shows the held map");
    session.send_line("exit").expect("send");
    session.exp_eof().expect("the VM ends when the shell exits");
    let status = session.process().wait().expect("wait");
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
}
