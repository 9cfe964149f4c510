//! ns-veth's command line: `add`, `del` and `check`, parsed into the library's calls.
//!
//! Parsing is two steps: getopts reads the words, then [`add_request`] builds the same
//! `config::Network` a container.json gives, so the program and ns-exec run the same code.
//! The context goes to `--context-fd` (taken over close-on-exec at once) or stdout, as one JSON
//! line; if it cannot be written, the pair is deleted again, since nobody would know its name.

use common::config::{Network, NetworkKind};
use common::{Error, Result, exit};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use crate::host::{self, Target};

/// The `--help` text; docs/man/ns-veth.1.md lists the same options.
pub const USAGE: &str = "\
Usage: ns-veth add (--pid PID | --netns PATH) --bridge BR [--prefix P] [--name NAME]
                   [--mtu N] [--address CIDR] [--gateway IP] [--context-fd FD]
       ns-veth del NAME
       ns-veth check NAME

add    Create a veth pair: the host end (PREFIX + 7 random hex digits) attached to bridge BR
       and up, the peer placed directly in the target network namespace (so the kernel
       removes the pair when that namespace dies). Writes the network context (names,
       address, gateway, MTU) as one JSON line for ns-init, which configures the inside.
       On any failure, nothing is left behind.
del    Delete the veth NAME (and its peer); succeeds when it does not exist.
check  Print the state of the veth NAME as JSON; exit 1 when there is none.

Options:
  --pid PID          the target is the network namespace of process PID
  --netns PATH       the target is the network namespace file PATH
  --bridge BR        attach the host end to bridge BR (it must exist)
  --prefix P         host and peer name prefix, at most 8 bytes (default: veth)
  --name NAME        the peer's name inside, set by ns-init (default: eth0)
  --mtu N            MTU of both ends (68..65535)
  --address CIDR     the inside address, e.g. 198.18.0.2/24
  --gateway IP       the inside default gateway
  --context-fd FD    write the context to fd FD instead of stdout
  -h, --help         print this help
  -V, --version      print the version

Exit status: 0 done; 1 check found no such veth; 125 failed (one line on stderr).
";

/// Runs the command line `args` (without argv\[0\]); returns the exit status.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<i32> {
    let words = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| Error::usage(format!("{} is not valid UTF-8", a.to_string_lossy())))
        })
        .collect::<Result<Vec<String>>>()?;
    let Some((command, rest)) = words.split_first() else {
        return Err(Error::usage(
            "a command is needed: add, del or check (see --help)",
        ));
    };
    match command.as_str() {
        "-h" | "--help" => {
            print_out(USAGE)?;
            Ok(exit::OK)
        }
        "-V" | "--version" => {
            print_out(&format!("ns-veth {}\n", env!("CARGO_PKG_VERSION")))?;
            Ok(exit::OK)
        }
        "add" => add(rest),
        "del" => {
            host::delete(one_name(rest, "del")?)?;
            Ok(exit::OK)
        }
        "check" => check(one_name(rest, "check")?),
        other => Err(Error::usage(format!(
            "unknown command {other:?}: add, del or check"
        ))),
    }
}

fn print_out(text: &str) -> Result<()> {
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("write to stdout", e))
}

fn one_name<'a>(rest: &'a [String], command: &str) -> Result<&'a str> {
    match rest {
        [name] if !name.starts_with('-') => Ok(name),
        _ => Err(Error::usage(format!("{command} takes one interface name"))),
    }
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    for (name, hint) in [
        ("pid", "PID"),
        ("netns", "PATH"),
        ("bridge", "BR"),
        ("prefix", "P"),
        ("name", "NAME"),
        ("mtu", "N"),
        ("address", "CIDR"),
        ("gateway", "IP"),
        ("context-fd", "FD"),
    ] {
        o.optopt("", name, "", hint);
    }
    o
}

/// What `add`'s options ask for.
#[derive(Debug, PartialEq)]
pub struct AddRequest {
    /// The namespace the peer goes into.
    pub target: Target,
    /// The network, as a container.json entry would give it.
    pub network: Network,
    /// `--context-fd`, unparsed.
    pub context_fd: Option<String>,
}

/// Parses `add`'s options (the words after `add`).
pub fn add_request(words: &[String]) -> Result<AddRequest> {
    let m = common::cli::parse(&options(), words)?;
    let target = match (m.opt_str("pid"), m.opt_str("netns")) {
        (Some(pid), None) => Target::Pid(
            pid.parse()
                .ok()
                .filter(|p: &i32| *p > 0)
                .ok_or_else(|| Error::usage(format!("--pid {pid:?} is not a process id")))?,
        ),
        (None, Some(path)) => Target::Netns(PathBuf::from(path)),
        _ => return Err(Error::usage("add needs one of --pid and --netns")),
    };
    let bridge = m
        .opt_str("bridge")
        .ok_or_else(|| Error::usage("add needs --bridge"))?;
    let mut context = BTreeMap::from([("bridge".to_string(), bridge)]);
    for key in ["prefix", "name"] {
        if let Some(v) = m.opt_str(key) {
            context.insert(key.to_string(), v);
        }
    }
    let mtu = match m.opt_str("mtu") {
        None => None,
        Some(t) => Some(
            t.parse::<u32>()
                .ok()
                .filter(|n| (68..=65535).contains(n))
                .ok_or_else(|| Error::usage(format!("--mtu {t:?} is not in 68..65535")))?,
        ),
    };
    Ok(AddRequest {
        target,
        network: Network {
            kind: NetworkKind::Veth,
            context,
            address: m.opt_str("address"),
            gateway: m.opt_str("gateway"),
            mtu,
        },
        context_fd: m.opt_str("context-fd"),
    })
}

fn add(words: &[String]) -> Result<i32> {
    let req = add_request(words)?;
    // Take the fd before making anything: a bad fd must not leave a pair behind.
    let out = req
        .context_fd
        .as_deref()
        .map(|t| common::fd::take(t, "--context-fd"))
        .transpose()?;
    let ctx = host::host_side(&req.network, &req.target)?;
    let line = format!("{}\n", ctx.to_json());
    let written = match out {
        Some(fd) => std::fs::File::from(fd).write_all(line.as_bytes()),
        None => std::io::stdout().write_all(line.as_bytes()),
    };
    if let Err(e) = written {
        let _ = host::undo(&ctx);
        return Err(Error::io("write the network context", e));
    }
    Ok(exit::OK)
}

fn check(name: &str) -> Result<i32> {
    match host::check(name)? {
        Some(link) => {
            let state = serde_json::json!({
                "name": link.name,
                "index": link.index,
                "up": link.up,
                "mtu": link.mtu,
                "master": link.master,
            });
            print_out(&format!("{state}\n"))?;
            Ok(exit::OK)
        }
        None => {
            eprintln!("ns-veth: check {name:?}: no such interface");
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn add_options_become_a_network() {
        let r = add_request(&words(&[
            "--pid",
            "42",
            "--bridge",
            "br0",
            "--prefix",
            "ct",
            "--mtu",
            "1400",
            "--address",
            "198.18.0.2/24",
            "--gateway",
            "198.18.0.1",
            "--context-fd",
            "7",
        ]))
        .unwrap();
        assert_eq!(r.target, Target::Pid(42));
        assert_eq!(r.network.kind, NetworkKind::Veth);
        assert_eq!(r.network.context["bridge"], "br0");
        assert_eq!(r.network.context["prefix"], "ct");
        assert_eq!(r.network.mtu, Some(1400));
        assert_eq!(r.network.address.as_deref(), Some("198.18.0.2/24"));
        assert_eq!(r.context_fd.as_deref(), Some("7"));
    }

    #[test]
    fn add_usage_errors() {
        for bad in [
            &["--bridge", "br0"][..],
            &["--pid", "1", "--netns", "/x", "--bridge", "b"][..],
            &["--pid", "0", "--bridge", "b"][..],
            &["--pid", "1"][..],
            &["--pid", "1", "--bridge", "b", "--mtu", "9"][..],
            &["--pid", "1", "--bridge", "b", "extra"][..],
        ] {
            let e = add_request(&words(bad)).unwrap_err();
            assert!(e.what == "usage", "{bad:?}: {e}");
        }
    }
}
