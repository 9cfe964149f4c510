//! The script form of the sync channel: a pipe (or FIFO) instead of ns-exec's socket.
//!
//! A shell cannot make a `SOCK_SEQPACKET` pair, but it can make a FIFO and write lines into it.
//! So when ns-init's sync fd is a pipe, it reads newline-separated JSON from it (docs/handoff.md
//! §5): network context lines, as `ns-veth add` writes them, are collected, and the line
//! `{"v":1,"type":"go"}` releases the container. EOF before that line means the host side went
//! away: abort, as with the socket. Readiness travels the other way on a separate fd
//! (`--ready-fd`), since a pipe has one direction; errors are printed by ns-init itself.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use crate::error::{Error, Result};
use crate::handoff::VERSION;
use crate::net::NetContext;
use crate::sync::MAX_MESSAGE;

/// Whether `fd` is a pipe or FIFO (rather than ns-exec's socket).
pub fn is_pipe(fd: impl AsFd) -> Result<bool> {
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| Error::sys("stat the sync fd", e))?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFIFO)
}

/// Reads the host side's lines from `fd` until `go`; returns the network contexts, in order.
pub fn wait_for_go(fd: OwnedFd) -> Result<Vec<NetContext>> {
    read_until_go(File::from(fd))
}

/// [`wait_for_go`] over any reader (tests).
pub fn read_until_go(source: impl Read) -> Result<Vec<NetContext>> {
    let what = "wait for go on the sync pipe";
    // One byte over the limit tells a line that is too long from one that just fits.
    let mut reader = BufReader::new(source);
    let mut networks = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        // read_until retries on EINTR.
        let n = (&mut reader)
            .take(MAX_MESSAGE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(what, e))?;
        if n == 0 {
            return Err(Error::msg(
                what,
                "the host side closed the pipe before \"go\"",
            ));
        }
        if n > MAX_MESSAGE {
            return Err(Error::msg(what, "a line longer than 64 KiB"));
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let head: serde_json::Value = serde_json::from_slice(text)
            .map_err(|e| Error::msg(what, format!("malformed line: {e}")))?;
        match head.get("type").and_then(|t| t.as_str()) {
            Some("go") => {
                if head.get("v").and_then(|v| v.as_u64()) != Some(u64::from(VERSION)) {
                    return Err(Error::msg(
                        what,
                        format!("\"go\" of another version: {head}"),
                    ));
                }
                return Ok(networks);
            }
            Some("veth" | "loopback" | "netns") => networks.push(NetContext::from_json(text)?),
            _ => return Err(Error::msg(what, format!("unexpected line: {head}"))),
        }
    }
}

/// Writes the `ready` line to `fd` and closes it. A reader that went away is not an error of
/// ours: the host side will find out on its own.
pub fn announce_ready(fd: OwnedFd) -> Result<()> {
    let mut file = File::from(fd);
    match file.write_all(format!("{{\"v\":{VERSION},\"type\":\"ready\"}}\n").as_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("write ready to the ready fd", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_collected_until_go() {
        let input = concat!(
            "{\"v\":1,\"type\":\"veth\",\"host\":\"vethA\",\"peer\":\"vethB\",\"name\":\"eth0\"}\n",
            "\n",
            "{\"v\":1,\"type\":\"loopback\",\"mtu\":1500}\n",
            "{\"v\":1,\"type\":\"go\"}\n",
            "ignored after go\n"
        );
        let nets = read_until_go(input.as_bytes()).unwrap();
        assert_eq!(nets.len(), 2);
        assert_eq!(nets[0].peer.as_deref(), Some("vethB"));
    }

    #[test]
    fn eof_before_go_aborts() {
        let e = read_until_go(&b"{\"v\":1,\"type\":\"loopback\"}\n"[..]).unwrap_err();
        assert!(e.to_string().contains("before \"go\""), "{e}");
        assert!(read_until_go(&b""[..]).is_err());
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        for bad in [
            "not json\n",
            "{\"v\":2,\"type\":\"go\"}\n",
            "{\"v\":1,\"type\":\"ready\"}\n",
            "{\"v\":2,\"type\":\"veth\"}\n",
        ] {
            assert!(read_until_go(bad.as_bytes()).is_err(), "{bad}");
        }
        let long = format!("{}\n", " ".repeat(MAX_MESSAGE + 10));
        let e = read_until_go(long.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("longer"), "{e}");
    }

    #[test]
    fn pipes_are_told_from_sockets() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        assert!(is_pipe(&r).unwrap());
        let (a, _b) = crate::sync::SyncSocket::pair().unwrap();
        assert!(!is_pipe(a.fd()).unwrap());
    }
}
