//! ns-veth's command line: `add`, `del` and `check`, parsed into the library's calls.
//!
//! Parsing is two steps: getopts reads the words, then [`add_request`] builds the same
//! `config::Network`s a container.json gives (or reads them from one, `--config`), so the
//! program and ns-exec run the same code. `add` plans every network first
//! ([`crate::plan_host_side`]), so a bad value, a missing bridge or target anywhere makes
//! nothing; then it prints the plan (`--plan`, `--explain`) or applies each in order, deleting
//! the ones made before a failure. The contexts go to `--context-fd` (taken over
//! close-on-exec at once) or stdout, one JSON line each, in one write; if they cannot be
//! written, the pairs are deleted again, since nobody would know their names.

use common::config::{Config, Network, NetworkKind};
use common::net::NetContext;
use common::plan::Plan;
use common::{Error, Result, exit};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use crate::host::{self, HostPlan, Target};

/// The `--help` text; docs/man/ns-veth.1.md lists the same options.
pub const USAGE: &str = "\
Usage: ns-veth add (--pid PID | --netns PATH) --bridge BR [--prefix P] [--name NAME]
                   [--mtu N] [--address CIDR] [--gateway IP] [--context-fd FD]
                   [--plan | --explain]
       ns-veth add (--pid PID | --netns PATH) --config FILE [--context-fd FD]
                   [--plan | --explain]
       ns-veth del NAME
       ns-veth check NAME

add    Create a veth pair: the host end (PREFIX + 7 random hex digits) attached to bridge BR
       and up, the peer placed directly in the target network namespace (so the kernel
       removes the pair when that namespace dies). Writes the network context (names,
       address, gateway, MTU) as one JSON line for ns-init, which configures the inside.
       With --config, does this for every network of a container.json, one line each
       (loopback and netns networks make nothing here). Everything is checked before
       anything is made; on any failure, nothing is left behind.
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
  --config FILE      take the networks from the container.json FILE (networks[])
  --context-fd FD    write the contexts to fd FD instead of stdout
  --plan             print the actions add would take, as JSON; make nothing
  --explain          print them as a shell script of ip(8) commands; make nothing
  -h, --help         print this help
  -V, --version      print the version

Environment: NS_TRACE=FILE appends one JSON line per step taken (the plan's step names).

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
        ("config", "FILE"),
        ("context-fd", "FD"),
    ] {
        o.optopt("", name, "", hint);
    }
    o.optflag("", "plan", "");
    o.optflag("", "explain", "");
    o
}

/// The options that describe one network on the command line (instead of `--config`).
const NETWORK_OPTIONS: [&str; 6] = ["bridge", "prefix", "name", "mtu", "address", "gateway"];

/// What `add` does with its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Apply it (the default).
    Apply,
    /// Print it as JSON (`--plan`).
    Plan,
    /// Print it as a shell script (`--explain`).
    Explain,
}

/// What `add`'s options ask for.
#[derive(Debug, PartialEq)]
pub struct AddRequest {
    /// The namespace the peers go into.
    pub target: Target,
    /// The networks, as a container.json gives them: the one the options describe, or those
    /// of `--config`.
    pub networks: Vec<Network>,
    /// `--config`, when the networks came from it (errors then name `networks[i]`).
    pub config: Option<PathBuf>,
    /// `--context-fd`, unparsed.
    pub context_fd: Option<String>,
    /// Apply, or only print the plan.
    pub show: Show,
}

/// Parses `add`'s options (the words after `add`); with `--config`, reads the file.
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
    let show = match (m.opt_present("plan"), m.opt_present("explain")) {
        (false, false) => Show::Apply,
        (true, false) => Show::Plan,
        (false, true) => Show::Explain,
        (true, true) => return Err(Error::usage("--plan and --explain exclude each other")),
    };
    let context_fd = m.opt_str("context-fd");
    if show != Show::Apply && context_fd.is_some() {
        return Err(Error::usage(
            "--context-fd has no use with --plan or --explain, which make no context",
        ));
    }
    if let Some(path) = m.opt_str("config") {
        if let Some(o) = NETWORK_OPTIONS.iter().find(|o| m.opt_present(o)) {
            return Err(Error::usage(format!(
                "--{o} describes a network; with --config the networks come from the file"
            )));
        }
        let path = PathBuf::from(path);
        let config = Config::load(&path, None)?;
        return Ok(AddRequest {
            target,
            networks: config.networks,
            config: Some(path),
            context_fd,
            show,
        });
    }
    let bridge = m
        .opt_str("bridge")
        .ok_or_else(|| Error::usage("add needs --bridge (or --config)"))?;
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
        networks: vec![Network {
            kind: NetworkKind::Veth,
            context,
            address: m.opt_str("address"),
            gateway: m.opt_str("gateway"),
            mtu,
        }],
        config: None,
        context_fd,
        show,
    })
}

/// The header of `--explain`'s script.
fn explain_header(req: &AddRequest) -> String {
    let what = match &req.config {
        Some(p) => format!("the networks of {}", p.display()),
        None => "one veth network".to_string(),
    };
    format!(
        "ns-veth add --explain: the host side of {what}, as ip(8) commands.\n\
         Run as root in the host's network namespace; the peers go to the network namespace \
         of {}.\n\
         The names are random: a real run picks new ones.",
        req.target.describe()
    )
}

fn add(words: &[String]) -> Result<i32> {
    let req = add_request(words)?;
    // Take the fd before making anything: a bad fd must not leave a pair behind.
    let out = req
        .context_fd
        .as_deref()
        .map(|t| common::fd::take(t, "--context-fd"))
        .transpose()?;
    // Plan every network before making any: a bad value or a missing bridge in the last one
    // must not leave the first behind.
    let mut plans = Vec::new();
    for (i, n) in req.networks.iter().enumerate() {
        plans.push(host::plan_host_side(n, &req.target).map_err(|e| at(&req, i, e))?);
    }
    match req.show {
        Show::Plan | Show::Explain => {
            let actions = plans.iter().flat_map(|p| p.actions().to_vec()).collect();
            let plan = Plan::new(host::STAGE, actions);
            return print_out(&match req.show {
                Show::Plan => plan.to_json(),
                _ => plan.to_shell(&explain_header(&req)),
            })
            .map(|()| exit::OK);
        }
        Show::Apply => {}
    }
    let contexts = apply_all(plans).map_err(|(i, e)| at(&req, i, e))?;
    let text: String = contexts
        .iter()
        .map(|c| format!("{}\n", c.to_json()))
        .collect();
    let written = match out {
        Some(fd) => std::fs::File::from(fd).write_all(text.as_bytes()),
        None => std::io::stdout().write_all(text.as_bytes()),
    };
    if let Err(e) = written {
        undo_all(&contexts);
        return Err(Error::io("write the network context", e));
    }
    Ok(exit::OK)
}

/// Applies `plans` in order; on a failure, undoes the ones already made and returns the
/// failing one's index with its error.
fn apply_all(plans: Vec<HostPlan>) -> std::result::Result<Vec<NetContext>, (usize, Error)> {
    let mut made = Vec::new();
    for (i, p) in plans.into_iter().enumerate() {
        match p.apply() {
            Ok(c) => made.push(c),
            Err(e) => {
                undo_all(&made);
                return Err((i, e));
            }
        }
    }
    Ok(made)
}

/// Deletes what `contexts` made, last first; failures are not reported (the error that led
/// here is the one to see).
fn undo_all(contexts: &[NetContext]) {
    for c in contexts.iter().rev() {
        let _ = host::undo(c);
    }
}

/// With `--config`, an error names the network it is about.
fn at(req: &AddRequest, i: usize, e: Error) -> Error {
    match req.config {
        Some(_) => e.context(format!("networks[{i}]")),
        None => e,
    }
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
        assert_eq!(r.networks.len(), 1);
        let n = &r.networks[0];
        assert_eq!(n.kind, NetworkKind::Veth);
        assert_eq!(n.context["bridge"], "br0");
        assert_eq!(n.context["prefix"], "ct");
        assert_eq!(n.mtu, Some(1400));
        assert_eq!(n.address.as_deref(), Some("198.18.0.2/24"));
        assert_eq!(r.context_fd.as_deref(), Some("7"));
        assert_eq!((r.show, r.config.as_ref()), (Show::Apply, None));
        let r = add_request(&words(&["--netns", "/x", "--bridge", "b", "--explain"])).unwrap();
        assert_eq!(r.show, Show::Explain);
        assert_eq!(r.target, Target::Netns("/x".into()));
    }

    /// `--config` takes every network of the file, in order.
    #[test]
    fn config_gives_every_network() {
        let dir = std::env::temp_dir().join(format!("ns-veth-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("container.json");
        std::fs::write(
            &file,
            r#"{"networks": [{"type": "loopback"},
                {"type": "veth", "context": {"bridge": "br0", "prefix": "ct"}, "mtu": 1400}]}"#,
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let r = add_request(&words(&["--pid", "7", "--config", path, "--plan"]));
        std::fs::remove_dir_all(&dir).unwrap();
        let r = r.unwrap();
        assert_eq!(r.show, Show::Plan);
        assert_eq!(r.config.as_deref(), Some(file.as_path()));
        let kinds: Vec<_> = r.networks.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, [NetworkKind::Loopback, NetworkKind::Veth]);
        assert_eq!(r.networks[1].context["bridge"], "br0");
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
            &["--pid", "1", "--bridge", "b", "--plan", "--explain"][..],
            &["--pid", "1", "--bridge", "b", "--plan", "--context-fd", "3"][..],
            &["--pid", "1", "--config", "/nonexistent", "--bridge", "b"][..],
            &["--pid", "1", "--config", "/nonexistent", "--mtu", "1400"][..],
        ] {
            let e = add_request(&words(bad)).unwrap_err();
            assert!(e.what == "usage", "{bad:?}: {e}");
        }
    }
}
