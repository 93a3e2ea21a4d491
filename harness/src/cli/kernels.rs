//! `harness kernels list|fetch|matrix`: the kernel matrix's cache, seen and filled from the
//! shell, and its kernel names for a CI matrix.

use std::cell::RefCell;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use super::{EXIT_BAD_INPUT, EXIT_INFRA};
use crate::kernels::{
    CacheState, KernelCache, KernelEntry, KernelSource, KernelsFile, Progress, ResolvedKernel,
    Resolver,
};
use crate::vm::Arch;

#[derive(Debug, Subcommand)]
pub enum KernelsCommand {
    /// Show each kernel's source, resolved release and cache state (reads no network).
    List,
    /// Download, verify and unpack Debian kernels into the cache (all, or those named).
    Fetch {
        /// Kernel names from the kernel list; none means every kernel.
        names: Vec<String>,
        /// Re-read the suites' signed indexes (picks up newer point releases) instead of
        /// reusing the versions resolved earlier.
        #[arg(long)]
        refresh: bool,
    },
    /// Print the kernels' names and architectures in the list's order, for a CI matrix (one
    /// job per kernel, `harness run --kernel NAME`, on a runner that suits its architecture).
    /// A kernel that cannot run on this machine (an optional one whose image is absent, a
    /// Debian one when no Debian mirror is configured) is left out, and stderr says why:
    /// its job, which names it, would fail. `report merge --kernels` shows it as a skip with
    /// that reason.
    Matrix {
        #[arg(long, value_enum, default_value_t = MatrixFormat::Github)]
        format: MatrixFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatrixFormat {
    /// A JSON array of `{"kernel": NAME, "arch": ARCH}` on one line, for `fromJSON()` in a
    /// GitHub Actions matrix's `include`.
    Github,
    /// `NAME ARCH` per line, for shell loops (`while read -r kernel arch`).
    Lines,
}

/// One job of a CI matrix.
#[derive(Debug, serde::Serialize)]
struct MatrixJob<'a> {
    kernel: &'a str,
    arch: Arch,
}

pub fn run(command: KernelsCommand, kernels_file: &Path) -> anyhow::Result<ExitCode> {
    let file = match KernelsFile::load(kernels_file) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{}", crate::error_chain(&e));
            eprintln!("nothing was fetched");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let cache = KernelCache::at(KernelCache::default_root()?);
    match command {
        KernelsCommand::List => list(&file, cache),
        KernelsCommand::Fetch { names, refresh } => fetch(&file, cache, &names, refresh),
        KernelsCommand::Matrix { format } => {
            print!("{}", matrix(&file, format));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The jobs of a CI matrix: every kernel of the list but those that cannot run here, each of
/// which stderr names with the reason.
fn matrix(file: &KernelsFile, format: MatrixFormat) -> String {
    let jobs: Vec<MatrixJob<'_>> = file
        .kernels
        .iter()
        .filter(|entry| match entry.cannot_run_here(file) {
            Some(reason) => {
                eprintln!(
                    "{}: left out of the matrix: {}",
                    entry.name,
                    crate::printable::escape(&reason)
                );
                false
            }
            None => true,
        })
        .map(|entry| MatrixJob {
            kernel: &entry.name,
            arch: entry.arch,
        })
        .collect();
    match format {
        MatrixFormat::Github => format!(
            "{}\n",
            serde_json::to_string(&jobs).expect("names always serialise")
        ),
        MatrixFormat::Lines => jobs
            .iter()
            .map(|job| format!("{} {}\n", job.kernel, job.arch))
            .collect(),
    }
}

/// A row per kernel: its name, architecture, source, release, cache state and kernels.toml's
/// note, each printable (paths and notes are the list's, or the environment's).
fn list(file: &KernelsFile, cache: KernelCache) -> anyhow::Result<ExitCode> {
    use crate::printable::escape;
    let resolver = Resolver::new(file, cache);
    let rows: Vec<[String; 6]> = file
        .kernels
        .iter()
        .map(|entry| {
            let status = resolver.status(entry);
            let cache = match status.cache {
                CacheState::Broken { .. } => format!(
                    "{}; `harness kernels fetch {}` rebuilds it",
                    status.cache, entry.name
                ),
                cache => cache.to_string(),
            };
            [
                entry.name.clone(),
                entry.arch.to_string(),
                entry.source.to_string(),
                status.release.unwrap_or_else(|| "-".into()),
                cache,
                entry.note.clone().unwrap_or_default(),
            ]
            .map(|cell| escape(&cell).into_owned())
        })
        .collect();
    let header = ["NAME", "ARCH", "SOURCE", "RELEASE", "CACHE", "NOTE"].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|col| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|row| row[col].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {:w4$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        );
        println!("{}", line.trim_end());
    }
    println!(
        "cache: {}",
        escape(&resolver.cache().root().display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}

fn fetch(
    file: &KernelsFile,
    cache: KernelCache,
    names: &[String],
    refresh: bool,
) -> anyhow::Result<ExitCode> {
    let selected = match select(file, names) {
        Ok(selected) => selected,
        Err(message) => {
            eprintln!("{}", crate::printable::escape(&message));
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let progress = BarProgress::default();
    let mut resolver = Resolver::new(file, cache)
        .with_progress(&progress)
        .refreshing(refresh);
    let mut failed = 0;
    for entry in selected {
        let started = Instant::now();
        match resolver.resolve(entry) {
            Ok(resolved) => println!(
                "{}: {} ({:.1} s)",
                entry.name,
                crate::printable::escape(&describe(&resolved)),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("error: {}", crate::error_chain(&e));
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} kernel(s) could not be fetched");
        ExitCode::from(EXIT_INFRA)
    })
}

/// Whether a `--kernel` value is a path (to an image or a built tree) rather than a name:
/// it has a `/` (`./bzImage`), which no kernel name may have.
pub(super) fn is_path(kernel: &str) -> bool {
    kernel.contains('/')
}

/// How `--kernel` names a Debian kernel that the list does not have.
const DEBIAN_PREFIX: &str = "debian:";

/// `debian:SUITE[/VERSION][@FLAVOUR]`: a Debian kernel given on the command line.
pub(super) fn is_debian(kernel: &str) -> bool {
    kernel.starts_with(DEBIAN_PREFIX)
}

/// Appends to `file` an entry for each Debian kernel given on the command line, fetched and
/// verified later as the list's are, and returns their names (`6.1.176`, `6.1.176-arm64`).
/// Without a version it is the suite's newest of the flavour (`cloud-amd64` unless
/// `@FLAVOUR` says, `@cloud-arm64` for an arm64 one), read from the suite's signed index.
/// Bad input is exit 2, an index that cannot be read exit 3.
pub(super) fn with_debian(
    file: &mut KernelsFile,
    given: &[String],
    cache: &KernelCache,
) -> Result<Vec<String>, (String, u8)> {
    let mut names = Vec::new();
    for spec in given {
        let bad = |why: &str| {
            (
                format!(
                    "--kernel {spec}: {why} (debian:SUITE[/VERSION][@FLAVOUR], e.g. debian:bookworm/6.1.176)"
                ),
                super::EXIT_BAD_INPUT,
            )
        };
        let rest = &spec[DEBIAN_PREFIX.len()..];
        let (rest, flavour) = rest
            .split_once('@')
            .unwrap_or((rest, crate::kernels::DEFAULT_FLAVOUR));
        let (suite, version) = match rest.split_once('/') {
            Some((suite, version)) => (suite, Some(version)),
            None => (rest, None),
        };
        if !crate::kernels::is_suite_name(suite) {
            return Err(bad(&format!("`{suite}` is not a Debian suite's name")));
        }
        if !crate::kernels::is_flavour(flavour) {
            return Err(bad(&format!("`{flavour}` is not a kernel flavour")));
        }
        let name =
            crate::kernels::append_debian_release(file, cache.clone(), suite, flavour, version)
                .map_err(|e| {
                    let code = match e {
                        crate::kernels::LadderError::Index(_) => super::EXIT_INFRA,
                        crate::kernels::LadderError::NoSuchVersion { .. } => super::EXIT_BAD_INPUT,
                    };
                    (format!("--kernel {spec}: {}", crate::error_chain(&e)), code)
                })?;
        if names.contains(&name) || file.kernels.iter().filter(|k| k.name == name).count() > 1 {
            return Err(bad(&format!(
                "another kernel of the run is already named `{name}`"
            )));
        }
        if let Some(entry) = file.kernels.last_mut() {
            entry.note = Some(format!("given on the command line as {spec}"));
        }
        names.push(name);
    }
    Ok(names)
}

/// `file` with an entry for each kernel given by path (a file is a kernel image, a directory
/// a built source tree), and the names they got: `LABEL=PATH` names it LABEL; otherwise it
/// is named by the release the image or tree announces (`6.13.0-rc1+`), so that two paths
/// read apart in every report; the path as given when it announces none.
pub(super) fn with_paths(
    mut file: KernelsFile,
    paths: &[String],
) -> Result<(KernelsFile, Vec<String>), String> {
    let mut names = Vec::new();
    for given in paths {
        if file.get(given).is_some() {
            names.push(given.clone());
            continue;
        }
        let (label, path) = match given.split_once('=') {
            Some((label, path)) if !label.is_empty() && !label.contains('/') => (Some(label), path),
            _ => (None, given.as_str()),
        };
        if let Some(label) = label
            && !crate::names::is_valid(label)
        {
            return Err(format!(
                "--kernel {given}: `{label}` is not a kernel name: {}",
                crate::names::RULE
            ));
        }
        let absolute = std::fs::canonicalize(path).map_err(|e| {
            format!(
                "--kernel {given}: {e} (give a kernel image, a built tree, LABEL=PATH, or a name of {})",
                file.path.display()
            )
        })?;
        let (source, arch) = if absolute.is_dir() {
            let tree = KernelSource::Tree {
                path: absolute.clone(),
                build: false,
            };
            (tree, Arch::X86_64)
        } else {
            let image = KernelSource::Local {
                vmlinuz: absolute.clone(),
                modules: None,
                sha256: None,
            };
            // An arm64 Image boots in an arm64 guest; anything else as an x86_64 kernel.
            let arch = crate::kernels::image_info(&absolute)
                .ok()
                .and_then(|info| info.arch)
                .unwrap_or_default();
            (image, arch)
        };
        let name = match label {
            Some(label) => label.to_string(),
            None => announced_release(&absolute).unwrap_or_else(|| given.clone()),
        };
        if file.get(&name).is_some() || names.contains(&name) {
            return Err(format!(
                "--kernel {given}: another kernel of the run is already named `{name}`; name this one with --kernel LABEL={path}"
            ));
        }
        file.kernels.push(KernelEntry {
            name: name.clone(),
            source,
            arch,
            timeout: None,
            memory: None,
            cpus: None,
            cmdline: None,
            note: Some(format!("given on the command line as {given}")),
        });
        names.push(name);
    }
    Ok((file, names))
}

/// The release a kernel image (a bzImage's header, an arm64 Image's banner) or a built tree
/// (`include/config/kernel.release`) announces.
fn announced_release(path: &std::path::Path) -> Option<String> {
    let release = if path.is_dir() {
        // A line that make writes.
        let bytes =
            crate::input_file::read_regular(&path.join("include/config/kernel.release"), 4096)
                .ok()?;
        String::from_utf8(bytes).ok()?
    } else {
        crate::kernels::image_release(path).ok()??
    };
    let release = release.trim();
    (!release.is_empty() && !release.contains(['/', '='])).then(|| release.to_string())
}

/// The entries named on the command line, in kernels.toml's order; all of them when none
/// is named. An unknown name is an error that suggests the closest one.
pub(super) fn select<'a>(
    file: &'a KernelsFile,
    names: &[String],
) -> Result<Vec<&'a KernelEntry>, String> {
    for name in names {
        if file.get(name).is_none() {
            let hint =
                crate::diagnostic::did_you_mean(name, file.kernels.iter().map(|k| k.name.as_str()));
            return Err(format!(
                "{}: no kernel named `{name}`{hint} (`harness kernels list` shows the names)",
                file.path.display()
            ));
        }
    }
    Ok(file
        .kernels
        .iter()
        .filter(|entry| names.is_empty() || names.contains(&entry.name))
        .collect())
}

fn describe(resolved: &ResolvedKernel) -> String {
    match resolved {
        ResolvedKernel::Bootable(kernel) => {
            format!("{} at {}", kernel.release, kernel.vmlinuz.display())
        }
        ResolvedKernel::Mainline { tag, .. } => {
            format!("mainline {tag}: vng downloads it when it boots")
        }
        ResolvedKernel::Tree {
            path, build: true, ..
        } => format!(
            "source tree {}: built with ci/kernel.config when its sources change, then booted \
             with its modules",
            path.display()
        ),
        ResolvedKernel::Tree { path, .. } if crate::vm::tree_is_built(path) => format!(
            "built source tree {}: vng boots it with its modules",
            path.display()
        ),
        ResolvedKernel::Tree { path, .. } => format!(
            "source tree {}: not built yet; build it (e.g. `vng --build` in it) before a run",
            path.display()
        ),
        ResolvedKernel::Host { release, .. } => format!("host kernel {release}, nothing to fetch"),
        ResolvedKernel::Absent { vmlinuz, why, .. } => {
            format!("skipped: {}", ResolvedKernel::absent_reason(vmlinuz, why))
        }
    }
}

/// One progress bar per download, on stderr (hidden when it is not a terminal).
#[derive(Default)]
pub(super) struct BarProgress {
    bar: RefCell<Option<ProgressBar>>,
}

impl Progress for BarProgress {
    fn begin(&self, label: &str, total_bytes: u64) {
        let bar = ProgressBar::new(total_bytes).with_message(label.to_string());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        *self.bar.borrow_mut() = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(bytes);
        }
    }

    fn end(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    fn rebuilding(&self, kernel: &str, reason: &str) {
        eprintln!(
            "{kernel}: rebuilding the cached kernel, which is damaged: {}",
            crate::printable::escape(reason)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debian_kernel_names_a_suite_and_a_flavour_of_debian_s_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::at(dir.path().to_path_buf());
        let mut file = KernelsFile::empty(Path::new("kernels.toml"));
        for (given, why) in [
            ("debian:Bookworm", "`Bookworm` is not a Debian suite's name"),
            ("debian:../x/6.1", "`..` is not a Debian suite's name"),
            (
                "debian:bookworm@cloud amd64",
                "`cloud amd64` is not a kernel flavour",
            ),
        ] {
            let (message, code) = with_debian(&mut file, &[given.to_string()], &cache).unwrap_err();
            assert_eq!(code, crate::cli::EXIT_BAD_INPUT, "{message}");
            assert!(
                message.starts_with(&format!("--kernel {given}: {why}")),
                "{message}"
            );
        }
        assert!(file.kernels.is_empty(), "nothing added");
        assert!(is_debian("debian:bookworm/6.1.176@cloud-arm64"));
        assert!(!is_debian("6.1"));
    }

    #[test]
    fn kernels_given_by_path_join_the_list_named_by_their_release_or_label() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("bzImage");
        std::fs::write(&image, b"not really a kernel").unwrap();
        let tree = dir.path().join("linux");
        std::fs::create_dir_all(tree.join("include/config")).unwrap();
        std::fs::write(tree.join("include/config/kernel.release"), "6.13.0-rc1+\n").unwrap();
        let announcing = dir.path().join("other/bzImage");
        std::fs::create_dir(dir.path().join("other")).unwrap();
        std::fs::write(
            &announcing,
            crate::kernels::unpack::test_support::fake_bzimage("6.1.0-50-cloud-amd64", 4096),
        )
        .unwrap();
        let given: Vec<String> = [&image, &tree, &announcing]
            .iter()
            .map(|p| p.display().to_string())
            .chain([format!("mine={}", announcing.display())])
            .collect();
        assert!(given.iter().all(|g| is_path(g)));
        assert!(!is_path("6.1"));
        let (file, names) =
            with_paths(KernelsFile::empty(Path::new("kernels.toml")), &given).unwrap();
        assert!(
            matches!(&file.kernels[0].source, KernelSource::Local { vmlinuz, .. } if *vmlinuz == image)
        );
        assert!(matches!(
            &file.kernels[1].source,
            KernelSource::Tree { path, build: false } if *path == tree
        ));
        // No release in the image: the path as given; a tree's and an image's release; a label.
        assert_eq!(
            names,
            [
                given[0].as_str(),
                "6.13.0-rc1+",
                "6.1.0-50-cloud-amd64",
                "mine"
            ]
        );
        let twice = with_paths(
            KernelsFile::empty(Path::new("kernels.toml")),
            &[given[2].clone(), given[2].clone()],
        );
        assert!(
            twice.unwrap_err().contains("--kernel LABEL="),
            "two kernels of one name"
        );
        let missing = with_paths(
            KernelsFile::empty(Path::new("kernels.toml")),
            &["./nope".into()],
        );
        assert!(missing.unwrap_err().starts_with("--kernel ./nope:"));
        let dots = with_paths(
            KernelsFile::empty(Path::new("kernels.toml")),
            &[format!("..={}", image.display())],
        );
        assert!(
            dots.unwrap_err()
                .contains(": `..` is not a kernel name: letters"),
            "a label is a kernel name"
        );
    }
}
