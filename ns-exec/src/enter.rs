//! Entering a running container: `ns-exec enter NAME -- CMD`.
//!
//! The state file names the container's pid and start time; a pidfd opened on that pid, and
//! the start time checked again after, make sure we join that very process and not one that
//! reused its pid. ns-exec then opens ns-init (by fd, while host paths still resolve), marks
//! itself non-dumpable so the container's processes cannot ptrace it while it holds host
//! resources (CVE-2016-9962), and joins all the container's namespaces at once with
//! `setns(pidfd, flags)`. A new pid namespace applies only to children, so it forks: the child
//! runs `ns-init --join`, which applies the container's user, capabilities, cwd and environment
//! and execs the command; the parent waits and forwards signals, as for a new container.

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use std::ffi::{CString, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::handoff::{CONFIG_FD, ENV_CONFIG_FD};
use common::ns::Namespace;
use common::sys::{self, Forked};
use common::{Context, Error, fd};

use crate::Failure;
use crate::cli::EnterArgs;
use crate::run::find_init;
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
        if let Ok(f) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
            common::log::init(f, "ns-exec");
        }
    }
    enter_state(state, &args.command, args.init.as_deref())
}

/// Joins the container `state` describes and runs `command` in it.
pub fn enter_state(
    state: State,
    command: &[OsString],
    init: Option<&Path>,
) -> Result<i32, Failure> {
    let what = || format!("enter container {:?} (pid {})", state.name, state.pid);
    let pidfd = sys::pidfd_open(state.pid).ctx(what)?;
    // The pid could have been reused between reading the state and opening the pidfd.
    if !state.is_running() {
        return Err(Error::msg(what(), "it exited").into());
    }
    let init = find_init(init)?;
    let init_fd = open(&init, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open ns-init {}", init.display()))?;
    let config_fd = sys::sealed_memfd(c"ns-tools-config", &state.config.to_json())
        .ctx(|| "create config memfd".into())?;
    let argv = join_argv(command)?;
    let envp = vec![CString::new(format!("{ENV_CONFIG_FD}={CONFIG_FD}"))
        .expect("no NUL in a formatted number")];
    let mut signals = Signals::block()?;

    sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).ctx(|| "make ns-exec non-dumpable".into())?;
    let flags = state
        .config
        .namespaces
        .iter()
        .filter(|ns| **ns != Namespace::User)
        .fold(0, |f, ns| f | ns.clone_flag().bits());
    sys::setns(&pidfd, flags).ctx(what)?;

    // SAFETY: single-threaded; the child only places an fd, resets signals and execs.
    match unsafe { sys::fork_into(0) }.ctx(|| "fork into the container".into())? {
        Forked::Parent(_, child) => {
            drop(config_fd);
            let status = signals.wait_forwarding(child.as_fd())?;
            Ok(status)
        }
        Forked::Child => {
            let errno = match fd::hand_on(&config_fd, CONFIG_FD) {
                Err(e) => e,
                Ok(()) => {
                    sys::reset_signals();
                    sys::execveat_fd(init_fd.as_fd(), &argv, &envp)
                }
            };
            eprintln!(
                "ns-exec: {}",
                Error::sys(format!("exec ns-init {}", init.display()), errno)
            );
            sys::exit_now(common::exit::FAILED)
        }
    }
}

fn join_argv(command: &[OsString]) -> Result<Vec<CString>, Failure> {
    let mut argv = vec![c"ns-init".to_owned(), c"--join".to_owned(), c"--".to_owned()];
    for arg in command {
        argv.push(
            CString::new(arg.as_bytes())
                .map_err(|_| Error::usage("a command argument contains a NUL byte"))?,
        );
    }
    Ok(argv)
}
