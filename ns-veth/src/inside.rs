//! The container side of a network, run by ns-init inside the container's network namespace.
//!
//! Ordering: ns-init applies the contexts right after `go` and **before the mounts**, so a
//! `netns` strategy can still open a host path (`/proc/PID/ns/net`, `/run/netns/NAME`); each
//! context in config order, then `routes[]`, whose interfaces the networks made.
//!
//! The work is a list of steps, [`inside_actions`] (stage `ns-init`, since ns-init takes them),
//! which `ns-init --plan` prints and [`apply`] walks, recording each in the stage trace
//! (`NS_TRACE`) under its step name. Every value is checked before the first step, so a bad
//! address or route changes nothing. The steps:
//!
//! - `link_up`: bring an interface up (`ip link set eth0 up`);
//! - `link_mtu`: set its MTU (`ip link set eth0 mtu 1400`);
//! - `link_rename`: rename the peer, down as created, to its final name
//!   (`ip link set vethX name eth0`);
//! - `addr_add`: add the address (`ip addr add 198.18.0.2/24 dev eth0`);
//! - `route_add`: the default route via the gateway, and each of `routes[]`
//!   (`ip route add default via 198.18.0.1 dev eth0`);
//! - `setns`: join the network namespace of a `netns` network (shown as the comment
//!   `# nsenter --net=PATH`, since a script cannot switch its own namespace midway).
//!
//! `veth`: `link_up lo`, `link_rename` (when the names differ), `link_mtu`, `addr_add`,
//! `link_up`, `route_add` (when there is a gateway). `loopback`: `link_mtu lo` (when there is an
//! MTU), `link_up lo`. `netns`: `setns` (see
//! <https://man7.org/linux/man-pages/man2/setns.2.html>). One netlink socket serves the steps,
//! opened at the first that needs it and again after a `setns`, because a socket keeps working
//! in the namespace it was opened in.

use common::config::{NetworkKind, Route};
use common::net::{DEFAULT_CHILD_NAME, NetContext};
use common::plan::{Action, quote};
use common::{Context, Error, Result, trace};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use crate::addr;
use crate::netlink::{Link, Netlink, NlContext, RouteSpec};

/// The stage name of the container side in plans and traces.
pub const STAGE: &str = "ns-init";

/// One step of the container side.
#[derive(Debug, Clone, PartialEq)]
enum InsideStep {
    /// Bring interface `name` up.
    LinkUp { name: String },
    /// Set the MTU of interface `name`.
    LinkMtu { name: String, mtu: u32 },
    /// Rename the veth peer `peer` to `name` (bringing it down first if it is up).
    LinkRename { peer: String, name: String },
    /// Add `address` (CIDR) to interface `name`.
    AddrAdd { name: String, address: String },
    /// Add a route out of `dev`; `index` is its place in `routes[]`, `None` for a network's
    /// default route via its gateway.
    RouteAdd {
        index: Option<usize>,
        destination: Option<String>,
        source: Option<String>,
        gateway: Option<String>,
        dev: String,
    },
    /// Join the network namespace at `path`.
    Setns { path: String },
}

/// The container side's steps for `contexts`, then `routes`, in order.
fn steps(contexts: &[NetContext], routes: &[Route]) -> Vec<InsideStep> {
    let mut out = Vec::new();
    let lo = || "lo".to_string();
    for ctx in contexts {
        match ctx.kind {
            NetworkKind::Loopback => {
                if let Some(mtu) = ctx.mtu {
                    out.push(InsideStep::LinkMtu { name: lo(), mtu });
                }
                out.push(InsideStep::LinkUp { name: lo() });
            }
            NetworkKind::Netns => out.push(InsideStep::Setns {
                path: ctx.nspath.clone().unwrap_or_default(),
            }),
            NetworkKind::Veth => {
                let peer = ctx.peer.clone().unwrap_or_default();
                let name = ctx
                    .name
                    .as_deref()
                    .unwrap_or(DEFAULT_CHILD_NAME)
                    .to_string();
                out.push(InsideStep::LinkUp { name: lo() });
                if name != peer {
                    out.push(InsideStep::LinkRename {
                        peer,
                        name: name.clone(),
                    });
                }
                if let Some(mtu) = ctx.mtu {
                    out.push(InsideStep::LinkMtu {
                        name: name.clone(),
                        mtu,
                    });
                }
                if let Some(a) = &ctx.address {
                    out.push(InsideStep::AddrAdd {
                        name: name.clone(),
                        address: a.clone(),
                    });
                }
                out.push(InsideStep::LinkUp { name: name.clone() });
                if let Some(g) = &ctx.gateway {
                    out.push(InsideStep::RouteAdd {
                        index: None,
                        destination: None,
                        source: None,
                        gateway: Some(g.clone()),
                        dev: name,
                    });
                }
            }
        }
    }
    for (i, r) in routes.iter().enumerate() {
        out.push(InsideStep::RouteAdd {
            index: Some(i),
            destination: r.destination.clone(),
            source: r.source.clone(),
            gateway: r.gateway.clone(),
            dev: r.interface_name.clone(),
        });
    }
    out
}

/// The container side as plan actions (stage `ns-init`): what [`apply`] does for `contexts`
/// and `routes`, in order, with the equivalent `ip` commands.
pub fn inside_actions(contexts: &[NetContext], routes: &[Route]) -> Vec<Action> {
    steps(contexts, routes)
        .iter()
        .map(InsideStep::action)
        .collect()
}

/// Applies every context in order, then the routes: ns-init's whole network step. Walks
/// exactly [`inside_actions`], after checking every value.
pub fn apply(contexts: &[NetContext], routes: &[Route]) -> Result<()> {
    for ctx in contexts {
        check(ctx)?;
    }
    check_routes(routes)?;
    walk(&steps(contexts, routes))
}

/// Applies one network context in the current network namespace (the container's).
pub fn container_side(ctx: &NetContext) -> Result<()> {
    check(ctx)?;
    walk(&steps(std::slice::from_ref(ctx), &[]))
}

/// Adds the config's `routes[]` in the current network namespace, in order.
pub fn add_routes(routes: &[Route]) -> Result<()> {
    check_routes(routes)?;
    walk(&steps(&[], routes))
}

/// Takes `steps` in order, each recorded in the trace.
fn walk(steps: &[InsideStep]) -> Result<()> {
    let mut nl = None;
    for s in steps {
        trace::action(&s.action(), || s.run(&mut nl))?;
    }
    Ok(())
}

/// Checks what a context asks for, before anything is done.
fn check(ctx: &NetContext) -> Result<()> {
    match ctx.kind {
        NetworkKind::Loopback => Ok(()),
        NetworkKind::Netns => {
            ctx.nspath
                .as_deref()
                .ok_or_else(|| Error::msg("netns network", "the context has no \"nspath\""))?;
            Ok(())
        }
        NetworkKind::Veth => {
            ctx.peer
                .as_deref()
                .ok_or_else(|| Error::msg("veth network", "the context has no \"peer\""))?;
            crate::name::check(ctx.name.as_deref().unwrap_or(DEFAULT_CHILD_NAME), "name")?;
            if let Some(a) = &ctx.address {
                addr::cidr(a, "address")?;
            }
            if let Some(g) = &ctx.gateway {
                addr::ip(g, "gateway")?;
            }
            Ok(())
        }
    }
}

/// Checks the addresses of `routes`, before anything is done.
fn check_routes(routes: &[Route]) -> Result<()> {
    for (i, r) in routes.iter().enumerate() {
        route_spec(Some(i), &r.destination, &r.source, &r.gateway)?;
    }
    Ok(())
}

/// A route's addresses parsed (the output interface still unknown); errors name the field.
fn route_spec(
    index: Option<usize>,
    destination: &Option<String>,
    source: &Option<String>,
    gateway: &Option<String>,
) -> Result<RouteSpec> {
    let field = |f: &str| match index {
        Some(i) => format!("routes[{i}].{f}"),
        None => f.to_string(),
    };
    Ok(RouteSpec {
        destination: destination
            .as_deref()
            .map(|d| addr::cidr(d, &field("destination")))
            .transpose()?,
        source: source
            .as_deref()
            .map(|s| addr::cidr(s, &field("source")))
            .transpose()?,
        gateway: gateway
            .as_deref()
            .map(|g| addr::ip(g, &field("gateway")))
            .transpose()?,
        oif: 0,
    })
}

/// How an interface name reads in an error: `lo` bare, others quoted.
fn shown(name: &str) -> String {
    if name == "lo" {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

/// Looks interface `name` up; its absence is an error saying what was expected.
fn link(nl: &mut Netlink, name: &str) -> Result<Link> {
    nl.link(name)
        .nl_ctx(|| format!("look up {}", shown(name)))?
        .ok_or_else(|| {
            if name == "lo" {
                Error::msg("lo", "no loopback interface in this namespace")
            } else {
                Error::msg(
                    format!("veth {name:?}"),
                    "is not in the container's network namespace",
                )
            }
        })
}

impl InsideStep {
    /// The step's name in plans and traces.
    fn name(&self) -> &'static str {
        match self {
            InsideStep::LinkUp { .. } => "link_up",
            InsideStep::LinkMtu { .. } => "link_mtu",
            InsideStep::LinkRename { .. } => "link_rename",
            InsideStep::AddrAdd { .. } => "addr_add",
            InsideStep::RouteAdd { .. } => "route_add",
            InsideStep::Setns { .. } => "setns",
        }
    }

    /// The step as a plan action, with its shell form.
    fn action(&self) -> Action {
        let a = Action::new(STAGE, self.name());
        match self {
            InsideStep::LinkUp { name } => a
                .arg("name", name)
                .sh(format!("ip link set {} up", quote(name))),
            InsideStep::LinkMtu { name, mtu } => a
                .arg("name", name)
                .arg("mtu", mtu)
                .sh(format!("ip link set {} mtu {mtu}", quote(name))),
            InsideStep::LinkRename { peer, name } => a
                .arg("name", name)
                .arg("peer", peer)
                .sh(format!("ip link set {} name {}", quote(peer), quote(name))),
            InsideStep::AddrAdd { name, address } => {
                a.arg("name", name).arg("address", address).sh(format!(
                    "ip addr add {} dev {}",
                    quote(address),
                    quote(name)
                ))
            }
            InsideStep::RouteAdd {
                index,
                destination,
                source,
                gateway,
                dev,
            } => {
                let dst = destination.as_deref().unwrap_or("default");
                let mut a = a.arg("destination", dst);
                let mut line = format!("ip route add {}", quote(dst));
                if let Some(s) = source {
                    a = a.arg("source", s);
                    line.push_str(&format!(" from {}", quote(s)));
                }
                if let Some(g) = gateway {
                    a = a.arg("gateway", g);
                    line.push_str(&format!(" via {}", quote(g)));
                }
                line.push_str(&format!(" dev {}", quote(dev)));
                if let Some(i) = index {
                    a = a.arg("route", i);
                }
                a.arg("dev", dev).sh(line)
            }
            InsideStep::Setns { path } => a.arg("path", path).sh(format!(
                "# nsenter --net={}: ns-init joins this network namespace; what follows runs in it",
                quote(path)
            )),
        }
    }

    /// Takes the step; `nl` is the socket of the current namespace, opened when first needed.
    fn run(&self, nl: &mut Option<Netlink>) -> Result<()> {
        if let InsideStep::Setns { path } = self {
            let fd = open(
                path.as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| format!("open netns {path}"))?;
            common::sys::setns(&fd, libc::CLONE_NEWNET).ctx(|| format!("join netns {path}"))?;
            // The socket would keep acting in the namespace just left.
            *nl = None;
            return Ok(());
        }
        let nl = match nl {
            Some(nl) => nl,
            None => nl.insert(Netlink::open()?),
        };
        match self {
            InsideStep::LinkUp { name } => {
                let l = link(nl, name)?;
                nl.set_up(l.index, true)
                    .nl_ctx(|| format!("bring {} up", shown(name)))
            }
            InsideStep::LinkMtu { name, mtu } => {
                let l = link(nl, name)?;
                nl.set_mtu(l.index, *mtu)
                    .nl_ctx(|| format!("set the MTU of {} to {mtu}", shown(name)))
            }
            InsideStep::LinkRename { peer, name } => {
                let l = link(nl, peer)?;
                // A rename needs the link down; the peer is created down, but make sure.
                if l.up {
                    nl.set_up(l.index, false)
                        .nl_ctx(|| format!("bring {peer:?} down"))?;
                }
                nl.rename(l.index, name)
                    .nl_ctx(|| format!("rename {peer:?} to {name:?}"))
            }
            InsideStep::AddrAdd { name, address } => {
                let a = addr::cidr(address, "address")?;
                let l = link(nl, name)?;
                nl.add_address(l.index, a)
                    .nl_ctx(|| format!("add address {}/{} to {name:?}", a.addr, a.len))
            }
            InsideStep::RouteAdd {
                index,
                destination,
                source,
                gateway,
                dev,
            } => {
                let spec = route_spec(*index, destination, source, gateway)?;
                let Some(i) = index else {
                    // A network's default route via its gateway.
                    let l = link(nl, dev)?;
                    let g = spec.gateway.map_or(String::new(), |g| g.to_string());
                    return nl
                        .add_route(&RouteSpec {
                            oif: l.index,
                            ..spec
                        })
                        .nl_ctx(|| format!("add default route via {g} on {dev:?}"));
                };
                let what = format!("routes[{i}]");
                let l = nl
                    .link(dev)
                    .nl_ctx(|| format!("{what}: look up {dev:?}"))?
                    .ok_or_else(|| {
                        Error::msg(format!("{what}: interface {dev:?}"), "does not exist")
                    })?;
                nl.add_route(&RouteSpec {
                    oif: l.index,
                    ..spec
                })
                .nl_ctx(|| {
                    let dst = destination.as_deref().unwrap_or("default");
                    let via = gateway
                        .as_deref()
                        .map_or(String::new(), |g| format!(" via {g}"));
                    format!("{what}: add route {dst}{via} dev {dev}")
                })
            }
            InsideStep::Setns { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn veth() -> NetContext {
        NetContext {
            host: Some("vethaaaaaaa".into()),
            peer: Some("vethbbbbbbb".into()),
            name: Some("eth0".into()),
            address: Some("198.18.0.2/24".into()),
            gateway: Some("198.18.0.1".into()),
            mtu: Some(1400),
            ..NetContext::new(NetworkKind::Veth)
        }
    }

    fn steps_of(actions: &[Action]) -> Vec<(&str, Option<&str>)> {
        actions
            .iter()
            .map(|a| (a.step.as_str(), a.what()))
            .collect()
    }

    fn shell_of(actions: &[Action]) -> Vec<String> {
        actions.iter().flat_map(|a| a.shell.clone()).collect()
    }

    #[test]
    fn a_veth_context_becomes_ip_commands() {
        let a = inside_actions(&[veth()], &[]);
        assert!(a.iter().all(|a| a.stage == "ns-init"));
        assert_eq!(
            steps_of(&a),
            [
                ("link_up", Some("lo")),
                ("link_rename", Some("eth0")),
                ("link_mtu", Some("eth0")),
                ("addr_add", Some("eth0")),
                ("link_up", Some("eth0")),
                ("route_add", None),
            ]
        );
        assert_eq!(
            shell_of(&a),
            [
                "ip link set lo up",
                "ip link set vethbbbbbbb name eth0",
                "ip link set eth0 mtu 1400",
                "ip addr add 198.18.0.2/24 dev eth0",
                "ip link set eth0 up",
                "ip route add default via 198.18.0.1 dev eth0",
            ]
        );
        assert_eq!(
            serde_json::to_value(&a[5]).unwrap(),
            serde_json::json!({"stage": "ns-init", "step": "route_add", "destination": "default",
                "gateway": "198.18.0.1", "dev": "eth0"})
        );
    }

    #[test]
    fn optional_parts_are_left_out() {
        let mut c = NetContext::new(NetworkKind::Veth);
        c.peer = Some("eth0".into());
        let a = inside_actions(&[c], &[]);
        // No rename when the peer already has its name; no MTU, address or route.
        assert_eq!(
            steps_of(&a),
            [("link_up", Some("lo")), ("link_up", Some("eth0"))]
        );
    }

    #[test]
    fn loopback_netns_and_routes() {
        let mut lo = NetContext::new(NetworkKind::Loopback);
        lo.mtu = Some(16384);
        let mut ns = NetContext::new(NetworkKind::Netns);
        ns.nspath = Some("/run/netns/other ns".into());
        let routes: Vec<Route> = serde_json::from_value(serde_json::json!([
            {"destination": "198.19.0.0/16", "gateway": "198.18.3.1", "interface_name": "net0"},
            {"destination": "198.18.200.0/24", "source": "198.18.3.0/24", "interface_name": "net0"},
        ]))
        .unwrap();
        let a = inside_actions(&[lo, ns], &routes);
        assert_eq!(
            steps_of(&a),
            [
                ("link_mtu", Some("lo")),
                ("link_up", Some("lo")),
                ("setns", Some("/run/netns/other ns")),
                ("route_add", None),
                ("route_add", None),
            ]
        );
        assert_eq!(
            shell_of(&a),
            [
                "ip link set lo mtu 16384",
                "ip link set lo up",
                "# nsenter --net='/run/netns/other ns': ns-init joins this network namespace; \
                 what follows runs in it",
                "ip route add 198.19.0.0/16 via 198.18.3.1 dev net0",
                "ip route add 198.18.200.0/24 from 198.18.3.0/24 dev net0",
            ]
        );
        assert_eq!(a[3].args["route"], 0);
        assert_eq!(a[4].args["route"], 1);
    }

    #[test]
    fn bad_values_fail_before_the_first_step() {
        // Without privileges or netlink: each fails in the checks, before any step runs.
        let mut c = veth();
        c.address = Some("198.18.0.2".into());
        let e = apply(&[c], &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "address \"198.18.0.2\": not an address in CIDR form (a.b.c.d/n)"
        );
        let mut c = veth();
        c.peer = None;
        let e = apply(&[c], &[]).unwrap_err().to_string();
        assert_eq!(e, "veth network: the context has no \"peer\"");
        let routes: Vec<Route> = serde_json::from_value(
            serde_json::json!([{"destination": "nope", "interface_name": "eth0"}]),
        )
        .unwrap();
        let e = apply(&[], &routes).unwrap_err().to_string();
        assert!(e.starts_with("routes[0].destination \"nope\""), "{e}");
    }
}
