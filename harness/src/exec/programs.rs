//! Program steps: attach and detach a declared program, and observe its next record about
//! a socket.

use super::world::World;
use crate::{case::steps::ProgramAction, results::Actual};

pub(super) fn perform(world: &mut World<'_>, action: &ProgramAction) -> Result<Actual, Actual> {
    let programs = &world.case.programs;
    Ok(match action {
        ProgramAction::Attach { program } => world.object_mut().attach(&programs[program]),
        ProgramAction::Detach { program } => world.object_mut().detach(&programs[program]),
        ProgramAction::Observe {
            program,
            socket,
            callback,
        } => {
            if let Some(fd) = world.fds.get(socket) {
                world.keys.remember(socket, fd);
            }
            let key = world
                .keys
                .get(socket)
                .cloned()
                .ok_or_else(|| Actual::NotRun {
                    reason: format!("socket {socket} has no identity to match records with"),
                })?;
            world
                .object_mut()
                .observe(&programs[program], &key, *callback)
        }
    })
}
