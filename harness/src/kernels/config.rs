//! `kernels.toml`: serde shapes (`Raw*`, spans kept) → validated [`KernelsFile`].
//!
//! serde checks the shape (unknown keys are errors); [`validate`] checks the rules that
//! span fields and touch the filesystem, and collects every problem instead of stopping at
//! the first. Every diagnostic names the file, the line and column, and the field.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, Diagnostics, line_column};
use crate::vm::Arch;

/// Debian flavour used when a `debian` source of an x86_64 kernel names none
/// ([`Arch::default_flavour`]): small, boots fastest, has BTF.
pub const DEFAULT_FLAVOUR: &str = "cloud-amd64";

/// Environment variable naming the Debian mirror when kernels.toml has no `mirror`.
pub const MIRROR_ENV: &str = "HARNESS_DEBIAN_MIRROR";

/// The archive keyring apt itself uses on Debian and Ubuntu hosts.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A validated kernels.toml.
#[derive(Debug, Clone)]
pub struct KernelsFile {
    /// The file it was read from (as given by the caller).
    pub path: PathBuf,
    /// Debian mirror root (`http://host/debian`), when the file names one.
    pub mirror: Option<String>,
    /// OpenPGP keyring that must have signed the suites' InRelease files.
    pub keyring: PathBuf,
    /// Kernels in the order the file lists them.
    pub kernels: Vec<KernelEntry>,
}

/// One `[[kernel]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelEntry {
    /// Unique name, used on the command line and in reports.
    pub name: String,
    pub source: KernelSource,
    /// The kernel's architecture: which QEMU boots it, which Debian packages hold it, which
    /// build of the harness its guest runs.
    pub arch: Arch,
    /// Wall-clock limit for this kernel's VM, if the file sets one.
    pub timeout: Option<Duration>,
    /// Guest memory, if the file sets one.
    pub memory: Option<MemorySize>,
    /// Guest vCPUs, if the file sets them.
    pub cpus: Option<u32>,
    /// Extra kernel command line for the guest.
    pub cmdline: Option<String>,
    /// Free text shown in reports.
    pub note: Option<String>,
}

/// Where a kernel comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelSource {
    /// A package from a Debian suite, fetched and verified through the signed index.
    Debian(DebianSource),
    /// A kernel image on disk (paths already resolved against the file's directory).
    Local {
        vmlinuz: PathBuf,
        modules: Option<PathBuf>,
        /// The image's pinned SHA256 (lowercase hex): another image is refused.
        sha256: Option<String>,
    },
    /// An `optional` local image that is not on this machine: its row is a skip.
    Absent {
        /// The path as kernels.toml writes it.
        vmlinuz: String,
        /// Why it is absent (an unset variable, a missing file).
        why: String,
    },
    /// An upstream tag (`v5.4`) whose Ubuntu mainline build vng downloads itself.
    Mainline { tag: String },
    /// A kernel source tree, built with `vng --build`.
    Tree {
        path: PathBuf,
        /// Built by the harness with the project's config fragment (a `tree =` entry); a
        /// tree given on the command line is booted as the developer built it.
        build: bool,
    },
    /// The running kernel, no VM.
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DebianSource {
    pub suite: String,
    pub selector: DebianSelector,
    pub flavour: String,
}

/// Which package version of a suite to take.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebianSelector {
    /// Newest upstream version `X.Y` or `X.Y.*` (e.g. `6.19` matches 6.19.14).
    Series(String),
    /// Exactly this upstream version (`6.19.6`) or full Debian version (`6.19.6-1~bpo13+1`).
    Version(String),
}

/// Guest memory size, parsed from qemu-style strings such as `1G` or `512M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemorySize {
    bytes: u64,
}

impl MemorySize {
    const MIB: u64 = 1024 * 1024;
    /// Smallest size a cloud kernel with the harness reliably boots in.
    const MINIMUM: u64 = 128 * Self::MIB;

    pub fn bytes(self) -> u64 {
        self.bytes
    }

    /// The size in whole MiB with qemu's `M` suffix, as vng's `--memory` takes it.
    pub fn as_qemu_arg(self) -> String {
        format!("{}M", self.bytes / Self::MIB)
    }
}

impl std::str::FromStr for MemorySize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_memory(text)
    }
}

impl fmt::Display for KernelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelSource::Debian(debian) => write!(f, "{debian}"),
            KernelSource::Local { vmlinuz, .. } => write!(f, "local {}", vmlinuz.display()),
            KernelSource::Absent { vmlinuz, .. } => write!(f, "local {vmlinuz} (absent)"),
            KernelSource::Mainline { tag } => write!(f, "mainline {tag}"),
            KernelSource::Tree { path, .. } => write!(f, "tree {}", path.display()),
            KernelSource::Host => f.write_str("host"),
        }
    }
}

impl fmt::Display for DebianSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "debian {} {} {}",
            self.suite, self.selector, self.flavour
        )
    }
}

impl fmt::Display for DebianSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DebianSelector::Series(series) => write!(f, "{series}.x"),
            DebianSelector::Version(version) => f.write_str(version),
        }
    }
}

/// The largest kernels.toml read: the default list is under 5 KB.
pub const MAX_KERNELS_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the kernel list {} (create it, or point --kernels at another file)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl KernelsFile {
    /// A list with no kernels and the defaults, for kernels given on the command line
    /// alone; `path` is where a list would have been.
    pub fn empty(path: &Path) -> KernelsFile {
        KernelsFile {
            path: path.to_path_buf(),
            mirror: None,
            keyring: PathBuf::from(DEFAULT_KEYRING),
            kernels: Vec::new(),
        }
    }

    /// Reads and validates a kernels.toml: a regular file of at most
    /// [`MAX_KERNELS_FILE_BYTES`], in UTF-8.
    pub fn load(path: &Path) -> Result<KernelsFile, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let bytes = crate::input_file::read_regular(path, MAX_KERNELS_FILE_BYTES).map_err(read)?;
        let text = String::from_utf8(bytes)
            .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        KernelsFile::parse(&text, path)
    }

    /// Validates kernels.toml text; `path` names it in diagnostics and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<KernelsFile, ConfigError> {
        let invalid = |diagnostics| ConfigError::Invalid(Diagnostics(diagnostics));
        let raw = deserialize(text, path).map_err(|d| invalid(vec![d]))?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        validate(raw, text, path, base_dir).map_err(invalid)
    }

    /// The entry called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&KernelEntry> {
        self.kernels.iter().find(|k| k.name == name)
    }
}

// ---- serde shapes -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    mirror: Option<Spanned<String>>,
    keyring: Option<Spanned<String>>,
    #[serde(default)]
    kernel: Vec<Spanned<RawKernel>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    name: Spanned<String>,
    debian: Option<Spanned<RawDebian>>,
    local: Option<Spanned<RawLocal>>,
    mainline: Option<Spanned<String>>,
    tree: Option<Spanned<String>>,
    host: Option<Spanned<bool>>,
    arch: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
    cpus: Option<Spanned<u32>>,
    cmdline: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDebian {
    suite: Spanned<String>,
    series: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    #[serde(alias = "flavor")]
    flavour: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    vmlinuz: Spanned<String>,
    modules: Option<Spanned<String>>,
    sha256: Option<Spanned<String>>,
    #[serde(default)]
    optional: bool,
}

fn deserialize(text: &str, path: &Path) -> Result<RawFile, Diagnostic> {
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| Diagnostic::parse_error(path, text, &e))?;
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| Diagnostic::deserialize_error(path, text, e))
}

// ---- validation ---------------------------------------------------------------------

struct Validator<'a> {
    /// The file's name, which diagnostics begin with.
    path: &'a Path,
    text: &'a str,
    base_dir: &'a Path,
    diagnostics: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn report(&mut self, span: std::ops::Range<usize>, field: String, message: String) {
        let location = line_column(self.text, span.start);
        self.diagnostics
            .push(Diagnostic::at(self.path, location, field, message));
    }

    /// `${NAME}` → the environment variable, then `~/x` → home, relative → against the
    /// file's directory, absolute → as is. `Err` names a variable that is not set.
    fn resolve_path(&self, raw: &str) -> Result<PathBuf, String> {
        let raw = &expand_variables(raw)?;
        let expanded = match (raw.strip_prefix("~/"), dirs::home_dir()) {
            (Some(rest), Some(home)) => home.join(rest),
            _ if raw == "~" => dirs::home_dir().unwrap_or_else(|| PathBuf::from(raw)),
            _ => PathBuf::from(raw),
        };
        Ok(if expanded.is_absolute() {
            expanded
        } else {
            self.base_dir.join(expanded)
        })
    }
}

/// Replaces each `${NAME}` with the environment variable's value, so kernels.toml can name
/// machine-specific places (a directory of kernel builds) without hard-coding them.
fn expand_variables(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            return Err(format!("`${{` without a closing `}}` in {raw:?}"));
        };
        let name = &rest[start + 2..start + 2 + len];
        let value = std::env::var(name)
            .ok()
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("environment variable {name} is not set"))?;
        out.push_str(&rest[..start]);
        out.push_str(&value);
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

fn validate(
    raw: RawFile,
    text: &str,
    path: &Path,
    base_dir: &Path,
) -> Result<KernelsFile, Vec<Diagnostic>> {
    let mut v = Validator {
        path,
        text,
        base_dir,
        diagnostics: Vec::new(),
    };
    if let Some(mirror) = &raw.mirror
        && !is_http_url(mirror.get_ref())
    {
        v.report(
            mirror.span(),
            "mirror".into(),
            format!(
                "`{}` is not an http:// or https:// URL of a Debian mirror root (the directory holding dists/ and pool/)",
                mirror.get_ref()
            ),
        );
    }
    let keyring = match &raw.keyring {
        Some(k) => v.resolve_path(k.get_ref()).unwrap_or_else(|why| {
            v.report(k.span(), "keyring".into(), why);
            PathBuf::new()
        }),
        None => PathBuf::from(DEFAULT_KEYRING),
    };
    if raw.kernel.is_empty() {
        v.report(
            0..0,
            "kernel".into(),
            "the file lists no kernels; add a [[kernel]] table".into(),
        );
    }
    let mut first_use: HashMap<String, (usize, usize)> = HashMap::new();
    let mut kernels = Vec::new();
    for (index, spanned) in raw.kernel.iter().enumerate() {
        let entry = spanned.get_ref();
        let at = format!("kernel[{index}]");
        let name = entry.name.get_ref();
        let (name_line, _) = line_column(text, entry.name.span().start);
        if !crate::names::is_valid(name) {
            v.report(
                entry.name.span(),
                format!("{at}.name"),
                format!(
                    "`{name}` is not a kernel name: {} (it names files and report rows)",
                    crate::names::RULE
                ),
            );
        } else if let Some((other, line)) = first_use.get(name) {
            v.report(
                entry.name.span(),
                format!("{at}.name"),
                format!("`{name}` is already the name of kernel[{other}] (line {line}); names must be unique"),
            );
        } else {
            first_use.insert(name.clone(), (index, name_line));
        }
        let arch = validate_arch(&mut v, entry, &at);
        let source =
            arch.and_then(|arch| validate_source(&mut v, entry, arch, spanned.span(), &at));
        let timeout = entry.timeout.as_ref().and_then(|t| {
            parse_timeout(t.get_ref())
                .map_err(|m| v.report(t.span(), format!("{at}.timeout"), m))
                .ok()
        });
        let memory = entry.memory.as_ref().and_then(|m| {
            parse_memory(m.get_ref())
                .map_err(|msg| v.report(m.span(), format!("{at}.memory"), msg))
                .ok()
        });
        if let Some(cpus) = &entry.cpus
            && *cpus.get_ref() == 0
        {
            v.report(
                cpus.span(),
                format!("{at}.cpus"),
                "must be at least 1".into(),
            );
        }
        if let Some(source) = source {
            // The running kernel's architecture is the machine's.
            let arch = match source {
                KernelSource::Host => Arch::host(),
                _ => arch,
            };
            kernels.push(KernelEntry {
                name: name.clone(),
                source,
                arch: arch.unwrap_or_default(),
                timeout,
                memory,
                cpus: entry.cpus.as_ref().map(|c| *c.get_ref()),
                cmdline: entry.cmdline.clone(),
                note: entry.note.clone(),
            });
        }
    }
    if v.diagnostics.is_empty() {
        Ok(KernelsFile {
            path: path.to_path_buf(),
            mirror: raw
                .mirror
                .map(|m| m.into_inner().trim_end_matches('/').to_string()),
            keyring,
            kernels,
        })
    } else {
        Err(v.diagnostics)
    }
}

/// The entry's `arch` (x86_64 when it gives none), if it names one the harness boots;
/// the running kernel's is the machine's, which an entry cannot choose.
fn validate_arch(v: &mut Validator<'_>, entry: &RawKernel, at: &str) -> Option<Arch> {
    let Some(arch) = &entry.arch else {
        return Some(Arch::default());
    };
    let host = entry.host.as_ref().is_some_and(|h| *h.get_ref());
    let parsed = arch.get_ref().parse::<Arch>().and_then(|parsed| {
        if host {
            Err("the running kernel's architecture is this machine's: leave `arch` out of a `host` kernel".into())
        } else {
            Ok(parsed)
        }
    });
    parsed
        .map_err(|message| v.report(arch.span(), format!("{at}.arch"), message))
        .ok()
}

/// Checks that exactly one source is given and validates it for `arch`.
fn validate_source(
    v: &mut Validator<'_>,
    entry: &RawKernel,
    arch: Arch,
    entry_span: std::ops::Range<usize>,
    at: &str,
) -> Option<KernelSource> {
    let mut given = Vec::new();
    if entry.debian.is_some() {
        given.push("debian");
    }
    if entry.local.is_some() {
        given.push("local");
    }
    if entry.mainline.is_some() {
        given.push("mainline");
    }
    if entry.tree.is_some() {
        given.push("tree");
    }
    if entry.host.as_ref().is_some_and(|h| *h.get_ref()) {
        given.push("host");
    }
    match given.len() {
        0 => {
            v.report(
                entry_span,
                at.to_string(),
                "no source: give exactly one of `debian`, `local`, `mainline`, `tree` or `host = true`".into(),
            );
            return None;
        }
        1 => {}
        _ => {
            v.report(
                entry_span,
                at.to_string(),
                format!("several sources ({}): keep exactly one", given.join(", ")),
            );
            return None;
        }
    }
    if let Some(debian) = &entry.debian {
        return validate_debian(v, debian, arch, &format!("{at}.debian"));
    }
    // vng downloads mainline builds for the host and builds trees for x86 only here.
    if arch != Arch::X86_64
        && let Some((kind, span)) = entry
            .mainline
            .as_ref()
            .map(|tag| ("mainline", tag.span()))
            .or_else(|| entry.tree.as_ref().map(|tree| ("tree", tree.span())))
    {
        v.report(
            span,
            format!("{at}.{kind}"),
            format!(
                "a `{kind}` kernel is x86_64 only; an {arch} kernel is a `debian` or `local` one"
            ),
        );
        return None;
    }
    if let Some(local) = &entry.local {
        return validate_local(v, local.get_ref(), &format!("{at}.local"));
    }
    if let Some(tag) = &entry.mainline {
        return match normalise_mainline_tag(tag.get_ref()) {
            Some(tag) => Some(KernelSource::Mainline { tag }),
            None => {
                v.report(
                    tag.span(),
                    format!("{at}.mainline"),
                    format!(
                        "`{}` is not an upstream release tag such as `v5.4`, `v5.9.16` or `v6.1-rc3`",
                        tag.get_ref()
                    ),
                );
                None
            }
        };
    }
    if let Some(tree) = &entry.tree {
        let checked = v
            .resolve_path(tree.get_ref())
            .and_then(|path| check_source_tree(&path).map(|()| path));
        return match checked {
            Ok(path) => Some(KernelSource::Tree { path, build: true }),
            Err(message) => {
                v.report(tree.span(), format!("{at}.tree"), message);
                None
            }
        };
    }
    Some(KernelSource::Host)
}

fn validate_debian(
    v: &mut Validator<'_>,
    spanned: &Spanned<RawDebian>,
    arch: Arch,
    at: &str,
) -> Option<KernelSource> {
    let debian = spanned.get_ref();
    let mut ok = true;
    let suite = debian.suite.get_ref();
    if !is_suite_name(suite) {
        v.report(
            debian.suite.span(),
            format!("{at}.suite"),
            format!(
                "`{suite}` is not a suite name such as `bookworm` or `trixie-backports` \
                 (lowercase letters, digits, `.`, `+` and `-`, starting with a letter or digit)"
            ),
        );
        ok = false;
    }
    let flavour = debian
        .flavour
        .as_ref()
        .map_or_else(|| arch.default_flavour(), |f| f.get_ref().clone());
    if let Some(f) = &debian.flavour {
        let problem = if !is_flavour(&flavour) {
            Some(format!(
                "`{flavour}` is not a Debian kernel flavour such as `cloud-amd64` or `amd64`"
            ))
        } else if Arch::of_flavour(&flavour) != Some(arch) {
            Some(format!(
                "`{flavour}` is not a flavour of {arch} kernels, whose Debian flavours end in \
                 `-{}` (`arch` says which the entry is; x86_64 unless it says otherwise)",
                arch.debian()
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            v.report(f.span(), format!("{at}.flavour"), problem);
            ok = false;
        }
    }
    let selector = match (&debian.series, &debian.version) {
        (Some(series), None) => {
            if !is_series(series.get_ref()) {
                v.report(
                    series.span(),
                    format!("{at}.series"),
                    format!(
                        "`{}` is not a kernel series such as `6.1` (use `version` for an exact version)",
                        series.get_ref()
                    ),
                );
                ok = false;
            }
            DebianSelector::Series(series.get_ref().clone())
        }
        (None, Some(version)) => {
            if !is_exact_version(version.get_ref()) {
                v.report(
                    version.span(),
                    format!("{at}.version"),
                    format!(
                        "`{}` is not a kernel version such as `6.19.6` or `6.19.6-1~bpo13+1`",
                        version.get_ref()
                    ),
                );
                ok = false;
            }
            DebianSelector::Version(version.get_ref().clone())
        }
        (Some(_), Some(_)) => {
            v.report(
                spanned.span(),
                at.to_string(),
                "give either `series` (newest of a series) or `version` (exact), not both".into(),
            );
            return None;
        }
        (None, None) => {
            v.report(
                spanned.span(),
                at.to_string(),
                "missing `series` (e.g. \"6.1\", newest 6.1.x) or `version` (e.g. \"6.19.6\")"
                    .into(),
            );
            return None;
        }
    };
    ok.then(|| {
        KernelSource::Debian(DebianSource {
            suite: suite.clone(),
            selector,
            flavour,
        })
    })
}

fn validate_local(v: &mut Validator<'_>, local: &RawLocal, at: &str) -> Option<KernelSource> {
    let raw_vmlinuz = local.vmlinuz.get_ref();
    let vmlinuz = v.resolve_path(raw_vmlinuz).and_then(|path| {
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} does not exist or is not a file",
                path.display()
            ))
        }
    });
    let vmlinuz = match vmlinuz {
        Ok(path) => path,
        Err(why) if local.optional => {
            return Some(KernelSource::Absent {
                vmlinuz: raw_vmlinuz.clone(),
                why,
            });
        }
        Err(why) => {
            v.report(
                local.vmlinuz.span(),
                format!("{at}.vmlinuz"),
                format!(
                    "{why}; build the kernel or fix the path (relative paths start at the directory of this file), or add `optional = true` to skip it where it is absent"
                ),
            );
            return None;
        }
    };
    let mut ok = true;
    let modules = match &local.modules {
        None => None,
        Some(spanned) => match v.resolve_path(spanned.get_ref()) {
            Ok(path) if path.is_dir() => Some(path),
            resolved => {
                let why = resolved.map_or_else(
                    |why| why,
                    |path| format!("{} is not a directory", path.display()),
                );
                v.report(
                    spanned.span(),
                    format!("{at}.modules"),
                    format!(
                        "{why}; give the lib/modules/<release> directory of this build, or leave `modules` out"
                    ),
                );
                ok = false;
                None
            }
        },
    };
    let sha256 = local.sha256.as_ref().and_then(|spanned| {
        let hex = spanned.get_ref();
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(hex.to_ascii_lowercase())
        } else {
            v.report(
                spanned.span(),
                format!("{at}.sha256"),
                "expected the image's SHA256 as 64 hex digits (`sha256sum bzImage`)".into(),
            );
            ok = false;
            None
        }
    });
    ok.then_some(KernelSource::Local {
        vmlinuz,
        modules,
        sha256,
    })
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && !url.contains(char::is_whitespace)
}

/// The suite becomes part of URLs (`dists/<suite>/`) and cache paths: Debian's own names
/// use the characters of package names (`bookworm`, `trixie-backports`, `stable-updates`),
/// and nothing else can make `..`, `?` or `#` of it.
pub fn is_suite_name(suite: &str) -> bool {
    suite.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && suite
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '+' | '-'))
}

/// `cloud-amd64`, `rt-arm64`, `686-pae`: the end of a kernel package name, whose last part
/// is the architecture in the index's URL.
pub fn is_flavour(flavour: &str) -> bool {
    !flavour.is_empty()
        && flavour.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// `6.1`: major and minor only.
fn is_series(s: &str) -> bool {
    matches!(s.split('.').collect::<Vec<_>>()[..], [major, minor] if is_number(major) && is_number(minor))
}

/// `6.19.6` or a full Debian version `6.19.6-1~bpo13+1`.
fn is_exact_version(s: &str) -> bool {
    let (upstream, revision) = match s.split_once('-') {
        Some((upstream, revision)) => (upstream, Some(revision)),
        None => (s, None),
    };
    let numeric = upstream.split('.').collect::<Vec<_>>();
    (2..=3).contains(&numeric.len())
        && numeric.iter().all(|p| is_number(p))
        && revision.is_none_or(|r| {
            !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | '-'))
        })
}

/// `5.4` / `v5.4` / `v5.9.16` / `v6.1-rc3` → the `v`-prefixed tag vng expects.
fn normalise_mainline_tag(tag: &str) -> Option<String> {
    let bare = tag.strip_prefix('v').unwrap_or(tag);
    let (release, rc) = match bare.split_once("-rc") {
        Some((release, rc)) => (release, Some(rc)),
        None => (bare, None),
    };
    let parts = release.split('.').collect::<Vec<_>>();
    let valid = (2..=3).contains(&parts.len())
        && parts.iter().all(|p| is_number(p))
        && rc.is_none_or(is_number);
    valid.then(|| format!("v{bare}"))
}

/// A kernel source tree has a top-level Makefile, Kconfig and `kernel/` directory.
fn check_source_tree(path: &Path) -> Result<(), String> {
    if !path.is_dir() {
        return Err(format!(
            "{} does not exist or is not a directory; clone or unpack a kernel source tree there, or fix the path",
            path.display()
        ));
    }
    let missing: Vec<&str> = ["Makefile", "Kconfig", "kernel"]
        .into_iter()
        .filter(|entry| !path.join(entry).exists())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} is not a kernel source tree (no {} at its top); point `tree` at the directory holding the kernel's top-level Makefile",
            path.display(),
            missing.join(", ")
        ))
    }
}

/// `240s`, `4m`, `1h 30m` (humantime); must be positive.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!(
            "`{s}` is not a duration ({e}); write e.g. \"240s\" or \"5m\""
        )),
    }
}

/// qemu-style sizes: `1G`, `1024M`, `1GiB`, `2048` (MiB, as qemu reads a bare number).
fn parse_memory(s: &str) -> Result<MemorySize, String> {
    let bad = || format!("`{s}` is not a memory size; write e.g. \"1G\" or \"512M\"");
    let trimmed = s.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("iB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(unit);
    let multiplier: u64 = match unit {
        "" | "M" | "m" => MemorySize::MIB,
        "K" | "k" => 1024,
        "G" | "g" => 1024 * MemorySize::MIB,
        "T" | "t" => 1024 * 1024 * MemorySize::MIB,
        _ => return Err(bad()),
    };
    let bytes = number.checked_mul(multiplier).ok_or_else(bad)?;
    if bytes < MemorySize::MINIMUM {
        return Err(format!(
            "`{s}` is too small to boot a guest; give at least 128M"
        ));
    }
    Ok(MemorySize { bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KernelsFile, ConfigError> {
        KernelsFile::parse(text, Path::new("kernels.toml"))
    }

    /// The rendered error, one diagnostic per line.
    fn error(text: &str) -> String {
        match parse(text) {
            Ok(file) => panic!("expected an error, got {file:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_every_source_and_option() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bzImage"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("mods")).unwrap();
        let tree = dir.path().join("linux");
        std::fs::create_dir_all(tree.join("kernel")).unwrap();
        std::fs::write(tree.join("Makefile"), b"").unwrap();
        std::fs::write(tree.join("Kconfig"), b"").unwrap();
        let text = r#"
mirror = "http://mirror.invalid/debian/"
[[kernel]]
name = "6.1"
debian = { suite = "bookworm", series = "6.1" }
timeout = "4m"
memory = "1G"
cpus = 1
cmdline = "lsm=bpf"
note = "stable"
[[kernel]]
name = "exact"
debian = { suite = "trixie-backports", version = "6.19.6", flavor = "amd64" }
[[kernel]]
name = "mine"
local = { vmlinuz = "bzImage", modules = "mods" }
[[kernel]]
name = "5.4"
mainline = "5.4"
[[kernel]]
name = "tree"
tree = "linux"
[[kernel]]
name = "host"
host = true
"#;
        let file = KernelsFile::parse(text, &dir.path().join("kernels.toml")).unwrap();
        assert_eq!(file.mirror.as_deref(), Some("http://mirror.invalid/debian"));
        assert_eq!(file.keyring, PathBuf::from(DEFAULT_KEYRING));
        let k = &file.kernels;
        assert_eq!(k.len(), 6);
        assert_eq!(
            k[0].source,
            KernelSource::Debian(DebianSource {
                suite: "bookworm".into(),
                selector: DebianSelector::Series("6.1".into()),
                flavour: DEFAULT_FLAVOUR.into(),
            })
        );
        assert_eq!(k[0].timeout, Some(Duration::from_secs(240)));
        assert_eq!(k[0].memory.unwrap().as_qemu_arg(), "1024M");
        assert_eq!(k[0].cpus, Some(1));
        assert_eq!(k[0].cmdline.as_deref(), Some("lsm=bpf"));
        assert_eq!(k[0].note.as_deref(), Some("stable"));
        assert_eq!(
            k[1].source,
            KernelSource::Debian(DebianSource {
                suite: "trixie-backports".into(),
                selector: DebianSelector::Version("6.19.6".into()),
                flavour: "amd64".into(),
            })
        );
        assert_eq!(
            k[2].source,
            KernelSource::Local {
                vmlinuz: dir.path().join("bzImage"),
                modules: Some(dir.path().join("mods")),
                sha256: None,
            }
        );
        assert_eq!(k[3].source, KernelSource::Mainline { tag: "v5.4".into() });
        assert_eq!(
            k[4].source,
            KernelSource::Tree {
                path: tree,
                build: true
            }
        );
        assert_eq!(k[5].source, KernelSource::Host);
    }

    #[test]
    fn an_arm64_entry_takes_the_arm64_cloud_flavour_and_x86_64_is_the_default() {
        let text = r#"[[kernel]]
name = "6.1-arm64"
arch = "arm64"
debian = { suite = "bookworm", series = "6.1" }
[[kernel]]
name = "6.1-arm64-rt"
arch = "arm64"
debian = { suite = "bookworm", series = "6.1", flavour = "rt-arm64" }
[[kernel]]
name = "6.1"
debian = { suite = "bookworm", series = "6.1" }
"#;
        let file = parse(text).unwrap();
        let flavours: Vec<(Arch, &str)> = file
            .kernels
            .iter()
            .map(|k| match &k.source {
                KernelSource::Debian(debian) => (k.arch, debian.flavour.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            flavours,
            [
                (Arch::Arm64, "cloud-arm64"),
                (Arch::Arm64, "rt-arm64"),
                (Arch::X86_64, DEFAULT_FLAVOUR)
            ]
        );
        assert_eq!(Arch::X86_64.default_flavour(), DEFAULT_FLAVOUR);
    }

    #[test]
    fn an_architecture_must_fit_the_flavour_and_the_source() {
        let text = r#"[[kernel]]
name = "a"
arch = "aarch64"
debian = { suite = "bookworm", series = "6.1" }
[[kernel]]
name = "b"
arch = "arm64"
debian = { suite = "bookworm", series = "6.1", flavour = "cloud-amd64" }
[[kernel]]
name = "c"
debian = { suite = "bookworm", series = "6.1", flavour = "cloud-arm64" }
[[kernel]]
name = "d"
arch = "arm64"
mainline = "v6.1"
[[kernel]]
name = "e"
arch = "arm64"
host = true
"#;
        let e = error(text);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                "kernels.toml:3:8: kernel[0].arch: `aarch64` is not an architecture the harness \
                 boots: x86_64, arm64",
                "kernels.toml:8:58: kernel[1].debian.flavour: `cloud-amd64` is not a flavour of \
                 arm64 kernels, whose Debian flavours end in `-arm64` (`arch` says which the \
                 entry is; x86_64 unless it says otherwise)",
                "kernels.toml:11:58: kernel[2].debian.flavour: `cloud-arm64` is not a flavour of \
                 x86_64 kernels, whose Debian flavours end in `-amd64` (`arch` says which the \
                 entry is; x86_64 unless it says otherwise)",
                "kernels.toml:15:12: kernel[3].mainline: a `mainline` kernel is x86_64 only; an \
                 arm64 kernel is a `debian` or `local` one",
                "kernels.toml:18:8: kernel[4].arch: the running kernel's architecture is this \
                 machine's: leave `arch` out of a `host` kernel",
            ]
        );
    }

    #[test]
    fn misspelt_key_names_line_field_and_suggestion() {
        let text =
            "[[kernel]]\nname = \"a\"\ndebian = { suite = \"bookworm\", sereis = \"6.1\" }\n";
        assert_eq!(
            error(text),
            "kernels.toml:3:32: kernel[0].debian.sereis: unknown field `sereis`, expected one of \
             `suite`, `series`, `version`, `flavor`, `flavour`; did you mean `series`?"
        );
        let text =
            "[[kernel]]\nname = \"a\"\nhost = true\n\n[[kernel]]\nname = \"b\"\ntimout = \"1s\"\n";
        let e = error(text);
        assert!(
            e.starts_with("kernels.toml:7:1: kernel[1].timout: unknown field `timout`"),
            "{e}"
        );
        assert!(e.ends_with("; did you mean `timeout`?"), "{e}");
        assert!(error("mirorr = \"http://x\"\n").ends_with("; did you mean `mirror`?"));
    }

    #[test]
    fn unrelated_unknown_key_gets_no_suggestion() {
        let e = error("[[kernel]]\nname = \"a\"\nhost = true\nzzz = 1\n");
        assert!(
            e.starts_with("kernels.toml:4:1: kernel[0].zzz: unknown field `zzz`"),
            "{e}"
        );
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn wrong_type_and_syntax_errors_are_located() {
        assert_eq!(
            error("[[kernel]]\nname = \"a\"\nhost = true\ncpus = \"two\"\n"),
            "kernels.toml:4:8: kernel[0].cpus: invalid type: string \"two\", expected u32"
        );
        assert_eq!(
            error("[[kernel]]\nhost = true\n"),
            "kernels.toml:1:1: kernel[0]: missing field `name`"
        );
        let e = error("[[kernel]]\nname = \"a\"\nhost = \n");
        assert!(e.starts_with("kernels.toml:3:8: "), "{e}");
    }

    #[test]
    fn source_count_is_checked() {
        assert_eq!(
            error("[[kernel]]\nname = \"a\"\n"),
            "kernels.toml:1:1: kernel[0]: no source: give exactly one of `debian`, `local`, \
             `mainline`, `tree` or `host = true`"
        );
        assert_eq!(
            error("\n[[kernel]]\nname = \"a\"\nhost = true\nmainline = \"v5.4\"\n"),
            "kernels.toml:2:1: kernel[0]: several sources (mainline, host): keep exactly one"
        );
        assert_eq!(
            error("[[kernel]]\nname = \"a\"\ndebian = { suite = \"sid\" }\n"),
            "kernels.toml:3:10: kernel[0].debian: missing `series` (e.g. \"6.1\", newest 6.1.x) \
             or `version` (e.g. \"6.19.6\")"
        );
        assert!(error("x = 1\n").contains("unknown field `x`"));
        assert_eq!(
            error("# nothing\n"),
            "kernels.toml:1:1: kernel: the file lists no kernels; add a [[kernel]] table"
        );
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let text = r#"[[kernel]]
name = "a"
host = true
timeout = "soon"
memory = "lots"
cpus = 0
[[kernel]]
name = "a"
debian = { suite = "bookworm", series = "6" }
[[kernel]]
name = "b c"
mainline = "linux-5.4"
"#;
        let e = error(text);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 7, "{e}");
        assert!(
            lines[0].starts_with("kernels.toml:4:11: kernel[0].timeout: `soon` is not a duration")
        );
        assert!(
            lines[1]
                .starts_with("kernels.toml:5:10: kernel[0].memory: `lots` is not a memory size")
        );
        assert_eq!(
            lines[2],
            "kernels.toml:6:8: kernel[0].cpus: must be at least 1"
        );
        assert_eq!(
            lines[3],
            "kernels.toml:8:8: kernel[1].name: `a` is already the name of kernel[0] (line 2); names must be unique"
        );
        assert!(
            lines[4].starts_with(
                "kernels.toml:9:41: kernel[1].debian.series: `6` is not a kernel series"
            )
        );
        assert!(
            lines[5].starts_with("kernels.toml:11:8: kernel[2].name: `b c` is not a kernel name")
        );
        assert!(lines[6].starts_with("kernels.toml:12:12: kernel[2].mainline: `linux-5.4` is not"));
    }

    /// A kernel's name becomes a directory (`merge --results DIR` reads
    /// `DIR/<kernel>/results.json`) and is printed: `.`, `..` and control characters are
    /// not names.
    #[test]
    fn kernel_names_are_no_paths_and_print_as_they_are() {
        for name in [".", "..", "-x", "a/b", "\\u001b]0;x\\u0007"] {
            let text = format!("[[kernel]]\nname = \"{name}\"\nhost = true\n");
            assert!(
                error(&text).starts_with("kernels.toml:2:8: kernel[0].name: `")
                    && error(&text).contains("` is not a kernel name: letters, digits, `_`, `.`, `+` and `-`, beginning with a letter or digit, at most 64 characters"),
                "{name}: {}",
                error(&text)
            );
            assert!(!error(&text).contains('\x1b'), "{}", error(&text));
        }
    }

    #[test]
    fn strings_that_reach_urls_and_paths_are_checked() {
        let text = r#"[[kernel]]
name = "a"
debian = { suite = "..", series = "6.1" }
[[kernel]]
name = "b"
debian = { suite = "bookworm?x=1#", series = "6.1" }
[[kernel]]
name = "c"
debian = { suite = "bookworm", series = "6.1/../..", flavour = "../amd64" }
[[kernel]]
name = "d"
debian = { suite = "Bookworm", version = "6.1.0-1#x", flavour = "cloud-" }
"#;
        let suite = "is not a suite name such as `bookworm` or `trixie-backports` (lowercase \
                     letters, digits, `.`, `+` and `-`, starting with a letter or digit)";
        let flavour = "is not a Debian kernel flavour such as `cloud-amd64` or `amd64`";
        let e = error(text);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines,
            [
                format!("kernels.toml:3:20: kernel[0].debian.suite: `..` {suite}"),
                format!("kernels.toml:6:20: kernel[1].debian.suite: `bookworm?x=1#` {suite}"),
                format!("kernels.toml:9:64: kernel[2].debian.flavour: `../amd64` {flavour}"),
                "kernels.toml:9:41: kernel[2].debian.series: `6.1/../..` is not a kernel series \
                 such as `6.1` (use `version` for an exact version)"
                    .to_string(),
                format!("kernels.toml:12:20: kernel[3].debian.suite: `Bookworm` {suite}"),
                format!("kernels.toml:12:65: kernel[3].debian.flavour: `cloud-` {flavour}"),
                "kernels.toml:12:42: kernel[3].debian.version: `6.1.0-1#x` is not a kernel version \
                 such as `6.19.6` or `6.19.6-1~bpo13+1`"
                    .to_string(),
            ]
        );
        for suite in [
            "bookworm",
            "trixie-backports",
            "bookworm-proposed-updates",
            "sid",
        ] {
            assert!(is_suite_name(suite), "{suite}");
        }
        for suite in ["", ".", "-rc", "a/b", "a b", "a%2f"] {
            assert!(!is_suite_name(suite), "{suite}");
        }
        for flavour in ["cloud-amd64", "amd64", "686-pae", "rt-arm64"] {
            assert!(is_flavour(flavour), "{flavour}");
        }
        for flavour in ["", "-amd64", "cloud--amd64", "cloud.amd64"] {
            assert!(!is_flavour(flavour), "{flavour}");
        }
    }

    #[test]
    fn optional_local_kernels_are_absent_not_errors_and_pins_are_checked_hex() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bzImage"), b"image").unwrap();
        let pin = "AB".repeat(32);
        let text = format!(
            "[[kernel]]\nname = \"gone\"\n\
             local = {{ vmlinuz = \"${{HARNESS_TEST_SURELY_UNSET}}/bzImage\", optional = true }}\n\
             [[kernel]]\nname = \"missing\"\nlocal = {{ vmlinuz = \"nope/bzImage\", optional = true }}\n\
             [[kernel]]\nname = \"pinned\"\nlocal = {{ vmlinuz = \"bzImage\", sha256 = \"{pin}\" }}\n"
        );
        let file = dir.path().join("kernels.toml");
        let parsed = KernelsFile::parse(&text, &file).expect("valid");
        assert_eq!(
            parsed.kernels[0].source,
            KernelSource::Absent {
                vmlinuz: "${HARNESS_TEST_SURELY_UNSET}/bzImage".into(),
                why: "environment variable HARNESS_TEST_SURELY_UNSET is not set".into(),
            }
        );
        match &parsed.kernels[1].source {
            KernelSource::Absent { why, .. } => {
                assert!(
                    why.ends_with("nope/bzImage does not exist or is not a file"),
                    "{why}"
                )
            }
            other => panic!("expected an absent kernel, got {other:?}"),
        }
        assert_eq!(
            parsed.kernels[2].source,
            KernelSource::Local {
                vmlinuz: dir.path().join("bzImage"),
                modules: None,
                sha256: Some("ab".repeat(32)),
            }
        );

        let bad = "[[kernel]]\nname = \"a\"\nlocal = { vmlinuz = \"bzImage\", sha256 = \"abc\" }\n";
        let e = KernelsFile::parse(bad, &file).unwrap_err().to_string();
        assert!(
            e.contains(
                ":3:41: kernel[0].local.sha256: expected the image's SHA256 as 64 hex digits"
            ),
            "{e}"
        );
    }

    #[test]
    fn missing_local_kernel_and_tree_name_their_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("notatree")).unwrap();
        let text = "[[kernel]]\nname = \"a\"\nlocal = { vmlinuz = \"build/bzImage\" }\n\
                    [[kernel]]\nname = \"b\"\ntree = \"notatree\"\n\
                    [[kernel]]\nname = \"c\"\ntree = \"/nonexistent/linux\"\n";
        let file = dir.path().join("kernels.toml");
        let e = KernelsFile::parse(text, &file).unwrap_err().to_string();
        let lines: Vec<&str> = e.lines().collect();
        let prefix = file.display().to_string();
        assert_eq!(
            lines[0],
            format!(
                "{prefix}:3:21: kernel[0].local.vmlinuz: {} does not exist or is not a file; build the \
                 kernel or fix the path (relative paths start at the directory of this file), or \
                 add `optional = true` to skip it where it is absent",
                dir.path().join("build/bzImage").display()
            )
        );
        assert!(
            lines[1].contains(&format!(
                "{} is not a kernel source tree (no Makefile, Kconfig, kernel at its top)",
                dir.path().join("notatree").display()
            )),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("/nonexistent/linux does not exist or is not a directory"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn paths_resolve_against_home_and_file_directory() {
        let v = Validator {
            path: Path::new("kernels.toml"),
            text: "",
            base_dir: Path::new("/etc/harness"),
            diagnostics: Vec::new(),
        };
        assert_eq!(
            v.resolve_path("k/bzImage"),
            Ok(PathBuf::from("/etc/harness/k/bzImage"))
        );
        assert_eq!(v.resolve_path("/abs"), Ok(PathBuf::from("/abs")));
        if let Some(home) = dirs::home_dir() {
            assert_eq!(v.resolve_path("~/src/linux"), Ok(home.join("src/linux")));
        }
        let home = std::env::var("HOME").expect("HOME is set");
        assert_eq!(
            v.resolve_path("${HOME}/k/${HOME}"),
            Ok(PathBuf::from(format!("{home}/k/{home}")))
        );
        assert_eq!(
            v.resolve_path("${HARNESS_TEST_SURELY_UNSET}/bzImage"),
            Err("environment variable HARNESS_TEST_SURELY_UNSET is not set".to_string())
        );
        assert!(v.resolve_path("${HOME/x").is_err());
    }

    #[test]
    fn value_parsers() {
        assert_eq!(parse_memory("1G").unwrap().bytes(), 1 << 30);
        assert_eq!(parse_memory("512MiB").unwrap().as_qemu_arg(), "512M");
        assert_eq!(parse_memory("2048").unwrap().as_qemu_arg(), "2048M");
        assert!(parse_memory("64M").unwrap_err().contains("too small"));
        assert!(parse_memory("1X").is_err());
        assert!(parse_memory("G").is_err());
        assert_eq!(parse_timeout("90s").unwrap(), Duration::from_secs(90));
        assert!(parse_timeout("0s").is_err());
        assert!(is_series("6.19") && !is_series("6") && !is_series("6.19.1"));
        assert!(is_exact_version("6.19.6") && is_exact_version("6.19.6-1~bpo13+1"));
        assert!(!is_exact_version("6") && !is_exact_version("6.x") && !is_exact_version("6.1-"));
        assert_eq!(
            normalise_mainline_tag("v6.1-rc3").as_deref(),
            Some("v6.1-rc3")
        );
        assert_eq!(normalise_mainline_tag("5.9.16").as_deref(), Some("v5.9.16"));
        assert_eq!(normalise_mainline_tag("v5"), None);
    }
}
