//! A suite's signed index: `dists/<suite>/InRelease` (verified with gpgv against the archive
//! keyring, as apt does) → SHA256 of `main/binary-<arch>/Packages.*` → the kernel stanzas.
//!
//! `Valid-Until` is deliberately not enforced: mirrors and snapshots serve signed but
//! expired indexes (sid's here is weeks past it), and every file is still pinned by SHA256
//! through the signed chain.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::download::{FetchError, FileDigest, Http};
use super::select::{PackageStanza, parse_kernel_stanzas};

/// The kernel packages of one suite and architecture, and the guest tools'.
#[derive(Debug, Clone)]
pub struct SuiteIndex {
    /// The Release file's `Date` field, for the resolution record.
    pub date: Option<String>,
    pub packages: Vec<PackageStanza>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "the mirror has no suite {suite} ({url} answered HTTP 404); check the suite name and that {mirror} is a Debian archive root (the directory holding dists/ and pool/)"
    )]
    UnknownSuite {
        suite: String,
        url: String,
        mirror: String,
    },
    #[error("cannot fetch the index of {suite}")]
    Fetch {
        suite: String,
        #[source]
        source: FetchError,
    },
    #[error("archive keyring {} is missing; install the debian-archive-keyring package or set `keyring` in kernels.toml", path.display())]
    KeyringMissing { path: PathBuf },
    #[error("cannot run gpgv to check {url}; install the gpgv package")]
    GpgvMissing {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url} is not signed by a key of {}: gpgv said: {gpgv_output}", keyring.display())]
    BadSignature {
        url: String,
        keyring: PathBuf,
        gpgv_output: String,
    },
    #[error("the signed Release of {suite} lists no {component}/binary-{arch}/Packages index")]
    NoPackagesIndex {
        suite: String,
        component: String,
        arch: String,
    },
    #[error("cannot decompress {url}")]
    Decompress {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

/// InRelease files are a few hundred KB; anything far larger is not one.
const INRELEASE_LIMIT: u64 = 32 * 1024 * 1024;
const COMPONENT: &str = "main";

/// Fetches and verifies the index of `suite` for `arch` and keeps its kernel stanzas.
pub fn fetch_suite_index(
    http: &Http,
    mirror: &str,
    suite: &str,
    arch: &str,
    keyring: &Path,
) -> Result<SuiteIndex, IndexError> {
    let fetch_error = |source| IndexError::Fetch {
        suite: suite.to_string(),
        source,
    };
    let inrelease_url = format!("{mirror}/dists/{suite}/InRelease");
    let signed = http
        .get(&inrelease_url, INRELEASE_LIMIT)
        .map_err(|e| match e.status() {
            Some(404) => IndexError::UnknownSuite {
                suite: suite.to_string(),
                url: inrelease_url.clone(),
                mirror: mirror.to_string(),
            },
            _ => fetch_error(e),
        })?;
    let release = verify_inrelease(&signed, keyring, &inrelease_url)?;
    let release = parse_release(&release);
    let entry = pick_packages_index(&release, COMPONENT, arch).ok_or_else(|| {
        IndexError::NoPackagesIndex {
            suite: suite.to_string(),
            component: COMPONENT.to_string(),
            arch: arch.to_string(),
        }
    })?;
    let url = packages_url(mirror, suite, &release, entry);
    let compressed = http
        .get_verified(&url, &entry.digest)
        .map_err(fetch_error)?;
    let text = decompress(&compressed, &entry.path)
        .map_err(|source| IndexError::Decompress { url, source })?;
    Ok(SuiteIndex {
        date: release.date,
        packages: parse_kernel_stanzas(&text),
    })
}

/// Checks the InRelease signature with gpgv and returns the signed text only, so nothing
/// outside the signature can influence what is parsed.
pub fn verify_inrelease(signed: &[u8], keyring: &Path, url: &str) -> Result<String, IndexError> {
    if !keyring.is_file() {
        return Err(IndexError::KeyringMissing {
            path: keyring.to_path_buf(),
        });
    }
    let output = duct::cmd!("gpgv", "--keyring", keyring, "--output", "-", "-")
        .stdin_bytes(signed)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|source| IndexError::GpgvMissing {
            url: url.to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(IndexError::BadSignature {
            url: url.to_string(),
            keyring: keyring.to_path_buf(),
            gpgv_output: String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', "; "),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The fields of a Release file this module uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Release {
    pub date: Option<String>,
    /// The mirror serves indexes under `by-hash/SHA256/<hash>` too, which cannot change
    /// between reading InRelease and fetching the index.
    pub acquire_by_hash: bool,
    pub sha256: Vec<ReleaseEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEntry {
    /// Path below `dists/<suite>/`.
    pub path: String,
    pub digest: FileDigest,
}

pub fn parse_release(text: &str) -> Release {
    let mut release = Release::default();
    let mut in_sha256 = false;
    for line in text.lines() {
        if let Some(entry) = line.strip_prefix(' ') {
            if in_sha256 {
                let mut words = entry.split_whitespace();
                if let (Some(sha256), Some(Ok(size)), Some(path)) = (
                    words.next(),
                    words.next().map(str::parse::<u64>),
                    words.next(),
                ) {
                    release.sha256.push(ReleaseEntry {
                        path: path.to_string(),
                        digest: FileDigest {
                            size,
                            sha256: sha256.to_ascii_lowercase(),
                        },
                    });
                }
            }
            continue;
        }
        let (key, value) = line.split_once(':').unwrap_or((line, ""));
        in_sha256 = key == "SHA256";
        match key {
            "Date" => release.date = Some(value.trim().to_string()),
            "Acquire-By-Hash" => release.acquire_by_hash = value.trim() == "yes",
            _ => {}
        }
    }
    release
}

/// The Packages index to download: xz, else gzip, else uncompressed.
pub fn pick_packages_index<'a>(
    release: &'a Release,
    component: &str,
    arch: &str,
) -> Option<&'a ReleaseEntry> {
    let base = format!("{component}/binary-{arch}/Packages");
    ["xz", "gz", ""].into_iter().find_map(|extension| {
        let path = match extension {
            "" => base.clone(),
            extension => format!("{base}.{extension}"),
        };
        release.sha256.iter().find(|e| e.path == path)
    })
}

fn packages_url(mirror: &str, suite: &str, release: &Release, entry: &ReleaseEntry) -> String {
    if release.acquire_by_hash {
        let dir = entry.path.rsplit_once('/').map_or("", |(dir, _)| dir);
        format!(
            "{mirror}/dists/{suite}/{dir}/by-hash/SHA256/{}",
            entry.digest.sha256
        )
    } else {
        format!("{mirror}/dists/{suite}/{}", entry.path)
    }
}

/// Decompresses by the index's file name (`.xz`, `.gz` or plain).
fn decompress(bytes: &[u8], path: &str) -> std::io::Result<String> {
    let mut text = String::new();
    if path.ends_with(".xz") {
        liblzma::read::XzDecoder::new(bytes).read_to_string(&mut text)?;
    } else if path.ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes).read_to_string(&mut text)?;
    } else {
        (&bytes[..]).read_to_string(&mut text)?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::config::DEFAULT_KEYRING;

    /// A real InRelease as Debian signed it (trixie-backports, 2026-11-24).
    const INRELEASE: &[u8] = include_bytes!("../../tests/data/InRelease.trixie-backports");

    /// The archive keyring, or None (with the reason printed) where the host lacks it.
    fn archive_keyring() -> Option<PathBuf> {
        let path = PathBuf::from(DEFAULT_KEYRING);
        if !path.is_file() {
            eprintln!("skipped: {DEFAULT_KEYRING} is absent (install debian-archive-keyring)");
            return None;
        }
        if duct::cmd!("gpgv", "--version").stdout_null().run().is_err() {
            eprintln!("skipped: gpgv is not installed");
            return None;
        }
        Some(path)
    }

    #[test]
    fn real_inrelease_verifies_and_names_the_packages_index() {
        let Some(keyring) = archive_keyring() else {
            return;
        };
        let text = verify_inrelease(INRELEASE, &keyring, "InRelease").unwrap();
        assert!(
            !text.contains("BEGIN PGP"),
            "only the signed text is returned"
        );
        let release = parse_release(&text);
        assert_eq!(
            release.date.as_deref(),
            Some("Tue, 24 Nov 2026 02:12:15 UTC")
        );
        assert!(release.acquire_by_hash);
        let entry = pick_packages_index(&release, "main", "amd64").unwrap();
        assert_eq!(entry.path, "main/binary-amd64/Packages.xz");
        assert_eq!(
            entry.digest,
            FileDigest {
                size: 311828,
                sha256: "76b4be28e3ff8280841fc840f8031e61150f757cd7b264b9e4c1c1b1908b7c6b".into()
            }
        );
        assert_eq!(
            packages_url(
                "http://m.invalid/debian",
                "trixie-backports",
                &release,
                entry
            ),
            "http://m.invalid/debian/dists/trixie-backports/main/binary-amd64/by-hash/SHA256/\
             76b4be28e3ff8280841fc840f8031e61150f757cd7b264b9e4c1c1b1908b7c6b"
        );
    }

    #[test]
    fn tampered_inrelease_is_rejected() {
        let Some(keyring) = archive_keyring() else {
            return;
        };
        let text = String::from_utf8(INRELEASE.to_vec()).unwrap();
        // Swap one listed hash for another: exactly what an attacker would do.
        let tampered = text.replacen("76b4be28e3ff", "76b4be28e3fe", 1);
        assert_ne!(tampered, text);
        let err = verify_inrelease(tampered.as_bytes(), &keyring, "InRelease").unwrap_err();
        assert!(matches!(err, IndexError::BadSignature { .. }), "{err}");
        assert!(err.to_string().contains("BAD signature"), "{err}");
    }

    #[test]
    fn missing_keyring_is_reported() {
        let err = verify_inrelease(INRELEASE, Path::new("/nonexistent.gpg"), "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "archive keyring /nonexistent.gpg is missing; install the debian-archive-keyring \
             package or set `keyring` in kernels.toml"
        );
    }

    #[test]
    fn release_parsing_prefers_xz_then_gz() {
        let text = "Date: X\nSHA256:\n aa 10 main/binary-amd64/Packages\n bb 5 main/binary-amd64/Packages.gz\n\
                    MD5Sum:\n cc 3 main/binary-amd64/Packages.xz\n";
        let release = parse_release(text);
        assert!(!release.acquire_by_hash);
        assert_eq!(release.sha256.len(), 2, "MD5 lines are not SHA256 entries");
        let entry = pick_packages_index(&release, "main", "amd64").unwrap();
        assert_eq!(entry.path, "main/binary-amd64/Packages.gz");
        assert_eq!(
            packages_url("http://m", "s", &release, entry),
            "http://m/dists/s/main/binary-amd64/Packages.gz"
        );
        assert!(pick_packages_index(&release, "main", "arm64").is_none());
    }

    #[test]
    fn decompresses_by_extension() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"Package: linux-x\n").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            decompress(&gz, "Packages.gz").unwrap(),
            "Package: linux-x\n"
        );
        let mut xz = Vec::new();
        liblzma::read::XzEncoder::new(&b"abc"[..], 1)
            .read_to_end(&mut xz)
            .unwrap();
        assert_eq!(decompress(&xz, "Packages.xz").unwrap(), "abc");
        assert!(decompress(b"not xz", "Packages.xz").is_err());
    }
}
