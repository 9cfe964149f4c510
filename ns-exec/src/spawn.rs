//! Cloning the container's first process and turning it into ns-init.
//!
//! By default ([`spawn_built_in`]) the child runs ns-init's code, which ns-exec links, with the
//! config it already has in memory: no exec of ns-init, no config copy to read back. The exec
//! of ns-init cost as much as the rest of its setup together (most of it glibc's start-up,
//! which queries the CPU with `cpuid` over a hundred times: on a virtual machine each is a
//! trap to the hypervisor). At the end the child execs the command through ns-dmz, which
//! ns-exec copied into a sealed memfd (`mount_api::protected_program`): while the child runs, nothing but
//! the child exists in its new pid namespace, and the exec of the command goes through ns-dmz,
//! so a command re-entering `/proc/self/exe` reaches ns-dmz and never the host's ns-exec
//! (CVE-2019-5736).
//!
//! With `--init` ([`spawn`]), the child execs that ns-init program instead. Everything it needs
//! (argv, environment, the fds at their protocol numbers) is built before `clone3`, so the
//! child only makes system calls: set the parent-death signal, place the fds, reset the signal
//! state it inherited (the parent blocks signals for its signalfd), and `execveat` the
//! protected ns-init (`run::protected`). That, not the host's writable file, is what
//! `/proc/PID/exe` shows while ns-init runs inside the container.
//!
//! The clone carries every configured namespace but the cgroup one, which ns-init unshares
//! after `go`, once the host side has placed it in its cgroup, and, for the built-in child of
//! a config without networks, the network one, which ns-exec makes beside the clone while the
//! child sets up its root filesystem ([`netns_beside`]).

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use common::config::Config;
use common::fault::ENV_FAULT;
use common::handoff::{
    CONFIG_FD, CONSOLE_FD, ENV_CONFIG_FD, ENV_CONSOLE_FD, ENV_LOG_FD, ENV_SYNC_FD, LOG_FD, SYNC_FD,
};
use common::ns::Namespace;
use common::sync::SyncSocket;
use common::sys::{self, Forked};
use common::trace::ENV_TRACE;
use common::{Error, Result, fd};
use ns_init::exec::Launcher;
use ns_init::plan::STAGE as INIT_STAGE;
use ns_init::setup::{Cloned, Host, setup_and_exec};

/// The container's first process, seen from the parent.
#[derive(Debug)]
pub struct Child {
    /// Its host pid.
    pub pid: Pid,
    /// A pidfd for it: signals and waits without pid-reuse races.
    pub pidfd: OwnedFd,
}

/// The fds ns-init gets, at [`SYNC_FD`], [`CONFIG_FD`], [`LOG_FD`] and [`CONSOLE_FD`].
pub struct Handoff<'a> {
    /// ns-init's end of the sync socket.
    pub sync: &'a SyncSocket,
    /// The sealed memfd with the canonical config.
    pub config: &'a OwnedFd,
    /// The log file, when logging.
    pub log: Option<&'a OwnedFd>,
    /// The console (a pts), when the container has a terminal.
    pub console: Option<&'a OwnedFd>,
}

/// What the child of [`spawn_built_in`] takes over from the parent.
pub struct BuiltIn<'a> {
    /// The child's end of the sync socket.
    pub sync: SyncSocket,
    /// The parent's end, which the child closes: EOF on it must mean the parent is gone.
    pub parent: &'a SyncSocket,
    /// The log file, when logging.
    pub log: Option<OwnedFd>,
    /// The console (a pts), when the container has a terminal.
    pub console: Option<OwnedFd>,
    /// ns-dmz, protected.
    pub dmz: &'a OwnedFd,
    /// What the clone left to do: whether the child is in every cgroup it will be in
    /// (cgroup2 only, or no cgroup), and whether its network namespace comes beside the clone.
    pub cloned: Cloned,
}

/// Clones the child into `flags`'s namespaces (into `cgroup`, a cgroup2 directory, when
/// given), where it runs ns-init's setup for `config` and execs `command` through ns-dmz.
/// Returns once the child exists; the parent's copies of `fds`' owned fds are closed then.
pub fn spawn_built_in(
    config: &Config,
    command: &[OsString],
    flags: CloneFlags,
    cgroup: Option<&OwnedFd>,
    fds: BuiltIn<'_>,
) -> Result<Child> {
    // SAFETY: ns-exec is single-threaded, so the child is a whole copy of it, with no lock
    // held by a thread that does not exist in it; it never returns from this branch.
    match unsafe { sys::fork_into(flags.bits() as u64, cgroup.map(|fd| fd.as_fd())) }
        .map_err(|e| Error::sys(format!("clone into new namespaces ({flags:?})"), e))?
    {
        Forked::Parent(pid, pidfd) => Ok(Child { pid, pidfd }),
        Forked::Child => built_in_child(config, command, fds),
    }
}

/// The child of [`spawn_built_in`]: ns-init, without an exec.
fn built_in_child(config: &Config, command: &[OsString], fds: BuiltIn<'_>) -> ! {
    let BuiltIn {
        sync,
        parent,
        log,
        console,
        dmz,
        cloned,
    } = fds;
    // SAFETY: the parent's end is a copy this process owns and never uses; the SyncSocket
    // value that names it is the parent's, never dropped here (this function never returns).
    unsafe { libc::close(parent.as_fd().as_raw_fd()) };
    if let Some(log) = log {
        common::log::init(std::fs::File::from(log), INIT_STAGE);
    }
    let mut host = Host::Socket(sync);
    // Until its exec this process is a copy of ns-exec, and `/proc/PID/exe` names the host's
    // ns-exec: non-dumpable, no process without CAP_SYS_PTRACE can open that link (a process
    // of another container sharing the host's pid namespace, when this one has none of its
    // own). The exec of ns-dmz makes it dumpable again, with ns-dmz's sealed copy as exe.
    // The container dies with ns-exec. EOF on the sync socket covers the case where ns-exec
    // died before this line ran: the child then aborts instead of waiting for a `go`.
    let armed = sys::prctl(libc::PR_SET_DUMPABLE, 0, 0)
        .map_err(|e| Error::sys("make the child non-dumpable", e))
        .and_then(|_| {
            sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0)
                .map_err(|e| Error::sys("set the parent-death signal", e))
        });
    let err = match armed {
        Err(e) => e,
        Ok(_) => {
            // The parent blocks the signals it forwards; ns-init runs with none blocked, as
            // an exec'd ns-init would (the dispositions are reset before the command's exec).
            sys::unblock_signals();
            // SAFETY: the socket stays open in `host` for as long as this process lives (this
            // function never returns), so the borrow outlives every use of `launcher`.
            let socket = host
                .socket()
                .map(|s| unsafe { std::os::fd::BorrowedFd::borrow_raw(s.fd().as_raw_fd()) });
            let launcher = Launcher::Dmz {
                program: dmz.as_fd(),
                report: socket,
            };
            match setup_and_exec(config, command, console, None, &mut host, &launcher, cloned) {
                Err(e) => e,
                Ok(never) => match never {},
            }
        }
    };
    common::ns_log!("failed: {err}");
    if let Some(s) = host.socket() {
        s.report_error(INIT_STAGE, &err);
    }
    sys::exit_now(err.code)
}

/// Whether ns-exec makes `config`'s network namespace beside the clone rather than in it,
/// for a built-in child (`built_in`).
///
/// Making a network namespace is most of a bare container's start (the kernel registers every
/// protocol's sysctl tables and the loopback device). Made by ns-exec right after the clone,
/// it is ready by the time the child, which has meanwhile mounted `/proc`, built `/dev` and
/// switched its root, joins it and mounts `/sys`. Not with networks or routes: ns-init's
/// first step then waits for `go` and needs the namespace at once, so there is nothing to
/// overlap; not with a user namespace (none is supported yet): the network namespace must
/// belong to the container's. And not for an ns-init program (`--init`), which cannot know.
pub fn netns_beside(config: &Config, built_in: bool) -> bool {
    built_in
        && config.has_namespace(Namespace::Net)
        && !config.has_namespace(Namespace::User)
        && config.networks.is_empty()
        && config.routes.is_empty()
}

/// The clone flags for `config`'s namespaces: all but cgroup, and but net when ns-exec makes
/// it beside the clone (`netns_beside`); see the module doc.
pub fn clone_flags(config: &Config, netns_beside: bool) -> CloneFlags {
    config
        .namespaces
        .iter()
        .filter(|ns| **ns != Namespace::Cgroup)
        .filter(|ns| !(netns_beside && **ns == Namespace::Net))
        .fold(CloneFlags::empty(), |f, ns| f | ns.clone_flag())
}

/// Copies `fd` to a number above every protocol number (close-on-exec), so placing the copies
/// at 3, 4, 5 in the child can never overwrite one that is still to be placed.
fn above_protocol(fd: impl AsFd) -> Result<OwnedFd> {
    let raw = fcntl(fd.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(10)).map_err(|e| match e {
        // F_DUPFD answers EINVAL when the limit on open files is below the number asked for.
        Errno::EINVAL => Error::sys(
            "duplicate an fd above 9 (the open-files limit is too low)",
            Errno::EMFILE,
        ),
        e => Error::sys("duplicate fd", e),
    })?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::msg(what.to_string(), "contains a NUL byte"))
}

/// Clones the child into `flags`'s namespaces and execs the program `init` refers to (the
/// protected ns-init) in it, with `command` after `--`; with `cgroup` (a cgroup2 directory),
/// the child starts in that cgroup. Returns once the child exists.
pub fn spawn(
    init: &OwnedFd,
    command: &[OsString],
    flags: CloneFlags,
    cgroup: Option<&OwnedFd>,
    fds: Handoff<'_>,
) -> Result<Child> {
    let mut argv = vec![c"ns-init".to_owned(), c"--".to_owned()];
    for arg in command {
        argv.push(cstring(arg.as_bytes(), "command argument")?);
    }
    let mut envp = vec![
        cstring(format!("{ENV_SYNC_FD}={SYNC_FD}").as_bytes(), "env")?,
        cstring(format!("{ENV_CONFIG_FD}={CONFIG_FD}").as_bytes(), "env")?,
    ];
    if fds.log.is_some() {
        envp.push(cstring(format!("{ENV_LOG_FD}={LOG_FD}").as_bytes(), "env")?);
    }
    if fds.console.is_some() {
        envp.push(cstring(
            format!("{ENV_CONSOLE_FD}={CONSOLE_FD}").as_bytes(),
            "env",
        )?);
    }
    // The debugging variables go on to ns-init (docs/handoff.md §3).
    for var in [ENV_FAULT, ENV_TRACE] {
        if let Some(value) = std::env::var_os(var) {
            let mut entry = OsString::from(format!("{var}="));
            entry.push(value);
            envp.push(cstring(entry.as_bytes(), var)?);
        }
    }
    let sync = above_protocol(fds.sync)?;
    let config = above_protocol(fds.config)?;
    let log = fds.log.map(above_protocol).transpose()?;
    let console = fds.console.map(above_protocol).transpose()?;
    // The program too: placing the fds at 3..6 must not overwrite it.
    let init = above_protocol(init)?;

    // SAFETY: ns-exec is single-threaded, and the child branch below only makes system calls
    // (plus the error report, which allocates; that is safe with no other thread to hold a lock)
    // before it execs or exits.
    match unsafe { sys::fork_into(flags.bits() as u64, cgroup.map(|fd| fd.as_fd())) }
        .map_err(|e| Error::sys(format!("clone into new namespaces ({flags:?})"), e))?
    {
        Forked::Parent(pid, pidfd) => Ok(Child { pid, pidfd }),
        Forked::Child => {
            let placed = [
                (Some(&sync), SYNC_FD),
                (Some(&config), CONFIG_FD),
                (log.as_ref(), LOG_FD),
                (console.as_ref(), CONSOLE_FD),
            ];
            let errno = child_exec(&init, &argv, &envp, &placed);
            let err = Error::sys("exec ns-init", errno);
            SyncSocket::from_fd(sync).report_error("ns-exec", &err);
            sys::exit_now(common::exit::FAILED)
        }
    }
}

/// The child between clone and exec; returns only on failure.
fn child_exec(
    init: &OwnedFd,
    argv: &[CString],
    envp: &[CString],
    fds: &[(Option<&OwnedFd>, i32)],
) -> Errno {
    // The container dies with ns-exec. EOF on the sync socket covers the case where ns-exec
    // died before this line ran: ns-init then aborts instead of waiting for a `go`.
    if let Err(e) = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0) {
        return e;
    }
    for (fd, number) in fds {
        if let Some(fd) = fd {
            if let Err(e) = fd::hand_on(*fd, *number) {
                return e;
            }
        }
    }
    sys::reset_signals();
    sys::execveat_fd(init.as_fd(), argv, envp)
}
