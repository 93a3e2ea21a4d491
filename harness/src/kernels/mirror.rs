//! Which Debian mirror to read: kernels.toml, else `$HARNESS_DEBIAN_MIRROR`, else the
//! host's own apt sources (so users behind their own mirror need no configuration).

use std::fmt;
use std::path::{Path, PathBuf};

use super::config::MIRROR_ENV;

/// A Debian mirror root URL (holding `dists/` and `pool/`) and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub url: String,
    pub origin: MirrorOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorOrigin {
    KernelsFile,
    Environment,
    AptSources(PathBuf),
}

impl fmt::Display for MirrorOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorOrigin::KernelsFile => f.write_str("kernels.toml"),
            MirrorOrigin::Environment => write!(f, "${MIRROR_ENV}"),
            MirrorOrigin::AptSources(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "no Debian mirror configured: set `mirror = \"http://…/debian\"` in kernels.toml or \
     ${MIRROR_ENV}; none of the host's apt sources ({searched}) names a Debian archive \
     with a `main` component"
)]
pub struct NoMirror {
    searched: String,
}

/// Where apt keeps its sources, in the order apt reads them.
const APT_SOURCES_LIST: &str = "/etc/apt/sources.list";
const APT_SOURCES_DIR: &str = "/etc/apt/sources.list.d";

/// Picks the mirror: the file's, the environment's, or the host's apt sources'.
pub fn find_mirror(from_file: Option<&str>) -> Result<Mirror, NoMirror> {
    if let Some(url) = from_file {
        return Ok(Mirror {
            url: url.trim_end_matches('/').to_string(),
            origin: MirrorOrigin::KernelsFile,
        });
    }
    if let Ok(url) = std::env::var(MIRROR_ENV)
        && !url.trim().is_empty()
    {
        return Ok(Mirror {
            url: url.trim().trim_end_matches('/').to_string(),
            origin: MirrorOrigin::Environment,
        });
    }
    let files = apt_source_files(Path::new(APT_SOURCES_LIST), Path::new(APT_SOURCES_DIR));
    let sources: Vec<(PathBuf, AptSource)> = files
        .iter()
        .filter_map(|path| Some((path, std::fs::read_to_string(path).ok()?)))
        .flat_map(|(path, text)| {
            let parsed = if path.extension().is_some_and(|e| e == "sources") {
                parse_deb822_sources(&text)
            } else {
                parse_one_line_sources(&text)
            };
            parsed.into_iter().map(move |s| (path.clone(), s))
        })
        .collect();
    let refs: Vec<&AptSource> = sources.iter().map(|(_, s)| s).collect();
    match pick_debian_mirror(&refs) {
        Some(index) => Ok(Mirror {
            url: sources[index].1.uri.trim_end_matches('/').to_string(),
            origin: MirrorOrigin::AptSources(sources[index].0.clone()),
        }),
        None => Err(NoMirror {
            searched: format!("{APT_SOURCES_LIST}, {APT_SOURCES_DIR}/*"),
        }),
    }
}

/// sources.list first, then sources.list.d/*.list and *.sources sorted by name, as apt does.
fn apt_source_files(list: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut in_dir: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
        .collect();
    in_dir.sort();
    std::iter::once(list.to_path_buf()).chain(in_dir).collect()
}

/// One `deb` repository entry: an archive root, its suites and components.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AptSource {
    uri: String,
    suites: Vec<String>,
    components: Vec<String>,
}

/// deb822 `.sources` stanzas with `Types: deb` that are not disabled (`Enabled: no`).
fn parse_deb822_sources(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for stanza in text.split("\n\n") {
        let mut types = Vec::new();
        let mut uris = Vec::new();
        let mut suites = Vec::new();
        let mut components = Vec::new();
        let mut enabled = true;
        for line in stanza.lines() {
            let line = line.trim_end();
            if line.starts_with('#') || line.starts_with(char::is_whitespace) {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let words = || {
                value
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "types" => types = words(),
                "uris" => uris = words(),
                "suites" => suites = words(),
                "components" => components = words(),
                "enabled" => enabled = !value.trim().eq_ignore_ascii_case("no"),
                _ => {}
            }
        }
        if enabled && types.iter().any(|t| t == "deb") {
            sources.extend(uris.into_iter().map(|uri| AptSource {
                uri,
                suites: suites.clone(),
                components: components.clone(),
            }));
        }
    }
    sources
}

/// One-line `deb [options] URI suite component…` entries.
fn parse_one_line_sources(text: &str) -> Vec<AptSource> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let rest = line.strip_prefix("deb ")?.trim_start();
            // Options are one bracketed group that may contain spaces.
            let rest = match rest.strip_prefix('[') {
                Some(options) => options.split_once(']')?.1,
                None => rest,
            };
            let mut words = rest.split_whitespace();
            let uri = words.next()?.to_string();
            let suite = words.next()?.to_string();
            Some(AptSource {
                uri,
                suites: vec![suite],
                components: words.map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Index of the entry most likely to be the Debian archive itself: plain http(s), with
/// `main`, not a security archive; an archive rooted at `…/debian` wins over others.
fn pick_debian_mirror(sources: &[&AptSource]) -> Option<usize> {
    let usable = |s: &AptSource| {
        (s.uri.starts_with("http://") || s.uri.starts_with("https://"))
            && s.components.iter().any(|c| c == "main")
            && !s.suites.iter().any(|suite| suite.contains("security"))
            && !s.uri.contains("security")
    };
    let candidates: Vec<usize> = (0..sources.len()).filter(|&i| usable(sources[i])).collect();
    candidates
        .iter()
        .copied()
        .find(|&i| sources[i].uri.trim_end_matches('/').ends_with("/debian"))
        .or_else(|| candidates.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_picks_the_archive_not_security() {
        let text = "\
Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm
Components: main

Types: deb
# a comment
URIs: http://mirror.invalid/debian/
Suites: bookworm bookworm-updates
Components: main contrib

Types: deb
Enabled: no
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main
";
        let sources = parse_deb822_sources(text);
        assert_eq!(sources.len(), 2);
        let refs: Vec<&AptSource> = sources.iter().collect();
        let picked = pick_debian_mirror(&refs).unwrap();
        assert_eq!(sources[picked].uri, "http://mirror.invalid/debian/");
    }

    #[test]
    fn one_line_format_with_options() {
        let text = "\
# deb http://commented.invalid/debian bookworm main
deb-src http://src.invalid/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/ubuntu noble main universe
deb http://other.invalid/debian bookworm main # trailing comment
deb cdrom:[Debian 12]/ bookworm main
";
        let sources = parse_one_line_sources(text);
        assert_eq!(sources.len(), 3);
        assert_eq!(sources[0].uri, "http://mirror.invalid/ubuntu");
        assert_eq!(sources[0].components, vec!["main", "universe"]);
        let refs: Vec<&AptSource> = sources.iter().collect();
        assert_eq!(
            sources[pick_debian_mirror(&refs).unwrap()].uri,
            "http://other.invalid/debian"
        );
    }

    #[test]
    fn no_usable_source() {
        let sources =
            parse_one_line_sources("deb http://x.invalid/debian-security bookworm-security main\n");
        let refs: Vec<&AptSource> = sources.iter().collect();
        assert_eq!(pick_debian_mirror(&refs), None);
    }

    #[test]
    fn kernels_file_wins() {
        let mirror = find_mirror(Some("http://file.invalid/debian/")).unwrap();
        assert_eq!(mirror.url, "http://file.invalid/debian");
        assert_eq!(mirror.origin, MirrorOrigin::KernelsFile);
    }

    #[test]
    fn source_files_in_apt_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.sources", "a.list", "c.disabled"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let files = apt_source_files(Path::new("/etc/apt/sources.list"), dir.path());
        assert_eq!(
            files,
            vec![
                PathBuf::from("/etc/apt/sources.list"),
                dir.path().join("a.list"),
                dir.path().join("b.sources"),
            ]
        );
    }
}
