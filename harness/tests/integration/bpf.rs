//! The BPF side end to end on the running kernel: each program type is loaded from the
//! embedded object, attached to a per-test cgroup (or globally, filtered to the test's
//! thread), driven by real TCP traffic over loopback in a fresh network namespace, and the
//! helper results it reports are checked together with what userspace sees in the same
//! storage maps. Needs root; program types the kernel cannot run are skipped with the reason.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream},
    os::fd::{AsRawFd, OwnedFd},
    thread,
    time::Duration,
};

use crate::requirements;

use aya::maps::MapError;
use harness::{
    bpf::{
        BpfError, CallOutcome, CaseCgroup, DeleteResult, GetResult, HARNESS_OPT_STORAGE_VALUE,
        HostSupport, Observation, SOL_HARNESS, SkStorageObject, SocketKey, SocketStorage,
        WriteResult,
    },
    catalogue::{
        AttachPoint, Call, CallbackCalls, F_CREATE, HelperSet, ProgramCalls, ProgramKind,
        ProgramParams, SockOpsOp, StorageMap,
    },
};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, connect, socket,
};
use requirements::Requirement;

/// An invalid `bpf_sk_storage_get` flag (only F_CREATE is defined).
const INVALID_GET_FLAGS: u64 = 2;
/// Delayed ACKs fire up to 200 ms after the data they acknowledge.
const TRAFFIC_SETTLE: Duration = Duration::from_millis(300);

// ---- fixtures ------------------------------------------------------------------------------

/// Runs `test` on a thread of its own in a new network namespace with `lo` up, so ports and
/// traffic cannot meet other tests'. (The executor's `exec::netns` does the same for cases
/// but is private to it.)
fn in_fresh_netns<T: Send>(test: impl FnOnce() -> T + Send) -> T {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("unshare(CLONE_NEWNET)");
                loopback_up();
                test()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn loopback_up() {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket for SIOCSIFFLAGS");
    // SAFETY: ifreq is plain old data; the ioctls read and write the one we own.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        assert_eq!(
            libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req),
            0
        );
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req), 0);
    }
}

fn gettid() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}

/// What a machine that cannot run `kind` lacks: cgroup programs are BPF itself, tracing and
/// LSM programs what a machine may refuse and still be a fine host.
fn requirement_of(kind: ProgramKind) -> Requirement {
    match kind.attach_point() {
        AttachPoint::Cgroup(_) => Requirement::Bpf,
        AttachPoint::Fentry(_) | AttachPoint::Fexit(_) | AttachPoint::Lsm(_) => {
            Requirement::Tracing
        }
    }
}

#[test]
fn cgroup_programs_need_bpf_and_the_others_tracing() {
    assert_eq!(requirement_of(ProgramKind::SockOps), Requirement::Bpf);
    assert_eq!(requirement_of(ProgramKind::SockCreate), Requirement::Bpf);
    for kind in [
        ProgramKind::FentryTcpClose,
        ProgramKind::FexitTcpConnect,
        ProgramKind::LsmSockGraft,
    ] {
        assert_eq!(requirement_of(kind), Requirement::Tracing, "{kind}");
    }
}

/// One test's eBPF object and cgroup. The object is dropped first (links detached), then
/// the cgroup is removed and its removal checked.
struct Case {
    object: SkStorageObject,
    cgroup: CaseCgroup,
}

impl Case {
    /// Loads the object and creates the cgroup; `None`, after printing why, when this kernel
    /// cannot run one of `programs`.
    fn new(label: &str, programs: &[ProgramKind]) -> Option<Case> {
        if !nix::unistd::geteuid().is_root() {
            requirements::missing(Requirement::Root, &format!("{label}: loading BPF programs"));
            return None;
        }
        let host = HostSupport::probe();
        for kind in programs {
            if let Err(reason) = host.runnable(*kind) {
                requirements::missing(requirement_of(*kind), &format!("{label}: {kind}: {reason}"));
                return None;
            }
        }
        Some(Case {
            object: SkStorageObject::load(true).expect("load the eBPF object"),
            cgroup: CaseCgroup::create(label).expect("create the case cgroup"),
        })
    }

    /// [`Case::new`] with the programs loaded (parameters first) and attached.
    fn start(label: &str, programs: &[(ProgramKind, ProgramParams)]) -> Option<Case> {
        let kinds: Vec<_> = programs.iter().map(|(kind, _)| *kind).collect();
        let mut case = Case::new(label, &kinds)?;
        for (kind, params) in programs {
            case.object
                .set_params(*kind, params)
                .expect("set parameters");
            let helpers = params.calls.helper_set().expect("helper set");
            case.object
                .load_program(*kind, helpers)
                .unwrap_or_else(|e| panic!("load {kind}: {e}"));
            case.object
                .attach(*kind, helpers, &case.cgroup)
                .expect("attach");
        }
        Some(case)
    }

    fn observations(&mut self) -> Vec<Observation> {
        self.object.take_observations().expect("read observations")
    }

    fn lookup(&self, map: StorageMap, socket: &impl AsRawFd) -> Option<SocketStorage> {
        match self
            .object
            .storage(map)
            .expect("storage map")
            .get(socket, 0)
        {
            Ok(storage) => Some(storage),
            Err(MapError::KeyNotFound) => None,
            Err(e) => panic!("lookup by socket fd: {e}"),
        }
    }

    fn insert(&mut self, map: StorageMap, socket: &impl AsRawFd, value: u64) {
        let storage = SocketStorage {
            value,
            ..SocketStorage::default()
        };
        self.object
            .storage_mut(map)
            .expect("storage map")
            .insert(socket, storage, 0)
            .expect("update by socket fd");
    }

    fn finish(self) {
        let Case { object, cgroup } = self;
        drop(object);
        let path = cgroup.path().to_owned();
        cgroup.remove().expect("remove the case cgroup");
        assert!(!path.exists(), "{} was not removed", path.display());
    }
}

/// A listener on a loopback address of `family`, created inside the case cgroup so the
/// sockets it accepts belong to it too.
fn listener(case: &Case, ip: std::net::IpAddr) -> TcpListener {
    let _inside = case.cgroup.enter().expect("enter the case cgroup");
    TcpListener::bind(SocketAddr::new(ip, 0)).expect("bind a loopback listener")
}

/// A TCP socket created inside the case cgroup, not yet connected.
fn stream_socket(case: &Case, family: AddressFamily) -> OwnedFd {
    let _inside = case.cgroup.enter().expect("enter the case cgroup");
    socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("socket")
}

fn connect_to(socket: OwnedFd, to: SocketAddr) -> TcpStream {
    let result = match to {
        SocketAddr::V4(v4) => connect(socket.as_raw_fd(), &SockaddrIn::from(v4)),
        SocketAddr::V6(v6) => connect(socket.as_raw_fd(), &SockaddrIn6::from(v6)),
    };
    result.expect("connect");
    TcpStream::from(socket)
}

/// client (created in the cgroup) → listener; returns (client, accepted server socket).
fn connected_pair(case: &Case, listener: &TcpListener) -> (TcpStream, TcpStream) {
    let address = listener.local_addr().expect("listener address");
    let family = if address.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let client = connect_to(stream_socket(case, family), address);
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

fn about<'a>(
    observations: &'a [Observation],
    socket: &impl std::os::fd::AsFd,
) -> Vec<&'a Observation> {
    let key = SocketKey::of(socket).expect("socket key");
    observations.iter().filter(|o| o.is_about(&key)).collect()
}

fn only<'a>(observations: &[&'a Observation], what: &str) -> &'a Observation {
    assert_eq!(
        observations.len(),
        1,
        "exactly one {what}: {observations:#?}"
    );
    observations[0]
}

fn storage(value: u64, events: u64) -> SocketStorage {
    SocketStorage {
        value,
        events,
        bytes: 0,
    }
}

/// A get's outcome: a pointer to `storage`.
fn got(storage: SocketStorage) -> CallOutcome {
    CallOutcome::Get(GetResult::Pointer { storage })
}

const GOT_NULL: CallOutcome = CallOutcome::Get(GetResult::Null);

fn deleted(value: i32) -> CallOutcome {
    CallOutcome::Delete(DeleteResult::Returned { value })
}

/// sock_ops making `calls` on both established callbacks.
fn sock_ops_params(calls: &[Call]) -> ProgramParams {
    ProgramParams::new(
        StorageMap::NoPrealloc,
        ProgramCalls::on_callbacks(
            &[
                SockOpsOp::ACTIVE_ESTABLISHED_CB,
                SockOpsOp::PASSIVE_ESTABLISHED_CB,
            ],
            calls,
        ),
    )
}

/// Any other program making `calls` on every run.
fn each_run(calls: &[Call]) -> ProgramParams {
    ProgramParams::new(
        StorageMap::NoPrealloc,
        ProgramCalls::EachRun(calls.to_vec()),
    )
}

fn get(flags: u64, init: Option<u64>) -> Call {
    Call::Get { flags, init }
}

// ---- sock_ops: the specification's example -----------------------------------------------

#[test]
fn sock_ops_creates_storage_with_the_init_value_on_both_established_callbacks() {
    in_fresh_netns(|| {
        let params = sock_ops_params(&[get(F_CREATE, Some(5))]);
        let Some(mut case) = Case::start("sock-ops-init", &[(ProgramKind::SockOps, params)]) else {
            return;
        };
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());
        let (client, server) = connected_pair(&case, &listener);
        let observations = case.observations();

        let active = only(&about(&observations, &client), "client callback");
        assert_eq!(active.callback, Some(SockOpsOp::ACTIVE_ESTABLISHED_CB));
        assert_eq!(
            active.calls,
            [got(storage(5, 0))],
            "created from the init value"
        );
        let passive = only(&about(&observations, &server), "server callback");
        assert_eq!(passive.callback, Some(SockOpsOp::PASSIVE_ESTABLISHED_CB));
        assert_eq!(passive.calls, [got(storage(5, 0))]);

        // Userspace sees what BPF wrote (and counted after the get).
        assert_eq!(
            case.lookup(StorageMap::NoPrealloc, &client),
            Some(storage(5, 1))
        );
        assert_eq!(
            case.lookup(StorageMap::NoPrealloc, &server),
            Some(storage(5, 1))
        );
        assert_eq!(case.lookup(StorageMap::NoPrealloc, &listener), None);

        // The storage outlives the detached program; new sockets get none.
        case.object.detach(ProgramKind::SockOps).expect("detach");
        assert_eq!(
            case.lookup(StorageMap::NoPrealloc, &client),
            Some(storage(5, 1))
        );
        let (second, _second_server) = connected_pair(&case, &listener);
        assert!(
            case.observations().is_empty(),
            "a detached program reports nothing"
        );
        assert_eq!(case.lookup(StorageMap::NoPrealloc, &second), None);
        case.finish();
    });
}

#[test]
fn sock_ops_zero_initialises_without_a_value_and_returns_existing_storage_unchanged() {
    in_fresh_netns(|| {
        let params = sock_ops_params(&[get(F_CREATE, Some(9))]);
        let Some(mut case) = Case::start("sock-ops-existing", &[(ProgramKind::SockOps, params)])
        else {
            return;
        };
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());

        // Storage written from userspace before connect(): BPF gets it, init ignored.
        let client_socket = stream_socket(&case, AddressFamily::Inet);
        case.insert(StorageMap::NoPrealloc, &client_socket, 7);
        let client = connect_to(client_socket, listener.local_addr().expect("address"));
        let (server, _) = listener.accept().expect("accept");
        let observations = case.observations();
        let active = only(&about(&observations, &client), "client callback");
        assert_eq!(
            active.calls,
            [got(storage(7, 0))],
            "existing storage, init ignored"
        );
        let passive = only(&about(&observations, &server), "server callback");
        assert_eq!(passive.calls, [got(storage(9, 0))], "created from init");
        assert_eq!(
            case.lookup(StorageMap::NoPrealloc, &client),
            Some(storage(7, 1))
        );

        // Without an init value a created storage is zeroed.
        let params = sock_ops_params(&[get(F_CREATE, None)]);
        case.object
            .set_params(ProgramKind::SockOps, &params)
            .expect("set parameters");
        let (client, server) = connected_pair(&case, &listener);
        let observations = case.observations();
        for socket in [&client, &server] {
            let observation = only(&about(&observations, socket), "callback");
            assert_eq!(observation.calls, [got(storage(0, 0))], "zero-initialised");
        }
        case.finish();
    });
}

#[test]
fn sock_ops_get_returns_null_for_invalid_flags_and_without_f_create() {
    in_fresh_netns(|| {
        let params = sock_ops_params(&[get(INVALID_GET_FLAGS, Some(1))]);
        let Some(mut case) = Case::start("sock-ops-null", &[(ProgramKind::SockOps, params)]) else {
            return;
        };
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());
        let (client, server) = connected_pair(&case, &listener);
        let observations = case.observations();
        for socket in [&client, &server] {
            let observation = only(&about(&observations, socket), "callback");
            assert_eq!(observation.calls, [GOT_NULL], "invalid flags");
            assert_eq!(case.lookup(StorageMap::NoPrealloc, socket), None);
        }

        // flags 0: NULL on a socket without storage, the storage on one that has it.
        case.object
            .set_params(ProgramKind::SockOps, &sock_ops_params(&[get(0, None)]))
            .expect("set parameters");
        let client_socket = stream_socket(&case, AddressFamily::Inet);
        case.insert(StorageMap::NoPrealloc, &client_socket, 3);
        let client = connect_to(client_socket, listener.local_addr().expect("address"));
        let (server, _) = listener.accept().expect("accept");
        let observations = case.observations();
        let active = only(&about(&observations, &client), "client callback");
        assert_eq!(active.calls, [got(storage(3, 0))]);
        let passive = only(&about(&observations, &server), "server callback");
        assert_eq!(passive.calls, [GOT_NULL], "no F_CREATE, no storage");
        assert_eq!(case.lookup(StorageMap::NoPrealloc, &server), None);
        case.finish();
    });
}

#[test]
fn sock_ops_delete_returns_zero_then_enoent_and_userspace_sees_the_deletion() {
    in_fresh_netns(|| {
        let params = sock_ops_params(&[Call::Delete]);
        let Some(mut case) = Case::start("sock-ops-delete", &[(ProgramKind::SockOps, params)])
        else {
            return;
        };
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());
        let client_socket = stream_socket(&case, AddressFamily::Inet);
        case.insert(StorageMap::NoPrealloc, &client_socket, 1);
        let client = connect_to(client_socket, listener.local_addr().expect("address"));
        let (server, _) = listener.accept().expect("accept");
        let observations = case.observations();

        let active = only(&about(&observations, &client), "client callback");
        assert_eq!(active.calls, [deleted(0)]);
        assert_eq!(
            case.lookup(StorageMap::NoPrealloc, &client),
            None,
            "deleted by BPF"
        );
        let passive = only(&about(&observations, &server), "server callback");
        assert_eq!(passive.calls, [deleted(-libc::ENOENT)]);
        case.finish();
    });
}

#[test]
fn sock_ops_runs_its_call_list_in_order_and_a_later_get_sees_the_written_value() {
    in_fresh_netns(|| {
        let params = ProgramParams::new(
            StorageMap::NoPrealloc,
            ProgramCalls::on_callbacks(
                &[SockOpsOp::ACTIVE_ESTABLISHED_CB],
                &[get(F_CREATE, None), Call::Write { value: 7 }, get(0, None)],
            ),
        );
        // [get, write] needs no delete helper: the get-only program runs it.
        assert_eq!(params.calls.helper_set().ok(), Some(HelperSet::Get));
        let Some(mut case) = Case::start("sock-ops-write", &[(ProgramKind::SockOps, params)])
        else {
            return;
        };
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());
        let (client, _server) = connected_pair(&case, &listener);
        let observations = case.observations();
        let active = only(&about(&observations, &client), "client callback");
        assert_eq!(
            active.calls,
            [
                got(storage(0, 0)),
                CallOutcome::Write(WriteResult::Written),
                got(storage(7, 0)),
            ],
            "created zeroed, written, then read back"
        );
        // The run counts its event once, after its calls.
        assert_eq!(
            case.lookup(StorageMap::NoPrealloc, &client),
            Some(storage(7, 1))
        );

        // A write after a NULL get is not done.
        let params = ProgramParams::new(
            StorageMap::NoPrealloc,
            ProgramCalls::on_callbacks(
                &[SockOpsOp::ACTIVE_ESTABLISHED_CB],
                &[get(0, None), Call::Write { value: 8 }],
            ),
        );
        case.object
            .set_params(ProgramKind::SockOps, &params)
            .expect("set parameters");
        let (client, _server) = connected_pair(&case, &listener);
        let observations = case.observations();
        let active = only(&about(&observations, &client), "client callback");
        assert_eq!(
            active.calls,
            [GOT_NULL, CallOutcome::Write(WriteResult::NoStorage)]
        );
        assert_eq!(case.lookup(StorageMap::NoPrealloc, &client), None);
        case.finish();
    });
}

/// `TCP_ESTABLISHED` and `TCP_FIN_WAIT1` (include/net/tcp_states.h).
const TCP_ESTABLISHED: u32 = 1;
const TCP_FIN_WAIT1: u32 = 4;

#[test]
fn the_state_cb_flag_makes_state_cb_fire_with_the_old_and_new_state() {
    in_fresh_netns(|| {
        // The program acts on STATE_CB only; it sets the flag on the established
        // callbacks all the same.
        let params = ProgramParams {
            sock_ops_cb_flags: SockOpsOp::STATE_CB_FLAG,
            ..ProgramParams::new(
                StorageMap::NoPrealloc,
                ProgramCalls::PerCallback(vec![CallbackCalls {
                    callback: SockOpsOp::STATE_CB,
                    calls: vec![get(F_CREATE, Some(2))],
                }]),
            )
        };
        let Some(mut case) = Case::start("sock-ops-state-cb", &[(ProgramKind::SockOps, params)])
        else {
            return;
        };
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());
        let (client, _server) = connected_pair(&case, &listener);
        let key = SocketKey::of(&client).expect("socket key");
        assert!(
            case.observations().iter().all(|o| !o.is_about(&key)),
            "nothing before the state changes"
        );
        // close() moves the client from ESTABLISHED to FIN_WAIT1 in the calling task.
        drop(client);
        let observations = case.observations();
        let first = observations
            .iter()
            .find(|o| o.is_about(&key))
            .unwrap_or_else(|| panic!("a STATE_CB record about the client: {observations:#?}"));
        assert_eq!(first.callback, Some(SockOpsOp::STATE_CB));
        assert_eq!(first.callback_args, Some([TCP_ESTABLISHED, TCP_FIN_WAIT1]));
        assert_eq!(first.calls, [got(storage(2, 0))]);
        case.finish();
    });
}

#[test]
fn clone_copies_a_listeners_storage_to_accepted_sockets_and_no_prealloc_does_not() {
    in_fresh_netns(|| {
        let params = ProgramParams::new(
            StorageMap::Clone,
            ProgramCalls::on_callbacks(&[SockOpsOp::PASSIVE_ESTABLISHED_CB], &[get(0, None)]),
        );
        let Some(mut case) = Case::start("clone", &[(ProgramKind::SockOps, params.clone())]) else {
            return;
        };
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());
        case.insert(StorageMap::Clone, &listener, 11);
        case.insert(StorageMap::NoPrealloc, &listener, 12);
        let (_client, server) = connected_pair(&case, &listener);
        let observations = case.observations();
        let passive = only(&about(&observations, &server), "server callback");
        assert_eq!(
            passive.calls,
            [got(storage(11, 0))],
            "cloned from the listener"
        );
        assert_eq!(
            case.lookup(StorageMap::Clone, &server),
            Some(storage(11, 1))
        );
        assert_eq!(case.lookup(StorageMap::NoPrealloc, &server), None);
        // The listener keeps its own copy.
        assert_eq!(
            case.lookup(StorageMap::Clone, &listener),
            Some(storage(11, 0))
        );

        let params = ProgramParams {
            map: StorageMap::NoPrealloc,
            ..params
        };
        case.object
            .set_params(ProgramKind::SockOps, &params)
            .expect("set parameters");
        let (_client, server) = connected_pair(&case, &listener);
        let observations = case.observations();
        let passive = only(&about(&observations, &server), "server callback");
        assert_eq!(passive.calls, [GOT_NULL], "NO_PREALLOC alone is not cloned");
        case.finish();
    });
}

// ---- cgroup_skb: per-socket packet and byte counts ----------------------------------------

#[test]
fn cgroup_skb_counts_each_sockets_packets_and_bytes_in_its_storage() {
    in_fresh_netns(|| {
        let params = each_run(&[get(F_CREATE, None)]);
        let Some(mut case) = Case::start(
            "cgroup-skb",
            &[
                (ProgramKind::SkbIngress, params.clone()),
                (ProgramKind::SkbEgress, params),
            ],
        ) else {
            return;
        };
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());
        let (mut client, mut server) = connected_pair(&case, &listener);
        let request = [1u8; 1000];
        client.write_all(&request).expect("send");
        let mut received = [0u8; 1000];
        server.read_exact(&mut received).expect("receive");
        server.write_all(&received[..500]).expect("reply");
        client
            .read_exact(&mut received[..500])
            .expect("receive reply");
        thread::sleep(TRAFFIC_SETTLE);
        let observations = case.observations();

        for (socket, sent, name) in [(&client, 1000, "client"), (&server, 500, "server")] {
            let runs = about(&observations, socket);
            let stored = case
                .lookup(StorageMap::NoPrealloc, socket)
                .unwrap_or_else(|| panic!("{name} has storage"));
            // Every run on this socket got its storage and counted into it.
            let counted: Vec<_> = runs.iter().filter_map(|o| o.storage()).collect();
            assert_eq!(counted.len(), runs.len(), "{name}: {runs:#?}");
            assert_eq!(stored.events, runs.len() as u64, "{name}");
            let bytes: u64 = runs.iter().map(|o| u64::from(o.detail)).sum();
            assert_eq!(stored.bytes, bytes, "{name}");
            assert!(
                runs.iter()
                    .any(|o| o.program == ProgramKind::SkbEgress && o.detail as usize > sent),
                "{name} sent its {sent} bytes in one packet: {runs:#?}"
            );
        }
        case.finish();
    });
}

// ---- cgroup sockopt: a value kept in the socket's storage --------------------------------

fn set_harness_option(socket: &impl AsRawFd, value: u64) -> std::io::Result<()> {
    // SAFETY: passes a pointer to a u64 and its size.
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            SOL_HARNESS,
            HARNESS_OPT_STORAGE_VALUE,
            (&raw const value).cast(),
            size_of::<u64>() as libc::socklen_t,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn get_harness_option(socket: &impl AsRawFd) -> std::io::Result<u64> {
    let mut value = 0u64;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`.
    let ret = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            SOL_HARNESS,
            HARNESS_OPT_STORAGE_VALUE,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if ret == 0 {
        Ok(value)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn sockopt_programs_store_a_value_through_setsockopt_and_return_it_through_getsockopt() {
    in_fresh_netns(|| {
        let set = each_run(&[get(F_CREATE, None)]);
        let get_existing = each_run(&[get(0, None)]);
        let Some(mut case) = Case::start(
            "sockopt",
            &[
                (ProgramKind::Setsockopt, set),
                (ProgramKind::Getsockopt, get_existing),
            ],
        ) else {
            return;
        };
        let socket = stream_socket(&case, AddressFamily::Inet);
        set_harness_option(&socket, 42).expect("setsockopt(SOL_HARNESS)");
        assert_eq!(get_harness_option(&socket).expect("getsockopt"), 42);
        assert_eq!(
            case.lookup(StorageMap::NoPrealloc, &socket),
            Some(storage(42, 2))
        );

        let observations = case.observations();
        let on = |program| {
            let runs: Vec<_> = about(&observations, &socket)
                .into_iter()
                .filter(|o| o.program == program)
                .collect();
            only(&runs, program.name()).clone()
        };
        let set_run = on(ProgramKind::Setsockopt);
        assert_eq!(
            set_run.calls,
            [got(storage(0, 0))],
            "created zeroed, then set"
        );
        assert_eq!(set_run.detail, HARNESS_OPT_STORAGE_VALUE as u32);
        assert_eq!(on(ProgramKind::Getsockopt).calls, [got(storage(42, 1))]);

        // A socket without storage: the get returns NULL and the kernel's own answer to an
        // unknown level (EOPNOTSUPP for TCP on recent kernels) stays, as on a socket
        // outside the cgroup.
        let outside = nix::sys::socket::socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket outside the cgroup");
        let kernel_answer =
            get_harness_option(&outside).expect_err("the kernel knows no SOL_HARNESS");
        let bare = stream_socket(&case, AddressFamily::Inet);
        let error = get_harness_option(&bare).expect_err("no storage, no value");
        assert_eq!(error.raw_os_error(), kernel_answer.raw_os_error());
        let observations = case.observations();
        let run = only(&about(&observations, &bare), "getsockopt run");
        assert_eq!(run.calls, [GOT_NULL]);
        case.finish();
    });
}

#[test]
fn sockopt_delete_returns_zero_then_enoent() {
    in_fresh_netns(|| {
        let delete = each_run(&[Call::Delete]);
        let Some(mut case) = Case::start("sockopt-delete", &[(ProgramKind::Setsockopt, delete)])
        else {
            return;
        };
        let socket = stream_socket(&case, AddressFamily::Inet);
        case.insert(StorageMap::NoPrealloc, &socket, 5);
        set_harness_option(&socket, 1).expect("first setsockopt");
        set_harness_option(&socket, 2).expect("second setsockopt");
        let observations = case.observations();
        let deletes: Vec<_> = about(&observations, &socket)
            .iter()
            .map(|o| o.calls.clone())
            .collect();
        assert_eq!(deletes, [[deleted(0)], [deleted(-libc::ENOENT)]]);
        assert_eq!(case.lookup(StorageMap::NoPrealloc, &socket), None);
        case.finish();
    });
}

// ---- cgroup sock_addr: connect4 / connect6 -------------------------------------------------

#[test]
fn connect4_and_connect6_create_storage_on_the_connecting_socket() {
    in_fresh_netns(|| {
        let params = each_run(&[get(F_CREATE, Some(21))]);
        let Some(mut case) = Case::start(
            "connect",
            &[
                (ProgramKind::Connect4, params.clone()),
                (ProgramKind::Connect6, params),
            ],
        ) else {
            return;
        };
        for (ip, program) in [
            (
                std::net::IpAddr::from(Ipv4Addr::LOCALHOST),
                ProgramKind::Connect4,
            ),
            (Ipv6Addr::LOCALHOST.into(), ProgramKind::Connect6),
        ] {
            let listener = listener(&case, ip);
            let port = listener.local_addr().expect("address").port();
            let (client, _server) = connected_pair(&case, &listener);
            let observations = case.observations();
            let run = only(&about(&observations, &client), "connect run");
            assert_eq!(run.program, program);
            assert_eq!(run.socket.remote_port, port, "the port being connected to");
            assert_eq!(run.calls, [got(storage(21, 0))]);
            assert_eq!(
                case.lookup(StorageMap::NoPrealloc, &client),
                Some(storage(21, 1))
            );
        }
        case.finish();
    });
}

// ---- cgroup_sock: get allowed, delete rejected by the verifier ---------------------------

#[test]
fn sock_create_may_create_storage_at_socket_creation() {
    in_fresh_netns(|| {
        let params = each_run(&[get(F_CREATE, Some(3))]);
        let Some(mut case) = Case::start("sock-create", &[(ProgramKind::SockCreate, params)])
        else {
            return;
        };
        let socket = stream_socket(&case, AddressFamily::Inet);
        // The run happened inside socket(): the storage exists before any bind or connect.
        assert_eq!(
            case.lookup(StorageMap::NoPrealloc, &socket),
            Some(storage(3, 1))
        );
        let observations = case.observations();
        assert!(
            observations
                .iter()
                .any(|o| o.program == ProgramKind::SockCreate && o.calls == [got(storage(3, 0))]),
            "{observations:#?}"
        );
        case.finish();
    });
}

#[test]
fn a_sock_create_program_calling_delete_is_rejected_with_the_verifier_log() {
    if !nix::unistd::geteuid().is_root() {
        requirements::missing(Requirement::Root, "loading BPF programs");
        return;
    }
    let mut object = SkStorageObject::load(true).expect("load the eBPF object");
    for helpers in [HelperSet::Delete, HelperSet::GetDelete] {
        let error = object
            .load_program(ProgramKind::SockCreate, helpers)
            .expect_err("cgroup_sock programs may not call bpf_sk_storage_delete");
        eprintln!("{error}");
        let BpfError::Rejected {
            program,
            helpers: rejected,
            verifier_log,
            ..
        } = &error
        else {
            panic!("expected a verifier rejection, got {error:?}");
        };
        assert_eq!((*program, *rejected), (ProgramKind::SockCreate, helpers));
        assert!(
            verifier_log.contains("bpf_sk_storage_delete#108"),
            "{verifier_log}"
        );
    }
    // The rejections leave the hook's get-only program loadable: it has no delete call.
    object
        .load_program(ProgramKind::SockCreate, HelperSet::Get)
        .expect("the get-only program loads");
}

// ---- tracing and LSM: `sk` is a kernel struct sock * -------------------------------------

/// Loads a tracing or LSM program. The one refusal accepted is the machine's, not the
/// verifier's: EPERM with an empty verifier log (host kernels that forbid tracing and LSM
/// programs outright, as this project's development hosts do), which is the `tracing`
/// requirement missing; the test then has nothing to check. Any verifier rejection fails the
/// test: on every kernel that runs these tests the programs are known to load.
fn load_or_report_rejection(case: &mut Case, program: ProgramKind, params: &ProgramParams) -> bool {
    case.object
        .set_params(program, params)
        .expect("set parameters");
    let helpers = params.calls.helper_set().expect("helper set");
    match case.object.load_program(program, helpers) {
        Ok(()) => {
            case.object
                .attach(program, helpers, &case.cgroup)
                .expect("attach");
            true
        }
        Err(BpfError::Rejected {
            ref errno,
            ref verifier_log,
            ..
        }) if errno == "EPERM" && verifier_log.trim().is_empty() => {
            requirements::missing(
                requirement_of(program),
                &format!(
                    "{program}: this machine refuses tracing and LSM programs (EPERM, no verifier log)"
                ),
            );
            false
        }
        Err(other) => {
            panic!("{program}: expected it to load (or the machine to refuse it), got {other}")
        }
    }
}

#[test]
fn fentry_on_tcp_close_sees_the_storage_and_fexit_on_tcp_connect_creates_it() {
    in_fresh_netns(|| {
        let programs = [ProgramKind::FexitTcpConnect, ProgramKind::FentryTcpClose];
        let Some(mut case) = Case::new("tracing", &programs) else {
            return;
        };
        let tid = gettid();
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());
        let port = listener.local_addr().expect("address").port();
        let filtered = |get_call| ProgramParams {
            only_thread: Some(tid),
            only_port: Some(port),
            ..each_run(&[get_call])
        };
        let connect_loaded = load_or_report_rejection(
            &mut case,
            ProgramKind::FexitTcpConnect,
            &filtered(get(F_CREATE, Some(8))),
        );
        let close_loaded = load_or_report_rejection(
            &mut case,
            ProgramKind::FentryTcpClose,
            &filtered(get(0, None)),
        );
        let (client, _server) = connected_pair(&case, &listener);
        let key = SocketKey::of(&client).expect("socket key");
        if connect_loaded {
            let observations = case.observations();
            let run = only(&about(&observations, &client), "fexit run");
            assert_eq!(run.thread, Some(tid));
            assert_eq!(run.calls, [got(storage(8, 0))]);
            assert_eq!(
                case.lookup(StorageMap::NoPrealloc, &client),
                Some(storage(8, 1))
            );
        }
        drop(client);
        if close_loaded {
            let observations = case.observations();
            let runs: Vec<_> = observations.iter().filter(|o| o.is_about(&key)).collect();
            let run = only(&runs, "fentry run");
            let expected = if connect_loaded {
                got(storage(8, 1))
            } else {
                GOT_NULL
            };
            assert_eq!(
                run.calls,
                [expected],
                "the storage is still there when close starts"
            );
        }
        case.finish();
    });
}

#[test]
fn lsm_sock_graft_sees_the_storage_cloned_to_the_accepted_socket() {
    in_fresh_netns(|| {
        let Some(mut case) = Case::new("lsm", &[ProgramKind::LsmSockGraft]) else {
            return;
        };
        let listener = listener(&case, Ipv4Addr::LOCALHOST.into());
        case.insert(StorageMap::Clone, &listener, 13);
        let params = ProgramParams {
            map: StorageMap::Clone,
            only_thread: Some(gettid()),
            only_port: Some(listener.local_addr().expect("address").port()),
            ..each_run(&[get(0, None)])
        };
        if load_or_report_rejection(&mut case, ProgramKind::LsmSockGraft, &params) {
            let (_client, server) = connected_pair(&case, &listener);
            let observations = case.observations();
            let run = only(&about(&observations, &server), "sock_graft run");
            assert_eq!(run.calls, [got(storage(13, 0))]);
        }
        case.finish();
    });
}
