//! The console-socket protocol of the OCI runtimes (`runc`/`crun`/`youki --console-socket`):
//! we listen on a unix socket, the runtime allocates the container's pty, connects and sends
//! the master as one `SCM_RIGHTS` fd (the data part is the pty's name, which we ignore).
//!
//! The socket is a filesystem socket, never an abstract one (a path starting with `@` is just a
//! file name here): an abstract socket is reachable from any process sharing the network
//! namespace, whatever its uid (CVE-2020-15257). It is created with umask 077, so only its
//! owner (root) can connect, and removed as soon as the master arrived, or when ns-pty ends.
//! The received fd is close-on-exec from birth (`MSG_CMSG_CLOEXEC`) and must be a pty master,
//! checked with `TIOCGPTN`, which only a master answers. See unix(7), cmsg(3), runc's
//! docs/terminals.md.

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, accept4,
    bind, listen, recvmsg, socket,
};
use nix::sys::stat::{Mode, umask};
use std::io::IoSliceMut;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::sys;
use common::{Context, Error, Result, ns_log};

/// A listening console socket; its file is removed on drop (when it is still ours).
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: Option<OwnedFd>,
    path: PathBuf,
    /// Device and inode of the socket file we made, so drop never removes someone else's.
    id: (u64, u64),
}

impl ConsoleSocket {
    /// Creates the socket file `path` (which must not exist) and listens on it.
    pub fn bind(path: &Path) -> Result<ConsoleSocket> {
        let what = || format!("console socket {}", path.display());
        let addr = UnixAddr::new(path).ctx(what)?;
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .ctx(what)?;
        // Only the owner may connect: the file's mode comes from the umask at bind time. The
        // umask is the process's, so a program calling this from several threads at once must
        // serialise the calls (ns-pty has one thread; the tests hold a lock).
        let old = umask(Mode::from_bits_truncate(0o077));
        let bound = bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr);
        umask(old);
        bound.ctx(what)?;
        let meta = std::fs::symlink_metadata(path).ctx(what)?;
        let sock = ConsoleSocket {
            listener: Some(fd),
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
        };
        if let Some(l) = &sock.listener {
            listen(l, Backlog::new(1).unwrap_or(Backlog::MAXCONN)).ctx(what)?;
        }
        Ok(sock)
    }

    /// The listening fd, to poll for a connection (`POLLIN`); `None` once the master arrived.
    pub fn listener(&self) -> Option<BorrowedFd<'_>> {
        self.listener.as_ref().map(|l| l.as_fd())
    }

    /// Accepts one connection and receives the master from it; then stops listening and
    /// removes the socket file. Blocks until a runtime connects when none has yet.
    pub fn receive_master(&mut self) -> Result<OwnedFd> {
        let what = || format!("receive the console from {}", self.path.display());
        let listener = self
            .listener
            .as_ref()
            .ok_or_else(|| Error::msg(what(), "the console was received already"))?;
        let conn = loop {
            match accept4(
                std::os::fd::AsRawFd::as_raw_fd(listener),
                SockFlag::SOCK_CLOEXEC,
            ) {
                // SAFETY: accept4 returned a fresh fd owned by nobody else.
                Ok(fd) => break unsafe { OwnedFd::from_raw_fd(fd) },
                Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
                Err(e) => return Err(Error::sys(what(), e)),
            }
        };
        let master = receive_fd(conn.as_fd()).map_err(|e| e.context(what()))?;
        sys::pts_number(master.as_fd())
            .map_err(|_| Error::msg(what(), "the fd received is not a pty master"))?;
        ns_log!("console received");
        self.listener = None;
        self.remove();
        Ok(master)
    }

    /// Removes the socket file when it is still the one we made.
    fn remove(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        if self.listener.is_some() {
            self.remove();
        }
    }
}

/// Receives one message from `conn` and returns the single fd it carried; any other fds in it
/// are closed.
fn receive_fd(conn: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let fds: Vec<RawFd> = loop {
        let mut iov = [IoSliceMut::new(&mut data)];
        match recvmsg::<UnixAddr>(
            std::os::fd::AsRawFd::as_raw_fd(&conn),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg
                    .cmsgs()
                    .map_err(|e| Error::sys("read the control message", e))?
                {
                    if let ControlMessageOwned::ScmRights(received) = c {
                        fds.extend(received);
                    }
                }
                break fds;
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("recvmsg", e)),
        }
    };
    // SAFETY: SCM_RIGHTS installed these fds in our table just now; nobody else owns them.
    let mut owned: Vec<OwnedFd> = fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    if owned.len() != 1 {
        return Err(Error::msg(
            "recvmsg",
            format!("expected one fd (SCM_RIGHTS), got {}", owned.len()),
        ));
    }
    owned
        .pop()
        .ok_or_else(|| Error::msg("recvmsg", "expected one fd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by every test that binds: `bind` sets the process-wide umask for a moment.
    static UMASK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn bind_locked(path: &Path) -> Result<ConsoleSocket> {
        let _held = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        ConsoleSocket::bind(path)
    }
    use crate::pty::open_pty;
    use nix::sys::socket::{ControlMessage, connect, sendmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    fn temp_path(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ns-pty-test-{}-{tag}.sock", std::process::id()))
    }

    fn send(path: &Path, fds: &[RawFd]) {
        let s = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        connect(s.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
        let cmsg = [ControlMessage::ScmRights(fds)];
        sendmsg::<UnixAddr>(
            s.as_raw_fd(),
            &[IoSlice::new(b"/dev/ptmx")],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .unwrap();
    }

    /// No privileges: a master sent the way runc sends it arrives, close-on-exec, and the
    /// socket file is gone afterwards.
    #[test]
    fn receives_a_master_like_runc_sends_it() {
        let path = temp_path("ok");
        let mut sock = bind_locked(&path).unwrap();
        let mode = std::fs::symlink_metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        let pty = open_pty().unwrap();
        send(&path, &[pty.master.as_raw_fd()]);
        let master = sock.receive_master().unwrap();
        assert!(!path.exists());
        assert!(sock.listener().is_none());
        let flags = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        nix::unistd::write(&master, b"y\n").unwrap();
        let mut buf = [0u8; 8];
        let n = nix::unistd::read(&pty.peer, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"y\n");
    }

    /// A peer (or anything not a master) is refused; the socket file goes away on drop.
    #[test]
    fn refuses_what_is_not_a_master() {
        let path = temp_path("bad");
        let mut sock = bind_locked(&path).unwrap();
        let pty = open_pty().unwrap();
        send(&path, &[pty.peer.as_raw_fd()]);
        let e = sock.receive_master().unwrap_err();
        assert!(e.to_string().contains("not a pty master"), "{e}");
        drop(sock);
        assert!(!path.exists());
    }

    /// An existing file is never replaced.
    #[test]
    fn an_existing_path_is_an_error() {
        let path = temp_path("exists");
        std::fs::write(&path, b"").unwrap();
        let e = bind_locked(&path).unwrap_err();
        assert!(e.to_string().contains("Address already in use"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }
}
