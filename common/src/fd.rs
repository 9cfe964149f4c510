//! Taking ownership of inherited fd numbers, and handing fds on.
//!
//! An fd number from argv or the environment is the one place a raw fd enters our code. It is
//! checked to be open and marked close-on-exec at once, so it reaches nothing we exec unless it
//! is handed on again on purpose with [`hand_on`].

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

/// Parses an fd number from `text` (a flag value or variable named `what`), checks that it is
/// open, marks it close-on-exec and takes ownership of it.
pub fn take(text: &str, what: &str) -> Result<OwnedFd> {
    let fd: RawFd = text
        .parse()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| Error::usage(format!("{what}: {text:?} is not an fd number")))?;
    if fd <= 2 {
        return Err(Error::usage(format!(
            "{what}: fd {fd} is stdio, not a handoff fd"
        )));
    }
    // SAFETY: F_GETFD on any integer is harmless; it only reports whether the fd is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(Error::sys(format!("{what}: use fd {fd}"), Errno::last()));
    }
    // SAFETY: the fd is open (checked above) and was handed to this process to own by the
    // protocol; nothing else in this process refers to it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_cloexec(&owned, true).map_err(|e| Error::sys(format!("{what}: fd {fd}"), e))?;
    Ok(owned)
}

/// Sets or clears `FD_CLOEXEC` on `fd`.
pub fn set_cloexec(fd: &impl AsFd, on: bool) -> std::result::Result<(), Errno> {
    let flag = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(flag)).map(drop)
}

/// Makes `fd` available as number `target` in the next exec: `dup3` leaves the copy without
/// `FD_CLOEXEC`; when `fd` already has that number, the flag is cleared instead.
pub fn hand_on(fd: &impl AsFd, target: RawFd) -> std::result::Result<(), Errno> {
    let raw = fd.as_fd().as_raw_fd();
    if raw == target {
        return set_cloexec(fd, false);
    }
    // SAFETY: dup3 onto a number this process reserved for the handoff; the caller has made
    // sure nothing it still uses lives at `target`.
    Errno::result(unsafe { libc::dup3(raw, target, 0) }).map(drop)
}
