//! `harness kernels list|fetch` end to end: exit codes, messages, nothing touched on bad input.
//! Each test has its own cache directory; none needs a Debian mirror.

use std::path::Path;
use std::process::Output;

fn kernels(dir: &Path, args: &[&str], mirror: Option<&str>) -> Output {
    let mut command = crate::harness_command();
    command
        .arg("kernels")
        .args(["--kernels", &dir.join("kernels.toml").to_string_lossy()])
        .args(args)
        .env("XDG_CACHE_HOME", dir.join("cache"));
    match mirror {
        Some(url) => command.env("HARNESS_DEBIAN_MIRROR", url),
        None => command.env_remove("HARNESS_DEBIAN_MIRROR"),
    };
    command.output().expect("the harness binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const TWO_KERNELS: &str = "[[kernel]]\nname = \"6.1\"\ndebian = { suite = \"bookworm\", series = \"6.1\" }\n\
                           [[kernel]]\nname = \"host\"\nhost = true\n";

#[test]
fn bad_kernel_list_exits_2_and_fetches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kernels.toml"),
        "[[kernel]]\nname = \"6.1\"\ndebian = { suite = \"bookworm\", serie = \"6.1\" }\n",
    )
    .unwrap();
    for args in [&["fetch"][..], &["list"]] {
        let out = kernels(dir.path(), args, Some("http://127.0.0.1:1/debian"));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("kernels.toml:3:32: kernel[0].debian.serie: unknown field `serie`"),
            "{stderr}"
        );
        assert!(stderr.contains("; did you mean `series`?"), "{stderr}");
    }
    assert!(!dir.path().join("cache").exists(), "nothing was written");
    let out = kernels(&dir.path().join("absent"), &["list"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("cannot read the kernel list"),
        "{}",
        text(&out.stderr)
    );
}

/// The name of this machine's architecture, which the running kernel has.
fn host_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    }
}

const ARM64_KERNEL: &str = "[[kernel]]\nname = \"6.1-arm64\"\narch = \"arm64\"\n\
                            debian = { suite = \"bookworm\", series = \"6.1\" }\n";

#[test]
fn list_works_offline_before_any_fetch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kernels.toml"),
        format!("{TWO_KERNELS}{ARM64_KERNEL}"),
    )
    .unwrap();
    let out = kernels(dir.path(), &["list"], Some("http://127.0.0.1:1/debian"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains(" ARCH ")
            && lines[0].contains(" CACHE ")
            && lines[0].ends_with("NOTE"),
        "{stdout}"
    );
    let words = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(words(lines[1]), "6.1 x86_64", "{stdout}");
    assert!(
        lines[1].contains("debian bookworm 6.1.x cloud-amd64"),
        "{stdout}"
    );
    assert!(lines[1].ends_with("not resolved"), "{stdout}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(words(lines[2]), format!("host {}", host_arch()), "{stdout}");
    assert!(lines[2].contains(release.trim()), "{stdout}");
    assert_eq!(words(lines[3]), "6.1-arm64 arm64", "{stdout}");
    assert!(
        lines[3].contains("debian bookworm 6.1.x cloud-arm64"),
        "{stdout}"
    );
}

#[test]
fn unreachable_mirror_fails_that_kernel_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kernels.toml"), TWO_KERNELS).unwrap();
    // Port 1 on loopback: refused at once, no timeout to wait for; tried again after 1, 2
    // and 4 s.
    let started = std::time::Instant::now();
    let out = kernels(dir.path(), &["fetch"], Some("http://127.0.0.1:1/debian"));
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: kernel 6.1: cannot read the Debian index: cannot fetch the index of bookworm: after 4 attempts: GET http://127.0.0.1:1/debian/dists/bookworm/InRelease failed"),
        "{stderr}"
    );
    let waited = started.elapsed().as_secs_f64();
    assert!((7.0..20.0).contains(&waited), "{waited} s");
    assert!(
        stderr.ends_with("1 kernel(s) could not be fetched\n"),
        "{stderr}"
    );
    // The other kernel still resolved.
    assert!(
        text(&out.stdout).starts_with("host: host kernel "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn unknown_kernel_name_exits_2_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kernels.toml"), TWO_KERNELS).unwrap();
    let out = kernels(
        dir.path(),
        &["fetch", "hots"],
        Some("http://127.0.0.1:1/debian"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no kernel named `hots`; did you mean `host`?"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn matrix_lists_every_kernel_this_machine_can_have_in_order_for_ci() {
    let dir = tempfile::tempdir().unwrap();
    // An optional image that is absent here would be a job that can only fail (it names the
    // kernel): it is left out, and stderr says why.
    let list = format!(
        "[[kernel]]\nname = \"5.2\"\n\
         local = {{ vmlinuz = \"${{NO_SUCH_DIR_X}}/bzImage\", optional = true }}\n\
         {TWO_KERNELS}"
    );
    std::fs::write(
        dir.path().join("kernels.toml"),
        format!("{list}{ARM64_KERNEL}"),
    )
    .unwrap();
    let out = kernels(dir.path(), &["matrix"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let host = host_arch();
    assert_eq!(
        text(&out.stdout),
        format!(
            "[{{\"kernel\":\"6.1\",\"arch\":\"x86_64\"}},{{\"kernel\":\"host\",\"arch\":\"{host}\"}},\
             {{\"kernel\":\"6.1-arm64\",\"arch\":\"arm64\"}}]\n"
        )
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "5.2: left out of the matrix: the image ${NO_SUCH_DIR_X}/bzImage is not on this \
             machine (environment variable NO_SUCH_DIR_X is not set)"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let out = kernels(dir.path(), &["matrix", "--format", "lines"], None);
    assert_eq!(
        text(&out.stdout),
        format!("6.1 x86_64\nhost {host}\n6.1-arm64 arm64\n")
    );
    assert!(!dir.path().join("cache").exists(), "nothing was written");
}
