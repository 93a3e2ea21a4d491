//! The plan a guest runs: the cases the host loaded and validated, handed over as one JSON
//! file in the directory the guest shares with the host.
//!
//! A guest could read and validate the case files itself, but under TCG all code a guest
//! runs for the first time is translated before it runs: reading the files over virtiofs,
//! parsing the YAML and validating it again cost about 0.6 s of every boot, reading the
//! plan a small part of that.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::case::Case;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a plan this harness wrote", path.display())]
    Foreign {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    pub cases: Vec<Case>,
}

impl Plan {
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, serde_json::to_vec(self)?)
    }

    pub fn read(path: &Path) -> Result<Self, PlanError> {
        let bytes = std::fs::read(path).map_err(|source| PlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| PlanError::Foreign {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn every_case_survives_the_trip_to_the_guest() {
        let cases_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cases");
        let plan = Plan {
            cases: crate::case::load(&[cases_dir]).expect("the cases are valid"),
        };
        assert!(plan.cases.len() > 40, "found {} cases", plan.cases.len());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        plan.write(&path).unwrap();
        let read = Plan::read(&path).unwrap();
        // Compared through JSON: the case model has no equality of its own.
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::to_value(&plan).unwrap()
        );
        assert_eq!(read.cases.len(), plan.cases.len());
    }

    #[test]
    fn a_foreign_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, "{\"cases\": 3}").unwrap();
        let error = Plan::read(&path).unwrap_err().to_string();
        assert!(error.contains("plan.json is not a plan"), "{error}");
    }
}
