//! The caller's terminal: raw mode while the relay runs, and its window size.
//!
//! In raw mode the caller's terminal passes every byte through unchanged: no echo, no line
//! editing, no `^C` turned into `SIGINT`, no `\n` → `\r\n`. The pty's own line discipline does
//! all of that for the command, exactly once, as a local terminal would. The settings are
//! restored when [`RawTerminal`] is dropped: every exit path of ns-pty (the command's end, an
//! error, a forwarded `SIGTERM`) returns through that drop, since ns-pty reads its signals
//! from a signalfd instead of dying of them. Only `SIGKILL` leaves the terminal raw.
//!
//! The window size is copied from the caller's terminal to the master before the command
//! starts, and again on each `SIGWINCH`; setting it on the master makes the kernel send
//! `SIGWINCH` to the command's foreground process group. See termios(3) (`cfmakeraw`),
//! ioctl_tty(2) (`TIOCGWINSZ`, `TIOCSWINSZ`).

use nix::errno::Errno;
use nix::libc;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;
use common::{Context, Error, Result};

/// The settings `cfmakeraw(3)` makes from `t`: input bytes unchanged (no CR/NL mapping, no
/// flow control, no stripping), output unprocessed, no echo, no canonical mode, no signals
/// from keys, 8-bit characters, and a read returns as soon as one byte is there.
pub fn raw_mode(t: &libc::termios) -> libc::termios {
    let mut r = *t;
    r.c_iflag &= !(libc::IGNBRK
        | libc::BRKINT
        | libc::PARMRK
        | libc::ISTRIP
        | libc::INLCR
        | libc::IGNCR
        | libc::ICRNL
        | libc::IXON);
    r.c_oflag &= !libc::OPOST;
    r.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
    r.c_cflag &= !(libc::CSIZE | libc::PARENB);
    r.c_cflag |= libc::CS8;
    r.c_cc[libc::VMIN] = 1;
    r.c_cc[libc::VTIME] = 0;
    r
}

/// The caller's terminal in raw mode; dropping it restores the settings it had.
#[derive(Debug)]
pub struct RawTerminal {
    fd: OwnedFd,
    saved: libc::termios,
    restored: bool,
}

impl RawTerminal {
    /// Puts the terminal `fd` in raw mode. `Ok(None)` when `fd` is not a terminal (a pipe, a
    /// file): then there is nothing to change or restore.
    pub fn enter(fd: BorrowedFd<'_>) -> Result<Option<RawTerminal>> {
        let saved = match sys::get_termios(fd) {
            Ok(t) => t,
            Err(Errno::ENOTTY | Errno::EINVAL) => return Ok(None),
            Err(e) => return Err(Error::sys("read the terminal settings", e)),
        };
        // Our own copy of the fd, so the restore does not depend on the caller keeping theirs.
        let fd = fd
            .try_clone_to_owned()
            .ctx(|| "duplicate the terminal fd".into())?;
        let raw = RawTerminal {
            fd,
            saved,
            restored: false,
        };
        raw.reapply()?;
        Ok(Some(raw))
    }

    /// Puts the terminal in raw mode again (after `SIGCONT`: a shell may have reset it while
    /// we were stopped). `TCSANOW`: flushing would drop what the user typed ahead.
    pub fn reapply(&self) -> Result<()> {
        sys::set_termios(self.fd.as_fd(), libc::TCSANOW, &raw_mode(&self.saved))
            .ctx(|| "put the terminal in raw mode".into())
    }

    /// Gives the terminal its saved settings back for a while (ns-pty is being stopped), until
    /// [`RawTerminal::reapply`]; the drop still restores them.
    pub fn suspend(&self) -> Result<()> {
        self.restore_ref()
    }

    /// The settings the terminal had before, restored on drop.
    pub fn saved(&self) -> &libc::termios {
        &self.saved
    }

    /// Restores the saved settings now, reporting a failure (drop ignores it).
    pub fn restore(mut self) -> Result<()> {
        self.restored = true;
        self.restore_ref()
    }

    fn restore_ref(&self) -> Result<()> {
        // TCSADRAIN: what the relay already wrote is shown with the raw settings it was meant
        // for, before the caller's settings come back.
        sys::set_termios(self.fd.as_fd(), libc::TCSADRAIN, &self.saved)
            .ctx(|| "restore the terminal settings".into())
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // Nothing to report to from a drop; the terminal may already be gone (hang-up).
        if !self.restored {
            let _ = self.restore_ref();
        }
    }
}

/// The size to give the pty for the caller's size `ws`: `None` when the caller's terminal does
/// not know its size (a serial line or a fresh pty reports 0 rows or columns), so the pty keeps
/// whatever it has rather than telling the command it has no room at all.
pub fn usable_size(ws: libc::winsize) -> Option<libc::winsize> {
    (ws.ws_row > 0 && ws.ws_col > 0).then_some(ws)
}

/// Copies the window size of the terminal `from` to the terminal `to` (the master). Nothing
/// happens when `from` is not a terminal or does not know its size.
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<()> {
    let ws = match sys::get_winsize(from) {
        Ok(ws) => ws,
        Err(Errno::ENOTTY | Errno::EINVAL) => return Ok(()),
        Err(e) => return Err(Error::sys("read the window size", e)),
    };
    match usable_size(ws) {
        Some(ws) => sys::set_winsize(to, &ws)
            .ctx(|| format!("set the pty's window size to {}x{}", ws.ws_col, ws.ws_row)),
        None => Ok(()),
    }
}

/// The first of `fds` that is a terminal: where the window size comes from (stdin, else
/// stdout, so `printf ... | ns-pty -- CMD` run in a terminal still gets its size).
pub fn first_terminal<'a>(fds: &[BorrowedFd<'a>]) -> Option<BorrowedFd<'a>> {
    fds.iter().copied().find(|fd| sys::is_terminal(*fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pty::open_pty;

    fn cooked() -> libc::termios {
        // SAFETY: termios is plain integers; all zeroes is valid.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        t.c_iflag = libc::ICRNL | libc::IXON | libc::BRKINT | libc::IUTF8;
        t.c_oflag = libc::OPOST | libc::ONLCR;
        t.c_lflag = libc::ECHO | libc::ICANON | libc::ISIG | libc::IEXTEN | libc::ECHOE;
        t.c_cflag = libc::CS7 | libc::PARENB | libc::CREAD;
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = 5;
        t.c_cc[libc::VINTR] = 3;
        t
    }

    #[test]
    fn raw_mode_clears_what_cfmakeraw_clears() {
        let r = raw_mode(&cooked());
        assert_eq!(r.c_iflag & (libc::ICRNL | libc::IXON | libc::BRKINT), 0);
        assert_eq!(r.c_oflag & libc::OPOST, 0);
        assert_eq!(
            r.c_lflag & (libc::ECHO | libc::ICANON | libc::ISIG | libc::IEXTEN),
            0
        );
        assert_eq!(r.c_cflag & libc::CSIZE, libc::CS8);
        assert_eq!(r.c_cflag & libc::PARENB, 0);
        assert_eq!((r.c_cc[libc::VMIN], r.c_cc[libc::VTIME]), (1, 0));
    }

    #[test]
    fn raw_mode_keeps_what_it_does_not_own() {
        let r = raw_mode(&cooked());
        // UTF-8 input, ONLCR under a cleared OPOST, CREAD, ECHOE and the control characters
        // stay, so restoring brings back exactly what was there.
        assert_ne!(r.c_iflag & libc::IUTF8, 0);
        assert_ne!(r.c_oflag & libc::ONLCR, 0);
        assert_ne!(r.c_cflag & libc::CREAD, 0);
        assert_ne!(r.c_lflag & libc::ECHOE, 0);
        assert_eq!(r.c_cc[libc::VINTR], 3);
    }

    #[test]
    fn raw_mode_matches_the_c_library() {
        let mut theirs = cooked();
        // SAFETY: cfmakeraw edits the termios it is given in place.
        unsafe { libc::cfmakeraw(&mut theirs) };
        let ours = raw_mode(&cooked());
        assert_eq!(ours.c_iflag, theirs.c_iflag);
        assert_eq!(ours.c_oflag, theirs.c_oflag);
        assert_eq!(ours.c_lflag, theirs.c_lflag);
        assert_eq!(ours.c_cflag, theirs.c_cflag);
        assert_eq!(ours.c_cc[libc::VMIN], theirs.c_cc[libc::VMIN]);
        assert_eq!(ours.c_cc[libc::VTIME], theirs.c_cc[libc::VTIME]);
    }

    fn ws(rows: u16, cols: u16) -> libc::winsize {
        libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }

    #[test]
    fn an_unknown_size_is_not_copied() {
        assert!(usable_size(ws(0, 0)).is_none());
        assert!(usable_size(ws(24, 0)).is_none());
        assert!(usable_size(ws(0, 80)).is_none());
        assert_eq!(
            usable_size(ws(24, 80)).map(|w| (w.ws_row, w.ws_col)),
            Some((24, 80))
        );
    }

    /// Real ptys, no privileges: the size travels from one terminal to the other, and an
    /// unknown size leaves the target as it was.
    #[test]
    fn window_size_is_copied_between_terminals() {
        let outer = open_pty().unwrap();
        let inner = open_pty().unwrap();
        sys::set_winsize(outer.master.as_fd(), &ws(33, 101)).unwrap();
        copy_window_size(outer.peer.as_fd(), inner.master.as_fd()).unwrap();
        let got = sys::get_winsize(inner.peer.as_fd()).unwrap();
        assert_eq!((got.ws_row, got.ws_col), (33, 101));

        sys::set_winsize(outer.master.as_fd(), &ws(0, 0)).unwrap();
        copy_window_size(outer.peer.as_fd(), inner.master.as_fd()).unwrap();
        let got = sys::get_winsize(inner.peer.as_fd()).unwrap();
        assert_eq!((got.ws_row, got.ws_col), (33, 101));
    }

    /// A pipe has no size and no settings: both calls do nothing.
    #[test]
    fn a_pipe_is_left_alone() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let pty = open_pty().unwrap();
        copy_window_size(r.as_fd(), pty.master.as_fd()).unwrap();
        assert!(RawTerminal::enter(r.as_fd()).unwrap().is_none());
        assert!(first_terminal(&[r.as_fd()]).is_none());
        assert!(first_terminal(&[r.as_fd(), pty.peer.as_fd()]).is_some());
    }

    /// On a real pts: raw while held, the exact old settings after the drop.
    #[test]
    fn raw_terminal_restores_on_drop() {
        let pty = open_pty().unwrap();
        let before = sys::get_termios(pty.peer.as_fd()).unwrap();
        {
            let raw = RawTerminal::enter(pty.peer.as_fd())
                .unwrap()
                .expect("a terminal");
            let now = sys::get_termios(pty.peer.as_fd()).unwrap();
            assert_eq!(now.c_lflag & (libc::ECHO | libc::ICANON | libc::ISIG), 0);
            assert_eq!(raw.saved().c_lflag, before.c_lflag);
        }
        let after = sys::get_termios(pty.peer.as_fd()).unwrap();
        assert_eq!(
            (after.c_iflag, after.c_oflag, after.c_cflag, after.c_lflag),
            (
                before.c_iflag,
                before.c_oflag,
                before.c_cflag,
                before.c_lflag
            )
        );
        assert_eq!(after.c_cc, before.c_cc);
    }
}
