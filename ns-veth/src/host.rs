//! The host side of a network: make what the container's namespace needs, from outside it.
//!
//! For `veth`: the names are checked, the target namespace opened and the bridge looked up
//! **before** anything is made, so a missing bridge or a dead target leaves nothing behind.
//! The pair is then created in one request with the peer placed directly in the target
//! namespace (`IFLA_NET_NS_FD` on the peer), so the kernel deletes the pair whenever that
//! namespace dies: if ns-veth or ns-exec is killed halfway, nothing leaks. The host end is then
//! attached to the bridge and brought up; if either fails, the pair is deleted again.
//! `loopback` and `netns` make nothing on the host; their context only carries the config on.
//!
//! Fault points (`NS_FAULT`, docs/handoff.md §10), stage `ns-veth` also when ns-exec calls
//! the library: `after-create` (the pair exists, not attached yet) and `after-attach` (attached,
//! not up yet).
//!
//! Deleting ([`undo`], `ns-veth del`) only ever removes a veth, never an interface of another
//! kind, so a mistyped name cannot take down a bridge or a physical interface.

use common::config::{Network, NetworkKind};
use common::net::{DEFAULT_CHILD_NAME, NetContext};
use common::{Context, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, fstat};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::netlink::{Link, Netlink, NlContext};
use crate::{addr, name};

/// How many fresh names to try when a generated name already exists (`EEXIST`).
const NAME_TRIES: usize = 10;
/// `NS_GET_NSTYPE` (linux/nsfs.h): which kind of namespace an nsfs fd is.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// The network namespace the container side lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The network namespace of this process (`/proc/PID/ns/net`).
    Pid(i32),
    /// A network namespace file (`/run/netns/NAME`, `/proc/PID/ns/net`).
    Netns(PathBuf),
}

impl Target {
    /// Opens the namespace (close-on-exec) and checks that it is a network namespace other
    /// than the caller's: a peer placed in the caller's own namespace would outlive the
    /// container.
    pub fn open(&self) -> Result<OwnedFd> {
        let (path, what) = match self {
            Target::Pid(pid) => (
                PathBuf::from(format!("/proc/{pid}/ns/net")),
                format!("target pid {pid}"),
            ),
            Target::Netns(p) => (p.clone(), format!("target netns {}", p.display())),
        };
        let fd = match open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if matches!(self, Target::Pid(_)) => {
                return Err(Error::sys(what, Errno::ESRCH));
            }
            Err(e) => return Err(Error::sys(what, e)),
        };
        // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd's namespace type.
        let kind = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
        if kind != libc::CLONE_NEWNET {
            return Err(Error::msg(what, "not a network namespace"));
        }
        let own = open(
            "/proc/self/ns/net",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open /proc/self/ns/net".to_string())?;
        let (a, b) = (
            fstat(fd.as_fd()).ctx(|| format!("stat {what}"))?,
            fstat(own.as_fd()).ctx(|| "stat /proc/self/ns/net".to_string())?,
        );
        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) {
            return Err(Error::msg(
                what,
                "is ns-veth's own network namespace, not a container's",
            ));
        }
        Ok(fd)
    }
}

/// The host side of one `networks[]` entry against `target`; on failure nothing it made is left.
pub fn host_side(net: &Network, target: &Target) -> Result<NetContext> {
    let mut ctx = NetContext::new(net.kind);
    ctx.mtu = net.mtu;
    match net.kind {
        NetworkKind::Loopback => Ok(ctx),
        NetworkKind::Netns => {
            let path = net
                .context
                .get("nspath")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| Error::msg("netns network", "needs \"nspath\""))?;
            ctx.nspath = Some(path.clone());
            Ok(ctx)
        }
        NetworkKind::Veth => {
            let bridge = net
                .context
                .get("bridge")
                .ok_or_else(|| Error::msg("veth network", "needs \"bridge\""))?;
            let prefix = net
                .context
                .get("prefix")
                .map_or(name::DEFAULT_PREFIX, String::as_str);
            let inside = net
                .context
                .get("name")
                .map_or(DEFAULT_CHILD_NAME, String::as_str);
            name::check(bridge, "bridge")?;
            name::check_prefix(prefix)?;
            name::check(inside, "name")?;
            if let Some(a) = &net.address {
                addr::cidr(a, "address")?;
            }
            if let Some(g) = &net.gateway {
                addr::ip(g, "gateway")?;
            }
            let netns = target.open()?;
            let (host, peer) = make_veth(bridge, prefix, net.mtu, &netns)?;
            ctx.host = Some(host);
            ctx.peer = Some(peer);
            ctx.name = Some(inside.to_string());
            ctx.bridge = Some(bridge.clone());
            ctx.address = net.address.clone();
            ctx.gateway = net.gateway.clone();
            Ok(ctx)
        }
    }
}

/// Creates the pair, attaches the host end to `bridge` and brings it up; returns the host and
/// peer names. Deletes the pair again if a step after its creation fails.
fn make_veth(
    bridge: &str,
    prefix: &str,
    mtu: Option<u32>,
    netns: &OwnedFd,
) -> Result<(String, String)> {
    let mut nl = Netlink::open()?;
    let br = nl
        .link(bridge)
        .nl_ctx(|| format!("look up bridge {bridge:?}"))?
        .ok_or_else(|| plain(format!("bridge {bridge:?} does not exist")))?;
    if br.kind.as_deref() != Some("bridge") {
        return Err(plain(format!("{bridge:?} is not a bridge")));
    }
    let mut made = None;
    for _ in 0..NAME_TRIES {
        let host = name::random(prefix)?;
        let peer = name::random(prefix)?;
        if host == peer {
            continue;
        }
        match nl.create_veth(&host, &peer, mtu, netns.as_fd()) {
            Ok(()) => {
                made = Some((host, peer));
                break;
            }
            Err(e) if e.errno == Errno::EEXIST => continue,
            Err(e) => return Err(e.into_error(format!("create veth pair {host:?}"))),
        }
    }
    let Some((host, peer)) = made else {
        return Err(Error::msg(
            format!("create veth pair with prefix {prefix:?}"),
            format!("every one of {NAME_TRIES} random names was taken"),
        ));
    };
    let finish = |nl: &mut Netlink| -> Result<Link> {
        common::fault::point("ns-veth", "after-create")?;
        let link = nl
            .link(&host)
            .nl_ctx(|| format!("look up {host:?}"))?
            .ok_or_else(|| Error::msg(format!("veth {host:?}"), "vanished after creation"))?;
        nl.set_master(link.index, br.index)
            .nl_ctx(|| format!("attach {host:?} to bridge {bridge:?}"))?;
        common::fault::point("ns-veth", "after-attach")?;
        nl.set_up(link.index, true)
            .nl_ctx(|| format!("bring {host:?} up"))?;
        Ok(link)
    };
    match finish(&mut nl) {
        Ok(_) => Ok((host, peer)),
        Err(e) => {
            // Roll back: deleting one end deletes the pair. A failure here cannot be reported
            // better than the original error, which is what the caller needs to see.
            if let Ok(Some(link)) = nl.link(&host) {
                let _ = nl.delete(link.index);
            }
            Err(e)
        }
    }
}

/// An error that is one sentence, with nothing after a colon
/// (`bridge "br0" does not exist`).
fn plain(sentence: String) -> Error {
    Error {
        what: sentence,
        errno: None,
        detail: None,
        code: common::exit::FAILED,
    }
}

/// Undoes [`host_side`]: deletes the host veth if it still exists. Idempotent; does nothing
/// for strategies that made nothing on the host.
pub fn undo(ctx: &NetContext) -> Result<()> {
    match (&ctx.kind, &ctx.host) {
        (NetworkKind::Veth, Some(host)) => delete(host),
        _ => Ok(()),
    }
}

/// Deletes the veth `name` (and so its peer) in the caller's namespace; an absent one is not
/// an error. Refuses an interface that is not a veth.
pub fn delete(name: &str) -> Result<()> {
    name::check(name, "interface")?;
    let mut nl = Netlink::open()?;
    let Some(link) = nl.link(name).nl_ctx(|| format!("look up {name:?}"))? else {
        return Ok(());
    };
    if link.kind.as_deref() != Some("veth") {
        return Err(Error::msg(
            format!("delete {name:?}"),
            "not a veth; ns-veth deletes only veths",
        ));
    }
    match nl.delete(link.index) {
        // Gone meanwhile, e.g. with its peer's namespace: what we wanted.
        Err(e) if e.errno == Errno::ENODEV => Ok(()),
        r => r.nl_ctx(|| format!("delete {name:?}")),
    }
}

/// The state of the veth `name` in the caller's namespace: `None` when there is no such
/// interface. Errors when it exists but is not a veth.
pub fn check(name: &str) -> Result<Option<Link>> {
    name::check(name, "interface")?;
    let mut nl = Netlink::open()?;
    let Some(link) = nl.link(name).nl_ctx(|| format!("look up {name:?}"))? else {
        return Ok(None);
    };
    if link.kind.as_deref() != Some("veth") {
        return Err(plain(format!("{name:?} is not a veth")));
    }
    Ok(Some(link))
}
