//! Turns what a kernel did into proposed expectations: for every step whose actual outcome
//! is not the expectation in force, an edit of the case file's text that makes it so, for
//! a human to review.
//!
//! The edit is made on the text, line by line, so that the rest of the file (comments,
//! layout, quoting) stays as it is; only shapes that can be edited safely are: a plain
//! `expect: VALUE` on one line, or a block list of variants written as block mappings.
//! Anything else (anchors and aliases, flow lists, steps inside a fork or a repeat, outcomes
//! the case language cannot state in a line) is reported as not edited, with why.

use saphyr::{LoadableYamlNode, MarkedYaml, YamlData};

use crate::{
    case::Case,
    results::{Actual, CaseResult, Verdict},
    version::KernelVersion,
};

/// What was proposed for one diverged step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEdit {
    /// The text now expects what the kernel did.
    Edited { step: String, what: String },
    /// The step was left alone, and why.
    Refused { step: String, why: String },
}

/// The case file's text with the edits made, and what was done per step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub text: String,
    pub edits: Vec<StepEdit>,
}

/// Proposes `text` (the case file of `case`) edited so that every diverged step of `result`
/// expects what `version` did. `origin` names the kernel in the new variants' reasons.
pub fn propose(
    text: &str,
    case: &Case,
    result: &CaseResult,
    version: KernelVersion,
    origin: &str,
) -> Proposal {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut edits = Vec::new();
    let root = MarkedYaml::load_from_str(text)
        .ok()
        .and_then(|docs| docs.into_iter().next());
    // Later steps first, so that inserted lines do not move the ones still to edit.
    for step in result
        .steps
        .iter()
        .rev()
        .filter(|s| s.verdict == Verdict::Diverged)
    {
        let outcome = root
            .as_ref()
            .ok_or("the file does not parse as YAML".to_string());
        let outcome = outcome.and_then(|root| {
            edit_step(
                &mut lines,
                root,
                case,
                &step.id,
                &step.actual,
                version,
                origin,
            )
        });
        edits.push(match outcome {
            Ok(what) => StepEdit::Edited {
                step: step.id.clone(),
                what,
            },
            Err(why) => StepEdit::Refused {
                step: step.id.clone(),
                why,
            },
        });
    }
    edits.reverse();
    let mut text_out = lines.join("\n");
    if text.ends_with('\n') {
        text_out.push('\n');
    }
    Proposal {
        text: text_out,
        edits,
    }
}

/// The case language's spelling of an outcome, when it has a one-line one.
fn expectation_text(actual: &Actual) -> Result<String, String> {
    match actual {
        Actual::Ok => Ok("ok".into()),
        Actual::Errno { name, .. } if crate::errno::code(name).is_some() => Ok(name.clone()),
        Actual::Value { value } => Ok(format!("{{ value: {value} }}")),
        other => Err(format!(
            "the kernel did `{other}`, which this command cannot write as an expectation; edit by hand"
        )),
    }
}

fn mapping_get<'a>(
    node: &'a MarkedYaml<'a>,
    key: &str,
) -> Option<(&'a MarkedYaml<'a>, &'a MarkedYaml<'a>)> {
    match &node.data {
        YamlData::Mapping(map) => map.iter().find(|(k, _)| k.data.as_str() == Some(key)),
        _ => None,
    }
}

/// 0-based line of a node.
fn line_of(node: &MarkedYaml<'_>) -> usize {
    node.span.start.line() - 1
}

fn edit_step(
    lines: &mut Vec<String>,
    root: &MarkedYaml<'_>,
    case: &Case,
    id: &str,
    actual: &Actual,
    version: KernelVersion,
    origin: &str,
) -> Result<String, String> {
    let index: usize = match id.parse::<usize>() {
        Ok(n) if n > 0 => n - 1,
        _ => {
            return Err(format!(
                "step {id} is a set-up step or inside a fork or a repeat; edit by hand"
            ));
        }
    };
    let step = case
        .steps
        .iter()
        .find(|s| s.id == id)
        .ok_or(format!("the case has no step {id}"))?;
    let new = expectation_text(actual)?;
    let steps = mapping_get(root, "steps")
        .ok_or("no `steps` in the file")?
        .1;
    let YamlData::Sequence(items) = &steps.data else {
        return Err("`steps` is not a block list".into());
    };
    let node = items
        .get(index)
        .ok_or(format!("no steps[{index}] in the file"))?;
    let (key, value) = mapping_get(node, "expect").ok_or("the step has no `expect`")?;
    let key_line = line_of(key);
    if has_anchor_or_alias(&lines[key_line]) {
        return Err(format!(
            "its expectation is an anchor or an alias (line {}): other steps share it; edit by hand",
            key_line + 1
        ));
    }
    // Quoted as JSON, which YAML reads as a double-quoted string whatever the kernel's name.
    let quote = |text: String| serde_json::Value::String(text).to_string();
    let reason = quote(format!("recorded on {origin}; review before keeping"));
    let before = quote(format!("as the case expected before recording on {origin}"));
    let since = format!("\"{version}\"");
    let variant = step
        .expect
        .variants
        .iter()
        .position(|v| v.range.contains(version))
        .ok_or(format!("no variant of step {id} covers {version}"))?;
    match &value.data {
        YamlData::Value(_) if line_of(value) == key_line => {
            // One unversioned expectation: it stays for the kernels before this one.
            let indent = " ".repeat(key.span.start.col());
            let at = byte_at(&lines[key_line], value.span.start.col());
            let old = lines[key_line][at..].trim().to_string();
            let prefix = lines[key_line][..at].trim_end().to_string();
            let block = [
                prefix,
                format!("{indent}  - until: {since}"),
                format!("{indent}    expect: {old}"),
                format!("{indent}    reason: {before}"),
                format!("{indent}  - since: {since}"),
                format!("{indent}    expect: {new}"),
                format!("{indent}    reason: {reason}"),
            ];
            lines.splice(key_line..=key_line, block);
            Ok(format!(
                "split into until {version}: {old}, since {version}: {new}"
            ))
        }
        YamlData::Sequence(variants) if variants.len() == step.expect.variants.len() => {
            edit_variant(lines, &variants[variant], &new, version, &reason)
        }
        _ => Err(format!(
            "its expectation (line {}) is neither one plain value nor a block list of variants; edit by hand",
            key_line + 1
        )),
    }
}

/// Splits the block-mapping variant `item` (the one in force) at `version`, or changes its
/// expectation when it starts at `version`.
fn edit_variant(
    lines: &mut Vec<String>,
    item: &MarkedYaml<'_>,
    new: &str,
    version: KernelVersion,
    reason: &str,
) -> Result<String, String> {
    let YamlData::Mapping(map) = &item.data else {
        return Err("a variant is not a mapping".into());
    };
    let first = line_of(item);
    let column = item.span.start.col();
    let key_at = byte_at(&lines[first], column);
    // A block variant reads `- since: …`: its first key follows the item's dash.
    let dash = lines[first][..key_at]
        .trim_end()
        .strip_suffix('-')
        .map(|before| before.chars().count())
        .filter(|_| !lines[first][key_at..].starts_with('{'));
    let Some(dash) = dash else {
        return Err(format!(
            "its variants are not block mappings after `- ` (line {}); edit by hand",
            first + 1
        ));
    };
    let mut last = first;
    for (k, v) in map.iter() {
        last = last.max(line_of(k)).max(line_of(v));
    }
    // A value continued on deeper-indented lines belongs to the variant too.
    while lines
        .get(last + 1)
        .is_some_and(|l| !l.trim().is_empty() && indent_of(l) > column)
    {
        last += 1;
    }
    if lines[first..=last].iter().any(|l| has_anchor_or_alias(l)) {
        return Err(format!(
            "its variant (line {}) holds an anchor or an alias; edit by hand",
            first + 1
        ));
    }
    let field = |name: &str| {
        map.iter()
            .find(|(k, _)| k.data.as_str() == Some(name))
            .map(|(k, v)| (line_of(k), v))
    };
    let since = field("since").and_then(|(_, v)| v.data.as_str().map(str::to_string));
    let until = field("until");
    let dash_pad = " ".repeat(dash);
    let key_pad = " ".repeat(column);
    if since
        .as_deref()
        .and_then(|s| s.parse::<KernelVersion>().ok())
        == Some(version)
    {
        let (line, value) = field("expect").ok_or("a variant has no `expect`")?;
        if !matches!(value.data, YamlData::Value(_)) {
            return Err(format!(
                "the expectation on line {} spans more than a plain value; edit by hand",
                line + 1
            ));
        }
        let at = byte_at(&lines[line], value.span.start.col());
        lines[line] = format!("{}{new}", &lines[line][..at]);
        return Ok(format!("changed the expectation from {version} to {new}"));
    }
    let mut added = vec![format!("{dash_pad}- since: \"{version}\"")];
    if let Some((_, v)) = until {
        let text = v.data.as_str().unwrap_or_default();
        added.push(format!("{key_pad}until: \"{text}\""));
    }
    added.push(format!("{key_pad}expect: {new}"));
    added.push(format!("{key_pad}reason: {reason}"));
    lines.splice(last + 1..last + 1, added);
    match until {
        Some((line, value)) => {
            let at = byte_at(&lines[line], value.span.start.col());
            lines[line] = format!("{}\"{version}\"", &lines[line][..at]);
        }
        None => lines.insert(first + 1, format!("{key_pad}until: \"{version}\"")),
    }
    Ok(format!("a new variant since {version}: {new}"))
}

/// The byte offset of character column `column` (saphyr counts characters).
fn byte_at(line: &str, column: usize) -> usize {
    line.char_indices()
        .nth(column)
        .map_or(line.len(), |(at, _)| at)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `&name` or `*name` outside quotes: the line defines or uses an anchor.
fn has_anchor_or_alias(line: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => return false,
            None if (c == '&' || c == '*')
                && previous.is_whitespace()
                && line[i + 1..].starts_with(|n: char| n.is_ascii_alphanumeric()) =>
            {
                return true;
            }
            None => {}
        }
        previous = c;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{case::Expected, results::StepResult};

    fn load(dir: &std::path::Path, text: &str) -> Case {
        let path = dir.join("c.yaml");
        std::fs::write(&path, text).unwrap();
        crate::case::load(&[path]).unwrap().remove(0)
    }

    fn result(steps: &[(&str, Actual)]) -> CaseResult {
        CaseResult {
            name: "c".into(),
            file: "c.yaml".into(),
            outcome: crate::results::CaseOutcome::Diverged,
            duration_ms: 0,
            steps: steps
                .iter()
                .map(|(id, actual)| StepResult {
                    id: (*id).into(),
                    label: String::new(),
                    line: None,
                    expected: Expected::Ok,
                    reason: None,
                    actual: actual.clone(),
                    verdict: Verdict::Diverged,
                })
                .collect(),
        }
    }

    const HEAD: &str = "name: c\ndescription: d\nmaps:\n  store: { value: u32 }\nsockets:\n  s: { family: inet }\nsteps:\n";

    #[test]
    fn a_plain_expectation_is_split_at_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: ok # stored\n  - lookup: {{ map: store, socket: s }}\n    expect: {{ value: 1 }}\n"
        );
        let case = load(dir.path(), &text);
        let v = KernelVersion::new(7, 1, 13);
        let proposal = propose(
            &text,
            &case,
            &result(&[("1", Actual::errno(libc::ENOMEM))]),
            v,
            "7.1 (7.1.13)",
        );
        assert!(
            matches!(&proposal.edits[..], [StepEdit::Edited { .. }]),
            "{:?}",
            proposal.edits
        );
        assert!(
            proposal.text.contains(
                "    expect:\n      - until: \"7.1.13\"\n        expect: ok # stored\n        reason: \"as the case expected before recording on 7.1 (7.1.13)\"\n      - since: \"7.1.13\"\n        expect: ENOMEM\n"
            ),
            "{}",
            proposal.text
        );
        // The proposal is a valid case that expects what the kernel did.
        let edited = load(dir.path(), &proposal.text);
        let variant = edited
            .steps
            .iter()
            .find(|s| s.id == "1")
            .unwrap()
            .expect
            .variants
            .iter()
            .find(|x| x.range.contains(v))
            .unwrap()
            .outcome
            .clone();
        assert_eq!(variant, Expected::Errno("ENOMEM".into()));
    }

    #[test]
    fn the_variant_in_force_is_split_and_anchors_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{HEAD}  - update: {{ map: store, socket: s, value: 1 }}\n    expect: &shared\n      - until: \"6.8\"\n        expect: ENOMEM\n        reason: before\n      - since: \"6.8\"\n        expect: ok\n        reason: >\n          since 6.8,\n          folded\n  - update: {{ map: store, socket: s, value: 2 }}\n    expect:\n      - until: \"6.8\"\n        expect: ENOMEM\n        reason: before\n      - since: \"6.8\"\n        expect: ok\n        reason: >\n          since 6.8,\n          folded\n  - update: {{ map: store, socket: s, value: 3 }}\n    expect: *shared\n"
        );
        let case = load(dir.path(), &text);
        let v = KernelVersion::new(7, 1, 13);
        let proposal = propose(
            &text,
            &case,
            &result(&[
                ("1", Actual::errno(libc::ENOMEM)),
                ("2", Actual::errno(libc::ENOMEM)),
                ("3", Actual::errno(libc::ENOMEM)),
            ]),
            v,
            "7.1",
        );
        assert!(
            matches!(&proposal.edits[0], StepEdit::Refused { why, .. } if why.contains("anchor")),
            "{:?}",
            proposal.edits
        );
        assert!(
            matches!(&proposal.edits[1], StepEdit::Edited { .. }),
            "{:?}",
            proposal.edits
        );
        assert!(
            matches!(&proposal.edits[2], StepEdit::Refused { why, .. } if why.contains("alias")),
            "{:?}",
            proposal.edits
        );
        assert!(
            proposal.text.contains(
                "      - since: \"6.8\"\n        until: \"7.1.13\"\n        expect: ok\n        reason: >\n          since 6.8,\n          folded\n      - since: \"7.1.13\"\n        expect: ENOMEM\n        reason: \"recorded on 7.1; review before keeping\"\n  - update: { map: store, socket: s, value: 3 }"
            ),
            "{}",
            proposal.text
        );
        let edited = load(dir.path(), &proposal.text);
        let outcome = |id: &str, v: KernelVersion| {
            edited
                .steps
                .iter()
                .find(|s| s.id == id)
                .unwrap()
                .expect
                .variants
                .iter()
                .find(|x| x.range.contains(v))
                .unwrap()
                .outcome
                .clone()
        };
        assert_eq!(outcome("2", v), Expected::Errno("ENOMEM".into()));
        assert_eq!(outcome("2", KernelVersion::new(7, 0, 13)), Expected::Ok);
        assert_eq!(
            outcome("1", v),
            Expected::Ok,
            "the shared expectation is untouched"
        );
    }

    #[test]
    fn anchors_and_aliases_are_told_from_text() {
        assert!(has_anchor_or_alias("    expect: &limited"));
        assert!(has_anchor_or_alias("    expect: *limited"));
        assert!(!has_anchor_or_alias("    reason: \"a *b & c\" # &x"));
        assert!(!has_anchor_or_alias("    reason: a & b, 2 * 3"));
    }
}
