//! One ns-pty session, in order:
//!
//! 1. mark inherited fds above 2 close-on-exec (only the console is handed on);
//! 2. block the signals we handle and read them from a signalfd, so none is lost or kills us
//!    with the terminal raw: `INT TERM HUP QUIT USR1 USR2` are forwarded to the command,
//!    `WINCH` copies the window size, `TSTP` restores the terminal and stops us, `CONT` puts
//!    the terminal back in raw mode;
//! 3. the caller's terminal in raw mode;
//! 4. chain form: open the pty, copy the window size, then start the command on the pts;
//!    socket form: listen, start the command (the runtime), and wait for the master;
//! 5. poll the signalfd, the command's pidfd and the relay until the command ended;
//! 6. drain the master, restore the terminal (drop), exit with the command's status.
//!
//! Every resource is an owned value: an early return restores the terminal, removes the
//! socket file, and kills and reaps a started command. See signalfd(2), pidfd_open(2).

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{Context, Error, Result, exit, ns_log, sys, trace};
use ns_pty::{
    CONSOLE_FD, Caller, ConsoleSocket, ENV_CONSOLE_FD, RawTerminal, Relay, copy_window_size,
    open_pty,
};

use crate::cli::Invocation;

/// Signals passed on to the command, as ns-exec does.
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// A started command: its pidfd, killed and reaped on drop unless it was reaped.
struct Child {
    pidfd: Option<OwnedFd>,
}

impl Child {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|p| p.as_fd())
    }

    /// Collects the status of the ended command (its code, or 128 + signal).
    fn reap(&mut self) -> Result<i32> {
        let Some(pidfd) = self.pidfd.take() else {
            return Err(Error::msg("wait for the command", "it was reaped already"));
        };
        loop {
            match waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED) {
                Ok(status) => {
                    return exit::from_wait(status)
                        .ok_or_else(|| Error::msg("wait for the command", "unexpected status"));
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("wait for the command", e)),
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(pidfd) = &self.pidfd {
            let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = self.reap();
        }
    }
}

/// Runs the session `invocation` asks for; returns the status to exit with.
pub fn run(invocation: Invocation) -> Result<i32> {
    // Only the console is handed on: fds a caller leaked to us must not reach the command.
    sys::close_range_from(3, true).ctx(|| "mark inherited fds close-on-exec".into())?;
    let signals = block_signals()?;
    trace::init_from_env()?;
    let Caller {
        stdin,
        stdout,
        size_from,
        raw,
    } = step("attach", Caller::attach)?;
    let mut session = Session {
        signals,
        raw,
        size_from,
        child: None,
        socket: None,
        relay: None,
        pending_io: Some((stdin, stdout)),
    };
    let status = match invocation {
        Invocation::Info(_) | Invocation::Plan { .. } => return Ok(exit::OK),
        Invocation::Chain { command } => {
            let pty = step("open_pty", || {
                let pty = open_pty()?;
                session.resize(pty.master.as_fd())?;
                Ok(pty)
            })?;
            session.child = Some(step("spawn", || spawn(&command, Some(pty.peer)))?);
            step("relay", || {
                session.start_relay(pty.master)?;
                // The start-up code is done with: a long relay should not keep it resident.
                sys::release_code_pages();
                session.run()
            })?
        }
        Invocation::Socket { path, command } => {
            session.socket = Some(step("listen", || ConsoleSocket::bind(&path))?);
            if !command.is_empty() {
                session.child = Some(step("spawn", || spawn(&command, None))?);
            }
            step("relay", || {
                sys::release_code_pages();
                session.run()
            })?
        }
    };
    if let Some(raw) = session.raw.take() {
        raw.restore()?;
    }
    Ok(status)
}

/// Runs `f` as ns-pty's step `name`, recorded in the trace (the names `--plan` prints).
fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    trace::step(crate::plan::STAGE, name, None, f)
}

/// Prints the plan of `inner` as JSON or as a shell script; changes nothing.
pub fn print_plan(inner: &Invocation, json: bool) -> Result<()> {
    let (socket, command) = match inner {
        Invocation::Chain { command } => (None, command.as_slice()),
        Invocation::Socket { path, command } => (Some(path.as_path()), command.as_slice()),
        _ => (None, &[][..]),
    };
    let plan = common::plan::Plan::new(crate::plan::STAGE, crate::plan::actions(socket, command));
    let text = if json {
        plan.to_json()
    } else {
        plan.to_shell("ns-pty --explain: the same pty and relay with util-linux script(1)")
    };
    common::cli::print(&text)
}

/// Blocks the signals ns-pty handles and returns a signalfd for them.
fn block_signals() -> Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGWINCH);
    set.add(Signal::SIGCONT);
    set.add(Signal::SIGTSTP);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).ctx(|| "block signals".into())?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx(|| "create signalfd".into())
}

/// Starts `command`. With a console: on the pts as fds 0-2, in a new session with the pts as
/// its controlling terminal, and with the pts at fd [`CONSOLE_FD`] announced by
/// [`ENV_CONSOLE_FD`]. Either way with every signal disposition default and an empty mask.
fn spawn(command: &[OsString], console: Option<OwnedFd>) -> Result<Child> {
    let Some(program) = command.first() else {
        return Err(Error::usage("no command given"));
    };
    let shown = format!("{:?}", program.to_string_lossy());
    let mut cmd = Command::new(program);
    cmd.args(&command[1..]);
    let console_raw = match &console {
        Some(console) => {
            // std's own exec-error pipe must not sit at CONSOLE_FD, or the dup below would
            // replace it: that number has to be taken in this process already (by the console
            // or an fd we opened before; they are all still open).
            // SAFETY: F_GETFD on any integer only reports whether it is open.
            if unsafe { libc::fcntl(CONSOLE_FD, libc::F_GETFD) } < 0 {
                return Err(Error::msg(
                    "start the command",
                    format!("fd {CONSOLE_FD} is unexpectedly free"),
                ));
            }
            let stdio = |what: &str| {
                console
                    .try_clone()
                    .map(Stdio::from)
                    .ctx(|| format!("duplicate the console for {what}"))
            };
            cmd.stdin(stdio("stdin")?)
                .stdout(stdio("stdout")?)
                .stderr(stdio("stderr")?)
                .env(ENV_CONSOLE_FD, CONSOLE_FD.to_string());
            Some(console.as_raw_fd())
        }
        None => None,
    };
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (rt_sigaction, rt_sigprocmask, setsid, ioctl,
    // fcntl/dup3); `console_raw` stays open in the parent, and so in the child, until spawn
    // returns.
    unsafe {
        cmd.pre_exec(move || {
            // Our blocked signals (the signalfd's) and Rust's ignored SIGPIPE would otherwise
            // reach the command: `Command` does not reset the mask when it forks.
            sys::reset_signals();
            if let Some(raw) = console_raw {
                nix::unistd::setsid()?;
                ns_pty::set_controlling_terminal(0)?;
                // SAFETY: `raw` is open in this (child) process, see above.
                let fd = BorrowedFd::borrow_raw(raw);
                common::fd::hand_on(&fd, CONSOLE_FD)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| match e.raw_os_error() {
        Some(n) => Error::exec(&shown, Errno::from_raw(n)),
        None => Error::msg(format!("exec {shown}"), e.to_string()),
    })?;
    let pid = child.id() as i32;
    ns_log!("started {shown} as {pid}");
    // The command holds the pts now; our copy must go, or the master never reads EIO.
    drop(cmd);
    drop(console);
    let pidfd = sys::pidfd_open(pid).ctx(|| format!("pidfd for {shown}"))?;
    Ok(Child { pidfd: Some(pidfd) })
}

/// The state of the poll loop.
struct Session {
    signals: SignalFd,
    raw: Option<RawTerminal>,
    /// The caller's terminal the window size comes from.
    size_from: Option<OwnedFd>,
    child: Option<Child>,
    socket: Option<ConsoleSocket>,
    relay: Option<Relay>,
    /// stdin and stdout, until a relay takes them.
    pending_io: Option<(Option<OwnedFd>, OwnedFd)>,
}

/// What one poll round found ready, besides the relay.
#[derive(Default)]
struct Ready {
    signal: bool,
    child: bool,
    socket: bool,
    relay: Vec<PollFlags>,
}

impl Session {
    fn resize(&self, master: BorrowedFd<'_>) -> Result<()> {
        match &self.size_from {
            Some(from) => copy_window_size(from.as_fd(), master),
            None => Ok(()),
        }
    }

    fn start_relay(&mut self, master: OwnedFd) -> Result<()> {
        let (input, output) = self
            .pending_io
            .take()
            .ok_or_else(|| Error::msg("relay", "a relay is running already"))?;
        self.relay = Some(Relay::new(master, input, output)?);
        Ok(())
    }

    /// Polls until the session ends; returns its status.
    ///
    /// Chain form: the session ends with the command; what it wrote last is drained first.
    /// Socket form: the command is usually a runtime that exits as soon as the container runs
    /// detached (`runc run -d`), so the session ends when the command has ended *and* the
    /// console it sent was closed by everything in the container (or never came).
    fn run(&mut self) -> Result<i32> {
        let socket_form = self.socket.is_some();
        let mut status = None;
        loop {
            let ready = self.poll_once()?;
            if ready.signal {
                if let Some(end) = self.on_signals()? {
                    return Ok(end);
                }
            }
            if let Some(relay) = &mut self.relay {
                relay.on_ready(&ready.relay)?;
            }
            if ready.socket {
                self.on_console()?;
            }
            if ready.child {
                if let Some(mut child) = self.child.take() {
                    let code = child.reap()?;
                    ns_log!("command ended with status {code}");
                    status = Some(code);
                }
                if !socket_form {
                    if let Some(relay) = &mut self.relay {
                        relay.drain()?;
                    }
                    return Ok(status.unwrap_or(exit::OK));
                }
            }
            if socket_form && self.child.is_none() {
                let over = match &self.relay {
                    Some(relay) => relay.is_done(),
                    // A command that ended without sending a console will not send one.
                    None => status.is_some(),
                };
                if over {
                    return Ok(status.unwrap_or(exit::OK));
                }
            }
        }
    }

    fn poll_once(&self) -> Result<Ready> {
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        let child = self.child.as_ref().and_then(Child::fd);
        if let Some(fd) = child {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let socket = self.socket.as_ref().and_then(ConsoleSocket::listener);
        if let Some(fd) = socket {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let relay_at = fds.len();
        if let Some(relay) = &self.relay {
            fds.extend(
                relay
                    .poll_fds()
                    .into_iter()
                    .map(|(fd, events)| PollFd::new(fd, events)),
            );
        }
        loop {
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("poll", e)),
            }
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        let mut at = 1;
        let mut next = |present: bool| {
            if !present {
                return false;
            }
            at += 1;
            !revents[at - 1].is_empty()
        };
        Ok(Ready {
            signal: !revents[0].is_empty(),
            child: next(child.is_some()),
            socket: next(socket.is_some()),
            relay: revents[relay_at..].to_vec(),
        })
    }

    /// Handles every pending signal; `Some(status)` when the session must end (a terminating
    /// signal with no command to pass it to).
    fn on_signals(&mut self) -> Result<Option<i32>> {
        loop {
            let info = match self.signals.read_signal() {
                Ok(Some(info)) => info,
                Ok(None) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("read signalfd", e)),
            };
            let sig = info.ssi_signo as i32;
            match Signal::try_from(sig) {
                Ok(Signal::SIGWINCH) => {
                    if let Some(master) = self.relay.as_ref().and_then(Relay::master) {
                        self.resize(master)?;
                    }
                }
                Ok(Signal::SIGCONT) => {
                    if let Some(raw) = &self.raw {
                        raw.reapply()?;
                    }
                }
                // Stopped from outside (`kill -TSTP`; ^Z is a plain byte in raw mode): give the
                // caller's shell its terminal settings back, then stop for real. SIGCONT
                // brings raw mode back.
                Ok(Signal::SIGTSTP) => {
                    if let Some(raw) = &self.raw {
                        raw.suspend()?;
                    }
                    nix::sys::signal::raise(Signal::SIGSTOP).ctx(|| "stop (SIGSTOP)".into())?;
                }
                _ => match self.child.as_ref().and_then(Child::fd) {
                    Some(pidfd) => {
                        ns_log!("forward signal {sig}");
                        match sys::pidfd_send_signal(pidfd, sig) {
                            Ok(()) | Err(Errno::ESRCH) => {}
                            Err(e) => return Err(Error::sys(format!("forward signal {sig}"), e)),
                        }
                    }
                    None => return Ok(Some(exit::SIGNAL_BASE + sig)),
                },
            }
        }
    }

    /// A runtime connected to the console socket: take its master and start relaying it.
    fn on_console(&mut self) -> Result<()> {
        let Some(socket) = &mut self.socket else {
            return Ok(());
        };
        let master = socket.receive_master()?;
        self.socket = None;
        self.resize(master.as_fd())?;
        self.start_relay(master)
    }
}
