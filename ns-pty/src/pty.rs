//! Allocating a pseudo-terminal: a master from `/dev/ptmx` and its peer, both close-on-exec.
//!
//! The pty comes from the devpts of the caller's mount namespace (the host's, for ns-exec),
//! not from the container's own devpts instance: ns-pty and ns-exec allocate it before the
//! container exists, so nothing has to travel back out of the container (runc's console
//! socket), and a pts of the host's devpts cannot be reached, renamed or replaced from inside.
//! The peer is opened through the master with `TIOCGPTPEER`, never as `/dev/pts/N` by path, so
//! no symlink or bind mount can make us open something else (CVE-2025-52565). See pty(7),
//! ioctl_tty(2) (`TIOCGPTPEER`, `TIOCSPTLCK`).

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, OwnedFd};

use crate::sys;
use common::{Context, Result};

/// A pseudo-terminal: the master we relay, and the peer the command gets as its terminal.
#[derive(Debug)]
pub struct Pty {
    /// The master side, kept by the relay.
    pub master: OwnedFd,
    /// The peer (the pts), handed to the command; close the relay's copy once the command has
    /// it, or the master never sees the hang-up that ends the relay.
    pub peer: OwnedFd,
}

/// Opens `/dev/ptmx` (`O_RDWR|O_NOCTTY|O_CLOEXEC`), unlocks its pts and opens the peer with
/// `TIOCGPTPEER`.
pub fn open_pty() -> Result<Pty> {
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /dev/ptmx".into())?;
    sys::unlock(master.as_fd()).ctx(|| "unlock the pts (TIOCSPTLCK)".into())?;
    let peer = sys::open_peer(master.as_fd()).ctx(|| "open the pts (TIOCGPTPEER)".into())?;
    Ok(Pty { master, peer })
}

impl Pty {
    /// The pts path as the caller's mount namespace names it (`/dev/pts/N`), for messages.
    pub fn pts_path(&self) -> Result<String> {
        let n = sys::pts_number(self.master.as_fd()).ctx(|| "get the pts number".into())?;
        Ok(format!("/dev/pts/{n}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs only a devpts at /dev/pts, no privileges.
    #[test]
    fn opens_an_unlocked_pair_that_talks() {
        let pty = open_pty().expect("open a pty");
        assert!(pty.pts_path().unwrap().starts_with("/dev/pts/"));
        assert!(sys::is_terminal(pty.peer.as_fd()));
        // Both ends are close-on-exec from birth.
        for fd in [&pty.master, &pty.peer] {
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
            assert_ne!(flags & libc::FD_CLOEXEC, 0);
        }
        nix::unistd::write(&pty.master, b"x\n").unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&pty.peer, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"x\n");
    }
}
