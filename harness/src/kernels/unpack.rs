//! Unpacking kernel .debs (ar → data.tar.{xz,gz} → files) and finding the kernel in them.
//!
//! Only `boot/`, `lib/modules/` and `usr/lib/modules/` are extracted: that is where the
//! image and modules live, and vng finds the modules by walking up from the image to a
//! `lib/modules/<release>` or `usr/lib/modules/<release>` directory, which this layout keeps.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::vm::Arch;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("cannot read {} (it is downloaded again on the next fetch)", deb.display())]
    Read {
        deb: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has no data.tar member; it is not a Debian package", deb.display())]
    NoData { deb: PathBuf },
    #[error("{} holds no program {program} in bin/ or usr/bin/", deb.display())]
    NoProgram { deb: PathBuf, program: String },
    #[error("{} compresses its files as {member}, which the harness cannot read (xz, gzip and plain tar are supported)", deb.display())]
    UnsupportedCompression { deb: PathBuf, member: String },
    #[error("cannot extract {} into {}", deb.display(), into.display())]
    Extract {
        deb: PathBuf,
        into: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Directories of a kernel package worth extracting.
const KEPT_PREFIXES: [&str; 3] = ["boot/", "lib/modules/", "usr/lib/modules/"];

/// Extracts the kernel image and modules of `deb` below `root`.
pub fn unpack_deb(deb: &Path, root: &Path) -> Result<(), UnpackError> {
    with_data(deb, |data| extract_kept(data, root))?.map_err(|source| UnpackError::Extract {
        deb: deb.to_path_buf(),
        into: root.to_path_buf(),
        source,
    })
}

/// Writes the program `name` of `deb` (its `bin/NAME` or, merged into /usr, `usr/bin/NAME`)
/// to `to`, executable.
pub fn extract_program(deb: &Path, name: &str, to: &Path) -> Result<(), UnpackError> {
    let wanted = [format!("bin/{name}"), format!("usr/bin/{name}")];
    let found = with_data(deb, |data| {
        let mut tar = tar::Archive::new(data);
        for entry in tar.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.into_owned();
            let relative = path.strip_prefix("./").unwrap_or(&path);
            if entry.header().entry_type().is_file()
                && wanted.iter().any(|w| relative == Path::new(w))
            {
                let mut file = std::fs::File::create(to)?;
                std::io::copy(&mut entry, &mut file)?;
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o755))?;
                return Ok(true);
            }
        }
        Ok(false)
    })?
    .map_err(|source| UnpackError::Extract {
        deb: deb.to_path_buf(),
        into: to.to_path_buf(),
        source,
    })?;
    if found {
        Ok(())
    } else {
        Err(UnpackError::NoProgram {
            deb: deb.to_path_buf(),
            program: name.to_string(),
        })
    }
}

/// Runs `read` over the files of `deb` (its data.tar, decompressed); the outer error is the
/// package's, the inner `read`'s.
fn with_data<T>(
    deb: &Path,
    read: impl FnOnce(Box<dyn Read + '_>) -> std::io::Result<T>,
) -> Result<std::io::Result<T>, UnpackError> {
    let read_error = |source| UnpackError::Read {
        deb: deb.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(deb).map_err(read_error)?;
    let mut archive = ar::Archive::new(std::io::BufReader::new(file));
    while let Some(member) = archive.next_entry() {
        let member = member.map_err(read_error)?;
        let name = String::from_utf8_lossy(member.header().identifier()).into_owned();
        let Some(compression) = name.strip_prefix("data.tar") else {
            continue;
        };
        let data: Box<dyn Read + '_> = match compression {
            ".xz" => Box::new(liblzma::read::XzDecoder::new(member)),
            ".gz" => Box::new(flate2::read::GzDecoder::new(member)),
            "" => Box::new(member),
            _ => {
                return Err(UnpackError::UnsupportedCompression {
                    deb: deb.to_path_buf(),
                    member: name,
                });
            }
        };
        return Ok(read(data));
    }
    Err(UnpackError::NoData {
        deb: deb.to_path_buf(),
    })
}

fn extract_kept(data: impl Read, root: &Path) -> std::io::Result<()> {
    let mut tar = tar::Archive::new(data);
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let relative = path.strip_prefix("./").unwrap_or(&path);
        let relative = relative.to_string_lossy();
        if KEPT_PREFIXES
            .iter()
            .any(|prefix| relative.starts_with(prefix))
        {
            // unpack_in refuses paths that would escape `root`.
            entry.unpack_in(root)?;
        }
    }
    Ok(())
}

/// Where the kernel image and modules of `release` ended up below an unpacked root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFiles {
    pub vmlinuz: PathBuf,
    /// `…/modules/<release>` when it holds modules (a `kernel/` directory).
    pub modules_dir: Option<PathBuf>,
}

/// Finds `release`'s image (classic `boot/vmlinuz-<release>` or split
/// `usr/lib/modules/<release>/vmlinuz`) and modules directory below `root`.
pub fn locate_kernel(root: &Path, release: &str) -> Option<KernelFiles> {
    let vmlinuz = [
        root.join("usr/lib/modules").join(release).join("vmlinuz"),
        root.join("boot").join(format!("vmlinuz-{release}")),
        root.join("lib/modules").join(release).join("vmlinuz"),
    ]
    .into_iter()
    .find(|p| p.is_file())?;
    let modules_dir = [
        root.join("lib/modules").join(release),
        root.join("usr/lib/modules").join(release),
    ]
    .into_iter()
    .find(|dir| dir.join("kernel").is_dir());
    Some(KernelFiles {
        vmlinuz,
        modules_dir,
    })
}

/// x86 boot protocol: "HdrS" at 0x202, and at 0x20E the offset (minus 0x200) of the
/// kernel version string, which starts with the release (`uname -r`).
const HEADER_MAGIC_OFFSET: usize = 0x202;
const VERSION_POINTER_OFFSET: usize = 0x20e;
const SETUP_BASE: usize = 0x200;
/// The version string lies in the real-mode setup code, which is at most 64 KiB.
const SETUP_LIMIT: u64 = 64 * 1024;

/// The kernel release a bzImage announces, or None if `head` is not a bzImage with one.
pub fn bzimage_release(head: &[u8]) -> Option<String> {
    if head.get(HEADER_MAGIC_OFFSET..HEADER_MAGIC_OFFSET + 4)? != b"HdrS" {
        return None;
    }
    let pointer = u16::from_le_bytes(
        head.get(VERSION_POINTER_OFFSET..VERSION_POINTER_OFFSET + 2)?
            .try_into()
            .ok()?,
    );
    if pointer == 0 {
        return None;
    }
    let text = head.get(usize::from(pointer) + SETUP_BASE..)?;
    let end = text.iter().position(|&b| b == 0 || b == b' ')?;
    let release = std::str::from_utf8(&text[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_string())
}

/// arm64 boot protocol: the magic `ARM\x64` at 0x38 of an uncompressed `Image`.
const ARM64_MAGIC_OFFSET: usize = 0x38;
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
/// The kernel's banner, `Linux version <release> (<builder>) …`: an arm64 `Image` is not
/// compressed, and the banner is the one place it names its release.
const BANNER: &[u8] = b"Linux version ";

/// The largest kernel image the harness reads (Debian's are about 8 MB for x86_64 and
/// 35 MB for an uncompressed arm64 `Image`, a build with everything in some 15 MB):
/// kernels.toml and `--kernel` name images by path.
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// What a kernel image says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// An x86 bzImage or an arm64 `Image`; `None` for anything else.
    pub arch: Option<Arch>,
    /// The release it announces (`uname -r` in its guest).
    pub release: Option<String>,
}

/// Reads a kernel image's architecture and release. An image that is no regular file (a
/// FIFO, a device) or larger than [`MAX_IMAGE_BYTES`] is an error.
pub fn image_info(path: &Path) -> std::io::Result<ImageInfo> {
    let mut file = crate::input_file::open_regular(path, MAX_IMAGE_BYTES)?;
    let mut head = Vec::new();
    (&mut file).take(SETUP_LIMIT).read_to_end(&mut head)?;
    if let Some(release) = bzimage_release(&head) {
        return Ok(ImageInfo {
            arch: Some(Arch::X86_64),
            release: Some(release),
        });
    }
    if head.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) == Some(ARM64_MAGIC) {
        file.read_to_end(&mut head)?;
        return Ok(ImageInfo {
            arch: Some(Arch::Arm64),
            release: banner_release(&head),
        });
    }
    let is_bzimage = head.get(HEADER_MAGIC_OFFSET..HEADER_MAGIC_OFFSET + 4) == Some(b"HdrS");
    Ok(ImageInfo {
        arch: is_bzimage.then_some(Arch::X86_64),
        release: None,
    })
}

/// The release an image announces (None when it names none the harness can read).
pub fn image_release(path: &Path) -> std::io::Result<Option<String>> {
    Ok(image_info(path)?.release)
}

/// The release of the first `Linux version <release> (` in `image`: the kernel's banner
/// (the other strings that begin alike are formats, `Linux version %s`).
fn banner_release(image: &[u8]) -> Option<String> {
    let mut rest = image;
    while let Some(at) = rest.windows(BANNER.len()).position(|w| w == BANNER) {
        rest = &rest[at + BANNER.len()..];
        let end = rest.iter().take(256).position(|&b| b == b' ')?;
        let release = &rest[..end];
        if !release.is_empty()
            && release.iter().all(|b| b.is_ascii_graphic() && *b != b'%')
            && rest[end..].starts_with(b" (")
        {
            return std::str::from_utf8(release).ok().map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders for fake kernel images and .deb files with the real structure.

    use std::io::Write;

    /// A buffer that passes as an uncompressed arm64 `Image` announcing `release` in its
    /// banner, after a format string that begins alike.
    pub fn fake_arm64_image(release: &str, size: usize) -> Vec<u8> {
        let mut image = vec![0u8; size.max(0x2000)];
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        let text =
            format!("Linux version %s (%s)\0Linux version {release} (builder@fake) (gcc) #1 SMP\0");
        image[0x1000..0x1000 + text.len()].copy_from_slice(text.as_bytes());
        image
    }

    /// A buffer that passes as a bzImage announcing `release`.
    pub fn fake_bzimage(release: &str, size: usize) -> Vec<u8> {
        let mut image = vec![0u8; size.max(0x400)];
        image[0x202..0x206].copy_from_slice(b"HdrS");
        let pointer: u16 = 0x100;
        image[0x20e..0x210].copy_from_slice(&pointer.to_le_bytes());
        let text = format!("{release} (builder@fake) #1 SMP\0");
        let at = usize::from(pointer) + 0x200;
        image[at..at + text.len()].copy_from_slice(text.as_bytes());
        image
    }

    /// A .deb (ar: debian-binary, control.tar.xz, data.tar.xz) holding `files`.
    pub fn fake_deb(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, body) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, format!("./{path}"), *body)
                .unwrap();
        }
        let tar = tar.into_inner().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&tar).unwrap();
        let data = xz.finish().unwrap();
        let mut deb = ar::Builder::new(Vec::new());
        for (name, body) in [
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.xz", Vec::new()),
            ("data.tar.xz", data),
        ] {
            let header = ar::Header::new(name.as_bytes().to_vec(), body.len() as u64);
            deb.append(&header, &body[..]).unwrap();
        }
        deb.into_inner().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{fake_arm64_image, fake_bzimage, fake_deb};
    use super::*;

    #[test]
    fn unpacks_only_kernel_directories_and_finds_the_split_layout() {
        let release = "7.3.4+deb13-cloud-amd64";
        let image = fake_bzimage(release, 4096);
        let deb = fake_deb(&[
            (&format!("usr/lib/modules/{release}/vmlinuz"), &image),
            (
                &format!("usr/lib/modules/{release}/kernel/net/x.ko.xz"),
                b"ko",
            ),
            ("usr/share/doc/linux/changelog.gz", b"doc"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let deb_path = dir.path().join("k.deb");
        std::fs::write(&deb_path, deb).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        unpack_deb(&deb_path, &root).unwrap();
        assert!(
            !root.join("usr/share").exists(),
            "documentation is not extracted"
        );
        let files = locate_kernel(&root, release).unwrap();
        assert_eq!(
            files.vmlinuz,
            root.join(format!("usr/lib/modules/{release}/vmlinuz"))
        );
        assert_eq!(
            files.modules_dir,
            Some(root.join(format!("usr/lib/modules/{release}")))
        );
        assert_eq!(
            image_release(&files.vmlinuz).unwrap().as_deref(),
            Some(release)
        );
    }

    #[test]
    fn a_program_is_extracted_from_bin_or_usr_bin() {
        let dir = tempfile::tempdir().unwrap();
        let deb = dir.path().join("tools.deb");
        std::fs::write(
            &deb,
            fake_deb(&[
                ("usr/share/doc/busybox/busybox", b"doc"),
                ("bin/busybox", b"busybox"),
                ("usr/bin/bash-static", b"bash"),
            ]),
        )
        .unwrap();
        let to = dir.path().join("out");
        extract_program(&deb, "busybox", &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"busybox");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&to).unwrap().permissions().mode() & 0o777,
            0o755
        );
        extract_program(&deb, "bash-static", &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"bash");
        let err = extract_program(&deb, "kmod", &to).unwrap_err();
        assert!(matches!(err, UnpackError::NoProgram { .. }), "{err}");
    }

    #[test]
    fn classic_layout_without_modules() {
        let release = "6.19.14+deb13-cloud-amd64";
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("boot")).unwrap();
        std::fs::write(dir.path().join(format!("boot/vmlinuz-{release}")), b"x").unwrap();
        let files = locate_kernel(dir.path(), release).unwrap();
        assert_eq!(
            files.vmlinuz,
            dir.path().join(format!("boot/vmlinuz-{release}"))
        );
        assert_eq!(files.modules_dir, None);
        assert_eq!(locate_kernel(dir.path(), "6.1.0-50-cloud-amd64"), None);
    }

    #[test]
    fn not_a_deb() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.deb");
        std::fs::write(&path, b"!<arch>\n").unwrap();
        let err = unpack_deb(&path, dir.path()).unwrap_err();
        assert!(matches!(err, UnpackError::NoData { .. }), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            unpack_deb(&path, dir.path()),
            Err(UnpackError::Read { .. })
        ));
    }

    #[test]
    fn an_arm64_image_names_its_release_in_its_banner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmlinuz");
        std::fs::write(&path, fake_arm64_image("6.1.0-50-cloud-arm64", 0x3000)).unwrap();
        assert_eq!(
            image_info(&path).unwrap(),
            ImageInfo {
                arch: Some(Arch::Arm64),
                release: Some("6.1.0-50-cloud-arm64".into())
            }
        );
        std::fs::write(&path, fake_bzimage("6.1.0-50-cloud-amd64", 4096)).unwrap();
        assert_eq!(image_info(&path).unwrap().arch, Some(Arch::X86_64));
        std::fs::write(&path, b"\x7fELF and nothing a boot loader reads").unwrap();
        assert_eq!(
            image_info(&path).unwrap(),
            ImageInfo {
                arch: None,
                release: None
            }
        );
        assert_eq!(banner_release(b"Linux version %s (x)"), None);
        assert_eq!(
            banner_release(b"Linux version 6.1"),
            None,
            "no builder after it"
        );
    }

    #[test]
    fn bzimage_header_parsing() {
        assert_eq!(
            bzimage_release(&fake_bzimage("6.1.0-50-cloud-amd64", 2048)).as_deref(),
            Some("6.1.0-50-cloud-amd64")
        );
        assert_eq!(bzimage_release(b"\x7fELF"), None);
        let mut no_pointer = fake_bzimage("x", 2048);
        no_pointer[0x20e..0x210].copy_from_slice(&[0, 0]);
        assert_eq!(bzimage_release(&no_pointer), None);
        let truncated = &fake_bzimage("6.1", 2048)[..0x210];
        assert_eq!(bzimage_release(truncated), None);
    }
}
