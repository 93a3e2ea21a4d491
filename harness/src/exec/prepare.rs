//! Calls made ready to run where nothing may allocate (a forked child, racing threads):
//! each concern prepares its own, and reads its outcome from what the call returned.

use super::{
    maps, sockets,
    sys::{self, Prepared},
    world::{World, status},
};
use crate::{case::Action, results::Actual};

/// The action's call, made ready to run where nothing may allocate.
pub(super) fn prepare(world: &World<'_>, action: &Action) -> Result<Prepared, Actual> {
    match action {
        Action::Maps(action) => maps::prepare(world, action),
        Action::Sockets(action) => sockets::prepare(world, action),
        _ => Err(Actual::NotRun {
            reason: "only element operations and close run where nothing may allocate".into(),
        }),
    }
}

/// The outcome of the action's prepared call, from what the call returned.
pub(super) fn outcome(
    world: &World<'_>,
    action: &Action,
    result: Result<&[u8], sys::Errno>,
) -> Actual {
    match action {
        Action::Maps(action) => maps::prepared_outcome(world, action, result),
        _ => status(result.map(drop)),
    }
}
