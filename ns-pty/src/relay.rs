//! The I/O relay between the caller (input, output) and a pty master, driven by the caller's
//! own `poll(2)` loop.
//!
//! The relay never blocks on the master: the master is non-blocking, input waiting for the
//! command sits in a bounded buffer, and input is not read while that buffer is full. So a
//! command that does not read its input never stops its output from flowing. Writes to the
//! output block (that is the caller's back-pressure); the caller's fds are never made
//! non-blocking, since their open file descriptions are shared with the caller's shell, which
//! would inherit the flag.
//!
//! Ends, and what they mean:
//! - **input ends** (a pipe's EOF, a terminal's hang-up): the pty's end-of-file character goes
//!   to the command once everything before it was written, so `printf 'cmd\n' | ns-pty -- sh`
//!   runs `cmd` and then ends, as typing `^D` would;
//! - **the master reads `EIO`**: every holder of the pts closed it; no more output can come;
//! - **the output fails** (`EPIPE`: the reader went away): the relay hangs up, closing the
//!   master, and the kernel sends `SIGHUP` to the command's session, as when a terminal
//!   window is closed.
//!
//! After the command ended, [`Relay::drain`] reads what is left in the master. A read of the
//! master flushes the kernel's pending tty buffer work before it reports `EAGAIN`, so every
//! byte the command wrote before it exited is read, and a grandchild that keeps the pts open
//! cannot make the drain hang. See pty(7), poll(2).

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::libc;
use nix::poll::PollFlags;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;
use common::{Context, Error, Result, ns_log};

/// The most input held for the command before the relay stops reading input.
const INPUT_LIMIT: usize = 64 * 1024;

/// The most read from the master in one go.
const CHUNK: usize = 64 * 1024;

/// The state of one relay: see the module doc.
#[derive(Debug)]
pub struct Relay {
    master: Option<OwnedFd>,
    input: Option<OwnedFd>,
    output: OwnedFd,
    /// Input read but not yet written to the master.
    pending: Vec<u8>,
    /// The input ended: send the end-of-file character once `pending` is written.
    eof_pending: bool,
    /// The last byte written to the master, to know whether a line is still open.
    last_input: Option<u8>,
    /// The master read `EIO`: every holder of the pts closed it.
    master_done: bool,
}

/// Which of the relay's fds are polled, in the order [`Relay::poll_fds`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slots {
    input: bool,
    master: bool,
}

impl Relay {
    /// A relay between `master` and the caller's `input` (`None`: no input, e.g. stdin was
    /// closed) and `output`. The master is made non-blocking.
    pub fn new(master: OwnedFd, input: Option<OwnedFd>, output: OwnedFd) -> Result<Relay> {
        let flags = fcntl(&master, FcntlArg::F_GETFL).ctx(|| "read the master's flags".into())?;
        let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
        fcntl(&master, FcntlArg::F_SETFL(flags)).ctx(|| "make the master non-blocking".into())?;
        Ok(Relay {
            master: Some(master),
            input,
            output,
            pending: Vec::new(),
            eof_pending: false,
            last_input: None,
            master_done: false,
        })
    }

    /// The master, while the relay has not hung up (for [`crate::copy_window_size`]).
    pub fn master(&self) -> Option<BorrowedFd<'_>> {
        self.master.as_ref().map(|m| m.as_fd())
    }

    /// Whether no more output can come: the master read `EIO` or the relay hung up. A caller
    /// waiting for the command keeps waiting for it; it just stops polling the relay.
    pub fn is_done(&self) -> bool {
        self.master_done || self.master.is_none()
    }

    fn slots(&self) -> Slots {
        let live = !self.is_done();
        Slots {
            input: live && self.input.is_some() && self.pending.len() < INPUT_LIMIT,
            master: live,
        }
    }

    /// The fds to poll now, with the events wanted. Pass their `revents`, in the same order,
    /// to [`Relay::on_ready`] before calling anything else on the relay.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let slots = self.slots();
        let mut fds = Vec::with_capacity(2);
        if let (true, Some(input)) = (slots.input, &self.input) {
            fds.push((input.as_fd(), PollFlags::POLLIN));
        }
        if let (true, Some(master)) = (slots.master, &self.master) {
            let mut events = PollFlags::POLLIN;
            if !self.pending.is_empty() || self.eof_pending {
                events |= PollFlags::POLLOUT;
            }
            fds.push((master.as_fd(), events));
        }
        fds
    }

    /// Does what the poll found possible: reads input, writes it to the master, copies the
    /// master's output. `ready` holds the `revents` of the fds of the last [`Relay::poll_fds`],
    /// in its order. Errors are the caller's fds failing in ways that are not an ending (an
    /// ending is recorded, see [`Relay::is_done`]).
    pub fn on_ready(&mut self, ready: &[PollFlags]) -> Result<()> {
        let slots = self.slots();
        let mut ready = ready.iter().copied();
        let any = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        if slots.input && ready.next().is_some_and(|r| r.intersects(any)) {
            self.read_input()?;
        }
        if slots.master {
            let r = ready.next().unwrap_or(PollFlags::empty());
            if r.intersects(any) {
                self.copy_output(1)?;
            }
        }
        // Written whenever there is something to write: the master usually has room, and a
        // full one answers EAGAIN, after which POLLOUT says when to retry.
        self.write_input()
    }

    /// After the command ended: copies what is left in the master to the output.
    pub fn drain(&mut self) -> Result<()> {
        // Bounded by what the kernel buffers for a pty (a few pages), so this ends; the bound
        // only guards against a writer that still holds the pts and never stops.
        self.copy_output(1024)
    }

    /// Reads what the input has into `pending`.
    fn read_input(&mut self) -> Result<()> {
        let Some(input) = &self.input else {
            return Ok(());
        };
        let mut buf = vec![0u8; INPUT_LIMIT - self.pending.len()];
        match nix::unistd::read(input, &mut buf) {
            Ok(0) | Err(Errno::EIO) => {
                ns_log!("input ended");
                self.input = None;
                self.eof_pending = true;
            }
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(Error::sys("read the input", e)),
        }
        Ok(())
    }

    /// Writes `pending` to the master as far as it takes it, then the end-of-file character
    /// when the input ended.
    fn write_input(&mut self) -> Result<()> {
        let Some(master) = &self.master else {
            return Ok(());
        };
        while !self.pending.is_empty() {
            match nix::unistd::write(master, &self.pending) {
                Ok(n) => {
                    if let Some(last) = n.checked_sub(1).and_then(|i| self.pending.get(i)) {
                        self.last_input = Some(*last);
                    }
                    self.pending.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EIO) => {
                    self.master_done = true;
                    return Ok(());
                }
                Err(e) => return Err(Error::sys("write to the pty", e)),
            }
        }
        if self.eof_pending {
            let eof = end_of_file(master.as_fd(), self.last_input);
            match nix::unistd::write(master, &eof) {
                Ok(_) | Err(Errno::EIO) => self.eof_pending = false,
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return Err(Error::sys("write to the pty", e)),
            }
        }
        Ok(())
    }

    /// Reads the master (up to `rounds` chunks, until it has nothing now) and writes what it
    /// gave to the output.
    fn copy_output(&mut self, rounds: usize) -> Result<()> {
        let mut buf = vec![0u8; CHUNK];
        for _ in 0..rounds {
            let Some(master) = &self.master else {
                return Ok(());
            };
            let n = match nix::unistd::read(master, &mut buf) {
                Ok(0) | Err(Errno::EIO) => {
                    self.master_done = true;
                    return Ok(());
                }
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(()),
                Err(e) => return Err(Error::sys("read the pty", e)),
            };
            if let Err(e) = write_all(self.output.as_fd(), &buf[..n]) {
                // Nobody reads what the command writes any more: hang up, as a closed
                // terminal window does, and let the command decide (SIGHUP).
                ns_log!("output failed ({e}); hanging up the pty");
                self.master = None;
                return Ok(());
            }
        }
        Ok(())
    }
}

/// What to write to the master for "the input ended": the pty's `VEOF` character (`^D`) when
/// it is in canonical mode, twice when a line is still open (the first only ends that line);
/// nothing when the command put the pty in raw mode, where `^D` would be just a byte.
fn end_of_file(master: BorrowedFd<'_>, last_input: Option<u8>) -> Vec<u8> {
    let Ok(t) = sys::get_termios(master) else {
        return Vec::new();
    };
    eof_bytes(&t, last_input)
}

/// The pure half of [`end_of_file`].
fn eof_bytes(t: &libc::termios, last_input: Option<u8>) -> Vec<u8> {
    if t.c_lflag & libc::ICANON == 0 {
        return Vec::new();
    }
    let eof = t.c_cc[libc::VEOF];
    let line_open = !matches!(last_input, None | Some(b'\n' | b'\r'));
    if line_open { vec![eof, eof] } else { vec![eof] }
}

/// Writes all of `data` to the (blocking) `fd`.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::result::Result<(), Errno> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            // A caller that made its own output non-blocking: wait for room.
            Err(Errno::EAGAIN) => {
                let mut fds = [nix::poll::PollFd::new(fd, PollFlags::POLLOUT)];
                match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pty::open_pty;
    use nix::poll::{PollFd, PollTimeout, poll};

    fn termios(lflag: libc::tcflag_t) -> libc::termios {
        // SAFETY: termios is plain integers; all zeroes is valid.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        t.c_lflag = lflag;
        t.c_cc[libc::VEOF] = 4;
        t
    }

    #[test]
    fn eof_is_one_veof_after_a_full_line_and_two_inside_one() {
        let t = termios(libc::ICANON);
        assert_eq!(eof_bytes(&t, None), vec![4]);
        assert_eq!(eof_bytes(&t, Some(b'\n')), vec![4]);
        assert_eq!(eof_bytes(&t, Some(b'x')), vec![4, 4]);
    }

    #[test]
    fn eof_is_nothing_in_raw_mode() {
        assert!(eof_bytes(&termios(0), Some(b'x')).is_empty());
    }

    /// One round of the caller's loop: poll the relay's fds (bounded), hand back the events.
    fn step(relay: &mut Relay) -> bool {
        let (mut fds, n): (Vec<PollFd>, usize) = {
            let list = relay.poll_fds();
            let n = list.len();
            (
                list.into_iter()
                    .map(|(fd, ev)| PollFd::new(fd, ev))
                    .collect(),
                n,
            )
        };
        if n == 0 {
            return false;
        }
        poll(&mut fds, PollTimeout::from(5000u16)).unwrap();
        let ready: Vec<PollFlags> = fds.iter().map(|f| f.revents().unwrap()).collect();
        drop(fds);
        relay.on_ready(&ready).unwrap();
        true
    }

    /// Real pty, no privileges: piped input reaches the pts, the peer's output reaches the
    /// output pipe, and after the last holder closes the pts, drain delivers the tail and the
    /// relay is done.
    #[test]
    fn relays_both_ways_and_drains_the_tail() {
        let pty = open_pty().unwrap();
        let (in_r, in_w) = nix::unistd::pipe().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let mut relay = Relay::new(pty.master, Some(in_r), out_w).unwrap();

        nix::unistd::write(&in_w, b"hello\n").unwrap();
        drop(in_w);
        // Input travels: the peer (canonical mode) reads the line, then end-of-file.
        let mut buf = [0u8; 64];
        for _ in 0..100 {
            if relay.input.is_none() && !relay.eof_pending && relay.pending.is_empty() {
                break;
            }
            step(&mut relay);
        }
        let n = nix::unistd::read(&pty.peer, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\n");
        let n = nix::unistd::read(&pty.peer, &mut buf).unwrap();
        assert_eq!(n, 0, "the end of input arrives as end-of-file");

        // Output travels, including a tail written right before the last close.
        nix::unistd::write(&pty.peer, b"last line, no newline").unwrap();
        drop(pty.peer);
        relay.drain().unwrap();
        assert!(relay.is_done());
        drop(relay);
        let mut all = Vec::new();
        loop {
            let n = nix::unistd::read(&out_r, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&all);
        // The pty echoed the input line; the tail is there, whole.
        assert!(text.contains("hello"), "{text:?}");
        assert!(text.ends_with("last line, no newline"), "{text:?}");
    }

    /// A reader that went away makes the relay hang up instead of failing.
    #[test]
    fn a_closed_output_hangs_up() {
        let pty = open_pty().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        drop(out_r);
        let mut relay = Relay::new(pty.master, None, out_w).unwrap();
        nix::unistd::write(&pty.peer, b"x\n").unwrap();
        step(&mut relay);
        assert!(relay.is_done());
        assert!(relay.master().is_none());
        assert!(relay.poll_fds().is_empty());
    }
}
