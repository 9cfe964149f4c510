//! Entering a running container: `ns-exec enter NAME -- CMD`.
//!
//! The state file names the container's pid and start time; a pidfd opened on that pid, and
//! the start time checked again after, make sure we join that very process and not one that
//! reused its pid. ns-exec then marks itself non-dumpable, so the container's processes cannot
//! ptrace it while it holds host resources (CVE-2016-9962), and joins all the container's namespaces at once with
//! `setns(pidfd, flags)`. A new pid namespace applies only to children, so it forks: the child
//! applies the container's user, capabilities, cwd and environment with ns-init's own code and
//! execs the command; the parent waits and forwards signals, as for a new container.

use std::ffi::OsString;
use std::os::fd::AsFd;

use common::config::Config;
use common::ns::Namespace;
use common::sys::{self, Forked};
use common::{Context, Error};
use ns_init::exec;

use crate::Failure;
use crate::cli::EnterArgs;
use crate::state::{self, State};
use crate::wait::Signals;

/// `ns-exec enter`: runs the command inside the running container `args.name`.
pub fn enter(args: EnterArgs) -> Result<i32, Failure> {
    sys::close_range_from(3, true).ctx(|| "mark inherited fds close-on-exec".into())?;
    let state = state::read(&args.root, &args.name)?.ok_or_else(|| {
        Error::msg(
            format!("enter container {:?}", args.name),
            format!("no such container in {}", args.root.display()),
        )
    })?;
    if !state.is_running() {
        return Err(Error::msg(
            format!("enter container {:?}", args.name),
            format!(
                "it is not running: pid {} is gone (stale state in {})",
                state.pid,
                args.root.join(&args.name).display()
            ),
        )
        .into());
    }
    if let Some(path) = &args.log {
        if let Ok(f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            common::log::init(f, "ns-exec");
        }
    }
    enter_state(state, &args.command)
}

/// Joins the container `state` describes and runs `command` in it.
pub fn enter_state(state: State, command: &[OsString]) -> Result<i32, Failure> {
    let what = || format!("enter container {:?} (pid {})", state.name, state.pid);
    let pidfd = sys::pidfd_open(state.pid).ctx(what)?;
    // The pid could have been reused between reading the state and opening the pidfd.
    if !state.is_running() {
        return Err(Error::msg(what(), "it exited").into());
    }
    let mut signals = Signals::block(false)?;
    sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).ctx(|| "make ns-exec non-dumpable".into())?;
    let flags = state
        .config
        .namespaces
        .iter()
        .filter(|ns| **ns != Namespace::User)
        .fold(0, |f, ns| f | ns.clone_flag().bits());
    sys::setns(&pidfd, flags).ctx(what)?;

    // SAFETY: single-threaded; the child runs the last steps of ns-init and execs or exits.
    match unsafe { sys::fork_into(0) }.ctx(|| "fork into the container".into())? {
        Forked::Parent(_, child) => Ok(signals.wait_forwarding(child.as_fd(), None)?),
        Forked::Child => {
            let err = finish_and_exec(&state.config, command);
            eprintln!("ns-exec: {err}");
            sys::exit_now(err.code)
        }
    }
}

/// In the forked child, inside every namespace of the container: ns-init's last steps, from
/// its library. Returns only on failure.
///
/// They run here rather than by exec'ing ns-init because after `setns` the host's binaries
/// and their shared libraries are out of reach, and no host binary should be exec'd inside
/// the container anyway (CVE-2019-5736).
fn finish_and_exec(config: &Config, command: &[OsString]) -> Error {
    if let Err(e) = nix::unistd::setsid() {
        return Error::sys("setsid", e);
    }
    exec::finish(config, command, None)
}
