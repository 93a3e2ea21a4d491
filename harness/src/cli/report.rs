//! `harness report merge|show|evidence`: the report formats over saved results, for CI
//! matrices (one job per kernel, a final job merges) and for looking at a finished run
//! again; `evidence` holds the cases' versioned expectations against what the kernels did.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use clap::{Subcommand, ValueEnum};

use super::{EXIT_BAD_INPUT, EXIT_INFRA, EXIT_PASS, exit_code, load_cases};
use crate::{
    kernels::KernelsFile,
    report::{self, changes, evidence, html, human::Human, junit, markdown, matrix},
    results::{self, JsonLayout, RunResults},
};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the results.json files of several runs (e.g. one CI job per kernel), write
    /// results.json, junit.xml, report.md and report.html into --out, and print the matrix.
    ///
    /// With --kernels and --results, every kernel of the list is merged in its order from
    /// RESULTS/<kernel>/results.json, and a kernel whose file is missing or unreadable
    /// becomes that kernel's error row (exit 3) instead of failing the merge; an optional
    /// kernel whose image is absent here, which `kernels matrix` gives no job, is a skip.
    Merge {
        /// results.json files; their kernels appear in this order.
        #[arg(required_unless_present = "kernels", conflicts_with = "kernels")]
        inputs: Vec<PathBuf>,
        /// The kernel list whose kernels, in its order, the merge reports.
        #[arg(long, requires = "results")]
        kernels: Option<PathBuf>,
        /// With --kernels: the directory holding a <kernel>/results.json per kernel.
        #[arg(long, value_name = "DIR", requires = "kernels")]
        results: Option<PathBuf>,
        /// Directory for the merged report (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Indent results.json, a value per line, instead of compact.
        #[arg(long)]
        pretty: bool,
    },
    /// Print a saved results.json in one of the report formats.
    Show {
        /// A results.json written by `harness run` or `harness report merge`.
        input: PathBuf,
        #[arg(long, value_enum, default_value_t = ShowFormat::Matrix)]
        format: ShowFormat,
        /// With --format json: indented, a value per line, instead of compact.
        #[arg(long)]
        pretty: bool,
        /// With --format matrix: only the cases that changed behaviour between kernels,
        /// diverged or failed.
        #[arg(long)]
        only_changed: bool,
    },
    /// Say which kernels of a saved results.json ran each variant of the cases' versioned
    /// expectations, and list the variants no kernel ran as unverified.
    ///
    /// A variant is seen when a kernel in its range ran its step and did what it says,
    /// contradicted when every such kernel did otherwise. Exits 0 once printed: unverified
    /// variants are information, not a failure.
    Evidence {
        /// A results.json written by `harness run` or `harness report merge`.
        input: PathBuf,
        /// Case files or directories (searched recursively for *.yaml).
        /// [default: the project's cases]
        #[arg(default_values_os_t = [super::project::path("cases")], hide_default_value = true)]
        cases: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// Case × kernel on the terminal, then a summary line per kernel.
    Matrix,
    /// Divergences per kernel and behaviour changes across versions.
    Changes,
    /// Where a repeated step's outcome changes between iterations, per kernel: the edge of
    /// a sweep written as a `repeat`.
    Edges,
    /// Every outcome the cases pin that changes across the kernels: the boundary, the
    /// outcome on each side, whether the run saw both sides of it, and why.
    Atlas,
    /// The Markdown job summary.
    Markdown,
    /// The page to open in a browser (report.html): one file, no network needed.
    Html,
    /// JUnit XML, a testsuite per kernel.
    Junit,
    /// The result model as JSON (schema: docs/src/results.md).
    Json,
}

/// Runs the command; the exit code follows the results as for `harness run` (`evidence`:
/// 0 once printed), or says that an input was bad (2) or the report could not be written (3).
pub fn run(command: ReportCommand) -> u8 {
    run_to(command, &mut io::stdout().lock(), super::human())
}

/// [`run`], printing to `stdout`.
fn run_to(command: ReportCommand, stdout: &mut impl Write, view: Human) -> u8 {
    match command {
        ReportCommand::Merge {
            inputs,
            kernels,
            results,
            out,
            pretty,
        } => {
            let merged = match (kernels, results) {
                (Some(kernels), Some(results)) => merge_kernels(&kernels, &results),
                _ => merge_files(&inputs),
            };
            match merged {
                Ok(merged) => {
                    write_merged(&merged, &out, JsonLayout::pretty_if(pretty), stdout, view)
                }
                Err(code) => code,
            }
        }
        ReportCommand::Show {
            input,
            format,
            pretty,
            only_changed,
        } => {
            let rows = if only_changed {
                matrix::Rows::ChangedOrTroubled
            } else {
                matrix::Rows::All
            };
            show(
                &input,
                format,
                JsonLayout::pretty_if(pretty),
                rows,
                stdout,
                view,
            )
        }
        ReportCommand::Evidence { input, cases } => {
            show_evidence(&input, &cases, stdout, view.color)
        }
    }
}

/// The named files merged in their order; any that cannot be read is bad input.
fn merge_files(inputs: &[PathBuf]) -> Result<RunResults, u8> {
    let mut loaded = Vec::with_capacity(inputs.len());
    for path in inputs {
        match results::read_json(path) {
            Ok(results) => loaded.push(results),
            Err(e) => return Err(fail(EXIT_BAD_INPUT, e.into())),
        }
    }
    results::merge(loaded).map_err(|e| {
        let files: Vec<String> = e
            .inputs()
            .into_iter()
            .map(|i| inputs[i].display().to_string())
            .collect();
        let said = format!("{}: {e}", files.join(" and "));
        eprintln!("error: {}", crate::printable::escape(&said));
        EXIT_BAD_INPUT
    })
}

/// Every kernel of the list from `dir/<kernel>/results.json`, in the list's order.
fn merge_kernels(kernels_file: &Path, dir: &Path) -> Result<RunResults, u8> {
    let file = KernelsFile::load(kernels_file).map_err(|e| {
        eprintln!("{}", crate::error_chain(&e));
        EXIT_BAD_INPUT
    })?;
    let names: Vec<&str> = file.kernels.iter().map(|k| k.name.as_str()).collect();
    // A results directory of a kernel the list does not name would be left out silently.
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut unlisted: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| !names.contains(&name.as_str()))
            .collect();
        unlisted.sort();
        if !unlisted.is_empty() {
            eprintln!(
                "warning: {} holds results of kernels {} does not list, left out: {}",
                dir.display(),
                kernels_file.display(),
                crate::printable::escape(&unlisted.join(", "))
            );
        }
    }
    results::merge_dir(&file, dir).map_err(|e| {
        eprintln!(
            "error: {}",
            crate::printable::escape(&format!("{}: {e}", dir.display()))
        );
        EXIT_BAD_INPUT
    })
}

fn write_merged(
    merged: &RunResults,
    out: &Path,
    layout: JsonLayout,
    stdout: &mut impl Write,
    view: Human,
) -> u8 {
    if let Some(differences) = results::build_differences(merged) {
        eprintln!("warning: {}", crate::printable::escape(&differences));
    }
    let files = match report::write_all(merged, out, layout) {
        Ok(files) => files,
        Err(e) => return fail(EXIT_INFRA, e),
    };
    if !super::ui().quiet {
        eprintln!(
            "wrote {}, {}, {} and {}",
            files.results_json.display(),
            files.junit_xml.display(),
            files.report_md.display(),
            files.report_html.display()
        );
    }
    super::publish_to_github(merged, &files, false);
    finish(
        matrix::write(stdout, &report::printable(merged), view, matrix::Rows::All),
        exit_code(merged),
    )
}

fn show(
    input: &Path,
    format: ShowFormat,
    layout: JsonLayout,
    rows: matrix::Rows,
    stdout: &mut impl Write,
    view: Human,
) -> u8 {
    let results = match results::read_json(input) {
        Ok(results) => results,
        Err(e) => return fail(EXIT_BAD_INPUT, e.into()),
    };
    // Every view but the JSON shows the results printable.
    let shown = || report::printable(&results);
    let printed = match format {
        ShowFormat::Matrix => matrix::write(stdout, &shown(), view, rows),
        ShowFormat::Atlas => {
            let shown = shown();
            let boundaries = report::atlas::boundaries(&shown);
            report::atlas::write(stdout, &boundaries, &shown, view.width)
        }
        ShowFormat::Changes => changes::write(stdout, &shown(), view),
        ShowFormat::Edges => report::edges::write(stdout, &shown()),
        ShowFormat::Markdown => write!(stdout, "{}", markdown::render(&shown())),
        ShowFormat::Html => write!(stdout, "{}", html::render(&shown())),
        ShowFormat::Junit => match junit::to_xml(&shown()) {
            Ok(xml) => writeln!(stdout, "{xml}"),
            Err(e) => return fail(EXIT_INFRA, e),
        },
        ShowFormat::Json => writeln!(stdout, "{}", results::to_json(&results, layout)),
    };
    finish(printed, exit_code(&results))
}

fn show_evidence(input: &Path, case_paths: &[PathBuf], stdout: &mut impl Write, color: bool) -> u8 {
    let results = match results::read_json(input) {
        Ok(results) => results,
        Err(e) => return fail(EXIT_BAD_INPUT, e.into()),
    };
    let cases = match load_cases(case_paths, &super::select::CaseSelection::default()) {
        Ok(cases) => cases,
        Err(code) => return code,
    };
    finish(
        evidence::write(stdout, &cases, &report::printable(&results), color),
        EXIT_PASS,
    )
}

/// `code` once printed; a closed pipe (`| head`) is not a failure.
pub(super) fn finish(printed: io::Result<()>, code: u8) -> u8 {
    match printed {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("error: cannot write the report: {e}");
            EXIT_INFRA
        }
        _ => code,
    }
}

fn fail(code: u8, error: report::ReportError) -> u8 {
    eprintln!("error: {}", crate::error_chain(&error));
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{KernelRun, KernelStatus, RunResults};

    fn kernel(name: &str, status: KernelStatus) -> KernelRun {
        KernelRun::without_cases(name, status)
    }

    fn saved(dir: &Path, runs: Vec<KernelRun>) -> PathBuf {
        let path = dir.join(format!("{}.json", runs[0].kernel));
        let json = results::to_json(&RunResults::new(runs), JsonLayout::Compact);
        std::fs::write(&path, json).expect("writes a results file");
        path
    }

    #[test]
    fn merge_writes_the_report_and_exits_by_the_results() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = saved(dir.path(), vec![kernel("6.1", KernelStatus::Ran)]);
        let b = saved(dir.path(), vec![kernel("6.12", KernelStatus::Ran)]);
        let out = dir.path().join("out");
        let mut stdout = Vec::new();
        let merge = ReportCommand::Merge {
            inputs: vec![a, b],
            kernels: None,
            results: None,
            out: out.clone(),
            pretty: false,
        };
        assert_eq!(run_to(merge, &mut stdout, Human::plain()), EXIT_PASS);
        let printed = String::from_utf8(stdout).expect("UTF-8");
        assert!(printed.starts_with("case  6.1   6.12\n"), "{printed}");
        let merged = results::read_json(&out.join(results::RESULTS_JSON)).expect("merged file");
        let names: Vec<&str> = merged.kernels.iter().map(|k| k.kernel.as_str()).collect();
        assert_eq!(names, ["6.1", "6.12"]);
        assert!(out.join(report::JUNIT_XML).is_file());
        assert!(out.join(report::REPORT_MD).is_file());
        assert!(out.join(report::REPORT_HTML).is_file());
    }

    #[test]
    fn merge_by_kernel_list_keeps_its_order_and_a_missing_kernel_is_an_infra_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let list = dir.path().join("kernels.toml");
        std::fs::write(
            &list,
            "[[kernel]]\nname = \"b\"\nhost = true\n[[kernel]]\nname = \"a\"\nhost = true\n",
        )
        .expect("writes the kernel list");
        let results = dir.path().join("results");
        for name in ["a", "b"] {
            let job = results.join(name);
            std::fs::create_dir_all(&job).expect("creates a job's dir");
            let saved = saved(&job, vec![kernel(name, KernelStatus::Ran)]);
            std::fs::rename(saved, job.join(results::RESULTS_JSON)).expect("names it results.json");
        }
        let merge = |out: &Path| ReportCommand::Merge {
            inputs: Vec::new(),
            kernels: Some(list.clone()),
            results: Some(results.clone()),
            out: out.to_path_buf(),
            pretty: false,
        };
        let out = dir.path().join("out");
        assert_eq!(
            run_to(merge(&out), &mut Vec::new(), Human::plain()),
            EXIT_PASS
        );
        let merged = results::read_json(&out.join(results::RESULTS_JSON)).expect("merged file");
        let names: Vec<&str> = merged.kernels.iter().map(|k| k.kernel.as_str()).collect();
        assert_eq!(names, ["b", "a"]);

        std::fs::remove_file(results.join("a").join(results::RESULTS_JSON)).expect("removes");
        assert_eq!(
            run_to(merge(&out), &mut Vec::new(), Human::plain()),
            EXIT_INFRA
        );
        let merged = results::read_json(&out.join(results::RESULTS_JSON)).expect("merged file");
        assert!(
            matches!(&merged.kernels[1].status, KernelStatus::Error { message, .. }
                if message.starts_with("no results for this kernel: cannot read results file")),
            "{:?}",
            merged.kernels[1].status
        );
    }

    #[test]
    fn conflicting_or_unreadable_inputs_are_bad_input_and_write_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = saved(dir.path(), vec![kernel("6.1", KernelStatus::Ran)]);
        let out = dir.path().join("out");
        let twice = ReportCommand::Merge {
            inputs: vec![a.clone(), a],
            kernels: None,
            results: None,
            out: out.clone(),
            pretty: false,
        };
        assert_eq!(
            run_to(twice, &mut Vec::new(), Human::plain()),
            EXIT_BAD_INPUT
        );
        let missing = ReportCommand::Merge {
            inputs: vec![dir.path().join("missing.json")],
            kernels: None,
            results: None,
            out: out.clone(),
            pretty: false,
        };
        assert_eq!(
            run_to(missing, &mut Vec::new(), Human::plain()),
            EXIT_BAD_INPUT
        );
        assert!(!out.exists(), "nothing may be written after a bad input");
    }

    #[test]
    fn show_exits_as_the_run_would() {
        let dir = tempfile::tempdir().expect("temp dir");
        let failed = KernelStatus::Error {
            message: "timed out".into(),
            log_tail: None,
        };
        let input = saved(dir.path(), vec![kernel("7.3", failed)]);
        for format in ShowFormat::value_variants() {
            let show = ReportCommand::Show {
                input: input.clone(),
                format: *format,
                pretty: false,
                only_changed: false,
            };
            let mut stdout = Vec::new();
            assert_eq!(
                run_to(show, &mut stdout, Human::plain()),
                EXIT_INFRA,
                "{format:?}"
            );
            let printed = String::from_utf8(stdout).expect("UTF-8");
            assert!(printed.contains("timed out"), "{format:?} prints {printed}");
        }
    }

    #[test]
    fn evidence_exits_0_once_printed_and_2_on_bad_input() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cases = dir.path().join("cases");
        std::fs::create_dir(&cases).expect("creates the cases directory");
        std::fs::write(
            cases.join("batch.yaml"),
            r#"name: batch
description: batch commands by version
maps:
  store: { value: u32 }
sockets:
  s: { family: inet }
steps:
  - lookup_batch: { map: store, sockets: [s] }
    expect:
      - { until: "5.6", expect: EINVAL, reason: batch commands came in 5.6 }
      - { since: "5.6", expect: ENOTSUPP, reason: sk storage has no batch callbacks }
"#,
        )
        .expect("writes a case");
        // A diverged kernel would make `show` exit 1; `evidence` reports, it does not judge.
        let failed = KernelStatus::Error {
            message: "timed out".into(),
            log_tail: None,
        };
        let input = saved(dir.path(), vec![kernel("7.3", failed)]);
        let evidence = |input: &Path, cases: &Path| ReportCommand::Evidence {
            input: input.to_path_buf(),
            cases: vec![cases.to_path_buf()],
        };

        let mut stdout = Vec::new();
        assert_eq!(
            run_to(evidence(&input, &cases), &mut stdout, Human::plain()),
            EXIT_PASS
        );
        let printed = String::from_utf8(stdout).expect("UTF-8");
        assert!(
            printed.contains("  not counted: 7.3 (kernel error)\n"),
            "{printed}"
        );
        assert!(
            printed.ends_with("2 versioned variants: 0 seen, 0 contradicted, 2 unverified\n"),
            "{printed}"
        );

        let missing = dir.path().join("missing.json");
        assert_eq!(
            run_to(evidence(&missing, &cases), &mut Vec::new(), Human::plain()),
            EXIT_BAD_INPUT
        );
        let no_cases = dir.path().join("no-cases");
        assert_eq!(
            run_to(evidence(&input, &no_cases), &mut Vec::new(), Human::plain()),
            EXIT_BAD_INPUT
        );
    }
}
