//! The programs and maps. Every helper wrapper is `#[inline(always)]` so each program is one
//! function: the verifier then tracks the socket and context pointers without BPF-to-BPF
//! calls, which older kernels restrict for these pointer types.

use core::{
    ffi::c_void,
    intrinsics::{AtomicOrdering, atomic_xadd},
    ptr,
};

use aya_ebpf::{
    bindings::{
        BPF_F_CLONE, BPF_F_NO_PREALLOC, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB,
        BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB, bpf_map_type::BPF_MAP_TYPE_SK_STORAGE, bpf_sock,
        seq_file,
    },
    btf_maps::{Array, Queue},
    helpers::generated::{
        bpf_get_current_pid_tgid, bpf_get_socket_cookie, bpf_seq_write, bpf_sk_fullsock,
        bpf_sk_storage_delete, bpf_sk_storage_get,
    },
    macros::{
        btf_map, cgroup_skb, cgroup_sock, cgroup_sock_addr, cgroup_sockopt, fentry, fexit, lsm,
        sock_ops,
    },
    programs::{
        FEntryContext, FExitContext, LsmContext, SkBuffContext, SockAddrContext, SockContext,
        SockOpsContext, SockoptContext,
    },
};
use sk_storage_common::{
    HARNESS_OPT_STORAGE_VALUE, HelperRecord, ProgramConfig, SOL_HARNESS, SocketStorage, action,
    delete_outcome, get_outcome, program_id, storage_map,
};

/// A BTF map definition for BPF_MAP_TYPE_SK_STORAGE with the map flags as a parameter.
/// aya-ebpf's own `SkStorage` fixes the flags to NO_PREALLOC; the layout (member names and
/// the array-length encoding of integers) is the one libbpf and aya read from BTF.
#[repr(C)]
struct SkStorageMap<const FLAGS: usize> {
    r#type: *const [i32; BPF_MAP_TYPE_SK_STORAGE as usize],
    key: *const i32,
    value: *const SocketStorage,
    max_entries: *const [i32; 0],
    map_flags: *const [i32; FLAGS],
}

// SAFETY: the fields are placeholders that only describe the map in BTF; they are never
// dereferenced, and the loader replaces references to the static with the map's fd.
unsafe impl<const FLAGS: usize> Sync for SkStorageMap<FLAGS> {}

impl<const FLAGS: usize> SkStorageMap<FLAGS> {
    const fn new() -> Self {
        Self {
            r#type: ptr::null(),
            key: ptr::null(),
            value: ptr::null(),
            max_entries: ptr::null(),
            map_flags: ptr::null(),
        }
    }

    #[inline(always)]
    fn as_ptr(&self) -> *mut c_void {
        ptr::from_ref(self).cast_mut().cast()
    }
}

const NO_PREALLOC: usize = BPF_F_NO_PREALLOC as usize;
const NO_PREALLOC_CLONE: usize = (BPF_F_NO_PREALLOC | BPF_F_CLONE) as usize;
/// Records the queue holds before the harness drains it: far more than a case's traffic
/// produces.
const RECORD_SLOTS: usize = 4096;

#[btf_map]
static STORAGE: SkStorageMap<NO_PREALLOC> = SkStorageMap::new();

#[btf_map]
static STORAGE_CLONE: SkStorageMap<NO_PREALLOC_CLONE> = SkStorageMap::new();

#[btf_map]
static PROGRAM_CONFIG: Array<ProgramConfig, { program_id::COUNT as usize }> = Array::new();

/// A queue, not a ring buffer: BPF_MAP_TYPE_QUEUE and `bpf_map_push_elem` exist since 4.20
/// for every program type here, where the ring buffer needs 5.8.
#[btf_map]
static RECORDS: Queue<HelperRecord, RECORD_SLOTS> = Queue::new();

#[btf_map]
static LOST_RECORDS: Array<u64, 1> = Array::new();

/// How a program names the socket in its records.
#[derive(Clone, Copy, Default)]
struct SocketIdent {
    cookie: u64,
    family: u32,
    local_port: u16,
    remote_port: u16,
}

/// Which helper calls a program's code contains. A program type that may not call
/// `bpf_sk_storage_delete` must not even contain the call: the verifier rejects the
/// program for a helper call on any path, taken or not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Helpers {
    GetOnly,
    GetAndDelete,
}

#[inline(always)]
fn config(program: u32) -> Option<&'static ProgramConfig> {
    PROGRAM_CONFIG.get(program)
}

#[inline(always)]
fn current_tid() -> u32 {
    // SAFETY: helper without arguments. The lower half is the thread id.
    unsafe { bpf_get_current_pid_tgid() as u32 }
}

/// Calls the helpers `config` asks for on `sk`, applies `update` to the storage the get
/// returned, and sends the record. `tid` is 0 for program types that cannot (or need not)
/// tell the current task; `only_tid` then does not filter.
#[inline(always)]
fn observe(
    program: u32,
    config: &ProgramConfig,
    helpers: Helpers,
    (event, detail, tid): (u32, u32, u32),
    sk: *mut c_void,
    socket: SocketIdent,
    update: impl FnOnce(*mut SocketStorage),
) {
    if tid != 0 && config.only_tid != 0 && tid != config.only_tid {
        return;
    }
    if config.only_port != 0
        && u32::from(socket.local_port) != config.only_port
        && u32::from(socket.remote_port) != config.only_port
    {
        return;
    }
    let mut record = HelperRecord {
        program,
        event,
        detail,
        tid,
        cookie: socket.cookie,
        family: socket.family,
        local_port: socket.local_port,
        remote_port: socket.remote_port,
        map: config.map,
        get_flags: config.get_flags,
        ..HelperRecord::default()
    };
    if config.actions & action::GET != 0 {
        record.get = if sk.is_null() {
            get_outcome::NO_SOCKET
        } else {
            let mut init = config.init;
            let init_ptr = if config.pass_init != 0 {
                ptr::from_mut(&mut init).cast()
            } else {
                ptr::null_mut()
            };
            let storage = storage_get(config.map, sk, init_ptr, config.get_flags);
            if storage.is_null() {
                get_outcome::NULL
            } else {
                // SAFETY: a non-NULL pointer from bpf_sk_storage_get points to this
                // map's value type.
                record.storage = unsafe { *storage };
                update(storage);
                get_outcome::POINTER
            }
        };
    }
    if helpers == Helpers::GetAndDelete && config.actions & action::DELETE != 0 {
        if sk.is_null() {
            record.delete = delete_outcome::NO_SOCKET;
        } else {
            record.delete = delete_outcome::CALLED;
            record.delete_ret = storage_delete(config.map, sk);
        }
    }
    if RECORDS.push(record, 0).is_err()
        && let Some(lost) = LOST_RECORDS.get_ptr_mut(0)
    {
        // SAFETY: an array map value, valid and 8-byte aligned for the program's run.
        unsafe { atomic_add(lost, 1) };
    }
}

/// The two maps are separate statics, so each branch passes a constant map pointer, which
/// is what the verifier requires of the helper's first argument.
#[inline(always)]
fn storage_get(map: u32, sk: *mut c_void, init: *mut c_void, flags: u64) -> *mut SocketStorage {
    let map = if map == storage_map::CLONE {
        STORAGE_CLONE.as_ptr()
    } else {
        STORAGE.as_ptr()
    };
    // SAFETY: `sk` is a socket pointer of the type the calling program may pass; `init`
    // is NULL or points to a SocketStorage on the stack.
    unsafe { bpf_sk_storage_get(map, sk, init, flags) }.cast()
}

#[inline(always)]
fn storage_delete(map: u32, sk: *mut c_void) -> i32 {
    let map = if map == storage_map::CLONE {
        STORAGE_CLONE.as_ptr()
    } else {
        STORAGE.as_ptr()
    };
    // SAFETY: as for storage_get. The return value is 0 or a negative errno.
    unsafe { bpf_sk_storage_delete(map, sk) as i32 }
}

/// An atomic add whose result is unused, which LLVM emits as the BPF instruction every
/// kernel accepts (BPF_XADD); the bpf target has no compare-and-swap, so core's atomic
/// types offer no `fetch_add` there.
///
/// # Safety
/// `dst` must be valid for writes and 8-byte aligned.
#[inline(always)]
unsafe fn atomic_add(dst: *mut u64, value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(dst, value) };
}

#[inline(always)]
fn count_event(storage: *mut SocketStorage) {
    // SAFETY: `storage` came from bpf_sk_storage_get; the atomic add keeps concurrent
    // callbacks on one socket (process context and softirq) from losing counts.
    unsafe { atomic_add(&raw mut (*storage).events, 1) };
}

/// `remote_port` in `bpf_sock_ops` and `__sk_buff` is the big-endian port shifted into the
/// upper half on little-endian hosts (older kernels: the lower half); accept both.
#[inline(always)]
fn port_from_ctx_u32(raw: u32) -> u16 {
    let shifted = u32::from_be(raw) as u16;
    if shifted != 0 {
        shifted
    } else {
        u16::from_be(raw as u16)
    }
}

/// Reads the identity of a `struct bpf_sock` (the socket view of cgroup programs).
#[inline(always)]
fn bpf_sock_ident(sk: *const bpf_sock, cookie: u64) -> SocketIdent {
    // SAFETY: callers pass the non-NULL socket pointer of their context.
    unsafe {
        SocketIdent {
            cookie,
            family: (*sk).family,
            local_port: (*sk).src_port as u16,
            remote_port: u16::from_be((*sk).dst_port),
        }
    }
}

// ---- sock_ops: the specification's own example -------------------------------------------

#[sock_ops]
pub fn sock_ops(ctx: SockOpsContext) -> u32 {
    let Some(config) = config(program_id::SOCK_OPS) else {
        return 1;
    };
    let op = ctx.op();
    if op >= 32 || config.sock_ops_mask & (1 << op) == 0 {
        return 1;
    }
    if config.sock_ops_cb_flags != 0
        && (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
    {
        // A failure only means later callbacks (e.g. STATE_CB) will not come; the records
        // then show their absence.
        let _ = ctx.set_cb_flags(config.sock_ops_cb_flags as i32);
    }
    // SAFETY: reading context fields; `sk` is NULL when the callback has no full socket.
    let (sk, cookie) = unsafe {
        (
            (*ctx.ops).__bindgen_anon_2.sk,
            bpf_get_socket_cookie(ctx.ops.cast()),
        )
    };
    let socket = SocketIdent {
        cookie,
        family: ctx.family(),
        local_port: ctx.local_port() as u16,
        remote_port: port_from_ctx_u32(ctx.remote_port()),
    };
    observe(
        program_id::SOCK_OPS,
        config,
        Helpers::GetAndDelete,
        (op, ctx.arg(1), 0),
        sk.cast(),
        socket,
        count_event,
    );
    1
}

// ---- cgroup_skb: count packets and bytes per socket --------------------------------------

#[inline(always)]
fn count_packet(ctx: &SkBuffContext, program: u32) {
    let Some(config) = config(program) else {
        return;
    };
    let skb = ctx.skb.skb;
    // SAFETY: reading context fields of the program's own skb. The helper needs a full
    // socket; request and time-wait sockets yield NULL and are recorded as NO_SOCKET.
    let (len, sk, socket) = unsafe {
        let sk = (*skb).__bindgen_anon_2.sk;
        let full = if sk.is_null() {
            ptr::null_mut()
        } else {
            bpf_sk_fullsock(sk)
        };
        let socket = SocketIdent {
            cookie: bpf_get_socket_cookie(skb.cast()),
            family: (*skb).family,
            local_port: (*skb).local_port as u16,
            remote_port: port_from_ctx_u32((*skb).remote_port),
        };
        ((*skb).len, full, socket)
    };
    observe(
        program,
        config,
        Helpers::GetAndDelete,
        (0, len, 0),
        sk.cast(),
        socket,
        |storage| {
            count_event(storage);
            // SAFETY: as in count_event.
            unsafe { atomic_add(&raw mut (*storage).bytes, u64::from(len)) };
        },
    );
}

#[cgroup_skb(ingress)]
pub fn skb_ingress(ctx: SkBuffContext) -> i32 {
    count_packet(&ctx, program_id::SKB_INGRESS);
    1
}

#[cgroup_skb(egress)]
pub fn skb_egress(ctx: SkBuffContext) -> i32 {
    count_packet(&ctx, program_id::SKB_EGRESS);
    1
}

// ---- cgroup sockopt: a private option whose value lives in the socket's storage ----------

#[cgroup_sockopt(setsockopt)]
pub fn setsockopt(ctx: SockoptContext) -> i32 {
    let sockopt = ctx.sockopt;
    // SAFETY: reading and writing fields of the program's own context.
    unsafe {
        if (*sockopt).level != SOL_HARNESS {
            return 1;
        }
        let Some(config) = config(program_id::SETSOCKOPT) else {
            return 1;
        };
        let optname = (*sockopt).optname;
        let optval = (*sockopt).__bindgen_anon_2.optval as usize;
        let optval_end = (*sockopt).__bindgen_anon_3.optval_end as usize;
        let new_value =
            if optname == HARNESS_OPT_STORAGE_VALUE && optval + size_of::<u64>() <= optval_end {
                Some(ptr::read_unaligned(optval as *const u64))
            } else {
                None
            };
        let sk = (*sockopt).__bindgen_anon_1.sk;
        observe(
            program_id::SETSOCKOPT,
            config,
            Helpers::GetAndDelete,
            (0, optname as u32, 0),
            sk.cast(),
            bpf_sock_ident(sk, 0),
            |storage| {
                count_event(storage);
                if let Some(value) = new_value {
                    (*storage).value = value;
                }
            },
        );
        // The kernel knows no SOL_HARNESS: tell it the option was handled here.
        (*sockopt).optlen = -1;
    }
    1
}

#[cgroup_sockopt(getsockopt)]
pub fn getsockopt(ctx: SockoptContext) -> i32 {
    let sockopt = ctx.sockopt;
    // SAFETY: reading and writing fields of the program's own context.
    unsafe {
        if (*sockopt).level != SOL_HARNESS {
            return 1;
        }
        let Some(config) = config(program_id::GETSOCKOPT) else {
            return 1;
        };
        let optname = (*sockopt).optname;
        let optval = (*sockopt).__bindgen_anon_2.optval as usize;
        let optval_end = (*sockopt).__bindgen_anon_3.optval_end as usize;
        let sk = (*sockopt).__bindgen_anon_1.sk;
        observe(
            program_id::GETSOCKOPT,
            config,
            Helpers::GetAndDelete,
            (0, optname as u32, 0),
            sk.cast(),
            bpf_sock_ident(sk, 0),
            |storage| {
                count_event(storage);
                // Answer with the stored value; without storage the kernel's own
                // error for an unknown level stays the result.
                if optname == HARNESS_OPT_STORAGE_VALUE && optval + size_of::<u64>() <= optval_end {
                    ptr::write_unaligned(optval as *mut u64, (*storage).value);
                    // Volatile: LLVM would merge the two adjacent 4-byte fields into one
                    // 8-byte store, which the verifier refuses for context fields.
                    ptr::write_volatile(&raw mut (*sockopt).optlen, size_of::<u64>() as i32);
                    ptr::write_volatile(&raw mut (*sockopt).retval, 0);
                }
            },
        );
    }
    1
}

// ---- cgroup sock_addr: connect4 / connect6 -----------------------------------------------

#[inline(always)]
fn on_connect(ctx: &SockAddrContext, program: u32) {
    let Some(config) = config(program) else {
        return;
    };
    let sock_addr = ctx.sock_addr;
    // SAFETY: reading fields of the program's own context; `sk` is never NULL here.
    let (sk, socket) = unsafe {
        let sk = (*sock_addr).__bindgen_anon_1.sk;
        let mut socket = bpf_sock_ident(sk, bpf_get_socket_cookie(sock_addr.cast()));
        // The socket is not connected yet: the peer is the address being connected to.
        socket.remote_port = u16::from_be((*sock_addr).user_port as u16);
        (sk, socket)
    };
    observe(
        program,
        config,
        Helpers::GetAndDelete,
        (0, 0, 0),
        sk.cast(),
        socket,
        count_event,
    );
}

#[cgroup_sock_addr(connect4)]
pub fn connect4(ctx: SockAddrContext) -> i32 {
    on_connect(&ctx, program_id::CONNECT4);
    1
}

#[cgroup_sock_addr(connect6)]
pub fn connect6(ctx: SockAddrContext) -> i32 {
    on_connect(&ctx, program_id::CONNECT6);
    1
}

// ---- cgroup_sock sock_create: get allowed, delete not ------------------------------------

#[inline(always)]
fn on_sock_create(ctx: &SockContext, program: u32, helpers: Helpers) {
    let Some(config) = config(program) else {
        return;
    };
    // In cgroup_sock programs the context itself is the socket argument of the helpers.
    // At sock_create the socket has no ports yet (and the context may not read them).
    let sk = ctx.sock;
    let socket = SocketIdent {
        // SAFETY: reading a field of the program's own context.
        family: unsafe { (*sk).family },
        ..SocketIdent::default()
    };
    observe(
        program,
        config,
        helpers,
        (0, 0, 0),
        sk.cast(),
        socket,
        count_event,
    );
}

#[cgroup_sock(sock_create)]
pub fn sock_create(ctx: SockContext) -> i32 {
    on_sock_create(&ctx, program_id::SOCK_CREATE, Helpers::GetOnly);
    1
}

/// The same as `sock_create` plus a `bpf_sk_storage_delete` call, which cgroup_sock
/// programs may not make: a program the verifier is expected to reject at load.
#[cgroup_sock(sock_create)]
pub fn sock_create_delete(ctx: SockContext) -> i32 {
    on_sock_create(&ctx, program_id::SOCK_CREATE_DELETE, Helpers::GetAndDelete);
    1
}

// ---- tracing and LSM: `sk` is a kernel `struct sock *` -----------------------------------

/// Offsets in `struct sock_common`, the first member of `struct sock`; unchanged on 64-bit
/// kernels since long before SK_STORAGE existed. Read directly: tracing and LSM programs may
/// load from BTF-typed kernel pointers, and no helper here needs a newer kernel.
const SKC_DPORT: usize = 12;
const SKC_NUM: usize = 14;
const SKC_FAMILY: usize = 16;

#[inline(always)]
fn on_kernel_sock(sk: *mut c_void, program: u32) {
    let Some(config) = config(program) else {
        return;
    };
    let base = sk.cast::<u8>();
    // SAFETY: `sk` is the traced function's `struct sock *` argument; the verifier turns
    // these loads into fault-tolerant kernel reads.
    let socket = unsafe {
        SocketIdent {
            cookie: 0,
            family: u32::from(ptr::read(base.add(SKC_FAMILY).cast::<u16>())),
            local_port: ptr::read(base.add(SKC_NUM).cast::<u16>()),
            remote_port: u16::from_be(ptr::read(base.add(SKC_DPORT).cast::<u16>())),
        }
    };
    observe(
        program,
        config,
        Helpers::GetAndDelete,
        (0, 0, current_tid()),
        sk,
        socket,
        count_event,
    );
}

#[fentry(function = "tcp_close")]
pub fn fentry_tcp_close(ctx: FEntryContext) -> i32 {
    on_kernel_sock(ctx.arg(0), program_id::FENTRY_TCP_CLOSE);
    0
}

/// After `tcp_connect` (the SYN is queued; ports are set). Not fexit on tcp_close: the
/// socket may already be freed when tcp_close returns.
#[fexit(function = "tcp_connect")]
pub fn fexit_tcp_connect(ctx: FExitContext) -> i32 {
    on_kernel_sock(ctx.arg(0), program_id::FEXIT_TCP_CONNECT);
    0
}

#[lsm(hook = "sock_graft")]
pub fn lsm_sock_graft(ctx: LsmContext) -> i32 {
    on_kernel_sock(ctx.arg(0), program_id::LSM_SOCK_GRAFT);
    0
}

/// The first member of the kernel's `struct bpf_iter_meta`, the only one read (at offset 0
/// since iterators exist, 5.8).
#[repr(C)]
struct IterMeta {
    seq: *mut seq_file,
}

/// The kernel's `struct bpf_iter__bpf_sk_storage_map` (net/core/bpf_sk_storage.c, 5.9): each
/// member is a pointer widened to 8 bytes (`__bpf_md_ptr`). `value` is NULL in the last
/// call, which marks the end of the iteration.
#[repr(C)]
struct SkStorageIterCtx {
    meta: *mut IterMeta,
    map: *mut c_void,
    sk: *mut c_void,
    value: *const u64,
}

/// The iterator over an SK_STORAGE map (attached to a map by the harness, which reads its
/// output): for every storage in the map it writes the value's first 8 bytes, the `value`
/// field of the object's maps. Reading 8 bytes makes the kernel refuse to attach it to a
/// map whose values are smaller (EACCES, `bpf_iter_attach_map`).
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/bpf_sk_storage_map")]
pub fn sk_storage_iter(ctx: *mut c_void) -> i32 {
    let ctx = ctx.cast::<SkStorageIterCtx>();
    // SAFETY: the kernel passes its context; `meta` is always set, `value` is checked for
    // NULL, and when set points to the map's value, at least 8 bytes (checked at attach).
    unsafe {
        let value = (*ctx).value;
        if value.is_null() {
            return 0;
        }
        let first: u64 = *value;
        let seq = (*(*ctx).meta).seq;
        bpf_seq_write(seq, ptr::from_ref(&first).cast(), 8);
    }
    0
}
