//! Invalid inputs that need a file system to build (FIFOs, symlink loops, huge files, bad
//! UTF-8) or a time bound give their exact message; the plain YAML ones are fixtures in
//! `case_messages/` (see `case_messages.rs`).

use std::path::{Path, PathBuf};

fn error_of(yaml: &str) -> String {
    match harness::case::parse(Path::new("case.yaml"), yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

/// Runs `f` on another thread and fails the test if it takes longer than `secs`, so a
/// regression that hangs (a FIFO, a symlink loop, a quadratic parse) fails instead of
/// blocking the test run.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("did not finish within {secs} s"))
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    for (nest, close) in [("[", "]"), ("[{a: ", "}]"), ("{a: ", "}")] {
        let yaml = format!(
            "name: deep\ndescription: x\nsteps: {}1{}\n",
            nest.repeat(10_000),
            close.repeat(10_000)
        );
        let error = within(10, move || error_of(&yaml));
        assert!(
            error.contains("nested deeper than 64 levels; cases need far fewer"),
            "{error}"
        );
    }
    // Block nesting reaches the limit with events, and says where.
    let yaml = format!(
        "name: deep\ndescription: x\nsteps:\n  {}x\n",
        "- ".repeat(100)
    );
    assert_eq!(
        error_of(&yaml),
        format!(
            "case.yaml:4:129: steps{}: nested deeper than 64 levels; cases need far fewer",
            "[0]".repeat(63)
        )
    );
}

fn load_error(paths: Vec<PathBuf>) -> String {
    match within(10, move || harness::case::load(&paths)) {
        Ok(cases) => panic!("expected an error, loaded {} cases", cases.len()),
        Err(e) => e.to_string(),
    }
}

const VALID: &str = "name: NAME\ndescription: x\nmaps:\n  m: { value: u32 }\nsteps:\n  - create_map: m\n    expect: ok\n";

#[test]
fn missing_path_has_no_location() {
    assert_eq!(
        load_error(vec![PathBuf::from("nosuchdir")]),
        "nosuchdir: no such file or directory (the case files and directories are the arguments)"
    );
}

#[test]
fn fifo_named_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("x.yaml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_eq!(
        load_error(vec![dir.path().to_path_buf()]),
        format!(
            "{}: not a regular file (a FIFO, device or socket): a case is a regular YAML file",
            fifo.display()
        )
    );
    // Named on the command line too.
    assert!(load_error(vec![fifo]).ends_with(
        ": not a regular file (a FIFO, device or socket): a case is a regular YAML file"
    ));
}

#[test]
fn a_file_name_with_a_control_character_is_refused_and_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x\x1b[2J.yaml");
    std::fs::write(&file, VALID.replace("NAME", "x")).unwrap();
    assert_eq!(
        load_error(vec![dir.path().to_path_buf()]),
        format!(
            "{}/x\\x1b[2J.yaml: the path holds a control character: a case's file is named in reports, rename it",
            dir.path().display()
        )
    );
}

#[test]
fn yaml_symlink_to_dev_zero() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("x.yaml");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    assert_eq!(
        load_error(vec![dir.path().to_path_buf()]),
        format!(
            "{}: not a regular file (a FIFO, device or socket): a case is a regular YAML file",
            link.display()
        )
    );
}

#[test]
fn directory_symlink_loops() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    std::fs::write(cases.join("a.yaml"), VALID.replace("NAME", "a")).unwrap();
    std::os::unix::fs::symlink(".", cases.join("l1")).unwrap();
    std::os::unix::fs::symlink(".", cases.join("l2")).unwrap();
    let message = "directory loop: this leads back to a directory that contains it (a symlink to `.` or a parent?)";
    assert_eq!(
        load_error(vec![cases.clone()]),
        format!(
            "{}: {message}\n{}: {message}",
            cases.join("l1").display(),
            cases.join("l2").display()
        )
    );
}

#[test]
fn symlinks_to_case_files_and_directories_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let cases = dir.path().join("cases");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::create_dir(&cases).unwrap();
    std::fs::write(elsewhere.join("a.yaml"), VALID.replace("NAME", "a")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), VALID.replace("NAME", "b")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, cases.join("linked")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("b.yaml"), cases.join("b.yaml")).unwrap();
    let loaded = harness::case::load(&[cases]).unwrap();
    let names: Vec<&str> = loaded.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
}

#[test]
fn oversized_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.yaml");
    // Sparse: 50 GB that reading in full would need as memory, costing no disk.
    std::fs::File::create(&file)
        .unwrap()
        .set_len(50 << 30)
        .unwrap();
    assert_eq!(
        load_error(vec![file.clone()]),
        format!(
            "{}: larger than 1048576 bytes (1 MiB), the most a case file may be; real cases are a few KB",
            file.display()
        )
    );
}

#[test]
fn invalid_utf8_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("u.yaml");
    std::fs::write(&file, b"name: u\ndescription: ab\xffc\nsteps: []\n").unwrap();
    assert_eq!(
        load_error(vec![file.clone()]),
        format!(
            "{}:2:16: not valid UTF-8 (byte 0xff): a case file is UTF-8 text",
            file.display()
        )
    );
}

#[test]
fn any_errno_the_kernel_has_may_be_named() {
    let yaml = r#"name: e
description: x
sockets:
  a: { family: inet }
  b: { family: inet, listen: true }
steps:
  - send: { socket: a, bytes: 1 }
    expect: EPIPE
"#;
    harness::case::parse(Path::new("case.yaml"), yaml).expect("EPIPE is a name cases may use");
}
