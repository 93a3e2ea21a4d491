//! One run's results from several: a CI matrix's jobs, one kernel each.

use std::path::Path;

use super::{HarnessBuild, KernelStatus, RESULTS_JSON, RunResults, SCHEMA_VERSION, read_json};
use crate::kernels::KernelsFile;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(
        "results schema {found}, but this harness merges schema {SCHEMA_VERSION}; produce every input with the same harness version"
    )]
    Schema {
        /// Index of the input in the merged list.
        input: usize,
        found: u32,
    },
    #[error(
        "kernel {kernel:?} is in two inputs; give each CI job its own kernel (`harness run --kernel NAME`) or merge only one of them"
    )]
    DuplicateKernel {
        kernel: String,
        /// Indexes of the two inputs in the merged list.
        first: usize,
        second: usize,
    },
}

impl MergeError {
    /// Indexes of the inputs the error is about, so callers can name their files.
    pub fn inputs(&self) -> Vec<usize> {
        match self {
            Self::Schema { input, .. } => vec![*input],
            Self::DuplicateKernel { first, second, .. } => vec![*first, *second],
        }
    }
}

/// Joins results of separate runs (a CI matrix: one job per kernel) into one, kernels in
/// input order. A kernel may appear only once: two results for it cannot both be right.
/// The merge spans the earliest start to the latest end; its harness build and accelerator
/// are the first input's, and a kernel whose input differs in either keeps its own
/// ([`build_differences`] says which).
pub fn merge(inputs: Vec<RunResults>) -> Result<RunResults, MergeError> {
    let mut merged: Option<RunResults> = None;
    let mut origin: Vec<usize> = Vec::new();
    for (input, results) in inputs.into_iter().enumerate() {
        if results.schema != SCHEMA_VERSION {
            return Err(MergeError::Schema {
                input,
                found: results.schema,
            });
        }
        // The first input sets the build and accelerator its kernels are not marked with.
        let into = merged.get_or_insert_with(|| RunResults {
            schema: results.schema,
            started: results.started,
            ended: results.ended,
            harness: results.harness.clone(),
            accel: results.accel,
            kernels: Vec::new(),
        });
        into.started = into.started.min(results.started);
        into.ended = into.ended.max(results.ended);
        into.accel = into.accel.or(results.accel);
        for mut run in results.kernels {
            if let Some(at) = into.kernels.iter().position(|k| k.kernel == run.kernel) {
                return Err(MergeError::DuplicateKernel {
                    kernel: run.kernel,
                    first: origin[at],
                    second: input,
                });
            }
            if run.harness.is_none() && results.harness != into.harness {
                run.harness = Some(results.harness.clone());
            }
            if run.accel.is_none() && results.accel.is_some() && results.accel != into.accel {
                run.accel = results.accel;
            }
            into.kernels.push(run);
            origin.push(input);
        }
    }
    Ok(merged.unwrap_or_else(|| RunResults::new(Vec::new())))
}

/// Merges per-kernel runs laid out as `dir/<kernel>/results.json`, in the order of
/// `kernels` (kernels.toml's). A kernel whose file is missing, unreadable, or holds other
/// kernels than its own is that kernel's error row rather than a failed merge: its CI job
/// failed before writing one, or wrote another schema. A kernel that cannot run here had no
/// job (`harness kernels matrix` leaves it out, [`KernelEntry::cannot_run_here`]): without
/// a file, its row is a skip with the reason.
pub fn merge_dir(file: &KernelsFile, dir: &Path) -> Result<RunResults, MergeError> {
    let kernels = &file.kernels;
    let mut found = Vec::new();
    // Per kernel, the row that stands in for results not found.
    let mut stand_ins = Vec::with_capacity(kernels.len());
    for entry in kernels {
        let kernel = entry.name.as_str();
        let path = dir.join(kernel).join(RESULTS_JSON);
        if let Some(reason) = entry.cannot_run_here(file)
            && !path.exists()
        {
            stand_ins.push(Some(
                entry.row_without_cases(KernelStatus::Skipped { reason }),
            ));
            continue;
        }
        let loaded = read_json(&path)
            .map_err(|e| crate::error_chain(&e))
            .and_then(|results| {
                let names: Vec<&str> = results.kernels.iter().map(|k| k.kernel.as_str()).collect();
                if names == [kernel] {
                    Ok(results)
                } else {
                    Err(format!(
                        "{} holds kernels {names:?}, not only {kernel:?}",
                        path.display()
                    ))
                }
            });
        match loaded {
            Ok(mut results) => {
                // The list's note, as a run of the list records it.
                for run in &mut results.kernels {
                    run.note = entry.note.clone();
                }
                found.push(results);
                stand_ins.push(None);
            }
            Err(reason) => stand_ins.push(Some(entry.row_without_cases(KernelStatus::Error {
                message: format!("no results for this kernel: {reason}"),
                log_tail: None,
            }))),
        }
    }
    let mut merged = merge(found)?;
    let mut runs = std::mem::take(&mut merged.kernels).into_iter();
    merged.kernels = stand_ins
        .into_iter()
        // Runs come in `kernels` order, one per kernel without a stand-in.
        .filter_map(|stand_in| stand_in.or_else(|| runs.next()))
        .collect();
    Ok(merged)
}

/// When the kernels of merged results were run by different harness builds, one line
/// saying which kernels ran which build; `None` when a single build ran them all.
pub fn build_differences(results: &RunResults) -> Option<String> {
    let mut builds: Vec<(&HarnessBuild, Vec<&str>)> = Vec::new();
    for run in &results.kernels {
        let build = results.harness_of(run);
        match builds.iter_mut().find(|(b, _)| *b == build) {
            Some((_, kernels)) => kernels.push(&run.kernel),
            None => builds.push((build, vec![&run.kernel])),
        }
    }
    (builds.len() > 1).then(|| {
        let parts: Vec<String> = builds
            .iter()
            .map(|(build, kernels)| format!("{} ran harness {build}", kernels.join(", ")))
            .collect();
        format!(
            "the kernels were run by different harness builds: {}",
            parts.join("; ")
        )
    })
}
