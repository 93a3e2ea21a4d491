//! A cheap pass over the YAML events before serde reads the text: it refuses nesting deeper
//! than [`MAX_NESTING`], a key given twice in any mapping, and more than [`MAX_YAML_NODES`]
//! nodes once aliases are expanded.
//!
//! Depth is checked here, not left to serde_yaml's recursion limit, because that limit applies
//! only after libyaml has read the whole document, and libyaml (like saphyr's scanner, which
//! `locate` uses) looks at every pending simple key on every token: its cost grows as
//! depth × length, 13 s (debug build) for 20,000 levels of `[{a: ` in a 70 KB file. saphyr's
//! event parser streams, so stopping at the first level past the limit costs only what was
//! read.
//!
//! Duplicate keys are found here because serde keeps the last of them without a word wherever
//! a case has a map of names (`maps`, `sockets`, `programs`, the keys of a step).
//!
//! So is text with control characters (YAML's escapes write them: `"\e[2J"`): a case's text
//! is printed on terminals and in reports, where they would act.
//!
//! Nodes are counted here because serde builds a copy of an anchor's node for each alias
//! (`*name`): a 1 MiB file of aliases to a large anchor would build gigabytes before any
//! other check could count them.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, Span};

use super::{
    limits::{MAX_NESTING, MAX_YAML_NODES},
    locate::{FieldPath, Segment},
};

/// A problem found by the scan, at the 1-based line and column of the offending node.
pub struct Problem {
    pub path: FieldPath,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// An open collection and where the scan is inside it.
enum Frame {
    Sequence {
        index: usize,
    },
    Mapping {
        /// Each scalar key seen so far, with the line it is on.
        keys: HashMap<String, usize>,
        /// The current key (`None` for a key that is not a scalar).
        key: Option<String>,
        /// Whether the next node is the current key's value (else it is the next key).
        at_value: bool,
    },
}

/// The nodes serde will build from the events so far, each alias counted as a copy of its
/// anchor's node.
#[derive(Default)]
struct Nodes {
    count: u64,
    /// Per anchor id, the nodes of its node.
    anchored: HashMap<usize, u64>,
    /// Per open collection, its anchor id (0: none) and the count before it.
    open: Vec<(usize, u64)>,
}

impl Nodes {
    fn scalar(&mut self, anchor: usize) {
        self.count += 1;
        if anchor > 0 {
            self.anchored.insert(anchor, 1);
        }
    }

    fn alias(&mut self, anchor: usize) {
        self.count += self.anchored.get(&anchor).copied().unwrap_or(1);
    }

    fn start(&mut self, anchor: usize) {
        self.open.push((anchor, self.count));
        self.count += 1;
    }

    fn end(&mut self) {
        if let Some((anchor, before)) = self.open.pop()
            && anchor > 0
        {
            self.anchored.insert(anchor, self.count - before);
        }
    }
}

/// Every duplicate key, or the first collection nested too deep or the first node past
/// [`MAX_YAML_NODES`] (the scan stops there). A syntax error ends the scan without a
/// problem: serde_yaml reports it in its own words.
pub fn scan(text: &str) -> Vec<Problem> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut problems = Vec::new();
    let mut nodes = Nodes::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(event) => event,
            // The scanner reads ahead through opening brackets, looking for a `:` that would
            // make them keys, and gives up at 256 flow levels before any event shows the depth.
            Err(e) if e.info() == "recursion limit exceeded" => {
                problems.push(too_deep(&stack, e.marker()));
                break;
            }
            Err(_) => break,
        };
        match event {
            Event::Scalar(_, _, anchor, _) => nodes.scalar(anchor),
            Event::Alias(anchor) => nodes.alias(anchor),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => nodes.start(anchor),
            Event::SequenceEnd | Event::MappingEnd => nodes.end(),
            _ => {}
        }
        if nodes.count > MAX_YAML_NODES {
            problems.push(Problem {
                path: path_of(&stack),
                line: span.start.line(),
                column: span.start.col() + 1,
                message: format!(
                    "more than {MAX_YAML_NODES} YAML nodes once aliases (`*name`) are expanded, the most a case may have"
                ),
            });
            break;
        }
        match event {
            Event::Scalar(value, ..) => {
                begin(&mut stack, Some(&value), span, &mut problems);
                if let Some(control) = value.chars().find(|c| is_refused_control(*c)) {
                    problems.push(Problem {
                        path: path_of(&stack),
                        line: span.start.line(),
                        column: span.start.col() + 1,
                        message: format!(
                            "holds the control character {}: a case's text is printed, and may hold tabs and line breaks but no other control character",
                            crate::printable::escape(&control.to_string())
                        ),
                    });
                }
                end(&mut stack);
            }
            Event::Alias(_) => {
                begin(&mut stack, None, span, &mut problems);
                end(&mut stack);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                begin(&mut stack, None, span, &mut problems);
                if stack.len() == MAX_NESTING {
                    problems.push(too_deep(&stack, &span.start));
                    break;
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Sequence { index: 0 }
                } else {
                    Frame::Mapping {
                        keys: HashMap::new(),
                        key: None,
                        at_value: false,
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                end(&mut stack);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
    }
    problems
}

/// A character a case's text may not hold: what [`crate::printable::escape`] escapes, but
/// a tab or a line break.
fn is_refused_control(c: char) -> bool {
    c != '\n' && crate::printable::has_control(c.encode_utf8(&mut [0; 4]))
}

fn too_deep(stack: &[Frame], at: &Marker) -> Problem {
    Problem {
        path: path_of(stack),
        line: at.line(),
        column: at.col() + 1,
        message: format!("nested deeper than {MAX_NESTING} levels; cases need far fewer"),
    }
}

/// A node starts; `scalar` is its text where it is a scalar. In a mapping, a node that is
/// not a value is the next key.
fn begin(stack: &mut [Frame], scalar: Option<&str>, span: Span, problems: &mut Vec<Problem>) {
    let Some(Frame::Mapping {
        keys,
        key,
        at_value: false,
    }) = stack.last_mut()
    else {
        return;
    };
    *key = scalar.map(str::to_string);
    let Some(name) = scalar else { return };
    if let Some(first_line) = keys.insert(name.to_string(), span.start.line()) {
        problems.push(Problem {
            path: path_of(stack),
            line: span.start.line(),
            column: span.start.col() + 1,
            message: format!(
                "duplicate key `{name}`, first given on line {first_line}: a key may appear once in a mapping"
            ),
        });
    }
}

/// A node ends: the next one in its mapping is a value after a key and a key after a
/// value; in a sequence, the next item.
fn end(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Sequence { index }) => *index += 1,
        Some(Frame::Mapping { at_value, .. }) => *at_value = !*at_value,
        None => {}
    }
}

/// The path to the node being read: each mapping's current key, each sequence's index.
fn path_of(stack: &[Frame]) -> FieldPath {
    FieldPath(
        stack
            .iter()
            .map(|frame| match frame {
                Frame::Sequence { index } => Segment::Index(*index),
                Frame::Mapping { key, .. } => {
                    Segment::Key(key.clone().unwrap_or_else(|| "?".to_string()))
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        scan(text)
            .into_iter()
            .map(|p| format!("{}:{}: {}: {}", p.line, p.column, p.path, p.message))
            .collect()
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth_with_their_path() {
        let text = "a: 1\nb:\n  - { x: 1, y: 2, x: 3 }\n  - k: [1, 1]\n    k: 2\n";
        assert_eq!(
            problems(text),
            [
                "3:19: b[0].x: duplicate key `x`, first given on line 3: a key may appear once in a mapping",
                "5:5: b[1].k: duplicate key `k`, first given on line 4: a key may appear once in a mapping",
            ]
        );
        // The same key in sibling mappings, values equal to keys, anchors and aliases: fine.
        let text = "a: &v { x: 1 }\nb: { x: x }\nc: *v\nd: [{ x: 1 }, { x: 2 }]\n";
        assert!(problems(text).is_empty(), "{:?}", problems(text));
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let at_limit = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert!(problems(&at_limit).is_empty());
        let beyond = format!(
            "{}{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        assert_eq!(
            problems(&beyond),
            [format!(
                "1:65: {}: nested deeper than 64 levels; cases need far fewer",
                "[0]".repeat(MAX_NESTING)
            )]
        );
    }

    #[test]
    fn aliases_count_as_copies_of_their_anchor() {
        // Each level doubles the nodes: level 20 stands for about 2^21 of them.
        let mut text = "l0: &l0 [1, 1]\n".to_string();
        for level in 1..=20 {
            let below = level - 1;
            text.push_str(&format!("l{level}: &l{level} [*l{below}, *l{below}]\n"));
        }
        assert_eq!(
            problems(&text),
            [
                "18:18: l17[1]: more than 1000000 YAML nodes once aliases (`*name`) are expanded, the most a case may have"
            ]
        );
        // A few aliases of a small anchor are fine.
        assert!(problems("a: &v { x: 1 }\nb: *v\nc: *v\n").is_empty());
    }

    #[test]
    fn syntax_errors_are_left_to_serde() {
        assert!(problems("a: { b: 1 c: 2 }\n").is_empty());
    }
}
