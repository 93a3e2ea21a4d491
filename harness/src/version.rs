//! Kernel versions and the half-open version ranges that expectations are keyed by.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A kernel version as `major.minor.patch`; what expectations are compared against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    /// Whether `self` and `next` are adjacent releases: consecutive series, or consecutive
    /// point releases of one series, so no release lies between them.
    pub fn adjacent_to(self, next: KernelVersion) -> bool {
        let same_series = self.major == next.major && self.minor == next.minor;
        let next_series = (self.major == next.major && next.minor == self.minor + 1)
            || (next.major == self.major + 1 && next.minor == 0);
        (same_series && next.patch == self.patch + 1) || next_series
    }

    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// The kernel this process runs on, from uname(2).
    ///
    /// Debian's older kernels report a release of `5.10.0-30-cloud-amd64` while the real
    /// sublevel is only in the version string (`#1 SMP Debian 5.10.218-1 …`); prefer that so
    /// point releases can be told apart.
    pub fn running() -> Result<(Self, String), VersionError> {
        let uts = nix::sys::utsname::uname().map_err(|errno| VersionError {
            text: "uname".into(),
            problem: errno.desc().into(),
        })?;
        let release = uts.release().to_string_lossy().into_owned();
        let version = uts.version().to_string_lossy().into_owned();
        Ok((Self::from_uname(&release, &version)?, release))
    }

    pub fn from_uname(release: &str, version: &str) -> Result<Self, VersionError> {
        let from_release = Self::parse_prefix(release)?;
        let debian = version
            .split_whitespace()
            .skip_while(|word| *word != "Debian")
            .nth(1)
            .and_then(|word| Self::parse_prefix(word).ok());
        Ok(match debian {
            Some(d) if d.major == from_release.major && d.minor == from_release.minor => d,
            _ => from_release,
        })
    }

    /// Parses the leading `x.y[.z]` of a string such as `6.12.117+deb13-cloud-amd64`.
    fn parse_prefix(text: &str) -> Result<Self, VersionError> {
        let bad = |problem: &str| VersionError {
            text: text.to_string(),
            problem: problem.to_string(),
        };
        let mut numbers = text
            .split(|c: char| !c.is_ascii_digit())
            .take_while(|part| !part.is_empty())
            .map(str::parse::<u32>);
        let mut next = || {
            numbers
                .next()
                .transpose()
                .map_err(|_| bad("number too large"))
        };
        let major = next()?.ok_or_else(|| bad("expected a version such as 5.10 or 6.12.117"))?;
        let minor = next()?.ok_or_else(|| bad("expected major.minor, such as 5.10"))?;
        let patch = next()?.unwrap_or(0);
        Ok(Self::new(major, minor, patch))
    }
}

impl FromStr for KernelVersion {
    type Err = VersionError;

    /// Strict: the whole string must be `major.minor` or `major.minor.patch`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('.').collect();
        let valid = (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return Err(VersionError {
                text: text.to_string(),
                problem: "expected a version such as \"5.10\" or \"6.12.117\"".into(),
            });
        }
        Self::parse_prefix(text)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patch == 0 {
            write!(f, "{}.{}", self.major, self.minor)
        } else {
            write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
        }
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid kernel version {text:?}: {problem}")]
pub struct VersionError {
    pub text: String,
    pub problem: String,
}

/// `[since, until)`: `since` inclusive, `until` exclusive, either side open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VersionRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<KernelVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<KernelVersion>,
}

impl VersionRange {
    pub fn contains(&self, version: KernelVersion) -> bool {
        self.since.is_none_or(|since| version >= since)
            && self.until.is_none_or(|until| version < until)
    }

    pub fn is_empty(&self) -> bool {
        matches!((self.since, self.until), (Some(s), Some(u)) if s >= u)
    }

    pub fn overlaps(&self, other: &Self) -> bool {
        let starts_before_other_ends = match (self.since, other.until) {
            (Some(s), Some(u)) => s < u,
            _ => true,
        };
        let other_starts_before_self_ends = match (other.since, self.until) {
            (Some(s), Some(u)) => s < u,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_self_ends
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.since, self.until) {
            (None, None) => write!(f, "all kernels"),
            (Some(s), None) => write!(f, ">= {s}"),
            (None, Some(u)) => write!(f, "< {u}"),
            (Some(s), Some(u)) => write!(f, ">= {s}, < {u}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_releases_are_consecutive_series_or_point_releases() {
        let v = |text: &str| text.parse::<KernelVersion>().unwrap();
        assert!(v("7.0.13").adjacent_to(v("7.1.13")));
        assert!(v("5.19.4").adjacent_to(v("6.0")));
        assert!(v("7.1.3").adjacent_to(v("7.1.4")));
        assert!(!v("6.1.176").adjacent_to(v("6.12.117")));
        assert!(!v("5.4.286").adjacent_to(v("5.7.14")));
        assert!(!v("7.1.3").adjacent_to(v("7.1.13")));
    }

    fn v(text: &str) -> KernelVersion {
        text.parse().unwrap()
    }

    #[test]
    fn parses_strict_versions_and_orders_them() {
        assert_eq!(v("5.10"), KernelVersion::new(5, 10, 0));
        assert_eq!(v("6.12.117"), KernelVersion::new(6, 12, 117));
        assert!(v("5.9") < v("5.10"));
        assert!(v("6.19.14") > v("6.19.6"));
        for bad in ["5", "5.", "v5.10", "5.10.1.2", "5.x", ""] {
            assert!(
                bad.parse::<KernelVersion>().is_err(),
                "{bad} should not parse"
            );
        }
    }

    #[test]
    fn uname_prefers_debians_real_sublevel() {
        let version = KernelVersion::from_uname(
            "5.10.0-30-cloud-amd64",
            "#1 SMP Debian 5.10.218-1 (2024-06-01)",
        )
        .unwrap();
        assert_eq!(version, KernelVersion::new(5, 10, 218));
        let version =
            KernelVersion::from_uname("6.12.117+deb13-cloud-amd64", "#1 SMP PREEMPT_DYNAMIC")
                .unwrap();
        assert_eq!(version, KernelVersion::new(6, 12, 117));
        let host =
            KernelVersion::from_uname("6.18.44-fc-v657", "#1 SMP PREEMPT_DYNAMIC @0").unwrap();
        assert_eq!(host, KernelVersion::new(6, 18, 44));
    }

    #[test]
    fn ranges_are_half_open() {
        let r = VersionRange {
            since: Some(v("5.4")),
            until: Some(v("5.6")),
        };
        assert!(!r.contains(v("5.3.18")));
        assert!(r.contains(v("5.4")));
        assert!(r.contains(v("5.5.19")));
        assert!(!r.contains(v("5.6")));
        let later = VersionRange {
            since: Some(v("5.6")),
            until: None,
        };
        assert!(!r.overlaps(&later));
        assert!(later.overlaps(&VersionRange::default()));
        assert!(
            VersionRange {
                since: Some(v("6.1")),
                until: Some(v("6.1"))
            }
            .is_empty()
        );
    }
}
