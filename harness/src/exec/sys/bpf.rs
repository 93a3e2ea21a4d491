//! bpf(2): thin wrappers over the system call with aya-obj's generated `bpf_attr`.

use std::{
    mem,
    os::fd::{FromRawFd, OwnedFd, RawFd},
};

use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_map_type};

use super::{Errno, Kernel, MapSyscalls};

fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> Result<i64, Errno> {
    // SAFETY: attr is a valid, zero-initialised bpf_attr of the size we pass; pointers
    // inside it point to buffers that outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_mut(attr),
            mem::size_of::<bpf_attr>(),
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(ret)
    }
}

fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is a plain C union; all-zero is its documented neutral value.
    unsafe { mem::zeroed() }
}

fn fd_from(ret: i64) -> OwnedFd {
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

/// BTF for a map: the loaded blob and the type ids of key and value.
pub struct MapBtf<'a> {
    pub fd: &'a OwnedFd,
    pub key_type_id: u32,
    pub value_type_id: u32,
}

pub struct MapAttrs<'a> {
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub btf: Option<MapBtf<'a>>,
}

pub fn create_map(map_type: bpf_map_type, attrs: &MapAttrs<'_>) -> Result<OwnedFd, Errno> {
    use std::os::fd::AsRawFd;
    let mut attr = zeroed_attr();
    // SAFETY: writing the MAP_CREATE member of a zeroed union.
    let create = unsafe { &mut attr.__bindgen_anon_1 };
    create.map_type = map_type as u32;
    create.key_size = attrs.key_size;
    create.value_size = attrs.value_size;
    create.max_entries = attrs.max_entries;
    create.map_flags = attrs.map_flags;
    if let Some(btf) = &attrs.btf {
        create.btf_fd = btf.fd.as_raw_fd() as u32;
        create.btf_key_type_id = btf.key_type_id;
        create.btf_value_type_id = btf.value_type_id;
    }
    bpf(bpf_cmd::BPF_MAP_CREATE, &mut attr).map(fd_from)
}

/// One element operation, prepared so it can also run in a forked child, where nothing may
/// allocate: every buffer exists before the call.
pub struct ElemCall {
    pub cmd: bpf_cmd,
    pub map_fd: RawFd,
    pub key: Vec<u8>,
    /// Input value for update, output buffer for lookups, next-key buffer for get_next_key.
    pub value: Vec<u8>,
    pub flags: u64,
    /// get_next_key with no current key passes NULL.
    pub null_key: bool,
}

impl MapSyscalls for Kernel {
    fn map_id(&self, map_fd: RawFd) -> Result<u32, Errno> {
        // SAFETY: bpf_map_info is a plain C struct; all-zero is a valid value.
        let mut info: aya_obj::generated::bpf_map_info = unsafe { mem::zeroed() };
        let mut attr = zeroed_attr();
        // SAFETY: writing the OBJ_GET_INFO_BY_FD member of a zeroed union.
        let get = unsafe { &mut attr.info };
        get.bpf_fd = map_fd as u32;
        get.info_len = mem::size_of_val(&info) as u32;
        get.info = std::ptr::from_mut(&mut info) as u64;
        bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
        Ok(info.id)
    }

    /// On failure, the errno and the kernel's log.
    fn load_btf(&self, blob: &[u8]) -> Result<OwnedFd, (Errno, String)> {
        let mut log = vec![0u8; 64 * 1024];
        let mut attr = zeroed_attr();
        // SAFETY: writing the BTF_LOAD member of a zeroed union.
        let load = unsafe { &mut attr.__bindgen_anon_7 };
        load.btf = blob.as_ptr() as u64;
        load.btf_size = blob.len() as u32;
        load.btf_log_buf = log.as_mut_ptr() as u64;
        load.btf_log_size = log.len() as u32;
        load.btf_log_level = 1;
        bpf(bpf_cmd::BPF_BTF_LOAD, &mut attr)
            .map(fd_from)
            .map_err(|errno| {
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                (
                    errno,
                    String::from_utf8_lossy(&log[..end]).trim().to_string(),
                )
            })
    }

    fn create_sk_storage_map(&self, attrs: &MapAttrs<'_>) -> Result<OwnedFd, Errno> {
        create_map(bpf_map_type::BPF_MAP_TYPE_SK_STORAGE, attrs)
    }

    fn elem(&self, call: &mut ElemCall) -> Result<(), Errno> {
        let mut attr = zeroed_attr();
        // SAFETY: writing the element-operation member of a zeroed union.
        let elem = unsafe { &mut attr.__bindgen_anon_2 };
        elem.map_fd = call.map_fd as u32;
        elem.key = if call.null_key {
            0
        } else {
            call.key.as_ptr() as u64
        };
        elem.__bindgen_anon_1.value = if call.value.is_empty() {
            0
        } else {
            call.value.as_mut_ptr() as u64
        };
        elem.flags = call.flags;
        bpf(call.cmd, &mut attr).map(|_| ())
    }

    /// A batch operation over `count` keys; `keys` and `values` are the in/out buffers.
    fn batch(
        &self,
        cmd: bpf_cmd,
        map_fd: RawFd,
        keys: &mut [u8],
        values: &mut [u8],
        count: u32,
    ) -> Result<u32, Errno> {
        let mut out_batch = [0u8; 8];
        let mut attr = zeroed_attr();
        // SAFETY: writing the batch member of a zeroed union.
        let b = unsafe { &mut attr.batch };
        b.map_fd = map_fd as u32;
        b.keys = keys.as_mut_ptr() as u64;
        b.values = values.as_mut_ptr() as u64;
        b.count = count;
        if matches!(
            cmd,
            bpf_cmd::BPF_MAP_LOOKUP_BATCH | bpf_cmd::BPF_MAP_LOOKUP_AND_DELETE_BATCH
        ) {
            b.out_batch = out_batch.as_mut_ptr() as u64;
        }
        bpf(cmd, &mut attr)?;
        // SAFETY: reading back the member we wrote; the kernel updates count in place.
        Ok(unsafe { attr.batch.count })
    }
}

/// Checks that bpf(2) works here at all, with a map type every BPF kernel has.
pub fn probe() -> Result<(), Errno> {
    create_map(
        bpf_map_type::BPF_MAP_TYPE_ARRAY,
        &MapAttrs {
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            map_flags: 0,
            btf: None,
        },
    )
    .map(drop)
}

/// `BPF_LINK_CREATE` of an iterator program (BPF_TRACE_ITER) for one map: `union
/// bpf_iter_link_info { struct { __u32 map_fd; } map; }` passed as iter_info. aya's
/// `Iter::attach` passes no link info, which map iterators need.
pub fn link_map_iterator(prog_fd: RawFd, map_fd: RawFd) -> Result<OwnedFd, Errno> {
    let link_info = [map_fd as u32];
    let mut attr = zeroed_attr();
    // SAFETY: writing the LINK_CREATE member of a zeroed union.
    let create = unsafe { &mut attr.link_create };
    create.__bindgen_anon_1.prog_fd = prog_fd as u32;
    create.attach_type = aya_obj::generated::bpf_attach_type::BPF_TRACE_ITER as u32;
    create.__bindgen_anon_3.__bindgen_anon_1.iter_info = link_info.as_ptr() as u64;
    create.__bindgen_anon_3.__bindgen_anon_1.iter_info_len = mem::size_of_val(&link_info) as u32;
    bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr).map(fd_from)
}

/// `BPF_ITER_CREATE`: a descriptor whose reads run the iterator.
pub fn iterator_create(link_fd: RawFd) -> Result<OwnedFd, Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing the ITER_CREATE member of a zeroed union.
    let create = unsafe { &mut attr.iter_create };
    create.link_fd = link_fd as u32;
    bpf(bpf_cmd::BPF_ITER_CREATE, &mut attr).map(fd_from)
}
