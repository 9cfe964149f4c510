//! The sync channel between `ns-exec` and the container's first process.
//!
//! A `SOCK_SEQPACKET` socketpair, close-on-exec on both ends: one `send` is one JSON message,
//! so there is no framing to get wrong and a short read is impossible. The exchange:
//!
//! 1. child → parent `ready`: ns-init runs and holds the namespaces;
//!    parent → child, when ns-exec made the container's network namespace beside the clone
//!    ([`crate::ns::make_net_namespace`]), `netns` carrying it as an `SCM_RIGHTS` fd, at any time
//!    before `go`; the child joins it before it mounts `/sys`;
//! 2. parent → child `go`: the host side (pid file, cgroup, network) is done;
//! 3. child → parent, with a terminal allocated inside the container, `console` carrying the
//!    pty master as an `SCM_RIGHTS` fd for the parent to relay;
//! 4. child → parent either `error` (setup or exec failed; it carries the step, errno and exit
//!    status) or nothing: the socket is close-on-exec, so a successful `execve` of the command
//!    shows as EOF. This is the trick `std::process::Command::spawn` uses.
//!
//! EOF where a message is due means the peer died: the child aborts instead of going on
//! unconfigured (the 2014 pipe took EOF for "go").

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Result};
use crate::handoff::VERSION;

/// The largest message either side sends; a longer one is a protocol error.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// An error as it crosses the channel: everything [`Error`] holds, plus the stage it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// The program that failed (`ns-init`).
    pub stage: String,
    /// What it was doing.
    pub what: String,
    /// The errno, as a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// Explanation without an errno.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The exit status the error maps to.
    pub code: i32,
}

impl WireError {
    /// Wraps `err` as raised by `stage`.
    pub fn new(stage: &str, err: &Error) -> Self {
        WireError {
            stage: stage.to_string(),
            what: err.what.clone(),
            errno: err.errno.map(|e| e as i32),
            detail: err.detail.clone(),
            code: err.code,
        }
    }

    /// ns-dmz's `exec_failed` with `errno`, as the error ns-init reports when the exec of
    /// `command` fails.
    pub fn exec_failed(errno: i32, command: Option<&std::ffi::OsStr>) -> Self {
        let shown = command.map(|c| c.to_string_lossy()).unwrap_or_default();
        WireError::new(
            "ns-init",
            &Error::exec(format!("{shown:?}"), Errno::from_raw(errno)),
        )
    }

    /// Back to an [`Error`], for the receiver to print as its own.
    pub fn into_error(self) -> Error {
        Error {
            what: self.what,
            errno: self.errno.map(Errno::from_raw),
            detail: self.detail,
            code: self.code,
        }
    }
}

/// The messages of the sync protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Message {
    /// Child → parent: the container's first process runs and holds its namespaces.
    Ready,
    /// Parent → child: the host side is done; go on with the setup. Carries one network
    /// context per `networks[]` entry, in order (absent when there are none).
    Go {
        /// The contexts for the container side.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        networks: Vec<crate::net::NetContext>,
    },
    /// Child → parent: setup or exec failed.
    Error(WireError),
    /// Child → parent: the container's console was allocated in its own devpts; the packet
    /// carries the pty master as an `SCM_RIGHTS` fd, for the parent to relay.
    Console,
    /// Parent → child, before `go`: the container's network namespace, made beside the clone;
    /// the packet carries it as an `SCM_RIGHTS` fd, for the child to join.
    Netns,
    /// ns-dmz → parent: the `execve` of the command failed with this errno (ns-dmz has no
    /// room for more; the parent knows the command).
    #[serde(rename = "exec_failed")]
    ExecFailed {
        /// The errno, as a number.
        errno: i32,
    },
}

/// What the child gets with `go`.
#[derive(Debug)]
pub struct Go {
    /// The network contexts, one per `networks[]` entry, in order.
    pub networks: Vec<crate::net::NetContext>,
    /// The network namespace, when the parent sent it before `go` (`netns`).
    pub netns: Option<OwnedFd>,
}

/// What the parent learns after `go`.
#[derive(Debug)]
pub enum AfterGo {
    /// EOF: the command was exec'd.
    Exec,
    /// Setup or exec failed.
    Error(WireError),
    /// The container's console master, to relay; more follows.
    Console(OwnedFd),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    #[serde(flatten)]
    msg: Message,
}

/// Encodes one message, with our version.
fn encode(msg: Message) -> Vec<u8> {
    serde_json::to_vec(&Envelope { v: VERSION, msg })
        .expect("sync messages serialise without failure")
}

/// Decodes one message: JSON with `"v"` equal to our version; unknown fields are ignored.
pub fn decode(bytes: &[u8]) -> Result<Message> {
    let env: Envelope = serde_json::from_slice(bytes)
        .map_err(|e| Error::msg("receive on sync socket", format!("malformed message: {e}")))?;
    if env.v != VERSION {
        return Err(Error::msg(
            "receive on sync socket",
            format!("protocol version {} (this side speaks {VERSION})", env.v),
        ));
    }
    Ok(env.msg)
}

/// One end of the sync socket.
#[derive(Debug)]
pub struct SyncSocket {
    fd: OwnedFd,
}

impl SyncSocket {
    /// A connected pair: (parent end, child end), both close-on-exec.
    pub fn pair() -> Result<(SyncSocket, SyncSocket)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::sys("create sync socketpair", e))?;
        Ok((SyncSocket { fd: a }, SyncSocket { fd: b }))
    }

    /// Wraps an fd taken from the protocol (`NS_SYNC_FD`).
    pub fn from_fd(fd: OwnedFd) -> Self {
        SyncSocket { fd }
    }

    /// The socket's fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sends one message.
    pub fn send(&self, msg: Message) -> Result<()> {
        let bytes = encode(msg);
        loop {
            match send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("send on sync socket", e)),
            }
        }
    }

    /// Receives one message; `None` means the peer closed its end (EOF). An fd sent with it
    /// is closed: only [`SyncSocket::wait_after_go`] and [`SyncSocket::recv_netns`] take fds.
    pub fn recv(&self) -> Result<Option<Message>> {
        Ok(self.recv_with_fd()?.map(|(msg, _)| msg))
    }

    /// Receives one message and the fd sent with it, if any (close-on-exec at once).
    fn recv_with_fd(&self) -> Result<Option<(Message, Option<OwnedFd>)>> {
        use nix::sys::socket::{ControlMessageOwned, recv, recvmsg};
        // The next message's length first (MSG_TRUNC answers it whatever the buffer), so the
        // buffer is the message's size, not MAX_MESSAGE zeroed bytes on every receive.
        //
        // ECONNRESET: the peer closed its end with messages of ours unread (a child that
        // failed before reading `go`). The kernel reports that once, ahead of whatever the
        // peer sent before closing, and clears it: so receive again, and the child's last
        // messages (its error) come, then end of file. Never more than once per peer.
        let mut reset = false;
        let len = loop {
            match recv(
                self.fd.as_raw_fd(),
                &mut [],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) if !reset => reset = true,
                Err(Errno::ECONNRESET) => return Ok(None),
                Err(e) => return Err(Error::sys("receive on sync socket", e)),
            }
        };
        let mut buf = vec![0u8; len.min(MAX_MESSAGE) + 1];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fd = None;
                    for cmsg in msg
                        .cmsgs()
                        .map_err(|e| Error::sys("receive on sync socket", e))?
                    {
                        if let ControlMessageOwned::ScmRights(fds) = cmsg {
                            for raw in fds {
                                // SAFETY: the kernel installed this fd in our table for us.
                                let owned = unsafe {
                                    <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw)
                                };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (msg.bytes, fd);
                }
                Err(Errno::EINTR) => continue,
                // As above: the reset can land between the peek and this receive.
                Err(Errno::ECONNRESET) if !reset => reset = true,
                Err(Errno::ECONNRESET) => return Ok(None),
                Err(e) => return Err(Error::sys("receive on sync socket", e)),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        if n > MAX_MESSAGE {
            return Err(Error::msg("receive on sync socket", "message too long"));
        }
        decode(&buf[..n]).map(|m| Some((m, fd)))
    }

    /// Child: send the console's master to the parent.
    pub fn send_console(&self, master: BorrowedFd<'_>) -> Result<()> {
        self.send_with_fd(
            Message::Console,
            master,
            "send the console on the sync socket",
        )
    }

    /// Parent: send the container's network namespace, made beside the clone.
    pub fn send_netns(&self, netns: BorrowedFd<'_>) -> Result<()> {
        self.send_with_fd(
            Message::Netns,
            netns,
            "send the network namespace on the sync socket",
        )
    }

    /// Child: receive the network namespace the parent made. EOF (the parent died) or another
    /// message is an error: abort.
    pub fn recv_netns(&self) -> Result<OwnedFd> {
        let what = "wait for the network namespace on the sync socket";
        match self.recv_with_fd()? {
            Some((Message::Netns, Some(fd))) => Ok(fd),
            Some((Message::Netns, None)) => {
                Err(Error::msg(what, "the message came without its fd"))
            }
            None => Err(Error::msg(
                what,
                "ns-exec went away before sending the network namespace",
            )),
            Some((other, _)) => Err(unexpected("netns", &other)),
        }
    }

    /// Sends `msg` with `fd` attached (`SCM_RIGHTS`).
    fn send_with_fd(&self, msg: Message, fd: BorrowedFd<'_>, what: &str) -> Result<()> {
        use nix::sys::socket::{ControlMessage, sendmsg};
        let bytes = encode(msg);
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &[std::io::IoSlice::new(&bytes)],
                &cmsg,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys(what, e)),
            }
        }
    }

    /// Child: tell the parent the container process runs.
    pub fn announce_ready(&self) -> Result<()> {
        self.send(Message::Ready)
    }

    /// Child: block until the parent's `go`. EOF (parent died) is an error: abort. A network
    /// namespace the parent sent first (`netns`, when the child waited for `go` before the
    /// step that joins it) comes back with it.
    pub fn wait_for_go(&self) -> Result<Go> {
        let mut netns = None;
        loop {
            match self.recv_with_fd()? {
                Some((Message::Go { networks }, _)) => return Ok(Go { networks, netns }),
                Some((Message::Netns, Some(fd))) if netns.is_none() => netns = Some(fd),
                None => {
                    return Err(Error::msg(
                        "wait for go on sync socket",
                        "ns-exec went away before releasing the container",
                    ));
                }
                Some((other, _)) => return Err(unexpected("go", &other)),
            }
        }
    }

    /// Child: report a failure to the parent. Best effort: if the parent is gone, there is
    /// nobody to tell.
    pub fn report_error(&self, stage: &str, err: &Error) {
        let _ = self.send(Message::Error(WireError::new(stage, err)));
    }

    /// Parent: wait for the child's `ready`. `Some` is the error the child reported instead;
    /// EOF (the child died without a word) is an error of its own.
    pub fn wait_for_ready(&self) -> Result<Option<WireError>> {
        match self.recv()? {
            Some(Message::Ready) => Ok(None),
            Some(Message::Error(e)) => Ok(Some(e)),
            None => Err(Error::msg(
                "wait for the container to start",
                "it exited before it was ready",
            )),
            Some(other) => Err(unexpected("ready", &other)),
        }
    }

    /// Parent: the error the child sent, if one is waiting now (never blocks): after a
    /// failure of the parent's own that the child may have caused by failing first.
    pub fn pending_error(&self, command: Option<&std::ffi::OsStr>) -> Option<WireError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        loop {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 => {}
                _ => return None,
            }
            match self.recv().ok()?? {
                Message::Error(e) => return Some(e),
                Message::ExecFailed { errno } => {
                    return Some(WireError::exec_failed(errno, command));
                }
                // `ready` (sent before the failure), then what followed it.
                _ => continue,
            }
        }
    }

    /// Parent: release the child.
    pub fn send_go(&self, networks: Vec<crate::net::NetContext>) -> Result<()> {
        self.send(Message::Go { networks })
    }

    /// Parent: after `go`, EOF means the command was exec'd; an error message means setup or
    /// exec failed, and carries the error to report (an `exec_failed` from ns-dmz is reported
    /// as the exec of `command` failing); a console message carries the master of a console
    /// allocated inside (then call again).
    pub fn wait_after_go(&self, command: Option<&std::ffi::OsStr>) -> Result<AfterGo> {
        match self.recv_with_fd()? {
            None => Ok(AfterGo::Exec),
            Some((Message::Error(e), _)) => Ok(AfterGo::Error(e)),
            Some((Message::ExecFailed { errno }, _)) => {
                Ok(AfterGo::Error(WireError::exec_failed(errno, command)))
            }
            Some((Message::Console, Some(fd))) => Ok(AfterGo::Console(fd)),
            Some((Message::Console, None)) => Err(Error::msg(
                "sync protocol",
                "a console message came without its fd",
            )),
            Some((other, _)) => Err(unexpected("exec or error", &other)),
        }
    }
}

impl AsFd for SyncSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn unexpected(expected: &str, got: &Message) -> Error {
    let got = match got {
        Message::Ready => "ready",
        Message::Go { .. } => "go",
        Message::Error(_) => "error",
        Message::Console => "console",
        Message::Netns => "netns",
        Message::ExecFailed { .. } => "exec_failed",
    };
    Error::msg(
        "sync protocol",
        format!("expected \"{expected}\", received \"{got}\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that sends its error and closes with a message of ours unread (a child failing
    /// before it read `go`) makes the kernel report ECONNRESET first: the error still arrives,
    /// then end of file.
    #[test]
    fn an_error_sent_before_a_reset_is_received() {
        let (parent, child) = SyncSocket::pair().unwrap();
        parent.send_go(Vec::new()).unwrap();
        child.report_error("ns-init", &Error::msg("mount", "refused"));
        drop(child);
        let AfterGo::Error(e) = parent.wait_after_go(None).unwrap() else {
            panic!("the error was lost to the reset");
        };
        assert_eq!(e.what, "mount");
        assert!(matches!(parent.wait_after_go(None).unwrap(), AfterGo::Exec));
    }

    /// ns-dmz's report, byte for byte as it writes it, is the exec error ns-init would send.
    #[test]
    fn ns_dmz_exec_failed_is_the_exec_error() {
        let m = decode(br#"{"v":1,"type":"exec_failed","errno":2}"#).unwrap();
        assert_eq!(m, Message::ExecFailed { errno: 2 });
        let (parent, child) = SyncSocket::pair().unwrap();
        child.send(m).unwrap();
        let AfterGo::Error(e) = parent
            .wait_after_go(Some(std::ffi::OsStr::new("/bin/x")))
            .unwrap()
        else {
            panic!("not an error");
        };
        assert_eq!(e.stage, "ns-init");
        assert_eq!(e.what, "exec \"/bin/x\"");
        assert_eq!((e.errno, e.code), (Some(2), 127));
        let e = WireError::exec_failed(8, Some(std::ffi::OsStr::new("x")));
        assert_eq!(e.code, 126);
    }

    #[test]
    fn handshake_round_trips() {
        let (parent, child) = SyncSocket::pair().unwrap();
        child.announce_ready().unwrap();
        assert_eq!(parent.wait_for_ready().unwrap(), None);
        // Any fd stands in for a network namespace here: the socket does not look.
        let (ns, _ns_w) = nix::unistd::pipe().unwrap();
        let ns_ino = nix::sys::stat::fstat(&ns).unwrap().st_ino;
        parent.send_netns(ns.as_fd()).unwrap();
        let got = child.recv_netns().unwrap();
        assert_eq!(nix::sys::stat::fstat(&got).unwrap().st_ino, ns_ino);
        assert!(nix::fcntl::fcntl(&got, nix::fcntl::FcntlArg::F_GETFD).unwrap() & 1 == 1);
        parent.send_go(Vec::new()).unwrap();
        assert!(child.wait_for_go().unwrap().netns.is_none());
        // A child that waits for go before it joins the namespace gets it with go.
        parent.send_netns(ns.as_fd()).unwrap();
        parent.send_go(Vec::new()).unwrap();
        let go = child.wait_for_go().unwrap();
        assert_eq!(
            nix::sys::stat::fstat(go.netns.as_ref().unwrap())
                .unwrap()
                .st_ino,
            ns_ino
        );
        let err = Error::sys("mount proc on /proc", Errno::EPERM);
        let (r, _w) = nix::unistd::pipe().unwrap();
        child.send_console(r.as_fd()).unwrap();
        let AfterGo::Console(master) = parent.wait_after_go(None).unwrap() else {
            panic!("expected the console")
        };
        assert!(nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFD).unwrap() & 1 == 1);
        child.report_error("ns-init", &err);
        let AfterGo::Error(wire) = parent.wait_after_go(None).unwrap() else {
            panic!("expected an error")
        };
        assert_eq!(wire.stage, "ns-init");
        assert_eq!(wire.into_error(), err);
        drop(child);
        assert!(matches!(parent.wait_after_go(None).unwrap(), AfterGo::Exec));
    }

    #[test]
    fn eof_before_go_is_an_abort() {
        let (parent, child) = SyncSocket::pair().unwrap();
        drop(parent);
        assert!(child.wait_for_go().is_err());
    }

    #[test]
    fn unknown_fields_are_ignored_and_versions_checked() {
        let (a, b) = SyncSocket::pair().unwrap();
        send(
            a.fd.as_raw_fd(),
            br#"{"v":1,"type":"go","later":"field"}"#,
            MsgFlags::empty(),
        )
        .unwrap();
        assert_eq!(
            b.recv().unwrap(),
            Some(Message::Go {
                networks: Vec::new()
            })
        );
        send(
            a.fd.as_raw_fd(),
            br#"{"v":2,"type":"go"}"#,
            MsgFlags::empty(),
        )
        .unwrap();
        assert!(b.recv().is_err());
        send(a.fd.as_raw_fd(), b"not json", MsgFlags::empty()).unwrap();
        assert!(b.recv().is_err());
    }

    #[test]
    fn a_netns_message_without_its_fd_or_another_message_is_refused() {
        let (parent, child) = SyncSocket::pair().unwrap();
        parent.send(Message::Netns).unwrap();
        let err = child.recv_netns().unwrap_err().to_string();
        assert!(err.contains("without its fd"), "{err}");
        parent.send_go(Vec::new()).unwrap();
        let err = child.recv_netns().unwrap_err().to_string();
        assert!(err.contains(r#"expected "netns", received "go""#), "{err}");
        drop(parent);
        let err = child.recv_netns().unwrap_err().to_string();
        assert!(err.contains("went away"), "{err}");
    }

    #[test]
    fn wire_json_shape_is_stable() {
        let text = serde_json::to_string(&Envelope {
            v: 1,
            msg: Message::Error(WireError {
                stage: "ns-init".into(),
                what: "exec \"nope\"".into(),
                errno: Some(2),
                detail: None,
                code: 127,
            }),
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"type":"error","stage":"ns-init","what":"exec \"nope\"","errno":2,"code":127}"#
        );
    }
}
