//! The whole Debian path against a fake archive on loopback: a Release signed with a
//! throwaway key, an xz Packages index and .debs with the real structure.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;
use crate::kernels::download::sha256_hex;
use crate::kernels::download::test_server::TestServer;
use crate::kernels::unpack::test_support::{fake_arm64_image, fake_bzimage, fake_deb};

/// A temporary GnuPG home with one signing key; its agent is stopped on drop.
struct TestKey {
    home: tempfile::TempDir,
    keyring: PathBuf,
}

impl TestKey {
    /// None (with the reason printed) when gpg is not installed.
    fn generate() -> Option<TestKey> {
        if duct::cmd!("gpg", "--version").stdout_null().run().is_err() {
            eprintln!("skipped: gpg is not installed (apt-get install gnupg)");
            return None;
        }
        let home = tempfile::tempdir().unwrap();
        let gpg = |args: &[&str]| {
            duct::cmd("gpg", args)
                .env("GNUPGHOME", home.path())
                .stderr_null()
        };
        gpg(&[
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "Harness Test <test@invalid>",
            "ed25519",
            "sign",
            "never",
        ])
        .run()
        .unwrap();
        let keyring = home.path().join("test-keyring.gpg");
        let exported = gpg(&["--export"]).stdout_capture().run().unwrap().stdout;
        std::fs::write(&keyring, exported).unwrap();
        Some(TestKey { home, keyring })
    }

    fn clearsign(&self, text: &str) -> Vec<u8> {
        duct::cmd!(
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--clearsign"
        )
        .env("GNUPGHOME", self.home.path())
        .stdin_bytes(text)
        .stdout_capture()
        .stderr_null()
        .run()
        .unwrap()
        .stdout
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        let _ = duct::cmd!("gpgconf", "--kill", "all")
            .env("GNUPGHOME", self.home.path())
            .stderr_null()
            .run();
    }
}

const ARM64: &str = "6.1.0-50-cloud-arm64";
const CLASSIC_OLD: &str = "6.1.0-47-cloud-amd64";
const CLASSIC: &str = "6.1.0-50-cloud-amd64";
const SPLIT: &str = "7.3.4+deb13-cloud-amd64";
/// Below `lib/modules/<release>/` of the classic kernels (each file holds its own path).
const CLASSIC_MODULES: [&str; 5] = [
    "kernel/fs/x.ko",
    "kernel/fs/y.ko",
    "kernel/net/z.ko",
    "modules.alias",
    "modules.dep",
];

struct FakeArchive {
    server: TestServer,
    key: TestKey,
    /// Pool path of each package, by package name.
    pool: HashMap<String, String>,
}

fn stanza(package: &str, version: &str, filename: &str, body: &[u8], depends: &str) -> String {
    format!(
        "Package: {package}\nVersion: {version}\nDepends: {depends}\n\
         Filename: {filename}\nSize: {}\nSHA256: {}\n",
        body.len(),
        sha256_hex(body)
    )
}

impl FakeArchive {
    /// Suite `stable` for amd64: an older and a newer classic 6.1 kernel, a split 7.3
    /// kernel. Suite `bookworm` for arm64: a classic 6.1 kernel and the guest tools.
    fn build() -> Option<FakeArchive> {
        let key = TestKey::generate()?;
        let mut files = HashMap::new();
        let mut pool = HashMap::new();
        let mut stanzas = Vec::new();
        let mut arm64_stanzas = Vec::new();
        let mut add_to = |arch: &str, name: &str, version: &str, deb: Vec<u8>, depends: &str| {
            let filename = format!("pool/main/l/linux/{name}_{version}_{arch}.deb");
            let stanza = stanza(name, version, &filename, &deb, depends);
            match arch {
                "amd64" => stanzas.push(stanza),
                _ => arm64_stanzas.push(stanza),
            }
            files.insert(format!("/debian/{filename}"), deb);
            pool.insert(name.to_string(), filename);
        };
        add_to(
            "arm64",
            &format!("linux-image-{ARM64}"),
            "6.1.176-1",
            fake_deb(&[(
                &format!("boot/vmlinuz-{ARM64}"),
                &fake_arm64_image(ARM64, 64 * 1024),
            )]),
            "kmod",
        );
        add_to(
            "arm64",
            "busybox-static",
            "1:1.35.0-4",
            fake_deb(&[("bin/busybox", b"arm64 busybox")]),
            "",
        );
        add_to(
            "arm64",
            "bash-static",
            "5.2.15-2",
            fake_deb(&[("bin/bash-static", b"arm64 bash")]),
            "",
        );
        let mut add = |name: &str, version: &str, deb: Vec<u8>, depends: &str| {
            add_to("amd64", name, version, deb, depends)
        };
        for (release, version) in [(CLASSIC_OLD, "6.1.170-3"), (CLASSIC, "6.1.176-1")] {
            let modules = CLASSIC_MODULES.map(|m| (format!("lib/modules/{release}/{m}"), m));
            let image = fake_bzimage(release, 64 * 1024);
            let image_path = format!("boot/vmlinuz-{release}");
            let mut files = vec![(image_path.as_str(), image.as_slice())];
            files.extend(
                modules
                    .iter()
                    .map(|(path, m)| (path.as_str(), m.as_bytes())),
            );
            let deb = fake_deb(&files);
            add(&format!("linux-image-{release}"), version, deb, "kmod");
        }
        let v = "7.3.4-1~bpo13+1";
        add(
            &format!("linux-image-{SPLIT}"),
            v,
            fake_deb(&[]),
            &format!(
                "linux-base-{SPLIT} (= {v}), linux-binary-{SPLIT} (= {v}), linux-modules-{SPLIT} (= {v})"
            ),
        );
        add(
            &format!("linux-binary-{SPLIT}"),
            v,
            fake_deb(&[(
                &format!("usr/lib/modules/{SPLIT}/vmlinuz"),
                &fake_bzimage(SPLIT, 64 * 1024),
            )]),
            "",
        );
        add(
            &format!("linux-modules-{SPLIT}"),
            v,
            fake_deb(&[(
                &format!("usr/lib/modules/{SPLIT}/kernel/net/y.ko.xz"),
                b"module",
            )]),
            "",
        );
        add(
            &format!("linux-base-{SPLIT}"),
            v,
            fake_deb(&[(
                &format!("usr/lib/modules/{SPLIT}/modules.builtin"),
                b"kernel/x.ko\n",
            )]),
            "",
        );
        for (suite, arch, stanzas) in [
            ("stable", "amd64", stanzas),
            ("bookworm", "arm64", arm64_stanzas),
        ] {
            let packages = stanzas.join("\n");
            let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
            xz.write_all(packages.as_bytes()).unwrap();
            let packages_xz = xz.finish().unwrap();
            let release = format!(
                "Suite: {suite}\nDate: Tue, 24 Nov 2026 02:12:15 UTC\nSHA256:\n {} {} main/binary-{arch}/Packages.xz\n",
                sha256_hex(&packages_xz),
                packages_xz.len()
            );
            files.insert(
                format!("/debian/dists/{suite}/InRelease"),
                key.clearsign(&release),
            );
            files.insert(
                format!("/debian/dists/{suite}/main/binary-{arch}/Packages.xz"),
                packages_xz,
            );
        }
        Some(FakeArchive {
            server: TestServer::start(files),
            key,
            pool,
        })
    }

    fn kernels_file(&self, dir: &Path) -> KernelsFile {
        let text = format!(
            "mirror = \"{}/debian\"\nkeyring = \"{}\"\n\
             [[kernel]]\nname = \"6.1\"\ndebian = {{ suite = \"stable\", series = \"6.1\" }}\n\
             [[kernel]]\nname = \"7.3\"\ndebian = {{ suite = \"stable\", series = \"7.3\" }}\n\
             [[kernel]]\nname = \"6.12\"\ndebian = {{ suite = \"stable\", series = \"6.12\" }}\n\
             [[kernel]]\nname = \"gone\"\ndebian = {{ suite = \"oldstable\", series = \"5.10\" }}\n\
             [[kernel]]\nname = \"6.1-arm64\"\narch = \"arm64\"\n\
             debian = {{ suite = \"bookworm\", series = \"6.1\" }}\n",
            self.server.base_url,
            self.key.keyring.display()
        );
        KernelsFile::parse(&text, &dir.join("kernels.toml")).unwrap()
    }

    fn pool_url_path(&self, package: &str) -> String {
        format!("/debian/{}", self.pool[package])
    }

    /// Replaces the body the server sends for a package (the index keeps the old digest).
    fn serve_instead(&self, package: &str, body: Vec<u8>) {
        self.server
            .files
            .lock()
            .unwrap()
            .insert(self.pool_url_path(package), body);
    }
}

fn bootable(resolved: ResolvedKernel) -> BootableKernel {
    match resolved {
        ResolvedKernel::Bootable(kernel) => kernel,
        other => panic!("expected a bootable kernel, got {other:?}"),
    }
}

#[test]
fn resolves_both_layouts_then_works_offline() {
    let Some(archive) = FakeArchive::build() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = archive.kernels_file(dir.path());
    let cache = KernelCache::at(dir.path().join("cache"));

    let mut resolver = Resolver::new(&file, cache.clone());
    assert_eq!(
        resolver.status(&file.kernels[0]).cache,
        CacheState::NotResolved
    );
    let classic = bootable(resolver.resolve(&file.kernels[0]).unwrap());
    assert_eq!(classic.release, CLASSIC, "the newest of the series");
    assert!(classic.vmlinuz.ends_with(format!("boot/vmlinuz-{CLASSIC}")));
    assert!(classic.vmlinuz.starts_with(cache.root()));
    let modules = classic.modules_dir.clone().unwrap();
    assert!(modules.ends_with(format!("lib/modules/{CLASSIC}")) && modules.join("kernel").is_dir());

    let split = bootable(resolver.resolve(&file.kernels[1]).unwrap());
    assert_eq!(split.release, SPLIT);
    assert!(
        split
            .vmlinuz
            .ends_with(format!("usr/lib/modules/{SPLIT}/vmlinuz"))
    );
    assert_eq!(
        split.modules_dir,
        split.vmlinuz.parent().map(Path::to_path_buf)
    );
    assert!(
        split
            .modules_dir
            .as_ref()
            .unwrap()
            .join("modules.builtin")
            .is_file()
    );
    assert_eq!(
        archive.server.hits("/debian/dists/stable/InRelease"),
        1,
        "one index read serves every kernel of the suite"
    );

    // A new resolver (a later run) needs no network at all.
    let hits = archive.server.total_hits();
    let mut later = Resolver::new(&file, cache.clone());
    assert_eq!(bootable(later.resolve(&file.kernels[0]).unwrap()), classic);
    assert_eq!(bootable(later.resolve(&file.kernels[1]).unwrap()), split);
    assert_eq!(archive.server.total_hits(), hits);
    let status = later.status(&file.kernels[1]);
    assert_eq!(status.release.as_deref(), Some(SPLIT));
    assert_eq!(status.cache, CacheState::Ready);

    // --refresh re-reads the index but finds the same packages: nothing is downloaded.
    let mut refreshing = Resolver::new(&file, cache).refreshing(true);
    assert_eq!(
        bootable(refreshing.resolve(&file.kernels[0]).unwrap()),
        classic
    );
    assert_eq!(archive.server.hits("/debian/dists/stable/InRelease"), 2);
    assert_eq!(
        archive
            .server
            .hits(&archive.pool_url_path(&format!("linux-image-{CLASSIC}"))),
        1
    );
}

#[test]
fn an_arm64_kernel_and_its_guest_tools_through_the_signed_chain_then_offline() {
    let Some(archive) = FakeArchive::build() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = archive.kernels_file(dir.path());
    let entry = file.get("6.1-arm64").unwrap();
    assert_eq!(entry.arch, Arch::Arm64);
    let cache = KernelCache::at(dir.path().join("cache"));
    let mut resolver = Resolver::new(&file, cache.clone());
    let kernel = bootable(resolver.resolve(entry).unwrap());
    assert_eq!(kernel.release, ARM64, "read from the Image's banner");
    assert!(kernel.vmlinuz.ends_with(format!("boot/vmlinuz-{ARM64}")));
    let tools = resolver.guest_tools(&entry.name, Arch::Arm64).unwrap();
    assert_eq!(
        archive.server.hits("/debian/dists/bookworm/InRelease"),
        1,
        "the kernel's index also named the guest tools"
    );
    let programs = tools.extract(dir.path()).unwrap();
    assert_eq!(std::fs::read(&programs.busybox).unwrap(), b"arm64 busybox");
    assert_eq!(std::fs::read(&programs.bash).unwrap(), b"arm64 bash");

    // A later run needs no network; a damaged .deb is downloaded again, verified.
    let hits = archive.server.total_hits();
    let mut later = Resolver::new(&file, cache.clone());
    assert_eq!(later.guest_tools(&entry.name, Arch::Arm64).unwrap(), tools);
    assert_eq!(archive.server.total_hits(), hits);
    std::fs::write(
        cache.debs_dir().join("busybox-static_1:1.35.0-4_arm64.deb"),
        b"x",
    )
    .unwrap();
    assert_eq!(later.guest_tools(&entry.name, Arch::Arm64).unwrap(), tools);
    assert_eq!(
        archive
            .server
            .hits(&archive.pool_url_path("busybox-static")),
        2
    );

    // The amd64 index has no guest tools: what is missing is named.
    let err = later.guest_tools("6.1", Arch::X86_64);
    let err = crate::error_chain(&err.unwrap_err());
    assert!(err.contains("kernel 6.1: "), "{err}");
}

#[test]
fn damaged_tree_is_rebuilt_and_corrupt_deb_refetched() {
    let Some(archive) = FakeArchive::build() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = archive.kernels_file(dir.path());
    let cache = KernelCache::at(dir.path().join("cache"));
    let image_path = archive.pool_url_path(&format!("linux-image-{CLASSIC}"));
    let mut resolver = Resolver::new(&file, cache.clone());
    let kernel = bootable(resolver.resolve(&file.kernels[0]).unwrap());

    // A truncated image: rebuilt from the cached .deb, without network.
    std::fs::write(&kernel.vmlinuz, b"partial").unwrap();
    assert!(matches!(
        resolver.status(&file.kernels[0]).cache,
        CacheState::Broken { .. }
    ));
    let hits = archive.server.total_hits();
    assert_eq!(
        bootable(resolver.resolve(&file.kernels[0]).unwrap()),
        kernel
    );
    assert_eq!(archive.server.total_hits(), hits);

    // A corrupt .deb as well: detected by its SHA256 and downloaded again.
    let record = cache.load_record(match &file.kernels[0].source {
        KernelSource::Debian(source) => source,
        _ => unreachable!(),
    });
    let deb = cache.deb_path(&record.unwrap().kernel.packages[0]);
    let mut bytes = std::fs::read(&deb).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&deb, bytes).unwrap();
    std::fs::remove_dir_all(kernel.vmlinuz.parent().unwrap().parent().unwrap()).unwrap();
    assert_eq!(
        resolver.status(&file.kernels[0]).cache,
        CacheState::NotFetched
    );
    assert_eq!(
        bootable(resolver.resolve(&file.kernels[0]).unwrap()),
        kernel
    );
    assert_eq!(archive.server.hits(&image_path), 2);
    assert_eq!(resolver.status(&file.kernels[0]).cache, CacheState::Ready);
}

/// Remembers the kernels whose tree was rebuilt, and why.
#[derive(Default)]
struct Rebuilds(std::cell::RefCell<Vec<(String, String)>>);

impl Progress for Rebuilds {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
    fn rebuilding(&self, kernel: &str, reason: &str) {
        self.0.borrow_mut().push((kernel.into(), reason.into()));
    }
}

fn broken(resolver: &Resolver<'_>, entry: &KernelEntry) -> String {
    match resolver.status(entry).cache {
        CacheState::Broken { reason } => reason,
        other => panic!("expected a damaged tree, got {other:?}"),
    }
}

#[test]
fn a_corrupted_or_half_deleted_tree_is_detected_and_rebuilt() {
    let Some(archive) = FakeArchive::build() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = archive.kernels_file(dir.path());
    let entry = &file.kernels[0];
    let cache = KernelCache::at(dir.path().join("cache"));
    let kernel = bootable(Resolver::new(&file, cache.clone()).resolve(entry).unwrap());
    let image = std::fs::read(&kernel.vmlinuz).unwrap();
    let rebuilds = Rebuilds::default();
    let mut resolver = Resolver::new(&file, cache.clone()).with_progress(&rebuilds);

    // One byte flipped inside the image, its size and release header intact: detected, and
    // rebuilt from the cached .deb without network.
    let mut flipped = image.clone();
    flipped[image.len() / 2] ^= 1;
    std::fs::write(&kernel.vmlinuz, &flipped).unwrap();
    let reason = broken(&resolver, entry);
    assert!(
        reason.starts_with(&format!("{} was modified", kernel.vmlinuz.display())),
        "{reason}"
    );
    let hits = archive.server.total_hits();
    assert_eq!(bootable(resolver.resolve(entry).unwrap()), kernel);
    assert_eq!(archive.server.total_hits(), hits);
    assert_eq!(std::fs::read(&kernel.vmlinuz).unwrap(), image);
    assert_eq!(resolver.status(entry).cache, CacheState::Ready);
    assert_eq!(*rebuilds.0.borrow(), [("6.1".to_string(), reason)]);

    // Every second module deleted, and the .deb gone too: the first missing file is named,
    // and --refresh repairs it as well, downloading the package again.
    let modules = kernel.modules_dir.clone().unwrap();
    for module in CLASSIC_MODULES.iter().step_by(2) {
        std::fs::remove_file(modules.join(module)).unwrap();
    }
    assert_eq!(
        broken(&resolver, entry),
        format!("{}/kernel/fs/x.ko is missing", modules.display())
    );
    let record = cache.load_record(match &entry.source {
        KernelSource::Debian(source) => source,
        _ => unreachable!(),
    });
    std::fs::remove_file(cache.deb_path(&record.unwrap().kernel.packages[0])).unwrap();
    let mut refreshing = Resolver::new(&file, cache).refreshing(true);
    assert_eq!(bootable(refreshing.resolve(entry).unwrap()), kernel);
    assert_eq!(
        archive
            .server
            .hits(&archive.pool_url_path(&format!("linux-image-{CLASSIC}"))),
        2
    );
    for module in CLASSIC_MODULES {
        assert_eq!(
            std::fs::read(modules.join(module)).unwrap(),
            module.as_bytes()
        );
    }
    assert_eq!(refreshing.status(entry).cache, CacheState::Ready);
}

#[test]
fn a_tampered_download_is_rejected_and_leaves_nothing() {
    let Some(archive) = FakeArchive::build() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = archive.kernels_file(dir.path());
    let cache = KernelCache::at(dir.path().join("cache"));
    let evil = fake_deb(&[(
        &format!("boot/vmlinuz-{CLASSIC}"),
        &fake_bzimage(CLASSIC, 64 * 1024 + 1),
    )]);
    archive.serve_instead(&format!("linux-image-{CLASSIC}"), evil);
    let err = Resolver::new(&file, cache.clone())
        .resolve(&file.kernels[0])
        .unwrap_err();
    let ResolveError::Download { source, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(
            source,
            FetchError::Size { .. } | FetchError::Checksum { .. }
        ),
        "{source}"
    );
    let debs: Vec<_> = std::fs::read_dir(cache.debs_dir()).unwrap().collect();
    assert!(debs.is_empty(), "nothing kept: {debs:?}");
    assert!(
        !cache.root().join("debian/trees").exists()
            || std::fs::read_dir(cache.root().join("debian/trees"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn a_tampered_index_is_rejected() {
    let Some(archive) = FakeArchive::build() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = archive.kernels_file(dir.path());
    {
        let mut files = archive.server.files.lock().unwrap();
        let signed = files.get_mut("/debian/dists/stable/InRelease").unwrap();
        let text = String::from_utf8(signed.clone())
            .unwrap()
            .replace("Suite: stable", "Suite: stabIe");
        *signed = text.into_bytes();
    }
    let err = Resolver::new(&file, KernelCache::at(dir.path().join("cache")))
        .resolve(&file.kernels[0])
        .unwrap_err();
    let ResolveError::Index { source, .. } = &err else {
        panic!("{err}")
    };
    assert!(matches!(**source, IndexError::BadSignature { .. }), "{err}");
}

#[test]
fn selection_and_suite_errors_name_the_kernel() {
    let Some(archive) = FakeArchive::build() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = archive.kernels_file(dir.path());
    let mut resolver = Resolver::new(&file, KernelCache::at(dir.path().join("cache")));
    let err = resolver.resolve(&file.kernels[2]).unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert_eq!(
        chain,
        "kernel 6.12: fix `debian` in kernels.toml: no cloud-amd64 kernel 6.12.x in stable; \
         it carries 6.1.170, 6.1.176, 7.3.4"
    );
    let err = resolver.resolve(&file.kernels[3]).unwrap_err();
    let ResolveError::Index { source, kernel } = &err else {
        panic!("{err}")
    };
    let IndexError::UnknownSuite { suite, .. } = &**source else {
        panic!("{err}")
    };
    assert_eq!((suite.as_str(), kernel.as_str()), ("oldstable", "gone"));
}

#[test]
fn other_sources_resolve_without_network() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("bzImage");
    std::fs::write(&image, fake_bzimage("5.8.18-custom", 4096)).unwrap();
    let elf = dir.path().join("vmlinux");
    std::fs::write(&elf, b"\x7fELF").unwrap();
    let mods = dir.path().join("5.9.0-elf");
    std::fs::create_dir(&mods).unwrap();
    let text = "[[kernel]]\nname = \"mine\"\nlocal = { vmlinuz = \"bzImage\" }\n\
                [[kernel]]\nname = \"elf\"\nlocal = { vmlinuz = \"vmlinux\", modules = \"5.9.0-elf\" }\n\
                [[kernel]]\nname = \"elf-bare\"\nlocal = { vmlinuz = \"vmlinux\" }\n\
                [[kernel]]\nname = \"5.4\"\nmainline = \"v5.4\"\n\
                [[kernel]]\nname = \"host\"\nhost = true\n";
    let file = KernelsFile::parse(text, &dir.path().join("kernels.toml")).unwrap();
    let mut resolver = Resolver::new(&file, KernelCache::at(dir.path().join("cache")));
    let mine = bootable(resolver.resolve(&file.kernels[0]).unwrap());
    assert_eq!(
        (mine.release.as_str(), mine.vmlinuz.as_path()),
        ("5.8.18-custom", image.as_path())
    );
    assert_eq!(
        bootable(resolver.resolve(&file.kernels[1]).unwrap()).release,
        "5.9.0-elf"
    );
    let err = resolver.resolve(&file.kernels[2]).unwrap_err();
    assert!(
        matches!(err, ResolveError::UnknownLocalRelease { .. }),
        "{err}"
    );
    assert_eq!(
        resolver.resolve(&file.kernels[3]).unwrap(),
        ResolvedKernel::Mainline {
            name: "5.4".into(),
            tag: "v5.4".into()
        }
    );
    let ResolvedKernel::Host { release, .. } = resolver.resolve(&file.kernels[4]).unwrap() else {
        panic!("host")
    };
    assert_eq!(
        release,
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .trim()
    );
    assert_eq!(
        resolver.status(&file.kernels[0]).release.as_deref(),
        Some("5.8.18-custom")
    );
    assert_eq!(
        resolver.status(&file.kernels[3]).cache,
        CacheState::NotCached
    );
    assert!(
        !dir.path().join("cache").exists(),
        "nothing cached for these sources"
    );
}

#[test]
fn leftovers_of_a_killed_fetch_are_removed() {
    let Some(archive) = FakeArchive::build() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = archive.kernels_file(dir.path());
    let cache = KernelCache::at(dir.path().join("cache"));
    let debs = cache.debs_dir();
    let trees = cache.root().join("debian/trees");
    std::fs::create_dir_all(&debs).unwrap();
    std::fs::create_dir_all(
        trees
            .join(format!(".unpacking-{CLASSIC}-x1y2"))
            .join("boot"),
    )
    .unwrap();
    let partial = debs.join(format!(
        ".linux-image-{CLASSIC}_6.1.176-1_amd64.deb.a1b2.part"
    ));
    std::fs::write(&partial, b"half a download").unwrap();
    // Another kernel's work in progress is not ours to remove.
    let other = trees.join(format!(".unpacking-{SPLIT}-z9"));
    std::fs::create_dir_all(&other).unwrap();

    bootable(
        Resolver::new(&file, cache)
            .resolve(&file.kernels[0])
            .unwrap(),
    );
    assert!(!partial.exists());
    assert!(!trees.join(format!(".unpacking-{CLASSIC}-x1y2")).exists());
    assert!(other.exists());
}

#[test]
fn a_pinned_image_must_have_its_hash_and_an_absent_one_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fake_bzimage("5.2.1", 4096);
    std::fs::write(dir.path().join("bzImage"), &bytes).unwrap();
    let good = crate::kernels::download::sha256_hex(&bytes);
    let wrong = "0".repeat(64);
    let text = format!(
        "[[kernel]]\nname = \"good\"\nlocal = {{ vmlinuz = \"bzImage\", sha256 = \"{good}\" }}\n\
         [[kernel]]\nname = \"changed\"\nlocal = {{ vmlinuz = \"bzImage\", sha256 = \"{wrong}\" }}\n\
         [[kernel]]\nname = \"gone\"\nlocal = {{ vmlinuz = \"none/bzImage\", optional = true }}\n"
    );
    let file = KernelsFile::parse(&text, &dir.path().join("kernels.toml")).unwrap();
    let mut resolver = Resolver::new(&file, KernelCache::at(dir.path().join("cache")));
    assert_eq!(
        bootable(resolver.resolve(&file.kernels[0]).unwrap()).release,
        "5.2.1"
    );
    let err = resolver.resolve(&file.kernels[1]).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, ResolveError::ImageChanged { .. })
            && message.contains(&good)
            && message.contains(&wrong),
        "{message}"
    );
    match resolver.resolve(&file.kernels[2]).unwrap() {
        ResolvedKernel::Absent { name, why, .. } => {
            assert_eq!(name, "gone");
            assert!(why.contains("none/bzImage does not exist"), "{why}");
        }
        other => panic!("expected an absent kernel, got {other:?}"),
    }
}

#[test]
fn a_local_image_without_modules_gets_those_vng_would_find_above_it() {
    let dir = tempfile::tempdir().unwrap();
    let release = "6.13.0-rc1+";
    let image = dir.path().join("root/boot/vmlinuz");
    std::fs::create_dir_all(image.parent().unwrap()).unwrap();
    std::fs::write(&image, fake_bzimage(release, 4096)).unwrap();
    let modules = dir.path().join("root/usr/lib/modules").join(release);
    std::fs::create_dir_all(&modules).unwrap();
    let given = dir.path().join("given");
    std::fs::create_dir(&given).unwrap();
    let text = "[[kernel]]\nname = \"beside\"\nlocal = { vmlinuz = \"root/boot/vmlinuz\" }\n\
                [[kernel]]\nname = \"given\"\nlocal = { vmlinuz = \"root/boot/vmlinuz\", modules = \"given\" }\n";
    let file = KernelsFile::parse(text, &dir.path().join("kernels.toml")).unwrap();
    let mut resolver = Resolver::new(&file, KernelCache::at(dir.path().join("cache")));
    let beside = bootable(resolver.resolve(&file.kernels[0]).unwrap());
    assert_eq!(beside.modules_dir, Some(modules.clone()));
    let named = bootable(resolver.resolve(&file.kernels[1]).unwrap());
    assert_eq!(named.modules_dir, Some(given));
    std::fs::remove_dir(&modules).unwrap();
    let without = bootable(resolver.resolve(&file.kernels[0]).unwrap());
    assert_eq!(without.modules_dir, None, "no directory of that release");
}
