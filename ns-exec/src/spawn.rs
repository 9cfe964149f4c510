//! Cloning the container's first process and turning it into ns-init.
//!
//! By default ([`spawn_built_in`]) the child runs ns-init's code, which ns-exec links, with the
//! config it already has in memory: no exec of ns-init, no config copy to read back. The exec
//! of ns-init cost as much as the rest of its setup together (most of it glibc's start-up,
//! which queries the CPU with `cpuid` over a hundred times: on a virtual machine each is a
//! trap to the hypervisor). At the end the child execs the command through ns-dmz, which
//! ns-exec copied into a sealed memfd (`mount_api::protected_program`): while the child runs,
//! nothing but the child exists in its new pid namespace, and the exec of the command goes
//! through ns-dmz, so a command re-entering `/proc/self/exe` reaches ns-dmz and never the
//! host's ns-exec (CVE-2019-5736).
//!
//! On x86_64 that child is cloned vfork-style: `CLONE_VM | CLONE_VFORK`, on a stack of its
//! own, by a helper thread, while ns-exec's main thread goes on with the host side (the
//! network namespace beside the clone, the name, the state, `go`) and asks
//! [`Pending::started`] for the pid only when it needs it. A fork would copy ns-exec's page
//! tables, then every page either process writes, then refault in the child the code it runs,
//! and tear its copy down again at the exec of ns-dmz: about 50 page faults of 3 to 4 us each
//! on the machine the benchmarks run on, and a tenth of a bare container's start
//! (bench/README.md).
//! What the design asks:
//!
//! - the child runs in ns-exec's memory, so it uses only its [`Job`]: copies of the config and
//!   command and the fds it takes over, owned by the helper thread, which sleeps in the clone
//!   until the child has exec'd or exited and only then drops them; the main thread never
//!   touches them;
//! - the child has the helper thread's thread-local storage (its log and trace sinks), not the
//!   main thread's, and ends in an exec or `_exit`, never in `exit` (which would run ns-exec's
//!   atexit handlers) nor in a return;
//! - its fd table and signal handlers are its own copies, as with fork (fds the main thread
//!   opens while the clone is under way may be in its copy: all are close-on-exec, and
//!   ns-init marks every fd above 2 close-on-exec before the exec anyway);
//! - it takes no lock the rest of ns-exec needs, since it may be killed anywhere before its
//!   exec and would never give it back (see [`clone_in_helper`]); a panic in it writes one
//!   line and `_exit`s (ns-exec's panic hook, [`in_vfork_child`]), never reaching the
//!   standard error's lock or `abort`. The kernel never picks it as an OOM victim while it
//!   shares ns-exec's memory (its allocations are charged to ns-exec's memory cgroup); a
//!   failing allocation of its setup in the container's cgroup is an error it reports;
//! - its parent-death signal is tied to the thread that cloned it, so the helper thread then
//!   sleeps for good (its stack is 64 KiB): the container dies with ns-exec, not with a thread.
//!
//! Elsewhere the child is forked as before.
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
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

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

/// The container's first process: cloned, or being cloned by a helper thread
/// ([`spawn_built_in`]); [`Pending::started`] gives the [`Child`] either way, and must be
/// called on every path: only the `Child` kills the process on a failure.
#[must_use]
pub enum Pending {
    /// Cloned already.
    Cloned(Child),
    /// Being cloned; `what` names the clone for its error.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Cloning { outcome: Arc<Outcome>, what: String },
}

/// Where a helper thread's clone leaves its outcome for the main thread.
#[derive(Default)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct Outcome {
    /// The child's pid, which the kernel stores before the child runs (the child then wakes
    /// the main thread); -1 when the clone failed. 0 until either.
    tid: AtomicI32,
    /// The pidfd the kernel stored (in this process's fd table) with the pid.
    pidfd: AtomicI32,
    /// The clone's errno, when it failed.
    errno: AtomicI32,
}

impl Pending {
    /// Waits until the child runs (or its clone failed), and returns it.
    pub fn started(self) -> Result<Child> {
        let (outcome, what) = match self {
            Pending::Cloned(child) => return Ok(child),
            Pending::Cloning { outcome, what } => (outcome, what),
        };
        loop {
            match outcome.tid.load(Ordering::Acquire) {
                0 => sys::futex_wait(&outcome.tid, 0),
                -1 => {
                    let errno = Errno::from_raw(outcome.errno.load(Ordering::Acquire));
                    return Err(Error::sys(what, errno));
                }
                pid => {
                    let raw = outcome.pidfd.load(Ordering::Acquire);
                    return Ok(Child {
                        pid: Pid::from_raw(pid),
                        // SAFETY: with CLONE_PIDFD the kernel installed this fd for us, and
                        // nothing else owns it.
                        pidfd: unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) },
                    });
                }
            }
        }
    }
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

/// What the built-in child runs with: its own copies of the config and command, the fds it
/// takes over, and the numbers of two fds the parent keeps open until [`Pending::started`]
/// returns (by then the child has its own copies, in its own fd table).
struct Job {
    config: Config,
    command: Vec<OsString>,
    sync: SyncSocket,
    log: Option<OwnedFd>,
    console: Option<OwnedFd>,
    /// The parent's end of the sync socket, which the child closes.
    parent: RawFd,
    /// ns-dmz, protected.
    dmz: RawFd,
    cloned: Cloned,
}

/// How much stack the built-in child gets (reserved, not committed: it costs only the pages
/// the child touches).
#[cfg(target_arch = "x86_64")]
const CHILD_STACK: usize = 8 << 20;

/// The stack of the thread that clones the built-in child (which runs on a stack of its own).
#[cfg(target_arch = "x86_64")]
const HELPER_STACK: usize = 64 << 10;

/// Starts cloning the child into `flags`'s namespaces (into `cgroup`, a cgroup2 directory,
/// when given), where it runs ns-init's setup for `config` and execs `command` through ns-dmz.
///
/// On x86_64 a helper thread clones it with `CLONE_VM | CLONE_VFORK` (the module
/// documentation says why) and returns at once; the caller goes on with its host side and
/// calls [`Pending::started`] when it needs the pid. `fds.parent`, `fds.dmz` and `cgroup` must
/// stay open until then; the parent's copies of `fds`' owned fds are closed once the child has
/// exec'd or exited. Elsewhere the child is forked, and cloned on return.
pub fn spawn_built_in(
    config: &Config,
    command: &[OsString],
    flags: CloneFlags,
    cgroup: Option<&OwnedFd>,
    fds: BuiltIn<'_>,
) -> Result<Pending> {
    let job = Job {
        config: config.clone(),
        command: command.to_vec(),
        sync: fds.sync,
        log: fds.log,
        console: fds.console,
        parent: fds.parent.as_fd().as_raw_fd(),
        dmz: fds.dmz.as_raw_fd(),
        cloned: fds.cloned,
    };
    let what = format!("clone into new namespaces ({flags:?})");
    clone_built_in(
        job,
        flags.bits() as u64,
        cgroup.map(|fd| fd.as_raw_fd()),
        what,
    )
}

/// The vfork-style clone, in a helper thread (see [`spawn_built_in`]).
#[cfg(target_arch = "x86_64")]
fn clone_built_in(job: Job, flags: u64, cgroup: Option<RawFd>, what: String) -> Result<Pending> {
    let stack = sys::ChildStack::new(CHILD_STACK)
        .map_err(|e| Error::sys("map the container's first stack", e))?;
    // The child writes its trace lines through the helper's thread-local trace file.
    let trace = common::trace::duplicate()?;
    let outcome = Arc::new(Outcome::default());
    let shared = Arc::clone(&outcome);
    std::thread::Builder::new()
        .stack_size(HELPER_STACK)
        .spawn(move || clone_in_helper(job, stack, trace, flags, cgroup, &shared))
        .map_err(|e| Error::io("start the thread that clones the container", e))?;
    Ok(Pending::Cloning { outcome, what })
}

/// The fork, elsewhere (see [`spawn_built_in`]).
#[cfg(not(target_arch = "x86_64"))]
fn clone_built_in(job: Job, flags: u64, cgroup: Option<RawFd>, what: String) -> Result<Pending> {
    // SAFETY: the cgroup fd stays open for the call (the caller's contract).
    let cgroup = cgroup.map(|fd| unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) });
    // SAFETY: ns-exec is single-threaded here, so the child is a whole copy of it, with no
    // lock held by a thread that does not exist in it; it never returns from this branch.
    match unsafe { sys::fork_into(flags, cgroup) }.map_err(|e| Error::sys(what, e))? {
        Forked::Parent(pid, pidfd) => Ok(Pending::Cloned(Child { pid, pidfd })),
        Forked::Child => built_in_child(&job, None),
    }
}

/// The helper thread: clones the child, which runs [`vfork_child`] in this process's memory
/// while this thread sleeps; once the child has exec'd (or exited), closes this process's
/// copies of the fds only the child may hold, and then sleeps for good. It must outlive the
/// container: the child's parent-death signal is tied to the thread that cloned it.
#[cfg(target_arch = "x86_64")]
fn clone_in_helper(
    job: Job,
    stack: sys::ChildStack,
    trace: Option<std::fs::File>,
    flags: u64,
    cgroup: Option<RawFd>,
    outcome: &Outcome,
) {
    if let Some(file) = trace {
        common::trace::init_file(file);
    }
    // The child may die at any point before its exec (killed by ns-exec's guard on a host-side
    // failure, by the OOM killer, ...), and what it holds in this process's memory then is
    // never given back. So it must take no lock the rest of ns-exec needs: the malloc arena it
    // allocates in is this thread's, assigned here rather than by its first allocation (which
    // takes the allocator's global list lock), and the thread-local log and trace register
    // their destructors here (which takes the C library's loader lock, as exit() does). It
    // frees only what it allocated, prints nothing (the standard streams have locks), and
    // this thread touches neither its heap nor its thread-locals after the clone.
    drop(std::hint::black_box(Vec::<u8>::with_capacity(64)));
    let _ = (common::log::enabled(), common::trace::enabled());
    let dumpable = sys::prctl(libc::PR_GET_DUMPABLE, 0, 0).unwrap_or(1);
    let arg = ChildArg {
        job: &job,
        tid: &outcome.tid,
    };
    // SAFETY: the cgroup fd stays open until `started` returns, after this clone (caller's
    // contract). `vfork_child` never returns and ends in an exec or _exit; it uses only `job`
    // (owned by this thread, unchanged until the clone returns) and this thread's
    // thread-local storage (unused meanwhile: this thread sleeps), and `stack` outlives it.
    let cloned = unsafe {
        let cgroup = cgroup.map(|fd| std::os::fd::BorrowedFd::borrow_raw(fd));
        sys::vfork_into(
            flags,
            cgroup,
            &stack,
            &outcome.tid,
            &outcome.pidfd,
            vfork_child,
            &arg as *const ChildArg as *mut libc::c_void,
        )
    };
    if let Err(e) = cloned {
        outcome.errno.store(e as i32, Ordering::Release);
        outcome.tid.store(-1, Ordering::Release);
        sys::futex_wake(&outcome.tid);
        return;
    }
    // The child has exec'd or died; the kernel stored its pid before it ran. Wake the main
    // thread here too: a child killed before its first instruction never did.
    sys::futex_wake(&outcome.tid);
    // Close this process's copies of the fds only the child may hold, by number: the job is
    // forgotten, not dropped, and this thread's log (which the child set up with one of those
    // fds) is left as it is, see above. Then unmap the child's stack, and take back its
    // non-dumpable mark, which was on this process's memory.
    let log = job.log.as_ref().map(|fd| fd.as_raw_fd());
    let console = job.console.as_ref().map(|fd| fd.as_raw_fd());
    for fd in [Some(job.sync.fd().as_raw_fd()), log, console]
        .into_iter()
        .flatten()
    {
        // SAFETY: these fds are the job's, closed once here and never used again: the job is
        // forgotten below, never dropped.
        unsafe { libc::close(fd) };
    }
    std::mem::forget(job);
    drop(stack);
    // 2 (suid_dumpable's "root only") cannot be set back; ns-exec is never started so.
    if dumpable <= 1 {
        let _ = sys::prctl(libc::PR_SET_DUMPABLE, dumpable as libc::c_ulong, 0);
    }
    loop {
        std::thread::park();
    }
}

thread_local! {
    /// Set in a vfork child, which has the helper thread's thread-local storage.
    static IN_VFORK_CHILD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this is the vfork-style child of [`spawn_built_in`], before its exec: ns-exec's
/// panic hook must then not take the standard error's lock nor `abort` (main.rs).
#[cfg_attr(test, allow(dead_code))]
pub fn in_vfork_child() -> bool {
    IN_VFORK_CHILD.with(|c| c.get())
}

/// What [`vfork_child`] gets: the job, and where to wake the main thread.
#[cfg(target_arch = "x86_64")]
struct ChildArg<'a> {
    job: &'a Job,
    tid: &'a AtomicI32,
}

/// The vfork child's entry (see [`sys::vfork_into`]).
#[cfg(target_arch = "x86_64")]
extern "C" fn vfork_child(arg: *mut libc::c_void) -> ! {
    // SAFETY: `arg` is the helper's ChildArg, alive and unchanged until this child is gone.
    let arg = unsafe { &*(arg as *const ChildArg) };
    IN_VFORK_CHILD.with(|c| c.set(true));
    built_in_child(arg.job, Some(arg.tid))
}

/// The fds a [`Job`] hands the child.
struct Owned {
    sync: SyncSocket,
    log: Option<OwnedFd>,
    console: Option<OwnedFd>,
}

impl Job {
    /// This child's own copies of the job's fds. The child's fd table is a copy of the
    /// parent's, so the numbers are its own to close; the job's values close the parent's
    /// copies (a vfork child never drops them: it execs or `_exit`s).
    fn owned(&self) -> Owned {
        // SAFETY: bitwise copies of fd owners (plain integers), used only in the child, which
        // owns those numbers in its own fd table; see above.
        unsafe {
            Owned {
                sync: std::ptr::read(&self.sync),
                log: std::ptr::read(&self.log),
                console: std::ptr::read(&self.console),
            }
        }
    }
}

/// The child of [`spawn_built_in`]: ns-init, without an exec, for `job`.
///
/// `started`, for a vfork child: the word to wake ns-exec's main thread on, which may be
/// waiting for the pid (the kernel stored it before this child ran).
fn built_in_child(job: &Job, started: Option<&AtomicI32>) -> ! {
    let Owned { sync, log, console } = job.owned();
    // SAFETY: the parent's end is a copy this process owns and never uses; the SyncSocket
    // value that names it is the parent's, never dropped here (this function never returns).
    unsafe { libc::close(job.parent) };
    if let Some(log) = log {
        common::log::init(std::fs::File::from(log), INIT_STAGE);
    }
    let mut host = Host::Socket(sync);
    let cloned_point = common::fault::point(INIT_STAGE, "cloned");
    if let Some(word) = started {
        sys::futex_wake(word);
    }
    // Until its exec this process runs ns-exec's code, and `/proc/PID/exe` names the host's
    // ns-exec: non-dumpable, no process without CAP_SYS_PTRACE can open that link (a process
    // of another container sharing the host's pid namespace, when this one has none of its
    // own). The exec of ns-dmz makes it dumpable again, with ns-dmz's sealed copy as exe.
    // The container dies with ns-exec. EOF on the sync socket covers the case where ns-exec
    // died before this line ran: the child then aborts instead of waiting for a `go`.
    let armed = cloned_point
        .and_then(|()| {
            sys::prctl(libc::PR_SET_DUMPABLE, 0, 0)
                .map_err(|e| Error::sys("make the child non-dumpable", e))
        })
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
            // SAFETY: ns-dmz stays open in the parent until `started` returns, so this child's
            // copy of it exists, and nothing in this child closes it.
            let dmz = unsafe { std::os::fd::BorrowedFd::borrow_raw(job.dmz) };
            let launcher = Launcher::Dmz {
                program: dmz,
                report: socket,
            };
            match setup_and_exec(
                &job.config,
                &job.command,
                console,
                None,
                &mut host,
                &launcher,
                job.cloned,
            ) {
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
