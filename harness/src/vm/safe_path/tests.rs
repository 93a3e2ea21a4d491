use std::{ffi::OsStr, os::unix::ffi::OsStrExt};

use super::*;
use crate::vm::{
    command::vng_args,
    spec::{Accel, GuestRootfs},
};

/// Names a shell reading them unquoted acts on: command substitution in both forms, a
/// command separator, quotes, word splitting at spaces and newlines, an expansion, globs and
/// redirections; and `=`, at which vng splits its share options.
const HOSTILE: &[&str] = &[
    "k$(touch pwned)",
    "k`touch pwned`",
    "k;touch pwned;",
    "k'quo\"ted",
    "k with spaces",
    "k\ntouch pwned\n",
    "k${IFS}x",
    "k|&<>*?[#~!",
    "k=v",
];

const RELEASE: &str = "6.12.117+deb13-cloud-amd64";

/// What kernels.toml's sources, `--kernel`, `--out`, `HARNESS_KERNELS_DIR` and
/// `XDG_CACHE_HOME` hand the VM layer, all under one directory.
struct Inputs {
    image: PathBuf,
    modules: PathBuf,
    tree: PathBuf,
    share: PathBuf,
    virtiofsd: PathBuf,
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// An image with modules whose own index names a hostile module (and whose `build` link
/// leads nowhere, as Debian's do without headers), a built tree, a directory to share and a
/// virtiofsd, under `dir`.
fn inputs(dir: &Path) -> Inputs {
    let modules = dir.join("lib/modules").join(RELEASE);
    write(&dir.join("boot/vmlinuz"), "an image");
    write(&modules.join("kernel/fs/fuse/virtiofs.ko"), "a module");
    write(
        &modules.join("modules.order"),
        "kernel/fs/fuse/virtiofs.ko\n",
    );
    write(
        &modules.join("modules.dep"),
        "kernel/fs/fuse/$(touch pwned).ko.zst:\n",
    );
    write(&modules.join("modules.dep.bin"), "an index");
    symlink("/nonexistent/headers", modules.join("build")).unwrap();
    let tree = dir.join("linux");
    write(&tree.join("arch/x86/boot/bzImage"), "an image");
    write(&tree.join("include/config/kernel.release"), RELEASE);
    let share = dir.join("out/guests");
    fs::create_dir_all(&share).unwrap();
    write(&dir.join("tools/virtiofsd"), "a daemon");
    Inputs {
        image: dir.join("boot/vmlinuz"),
        modules,
        tree,
        share,
        virtiofsd: dir.join("tools/virtiofsd"),
    }
}

/// Whether vng can paste `word` into its command line for `/bin/sh` as it is: vng quotes the
/// words of `--exec` and `--append` itself, and `=` means nothing to the shell there.
fn pasted_safely(word: &OsStr) -> bool {
    let bytes = word.as_bytes();
    bytes.starts_with(b"--exec=")
        || bytes.starts_with(b"--append=")
        || bytes
            .strip_prefix(b"--qemu-opts=-cpu ")
            .is_some_and(is_safe_word)
        || bytes.split(|b| *b == b'=').all(is_safe_word)
}

fn same_file(a: &Path, b: &Path) -> bool {
    fs::canonicalize(a).unwrap() == fs::canonicalize(b).unwrap()
}

#[test]
fn safe_paths_are_absolute_and_plain() {
    assert!(is_safe(Path::new(
        "/tmp/harness-vng-Ab1/kernel/lib/modules/6.12.117+deb13-cloud-amd64"
    )));
    assert!(is_safe(Path::new("/")));
    assert!(!is_safe(Path::new("relative/path")));
    assert!(!is_safe(Path::new("")));
    assert!(is_safe_word(b"1024M"));
    assert!(!is_safe_word(b""));
    for name in HOSTILE {
        assert!(!is_safe(&Path::new("/tmp").join(name)), "{name:?}");
    }
}

#[test]
fn every_word_vng_gets_is_safe_whatever_the_paths() {
    let base = tempfile::tempdir_in(temp_dir().unwrap()).unwrap();
    for (index, name) in HOSTILE.iter().enumerate() {
        let dir = base.path().join(index.to_string()).join(name);
        let given = inputs(&dir);
        // Where the matrix makes the guests' root and directories for an `--out` like this.
        let root = tempfile::tempdir_in(safe_dir(&dir).unwrap()).unwrap();
        let kernels = [
            KernelArg::Image {
                vmlinuz: given.image.clone(),
                release: Some(RELEASE.into()),
                modules: Some(given.modules.clone()),
            },
            KernelArg::Tree {
                path: given.tree.clone(),
            },
            KernelArg::Mainline { tag: "v5.4".into() },
        ];
        for kernel in kernels {
            let mut spec = VmSpec::new(
                kernel.clone(),
                Accel::Tcg,
                vec![
                    "/bin/harness".into(),
                    "--out".into(),
                    given.share.join("results.json").display().to_string(),
                ],
            );
            spec.root = GuestRootfs::Dir(root.path().into());
            spec.memory = Some("1024M".into());
            spec.append = vec![format!("note={name}")];
            spec.shares = vec![
                Share {
                    guest: "/harness".into(),
                    host: given.share.clone(),
                    writable: true,
                },
                Share {
                    guest: Path::new("/lib/modules").join(RELEASE),
                    host: given.modules.clone(),
                    writable: false,
                },
            ];
            let staging = Staging::new().unwrap();
            let staged = staging.stage(&spec).unwrap();
            for word in vng_args(&staged).unwrap() {
                assert!(pasted_safely(&word), "{name:?}: {word:?}");
            }
            // The links lead to the real files.
            match (&staged.kernel, &kernel) {
                (
                    KernelArg::Image {
                        vmlinuz,
                        modules: Some(modules),
                        ..
                    },
                    _,
                ) => {
                    assert!(same_file(vmlinuz, &given.image));
                    assert!(same_file(
                        &modules.join("kernel"),
                        &given.modules.join("kernel")
                    ));
                    let kernel_dir = vmlinuz.parent().and_then(Path::parent).unwrap();
                    assert_eq!(
                        *modules,
                        kernel_dir.join("lib/modules").join(RELEASE),
                        "where vng walks up to from the image"
                    );
                    assert!(modules.join("modules.order").exists());
                    for index in ["modules.dep", "modules.dep.bin", "build"] {
                        assert!(
                            fs::symlink_metadata(modules.join(index)).is_err(),
                            "{index} is not taken from the kernel"
                        );
                    }
                }
                (KernelArg::Tree { path }, _) => assert!(same_file(path, &given.tree)),
                (staged, original) => assert_eq!(staged, original),
            }
            assert!(same_file(&staged.shares[0].host, &given.share));
            assert!(same_file(&staged.shares[1].host, &given.modules));
            let vng = Vng::for_tests("/bin/true", Some(given.virtiofsd.to_str().unwrap()));
            for (variable, value) in staging.environment(&vng).unwrap() {
                let first = std::env::split_paths(&value).next().unwrap();
                assert!(is_safe(&first), "{variable}={value:?}");
                if variable == "PATH" {
                    assert!(same_file(&first.join("virtiofsd"), &given.virtiofsd));
                }
            }
        }
    }
}

#[test]
fn a_directory_the_guest_sees_at_its_own_path_moves_to_a_safe_one() {
    let base = tempfile::tempdir_in(temp_dir().unwrap()).unwrap();
    assert_eq!(
        safe_dir(base.path()).unwrap(),
        fs::canonicalize(base.path()).unwrap()
    );
    for name in HOSTILE {
        let out = base.path().join(name);
        fs::create_dir(&out).unwrap();
        let dir = safe_dir(&out).unwrap();
        assert!(is_safe(&dir), "{name:?}");
        assert_eq!(dir, temp_dir().unwrap());
    }
}

#[test]
fn zstd_modules_must_really_lie_at_safe_paths() {
    let base = tempfile::tempdir_in(temp_dir().unwrap()).unwrap();
    let kernel = |modules: PathBuf| KernelArg::Image {
        vmlinuz: base.path().join("vmlinuz"),
        release: Some(RELEASE.into()),
        modules: Some(modules),
    };
    for (index, name) in HOSTILE.iter().enumerate() {
        let modules = base.path().join(index.to_string()).join(name).join(RELEASE);
        write(&modules.join("kernel/fs/fuse/virtiofs.ko.zst"), "a module");
        assert!(
            matches!(
                check_kernel(&kernel(modules.clone())),
                Err(VmError::UnsafePath { .. })
            ),
            "{name:?}"
        );
        // vng hands zstd the module's real path, whatever link leads to it.
        let link = base.path().join(format!("safe-{index}"));
        symlink(&modules, &link).unwrap();
        assert!(
            matches!(check_kernel(&kernel(link)), Err(VmError::UnsafePath { .. })),
            "{name:?}"
        );
    }
    let modules = base.path().join("safe").join(RELEASE);
    write(&modules.join("kernel/fs/fuse/virtiofs.ko.zst"), "a module");
    // A link that leads nowhere holds no module; `build` is not walked.
    symlink(
        "/nonexistent/k$(x).ko.zst",
        modules.join("kernel/gone.ko.zst"),
    )
    .unwrap();
    symlink(base.path().join("0"), modules.join("build")).unwrap();
    check_kernel(&kernel(modules)).unwrap();
    // An index that names no `.zst` module is what vng reads: the files it does not name
    // never reach zstd.
    let indexed = base.path().join("0").join(HOSTILE[0]).join(RELEASE);
    write(
        &indexed.join("modules.dep"),
        "kernel/fs/fuse/virtiofs.ko.xz:\n",
    );
    check_kernel(&kernel(indexed.clone())).unwrap();
    write(
        &indexed.join("modules.dep.bin"),
        "kernel/fs/fuse/virtiofs.ko.zst",
    );
    assert!(matches!(
        check_kernel(&kernel(indexed)),
        Err(VmError::UnsafePath { .. })
    ));
}

#[test]
fn an_index_that_names_no_zstd_module_is_read_as_it_is() {
    let base = tempfile::tempdir_in(temp_dir().unwrap()).unwrap();
    let given = inputs(&base.path().join(HOSTILE[0]));
    write(
        &given.modules.join("modules.dep"),
        "kernel/fs/fuse/virtiofs.ko:\n",
    );
    let staging = Staging::new().unwrap();
    let spec = VmSpec::new(
        KernelArg::Image {
            vmlinuz: given.image,
            release: Some(RELEASE.into()),
            modules: Some(given.modules.clone()),
        },
        Accel::Tcg,
        vec!["true".into()],
    );
    let KernelArg::Image {
        modules: Some(staged),
        ..
    } = staging.stage(&spec).unwrap().kernel
    else {
        panic!("an image with modules stays one");
    };
    for index in ["modules.dep", "modules.dep.bin"] {
        assert!(same_file(&staged.join(index), &given.modules.join(index)));
    }
}

#[test]
fn a_kernel_with_modules_needs_a_plain_release() {
    let base = tempfile::tempdir_in(temp_dir().unwrap()).unwrap();
    let modules = base.path().join(RELEASE);
    fs::create_dir(&modules).unwrap();
    for release in HOSTILE.iter().chain(&["../../etc", "..", ".", "a/b"]) {
        let with_modules = KernelArg::Image {
            vmlinuz: base.path().join("vmlinuz"),
            release: Some(release.to_string()),
            modules: Some(modules.clone()),
        };
        assert!(
            matches!(check_kernel(&with_modules), Err(VmError::UnsafePath { .. })),
            "{release:?}"
        );
        let without = KernelArg::Image {
            vmlinuz: base.path().join("vmlinuz"),
            release: Some(release.to_string()),
            modules: None,
        };
        check_kernel(&without).unwrap();
    }
}
