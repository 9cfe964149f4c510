//! The order of ns-init's steps, and where their errors go.
//!
//! The steps and their order come from [`ns_init::plan::steps`] (the module documents why);
//! this file walks them, recording each in the trace under the name the plan prints. Before
//! the first step: read the config, announce `ready` and wait for `go` from the host side. The
//! host side is ns-exec over the sync socket, or a script over a pipe (docs/handoff.md §5), or
//! nobody when ns-init runs alone.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::{CloneFlags, unshare};

use common::config::Config;
use common::net::NetContext;
use common::plan::Plan;
use common::sync::SyncSocket;
use common::{Context, Error, Result, fault, ns_log, sync_pipe, trace};
use ns_init::console::Console;
use ns_init::plan::{InitStep, STAGE};
use ns_init::{exec, identity, plan, rootfs};

use crate::cli::{Args, ConfigSource};

/// Who released ns-init.
enum Host {
    /// ns-exec, over the sync socket.
    Socket(SyncSocket),
    /// A script, over a pipe (taken when read).
    Pipe(Option<OwnedFd>),
    /// Nobody: ns-init runs alone.
    Alone,
}

impl Host {
    fn new(fd: Option<OwnedFd>) -> Result<Host> {
        Ok(match fd {
            None => Host::Alone,
            Some(fd) if sync_pipe::is_pipe(&fd)? => Host::Pipe(Some(fd)),
            Some(fd) => Host::Socket(SyncSocket::from_fd(fd)),
        })
    }

    /// Announces `ready` and waits for `go`; returns the network contexts it brought.
    fn ready_then_go(&mut self, ready: Option<OwnedFd>) -> Result<Vec<NetContext>> {
        if let Some(fd) = ready {
            sync_pipe::announce_ready(fd)?;
        }
        let networks = match self {
            Host::Socket(s) => {
                s.announce_ready()?;
                s.wait_for_go()?
            }
            Host::Pipe(fd) => match fd.take() {
                Some(fd) => sync_pipe::wait_for_go(fd)?,
                None => Vec::new(),
            },
            Host::Alone => Vec::new(),
        };
        ns_log!("go received");
        Ok(networks)
    }

    fn socket(&self) -> Option<&SyncSocket> {
        match self {
            Host::Socket(s) => Some(s),
            _ => None,
        }
    }
}

/// Runs the setup and execs the command; never returns.
pub fn run(args: Args) -> ! {
    if let Some(log) = args.log {
        common::log::init(File::from(log), "ns-init");
    }
    let mut host = match Host::new(args.sync) {
        Ok(h) => h,
        Err(e) => common::cli::fatal(STAGE, &e),
    };
    let err = match trace::init_from_env().and_then(|()| {
        setup_and_exec(
            args.config,
            &args.command,
            args.console,
            args.ready,
            &mut host,
        )
    }) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    ns_log!("failed: {err}");
    match host.socket() {
        // ns-exec prints it; printing here too would show the line twice.
        Some(s) => {
            s.report_error(STAGE, &err);
            std::process::exit(err.code)
        }
        None => common::cli::fatal(STAGE, &err),
    }
}

/// Prints the plan (`--plan`) or its shell form (`--explain`); changes nothing.
pub fn print_plan(args: Args, explain: bool) -> Result<()> {
    let config = read_config(args.config)?;
    let root = config
        .rootfs
        .clone()
        .ok_or_else(|| Error::msg("plan", "the config names no rootfs"))?;
    let id = identity::lookup_in(&root, config.user.as_deref())?;
    let actions = plan::actions(&config, &args.command, &[], args.console.is_some(), &id)?;
    let plan = Plan::new(STAGE, actions);
    let text = if explain {
        plan.to_shell(
            "ns-init --explain: the container's setup with util-linux and iproute2.\n\
             Run it inside the container's new namespaces, as ns-init would be run:\n\
             unshare --mount --uts --ipc --pid --net --fork sh THIS-FILE",
        )
    } else {
        plan.to_json()
    };
    common::cli::print(&text)
}

fn setup_and_exec(
    source: ConfigSource,
    command: &[std::ffi::OsString],
    console: Option<OwnedFd>,
    ready: Option<OwnedFd>,
    host: &mut Host,
) -> Result<Infallible> {
    let config = read_config(source)?;
    let mut console = console.map(Console::new).transpose()?;
    let networks = host.ready_then_go(ready)?;
    fault::point(STAGE, "after-go")?;
    for step in plan::steps(&config, console.is_some())? {
        let name = step.name();
        let traced = |f: &mut dyn FnMut() -> Result<()>| trace::step(STAGE, name, None, f);
        let what = match &step {
            InitStep::Hostname(h) => Some(h.clone()),
            _ => None,
        };
        match step {
            // Each of its actions is traced by ns_veth::apply.
            InitStep::Network => {
                ns_veth::apply(&networks, &config.routes).map_err(|e| e.context("network"))?;
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
                rootfs::apply(&steps, console.as_ref())?;
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
                return Err(exec::finish(&config, command, console.as_ref()));
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
    let (master, console) = ns_init::console::open_in_container(root.as_fd())?;
    console.bind_dev_console(root.as_fd())?;
    console.make_stdio()?;
    sync.send_console(master.as_fd())?;
    drop(master);
    sync.wait_for_go()?;
    Ok(console)
}

/// Reads the config. From a file, a relative rootfs is relative to the file's folder; from an
/// fd (ns-exec's canonical copy), the rootfs is already absolute.
fn read_config(source: ConfigSource) -> Result<Config> {
    match source {
        ConfigSource::File(path) => Config::load(&path, None),
        ConfigSource::Fd(fd) => Config::read(File::from(fd), Some(Path::new("."))),
    }
}
