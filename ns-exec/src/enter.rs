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
    // While the host's /sys/fs/cgroup is still in reach: where the container's cgroups are.
    let cgroups = ContainerCgroups::open(state.pid).map_err(|e| e.context(what()))?;
    // And ns-dmz, which the command is exec'd through (see `finish_and_exec`); its report of
    // a failed exec comes back on this pipe.
    let dmz = crate::run::protected_dmz()?;
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .ctx(|| "create the exec report pipe".into())?;
    let mut signals = Signals::block(false)?;
    sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).ctx(|| "make ns-exec non-dumpable".into())?;
    let flags = state
        .config
        .namespaces
        .iter()
        .filter(|ns| **ns != Namespace::User)
        .fold(0, |f, ns| f | ns.clone_flag().bits());
    sys::setns(&pidfd, flags).ctx(what)?;

    // The child waits until it is in every cgroup of the container: it must not run a single
    // instruction of the command outside its limits.
    let (placed_r, placed_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .ctx(|| "create the placement pipe".into())?;
    // SAFETY: single-threaded; the child runs the last steps of ns-init and execs or exits.
    match unsafe { sys::fork_into(0, cgroups.unified.as_ref().map(|fd| fd.as_fd())) }
        .ctx(|| "fork into the container".into())?
    {
        Forked::Parent(pid, child) => {
            drop(placed_r);
            drop(report_w);
            cgroups.join(pid.as_raw()).map_err(|e| e.context(what()))?;
            // Released by the byte; on an error above, the pipe's EOF ends the child instead.
            nix::unistd::write(&placed_w, b"p").ctx(|| "release the entered process".into())?;
            drop(placed_w);
            let status = signals.wait_forwarding(child.as_fd(), None)?;
            // Every copy of the write end is closed by now (at the command's exec, or at its
            // exit): this read ends at once, with ns-dmz's report if its exec failed.
            if let Some(err) = exec_report(report_r, command) {
                eprintln!("ns-exec: {err}");
            }
            Ok(status)
        }
        Forked::Child => {
            drop(placed_w);
            let mut byte = [0u8; 1];
            if !matches!(nix::unistd::read(&placed_r, &mut byte), Ok(1)) {
                sys::exit_now(common::exit::FAILED)
            }
            drop(placed_r);
            drop(report_r);
            let err = finish_and_exec(&state.config, command, &dmz, &report_w);
            eprintln!("ns-exec: {err}");
            sys::exit_now(err.code)
        }
    }
}

/// The cgroups of a running container, opened from the host's view before `setns` leaves it:
/// its cgroup2 directory (to fork straight into) and the `cgroup.procs` of each v1 hierarchy
/// (to write the entered process's pid to). Read from `/proc/PID/cgroup` of the container's
/// process, so an entered process lands exactly where the container is, wherever the caller is.
struct ContainerCgroups {
    unified: Option<std::os::fd::OwnedFd>,
    procs: Vec<(std::path::PathBuf, std::fs::File)>,
}

impl ContainerCgroups {
    fn open(pid: i32) -> common::Result<ContainerCgroups> {
        let mut out = ContainerCgroups {
            unified: None,
            procs: Vec::new(),
        };
        for h in ns_cgroup::Layout::of_pid(pid)?.hierarchies {
            if h.unified {
                out.unified = Some(
                    nix::fcntl::open(
                        &h.own,
                        nix::fcntl::OFlag::O_PATH
                            | nix::fcntl::OFlag::O_DIRECTORY
                            | nix::fcntl::OFlag::O_CLOEXEC,
                        nix::sys::stat::Mode::empty(),
                    )
                    .ctx(|| format!("open cgroup {}", h.own.display()))?,
                );
            } else {
                let procs = h.own.join("cgroup.procs");
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&procs)
                    .ctx(|| format!("open {}", procs.display()))?;
                out.procs.push((procs, file));
            }
        }
        Ok(out)
    }

    /// Moves `pid` into each v1 hierarchy's cgroup (the cgroup2 one it was forked into).
    fn join(&self, pid: i32) -> common::Result<()> {
        use std::io::Write;
        for (path, file) in &self.procs {
            (&*file)
                .write_all(pid.to_string().as_bytes())
                .ctx(|| format!("join {}", path.display()))?;
        }
        Ok(())
    }
}

/// ns-dmz's report on `pipe` of a failed exec of `command`, as the error to print; `None` when
/// the command was exec'd (EOF) or the report is unreadable.
fn exec_report(pipe: std::os::fd::OwnedFd, command: &[OsString]) -> Option<Error> {
    let mut buf = [0u8; 256];
    let n = loop {
        match nix::unistd::read(&pipe, &mut buf) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.ok()?,
        }
    };
    match common::sync::decode(&buf[..n]).ok()? {
        common::sync::Message::ExecFailed { errno } => Some(
            common::sync::WireError::exec_failed(errno, command.first().map(|c| c.as_os_str()))
                .into_error(),
        ),
        _ => None,
    }
}

/// In the forked child, inside every namespace of the container: ns-init's last steps, from
/// its library, and the exec of the command through ns-dmz (`dmz`, protected; it reports a
/// failed exec on `report`). Returns only on failure.
///
/// They run here rather than by exec'ing ns-init because after `setns` the host's binaries
/// and their shared libraries are out of reach. This process is a copy of ns-exec, whose host
/// file `/proc/self/exe` names until the exec: it is non-dumpable, so no container process can
/// open that link, and the command is exec'd through ns-dmz, so a command re-entering
/// `/proc/self/exe` (a `#!/proc/self/exe` script) reaches ns-dmz and never the host's ns-exec,
/// which it could otherwise hold open and overwrite once ns-exec exits (CVE-2019-5736).
fn finish_and_exec(
    config: &Config,
    command: &[OsString],
    dmz: &std::os::fd::OwnedFd,
    report: &std::os::fd::OwnedFd,
) -> Error {
    if let Err(e) = nix::unistd::setsid() {
        return Error::sys("setsid", e);
    }
    let launcher = exec::Launcher::Dmz {
        program: dmz.as_fd(),
        report: Some(report.as_fd()),
    };
    exec::finish(config, command, None, &launcher)
}
