//! The order of ns-init's steps, and where their errors go.
//!
//! Ordering constraints (docs/architecture.md):
//! - nothing happens before `go`: the host side must have placed the process in its cgroup
//!   and network first;
//! - a cgroup namespace is unshared after `go`, so its root is the container's cgroup;
//! - `setsid` before anything opens a terminal, so the command never shares the caller's
//!   session (TIOCSTI injection);
//! - mounts and `pivot_root` before the user lookup, which must read the container's
//!   `/etc/passwd`, not the host's;
//! - identity last: after it the process can no longer mount or set the hostname;
//! - signals reset and every fd above 2 marked close-on-exec right before `execve`; the sync
//!   socket is one of them, so a successful exec shows on the parent's side as EOF.

use nix::sched::{CloneFlags, unshare};
use std::convert::Infallible;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use common::config::Config;
use common::ns::Namespace;
use common::sync::SyncSocket;
use common::{Context, Result, fault, ns_log};
use ns_init::console::Console;
use ns_init::{exec, rootfs};

use crate::cli::{Args, ConfigSource};

/// Runs the setup and execs the command; never returns.
pub fn run(args: Args) -> ! {
    let sync = args.sync.map(SyncSocket::from_fd);
    if let Some(log) = args.log {
        common::log::init(File::from(log), "ns-init");
    }
    let config = args.config;
    let err = match setup_and_exec(config, &args.command, args.console, sync.as_ref()) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    ns_log!("failed: {err}");
    match &sync {
        // ns-exec prints it; printing here too would show the line twice.
        Some(s) => {
            s.report_error("ns-init", &err);
            std::process::exit(err.code)
        }
        None => common::cli::fatal("ns-init", &err),
    }
}

fn setup_and_exec(
    source: ConfigSource,
    command: &[std::ffi::OsString],
    console: Option<std::os::fd::OwnedFd>,
    sync: Option<&SyncSocket>,
) -> Result<Infallible> {
    let config = read_config(source)?;
    let console = console.map(Console::new).transpose()?;
    let mut networks = Vec::new();
    if let Some(s) = sync {
        s.announce_ready()?;
        networks = s.wait_for_go()?;
        ns_log!("go received");
    }
    fault::point("ns-init", "after-go")?;
    ns_veth::apply(&networks, &config.routes).map_err(|e| e.context("network"))?;
    nix::unistd::setsid().ctx(|| "setsid (ns-init must not lead a process group)".into())?;
    if config.has_namespace(Namespace::Cgroup) {
        unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare the cgroup namespace".into())?;
    }
    if let Some(console) = &console {
        console.make_stdio()?;
    }
    rootfs::setup(&config, console.as_ref())?;
    ns_log!("root filesystem ready");
    let console = match console {
        None if config.tty => Some(console_inside(sync)?),
        other => other,
    };
    fault::point("ns-init", "after-rootfs")?;
    if let Some(name) = config.hostname.as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(name).ctx(|| format!("set hostname {name:?}"))?;
    }
    Err(exec::finish(&config, command, console.as_ref()))
}

/// Allocates the container's terminal in its own devpts (after the root switch), makes it
/// `/dev/console`, stdio and the controlling terminal, and hands the master to ns-exec, which
/// relays it; waits for ns-exec's `go` again, so the relay (and the window size) is in place
/// before the command starts. So `tty` inside names `/dev/pts/N` of the container's devpts,
/// and no host pts path is ever opened in the container (CVE-2025-52565).
fn console_inside(sync: Option<&SyncSocket>) -> Result<Console> {
    let sync = sync.ok_or_else(|| {
        common::Error::msg(
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
