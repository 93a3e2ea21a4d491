//! Map steps: creating and closing maps, element and batch commands.

use std::os::fd::{IntoRawFd, RawFd};

use aya_obj::generated::bpf_cmd;

use super::{
    sys::{self, Prepared},
    world::{World, status},
};
use crate::{
    case::steps::{BatchAction, BatchCommand, ElemAction, ElemCommand, MapAction},
    results::Actual,
};

pub(super) fn perform(world: &mut World<'_>, action: &MapAction) -> Result<Actual, Actual> {
    Ok(match action {
        MapAction::Create { map } => create(world, map),
        MapAction::Close { map } => {
            let fd = world.maps.remove(map).ok_or_else(|| Actual::NotRun {
                reason: format!("map {map} was not created"),
            })?;
            status(world.kernel.close(fd.into_raw_fd()))
        }
        MapAction::Freeze { map } => status(world.kernel.freeze(world.map_fd(map)?)),
        MapAction::Elem(elem) => {
            let mut call = elem_call(world, elem)?;
            let result = world.kernel.elem(&mut call);
            elem_outcome(world, elem, result.map(|()| call.value.as_slice()))
        }
        MapAction::Batch(batch) => batch_outcome(world, batch)?,
    })
}

/// An element command, made ready for a forked child or a thread.
pub(super) fn prepare(world: &World<'_>, action: &MapAction) -> Result<Prepared, Actual> {
    match action {
        MapAction::Elem(elem) => elem_call(world, elem).map(Prepared::Elem),
        _ => Err(Actual::NotRun {
            reason: format!("{} runs only as a step of its own", action.name()),
        }),
    }
}

/// The outcome of a prepared element command.
pub(super) fn prepared_outcome(
    world: &World<'_>,
    action: &MapAction,
    result: Result<&[u8], sys::Errno>,
) -> Actual {
    match action {
        MapAction::Elem(elem) => elem_outcome(world, elem, result),
        _ => status(result.map(drop)),
    }
}

fn create(world: &mut World<'_>, name: &str) -> Actual {
    let spec = &world.case.maps[name];
    let btf = match world.btf.get(name) {
        None => None,
        Some(Ok((fd, types))) => Some(sys::MapBtf {
            fd,
            key_type_id: types.key_type_id,
            value_type_id: types.value_type_id,
        }),
        Some(Err(reason)) => {
            return Actual::NotRun {
                reason: reason.clone(),
            };
        }
    };
    let attrs = sys::MapAttrs {
        key_size: spec.key_size,
        value_size: spec.value_size,
        max_entries: spec.max_entries,
        map_flags: spec.flags,
        btf,
    };
    match world.kernel.create_sk_storage_map(&attrs) {
        Ok(fd) => {
            world.maps.insert(name.to_string(), fd);
            world.remember_map_id(name);
            Actual::Ok
        }
        Err(errno) => Actual::errno(errno),
    }
}

/// The key buffer: the descriptor as a C int, padded to the map's key size.
fn key_bytes(world: &World<'_>, map: &str, fd: RawFd) -> Vec<u8> {
    let size = world.case.maps[map].key_size.max(4) as usize;
    let mut key = vec![0u8; size];
    key[..4].copy_from_slice(&fd.to_le_bytes());
    key
}

/// A value buffer of the larger of the declared value size and the value type's size.
fn value_buffer(world: &World<'_>, map: &str, value: &[u8]) -> Vec<u8> {
    let spec = &world.case.maps[map];
    let size = (spec.value_size as usize).max(spec.value.size() as usize);
    let mut buf = vec![0u8; size];
    let n = value.len().min(size);
    buf[..n].copy_from_slice(&value[..n]);
    buf
}

fn elem_call(world: &World<'_>, elem: &ElemAction) -> Result<sys::ElemCall, Actual> {
    let map = &elem.map;
    let map_fd = world.map_fd(map)?;
    let key_fd = world.key_fd(&elem.key)?;
    let value = match elem.command {
        ElemCommand::Delete => Vec::new(),
        ElemCommand::GetNextKey => vec![0u8; world.case.maps[map].key_size.max(4) as usize],
        ElemCommand::Update | ElemCommand::Lookup | ElemCommand::LookupAndDelete => {
            value_buffer(world, map, &elem.value)
        }
    };
    let cmd = match elem.command {
        ElemCommand::Update => bpf_cmd::BPF_MAP_UPDATE_ELEM,
        ElemCommand::Lookup => bpf_cmd::BPF_MAP_LOOKUP_ELEM,
        ElemCommand::Delete => bpf_cmd::BPF_MAP_DELETE_ELEM,
        ElemCommand::LookupAndDelete => bpf_cmd::BPF_MAP_LOOKUP_AND_DELETE_ELEM,
        ElemCommand::GetNextKey => bpf_cmd::BPF_MAP_GET_NEXT_KEY,
    };
    Ok(sys::ElemCall {
        cmd,
        map_fd,
        key: key_bytes(world, map, key_fd.unwrap_or(-1)),
        value,
        flags: elem.flags,
        null_key: key_fd.is_none(),
    })
}

/// The outcome of an element command from what it returned: its value buffer, or an errno.
fn elem_outcome(world: &World<'_>, elem: &ElemAction, result: Result<&[u8], sys::Errno>) -> Actual {
    match result {
        Err(errno) => Actual::errno(errno),
        Ok(value) if elem.command.reads_value() => {
            let ty = &world.case.maps[&elem.map].value;
            Actual::Value {
                value: ty.decode(&value[..ty.size() as usize]),
            }
        }
        Ok(_) => Actual::Ok,
    }
}

fn batch_outcome(world: &World<'_>, batch: &BatchAction) -> Result<Actual, Actual> {
    let map = &batch.map;
    let map_fd = world.map_fd(map)?;
    let spec = &world.case.maps[map];
    let mut key_buf = Vec::new();
    for name in &batch.sockets {
        key_buf.extend(key_bytes(world, map, world.socket_fd(name)?));
    }
    let count = batch.sockets.len().max(1);
    let mut value_buf: Vec<u8> = if batch.values.is_empty() {
        vec![0u8; spec.value_size as usize * count]
    } else {
        let mut buf = Vec::new();
        for value in &batch.values {
            buf.extend(value_buffer(world, map, value));
        }
        buf
    };
    key_buf.resize(key_buf.len().max(spec.key_size as usize * count), 0);
    let cmd = match batch.command {
        BatchCommand::LookupBatch => bpf_cmd::BPF_MAP_LOOKUP_BATCH,
        BatchCommand::UpdateBatch => bpf_cmd::BPF_MAP_UPDATE_BATCH,
        BatchCommand::DeleteBatch => bpf_cmd::BPF_MAP_DELETE_BATCH,
        BatchCommand::LookupAndDeleteBatch => bpf_cmd::BPF_MAP_LOOKUP_AND_DELETE_BATCH,
    };
    let count = batch.sockets.len() as u32;
    Ok(
        match world
            .kernel
            .batch(cmd, map_fd, &mut key_buf, &mut value_buf, count)
        {
            Ok(_) => Actual::Ok,
            Err(errno) => Actual::errno(errno),
        },
    )
}
