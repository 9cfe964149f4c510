//! The container side of a network, run by ns-init inside the container's network namespace.
//!
//! Ordering: ns-init applies the contexts right after `go` and **before the mounts**, so a
//! `netns` strategy can still open a host path (`/proc/PID/ns/net`, `/run/netns/NAME`); each
//! context in config order, then `routes[]`, whose interfaces the networks made. Each step opens
//! its own netlink socket, because a socket keeps working in the namespace it was opened in and
//! a `netns` step switches namespaces.
//!
//! `veth`: `lo` up; the peer (still down, as created) renamed to its final name (`eth0`), its
//! MTU set, the address added, brought up, and the default route added via the gateway on it.
//! `loopback`: `lo`'s MTU and up. `netns`: setns(2) into `nspath`.
//! See <https://man7.org/linux/man-pages/man2/setns.2.html>.

use common::config::{NetworkKind, Route};
use common::net::{DEFAULT_CHILD_NAME, NetContext};
use common::{Context, Error, Result};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use crate::addr;
use crate::netlink::{Netlink, NlContext, RouteSpec};

/// Applies one network context in the current network namespace (the container's).
pub fn container_side(ctx: &NetContext) -> Result<()> {
    match ctx.kind {
        NetworkKind::Loopback => {
            let mut nl = Netlink::open()?;
            loopback_up(&mut nl, ctx.mtu)
        }
        NetworkKind::Veth => veth(ctx),
        NetworkKind::Netns => {
            let path = ctx
                .nspath
                .as_deref()
                .ok_or_else(|| Error::msg("netns network", "the context has no \"nspath\""))?;
            let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| format!("open netns {path}"))?;
            common::sys::setns(&fd, libc::CLONE_NEWNET).ctx(|| format!("join netns {path}"))
        }
    }
}

/// Applies every context in order, then the routes: ns-init's whole network step.
pub fn apply(contexts: &[NetContext], routes: &[Route]) -> Result<()> {
    for c in contexts {
        container_side(c)?;
    }
    add_routes(routes)
}

/// Sets `lo`'s MTU (when given) and brings it up.
fn loopback_up(nl: &mut Netlink, mtu: Option<u32>) -> Result<()> {
    let lo = nl
        .link("lo")
        .nl_ctx(|| "look up lo".to_string())?
        .ok_or_else(|| Error::msg("lo", "no loopback interface in this namespace"))?;
    if let Some(mtu) = mtu {
        nl.set_mtu(lo.index, mtu)
            .nl_ctx(|| format!("set the MTU of lo to {mtu}"))?;
    }
    nl.set_up(lo.index, true)
        .nl_ctx(|| "bring lo up".to_string())
}

fn veth(ctx: &NetContext) -> Result<()> {
    let peer = ctx
        .peer
        .as_deref()
        .ok_or_else(|| Error::msg("veth network", "the context has no \"peer\""))?;
    let name = ctx.name.as_deref().unwrap_or(DEFAULT_CHILD_NAME);
    crate::name::check(name, "name")?;
    let address = ctx
        .address
        .as_deref()
        .map(|a| addr::cidr(a, "address"))
        .transpose()?;
    let gateway = ctx
        .gateway
        .as_deref()
        .map(|g| addr::ip(g, "gateway"))
        .transpose()?;
    let mut nl = Netlink::open()?;
    loopback_up(&mut nl, None)?;
    let link = nl
        .link(peer)
        .nl_ctx(|| format!("look up {peer:?}"))?
        .ok_or_else(|| {
            Error::msg(
                format!("veth {peer:?}"),
                "is not in the container's network namespace",
            )
        })?;
    // A rename needs the link down; the peer is created down, but make sure.
    if link.up {
        nl.set_up(link.index, false)
            .nl_ctx(|| format!("bring {peer:?} down"))?;
    }
    if name != peer {
        nl.rename(link.index, name)
            .nl_ctx(|| format!("rename {peer:?} to {name:?}"))?;
    }
    if let Some(mtu) = ctx.mtu {
        nl.set_mtu(link.index, mtu)
            .nl_ctx(|| format!("set the MTU of {name:?} to {mtu}"))?;
    }
    if let Some(a) = address {
        nl.add_address(link.index, a)
            .nl_ctx(|| format!("add address {}/{} to {name:?}", a.addr, a.len))?;
    }
    nl.set_up(link.index, true)
        .nl_ctx(|| format!("bring {name:?} up"))?;
    if let Some(g) = gateway {
        let spec = RouteSpec {
            destination: None,
            source: None,
            gateway: Some(g),
            oif: link.index,
        };
        nl.add_route(&spec)
            .nl_ctx(|| format!("add default route via {g} on {name:?}"))?;
    }
    Ok(())
}

/// Adds the config's `routes[]` in the current network namespace, in order.
pub fn add_routes(routes: &[Route]) -> Result<()> {
    if routes.is_empty() {
        return Ok(());
    }
    let mut nl = Netlink::open()?;
    for (i, r) in routes.iter().enumerate() {
        let what = format!("routes[{i}]");
        let spec = RouteSpec {
            destination: r
                .destination
                .as_deref()
                .map(|d| addr::cidr(d, &format!("{what}.destination")))
                .transpose()?,
            source: r
                .source
                .as_deref()
                .map(|s| addr::cidr(s, &format!("{what}.source")))
                .transpose()?,
            gateway: r
                .gateway
                .as_deref()
                .map(|g| addr::ip(g, &format!("{what}.gateway")))
                .transpose()?,
            oif: 0,
        };
        let dev = &r.interface_name;
        let link = nl
            .link(dev)
            .nl_ctx(|| format!("{what}: look up {dev:?}"))?
            .ok_or_else(|| Error::msg(format!("{what}: interface {dev:?}"), "does not exist"))?;
        let spec = RouteSpec {
            oif: link.index,
            ..spec
        };
        nl.add_route(&spec).nl_ctx(|| {
            let dst = r.destination.as_deref().unwrap_or("default");
            let via = r
                .gateway
                .as_deref()
                .map_or(String::new(), |g| format!(" via {g}"));
            format!("{what}: add route {dst}{via} dev {dev}")
        })?;
    }
    Ok(())
}
