//! Which of the loaded cases a command takes: names containing a text (`--filter`), or
//! names given exactly or as globs (`--case`).

use std::fmt;

use globset::{Glob, GlobMatcher};

use crate::case::Case;

#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct CaseSelection {
    /// Only cases whose name contains this text (repeatable).
    #[arg(long)]
    pub filter: Vec<String>,
    /// Only the case of this name, or the cases whose name matches this glob (`'fork-*'`;
    /// repeatable). One that matches no case is an error naming the nearest.
    #[arg(long = "case", value_name = "NAME|GLOB")]
    pub names: Vec<String>,
}

impl CaseSelection {
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty() && self.names.is_empty()
    }

    /// The selected cases in their order, or why the selection is wrong: a glob that does
    /// not parse, a name or glob that matches none of `cases`, or nothing selected.
    pub fn apply(&self, cases: Vec<Case>) -> Result<Vec<Case>, String> {
        let globs = self
            .names
            .iter()
            .map(|name| {
                Glob::new(name)
                    .map(|glob| glob.compile_matcher())
                    .map_err(|e| format!("--case {name:?}: {e}"))
            })
            .collect::<Result<Vec<GlobMatcher>, String>>()?;
        for (name, glob) in self.names.iter().zip(&globs) {
            if !cases.iter().any(|case| glob.is_match(&case.name)) {
                let hint = crate::diagnostic::did_you_mean(
                    name,
                    cases.iter().map(|case| case.name.as_str()),
                );
                return Err(format!("--case {name:?} matches no case{hint}"));
            }
        }
        let selected: Vec<Case> = cases
            .into_iter()
            .filter(|case| {
                (self.filter.is_empty() || self.filter.iter().any(|f| case.name.contains(f)))
                    && (globs.is_empty() || globs.iter().any(|glob| glob.is_match(&case.name)))
            })
            .collect();
        if selected.is_empty() && !self.is_empty() {
            return Err(format!("no case matches {self}"));
        }
        Ok(selected)
    }
}

impl fmt::Display for CaseSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let filters = self.filter.iter().map(|text| format!("--filter {text:?}"));
        let names = self.names.iter().map(|name| format!("--case {name:?}"));
        f.write_str(&filters.chain(names).collect::<Vec<_>>().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cases(names: &[&str]) -> Vec<Case> {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            std::fs::write(
                dir.path().join(format!("{name}.yaml")),
                format!(
                    "name: {name}\ndescription: d\nmaps:\n  m: {{ value: u32 }}\nsteps:\n  - create_map: m\n    expect: ok\n"
                ),
            )
            .unwrap();
        }
        crate::case::load(&[dir.path().to_path_buf()]).expect("valid cases")
    }

    fn names(selected: &[Case]) -> Vec<&str> {
        selected.iter().map(|case| case.name.as_str()).collect()
    }

    #[test]
    fn a_name_is_exact_a_glob_matches_and_a_filter_contains() {
        let all = cases(&["fork-a", "fork-b", "clone-fork", "basic"]);
        let select = |filter: &[&str], case: &[&str]| CaseSelection {
            filter: filter.iter().map(|s| s.to_string()).collect(),
            names: case.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            names(&select(&[], &["fork-*"]).apply(all.clone()).unwrap()),
            ["fork-a", "fork-b"]
        );
        assert_eq!(
            names(&select(&[], &["basic"]).apply(all.clone()).unwrap()),
            ["basic"]
        );
        assert_eq!(
            names(&select(&["fork"], &[]).apply(all.clone()).unwrap()),
            ["clone-fork", "fork-a", "fork-b"]
        );
        assert_eq!(
            names(&select(&[], &[]).apply(all.clone()).unwrap()).len(),
            4
        );
        let typo = select(&[], &["basik"]).apply(all.clone()).unwrap_err();
        assert!(typo.contains("--case \"basik\" matches no case"), "{typo}");
        assert!(typo.contains("basic"), "{typo}");
        let none = select(&["fork"], &["basic"]).apply(all).unwrap_err();
        assert_eq!(none, "no case matches --filter \"fork\" --case \"basic\"");
    }
}
