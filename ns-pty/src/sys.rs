//! The terminal ioctls `nix` does not wrap (or wraps with types we cannot keep), each behind a
//! small safe function.
//!
//! Every `unsafe` block of ns-pty lives here, with the reason it is sound. Errors come back as
//! `Errno`; callers add what they were doing. See ioctl_tty(2), pty(7), termios(3).

use nix::errno::Errno;
use nix::libc;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `TIOCSPTLCK` with 0: unlocks the pts of the master `master`, so its peer can be opened.
pub fn unlock(master: BorrowedFd<'_>) -> Result<(), Errno> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which points at a live local.
    Errno::result(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCSPTLCK,
            &unlock as *const libc::c_int,
        )
    })
    .map(drop)
}

/// `TIOCGPTN`: the number N of the pts `/dev/pts/N` of the master `master`.
pub fn pts_number(master: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer, which points at a live
    // local.
    Errno::result(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTN,
            &mut n as *mut libc::c_uint,
        )
    })?;
    Ok(n)
}

/// `TIOCGPTPEER` (Linux 4.13): opens the pts of the master `master` through the master itself,
/// with `O_RDWR|O_NOCTTY|O_CLOEXEC`, so no path is ever looked up (CVE-2025-52565).
pub fn open_peer(master: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    loop {
        // SAFETY: TIOCGPTPEER takes its open flags as an integer argument and returns a new fd.
        let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
        match Errno::result(ret) {
            // SAFETY: a successful TIOCGPTPEER returns a fresh fd owned by nobody else.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `tcgetattr(3)`: the terminal settings of `fd`.
pub fn get_termios(fd: BorrowedFd<'_>) -> Result<libc::termios, Errno> {
    // SAFETY: termios is a plain C struct of integers, for which all zeroes is a valid value.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes one termios through the pointer, which points at a live local.
    Errno::result(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    Ok(t)
}

/// `tcsetattr(3)` with `when` (`TCSANOW`, `TCSADRAIN`, `TCSAFLUSH`), retried on `EINTR`
/// (`TCSADRAIN` waits for output to drain, so a signal can interrupt it).
pub fn set_termios(fd: BorrowedFd<'_>, when: libc::c_int, t: &libc::termios) -> Result<(), Errno> {
    loop {
        // SAFETY: tcsetattr reads one termios through the pointer, which points at a live value.
        match Errno::result(unsafe { libc::tcsetattr(fd.as_raw_fd(), when, t) }) {
            Err(Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// `TIOCGWINSZ`: the window size of the terminal `fd`.
pub fn get_winsize(fd: BorrowedFd<'_>) -> Result<libc::winsize, Errno> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer, which points at a live local.
    Errno::result(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    })?;
    Ok(ws)
}

/// `TIOCSWINSZ`: sets the window size of the terminal `fd`; the kernel sends `SIGWINCH` to its
/// foreground process group when the size changed.
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one winsize through the pointer, which points at a live value.
    Errno::result(unsafe {
        libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws as *const libc::winsize)
    })
    .map(drop)
}

/// `TIOCSCTTY`: makes the terminal `fd` the controlling terminal of this process's session
/// (this process must lead the session). With `steal`, a terminal that is already the
/// controlling terminal of another session is taken from it (needs `CAP_SYS_ADMIN`).
/// Async-signal-safe, for use between fork and exec.
pub fn set_controlling(fd: RawFd, steal: bool) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument; no memory is passed.
    Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, libc::c_int::from(steal)) }).map(drop)
}

/// Whether `fd` is a terminal (`isatty(3)`).
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: isatty only inspects the fd.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}
