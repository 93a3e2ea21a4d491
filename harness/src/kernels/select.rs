//! Choosing a kernel's packages from a suite's Packages index (pure functions).
//!
//! Debian ships a kernel in one of two layouts, and the `linux-image-<release>` package
//! exists in both, so it is the anchor:
//! - classic (up to 6.18): `linux-image-<release>` holds `boot/vmlinuz-<release>` and the
//!   modules under `lib/modules/<release>` or `usr/lib/modules/<release>`;
//! - split (6.19 and later): `linux-image-<release>` is an empty package that depends on
//!   `linux-binary-<release>` (the vmlinuz), `linux-modules-<release>` and
//!   `linux-base-<release>` (config, modules.builtin). Backports sometimes carry only the
//!   signed `linux-binary` of a release, without its modules or base: such a kernel still
//!   boots (everything the harness needs is built in), so those two are optional.

use std::cmp::Ordering;

use super::config::{DebianSelector, DebianSource};
use super::download::FileDigest;

/// The fields of one Packages stanza that selection and download need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageStanza {
    pub package: String,
    pub version: String,
    /// Path below the mirror root (`pool/main/l/…`).
    pub filename: String,
    pub digest: FileDigest,
    /// The raw Depends field (empty when absent).
    pub depends: String,
}

/// A package to download and unpack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub filename: String,
    #[serde(flatten)]
    pub digest: FileDigest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    Classic,
    Split,
}

/// The packages that make up one Debian kernel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SelectedKernel {
    /// Kernel release as `uname -r` prints it, e.g. `6.12.117+deb13-cloud-amd64`.
    pub release: String,
    /// Debian version of the packages, e.g. `6.12.117-1`.
    pub version: String,
    pub layout: Layout,
    pub packages: Vec<DebPackage>,
    /// Optional packages of the split layout that the suite does not carry.
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error(
        "no {flavour} kernel {selector} in {suite}; it carries {}",
        if available.is_empty() { format!("no {flavour} kernels at all (is the suite name right?)") } else { available.join(", ") }
    )]
    NoMatch {
        suite: String,
        selector: String,
        flavour: String,
        available: Vec<String>,
    },
    #[error(
        "{suite}: {image} depends on {binary}, which the index does not list at version {version}; the suite is probably being updated, try again later"
    )]
    MissingBinary {
        suite: String,
        image: String,
        binary: String,
        version: String,
    },
}

/// A package and the program of it that the guest runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestTool {
    pub package: &'static str,
    /// The program's name in the package's `bin/` (or `usr/bin/`).
    pub program: &'static str,
}

/// The static programs a guest of a foreign architecture runs besides the harness (see
/// [`guest_tools`](super::guest_tools)): Debian's statically linked busybox and bash, since
/// the guest's root has no C library.
pub const GUEST_TOOLS: [GuestTool; 2] = [BUSYBOX, BASH];
pub const BUSYBOX: GuestTool = GuestTool {
    package: "busybox-static",
    program: "busybox",
};
pub const BASH: GuestTool = GuestTool {
    package: "bash-static",
    program: "bash-static",
};

/// Whether a Packages stanza of this name is one of the guest tools'.
pub fn is_guest_tool(package: &str) -> bool {
    GUEST_TOOLS.iter().any(|tool| tool.package == package)
}

/// Parses the stanzas of a Packages index of the kernels (package names starting with
/// `linux-`) and of the static programs a guest of a foreign architecture runs
/// ([`GUEST_TOOLS`]).
///
/// Only those are kept: a suite's index is ~60 MB and kernels are a few hundred stanzas.
pub fn parse_kernel_stanzas(index: &str) -> Vec<PackageStanza> {
    index
        .split("\n\n")
        .filter(|stanza| {
            let first = stanza.trim_start().lines().next().unwrap_or_default();
            first
                .strip_prefix("Package: ")
                .is_some_and(|name| name.starts_with("linux-") || is_guest_tool(name.trim()))
        })
        .filter_map(parse_stanza)
        .collect()
}

fn parse_stanza(stanza: &str) -> Option<PackageStanza> {
    // deb822: "Field: value", continued on following lines that start with whitespace.
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in stanza.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key, value.trim().to_string()));
        }
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    };
    Some(PackageStanza {
        package: field("Package")?,
        version: field("Version")?,
        filename: field("Filename")?,
        digest: FileDigest {
            size: field("Size")?.parse().ok()?,
            sha256: field("SHA256")?.to_ascii_lowercase(),
        },
        depends: field("Depends").unwrap_or_default(),
    })
}

/// Upstream part of a Debian version: `6.19.14-1~bpo13+1` → `6.19.14`.
pub fn upstream_version(version: &str) -> &str {
    let rest = version.split_once(':').map_or(version, |(_, rest)| rest);
    rest.rsplit_once('-').map_or(rest, |(upstream, _)| upstream)
}

fn selector_matches(selector: &DebianSelector, version: &str) -> bool {
    let upstream = upstream_version(version);
    match selector {
        DebianSelector::Series(series) => {
            upstream == series
                || upstream
                    .strip_prefix(series.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        }
        DebianSelector::Version(wanted) => upstream == wanted || version == wanted,
    }
}

/// Names of packages in a Depends field (alternatives and version constraints dropped).
fn dependency_names(depends: &str) -> impl Iterator<Item = &str> {
    depends
        .split([',', '|'])
        .filter_map(|alternative| alternative.split_whitespace().next())
        .map(|name| name.split(':').next().unwrap_or(name))
}

/// The versioned kernel images of `flavour` (stanza and release).
fn flavour_images<'a>(
    stanzas: &'a [PackageStanza],
    flavour: &str,
) -> Vec<(&'a PackageStanza, &'a str)> {
    let flavour_suffix = format!("-{flavour}");
    stanzas
        .iter()
        .filter_map(|s| {
            let release = s.package.strip_prefix("linux-image-")?;
            // `linux-image-cloud-amd64` (the unversioned metapackage) and the -dbg /
            // -unsigned variants do not end in "<digit…>-<flavour>" and drop out here.
            (release.ends_with(&flavour_suffix)
                && release.starts_with(|c: char| c.is_ascii_digit()))
            .then_some((s, release))
        })
        .collect()
}

/// The Debian versions of every `flavour` kernel the index carries, oldest first: the
/// ladder a bisection walks (each is a valid [`DebianSelector::Version`]).
pub fn kernel_versions(stanzas: &[PackageStanza], flavour: &str) -> Vec<String> {
    let mut versions: Vec<String> = flavour_images(stanzas, flavour)
        .into_iter()
        .map(|(s, _)| s.version.clone())
        .collect();
    versions.sort_by(|a, b| compare_versions(a, b));
    versions.dedup();
    versions
}

/// Picks the newest kernel of `source.flavour` matching the selector, and its packages.
pub fn select_kernel(
    stanzas: &[PackageStanza],
    source: &DebianSource,
) -> Result<SelectedKernel, SelectError> {
    let images = flavour_images(stanzas, &source.flavour);
    let (image, release) = images
        .iter()
        .filter(|(s, _)| selector_matches(&source.selector, &s.version))
        .max_by(|a, b| compare_versions(&a.0.version, &b.0.version))
        .copied()
        .ok_or_else(|| {
            let mut available: Vec<&str> = images
                .iter()
                .map(|(s, _)| upstream_version(&s.version))
                .collect();
            available.sort_by(|a, b| compare_versions(a, b));
            available.dedup();
            SelectError::NoMatch {
                suite: source.suite.clone(),
                selector: source.selector.to_string(),
                flavour: source.flavour.clone(),
                available: available.into_iter().map(str::to_string).collect(),
            }
        })?;
    let find = |name: &str| {
        stanzas
            .iter()
            .find(|s| s.package == name && s.version == image.version)
            .map(to_deb_package)
    };
    let binary_name = format!("linux-binary-{release}");
    let split = dependency_names(&image.depends).any(|dep| dep == binary_name);
    let (layout, packages, missing) = if split {
        let binary = find(&binary_name).ok_or_else(|| SelectError::MissingBinary {
            suite: source.suite.clone(),
            image: image.package.clone(),
            binary: binary_name.clone(),
            version: image.version.clone(),
        })?;
        let mut packages = vec![binary];
        let mut missing = Vec::new();
        for optional in [
            format!("linux-modules-{release}"),
            format!("linux-base-{release}"),
        ] {
            match find(&optional) {
                Some(package) => packages.push(package),
                None => missing.push(optional),
            }
        }
        (Layout::Split, packages, missing)
    } else {
        (Layout::Classic, vec![to_deb_package(image)], Vec::new())
    };
    Ok(SelectedKernel {
        release: release.to_string(),
        version: image.version.clone(),
        layout,
        packages,
        missing,
    })
}

/// The newest version of the package `name` in the index.
pub fn select_package(stanzas: &[PackageStanza], name: &str) -> Option<DebPackage> {
    stanzas
        .iter()
        .filter(|s| s.package == name)
        .max_by(|a, b| compare_versions(&a.version, &b.version))
        .map(to_deb_package)
}

fn to_deb_package(stanza: &PackageStanza) -> DebPackage {
    DebPackage {
        name: stanza.package.clone(),
        version: stanza.version.clone(),
        filename: stanza.filename.clone(),
        digest: stanza.digest.clone(),
    }
}

/// Debian version ordering, as dpkg compares versions (`~` sorts before everything, digit
/// runs numerically). A version that does not parse (no index carries one) sorts by its text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (
        a.parse::<debversion::Version>(),
        b.parse::<debversion::Version>(),
    ) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kernel stanzas cut from real trixie-backports and bookworm indexes.
    const TRIXIE_BACKPORTS: &str = include_str!("../../tests/data/Packages.trixie-backports");
    const BOOKWORM: &str = include_str!("../../tests/data/Packages.bookworm");
    /// Kernel and guest tool stanzas cut from bookworm's arm64 index.
    const BOOKWORM_ARM64: &str = include_str!("../../tests/data/Packages.bookworm-arm64");

    fn source(suite: &str, selector: DebianSelector) -> DebianSource {
        DebianSource {
            suite: suite.into(),
            selector,
            flavour: "cloud-amd64".into(),
        }
    }

    fn names(kernel: &SelectedKernel) -> Vec<&str> {
        kernel.packages.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn dpkg_version_order() {
        use Ordering::*;
        let cases = [
            ("6.19.14-1~bpo13+1", "6.19.6-1~bpo13+1", Greater),
            ("5.10.223-1", "5.10.218-1", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0-1", "1.0-1+b1", Less),
            ("1:0.1", "9.9", Greater),
            ("7.0.10-1", "7.0.9-1", Greater),
            ("1.0a", "1.0", Greater),
            ("1.001", "1.1", Equal),
            ("6.1.176-1", "6.1.176-1", Equal),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_versions(a, b), expected, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn the_ladder_of_a_suite_in_version_order() {
        let stanzas = parse_kernel_stanzas(TRIXIE_BACKPORTS);
        let versions = kernel_versions(&stanzas, "cloud-amd64");
        let at = |v: &str| versions.iter().position(|x| x == v).expect(v);
        // Digit runs compare as numbers: 6.19.6 < 6.19.14, 7.0.13 < 7.1.3.
        assert!(
            at("6.19.6-2~bpo13+1") < at("6.19.14-1~bpo13+1"),
            "{versions:?}"
        );
        assert_eq!(
            at("7.0.13-1~bpo13+1") + 1,
            at("7.1.3-1~bpo13+1"),
            "{versions:?}"
        );
        assert_eq!(versions.last().map(String::as_str), Some("7.3.4-1~bpo13+1"));
    }

    #[test]
    fn newest_of_a_series_in_the_split_layout() {
        let stanzas = parse_kernel_stanzas(TRIXIE_BACKPORTS);
        let k = select_kernel(
            &stanzas,
            &source("trixie-backports", DebianSelector::Series("7.3".into())),
        )
        .unwrap();
        assert_eq!(k.release, "7.3.4+deb13-cloud-amd64");
        assert_eq!(k.version, "7.3.4-1~bpo13+1");
        assert_eq!(k.layout, Layout::Split);
        assert_eq!(
            names(&k),
            [
                "linux-binary-7.3.4+deb13-cloud-amd64",
                "linux-modules-7.3.4+deb13-cloud-amd64",
                "linux-base-7.3.4+deb13-cloud-amd64"
            ]
        );
        assert!(k.missing.is_empty());
        assert_eq!(k.packages[0].digest.size, 13604064);
        assert_eq!(
            k.packages[0].digest.sha256,
            "c4fbc8e404958693b28825474c20742d70594d65ca58aea7be6a279c81eb6fa0"
        );
        assert_eq!(
            k.packages[0].filename,
            "pool/main/l/linux-signed-amd64/linux-binary-7.3.4+deb13-cloud-amd64_7.3.4-1~bpo13+1_amd64.deb"
        );
    }

    #[test]
    fn split_layout_without_modules_in_the_suite() {
        let stanzas = parse_kernel_stanzas(TRIXIE_BACKPORTS);
        let k = select_kernel(
            &stanzas,
            &source("trixie-backports", DebianSelector::Series("6.19".into())),
        )
        .unwrap();
        // 6.19.14 sorts above 6.19.6 only with numeric comparison of digit runs.
        assert_eq!(k.release, "6.19.14+deb13-cloud-amd64");
        assert_eq!(names(&k), ["linux-binary-6.19.14+deb13-cloud-amd64"]);
        assert_eq!(
            k.missing,
            [
                "linux-modules-6.19.14+deb13-cloud-amd64",
                "linux-base-6.19.14+deb13-cloud-amd64"
            ]
        );
    }

    #[test]
    fn exact_version_and_classic_layout() {
        let stanzas = parse_kernel_stanzas(TRIXIE_BACKPORTS);
        let k = select_kernel(
            &stanzas,
            &source("trixie-backports", DebianSelector::Version("6.19.6".into())),
        )
        .unwrap();
        assert_eq!(k.release, "6.19.6+deb13-cloud-amd64");
        let k = select_kernel(
            &stanzas,
            &source(
                "trixie-backports",
                DebianSelector::Version("6.18.15-1~bpo13+1".into()),
            ),
        )
        .unwrap();
        assert_eq!(k.layout, Layout::Classic);
        assert_eq!(names(&k), ["linux-image-6.18.15+deb13-cloud-amd64"]);

        let stanzas = parse_kernel_stanzas(BOOKWORM);
        let k = select_kernel(
            &stanzas,
            &source("bookworm", DebianSelector::Series("6.1".into())),
        )
        .unwrap();
        assert_eq!(k.release, "6.1.0-50-cloud-amd64");
        assert_eq!(k.layout, Layout::Classic);
        assert_eq!(names(&k), ["linux-image-6.1.0-50-cloud-amd64"]);
    }

    #[test]
    fn arm64_cloud_kernels_and_the_guest_tools_of_an_arm64_index() {
        let stanzas = parse_kernel_stanzas(BOOKWORM_ARM64);
        let source = DebianSource {
            flavour: crate::vm::Arch::Arm64.default_flavour(),
            ..source("bookworm", DebianSelector::Series("6.1".into()))
        };
        let k = select_kernel(&stanzas, &source).unwrap();
        // Not the plain arm64 flavour of the same release, nor -dbg or -unsigned.
        assert_eq!(k.release, "6.1.0-50-cloud-arm64");
        assert_eq!(k.layout, Layout::Classic);
        assert_eq!(
            k.packages[0].filename,
            "pool/main/l/linux-signed-arm64/linux-image-6.1.0-50-cloud-arm64_6.1.176-1_arm64.deb"
        );
        assert_eq!(
            kernel_versions(&stanzas, "cloud-arm64"),
            ["6.1.170-3", "6.1.176-1"]
        );
        // busybox and bash link glibc: only their -static packages are kept and chosen.
        let kept: Vec<&str> = stanzas
            .iter()
            .map(|s| s.package.as_str())
            .filter(|name| !name.starts_with("linux-"))
            .collect();
        assert_eq!(kept, ["bash-static", "busybox-static"]);
        let busybox = select_package(&stanzas, "busybox-static").unwrap();
        assert_eq!(busybox.version, "1:1.35.0-4+deb12u1+b1");
        assert_eq!(
            busybox.filename,
            "pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb"
        );
        assert_eq!(busybox.digest.size, 822236);
        assert_eq!(select_package(&stanzas, "kmod"), None);
    }

    #[test]
    fn no_match_lists_what_the_suite_carries() {
        let stanzas = parse_kernel_stanzas(BOOKWORM);
        let err = select_kernel(
            &stanzas,
            &source("bookworm", DebianSelector::Series("6.12".into())),
        )
        .unwrap_err();
        let SelectError::NoMatch { available, .. } = &err else {
            panic!("{err}")
        };
        assert!(available.len() >= 2, "{available:?}");
        assert!(
            available.iter().all(|v| v.starts_with("6.1.")),
            "{available:?}"
        );
        assert!(
            err.to_string()
                .starts_with("no cloud-amd64 kernel 6.12.x in bookworm; it carries 6.1."),
            "{err}"
        );
        // "6.1" must not match "6.12.x", nor "6.19" match "6.1".
        assert!(!selector_matches(
            &DebianSelector::Series("6.1".into()),
            "6.12.117-1"
        ));
        assert!(selector_matches(
            &DebianSelector::Series("6.1".into()),
            "6.1.176-1"
        ));
    }

    #[test]
    fn split_image_without_binary_is_an_error() {
        let stanzas: Vec<PackageStanza> = parse_kernel_stanzas(TRIXIE_BACKPORTS)
            .into_iter()
            .filter(|s| !s.package.starts_with("linux-binary-7.3.4"))
            .collect();
        let err = select_kernel(
            &stanzas,
            &source("trixie-backports", DebianSelector::Series("7.3".into())),
        )
        .unwrap_err();
        assert!(matches!(err, SelectError::MissingBinary { .. }), "{err}");
    }

    #[test]
    fn stanza_parsing_keeps_only_kernels_and_needs_every_field() {
        let text = "Package: bash\nVersion: 5\nFilename: f\nSize: 1\nSHA256: AB\n\n\
                    Package: linux-image-1.2.3-cloud-amd64\nVersion: 1.2.3-1\nDepends: kmod,\n a (>= 1) | b\n\
                    Filename: pool/x.deb\nSize: 42\nSHA256: AB\n\n\
                    Package: linux-broken\nVersion: 1\n";
        let stanzas = parse_kernel_stanzas(text);
        assert_eq!(stanzas.len(), 1);
        assert_eq!(
            stanzas[0].digest,
            FileDigest {
                size: 42,
                sha256: "ab".into()
            }
        );
        assert_eq!(stanzas[0].filename, "pool/x.deb");
        assert_eq!(stanzas[0].depends, "kmod, a (>= 1) | b");
        let deps: Vec<&str> = dependency_names("kmod, linux-binary-7 (= 1) | x:any, y").collect();
        assert_eq!(deps, ["kmod", "linux-binary-7", "x", "y"]);
    }
}
