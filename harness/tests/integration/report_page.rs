//! report.html in a real browser: headless Chromium (Debian's package) loads pages rendered
//! from a real host run (`tests/data/host-run.json`, whose cases include the diverging
//! fixture), from the hand-built three-kernel run (`report_fixture`) and from
//! large-value-storage on 7.0 and 7.1, and the tests read the DOM after the page's script
//! ran: each cell in the outcome and the verdict view, the behaviour changes, a filter, the
//! drill-down of a cell (`report.html#KERNEL/CASE` opens it on load) beside the kernel
//! before it.
//!
//! The screenshot test writes the book's picture (docs/src/reports.md):
//! `HARNESS_SCREENSHOT=RESULTS.json[#KERNEL/CASE] cargo test --test integration screenshot`
//! renders that run with that cell open into docs/src/report.png; without it, the host
//! run's page goes to a temporary file.

use crate::report_fixture;
use crate::requirements;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use harness::{
    case::Expected,
    report::{
        changes, html,
        matrix::{self, Cell},
    },
    results::{Actual, KernelRun, KernelStatus, RunResults},
    version::KernelVersion,
};
use requirements::Requirement;
use serde_json::json;

fn chromium() -> Option<PathBuf> {
    let found = which::which("chromium").ok();
    if found.is_none() {
        requirements::missing(
            Requirement::Browser,
            "chromium is not installed (scripts/setup-browser.sh installs Debian's)",
        );
    }
    found
}

/// A page rendered from `results`, in a directory that lives as long as it.
struct Page {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Page {
    fn of(results: &RunResults) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("report.html");
        std::fs::write(&file, html::render(results)).expect("writes the page");
        Page { dir, file }
    }

    fn url(&self, suffix: &str) -> String {
        format!("file://{}{suffix}", self.file.display())
    }

    /// Chromium with its own profile, as root needs it (no sandbox), without a GPU.
    fn chromium(&self, chromium: &Path) -> Command {
        let mut command = Command::new(chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .arg(format!(
                "--user-data-dir={}",
                self.dir.path().join("profile").display()
            ));
        command
    }

    /// Chromium on the page, with `suffix` (`?query`, `#fragment`) on the URL: its stdout.
    fn load(&self, chromium: &Path, args: &[&str], suffix: &str) -> Vec<u8> {
        let out = self
            .chromium(chromium)
            .args(args)
            .arg(self.url(suffix))
            .output()
            .expect("chromium runs");
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The DOM once the page's script ran.
    fn dom(&self, chromium: &Path, suffix: &str) -> String {
        let started = Instant::now();
        let dom = String::from_utf8(self.load(chromium, &["--dump-dom"], suffix)).expect("UTF-8");
        let ready = attribute(&dom, "data-ready-ms").expect("the script ran to its end");
        eprintln!(
            "{} bytes: chromium --dump-dom took {:.2} s, the page was ready {ready} ms after navigation began",
            std::fs::metadata(&self.file).expect("page").len(),
            started.elapsed().as_secs_f64()
        );
        dom
    }

    fn screenshot(&self, chromium: &Path, suffix: &str, png: &Path) {
        let screenshot = format!("--screenshot={}", png.display());
        self.load(chromium, &["--window-size=1600,1000", &screenshot], suffix);
        let image = std::fs::read(png).expect("the screenshot");
        assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    }
}

/// The value of the first `name="…"` attribute in `dom`.
fn attribute<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let start = dom.find(&format!("{name}=\""))? + name.len() + 2;
    Some(&dom[start..start + dom[start..].find('"')?])
}

/// The element that starts with `open` (`<aside id="detail"`), up to its closing tag.
fn element<'a>(dom: &'a str, open: &str, close: &str) -> &'a str {
    let start = dom
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in {dom}"));
    let end = start + dom[start..].find(close).expect("the element ends");
    &dom[start..end]
}

/// What the matrix's cells show: `outcomes` or `verdicts`.
fn view(dom: &str) -> &str {
    attribute(element(dom, "<section id=\"matrix\"", ">"), "data-view").expect("a view")
}

/// A matrix cell in the page.
struct ShownCell<'a> {
    /// The `<td>`'s attributes and content.
    html: &'a str,
    /// The text it shows in the page's view.
    text: &'a str,
}

/// The matrix's rows as the browser shows them: the case, and its cells.
fn matrix_cells(dom: &str) -> Vec<(&str, Vec<ShownCell<'_>>)> {
    let shown_span = match view(dom) {
        "outcomes" => "<span class=\"outcome\">",
        _ => "<span class=\"verdict\">",
    };
    let body = element(dom, "<tbody>", "</tbody>");
    body.split("<tr data-case=\"")
        .skip(1)
        .map(|row| {
            let case = &row[..row.find('"').expect("the name ends")];
            let cells = row
                .split("<td ")
                .skip(1)
                .map(|td| {
                    let html = &td[..td.find("</td>").expect("the cell ends")];
                    // A cell shows its view's span, or the one text both views share.
                    let text = match html.find(shown_span) {
                        Some(at) => &html[at + shown_span.len()..],
                        None => {
                            let link = &html[html.find("<a ").expect("a link")..];
                            &link[link.find("\">").expect("the link's tag ends") + 2..]
                        }
                    };
                    let text = &text[..text.find('<').expect("the text ends")];
                    ShownCell { html, text }
                })
                .collect();
            (case, cells)
        })
        .collect()
}

/// The matrix's cells as the browser shows them against the result model's: each cell's
/// state and, in the outcome view, whether it shows a change.
fn assert_cells_match(dom: &str, results: &RunResults) {
    let outcomes = view(dom) == "outcomes";
    let rows = matrix::rows(results);
    let shown = matrix_cells(dom);
    assert_eq!(shown.len(), rows.len());
    for (row, (case, cells)) in rows.iter().zip(&shown) {
        assert_eq!(row.case, *case);
        assert_eq!(cells.len(), row.cells.len(), "{case}");
        for ((state, changed), cell) in row.cells.iter().zip(&row.changed).zip(cells) {
            let html = cell.html;
            assert!(
                html.starts_with(&format!("data-state=\"{}\"", state.name())),
                "{case}: {html}"
            );
            let compared = matches!(state, Cell::Pass | Cell::Diverged);
            assert_eq!(
                html.contains(" data-change="),
                compared && *changed,
                "{html}"
            );
            let expected_text = match state {
                Cell::Pass | Cell::Diverged if outcomes && *changed => {
                    assert!(cell.text.contains(": "), "a step and its change: {html}");
                    continue;
                }
                Cell::Pass if outcomes => {
                    assert!(["=", "≈"].contains(&cell.text), "{html}");
                    continue;
                }
                state => state.short(),
            };
            assert_eq!(cell.text, expected_text, "{case}: {html}");
        }
    }
}

/// The text the cell of `case` on the kernel at `column` shows.
fn cell_text<'a>(dom: &'a str, case: &str, column: usize) -> &'a str {
    let rows = matrix_cells(dom);
    let (_, cells) = rows
        .iter()
        .find(|(name, _)| *name == case)
        .unwrap_or_else(|| panic!("no row {case}"));
    cells[column].text
}

/// large-value-storage on 7.0 (7.0.13), which stores a value of 8121 bytes, and on 7.1
/// (7.1.13), which refuses it with ENOMEM, as the case expects; and a case both kernels
/// run alike.
fn large_value_on_7_0_and_7_1() -> RunResults {
    use report_fixture::{because, case, create, errno, step, value};
    let kernel = |name: &str, version, refuses: bool| {
        let (expected, actual, reason) = if refuses {
            (
                errno("ENOMEM"),
                Actual::errno(libc::ENOMEM),
                "from 7.1 a value above 8120 bytes cannot be stored",
            )
        } else {
            (
                Expected::Ok,
                Actual::Ok,
                "values of any size the map accepts could be stored up to 7.0",
            )
        };
        let bytes = json!(vec![1; 8120]);
        let large_value = case(
            "large-value-storage",
            harness::results::CaseOutcome::Pass,
            vec![
                step("setup.1", "create map fits", Expected::Ok, Actual::Ok),
                step("1", "update fits[s] = 1", Expected::Ok, Actual::Ok),
                because(
                    step("2", "update above[s] = 2", expected.clone(), actual.clone()),
                    reason,
                ),
                because(step("3", "update huge[s] = 3", expected, actual), reason),
                step(
                    "4",
                    "lookup fits[s]",
                    Expected::Value(bytes.clone()),
                    value(bytes),
                ),
            ],
        );
        KernelRun {
            version: Some(version),
            cases: vec![
                large_value,
                case(
                    "create-defaults",
                    harness::results::CaseOutcome::Pass,
                    vec![create()],
                ),
            ],
            ..KernelRun::without_cases(name, KernelStatus::Ran)
        }
    };
    report_fixture::results(vec![
        kernel("7.0", KernelVersion::new(7, 0, 13), false),
        kernel("7.1", KernelVersion::new(7, 1, 13), true),
    ])
}

fn host_run() -> RunResults {
    harness::results::read_json(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/host-run.json"),
    )
    .expect("the committed host run reads")
}

#[test]
fn a_real_runs_page_shows_its_cells_and_a_divergences_drill_down() {
    let Some(chromium) = chromium() else { return };
    let results = host_run();
    let page = Page::of(&results);

    let dom = page.dom(&chromium, "");
    assert_eq!(view(&dom), "verdicts", "one kernel: nothing to compare");
    assert_cells_match(&dom, &results);
    assert!(
        element(&dom, "<aside id=\"detail\"", "</aside>").contains("hidden"),
        "no cell is open without a fragment"
    );

    let dom = page.dom(&chromium, "#host/wrong-expectation");
    let detail = element(&dom, "<aside id=\"detail\"", "</aside>");
    assert!(
        !detail.contains(" hidden"),
        "the drill-down is open: {detail}"
    );
    assert!(
        detail.contains("<h2>wrong-expectation on host (6.18.44)</h2>"),
        "{detail}"
    );
    let steps = detail.matches("<li class=\"step").count();
    assert_eq!(steps, 5, "two set-up steps and three steps: {detail}");
    let diverged = element(detail, "<li class=\"step diverged\">", "</li>");
    for shown in [
        "<b>2</b> update store[s] = 2 (NOEXIST)",
        "<dt>expected</dt><dd class=\"expected\"><code>ok</code></dd>",
        "<dt>actual</dt><dd class=\"actual\"><code>EEXIST (17)</code></dd>",
        "harness/tests/fixtures/diverging/wrong-expectation.yaml:12",
    ] {
        assert!(diverged.contains(shown), "{shown} is not in {diverged}");
    }
}

#[test]
fn the_three_kernel_page_lists_changes_filters_rows_and_opens_a_failed_kernels_cell() {
    let Some(chromium) = chromium() else { return };
    let results = report_fixture::fixture();
    let page = Page::of(&results);

    let dom = page.dom(&chromium, "");
    assert_cells_match(&dom, &results);
    let list = element(&dom, "<ul class=\"changes\">", "</ul>");
    let found = changes::across_kernels(&results).changes;
    assert_eq!(list.matches("<li class=\"unexpected\">").count(), 2);
    assert_eq!(list.matches("<li class=").count(), found.len());
    assert!(
        list.contains("changed between 5.10 (5.10.244) and 6.12 (6.12.57): <code>EEXIST (17)</code> → <code>EINVAL (22)</code>"),
        "{list}"
    );

    let dom = page.dom(&chromium, "?only=troubled");
    let table = element(&dom, "<tbody>", "</tbody>");
    let troubled = matrix::rows(&results).iter().filter(|r| r.troubled).count();
    assert_eq!(troubled, 3);
    assert_eq!(table.matches("<tr data-case=").count(), 7);
    assert_eq!(table.matches(" hidden=\"\"").count(), 7 - troubled);
    assert!(dom.contains("3 of 7 cases shown"), "{dom}");

    let dom = page.dom(&chromium, "#7.3/update-noexist");
    let detail = element(&dom, "<aside id=\"detail\"", "</aside>");
    assert!(
        detail.contains("kernel error: kernel panic while booting (console line 412)"),
        "{detail}"
    );
    assert!(detail.contains("Kernel panic - not syncing"), "{detail}");
}

#[test]
fn the_outcome_view_shows_what_changed_and_the_drill_down_the_kernel_before() {
    let Some(chromium) = chromium() else { return };
    let results = large_value_on_7_0_and_7_1();
    let page = Page::of(&results);

    let dom = page.dom(&chromium, "#7.1/large-value-storage");
    assert_eq!(
        view(&dom),
        "outcomes",
        "two kernels: their differences first"
    );
    assert_cells_match(&dom, &results);
    assert_eq!(
        cell_text(&dom, "large-value-storage", 1),
        "2: ok → ENOMEM +1"
    );
    assert_eq!(
        cell_text(&dom, "large-value-storage", 0),
        "=",
        "nothing before 7.0"
    );
    assert_eq!(cell_text(&dom, "create-defaults", 1), "=");
    assert!(
        dom.contains("data-change=\"expected\"><a href=\"#7.1/large-value-storage\""),
        "a change the case expects"
    );
    // An 8 KB value is summarised everywhere in the page.
    assert!(dom.contains("[8120 × 1]"), "{dom}");
    assert!(!dom.contains("1,1,1,1"), "a whole 8 KB value in the page");

    let detail = element(&dom, "<aside id=\"detail\"", "</aside>");
    assert!(
        detail.contains("<span>on 7.1 (7.1.13)</span><span>on 7.0 (7.0.13)</span>"),
        "{detail}"
    );
    assert!(
        detail.contains("5 step(s), 0 diverged; 2 changed from 7.0 (7.0.13), 0 drifted"),
        "{detail}"
    );
    let changed = element(
        detail,
        "<li class=\"step\" data-change=\"expected\"><p><b>2</b>",
        "</li>",
    );
    for shown in [
        "<p class=\"difference\">changed, as the case expects</p>",
        "<dt>expected</dt><dd class=\"expected\"><code>ENOMEM</code></dd><dd class=\"expected\"><code>ok</code></dd>",
        "<dt>actual</dt><dd class=\"actual\"><code>ENOMEM (12)</code></dd><dd class=\"actual\"><code>ok</code></dd>",
    ] {
        assert!(changed.contains(shown), "{shown} is not in {changed}");
    }
    let same = element(detail, "<li class=\"step\"><p><b>1</b>", "</li>");
    assert!(
        same.contains("<dt>actual</dt><dd class=\"actual\"><code>ok</code></dd><dd class=\"actual\"><code>ok</code></dd>"),
        "{same}"
    );

    let dom = page.dom(&chromium, "?view=verdicts#7.0/large-value-storage");
    assert_eq!(view(&dom), "verdicts");
    assert_cells_match(&dom, &results);
    assert_eq!(cell_text(&dom, "large-value-storage", 1), "pass");
    let detail = element(&dom, "<aside id=\"detail\"", "</aside>");
    assert!(
        detail.contains("no kernel before it (by version) ran the case"),
        "{detail}"
    );
    assert!(
        !detail.contains("on 7.1"),
        "no column beside the first kernel: {detail}"
    );
}

#[test]
fn screenshot() {
    let Some(chromium) = chromium() else { return };
    let (results, cell, png) = match std::env::var("HARNESS_SCREENSHOT") {
        Ok(source) => {
            let (file, cell) = source
                .split_once('#')
                .map_or((source.as_str(), ""), |(file, cell)| (file, cell));
            let results = harness::results::read_json(Path::new(file)).expect("reads the run");
            let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/report.png");
            (results, format!("#{cell}"), png)
        }
        Err(_) => (
            host_run(),
            "#host/wrong-expectation".to_string(),
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png"),
        ),
    };
    let page = Page::of(&results);
    assert_cells_match(&page.dom(&chromium, &cell), &results);
    std::fs::create_dir_all(png.parent().expect("a directory")).expect("creates it");
    page.screenshot(&chromium, &cell, &png);
    eprintln!("screenshot: {}", png.display());
}
