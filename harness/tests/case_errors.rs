//! Each class of invalid case gives its exact message, located at file:line:column.

use std::path::{Path, PathBuf};

fn error_of(yaml: &str) -> String {
    match harness::case::parse(Path::new("case.yaml"), yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn undefined_map() {
    let yaml = r#"name: a
description: x
maps:
  store: { value: u32 }
sockets:
  s: { family: inet }
steps:
  - lookup: { map: stroe, socket: s }
    expect: ENOENT
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:8:20: steps[0].lookup.map: no map named `stroe`; did you mean `store`?"
    );
}

#[test]
fn closed_socket() {
    let yaml = r#"name: b
description: x
maps:
  store: { value: u32 }
sockets:
  s: { family: inet }
steps:
  - close: s
    expect: ok
  - lookup: { map: store, socket: s }
    expect: EBADF
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:10:35: steps[1].lookup.socket: socket `s` is closed by then; to use its old number on purpose, write `closed_socket: s`"
    );
}

#[test]
fn overlap() {
    let yaml = r#"name: c
description: x
maps:
  store: { value: u32 }
steps:
  - create_map: store
    expect:
      - { until: "5.6", expect: EINVAL, reason: old }
      - { since: "5.4", expect: ok, reason: new }
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:9:9: steps[0].expect[1]: versions >= 5.4 overlap variant 0 (< 5.6): ranges are half-open [since, until) and must not overlap"
    );
}

#[test]
fn gap() {
    let yaml = r#"name: d
description: x
maps:
  store: { value: u32 }
steps:
  - create_map: store
    expect:
      - { until: "5.4", expect: EINVAL, reason: old }
      - { since: "5.6", expect: ok, reason: new }
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:8:7: steps[0].expect: no variant covers kernels >= 5.4, < 5.6: every kernel from 5.2 on needs an expectation"
    );
}

#[test]
fn errno() {
    let yaml = r#"name: e
description: x
maps:
  store: { value: u32 }
sockets:
  s: { family: inet }
steps:
  - lookup: { map: store, socket: s }
    expect: ENOENTT
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:9:13: steps[0].expect: unknown outcome `ENOENTT`: `ok`, an errno name such as EINVAL, or `{ value: … }`; did you mean `ENOENT`?"
    );
}

#[test]
fn noexpect() {
    let yaml = r#"name: f
description: x
maps:
  store: { value: u32 }
sockets:
  s: { family: inet }
steps:
  - lookup: { map: store, socket: s }
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:8:5: steps[0]: every step says what it expects: add `expect:` to this `lookup` step"
    );
}

#[test]
fn op() {
    let yaml = r#"name: g
description: x
maps:
  store: { value: u32 }
sockets:
  s: { family: inet }
steps:
  - updte: { map: store, socket: s, value: 1 }
    expect: ok
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:8:5: steps[0].updte: unknown step key `updte`; did you mean `update`?"
    );
}

#[test]
fn value() {
    let yaml = r#"name: h
description: x
maps:
  store: { value: { count: u32 } }
sockets:
  s: { family: inet }
steps:
  - update: { map: store, socket: s, value: { cuont: 1 } }
    expect: ok
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:8:45: steps[0].update.value: the value type has no field `cuont`; did you mean `count`?"
    );
}

#[test]
fn syntax() {
    let yaml = r#"name: i
description: x
steps:
  - lookup: { map: store socket: s }
    expect: ok
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:4:32: steps[0].lookup: did not find expected ',' or '}', while parsing a flow mapping at line 4 column 13"
    );
}

#[test]
fn argfield() {
    let yaml = r#"name: j
description: x
maps:
  store: { value: u32 }
sockets:
  s: { family: inet }
steps:
  - update: { map: store, sokcet: s, value: 1 }
    expect: ok
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:8:27: steps[0].update.sokcet: unknown field `sokcet`, expected one of `map`, `socket`, `closed_socket`, `value`, `flags`; did you mean `socket`?"
    );
}

#[test]
fn flag() {
    let yaml = r#"name: k
description: x
maps:
  store: { value: u32, flags: [NO_PREALOC] }
sockets:
  s: { family: inet }
steps:
  - update: { map: store, socket: s, value: 1, flags: NOEXISTS }
    expect: ok
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:4:32: maps.store.flags[0]: unknown map flag `NO_PREALOC` (BPF_F_ prefix left out, e.g. NO_PREALLOC, CLONE); did you mean `NO_PREALLOC`?\ncase.yaml:8:55: steps[0].update.flags: unknown flag `NOEXISTS` (known: ANY, NOEXIST, EXIST, F_LOCK); did you mean `NOEXIST`?"
    );
}

#[test]
fn order() {
    let yaml = r#"name: l
description: x
sockets:
  c: { family: inet, connect: srv }
  srv: { family: inet, listen: true }
steps:
  - close: c
    expect: ok
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:4:31: sockets.c.connect: `c` needs `srv`, which is declared after it: declare `srv` first, or create `c` with a `socket` step"
    );
}

#[test]
fn oversized_value_type() {
    // The 300-byte case that made `harness check` allocate 4 GiB and abort.
    let yaml = r#"name: big-value
description: >
  A 300-byte case whose value type claims four billion bytes, to check that validation
  refuses it instead of allocating it.
maps:
  m: { value: "u8[4294967295]" }
sockets:
  s: { family: inet }
steps:
  - update: { map: m, socket: s, value: 1 }
    expect: ok
"#;
    assert_eq!(
        error_of(yaml).lines().next(),
        Some(
            "case.yaml:6:15: maps.m.value: the type is 4294967295 bytes, more than the 1048576 bytes (1 MiB) a case may declare (the kernel's limit for sk storage values is just under 64 KiB); to pass a larger size to BPF_MAP_CREATE, set `value_size`"
        )
    );
}

#[test]
fn values_a_case_builds_are_bounded() {
    // Each value fits the type limit, but together they pass the per-case budget.
    let yaml = r#"name: budget
description: x
maps:
  m: { value: "u8[600000]" }
sockets:
  s: { family: inet }
steps:
  - update: { map: m, socket: s, value: 1 }
    expect: ok
  - update: { map: m, socket: s, value: 2 }
    expect: ok
  - update: { map: m, socket: s, value: 3 }
    expect: ok
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:10:41: steps[1].update.value: the case's values (updates and expected values, at their type's size) add up to more than 1048576 bytes (1 MiB) here, the most one case may build; split the case"
    );
}

#[test]
fn duplicate_keys() {
    let yaml = r#"name: dup
description: x
maps:
  m: { value: u32 }
  m: { value: u64 }
  o: { bpf: no_prealloc }
sockets:
  s: { family: inet }
  s: { family: unix }
programs:
  p: { type: sock_ops, map: o }
  p: { type: sock_ops, map: o }
steps:
  - create_map: m
    expect: ok
    expect: EINVAL
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:5:3: maps.m: duplicate key `m`, first given on line 4: a key may appear once in a mapping\n\
         case.yaml:9:3: sockets.s: duplicate key `s`, first given on line 8: a key may appear once in a mapping\n\
         case.yaml:12:3: programs.p: duplicate key `p`, first given on line 11: a key may appear once in a mapping\n\
         case.yaml:16:5: steps[0].expect: duplicate key `expect`, first given on line 15: a key may appear once in a mapping"
    );
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

#[test]
fn integers_out_of_range() {
    let yaml = r#"name: int
description: x
maps:
  m: { value: u32, max_entries: 1180591620717411303424 }
steps:
  - create_map: m
    expect: ok
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:4:33: maps.m.max_entries: the integer 1180591620717411303424 is out of range for this field (u32)"
    );
    let yaml = r#"name: int
description: x
maps:
  m: { value: u64 }
sockets:
  s: { family: inet }
steps:
  - update: { map: m, socket: s, value: -1180591620717411303424 }
    expect: ok
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:8:41: steps[0].update.value: the integer -1180591620717411303424 is out of range: integers in a case have at most 64 bits"
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
        "nosuchdir: no such file or directory"
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
fn a_rejection_must_name_its_text() {
    let yaml = r#"name: r
description: x
maps:
  store: { bpf: no_prealloc }
programs:
  ops: { type: sock_ops, map: store, get: { flags: F_CREATE } }
steps:
  - attach: ops
    expect: { rejected: "" }
"#;
    assert_eq!(
        error_of(yaml),
        "case.yaml:9:25: steps[0].expect.rejected: give the text the verifier log must contain (its reason line, e.g. \"unknown func bpf_sk_storage_delete#108\")"
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
