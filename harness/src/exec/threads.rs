//! Threads steps: map operations racing on threads, their outcomes counted.

use std::collections::BTreeMap;

use super::{maps, world::World};
use crate::{case::steps::ThreadsAction, results::Actual};

/// Per operation name, how often each outcome happened.
type Tally = BTreeMap<String, BTreeMap<String, u64>>;

/// Runs the threads at once and counts each operation's outcomes. Every call is prepared
/// first, as for a forked child, so the threads only make system calls.
pub(super) fn perform(world: &mut World<'_>, action: &ThreadsAction) -> Result<Actual, Actual> {
    let mut prepared = Vec::with_capacity(action.threads.len());
    for runs in &action.threads {
        let calls = ThreadsAction::actions(runs)
            .map(|action| Ok((action.name(), maps::prepare(world, action)?)))
            .collect::<Result<Vec<_>, Actual>>()?;
        prepared.push(calls);
    }
    let kernel = world.kernel;
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let running: Vec<_> = prepared
            .into_iter()
            .map(|mut calls| {
                scope.spawn(move || {
                    let mut tally = Tally::new();
                    for (name, call) in &mut calls {
                        let outcome = match call.run(kernel) {
                            Ok(_) => "ok".to_string(),
                            Err(errno) => crate::errno::name(errno),
                        };
                        *tally
                            .entry(name.to_string())
                            .or_default()
                            .entry(outcome)
                            .or_default() += 1;
                    }
                    tally
                })
            })
            .collect();
        running
            .into_iter()
            .map(|thread| thread.join().unwrap_or_default())
            .collect()
    });
    let mut counts = Tally::new();
    for tally in tallies {
        for (op, outcomes) in tally {
            for (outcome, n) in outcomes {
                *counts
                    .entry(op.clone())
                    .or_default()
                    .entry(outcome)
                    .or_default() += n;
            }
        }
    }
    Ok(Actual::Counts { counts })
}
