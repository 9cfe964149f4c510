//! The host side of a network: make what the container's namespace needs, from outside it.
//!
//! It is planned, then applied. [`plan_host_side`] checks everything it can without making
//! anything: the names, the target namespace (opened, and kept open for the apply), the bridge
//! (it exists and is a bridge); it picks the random host and peer names and lists the actions
//! ([`HostPlan::actions`], stage `ns-veth`). [`HostPlan::apply`] then walks exactly those
//! actions, each recorded in the stage trace (`NS_TRACE`) under its step name, so a missing
//! bridge or a dead target leaves nothing behind, and `ns-veth add --plan` shows what a real
//! run does. The steps of a `veth` network:
//!
//! - `link_add`: create the pair, the peer directly in the target namespace
//!   (`ip link add H [mtu N] type veth peer name P [mtu N] netns T`);
//! - `set_master`: attach the host end to the bridge (`ip link set H master BR`);
//! - `set_up`: bring the host end up (`ip link set H up`).
//!
//! The pair is created in one request with the peer placed in the target namespace
//! (`IFLA_NET_NS_FD` on the peer), so the kernel deletes the pair whenever that namespace dies:
//! if ns-veth or ns-exec is killed halfway, nothing leaks. If a step after `link_add` fails,
//! the pair is deleted again (recorded as step `link_del`). A generated name that exists by
//! the time of the apply (`EEXIST`) is retried with new names within `link_add`; the context
//! [`HostPlan::apply`] returns then has the real names. `loopback` and `netns` make nothing on
//! the host: their plans have no actions, and their context only carries the config on.
//!
//! A plan can be made before the container exists ([`Target::Unknown`], for `ns-exec --plan`):
//! the target is then not opened, its shell form is `"$pid"`, and such a plan cannot be applied.
//!
//! Fault points (`NS_FAULT`, docs/handoff.md §10), stage `ns-veth` also when ns-exec calls
//! the library, taken between steps: `after-create` (after `link_add`) and `after-attach`
//! (after `set_master`).
//!
//! Deleting ([`undo`], `ns-veth del`) only ever removes a veth, never an interface of another
//! kind, so a mistyped name cannot take down a bridge or a physical interface.

use common::config::{Network, NetworkKind};
use common::net::{DEFAULT_CHILD_NAME, NetContext};
use common::plan::{Action, quote, quote_os};
use common::{Context, Error, Result, trace};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, fstat};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::netlink::{Link, Netlink, NlContext};
use crate::{addr, name};

/// The stage name in host-side plans and traces.
pub const STAGE: &str = "ns-veth";
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
    /// The container's network namespace, not made yet: only for a plan shown before the
    /// container starts (`ns-exec --plan`). It is not opened, its shell form is `"$pid"`, and
    /// a plan for it cannot be applied.
    Unknown,
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
            Target::Unknown => {
                return Err(Error::msg(
                    "target",
                    "the container's network namespace is not made yet (a plan only)",
                ));
            }
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

    /// The target as the `netns` parameter of a plan: `pid 1234`, the path, or
    /// `the container's (not made yet)`.
    pub fn describe(&self) -> String {
        match self {
            Target::Pid(pid) => format!("pid {pid}"),
            Target::Netns(p) => p.to_string_lossy().into_owned(),
            Target::Unknown => "the container's (not made yet)".to_string(),
        }
    }

    /// The target as the word after `ip link add ... netns`: the pid, the path (iproute2 opens
    /// a word with a `/` as a path, and looks any other up in `/run/netns`, hence `./` before
    /// a bare relative name), or `"$pid"`.
    pub fn shell_word(&self) -> String {
        match self {
            Target::Pid(pid) => pid.to_string(),
            Target::Netns(p) if p.as_os_str().as_encoded_bytes().contains(&b'/') => {
                quote_os(p.as_os_str())
            }
            Target::Netns(p) => quote_os(Path::new(".").join(p).as_os_str()),
            Target::Unknown => "\"$pid\"".to_string(),
        }
    }
}

/// The host side of one network, checked and ready to apply: [`plan_host_side`].
#[derive(Debug)]
pub struct HostPlan {
    /// The actions, in order (stage `ns-veth`); empty for `loopback` and `netns`.
    actions: Vec<Action>,
    /// The context the apply produces (with the planned names).
    context: NetContext,
    /// What the veth actions need; `None` for the other strategies.
    veth: Option<VethPlan>,
}

/// A veth's part of a plan: what its actions act on.
#[derive(Debug)]
struct VethPlan {
    /// The steps, one per action.
    steps: Vec<HostStep>,
    /// The target, for the shell forms of retried names.
    target: Target,
    /// The target namespace, opened by the plan; `None` for [`Target::Unknown`].
    netns: Option<OwnedFd>,
    bridge: String,
    prefix: String,
    mtu: Option<u32>,
}

/// The host-side steps of a veth, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostStep {
    /// Create the pair, the peer in the target namespace.
    LinkAdd,
    /// Attach the host end to the bridge.
    SetMaster,
    /// Bring the host end up.
    SetUp,
}

impl HostStep {
    const ALL: [HostStep; 3] = [HostStep::LinkAdd, HostStep::SetMaster, HostStep::SetUp];

    /// The step's name in plans and traces.
    fn name(self) -> &'static str {
        match self {
            HostStep::LinkAdd => "link_add",
            HostStep::SetMaster => "set_master",
            HostStep::SetUp => "set_up",
        }
    }

    /// The step as an action on the host end `host` and the peer `peer`.
    fn action(self, v: &VethPlan, host: &str, peer: &str) -> Action {
        let a = Action::new(STAGE, self.name()).arg("name", host);
        match self {
            HostStep::LinkAdd => {
                let mtu = v.mtu.map_or(String::new(), |m| format!(" mtu {m}"));
                let mut a = a.arg("peer", peer);
                if let Some(m) = v.mtu {
                    a = a.arg("mtu", m);
                }
                a.arg("netns", v.target.describe()).sh(format!(
                    "ip link add {}{mtu} type veth peer name {}{mtu} netns {}",
                    quote(host),
                    quote(peer),
                    v.target.shell_word()
                ))
            }
            HostStep::SetMaster => a.arg("bridge", &v.bridge).sh(format!(
                "ip link set {} master {}",
                quote(host),
                quote(&v.bridge)
            )),
            HostStep::SetUp => a.sh(format!("ip link set {} up", quote(host))),
        }
    }
}

impl HostPlan {
    /// The actions the apply takes, in order.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The context the apply produces. A veth's names are the planned ones: should one be
    /// taken by the time of the apply, the apply picks others and returns them.
    pub fn context(&self) -> &NetContext {
        &self.context
    }

    /// Takes the actions, in order, each recorded in the trace; returns the context. On
    /// failure, nothing it made is left.
    pub fn apply(self) -> Result<NetContext> {
        let HostPlan {
            mut actions,
            mut context,
            veth,
        } = self;
        let Some(v) = veth else {
            return Ok(context);
        };
        let netns = v.netns.as_ref().ok_or_else(|| {
            Error::msg(
                "apply the host side",
                "the plan was made for a network namespace that did not exist yet",
            )
        })?;
        let mut run = Run {
            nl: Netlink::open()?,
            host: context.host.clone().unwrap_or_default(),
            peer: context.peer.clone().unwrap_or_default(),
            index: None,
            made: false,
        };
        let planned = run.host.clone();
        let mut result = Ok(());
        for (i, step) in v.steps.iter().enumerate() {
            result = trace::action(&actions[i], || run.step(*step, &v, netns));
            if result.is_ok() && *step == HostStep::LinkAdd && run.host != planned {
                // Retried with other names: the later steps act on (and record) the real ones.
                actions = v
                    .steps
                    .iter()
                    .map(|s| s.action(&v, &run.host, &run.peer))
                    .collect();
            }
            result = result.and_then(|()| match step {
                HostStep::LinkAdd => common::fault::point(STAGE, "after-create"),
                HostStep::SetMaster => common::fault::point(STAGE, "after-attach"),
                HostStep::SetUp => Ok(()),
            });
            if result.is_err() {
                break;
            }
        }
        if let Err(e) = result {
            if run.made {
                run.roll_back();
            }
            return Err(e);
        }
        context.host = Some(run.host);
        context.peer = Some(run.peer);
        Ok(context)
    }
}

/// The state of a veth's apply.
struct Run {
    nl: Netlink,
    /// The host end's name (the planned one until a retry changes it).
    host: String,
    /// The peer's name.
    peer: String,
    /// The host end's interface index, once looked up.
    index: Option<u32>,
    /// Whether the pair exists (to be deleted on failure).
    made: bool,
}

impl Run {
    fn step(&mut self, step: HostStep, v: &VethPlan, netns: &OwnedFd) -> Result<()> {
        match step {
            HostStep::LinkAdd => self.link_add(v, netns),
            HostStep::SetMaster => {
                let br = bridge(&mut self.nl, &v.bridge)?;
                let index = self.index()?;
                let (host, bridge) = (&self.host, &v.bridge);
                self.nl
                    .set_master(index, br.index)
                    .nl_ctx(|| format!("attach {host:?} to bridge {bridge:?}"))
            }
            HostStep::SetUp => {
                let index = self.index()?;
                let host = &self.host;
                self.nl
                    .set_up(index, true)
                    .nl_ctx(|| format!("bring {host:?} up"))
            }
        }
    }

    /// Creates the pair with the planned names, or on `EEXIST` with new ones.
    fn link_add(&mut self, v: &VethPlan, netns: &OwnedFd) -> Result<()> {
        let (mut host, mut peer) = (self.host.clone(), self.peer.clone());
        for _ in 0..NAME_TRIES {
            match self.nl.create_veth(&host, &peer, v.mtu, netns.as_fd()) {
                Ok(()) => {
                    (self.host, self.peer, self.made) = (host, peer, true);
                    return Ok(());
                }
                Err(e) if e.errno == Errno::EEXIST => (host, peer) = names(&v.prefix)?,
                Err(e) => return Err(e.into_error(format!("create veth pair {host:?}"))),
            }
        }
        Err(Error::msg(
            format!("create veth pair with prefix {:?}", v.prefix),
            format!("every one of {NAME_TRIES} random names was taken"),
        ))
    }

    /// The host end's index, looked up once.
    fn index(&mut self) -> Result<u32> {
        if let Some(i) = self.index {
            return Ok(i);
        }
        let host = &self.host;
        let link = self
            .nl
            .link(host)
            .nl_ctx(|| format!("look up {host:?}"))?
            .ok_or_else(|| Error::msg(format!("veth {host:?}"), "vanished after creation"))?;
        self.index = Some(link.index);
        Ok(link.index)
    }

    /// Deletes the pair again (deleting one end deletes both). A failure here cannot be
    /// reported better than the original error, which is what the caller needs to see.
    fn roll_back(&mut self) {
        let host = self.host.clone();
        let _ = trace::step(STAGE, "link_del", Some(&host), || {
            let index = self.index()?;
            self.nl.delete(index).nl_ctx(|| format!("delete {host:?}"))
        });
    }
}

/// Two different random names from `prefix`.
fn names(prefix: &str) -> Result<(String, String)> {
    loop {
        let (host, peer) = (name::random(prefix)?, name::random(prefix)?);
        if host != peer {
            return Ok((host, peer));
        }
    }
}

/// Looks the bridge up: it must exist and be a bridge.
fn bridge(nl: &mut Netlink, bridge: &str) -> Result<Link> {
    let br = nl
        .link(bridge)
        .nl_ctx(|| format!("look up bridge {bridge:?}"))?
        .ok_or_else(|| plain(format!("bridge {bridge:?} does not exist")))?;
    if br.kind.as_deref() != Some("bridge") {
        return Err(plain(format!("{bridge:?} is not a bridge")));
    }
    Ok(br)
}

/// Plans the host side of one `networks[]` entry against `target`, making nothing: checks the
/// values, opens the target (unless [`Target::Unknown`]), looks the bridge up and picks the
/// names.
pub fn plan_host_side(net: &Network, target: &Target) -> Result<HostPlan> {
    let mut ctx = NetContext::new(net.kind);
    ctx.mtu = net.mtu;
    let none = |context| HostPlan {
        actions: Vec::new(),
        context,
        veth: None,
    };
    match net.kind {
        NetworkKind::Loopback => Ok(none(ctx)),
        NetworkKind::Netns => {
            let path = net
                .context
                .get("nspath")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| Error::msg("netns network", "needs \"nspath\""))?;
            ctx.nspath = Some(path.clone());
            Ok(none(ctx))
        }
        NetworkKind::Veth => {
            let bridge_name = net
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
            name::check(bridge_name, "bridge")?;
            name::check_prefix(prefix)?;
            name::check(inside, "name")?;
            if let Some(a) = &net.address {
                addr::cidr(a, "address")?;
            }
            if let Some(g) = &net.gateway {
                addr::ip(g, "gateway")?;
            }
            let netns = match target {
                Target::Unknown => None,
                t => Some(t.open()?),
            };
            let mut nl = Netlink::open()?;
            bridge(&mut nl, bridge_name)?;
            // Names free now are very likely still free at the apply, so the plan shows the
            // names the apply uses; the apply retries on `EEXIST` anyway.
            let mut picked = None;
            for _ in 0..NAME_TRIES {
                let (host, peer) = names(prefix)?;
                if nl
                    .link(&host)
                    .nl_ctx(|| format!("look up {host:?}"))?
                    .is_none()
                {
                    picked = Some((host, peer));
                    break;
                }
            }
            let (host, peer) = picked.ok_or_else(|| {
                Error::msg(
                    format!("create veth pair with prefix {prefix:?}"),
                    format!("every one of {NAME_TRIES} random names was taken"),
                )
            })?;
            let v = VethPlan {
                steps: HostStep::ALL.to_vec(),
                target: target.clone(),
                netns,
                bridge: bridge_name.clone(),
                prefix: prefix.to_string(),
                mtu: net.mtu,
            };
            ctx.host = Some(host);
            ctx.peer = Some(peer);
            ctx.name = Some(inside.to_string());
            ctx.bridge = Some(bridge_name.clone());
            ctx.address = net.address.clone();
            ctx.gateway = net.gateway.clone();
            Ok(veth_plan(ctx, v))
        }
    }
}

/// The plan of a veth whose context `ctx` has the names.
fn veth_plan(ctx: NetContext, v: VethPlan) -> HostPlan {
    let (host, peer) = (
        ctx.host.as_deref().unwrap_or_default(),
        ctx.peer.as_deref().unwrap_or_default(),
    );
    let actions = v.steps.iter().map(|s| s.action(&v, host, peer)).collect();
    HostPlan {
        actions,
        context: ctx,
        veth: Some(v),
    }
}

/// The host side of one `networks[]` entry against `target`: [`plan_host_side`], then
/// [`HostPlan::apply`]. On failure nothing it made is left.
pub fn host_side(net: &Network, target: &Target) -> Result<NetContext> {
    plan_host_side(net, target)?.apply()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn veth(target: Target, mtu: Option<u32>) -> HostPlan {
        let mut ctx = NetContext::new(NetworkKind::Veth);
        ctx.host = Some("vethaaaaaaa".into());
        ctx.peer = Some("vethbbbbbbb".into());
        ctx.mtu = mtu;
        let v = VethPlan {
            steps: HostStep::ALL.to_vec(),
            target,
            netns: None,
            bridge: "br0".into(),
            prefix: "veth".into(),
            mtu,
        };
        veth_plan(ctx, v)
    }

    fn shell(p: &HostPlan) -> Vec<String> {
        p.actions().iter().flat_map(|a| a.shell.clone()).collect()
    }

    #[test]
    fn a_veth_is_link_add_set_master_set_up() {
        let p = veth(Target::Pid(1234), Some(1400));
        let steps: Vec<_> = p.actions().iter().map(|a| a.step.as_str()).collect();
        assert_eq!(steps, ["link_add", "set_master", "set_up"]);
        assert!(p.actions().iter().all(|a| a.stage == "ns-veth"));
        assert!(p.actions().iter().all(|a| a.what() == Some("vethaaaaaaa")));
        assert_eq!(
            serde_json::to_value(&p.actions()[0]).unwrap(),
            serde_json::json!({"stage": "ns-veth", "step": "link_add", "name": "vethaaaaaaa",
                "peer": "vethbbbbbbb", "mtu": 1400, "netns": "pid 1234"})
        );
        assert_eq!(p.actions()[1].args["bridge"], "br0");
        assert_eq!(
            shell(&p),
            [
                "ip link add vethaaaaaaa mtu 1400 type veth peer name vethbbbbbbb mtu 1400 \
                 netns 1234",
                "ip link set vethaaaaaaa master br0",
                "ip link set vethaaaaaaa up",
            ]
        );
    }

    #[test]
    fn the_target_shows_as_iproute2_reads_it() {
        let cases = [
            (
                Target::Unknown,
                "netns \"$pid\"",
                "the container's (not made yet)",
            ),
            (
                Target::Netns("/run/netns/ct 1".into()),
                "netns '/run/netns/ct 1'",
                "/run/netns/ct 1",
            ),
            // A bare word would be looked up in /run/netns.
            (Target::Netns("ctns".into()), "netns ./ctns", "ctns"),
        ];
        for (target, word, described) in cases {
            let p = veth(target, None);
            let add = &shell(&p)[0];
            assert!(add.ends_with(word), "{add}");
            assert!(!add.contains("mtu"), "{add}");
            assert_eq!(p.actions()[0].args["netns"], described);
            assert!(p.actions()[0].args.get("mtu").is_none());
        }
    }

    #[test]
    fn a_plan_for_a_namespace_not_made_yet_cannot_be_applied() {
        let e = veth(Target::Unknown, None).apply().unwrap_err().to_string();
        assert_eq!(
            e,
            "apply the host side: the plan was made for a network namespace that did not exist yet"
        );
        assert!(Target::Unknown.open().is_err());
    }

    #[test]
    fn loopback_and_netns_plan_nothing_on_the_host() {
        let lo = Network {
            kind: NetworkKind::Loopback,
            context: Default::default(),
            address: None,
            gateway: None,
            mtu: Some(9000),
        };
        let p = plan_host_side(&lo, &Target::Unknown).unwrap();
        assert!(p.actions().is_empty());
        assert_eq!(p.context().mtu, Some(9000));
        assert_eq!(p.apply().unwrap().kind, NetworkKind::Loopback);
        let ns = Network {
            kind: NetworkKind::Netns,
            context: [("nspath".to_string(), "/run/netns/x".to_string())].into(),
            ..lo
        };
        let p = plan_host_side(&ns, &Target::Pid(1)).unwrap();
        assert!(p.actions().is_empty());
        assert_eq!(p.context().nspath.as_deref(), Some("/run/netns/x"));
    }

    #[test]
    fn bad_values_fail_the_plan_before_any_lookup() {
        let net = Network {
            kind: NetworkKind::Veth,
            context: [("bridge".to_string(), "br0".to_string())].into(),
            address: Some("198.18.0.2".into()),
            gateway: None,
            mtu: None,
        };
        let e = plan_host_side(&net, &Target::Unknown)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "address \"198.18.0.2\": not an address in CIDR form (a.b.c.d/n)"
        );
    }
}
