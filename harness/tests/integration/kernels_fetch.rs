//! End to end against the real Debian archive: resolve bookworm's newest 6.1 cloud kernel
//! through the signed index into a temporary cache, then resolve it again offline.
//!
//! Skips, saying why, when no mirror is configured or reachable (the mirror comes from
//! $HARNESS_DEBIAN_MIRROR or the host's apt sources, as for users).

use std::time::Instant;

use harness::kernels::{CacheState, KernelCache, KernelsFile, ResolvedKernel, Resolver};

use crate::requirements;
use crate::vm_support;

use requirements::Requirement;

#[test]
fn fetches_bookworm_cloud_kernel_from_the_real_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kernels.toml");
    let text = "[[kernel]]\nname = \"6.1\"\ndebian = { suite = \"bookworm\", series = \"6.1\" }\n";
    let file = KernelsFile::parse(text, &path).unwrap();
    let cache = KernelCache::at(dir.path().join("cache"));

    let started = Instant::now();
    let resolved = match Resolver::new(&file, cache.clone()).resolve(&file.kernels[0]) {
        Ok(resolved) => resolved,
        Err(e) => match vm_support::mirror_unavailable(&e) {
            Some(reason) => {
                requirements::missing(Requirement::Network, &reason);
                return;
            }
            None => panic!("{}", harness::error_chain(&e)),
        },
    };
    let cold = started.elapsed();
    let ResolvedKernel::Bootable(kernel) = resolved else {
        panic!("expected a bootable kernel, got {resolved:?}")
    };
    assert!(
        kernel.release.starts_with("6.1.0-") && kernel.release.ends_with("-cloud-amd64"),
        "{}",
        kernel.release
    );
    assert!(kernel.vmlinuz.is_file(), "{}", kernel.vmlinuz.display());
    assert!(
        kernel
            .vmlinuz
            .ends_with(format!("boot/vmlinuz-{}", kernel.release))
    );
    let modules = kernel
        .modules_dir
        .as_ref()
        .expect("bookworm's image carries its modules");
    assert!(modules.join("kernel").is_dir(), "{}", modules.display());
    // virtiofs is a module on 6.1: the guest needs it to see the host's files.
    assert!(modules.join("kernel/fs/fuse/virtiofs.ko").is_file());

    let started = Instant::now();
    let mut offline = Resolver::new(&file, cache);
    let again = offline.resolve(&file.kernels[0]).unwrap();
    let warm = started.elapsed();
    assert_eq!(again, ResolvedKernel::Bootable(kernel.clone()));
    assert_eq!(offline.status(&file.kernels[0]).cache, CacheState::Ready);
    eprintln!(
        "bookworm {}: cold fetch+verify+unpack {:.1} s, warm resolve {:.2} ms",
        kernel.release,
        cold.as_secs_f64(),
        warm.as_secs_f64() * 1000.0
    );
}
