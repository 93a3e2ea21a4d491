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
    let label = format!("debian {suite} {flavour}");
    let versions = Resolver::new(file, cache).suite_versions(&label, suite, flavour)?;
    let matches = |given: &str, v: &str| v == given || upstream_version(v) == given;
    let at = |given: Option<&str>, default: usize, last: bool| match given {
        None => Ok(default),
        Some(given) => {
            let mut found = versions
                .iter()
                .enumerate()
                .filter(|(_, v)| matches(given, v));
            let found = if last {
                found.next_back()
            } else {
                found.next()
            };
            found
                .map(|(i, _)| i)
                .ok_or_else(|| LadderError::NoSuchVersion {
                    label: label.clone(),
                    given: given.to_string(),
                    carried: versions
                        .iter()
                        .map(|v| upstream_version(v))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        }
    };
    let first = at(from, 0, false)?;
    let last = at(to, versions.len().saturating_sub(1), true)?;
    let arch = Arch::of_flavour(flavour).unwrap_or_default();
    let start = file.kernels.len();
    for version in versions.get(first..=last).unwrap_or_default() {
        let upstream = upstream_version(version);
        let shared = versions
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
                suite: suite.to_string(),
                selector: DebianSelector::Version(version.clone()),
                flavour: flavour.to_string(),
            }),
            arch,
            timeout: None,
            memory: None,
            cpus: None,
            cmdline: None,
            note: None,
        });
    }
    Ok(start..file.kernels.len())
}
