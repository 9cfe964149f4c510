//! ns-pty as a library: allocate a pseudo-terminal, put the caller's terminal in raw mode,
//! follow its window size, and relay I/O between the caller and the pty master. The `ns-pty`
//! program is these pieces driven by one poll loop; `ns-exec` drives the same pieces from its
//! own loop when a container has `tty: true`.
//!
//! The order a caller keeps, and why:
//! 1. [`open_pty`] before the command exists, so nothing it writes can be lost;
//! 2. [`RawTerminal::enter`] and [`copy_window_size`] before the command starts, so its first
//!    prompt already sees the right size and its first bytes pass unchanged;
//! 3. hand [`Pty::peer`] to the command (at a numbered fd announced by [`ENV_CONSOLE_FD`]), then
//!    **close the caller's copy**: the relay ends when the last holder of the pts closes it;
//! 4. poll [`Relay::poll_fds`] together with the command's pidfd (and a signalfd: on
//!    `SIGWINCH`, [`copy_window_size`] again);
//! 5. when the command ended, [`Relay::drain`], then drop the [`RawTerminal`] (restores).
//!
//! See pty(7), termios(3), ioctl_tty(2), and docs/man/ns-pty.1.md.

pub mod attached;
pub mod console_socket;
pub mod pty;
pub mod relay;
mod sys;
pub mod terminal;

pub use attached::{Attached, Caller};
pub use console_socket::ConsoleSocket;
pub use pty::{Pty, open_pty};
pub use relay::Relay;
pub use terminal::{RawTerminal, copy_window_size, first_terminal, raw_mode, usable_size};

/// The variable announcing the fd number of the console (the pts peer) to the next stage:
/// `ns-exec` passes it on to `ns-init`, which makes it the container's terminal.
pub const ENV_CONSOLE_FD: &str = common::handoff::ENV_CONSOLE_FD;

/// The fd number `ns-pty` gives the console in the command it runs.
pub const CONSOLE_FD: i32 = 3;

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    sys::is_terminal(fd)
}

/// `TIOCSCTTY` on `fd`: makes it the controlling terminal of the caller's session, which the
/// caller must lead (after `setsid`). Async-signal-safe, for use between fork and exec.
pub fn set_controlling_terminal(fd: std::os::fd::RawFd) -> Result<(), nix::errno::Errno> {
    sys::set_controlling(fd, false)
}
