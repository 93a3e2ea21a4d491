//! A Debian suite's ladder: every point release of one flavour's kernels, oldest first, as
//! entries of a kernel list named by their upstream version, for `harness bisect --debian`.
//! Only the kernels a search visits are then fetched (into the usual cache).

use std::ops::Range;

use super::{
    DebianSelector, DebianSource, KernelCache, KernelEntry, KernelSource, KernelsFile,
    ResolveError, Resolver, upstream_version,
};
use crate::vm::Arch;

#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    /// The suite's signed index could not be read: the mirror, the network, the keyring.
    #[error(transparent)]
    Index(#[from] ResolveError),
    #[error("{label} has no kernel {given}; it carries {carried}")]
    NoSuchVersion {
        label: String,
        given: String,
        carried: String,
    },
}

/// Appends to `file` the suite's kernels of `flavour` from `from` to `to` (a Debian or an
/// upstream version; the first and last when not given), and returns where they are in
/// `file.kernels`. Two Debian revisions of one upstream release keep their full versions
/// as names; a flavour of another architecture than x86_64 (`cloud-arm64`) gives kernels of
/// that architecture, named as kernels.toml names them (`6.1.176-arm64`). The list lends
/// its mirror and keyring.
pub fn append_debian_ladder(
    file: &mut KernelsFile,
    cache: KernelCache,
    suite: &str,
    flavour: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Range<usize>, LadderError> {
    let ladder = Ladder::read(file, cache, suite, flavour)?;
    let first = ladder.position(from, false)?.unwrap_or(0);
    let last = ladder
        .position(to, true)?
        .unwrap_or(ladder.versions.len().saturating_sub(1));
    Ok(ladder.append(file, first..=last))
}

/// Appends to `file` one release of the suite's `flavour` kernels: `version` (a Debian or an
/// upstream version), or the newest, as `--kernel debian:SUITE[/VERSION]` asks; returns its
/// entry's name.
pub fn append_debian_release(
    file: &mut KernelsFile,
    cache: KernelCache,
    suite: &str,
    flavour: &str,
    version: Option<&str>,
) -> Result<String, LadderError> {
    let ladder = Ladder::read(file, cache, suite, flavour)?;
    let at = match ladder.position(version, true)? {
        Some(at) => at,
        None if ladder.versions.is_empty() => return Err(ladder.missing("any")),
        None => ladder.versions.len() - 1,
    };
    let appended = ladder.append(file, at..=at);
    Ok(file.kernels[appended.start].name.clone())
}

/// The versions of a suite's kernels of one flavour, oldest first.
struct Ladder<'a> {
    label: String,
    suite: &'a str,
    flavour: &'a str,
    versions: Vec<String>,
}

impl<'a> Ladder<'a> {
    fn read(
        file: &KernelsFile,
        cache: KernelCache,
        suite: &'a str,
        flavour: &'a str,
    ) -> Result<Self, LadderError> {
        let label = format!("debian {suite} {flavour}");
        let versions = Resolver::new(file, cache).suite_versions(&label, suite, flavour)?;
        Ok(Ladder {
            label,
            suite,
            flavour,
            versions,
        })
    }

    /// Where `given` (a Debian or an upstream version) is, its last revision with `last`;
    /// `None` when nothing was given.
    fn position(&self, given: Option<&str>, last: bool) -> Result<Option<usize>, LadderError> {
        let Some(given) = given else {
            return Ok(None);
        };
        let mut found = self
            .versions
            .iter()
            .enumerate()
            .filter(|(_, v)| *v == given || upstream_version(v) == given);
        let found = if last {
            found.next_back()
        } else {
            found.next()
        };
        found
            .map(|(i, _)| Some(i))
            .ok_or_else(|| self.missing(given))
    }

    fn missing(&self, given: &str) -> LadderError {
        LadderError::NoSuchVersion {
            label: self.label.clone(),
            given: given.to_string(),
            carried: self
                .versions
                .iter()
                .map(|v| upstream_version(v))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Entries for the versions at `at`, appended to `file`; where they are.
    fn append(&self, file: &mut KernelsFile, at: std::ops::RangeInclusive<usize>) -> Range<usize> {
        let arch = Arch::of_flavour(self.flavour).unwrap_or_default();
        let start = file.kernels.len();
        for version in self.versions.get(at).unwrap_or_default() {
            let upstream = upstream_version(version);
            let shared = self
                .versions
                .iter()
                .filter(|v| upstream_version(v) == upstream)
                .count()
                > 1;
            let name = if shared {
                version.clone()
            } else {
                upstream.to_string()
            };
            file.kernels.push(KernelEntry {
                name: match arch {
                    Arch::X86_64 => name,
                    other => format!("{name}-{other}"),
                },
                source: KernelSource::Debian(DebianSource {
                    suite: self.suite.to_string(),
                    selector: DebianSelector::Version(version.clone()),
                    flavour: self.flavour.to_string(),
                }),
                arch,
                timeout: None,
                memory: None,
                cpus: None,
                cmdline: None,
                note: None,
            });
        }
        start..file.kernels.len()
    }
}
