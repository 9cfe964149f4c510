//! The caller's terminal attached to a pty master: what a waiting runtime does with a console.
//!
//! [`Attached::new`] duplicates the caller's stdin and stdout (the relay never changes the
//! caller's own fds), puts the caller's terminal in raw mode, and copies its window size to the
//! master, all before the command starts. The owner polls [`Attached::relay`]'s fds with its
//! signalfd and the command's pidfd, passes the signals in [`Attached::SIGNALS`] to
//! [`Attached::on_signal`], and calls [`Attached::finish`] once the command ended: the output is
//! drained to the last byte and the terminal restored. Dropping it also restores the terminal,
//! so every early return leaves the caller's terminal as it was.

use nix::sys::signal::Signal;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use common::{Context, Result};

use crate::{RawTerminal, Relay, copy_window_size, first_terminal};

/// The caller's side of a relay: copies of its stdin and stdout (the relay never changes the
/// caller's own fds), the terminal to take window sizes from, and raw mode, already entered.
pub struct Caller {
    /// A copy of stdin, if it is open.
    pub stdin: Option<OwnedFd>,
    /// A copy of stdout.
    pub stdout: OwnedFd,
    /// The first of stdin and stdout that is a terminal.
    pub size_from: Option<OwnedFd>,
    /// Raw mode on stdin, when it is a terminal; restored on drop.
    pub raw: Option<RawTerminal>,
}

impl Caller {
    /// Takes the caller's stdin and stdout and puts the terminal in raw mode.
    pub fn attach() -> Result<Caller> {
        let stdin = std::io::stdin().as_fd().try_clone_to_owned().ok();
        let stdout = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .ctx(|| "duplicate stdout".into())?;
        let size_from = {
            let mut fds: Vec<BorrowedFd<'_>> = stdin.iter().map(|f| f.as_fd()).collect();
            fds.push(stdout.as_fd());
            first_terminal(&fds)
                .map(|fd| fd.try_clone_to_owned())
                .transpose()
                .ctx(|| "duplicate the terminal fd".into())?
        };
        let raw = match &stdin {
            Some(fd) => RawTerminal::enter(fd.as_fd())?,
            None => None,
        };
        Ok(Caller {
            stdin,
            stdout,
            size_from,
            raw,
        })
    }
}

/// A pty master relayed to the caller's stdin and stdout.
pub struct Attached {
    relay: Relay,
    raw: Option<RawTerminal>,
    size_from: Option<OwnedFd>,
}

impl Attached {
    /// The signals the owner must block and hand to [`Attached::on_signal`].
    pub const SIGNALS: [Signal; 3] = [Signal::SIGWINCH, Signal::SIGCONT, Signal::SIGTSTP];

    /// Attaches the caller's stdin and stdout to `master`: raw mode and window size now, the
    /// relay from then on. Without a terminal on stdin there is no raw mode; without one on
    /// stdin or stdout, no window size.
    pub fn new(master: OwnedFd) -> Result<Attached> {
        let caller = Caller::attach()?;
        if let Some(from) = &caller.size_from {
            copy_window_size(from.as_fd(), master.as_fd())?;
        }
        Ok(Attached {
            relay: Relay::new(master, caller.stdin, caller.stdout)?,
            raw: caller.raw,
            size_from: caller.size_from,
        })
    }

    /// The relay, for polling.
    pub fn relay(&mut self) -> &mut Relay {
        &mut self.relay
    }

    /// Handles one of [`Attached::SIGNALS`]: a new window size, a continue after a stop, or a
    /// stop from outside (the caller's terminal settings are given back first). Returns whether
    /// the signal was one of them.
    pub fn on_signal(&mut self, sig: Signal) -> Result<bool> {
        match sig {
            Signal::SIGWINCH => {
                if let (Some(from), Some(master)) = (&self.size_from, self.relay.master()) {
                    copy_window_size(from.as_fd(), master)?;
                }
            }
            Signal::SIGCONT => {
                if let Some(raw) = &self.raw {
                    raw.reapply()?;
                }
            }
            Signal::SIGTSTP => {
                if let Some(raw) = &self.raw {
                    raw.suspend()?;
                }
                nix::sys::signal::raise(Signal::SIGSTOP).ctx(|| "stop (SIGSTOP)".into())?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// After the command ended: relays what is left, then restores the caller's terminal.
    pub fn finish(mut self) -> Result<()> {
        self.relay.drain()?;
        match self.raw.take() {
            Some(raw) => raw.restore(),
            None => Ok(()),
        }
    }
}
