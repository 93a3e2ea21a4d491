//! Maps a field path in a case file back to a line and column.
//!
//! serde_yaml reports positions only for errors raised while it deserializes; checks that
//! span the whole case (an undefined name, a closed socket, overlapping versions) run later,
//! so the file is parsed once more with saphyr, which keeps a span on every node. Each step
//! records its line for the reports too, so every case pays that second parse once, when
//! its first step is located (a case file is a few KB).

use std::{cell::OnceCell, fmt};

use saphyr::{LoadableYamlNode, MarkedYaml, YamlData};

/// One step down a YAML tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root, e.g. `steps[2].update.map`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.into()));
        next
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Where to point within a mapping entry: at its key (for an unknown or misplaced field)
/// or at its value (for a wrong value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Key,
    Value,
}

pub struct Locator<'a> {
    text: &'a str,
    root: OnceCell<Option<MarkedYaml<'a>>>,
}

impl<'a> Locator<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            root: OnceCell::new(),
        }
    }

    /// 1-based line and column of the deepest node on `path` that exists; `None` where saphyr
    /// cannot load what serde_yaml did (beyond saphyr's alias expansion budget, say).
    pub fn locate(&self, path: &FieldPath, point: Point) -> Option<(usize, usize)> {
        let root = self.root.get_or_init(|| {
            MarkedYaml::load_from_str(self.text)
                .ok()
                .and_then(|docs| docs.into_iter().next())
        });
        let mut node = root.as_ref()?;
        let mut at = node;
        for (i, segment) in path.0.iter().enumerate() {
            let last = i + 1 == path.0.len();
            let next = match (&node.data, segment) {
                (YamlData::Mapping(map), Segment::Key(key)) => map
                    .iter()
                    .find(|(k, _)| k.data.as_str() == Some(key.as_str()))
                    .map(|(k, v)| if last && point == Point::Key { k } else { v }),
                (YamlData::Sequence(items), Segment::Index(n)) => items.get(*n),
                _ => None,
            };
            match next {
                Some(child) => {
                    node = child;
                    at = child;
                }
                None => break,
            }
        }
        let start = at.span.start;
        Some((start.line(), start.col() + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_values_along_a_path() {
        let text = "name: x\nsteps:\n  - update: { map: store, socket: s }\n    expect: ok\n";
        let locator = Locator::new(text);
        let path = FieldPath::default()
            .key("steps")
            .index(0)
            .key("update")
            .key("map");
        assert_eq!(locator.locate(&path, Point::Value), Some((3, 20)));
        assert_eq!(locator.locate(&path, Point::Key), Some((3, 15)));
        assert_eq!(path.to_string(), "steps[0].update.map");
        // A path that leaves the document stops at the deepest node found.
        let missing = FieldPath::default().key("steps").index(0).key("nope");
        assert_eq!(locator.locate(&missing, Point::Value), Some((3, 5)));
    }
}
