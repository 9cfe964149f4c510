//! The container's setup from the config to the exec, whoever runs it: the ns-init program
//! (`main.rs`), or ns-exec's cloned child, which runs this same code without exec'ing ns-init
//! (ns-exec(1), "The container's first process").
//!
//! The steps and their order come from [`crate::plan::steps`] (the module documents why);
//! [`setup_and_exec`] walks them, recording each in the trace under the name the plan prints.
//! Before the first step it announces `ready` and waits for `go` from the host side: ns-exec
//! over the sync socket, or a script over a pipe (docs/handoff.md §5), or nobody when ns-init
//! runs alone.

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::{CloneFlags, unshare};

use common::config::Config;
use common::net::NetContext;
use common::sync::SyncSocket;
use common::{Context, Error, Result, fault, ns_log, sync_pipe, trace};

use crate::console::Console;
use crate::exec::{self, Launcher};
use crate::plan::{self, InitStep, STAGE};
use crate::rootfs;

/// What ns-exec's clone left to ns-init, beyond the config: it changes when ns-init waits for
/// `go` and which steps it takes. ns-init run as a program (a script's, or `ns-exec --init`'s)
/// cannot know either, and takes the default: neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cloned {
    /// The process is already in every cgroup it will be in (cloned into its cgroup2
    /// directory, with no v1 hierarchy to join): it may run its own setup before `go` even
    /// when the config has a cgroup ([`InitStep::needs_go`]).
    pub placed: bool,
    /// The clone made no network namespace: ns-exec makes it beside the clone and sends it on
    /// the sync socket, and ns-init joins it before it mounts `/sys`
    /// ([`crate::rootfs::Step::JoinNetns`]).
    pub netns_beside: bool,
}

/// Who releases the container's first process.
pub enum Host {
    /// ns-exec, over the sync socket.
    Socket(SyncSocket),
    /// A script, over a pipe (taken when read).
    Pipe(Option<OwnedFd>),
    /// Nobody: ns-init runs alone.
    Alone,
}

impl Host {
    /// Announces `ready`: on the sync socket, or on `ready` (a script's pipe).
    fn announce_ready(&mut self, ready: Option<OwnedFd>) -> Result<()> {
        if let Some(fd) = ready {
            sync_pipe::announce_ready(fd)?;
        }
        if let Host::Socket(s) = self {
            s.announce_ready()?;
        }
        Ok(())
    }

    /// Waits for `go`; returns the network contexts it brought, and the network namespace
    /// when ns-exec sent it first (to a child that waits for `go` before it joins it).
    fn wait_for_go(&mut self) -> Result<(Vec<NetContext>, Option<OwnedFd>)> {
        let got = match self {
            Host::Socket(s) => {
                let go = s.wait_for_go()?;
                (go.networks, go.netns)
            }
            Host::Pipe(fd) => match fd.take() {
                Some(fd) => (sync_pipe::wait_for_go(fd)?, None),
                None => (Vec::new(), None),
            },
            Host::Alone => (Vec::new(), None),
        };
        ns_log!("go received");
        Ok(got)
    }

    /// Receives the network namespace ns-exec made beside the clone.
    fn netns(&self) -> Result<OwnedFd> {
        match self {
            Host::Socket(s) => s.recv_netns(),
            _ => Err(Error::msg(
                "join the network namespace",
                "only ns-exec sends one, and it is not the host side here",
            )),
        }
    }

    /// The host behind the sync fd `fd`: a pipe is a script's, a socket is ns-exec's.
    pub fn new(fd: Option<OwnedFd>) -> Result<Host> {
        Ok(match fd {
            None => Host::Alone,
            Some(fd) if sync_pipe::is_pipe(&fd)? => Host::Pipe(Some(fd)),
            Some(fd) => Host::Socket(SyncSocket::from_fd(fd)),
        })
    }

    /// The sync socket, when ns-exec is the host.
    pub fn socket(&self) -> Option<&SyncSocket> {
        match self {
            Host::Socket(s) => Some(s),
            _ => None,
        }
    }
}

/// Announces `ready` (also on `ready`, a script's pipe), sets the container up as `config`
/// says and execs `command` as `launcher` says. Returns only on failure. The steps before the
/// first that needs the host side ([`InitStep::needs_go`]) run while the host side works (for
/// a config without networks: the session, the root filesystem and the hostname); then it
/// waits for `go`, and runs the rest. `cloned` says what the clone left to do.
pub fn setup_and_exec(
    config: &Config,
    command: &[std::ffi::OsString],
    console: Option<OwnedFd>,
    ready: Option<OwnedFd>,
    host: &mut Host,
    launcher: &Launcher<'_>,
    cloned: Cloned,
) -> Result<Infallible> {
    let mut console = console.map(Console::new).transpose()?;
    host.announce_ready(ready)?;
    let mut networks = None;
    // The network namespace, when it came with `go` rather than at its step.
    let mut netns_first = None;
    for step in plan::steps(config, console.is_some(), cloned.netns_beside)? {
        if networks.is_none() && step.needs_go(config, cloned.placed) {
            let (contexts, netns) = host.wait_for_go()?;
            networks = Some(contexts);
            netns_first = netns;
            fault::point(STAGE, "after-go")?;
        }
        let name = step.name();
        let traced = |f: &mut dyn FnMut() -> Result<()>| trace::step(STAGE, name, None, f);
        let what = match &step {
            InitStep::Hostname(h) => Some(h.clone()),
            _ => None,
        };
        match step {
            // Each of its actions is traced by ns_veth::apply.
            InitStep::Network => {
                let contexts = networks.as_deref().unwrap_or_default();
                ns_veth::apply(contexts, &config.routes).map_err(|e| e.context("network"))?;
            }
            InitStep::Setsid => traced(&mut || {
                nix::unistd::setsid()
                    .map(drop)
                    .ctx(|| "setsid (ns-init must not lead a process group)".into())
            })?,
            InitStep::UnshareCgroupns => traced(&mut || {
                unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare the cgroup namespace".into())
            })?,
            InitStep::ConsoleStdio => traced(&mut || match &console {
                Some(c) => c.make_stdio(),
                None => Ok(()),
            })?,
            // Each of its steps is traced by rootfs::apply.
            InitStep::Rootfs(steps) => {
                let mut netns = || match netns_first.take() {
                    Some(fd) => Ok(fd),
                    None => host.netns(),
                };
                rootfs::apply(&steps, console.as_ref(), &mut netns)?;
                ns_log!("root filesystem ready");
                fault::point(STAGE, "after-rootfs")?;
            }
            InitStep::ConsoleInside => {
                let made = trace::step(STAGE, name, None, || console_inside(host.socket()))?;
                console = Some(made);
            }
            InitStep::Hostname(h) => trace::step(STAGE, name, what.as_deref(), || {
                nix::unistd::sethostname(&h).ctx(|| format!("set hostname {h:?}"))
            })?,
            // The identity and the exec are one function, shared with `ns-exec enter`.
            InitStep::Identity => {
                return Err(exec::finish(config, command, console.as_ref(), launcher));
            }
            InitStep::Exec => {}
        }
    }
    Err(Error::msg("ns-init", "the plan ended without an exec"))
}

/// Allocates the container's terminal in its own devpts (after the root switch), makes it
/// `/dev/console`, stdio and the controlling terminal, and hands the master to ns-exec, which
/// relays it; waits for ns-exec's `go` again, so the relay (and the window size) is in place
/// before the command starts. So `tty` inside names `/dev/pts/N` of the container's devpts,
/// and no host pts path is ever opened in the container (CVE-2025-52565).
fn console_inside(sync: Option<&SyncSocket>) -> Result<Console> {
    let sync = sync.ok_or_else(|| {
        Error::msg(
            "console",
            "a terminal (tty) needs a pts handed in (--console-fd) or ns-exec to relay one",
        )
    })?;
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "console: open /".into())?;
    let (master, console) = crate::console::open_in_container(root.as_fd())?;
    console.bind_dev_console(root.as_fd())?;
    console.make_stdio()?;
    sync.send_console(master.as_fd())?;
    drop(master);
    sync.wait_for_go()?;
    Ok(console)
}
