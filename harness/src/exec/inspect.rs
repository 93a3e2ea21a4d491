//! Looking at storages other than by key: a sock_diag dump of one socket with
//! `INET_DIAG_REQ_SK_BPF_STORAGES`, and reading a BPF iterator over a map.
//!
//! The netlink socket is nix's; the sock_diag messages are built and parsed by hand below.
//! No crate we could use writes the request attribute `INET_DIAG_REQ_SK_BPF_STORAGES` or
//! reads the answer's `INET_DIAG_SK_BPF_STORAGES`, and the layouts are few and fixed by the
//! kernel's uapi headers (include/uapi/linux/inet_diag.h, sock_diag.h, netlink.h).

use std::{
    io::Read,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd},
};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType as NixSockType, recv,
    sendto, socket,
};

use super::{sys, world::World};
use crate::{
    bpf::SocketKey,
    case::{Family, SockType, Type, steps::InspectAction},
    results::Actual,
};

pub(super) fn perform(world: &mut World<'_>, action: &InspectAction) -> Result<Actual, Actual> {
    Ok(match action {
        InspectAction::Diag {
            socket,
            family,
            kind,
            maps,
        } => {
            let fd = world.fds.get(socket).ok_or_else(|| Actual::NotRun {
                reason: format!("socket {socket} was not created"),
            })?;
            let mut asked = Vec::new();
            for name in maps {
                asked.push(world.map_fd(name)?);
            }
            // Every map of the case that came to exist can be named in the answer.
            let known: Vec<DiagMap<'_>> = world
                .case
                .maps
                .iter()
                .filter_map(|(name, spec)| {
                    Some(DiagMap {
                        name,
                        id: *world.map_ids.get(name)?,
                        value: &spec.value,
                    })
                })
                .collect();
            diag(fd.as_fd(), (*family, *kind), &asked, &known)
        }
        InspectAction::Iterate { map } => {
            let map_fd = world.map_fd(map)?;
            let prog_fd = world.object_mut().iterator_program()?;
            iterate(prog_fd, map_fd)
        }
    })
}

// include/uapi/linux/netlink.h
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;
// include/uapi/linux/sock_diag.h
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const SK_DIAG_BPF_STORAGE_REQ_MAP_FD: u16 = 1;
const SK_DIAG_BPF_STORAGE: u16 = 1;
const SK_DIAG_BPF_STORAGE_MAP_ID: u16 = 2;
const SK_DIAG_BPF_STORAGE_MAP_VALUE: u16 = 3;
// include/uapi/linux/inet_diag.h
const INET_DIAG_REQ_SK_BPF_STORAGES: u16 = 2;
const INET_DIAG_SK_BPF_STORAGES: u16 = 20;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, `struct inet_diag_sockid`.
const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retrans, sockid, then five u32.
const INET_DIAG_MSG_LEN: usize = 72;
/// Offset of `idiag_cookie[2]` in both: 8 (req) or 4 (msg) + sport, dport, src, dst, if.
const SOCKID_COOKIE: usize = 2 + 2 + 16 + 16 + 4;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A map the answer may name by its id.
struct DiagMap<'a> {
    pub name: &'a str,
    pub id: u32,
    pub value: &'a Type,
}

/// The dump request: every socket of the family and protocol in any state, with the
/// storages of `map_fds` (all of the socket's storages when empty).
fn request(family: u8, protocol: u8, key: &SocketKey, map_fds: &[RawFd]) -> Vec<u8> {
    let mut stgs = Vec::new();
    for fd in map_fds {
        stgs.extend((NLA_HDRLEN as u16 + 4).to_ne_bytes());
        stgs.extend(SK_DIAG_BPF_STORAGE_REQ_MAP_FD.to_ne_bytes());
        stgs.extend((*fd as u32).to_ne_bytes());
    }
    let mut msg = vec![0u8; NLMSG_HDRLEN];
    msg.extend([family, protocol, 0, 0]);
    msg.extend(u32::MAX.to_ne_bytes()); // idiag_states: every state
    let mut id = [0u8; INET_DIAG_REQ_V2_LEN - 8];
    // A dump does not filter by the id; the socket is picked from the answers by cookie.
    id[0..2].copy_from_slice(&key.local_port.to_be_bytes());
    id[2..4].copy_from_slice(&key.remote_port.to_be_bytes());
    id[SOCKID_COOKIE..SOCKID_COOKIE + 4].copy_from_slice(&(key.cookie as u32).to_ne_bytes());
    id[SOCKID_COOKIE + 4..SOCKID_COOKIE + 8]
        .copy_from_slice(&((key.cookie >> 32) as u32).to_ne_bytes());
    msg.extend(id);
    msg.extend(((NLA_HDRLEN + stgs.len()) as u16).to_ne_bytes());
    msg.extend((INET_DIAG_REQ_SK_BPF_STORAGES | NLA_F_NESTED).to_ne_bytes());
    msg.extend(stgs);
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number
    msg
}

/// The attributes in `buf`: (type without flags, payload).
fn attributes(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= NLA_HDRLEN {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > buf.len() {
            break;
        }
        out.push((kind, &buf[NLA_HDRLEN..len]));
        buf = &buf[align4(len).min(buf.len())..];
    }
    out
}

/// What the dump answered for the socket.
#[derive(Debug, PartialEq)]
enum Answer {
    /// The socket's storages: (map id, value bytes).
    Listed(Vec<(u32, Vec<u8>)>),
    NotListed,
    /// NLMSG_ERROR with this errno.
    Refused(i32),
}

/// Reads the dump's messages from `buf` (one recv's worth) into `answer`; true when the
/// dump is over.
fn read_messages(mut buf: &[u8], cookie: u64, answer: &mut Answer) -> bool {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < NLMSG_HDRLEN || len > buf.len() {
            return true;
        }
        let payload = &buf[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_DONE => return true,
            NLMSG_ERROR => {
                let code = payload
                    .get(0..4)
                    .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                if code != 0 {
                    *answer = Answer::Refused(-code);
                }
                return true;
            }
            SOCK_DIAG_BY_FAMILY if payload.len() >= INET_DIAG_MSG_LEN => {
                let at = 4 + SOCKID_COOKIE;
                let low = u32::from_ne_bytes(payload[at..at + 4].try_into().expect("4 bytes"));
                let high = u32::from_ne_bytes(payload[at + 4..at + 8].try_into().expect("4 bytes"));
                if (u64::from(high) << 32 | u64::from(low)) == cookie {
                    *answer = Answer::Listed(storages(&payload[INET_DIAG_MSG_LEN..]));
                }
            }
            _ => {}
        }
        buf = &buf[align4(len).min(buf.len())..];
    }
    false
}

/// `INET_DIAG_SK_BPF_STORAGES` → `SK_DIAG_BPF_STORAGE` → map id and value.
fn storages(attrs: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    for (_, nest) in attributes(attrs)
        .into_iter()
        .filter(|(kind, _)| *kind == INET_DIAG_SK_BPF_STORAGES)
    {
        for (_, storage) in attributes(nest)
            .into_iter()
            .filter(|(kind, _)| *kind == SK_DIAG_BPF_STORAGE)
        {
            let mut id = None;
            let mut value = None;
            for (kind, data) in attributes(storage) {
                match kind {
                    SK_DIAG_BPF_STORAGE_MAP_ID if data.len() >= 4 => {
                        id = Some(u32::from_ne_bytes(data[..4].try_into().expect("4 bytes")));
                    }
                    SK_DIAG_BPF_STORAGE_MAP_VALUE => value = Some(data.to_vec()),
                    _ => {}
                }
            }
            if let (Some(id), Some(value)) = (id, value) {
                out.push((id, value));
            }
        }
    }
    out
}

/// Dumps the sockets of `socket`'s family and protocol asking for the storages of `asked`
/// (every storage when empty), and returns what the answer for `socket` carried, each
/// value decoded with its map's type; `known` names the maps the answer may mention.
fn diag(
    socket: BorrowedFd<'_>,
    (family, kind): (Family, SockType),
    asked: &[RawFd],
    known: &[DiagMap<'_>],
) -> Actual {
    let not_run = |reason: String| Actual::NotRun { reason };
    let family = match family {
        Family::Inet => libc::AF_INET as u8,
        Family::Inet6 => libc::AF_INET6 as u8,
        Family::Unix => return not_run("inet_diag does not answer for unix sockets".into()),
    };
    let protocol = match kind {
        SockType::Stream => libc::IPPROTO_TCP as u8,
        SockType::Dgram => libc::IPPROTO_UDP as u8,
        SockType::Seqpacket => return not_run("seqpacket sockets are unix sockets".into()),
    };
    let key = match SocketKey::of(&socket) {
        Ok(key) => key,
        Err(e) => return not_run(format!("cannot read the socket's cookie: {e}")),
    };
    let answer = match dump(family, protocol, &key, asked) {
        Ok(answer) => answer,
        Err(e) => return not_run(format!("sock_diag netlink socket: {e}")),
    };
    match answer {
        Answer::Refused(errno) => Actual::errno(errno),
        Answer::NotListed => Actual::NotListed,
        Answer::Listed(found) => {
            let by_id: std::collections::HashMap<u32, &DiagMap<'_>> =
                known.iter().map(|map| (map.id, map)).collect();
            let mut storages = serde_json::Map::new();
            for (id, bytes) in found {
                let entry = match by_id.get(&id) {
                    Some(map) if bytes.len() >= map.value.size() as usize => (
                        map.name.to_string(),
                        map.value.decode(&bytes[..map.value.size() as usize]),
                    ),
                    // Not a map of the case, or a value shorter than its type: raw bytes.
                    Some(map) => (map.name.to_string(), serde_json::json!(bytes)),
                    None => (format!("map id {id}"), serde_json::json!(bytes)),
                };
                storages.insert(entry.0, entry.1);
            }
            Actual::Storages {
                storages: serde_json::Value::Object(storages),
            }
        }
    }
}

/// Sends the dump request on a new NETLINK_SOCK_DIAG socket and reads the answer to its end.
fn dump(family: u8, protocol: u8, key: &SocketKey, asked: &[RawFd]) -> nix::Result<Answer> {
    let netlink: OwnedFd = socket(
        AddressFamily::Netlink,
        NixSockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    let message = request(family, protocol, key, asked);
    sendto(
        netlink.as_raw_fd(),
        &message,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut answer = Answer::NotListed;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = recv(netlink.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if n == 0 || read_messages(&buf[..n], key.cookie, &mut answer) {
            return Ok(answer);
        }
    }
}

/// Attaches the iterator program `prog_fd` to the map, reads the iterator to its end and
/// returns how many storages it saw and the sum of their first 8 bytes. An errno of
/// BPF_LINK_CREATE, BPF_ITER_CREATE or read(2) is the outcome.
fn iterate(prog_fd: RawFd, map_fd: RawFd) -> Actual {
    let link = match sys::link_map_iterator(prog_fd, map_fd) {
        Ok(link) => link,
        Err(errno) => return Actual::errno(errno),
    };
    let iter = match sys::iterator_create(link.as_raw_fd()) {
        Ok(iter) => iter,
        Err(errno) => return Actual::errno(errno),
    };
    let mut output = Vec::new();
    if let Err(e) = std::fs::File::from(iter).read_to_end(&mut output) {
        return Actual::errno(e.raw_os_error().unwrap_or(0));
    }
    if output.len() % 8 != 0 {
        return Actual::NotRun {
            reason: format!(
                "the iterator wrote {} bytes, not whole 8-byte records",
                output.len()
            ),
        };
    }
    let values = output
        .chunks_exact(8)
        .map(|chunk| u64::from_ne_bytes(chunk.try_into().expect("8 bytes")));
    let storages = values.len() as u64;
    let value_sum = values.fold(0u64, u64::wrapping_add);
    Actual::Value {
        value: serde_json::json!({ "storages": storages, "value_sum": value_sum }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = ((NLA_HDRLEN + payload.len()) as u16).to_ne_bytes().to_vec();
        out.extend(kind.to_ne_bytes());
        out.extend(payload);
        out.resize(align4(out.len()), 0);
        out
    }

    #[test]
    fn the_request_names_each_map_fd_in_one_nested_attribute() {
        let key = SocketKey {
            cookie: 0x1_0000_0002,
            local_port: 80,
            remote_port: 0,
        };
        let msg = request(libc::AF_INET as u8, libc::IPPROTO_TCP as u8, &key, &[5, 9]);
        assert_eq!(msg.len(), NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN + 4 + 2 * 8);
        assert_eq!(
            u32::from_ne_bytes(msg[0..4].try_into().unwrap()) as usize,
            msg.len()
        );
        assert_eq!(
            u16::from_ne_bytes([msg[6], msg[7]]),
            NLM_F_REQUEST | NLM_F_DUMP
        );
        let req = &msg[NLMSG_HDRLEN..];
        assert_eq!(&req[8..10], &80u16.to_be_bytes());
        assert_eq!(
            &req[8 + SOCKID_COOKIE..8 + SOCKID_COOKIE + 4],
            &2u32.to_ne_bytes()
        );
        let attrs = attributes(&req[INET_DIAG_REQ_V2_LEN..]);
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].0, INET_DIAG_REQ_SK_BPF_STORAGES);
        let fds: Vec<_> = attributes(attrs[0].1)
            .into_iter()
            .map(|(kind, data)| (kind, u32::from_ne_bytes(data.try_into().unwrap())))
            .collect();
        assert_eq!(fds, [(1, 5), (1, 9)]);
    }

    #[test]
    fn the_answer_for_the_cookie_gives_map_ids_and_values() {
        let storage = |id: u32, value: &[u8]| {
            let mut inner = nla(SK_DIAG_BPF_STORAGE_MAP_ID, &id.to_ne_bytes());
            inner.extend(nla(1, &[])); // SK_DIAG_BPF_STORAGE_PAD
            inner.extend(nla(SK_DIAG_BPF_STORAGE_MAP_VALUE, value));
            nla(SK_DIAG_BPF_STORAGE | NLA_F_NESTED, &inner)
        };
        let message = |cookie: u64, attrs: &[u8]| {
            let mut body = vec![0u8; INET_DIAG_MSG_LEN];
            let at = 4 + SOCKID_COOKIE;
            body[at..at + 4].copy_from_slice(&(cookie as u32).to_ne_bytes());
            body[at + 4..at + 8].copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
            body.extend(attrs);
            let mut msg = ((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes().to_vec();
            msg.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
            msg.extend([0u8; 10]); // flags, sequence, port id
            msg.extend(body);
            msg
        };
        let mut stgs = storage(7, &42u64.to_ne_bytes());
        stgs.extend(storage(8, &[1, 2]));
        let mut buf = message(99, &nla(INET_DIAG_SK_BPF_STORAGES, &storage(7, &[9; 8])));
        buf.extend(message(
            0x5_0000_0001,
            &nla(INET_DIAG_SK_BPF_STORAGES | NLA_F_NESTED, &stgs),
        ));
        let mut answer = Answer::NotListed;
        assert!(!read_messages(&buf, 0x5_0000_0001, &mut answer));
        assert_eq!(
            answer,
            Answer::Listed(vec![(7, 42u64.to_ne_bytes().to_vec()), (8, vec![1, 2])])
        );
        let mut done = (NLMSG_HDRLEN as u32).to_ne_bytes().to_vec();
        done.extend(NLMSG_DONE.to_ne_bytes());
        done.extend([0u8; 10]);
        let mut unseen = Answer::NotListed;
        assert!(read_messages(&done, 1, &mut unseen));
        assert_eq!(unseen, Answer::NotListed);
        let mut error = ((NLMSG_HDRLEN + 4) as u32).to_ne_bytes().to_vec();
        error.extend(NLMSG_ERROR.to_ne_bytes());
        error.extend([0u8; 10]);
        error.extend((-libc::EPERM).to_ne_bytes());
        let mut refused = Answer::NotListed;
        assert!(read_messages(&error, 1, &mut refused));
        assert_eq!(refused, Answer::Refused(libc::EPERM));
    }
}
