//! Waiting for the container while forwarding signals to it.
//!
//! The signals ns-exec forwards are blocked from the start and read from a signalfd, so one
//! that arrives at any moment (even before the clone) is queued, never lost and never kills
//! ns-exec with the container still running. The wait polls the signalfd together with the
//! child's pidfd, so neither a signal nor the exit is missed, and no `SIGCHLD` handler races
//! with the clone. `SIGCHLD` is reset to its default first: a caller that ignores it would
//! make the kernel reap our child and lose its status.

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use std::os::fd::{AsFd, BorrowedFd};

use common::{Context, Error, Result, exit, ns_log, sys};
use ns_pty::Attached;

/// The signals passed on to the container, as `docker run` does.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Blocked signals, readable from a signalfd.
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Resets `SIGCHLD` to default, blocks the forwarded signals and `SIGCHLD` (and with a
    /// `terminal`, the ones [`Attached::on_signal`] handles), and opens a signalfd for them.
    /// Call before cloning.
    pub fn block(terminal: bool) -> Result<Signals> {
        // SAFETY: SIG_DFL is always a valid disposition.
        unsafe {
            nix::sys::signal::signal(Signal::SIGCHLD, nix::sys::signal::SigHandler::SigDfl)
                .ctx(|| "reset SIGCHLD".into())?;
        }
        let mut set = SigSet::empty();
        for s in FORWARDED {
            set.add(s);
        }
        set.add(Signal::SIGCHLD);
        if terminal {
            for s in Attached::SIGNALS {
                set.add(s);
            }
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).ctx(|| "block signals".into())?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .ctx(|| "create signalfd".into())?;
        Ok(Signals { fd })
    }

    /// Reads every pending signal: the terminal's go to `terminal`, the forwarded ones to
    /// `pidfd`'s process.
    fn forward_pending(
        &mut self,
        pidfd: BorrowedFd<'_>,
        mut terminal: Option<&mut Attached>,
    ) -> Result<()> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => {
                    let sig = info.ssi_signo as i32;
                    if sig == libc::SIGCHLD {
                        continue;
                    }
                    if let (Some(t), Ok(signal)) = (terminal.as_deref_mut(), Signal::try_from(sig))
                    {
                        if t.on_signal(signal)? {
                            continue;
                        }
                    }
                    ns_log!("forward signal {sig}");
                    match sys::pidfd_send_signal(pidfd, sig) {
                        // The container exited already; its status is about to be read.
                        Ok(()) | Err(Errno::ESRCH) => {}
                        Err(e) => return Err(Error::sys(format!("forward signal {sig}"), e)),
                    }
                }
                Ok(None) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("read signalfd", e)),
            }
        }
    }

    /// Waits for the process behind `pidfd` to end, forwarding signals meanwhile, and relaying
    /// the `terminal` if there is one; returns the status to exit with (its code, or 128 +
    /// signal).
    pub fn wait_forwarding(
        &mut self,
        pidfd: BorrowedFd<'_>,
        mut terminal: Option<&mut Attached>,
    ) -> Result<i32> {
        // The start-up code is done with: a long wait should not keep it resident (bench S5,
        // RSS). Not at once, though: a container that ends within RELEASE_AFTER_MS would only
        // fault the same pages back in for the clean-up and the exit.
        let mut timeout = PollTimeout::from(RELEASE_AFTER_MS);
        loop {
            let (sig_ready, child_ready, relay_ready) = {
                let mut fds = vec![
                    PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(pidfd, PollFlags::POLLIN),
                ];
                if let Some(t) = terminal.as_deref_mut() {
                    fds.extend(
                        t.relay()
                            .poll_fds()
                            .into_iter()
                            .map(|(fd, events)| PollFd::new(fd, events)),
                    );
                }
                match poll(&mut fds, timeout) {
                    Ok(0) if timeout != PollTimeout::NONE => {
                        sys::release_code_pages();
                        timeout = PollTimeout::NONE;
                        continue;
                    }
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("poll", e)),
                }
                let revents: Vec<PollFlags> = fds
                    .iter()
                    .map(|p| p.revents().unwrap_or(PollFlags::empty()))
                    .collect();
                (
                    !revents[0].is_empty(),
                    !revents[1].is_empty(),
                    revents[2..].to_vec(),
                )
            };
            if let Some(t) = terminal.as_deref_mut() {
                t.relay().on_ready(&relay_ready)?;
            }
            if sig_ready {
                self.forward_pending(pidfd, terminal.as_deref_mut())?;
            }
            if child_ready {
                return reap(pidfd);
            }
        }
    }
}

/// How long a wait runs before ns-exec drops its start-up code's pages
/// ([`sys::release_code_pages`]), in milliseconds.
const RELEASE_AFTER_MS: u16 = 50;

/// Collects the exit status of the ended process behind `pidfd`.
pub fn reap(pidfd: BorrowedFd<'_>) -> Result<i32> {
    loop {
        match waitid(Id::PIDFd(pidfd), WaitPidFlag::WEXITED) {
            Ok(status) => {
                return exit::from_wait(status)
                    .ok_or_else(|| Error::msg("wait for the container", "unexpected wait status"));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for the container", e)),
        }
    }
}

/// How the process behind `pidfd` ended (`exited with status 1`, `was killed by SIGKILL`), if it
/// has or does within `within_ms` (for a process known to be on its way out: its end of the
/// sync socket closes before it has finished exiting); it is left to be collected.
pub fn ended(pidfd: BorrowedFd<'_>, within_ms: u16) -> Option<String> {
    if within_ms > 0 {
        // The pidfd turns readable once the process has exited; EINTR just ends the wait.
        let _ = poll(
            &mut [PollFd::new(pidfd, PollFlags::POLLIN)],
            PollTimeout::from(within_ms),
        );
    }
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::PIDFd(pidfd), flags) {
        Ok(WaitStatus::Exited(_, code)) => Some(format!("exited with status {code}")),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(format!("was killed by {sig:?}")),
        _ => None,
    }
}

/// Kills the process behind `pidfd` and collects it (on a failure before it runs the command).
pub fn kill_and_reap(pidfd: BorrowedFd<'_>) {
    let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
    let _ = reap(pidfd);
}
