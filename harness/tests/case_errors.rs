//! Each class of invalid case gives its exact message, located at file:line:column.

use std::path::Path;

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
