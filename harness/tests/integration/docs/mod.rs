//! The book (`docs/src/`) and README.md, kept true to the code: the step and program
//! references name every `Op` and every program of the catalogue, every ```yaml example is
//! a case that validates (```yaml fragment marks a part of one), the CLI page is the
//! binary's help, links lead to pages and headings that exist, and the kernels page names
//! the default kernel list. docs/src/contributing.md states these rules for writers.
//!
//! `BLESS=1 cargo test --test integration docs::cli_page` writes the CLI page's generated part
//! again; only `1` blesses.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use harness::{case::Op, catalogue::ProgramKind};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every page of the book and README.md, as paths from the repository's root.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(root().join(dir))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").file_name())
            .collect();
        entries.sort();
        for name in entries {
            let path = dir.join(name);
            if root().join(&path).is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                out.push(path);
            }
        }
    }
    let mut pages = vec![PathBuf::from("README.md")];
    walk(Path::new("docs/src"), &mut pages);
    pages
}

/// A fenced code block: its info string, the line of its first content line, its text.
struct Fence {
    info: String,
    line: usize,
    text: String,
}

/// The fenced blocks of a Markdown text (``` or ~~~, at any indentation).
fn fences(text: &str) -> Vec<Fence> {
    let mut fences = Vec::new();
    let mut open: Option<(char, usize, Fence)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|c| *c == m).count());
        match &mut open {
            Some((m, len, _))
                if marker == Some(*m) && run >= *len && trimmed[run..].trim().is_empty() =>
            {
                let (_, _, fence) = open.take().expect("open");
                fences.push(fence);
            }
            Some((_, _, fence)) => {
                fence.text.push_str(line);
                fence.text.push('\n');
            }
            None if run >= 3 => {
                let m = marker.expect("a marker");
                let fence = Fence {
                    info: trimmed[run..].trim().to_string(),
                    line: i + 2,
                    text: String::new(),
                };
                open = Some((m, run, fence));
            }
            None => {}
        }
    }
    assert!(open.is_none(), "a fence is never closed");
    fences
}

/// The lines of a Markdown text outside its fenced blocks, with their 1-based numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut open: Option<(char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|c| *c == m).count());
        match open {
            Some((m, len))
                if marker == Some(m) && run >= len && trimmed[run..].trim().is_empty() =>
            {
                open = None
            }
            Some(_) => {}
            None if run >= 3 => open = marker.map(|m| (m, run)),
            None => out.push((i + 1, line)),
        }
    }
    out
}

/// The first table after the heading `heading` of `page`: each row's cells, header and
/// separator left out. `\|` stays inside its cell.
fn table_after(page: &Path, heading: &str) -> Vec<Vec<String>> {
    let text = read(page);
    let lines = prose(&text);
    let start = lines
        .iter()
        .position(|(_, line)| line.trim() == heading)
        .unwrap_or_else(|| panic!("{} has no `{heading}` heading", page.display()));
    let rows: Vec<Vec<String>> = lines[start + 1..]
        .iter()
        .map(|(_, line)| line.trim())
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let mut cells = vec![String::new()];
            let mut chars = line.trim_matches('|').chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'|') => {
                        cells.last_mut().expect("a cell").push('|');
                        chars.next();
                    }
                    '|' => cells.push(String::new()),
                    c => cells.last_mut().expect("a cell").push(c),
                }
            }
            cells.into_iter().map(|c| c.trim().to_string()).collect()
        })
        .collect();
    assert!(
        rows.len() > 2,
        "{}: no table after `{heading}`",
        page.display()
    );
    rows[2..].to_vec()
}

/// The names a reference table's rows are about: each code span of a row's first cell, up
/// to its first `:` or space (`` `create_map: NAME` `` is `create_map`).
fn names_in_first_cells(rows: &[Vec<String>]) -> BTreeSet<String> {
    rows.iter()
        .flat_map(|row| {
            row[0]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|span| span.split([':', ' ']).next().expect("a name").to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What a reference misses of `expected`, and what it names that is not there.
fn compare_reference(page: &str, what: &str, named: &BTreeSet<String>, expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    let missing: Vec<_> = expected.difference(named).collect();
    let unknown: Vec<_> = named.difference(&expected).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "{page}: the reference misses {what} {missing:?} and names {unknown:?}, which do not exist"
    );
}

#[test]
fn step_reference_names_every_op() {
    let page = Path::new("docs/src/cases/steps.md");
    let rows = table_after(page, "## Step reference");
    compare_reference(
        "docs/src/cases/steps.md",
        "steps",
        &names_in_first_cells(&rows),
        &Op::names(),
    );
}

#[test]
fn program_reference_names_every_program() {
    let page = Path::new("docs/src/cases/programs.md");
    let rows = table_after(page, "## Program reference");
    let kinds: Vec<&str> = ProgramKind::ALL.iter().map(|kind| kind.name()).collect();
    compare_reference(
        "docs/src/cases/programs.md",
        "programs",
        &names_in_first_cells(&rows),
        &kinds,
    );
}

/// Every ```yaml block is a whole case that validates, and a case the suite ships under
/// the same name is quoted as its file is; ```yaml fragment is read as YAML only.
#[test]
fn yaml_examples_are_cases_that_validate() {
    let shipped: BTreeMap<String, PathBuf> = harness::case::load(&[root().join("cases")])
        .expect("the cases load")
        .into_iter()
        .map(|case| (case.name, case.file))
        .collect();
    let mut problems = Vec::new();
    let mut cases = 0;
    for page in pages() {
        for fence in fences(&read(&page)) {
            let mut words = fence.info.split_whitespace();
            if words.next() != Some("yaml") {
                continue;
            }
            let at = format!("{}:{}", page.display(), fence.line);
            match words.collect::<Vec<_>>().as_slice() {
                [] => {
                    cases += 1;
                    match harness::case::parse(&page, &fence.text) {
                        Err(errors) => problems.push(format!(
                            "{at}: the example does not validate (its lines count from the block's first; mark a part of a case ```yaml fragment):\n{errors}"
                        )),
                        Ok(case) => {
                            if let Some(file) = shipped.get(&case.name) {
                                let text = std::fs::read_to_string(file).expect("a case file");
                                if text != fence.text {
                                    problems.push(format!(
                                        "{at}: the example is named `{}` like {}, but is not its text",
                                        case.name,
                                        file.display()
                                    ));
                                }
                            }
                        }
                    }
                }
                ["fragment"] => {
                    if let Err(e) = serde_yaml::from_str::<serde_yaml::Value>(&fence.text) {
                        problems.push(format!("{at}: the fragment is not YAML: {e}"));
                    }
                }
                other => problems.push(format!(
                    "{at}: ```yaml takes nothing or `fragment` after it, not {other:?}"
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(cases > 0, "no ```yaml example found");
}

/// The id mdBook (and GitHub) gives a heading: lowercase, letters, digits, `-` and `_`,
/// spaces as `-`, anything else dropped.
fn heading_id(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

fn heading_ids(text: &str) -> BTreeSet<String> {
    prose(text)
        .into_iter()
        .filter(|(_, line)| line.starts_with('#'))
        .map(|(_, line)| heading_id(line.trim_start_matches('#').trim()))
        .collect()
}

/// Every relative link (and image) of the book and README.md leads to a file that exists,
/// and a `#fragment` into a page to one of its headings.
#[test]
fn links_lead_somewhere() {
    let mut problems = Vec::new();
    for page in pages() {
        let text = read(&page);
        let dir = page.parent().expect("a directory").to_path_buf();
        for (line, content) in prose(&text) {
            // Code spans are not links.
            let outside_code: String = content.split('`').step_by(2).collect();
            for (i, _) in outside_code.match_indices("](") {
                let rest = &outside_code[i + 2..];
                let Some(end) = rest.find(')') else { continue };
                let target = &rest[..end];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
                let linked = if file.is_empty() {
                    page.clone()
                } else {
                    dir.join(file)
                };
                let at = format!("{}:{line}: `{target}`", page.display());
                if !root().join(&linked).exists() {
                    problems.push(format!("{at}: no such file"));
                    continue;
                }
                let is_page = linked.extension().is_some_and(|ext| ext == "md");
                if !fragment.is_empty()
                    && is_page
                    && !heading_ids(&read(&linked)).contains(fragment)
                {
                    problems.push(format!("{at}: no heading `#{fragment}` there"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The kernels page's "The default list" paragraph names every kernel of kernels.toml, and
/// no kernel that is not there.
#[test]
fn kernels_page_names_the_default_list() {
    let listed: BTreeSet<String> = toml::from_str::<toml::Table>(&read(Path::new("kernels.toml")))
        .expect("kernels.toml parses")["kernel"]
        .as_array()
        .expect("[[kernel]] entries")
        .iter()
        .map(|kernel| kernel["name"].as_str().expect("a name").to_string())
        .collect();
    let page = read(Path::new("docs/src/kernels.md"));
    let paragraph: String = page
        .split("\n\n")
        .find(|p| p.starts_with("The default list"))
        .expect("docs/src/kernels.md has a paragraph beginning `The default list`")
        .to_string();
    let named: BTreeSet<String> = paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            // A version, or a version and an architecture (`6.1-arm64`).
            let version = span.strip_suffix("-arm64").unwrap_or(span);
            version.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        .map(str::to_string)
        .collect();
    let missing: Vec<_> = listed.difference(&named).collect();
    let unknown: Vec<_> = named.difference(&listed).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/src/kernels.md's default list misses {missing:?} and names {unknown:?}, which kernels.toml does not list"
    );
}

/// The line of the CLI page after which everything is generated.
const CLI_MARKER: &str = "<!-- Below: each command's `--help`, generated.";

fn help(command: &[String]) -> String {
    let out = crate::harness_command()
        .args(command)
        .arg("--help")
        .env_remove("COLUMNS")
        .output()
        .expect("the harness binary runs");
    assert!(out.status.success(), "{command:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists under `Commands:`, but `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Each command's help, depth first: `harness`, then `harness run`, … `harness kernels list`.
fn cli_reference() -> String {
    fn add(command: Vec<String>, out: &mut String) {
        let text = help(&command);
        let title = std::iter::once("harness".to_string())
            .chain(command.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!("\n### `{title}`\n\n```text\n{}```\n", text));
        for sub in subcommands(&text) {
            let mut next = command.clone();
            next.push(sub);
            add(next, out);
        }
    }
    let mut out = String::new();
    add(Vec::new(), &mut out);
    out
}

/// docs/src/cli.md, below its marker, is every command's `--help` as the binary prints it.
#[test]
fn cli_page_is_the_binarys_help() {
    let path = root().join("docs/src/cli.md");
    let page = std::fs::read_to_string(&path).expect("docs/src/cli.md");
    let marker = page
        .find(CLI_MARKER)
        .expect("docs/src/cli.md has the generated part's marker");
    let head_end = marker + page[marker..].find('\n').expect("the marker's line ends") + 1;
    let wanted = format!("{}{}", &page[..head_end], cli_reference());
    match std::env::var("BLESS").as_deref() {
        Ok("1") => {
            std::fs::write(&path, &wanted).expect("writes docs/src/cli.md");
            return;
        }
        Ok(other) => {
            eprintln!("BLESS={other:?}: only BLESS=1 rewrites docs/src/cli.md; checking it")
        }
        Err(_) => {}
    }
    if page != wanted {
        let line = page
            .lines()
            .zip(wanted.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| page.lines().count().min(wanted.lines().count()));
        panic!(
            "docs/src/cli.md differs from the binary's help from line {}: run `BLESS=1 cargo test --test integration docs::cli_page` and review the diff",
            line + 1
        );
    }
}

#[test]
fn fences_and_prose_are_told_apart() {
    let text = "a\n```yaml fragment\nx: 1\n```\nb\n````md\n```\n````\n";
    let found = fences(text);
    assert_eq!(found.len(), 2);
    assert_eq!(
        (
            found[0].info.as_str(),
            found[0].line,
            found[0].text.as_str()
        ),
        ("yaml fragment", 3, "x: 1\n")
    );
    assert_eq!(found[1].text, "```\n");
    let lines: Vec<_> = prose(text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines, [1, 5]);
    assert_eq!(heading_id("Kernels before 5.10"), "kernels-before-510");
    assert_eq!(heading_id("`harness run`"), "harness-run");
    assert_eq!(
        subcommands("x\n\nCommands:\n  list  a\n          more\n  help  b\n\nOptions:\n"),
        ["list"]
    );
}
