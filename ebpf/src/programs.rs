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
    CallList, CallResult, CallSpec, HARNESS_OPT_STORAGE_VALUE, HelperRecord, ProgramConfig,
    ProgramKind, SOL_HARNESS, SocketStorage, call_op, call_outcome, storage_map,
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
static PROGRAM_CONFIG: Array<ProgramConfig, { ProgramKind::COUNT }> = Array::new();

/// The sock_ops program's calls per callback op (the ops it acts on are
/// `ProgramConfig::sock_ops_mask`); indexed by the op, which is below 32 there.
#[btf_map]
static SOCK_OPS_CALLS: Array<CallList, 32> = Array::new();

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

#[inline(always)]
fn config(program: ProgramKind) -> Option<&'static ProgramConfig> {
    PROGRAM_CONFIG.get(program.id())
}

#[inline(always)]
fn current_tid() -> u32 {
    // SAFETY: helper without arguments. The lower half is the thread id.
    unsafe { bpf_get_current_pid_tgid() as u32 }
}

/// Defines a hook's three programs, one per helper set (`sk_storage_common::helper_set`),
/// each its own ELF program so the loader can pick the one whose helper calls are exactly
/// those the case declares. `$body::<GET, DELETE>` is the hook's code; the const
/// parameters remove the helper calls of the other sets at compile time.
macro_rules! helper_set_programs {
    ($attr:meta, $ctx:ty => $ret:ty, $body:ident, [$get:ident, $delete:ident, $get_delete:ident]) => {
        #[$attr]
        pub fn $get(ctx: $ctx) -> $ret {
            $body::<true, false>(ctx)
        }

        #[$attr]
        pub fn $delete(ctx: $ctx) -> $ret {
            $body::<false, true>(ctx)
        }

        #[$attr]
        pub fn $get_delete(ctx: $ctx) -> $ret {
            $body::<true, true>(ctx)
        }
    };
}

/// What a run reports besides the calls: see the fields of `HelperRecord`. `tid` is 0 for
/// program types that cannot (or need not) tell the current task; `only_tid` then does not
/// filter.
#[derive(Clone, Copy, Default)]
struct Event {
    event: u32,
    args: [u32; 2],
    detail: u32,
    tid: u32,
}

/// Makes the calls of `calls` on `sk`, applies `update` to the storage the last get
/// returned (after every call, so a write of the list comes first), and sends the record.
#[inline(always)]
fn observe<const GET: bool, const DELETE: bool>(
    program: ProgramKind,
    config: &ProgramConfig,
    calls: &CallList,
    event: Event,
    sk: *mut c_void,
    socket: SocketIdent,
    update: impl FnOnce(*mut SocketStorage),
) {
    if event.tid != 0 && config.only_tid != 0 && event.tid != config.only_tid {
        return;
    }
    if config.only_port != 0
        && u32::from(socket.local_port) != config.only_port
        && u32::from(socket.remote_port) != config.only_port
    {
        return;
    }
    let mut record = HelperRecord {
        program: program.id(),
        event: event.event,
        args: event.args,
        detail: event.detail,
        tid: event.tid,
        cookie: socket.cookie,
        family: socket.family,
        local_port: socket.local_port,
        remote_port: socket.remote_port,
        map: config.map,
        ..HelperRecord::default()
    };
    // Written out rather than a loop: see MAX_CALLS.
    let [c0, c1, c2, c3] = &calls.calls;
    let [r0, r1, r2, r3] = &mut record.calls;
    let mut current = ptr::null_mut();
    run_call::<GET, DELETE>(c0, r0, config.map, sk, &mut current);
    run_call::<GET, DELETE>(c1, r1, config.map, sk, &mut current);
    run_call::<GET, DELETE>(c2, r2, config.map, sk, &mut current);
    run_call::<GET, DELETE>(c3, r3, config.map, sk, &mut current);
    if !current.is_null() {
        update(current);
    }
    if RECORDS.push(record, 0).is_err()
        && let Some(lost) = LOST_RECORDS.get_ptr_mut(0)
    {
        // SAFETY: an array map value, valid and 8-byte aligned for the program's run.
        unsafe { atomic_add(lost, 1) };
    }
}

/// One call of the list. `current` is the storage the most recent get returned (NULL
/// before any get, or when it returned NULL or had no socket). A call outside the
/// program's helper set is not made and leaves its slot empty; the loader never pairs
/// such a list with the program.
#[inline(always)]
fn run_call<const GET: bool, const DELETE: bool>(
    call: &CallSpec,
    result: &mut CallResult,
    map: u32,
    sk: *mut c_void,
    current: &mut *mut SocketStorage,
) {
    match call.op {
        call_op::GET if GET => {
            result.op = call_op::GET;
            if sk.is_null() {
                *current = ptr::null_mut();
                result.outcome = call_outcome::NO_SOCKET;
                return;
            }
            let mut init = SocketStorage {
                value: call.value,
                ..SocketStorage::default()
            };
            let init_ptr = if call.pass_init != 0 {
                ptr::from_mut(&mut init).cast()
            } else {
                ptr::null_mut()
            };
            let storage = storage_get(map, sk, init_ptr, call.flags);
            *current = storage;
            result.outcome = if storage.is_null() {
                call_outcome::NULL
            } else {
                // SAFETY: a non-NULL pointer from bpf_sk_storage_get points to this map's
                // value type.
                result.storage = unsafe { *storage };
                call_outcome::POINTER
            };
        }
        call_op::DELETE if DELETE => {
            result.op = call_op::DELETE;
            if sk.is_null() {
                result.outcome = call_outcome::NO_SOCKET;
            } else {
                result.outcome = call_outcome::RETURNED;
                result.ret = storage_delete(map, sk);
            }
        }
        call_op::WRITE => {
            result.op = call_op::WRITE;
            result.outcome = if current.is_null() {
                call_outcome::NO_STORAGE
            } else {
                // SAFETY: a non-NULL pointer from bpf_sk_storage_get in this run. After a
                // delete of this run it points to the unlinked storage, which the kernel
                // frees only after an RCU grace period, so the write is harmless and
                // invisible.
                unsafe { (**current).value = call.value };
                call_outcome::WRITTEN
            };
        }
        _ => {}
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

helper_set_programs!(sock_ops, SockOpsContext => u32, on_sock_ops, [sock_ops_get, sock_ops_delete, sock_ops_get_delete]);

#[inline(always)]
fn on_sock_ops<const GET: bool, const DELETE: bool>(ctx: SockOpsContext) -> u32 {
    let Some(config) = config(ProgramKind::SockOps) else {
        return 1;
    };
    let op = ctx.op();
    // Before the callback filter: a case may act only on the callbacks the flags enable.
    // The flags can be set where the socket is a full one; the established callbacks are
    // the first such for both ends.
    if config.sock_ops_cb_flags != 0
        && (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
    {
        // A failure only means later callbacks (e.g. STATE_CB) will not come; the records
        // then show their absence.
        let _ = ctx.set_cb_flags(config.sock_ops_cb_flags as i32);
    }
    if op >= 32 || config.sock_ops_mask & (1 << op) == 0 {
        return 1;
    }
    let Some(calls) = SOCK_OPS_CALLS.get(op) else {
        return 1;
    };
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
    let event = Event {
        event: op,
        args: [ctx.arg(0), ctx.arg(1)],
        ..Event::default()
    };
    observe::<GET, DELETE>(
        ProgramKind::SockOps,
        config,
        calls,
        event,
        sk.cast(),
        socket,
        count_event,
    );
    1
}

// ---- cgroup_skb: count packets and bytes per socket --------------------------------------

helper_set_programs!(cgroup_skb(ingress), SkBuffContext => i32, skb_ingress, [skb_ingress_get, skb_ingress_delete, skb_ingress_get_delete]);
helper_set_programs!(cgroup_skb(egress), SkBuffContext => i32, skb_egress, [skb_egress_get, skb_egress_delete, skb_egress_get_delete]);

#[inline(always)]
fn skb_ingress<const GET: bool, const DELETE: bool>(ctx: SkBuffContext) -> i32 {
    count_packet::<GET, DELETE>(&ctx, ProgramKind::SkbIngress);
    1
}

#[inline(always)]
fn skb_egress<const GET: bool, const DELETE: bool>(ctx: SkBuffContext) -> i32 {
    count_packet::<GET, DELETE>(&ctx, ProgramKind::SkbEgress);
    1
}

#[inline(always)]
fn count_packet<const GET: bool, const DELETE: bool>(ctx: &SkBuffContext, program: ProgramKind) {
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
    let event = Event {
        detail: len,
        ..Event::default()
    };
    observe::<GET, DELETE>(
        program,
        config,
        &config.calls,
        event,
        sk.cast(),
        socket,
        |storage| {
            count_event(storage);
            // SAFETY: as in count_event.
            unsafe { atomic_add(&raw mut (*storage).bytes, u64::from(len)) };
        },
    );
}

// ---- cgroup sockopt: a private option whose value lives in the socket's storage ----------

helper_set_programs!(cgroup_sockopt(setsockopt), SockoptContext => i32, setsockopt, [setsockopt_get, setsockopt_delete, setsockopt_get_delete]);
helper_set_programs!(cgroup_sockopt(getsockopt), SockoptContext => i32, getsockopt, [getsockopt_get, getsockopt_delete, getsockopt_get_delete]);

#[inline(always)]
fn setsockopt<const GET: bool, const DELETE: bool>(ctx: SockoptContext) -> i32 {
    let sockopt = ctx.sockopt;
    // SAFETY: reading and writing fields of the program's own context.
    unsafe {
        if (*sockopt).level != SOL_HARNESS {
            return 1;
        }
        let Some(config) = config(ProgramKind::Setsockopt) else {
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
        let event = Event {
            detail: optname as u32,
            ..Event::default()
        };
        observe::<GET, DELETE>(
            ProgramKind::Setsockopt,
            config,
            &config.calls,
            event,
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

#[inline(always)]
fn getsockopt<const GET: bool, const DELETE: bool>(ctx: SockoptContext) -> i32 {
    let sockopt = ctx.sockopt;
    // SAFETY: reading and writing fields of the program's own context.
    unsafe {
        if (*sockopt).level != SOL_HARNESS {
            return 1;
        }
        let Some(config) = config(ProgramKind::Getsockopt) else {
            return 1;
        };
        let optname = (*sockopt).optname;
        let optval = (*sockopt).__bindgen_anon_2.optval as usize;
        let optval_end = (*sockopt).__bindgen_anon_3.optval_end as usize;
        let sk = (*sockopt).__bindgen_anon_1.sk;
        let event = Event {
            detail: optname as u32,
            ..Event::default()
        };
        observe::<GET, DELETE>(
            ProgramKind::Getsockopt,
            config,
            &config.calls,
            event,
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

helper_set_programs!(cgroup_sock_addr(connect4), SockAddrContext => i32, connect4, [connect4_get, connect4_delete, connect4_get_delete]);
helper_set_programs!(cgroup_sock_addr(connect6), SockAddrContext => i32, connect6, [connect6_get, connect6_delete, connect6_get_delete]);

#[inline(always)]
fn connect4<const GET: bool, const DELETE: bool>(ctx: SockAddrContext) -> i32 {
    on_connect::<GET, DELETE>(&ctx, ProgramKind::Connect4);
    1
}

#[inline(always)]
fn connect6<const GET: bool, const DELETE: bool>(ctx: SockAddrContext) -> i32 {
    on_connect::<GET, DELETE>(&ctx, ProgramKind::Connect6);
    1
}

#[inline(always)]
fn on_connect<const GET: bool, const DELETE: bool>(ctx: &SockAddrContext, program: ProgramKind) {
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
    observe::<GET, DELETE>(
        program,
        config,
        &config.calls,
        Event::default(),
        sk.cast(),
        socket,
        count_event,
    );
}

// ---- cgroup_sock sock_create: get allowed, delete not (the delete programs exist to be
// rejected) ------------------------------------------------------------------------------

helper_set_programs!(cgroup_sock(sock_create), SockContext => i32, on_sock_create, [sock_create_get, sock_create_delete, sock_create_get_delete]);

#[inline(always)]
fn on_sock_create<const GET: bool, const DELETE: bool>(ctx: SockContext) -> i32 {
    let Some(config) = config(ProgramKind::SockCreate) else {
        return 1;
    };
    // In cgroup_sock programs the context itself is the socket argument of the helpers.
    // At sock_create the socket has no ports yet (and the context may not read them).
    let sk = ctx.sock;
    let socket = SocketIdent {
        // SAFETY: reading a field of the program's own context.
        family: unsafe { (*sk).family },
        ..SocketIdent::default()
    };
    observe::<GET, DELETE>(
        ProgramKind::SockCreate,
        config,
        &config.calls,
        Event::default(),
        sk.cast(),
        socket,
        count_event,
    );
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
fn on_kernel_sock<const GET: bool, const DELETE: bool>(sk: *mut c_void, program: ProgramKind) {
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
    let event = Event {
        tid: current_tid(),
        ..Event::default()
    };
    observe::<GET, DELETE>(
        program,
        config,
        &config.calls,
        event,
        sk,
        socket,
        count_event,
    );
}

helper_set_programs!(fentry(function = "tcp_close"), FEntryContext => i32, fentry_tcp_close, [fentry_tcp_close_get, fentry_tcp_close_delete, fentry_tcp_close_get_delete]);

#[inline(always)]
fn fentry_tcp_close<const GET: bool, const DELETE: bool>(ctx: FEntryContext) -> i32 {
    on_kernel_sock::<GET, DELETE>(ctx.arg(0), ProgramKind::FentryTcpClose);
    0
}

// After `tcp_connect` (the SYN is queued; ports are set). Not fexit on tcp_close: the
// socket may already be freed when tcp_close returns.
helper_set_programs!(fexit(function = "tcp_connect"), FExitContext => i32, fexit_tcp_connect, [fexit_tcp_connect_get, fexit_tcp_connect_delete, fexit_tcp_connect_get_delete]);

#[inline(always)]
fn fexit_tcp_connect<const GET: bool, const DELETE: bool>(ctx: FExitContext) -> i32 {
    on_kernel_sock::<GET, DELETE>(ctx.arg(0), ProgramKind::FexitTcpConnect);
    0
}

helper_set_programs!(lsm(hook = "sock_graft"), LsmContext => i32, lsm_sock_graft, [lsm_sock_graft_get, lsm_sock_graft_delete, lsm_sock_graft_get_delete]);

#[inline(always)]
fn lsm_sock_graft<const GET: bool, const DELETE: bool>(ctx: LsmContext) -> i32 {
    on_kernel_sock::<GET, DELETE>(ctx.arg(0), ProgramKind::LsmSockGraft);
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
