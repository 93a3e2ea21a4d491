//! Unpacking kernel .debs (ar → data.tar.{xz,gz} → files) and finding the kernel in them.
//!
//! Only `boot/`, `lib/modules/` and `usr/lib/modules/` are extracted: that is where the
//! image and modules live, and vng finds the modules by walking up from the image to a
//! `lib/modules/<release>` or `usr/lib/modules/<release>` directory, which this layout keeps.

use std::io::Read;
use std::path::{Path, PathBuf};

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
        return extract_kept(data, root).map_err(|source| UnpackError::Extract {
            deb: deb.to_path_buf(),
            into: root.to_path_buf(),
            source,
        });
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

/// The largest kernel image the harness reads (Debian's are about 8 MB, a build with
/// everything in some 15 MB): kernels.toml and `--kernel` name images by path.
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// Reads the release from a kernel image file (None when it is not a bzImage). An image
/// that is no regular file (a FIFO, a device) or larger than [`MAX_IMAGE_BYTES`] is an
/// error.
pub fn image_release(path: &Path) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    crate::input_file::open_regular(path, MAX_IMAGE_BYTES)?
        .take(SETUP_LIMIT)
        .read_to_end(&mut head)?;
    Ok(bzimage_release(&head))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders for fake kernel images and .deb files with the real structure.

    use std::io::Write;

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
    use super::test_support::{fake_bzimage, fake_deb};
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
