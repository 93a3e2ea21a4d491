//! The vng command line for a [`VmSpec`]: pure, so every flag is checked without booting.

use std::{ffi::OsString, path::Path};

use super::{
    VmError,
    safe_path::{check, is_safe_word},
    spec::{Accel, GuestRootfs, KernelArg, Share, VmSpec},
};

/// Modules the guest's udev loads under QEMU that no case needs: KVM (the guest offers no
/// nested virtualisation), crypto accelerators, input, firmware-config and watchdog devices,
/// and the q35 machine's AHCI controller with its empty DVD drive (6.12+ probe six SATA
/// links). Loading them under TCG costs seconds; names a kernel lacks are ignored.
pub const UNUSED_MODULES: &[&str] = &[
    // KVM
    "kvm",
    "kvm_amd",
    "kvm_intel",
    "irqbypass",
    // crypto accelerators
    "crct10dif_pclmul",
    "crc32_pclmul",
    "crc32c_intel",
    "ghash_clmulni_intel",
    "polyval_clmulni",
    "sha1_ssse3",
    "sha256_ssse3",
    "sha512_ssse3",
    "sha512_generic",
    "aesni_intel",
    "crypto_simd",
    "cryptd",
    "gf128mul",
    // input, firmware config, watchdog, power
    "evdev",
    "serio_raw",
    "button",
    "pcspkr",
    "qemu_fw_cfg",
    "i6300esb",
    "watchdog",
    "intel_rapl_msr",
    "intel_rapl_common",
    // AHCI and the DVD drive behind it
    "ahci",
    "libahci",
    "libata",
    "sr_mod",
    "cdrom",
    "sg",
    "scsi_mod",
    "scsi_common",
];

/// The kernel refuses to load modules listed here (udev still reads and decompresses each
/// one first)...
const MODULE_BLACKLIST: &str = "module_blacklist=";
/// ...and udev's kmod skips those listed here before reading them: ~1.5 s less udev
/// coldplug per boot of 7.3 under TCG. It covers only loads by alias, hence both.
const MODPROBE_BLACKLIST: &str = "modprobe.blacklist=";

/// How the caller may put its paths where vng accepts them.
const STAGE_IT: &str = "stage it (vm::safe_path::Staging) first";
/// How the caller may put a directory that the guest sees at its real path.
const PLACE_IT: &str = "make it under vm::safe_path::safe_dir";

/// vng's arguments (without the program name) for `spec`, with its paths as
/// [`Staging`](super::safe_path::Staging) made them: every path is checked to be
/// [safe](super::safe_path::is_safe), since vng hands them to `/bin/sh` unquoted. vng quotes
/// the words of `--exec` and `--append` itself, and the other values are numbers and tags.
///
/// Values are passed as `--flag=value` so that a value starting with `-` is never taken
/// for a flag by vng's argument parser.
pub fn vng_args(spec: &VmSpec) -> Result<Vec<OsString>, VmError> {
    let mut args: Vec<OsString> = Vec::new();
    args.push(match &spec.kernel {
        KernelArg::Image { vmlinuz, .. } => {
            flag_path("--run=", "the kernel image", vmlinuz, STAGE_IT)?
        }
        KernelArg::Tree { path } => flag_path("--run=", "the kernel tree", path, STAGE_IT)?,
        KernelArg::Mainline { tag } => {
            validate_mainline_tag(tag)?;
            format!("--run={tag}").into()
        }
    });
    // The console (kernel log, init's progress) goes to vng's stderr only with --verbose;
    // without it a failed boot is silent.
    args.push("--verbose".into());
    // Another architecture's guest: vng picks its QEMU, machine (arm64: `-M virt`) and shell
    // init (its own virtme-ng-init is a host binary); only emulation runs it.
    let emulated = spec.accel == Accel::Tcg || !spec.arch.is_host();
    if !spec.arch.is_host() {
        args.push(format!("--arch={}", spec.arch.debian()).into());
    }
    if emulated {
        args.push("--disable-kvm".into());
    }
    args.push(format!("--cpus={}", spec.cpus).into());
    if let Some(memory) = &spec.memory {
        if !is_safe_word(memory.as_bytes()) {
            return Err(VmError::BadMemory {
                memory: memory.clone(),
            });
        }
        args.push(format!("--memory={memory}").into());
    }
    if spec.force_9p {
        args.push("--force-9p".into());
    }
    if let GuestRootfs::Dir(root) = &spec.root {
        args.push(flag_path("--root=", "the guest root", root, PLACE_IT)?);
        // vng exports a root of the caller's with POSIX ACLs, which 5.10's virtiofs client
        // cannot use: nothing mounts over such a root there, and init dies. The root
        // needs no ACLs.
        args.push("--no-root-posix-acl".into());
    }
    for share in &spec.shares {
        args.push(share_arg(share)?);
    }
    for word in kernel_command_line(&spec.append, spec.skip_unused_modules) {
        args.push(format!("--append={word}").into());
    }
    if emulated {
        args.push(format!("--qemu-opts=-cpu {}", spec.arch.emulated_cpu()).into());
    }
    args.push(format!("--exec={}", guest_command(&spec.command)?).into());
    Ok(args)
}

/// The extra kernel command line: the caller's words, with the unused modules merged into
/// any blacklist the caller gave (the kernel keeps only the last `module_blacklist=`).
pub fn kernel_command_line(append: &[String], skip_unused_modules: bool) -> Vec<String> {
    if !skip_unused_modules {
        return append.to_vec();
    }
    let mut listed: Vec<&str> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    for word in append {
        match word
            .strip_prefix(MODULE_BLACKLIST)
            .or_else(|| word.strip_prefix(MODPROBE_BLACKLIST))
        {
            Some(list) => listed.extend(list.split(',')),
            None => words.push(word.clone()),
        }
    }
    // The caller's modules first, in their order, then ours; each once.
    let mut modules: Vec<&str> = Vec::new();
    for module in listed.into_iter().chain(UNUSED_MODULES.iter().copied()) {
        if !module.is_empty() && !modules.contains(&module) {
            modules.push(module);
        }
    }
    let list = modules.join(",");
    words.push(format!("{MODULE_BLACKLIST}{list}"));
    words.push(format!("{MODPROBE_BLACKLIST}{list}"));
    words
}

/// The guest runs `--exec` through a shell: quote each word so it arrives unchanged.
pub fn guest_command(command: &[String]) -> Result<String, VmError> {
    if command.is_empty() {
        return Err(VmError::EmptyCommand);
    }
    shlex::try_join(command.iter().map(String::as_str)).map_err(|_| VmError::CommandHasNul {
        command: command.to_vec(),
    })
}

/// Tags look like `v5.4`, `v5.9.16` or `v6.0-rc3`; anything else would make vng look for a
/// local kernel tree of that name.
fn validate_mainline_tag(tag: &str) -> Result<(), VmError> {
    let bad = || VmError::BadMainlineTag {
        tag: tag.to_string(),
    };
    let version = tag.strip_prefix('v').ok_or_else(bad)?;
    let (numbers, rc) = match version.split_once("-rc") {
        Some((numbers, rc)) => (numbers, Some(rc)),
        None => (version, None),
    };
    let parts: Vec<&str> = numbers.split('.').collect();
    let numeric = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if (2..=3).contains(&parts.len()) && parts.iter().all(|p| numeric(p)) && rc.is_none_or(numeric)
    {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `--rwdir=PATH` for a share at the same path in the guest, `--rwdir=GUEST=HOST`
/// otherwise (`--rodir` alike).
fn share_arg(share: &Share) -> Result<OsString, VmError> {
    let flag = if share.writable {
        "--rwdir="
    } else {
        "--rodir="
    };
    if share.guest == share.host {
        return flag_path(
            flag,
            "the directory shared at its own path",
            &share.host,
            PLACE_IT,
        );
    }
    let mut arg = flag_path(
        flag,
        "the guest's mount point",
        &share.guest,
        "choose a mount point with such a path",
    )?;
    check("the shared directory", &share.host, STAGE_IT)?;
    arg.push("=");
    arg.push(&share.host);
    Ok(arg)
}

/// `flag` followed by `path`, which must be safe.
fn flag_path(
    flag: &str,
    what: &'static str,
    path: &Path,
    fix: &'static str,
) -> Result<OsString, VmError> {
    check(what, path, fix)?;
    let mut arg = OsString::from(flag);
    arg.push(path);
    Ok(arg)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::vm::Arch;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    fn spec(kernel: KernelArg, accel: Accel) -> VmSpec {
        let mut spec = VmSpec::new(kernel, accel, vec!["harness-guest".into()]);
        spec.skip_unused_modules = false;
        spec.timeout = Duration::from_secs(10);
        spec
    }

    fn image() -> KernelArg {
        KernelArg::Image {
            vmlinuz: "/cache/boot/vmlinuz-6.1.0-48-cloud-amd64".into(),
            release: Some("6.1.0-48-cloud-amd64".into()),
            modules: None,
        }
    }

    #[test]
    fn tcg_boot_of_an_image() {
        let mut spec = spec(image(), Accel::Tcg);
        spec.memory = Some("2G".into());
        spec.shares = vec![Share::writable_in_place("/tmp/out".into())];
        spec.append = vec!["lsm=lockdown,capability,bpf".into()];
        assert_eq!(
            strings(&vng_args(&spec).unwrap()),
            [
                "--run=/cache/boot/vmlinuz-6.1.0-48-cloud-amd64",
                "--verbose",
                "--disable-kvm",
                "--cpus=1",
                "--memory=2G",
                "--rwdir=/tmp/out",
                "--append=lsm=lockdown,capability,bpf",
                "--qemu-opts=-cpu qemu64",
                "--exec=harness-guest",
            ]
        );
    }

    #[test]
    fn kvm_boot_leaves_kvm_on() {
        let args = strings(&vng_args(&spec(image(), Accel::Kvm)).unwrap());
        assert!(!args.contains(&"--disable-kvm".to_string()));
        assert!(args.contains(&"--cpus=2".to_string()));
    }

    #[test]
    fn another_architecture_is_emulated_on_its_own_machine_and_cpu() {
        let host = Arch::host().expect("tests run on x86_64 or aarch64");
        let foreign = Arch::ALL.into_iter().find(|arch| *arch != host).unwrap();
        let mut spec = spec(image(), Accel::Kvm);
        spec.arch = foreign;
        let args = strings(&vng_args(&spec).unwrap());
        assert_eq!(
            args[1..3],
            ["--verbose", &format!("--arch={}", foreign.debian())]
        );
        assert!(args.contains(&"--disable-kvm".to_string()), "{args:?}");
        if foreign == Arch::Arm64 {
            assert_eq!(args[args.len() - 2], "--qemu-opts=-cpu neoverse-n1");
        }
        spec.arch = host;
        let args = strings(&vng_args(&spec).unwrap());
        assert!(
            !args.iter().any(|arg| arg.starts_with("--arch")),
            "{args:?}"
        );
    }

    #[test]
    fn a_built_tree_is_booted_from_its_directory() {
        let spec = spec(
            KernelArg::Tree {
                path: "/src/linux".into(),
            },
            Accel::Tcg,
        );
        assert_eq!(strings(&vng_args(&spec).unwrap())[0], "--run=/src/linux");
    }

    #[test]
    fn mainline_kernels_and_9p_shares() {
        let mut spec = spec(KernelArg::Mainline { tag: "v5.3".into() }, Accel::Tcg);
        let args = strings(&vng_args(&spec).unwrap());
        assert_eq!(args[0], "--run=v5.3");
        assert!(!args.contains(&"--force-9p".to_string()));
        spec.force_9p = true;
        assert!(strings(&vng_args(&spec).unwrap()).contains(&"--force-9p".to_string()));
    }

    #[test]
    fn mainline_tags_are_checked() {
        for good in ["v5.4", "v5.9.16", "v6.0-rc3"] {
            assert!(validate_mainline_tag(good).is_ok(), "{good}");
        }
        for bad in ["5.4", "v5", "vfoo", "v5.4-rc", "v5.4.1.2", "../linux"] {
            assert!(
                matches!(
                    validate_mainline_tag(bad),
                    Err(VmError::BadMainlineTag { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn command_words_are_quoted_for_the_guest_shell() {
        let command = vec![
            "/usr/bin/harness".to_string(),
            "--out".to_string(),
            "/tmp/my results/r.json".to_string(),
            "it's".to_string(),
        ];
        let joined = guest_command(&command).unwrap();
        assert_eq!(shlex::split(&joined).unwrap(), command);
        assert!(matches!(guest_command(&[]), Err(VmError::EmptyCommand)));
        assert!(matches!(
            guest_command(&["a\0b".to_string()]),
            Err(VmError::CommandHasNul { .. })
        ));
    }

    #[test]
    fn paths_a_shell_would_read_are_refused() {
        let refused = |spec: &VmSpec| matches!(vng_args(spec), Err(VmError::UnsafePath { .. }));
        for path in ["/tmp/a=b", "/tmp/a b", "/tmp/$(touch x)", "relative"] {
            let mut shared = spec(image(), Accel::Tcg);
            shared.shares = vec![Share::writable_in_place(path.into())];
            assert!(refused(&shared), "{path}");
            let mut mounted = spec(image(), Accel::Tcg);
            mounted.shares = vec![Share {
                guest: "/harness".into(),
                host: path.into(),
                writable: true,
            }];
            assert!(refused(&mounted), "{path}");
            let mut rooted = spec(image(), Accel::Tcg);
            rooted.root = GuestRootfs::Dir(path.into());
            assert!(refused(&rooted), "{path}");
            let booted = spec(
                KernelArg::Image {
                    vmlinuz: path.into(),
                    release: None,
                    modules: None,
                },
                Accel::Tcg,
            );
            assert!(refused(&booted), "{path}");
            assert!(
                refused(&spec(KernelArg::Tree { path: path.into() }, Accel::Tcg)),
                "{path}"
            );
        }
        let mut memory = spec(image(), Accel::Tcg);
        memory.memory = Some("1G;touch x".into());
        assert!(matches!(vng_args(&memory), Err(VmError::BadMemory { .. })));
    }

    #[test]
    fn a_minimal_root_with_its_shares() {
        let mut spec = spec(image(), Accel::Tcg);
        spec.root = GuestRootfs::Dir("/out/guest-root".into());
        spec.shares = vec![
            Share {
                guest: "/harness".into(),
                host: "/out/guest-6_1".into(),
                writable: true,
            },
            Share {
                guest: "/lib/modules/6.1.0-48-cloud-amd64".into(),
                host: "/cache/lib/modules/6.1.0-48-cloud-amd64".into(),
                writable: false,
            },
        ];
        let args = strings(&vng_args(&spec).unwrap());
        assert_eq!(
            args[4..8],
            [
                "--root=/out/guest-root",
                "--no-root-posix-acl",
                "--rwdir=/harness=/out/guest-6_1",
                "--rodir=/lib/modules/6.1.0-48-cloud-amd64=/cache/lib/modules/6.1.0-48-cloud-amd64",
            ]
        );
    }

    #[test]
    fn unused_modules_merge_into_the_callers_blacklist() {
        let words = kernel_command_line(
            &[
                "lsm=bpf".to_string(),
                "module_blacklist=floppy,kvm".to_string(),
                "modprobe.blacklist=pcspkr,psmouse".to_string(),
            ],
            true,
        );
        assert_eq!(words.len(), 3);
        assert_eq!(words[0], "lsm=bpf");
        let list = words[1].strip_prefix(MODULE_BLACKLIST).unwrap();
        assert_eq!(words[2].strip_prefix(MODPROBE_BLACKLIST), Some(list));
        let modules: Vec<&str> = list.split(',').collect();
        assert_eq!(&modules[..4], ["floppy", "kvm", "pcspkr", "psmouse"]);
        assert_eq!(modules.iter().filter(|m| **m == "kvm").count(), 1);
        assert_eq!(modules.iter().filter(|m| **m == "pcspkr").count(), 1);
        assert!(modules.contains(&"aesni_intel"));
        assert_eq!(
            kernel_command_line(&["lsm=bpf".to_string()], false),
            ["lsm=bpf"]
        );
    }
}
