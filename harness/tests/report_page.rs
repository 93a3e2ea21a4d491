//! report.html in a real browser: headless Chromium (Debian's package) loads pages rendered
//! from a real host run (`tests/data/host-run.json`, whose cases include the diverging
//! fixture) and from the hand-built three-kernel run (`report_fixture`), and the tests read
//! the DOM after the page's script ran: the cells per state, the behaviour changes, a
//! filter, the drill-down of a cell (`report.html#KERNEL/CASE` opens it on load).
//!
//! The screenshot test writes the README's picture: `HARNESS_SCREENSHOT=RESULTS.json[#KERNEL/CASE]
//! cargo test --test report_page screenshot` renders that run with that cell open into
//! docs/report.png; without it, the host run's page goes to a temporary file.

mod report_fixture;
mod requirements;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use harness::{
    report::{changes, html, matrix},
    results::RunResults,
};
use requirements::Requirement;

fn chromium() -> Option<PathBuf> {
    let found = requirements::program("chromium");
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
        self.load(chromium, &["--window-size=1400,1000", &screenshot], suffix);
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

/// The matrix's cells as the browser shows them, per state, against the result model's.
fn assert_cells_match(dom: &str, results: &RunResults) {
    let table = element(dom, "<table class=\"matrix\">", "</table>");
    let rows = matrix::rows(results);
    for (state, count) in matrix::totals(&rows) {
        let shown = table
            .matches(&format!("<td data-state=\"{}\"", state.name()))
            .count();
        assert_eq!(shown, count, "cells in state {}", state.name());
    }
    assert_eq!(table.matches("<tr data-case=").count(), rows.len());
}

fn host_run() -> RunResults {
    harness::report::read_json(
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
        "<dt>expected</dt><dd><code>ok</code></dd>",
        "<dt>actual</dt><dd><code>EEXIST (17)</code></dd>",
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
fn screenshot() {
    let Some(chromium) = chromium() else { return };
    let (results, cell, png) = match std::env::var("HARNESS_SCREENSHOT") {
        Ok(source) => {
            let (file, cell) = source
                .split_once('#')
                .map_or((source.as_str(), ""), |(file, cell)| (file, cell));
            let results = harness::report::read_json(Path::new(file)).expect("reads the run");
            let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/report.png");
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
