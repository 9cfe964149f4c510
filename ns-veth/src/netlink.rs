//! The few rtnetlink requests ns-veth makes, over one `NETLINK_ROUTE` socket.
//!
//! Messages are encoded and decoded by the `netlink-packet-route` crate; this module only frames
//! requests, checks every acknowledgement, and names the link, address and route operations
//! the stage needs. Every request carries `NLM_F_ACK`, so a failure is never silent, and creations
//! carry `NLM_F_CREATE | NLM_F_EXCL`, so an existing interface is an `EEXIST`, never reused or
//! replaced. With `NETLINK_EXT_ACK` the kernel's own explanation (extack) is kept in the error.
//!
//! A socket works in the network namespace it was opened in: open one per namespace, after
//! any `setns`. Replies are only taken from the kernel (sender port 0) and matched by sequence
//! number. See <https://man7.org/linux/man-pages/man7/rtnetlink.7.html> and
//! <https://man7.org/linux/man-pages/man7/netlink.7.html>.

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkBuffer, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::errno::Errno;
use std::fmt;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::addr::Cidr;
use common::Error;

/// The receive buffer: a link dump entry with statistics is a few KiB; 64 KiB holds any reply.
const RECV_BUF: usize = 64 * 1024;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
/// `NLM_F_ACK_TLVS` on an error message: extack attributes follow the echoed header.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the kernel's error text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// `sizeof(struct nlmsghdr)`: what the kernel echoes of our request with `NETLINK_CAP_ACK`.
const NLMSG_HDRLEN: usize = 16;

/// A failed request: the errno, and the kernel's explanation when it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    /// The kernel's (or the socket's) error.
    pub errno: Errno,
    /// The extended-ack message, e.g. `Master device not found`.
    pub message: Option<String>,
}

impl NlError {
    fn errno(errno: Errno) -> Self {
        NlError {
            errno,
            message: None,
        }
    }

    fn decode(detail: impl fmt::Display) -> Self {
        NlError {
            errno: Errno::EBADMSG,
            message: Some(format!("undecodable netlink reply: {detail}")),
        }
    }

    /// Turns the failure of doing `what` into the stage's error.
    pub fn into_error(self, what: impl Into<String>) -> Error {
        let mut e = Error::sys(what, self.errno);
        e.detail = self.message;
        e
    }
}

/// Result of a netlink operation.
pub type NlResult<T> = std::result::Result<T, NlError>;

/// Adds the step being done to a netlink failure, as `common::Context` does for errnos.
pub trait NlContext<T> {
    /// On error, wrap it with `what`.
    fn nl_ctx(self, what: impl FnOnce() -> String) -> common::Result<T>;
}

impl<T> NlContext<T> for NlResult<T> {
    fn nl_ctx(self, what: impl FnOnce() -> String) -> common::Result<T> {
        self.map_err(|e| e.into_error(what()))
    }
}

/// What a link lookup tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface index.
    pub index: u32,
    /// The name.
    pub name: String,
    /// The link kind (`veth`, `bridge`), when it has one (`lo` has none).
    pub kind: Option<String>,
    /// The index of the bridge (or other master) it is attached to.
    pub master: Option<u32>,
    /// Its MTU.
    pub mtu: Option<u32>,
    /// Whether it is administratively up.
    pub up: bool,
}

/// A route to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination; `None` is the default route.
    pub destination: Option<Cidr>,
    /// Source prefix.
    pub source: Option<Cidr>,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: u32,
}

/// One `NETLINK_ROUTE` socket in the namespace it was opened in.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    /// Opens a socket (close-on-exec) with extended acks on.
    pub fn open() -> common::Result<Netlink> {
        let sock =
            Socket::new(NETLINK_ROUTE).map_err(|e| Error::io("open a NETLINK_ROUTE socket", e))?;
        for opt in [NETLINK_CAP_ACK, NETLINK_EXT_ACK] {
            let on: libc::c_int = 1;
            // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `on`, which lives
            // across the call. Both options exist since Linux 4.12; failure only loses the
            // kernel's explanation text, so it is ignored.
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    SOL_NETLINK,
                    opt,
                    (&raw const on).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(Netlink { sock, seq: 0 })
    }

    /// Sends `msg` with `flags` (plus `NLM_F_REQUEST | NLM_F_ACK`) and collects the replies up
    /// to the acknowledgement.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> NlResult<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut nl = NetlinkMessage::from(msg);
        nl.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        nl.header.sequence_number = seq;
        nl.finalize();
        let mut out = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut out);
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.sock.send_to(&out, &kernel, 0) {
                Ok(n) if n == out.len() => break,
                Ok(_) => return Err(NlError::errno(Errno::EMSGSIZE)),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(NlError::errno(io_errno(&e))),
            }
        }
        let mut replies = Vec::new();
        let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF);
        loop {
            buf.clear();
            let (n, from) = match self.sock.recv_from(&mut buf, 0) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(NlError::errno(io_errno(&e))),
            };
            if n > buf.len() {
                return Err(NlError::errno(Errno::EMSGSIZE));
            }
            if from.port_number() != 0 {
                continue; // not from the kernel: never ours
            }
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let len = NetlinkBuffer::new_checked(rest)
                    .map_err(NlError::decode)?
                    .length() as usize;
                let len = len.min(rest.len());
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len])
                    .map_err(NlError::decode)?;
                rest = &rest[((len + 3) & !3).min(rest.len())..];
                if msg.header.sequence_number != seq {
                    continue;
                }
                let header_flags = msg.header.flags;
                match msg.payload {
                    NetlinkPayload::Error(err) => match err.code {
                        None => return Ok(replies),
                        Some(code) => {
                            return Err(NlError {
                                errno: Errno::from_raw(-code.get()),
                                message: extack_message(header_flags, &err.header),
                            });
                        }
                    },
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    _ => {}
                }
            }
        }
    }

    /// Looks a link up by name; `None` when there is no such interface.
    pub fn link(&mut self, name: &str) -> NlResult<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(link_from(m)),
                _ => None,
            })),
            Err(e) if e.errno == Errno::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the veth pair `host` ↔ `peer`, the peer directly in the network namespace `netns`
    /// (so the kernel removes the pair when that namespace dies), both with `mtu`.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        mtu: Option<u32>,
        netns: BorrowedFd<'_>,
    ) -> NlResult<()> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        if let Some(mtu) = mtu {
            peer_msg.attributes.push(LinkAttribute::Mtu(mtu));
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// Creates a bridge named `name` (tests and `ns-exec doctor` probe bridge support with it;
    /// ns-veth itself only attaches to bridges the caller made).
    pub fn create_bridge(&mut self, name: &str) -> NlResult<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// Changes link `index` with `attributes` (and, when `up` is given, its `IFF_UP` flag).
    fn set_link(
        &mut self,
        index: u32,
        attributes: Vec<LinkAttribute>,
        up: Option<bool>,
    ) -> NlResult<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        if let Some(up) = up {
            msg.header.change_mask = LinkFlags::Up;
            if up {
                msg.header.flags = LinkFlags::Up;
            }
        }
        msg.attributes = attributes;
        self.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
    }

    /// Attaches link `index` to the bridge `master`.
    pub fn set_master(&mut self, index: u32, master: u32) -> NlResult<()> {
        self.set_link(index, vec![LinkAttribute::Controller(master)], None)
    }

    /// Brings link `index` up or down.
    pub fn set_up(&mut self, index: u32, up: bool) -> NlResult<()> {
        self.set_link(index, Vec::new(), Some(up))
    }

    /// Sets the MTU of link `index`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> NlResult<()> {
        self.set_link(index, vec![LinkAttribute::Mtu(mtu)], None)
    }

    /// Renames link `index` (it must be down).
    pub fn rename(&mut self, index: u32, name: &str) -> NlResult<()> {
        self.set_link(index, vec![LinkAttribute::IfName(name.to_string())], None)
    }

    /// Deletes link `index` (for a veth, both ends go).
    pub fn delete(&mut self, index: u32) -> NlResult<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(msg), 0).map(drop)
    }

    /// Adds `cidr` to link `index`.
    pub fn add_address(&mut self, index: u32, cidr: Cidr) -> NlResult<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = family(cidr.addr);
        msg.header.prefix_len = cidr.len;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(cidr.addr));
        msg.attributes.push(AddressAttribute::Address(cidr.addr));
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds a route to the main table.
    pub fn add_route(&mut self, spec: &RouteSpec) -> NlResult<()> {
        let mut msg = RouteMessage::default();
        let ip = spec
            .destination
            .map(|c| c.addr)
            .or(spec.source.map(|c| c.addr))
            .or(spec.gateway)
            .ok_or(NlError::errno(Errno::EINVAL))?;
        msg.header.address_family = family(ip);
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.kind = RouteType::Unicast;
        // Without a next hop the destination is on the link itself (`ip route add ... dev X`).
        msg.header.scope = if spec.gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if let Some(d) = spec.destination {
            msg.header.destination_prefix_length = d.len;
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::from(d.addr)));
        }
        if let Some(s) = spec.source {
            msg.header.source_prefix_length = s.len;
            msg.attributes
                .push(RouteAttribute::Source(RouteAddress::from(s.addr)));
        }
        if let Some(g) = spec.gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(g)));
        }
        msg.attributes.push(RouteAttribute::Oif(spec.oif));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

fn link_from(m: LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        kind: None,
        master: None,
        mtu: None,
        up: m.header.flags.contains(LinkFlags::Up),
    };
    for a in m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Controller(i) => link.master = Some(i),
            LinkAttribute::Mtu(v) => link.mtu = Some(v),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = Some(kind_name(&k));
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Veth => "veth".to_string(),
        InfoKind::Bridge => "bridge".to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The extack text in an error message's payload: the echoed request header (16 bytes with
/// `NETLINK_CAP_ACK`) followed by attributes, when the kernel set `NLM_F_ACK_TLVS`.
fn extack_message(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < NLMSG_HDRLEN {
        return None;
    }
    let mut rest = &payload[NLMSG_HDRLEN..];
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &rest[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or_default();
            let text = String::from_utf8_lossy(text).trim().to_string();
            return (!text.is_empty()).then_some(text);
        }
        rest = &rest[((len + 3) & !3).min(rest.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_extack_message() {
        let mut payload = vec![0u8; NLMSG_HDRLEN];
        let text = b"Master device not found\0";
        let len = (4 + text.len()) as u16;
        payload.extend_from_slice(&len.to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        assert_eq!(
            extack_message(NLM_F_ACK_TLVS, &payload).as_deref(),
            Some("Master device not found")
        );
        assert_eq!(extack_message(0, &payload), None);
        assert_eq!(extack_message(NLM_F_ACK_TLVS, &payload[..10]), None);
    }

    #[test]
    fn errors_read_as_one_line() {
        let e = NlError {
            errno: Errno::EEXIST,
            message: Some("link exists".into()),
        }
        .into_error("create veth \"veth1\"");
        assert_eq!(
            e.to_string(),
            "create veth \"veth1\": link exists: File exists"
        );
        assert_eq!(e.code, 125);
    }
}
