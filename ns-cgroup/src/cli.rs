//! ns-cgroup's command line: `ns-cgroup VERB NAME [OPTIONS] [--] [ARG...]`, parsed into a
//! [`Command`] without touching the system (raw words, then validated values).
//!
//! NAME may come before or after the options. Parsing stops at the first free argument after
//! NAME (or the first `--`), so `join NAME -- CMD -x` passes `CMD -x` on untouched, as a chain
//! loader must.

use std::ffi::OsString;
use std::time::Duration;

use nix::sys::signal::Signal;

use common::config::{Bytes, Cgroups, Config, Device, DeviceType};
use common::{Error, Result, cli};

use crate::limits::{self, Rule};

/// The usage text; `docs/man/ns-cgroup.1.md` lists the same options.
pub const USAGE: &str = "\
Usage: ns-cgroup create NAME [--config FILE] [--parent PATH] [LIMITS] [SHOW]
       ns-cgroup join NAME [SHOW] (--pid PID | [--] CMD [ARG...])
       ns-cgroup set NAME [--config FILE] [LIMITS] [SHOW]
       ns-cgroup stats|watch|freeze|thaw NAME
       ns-cgroup kill NAME [SIGNAL]
       ns-cgroup remove NAME [--timeout SECS] [SHOW]

Create a container's cgroup below the caller's own cgroup (v1, hybrid and v2 layouts),
apply limits, move a process in, report stats and events as JSON, and remove it.

Options:
      --config FILE            take limits (and parent) from FILE's \"cgroups\" object
      --parent PATH            place NAME under PATH (absolute: from the hierarchy's root)
      --pid PID                join: move PID instead of running CMD
      --timeout SECS           remove: wait at most SECS for processes to end (default 10)
Show (create, join, set, remove; nothing is changed):
      --plan                   print the actions as JSON
      --explain                print the actions as a shell script
Limits (override the config's):
      --memory BYTES           memory limit (64m, 1g, ...)
      --memory-reservation BYTES   memory soft limit
      --memory-swap BYTES      memory + swap limit, -1 for unlimited
      --cpu-shares N           relative CPU weight (2..262144)
      --cpu-quota USEC         CPU time per period, -1 for unlimited
      --cpu-period USEC        the period of --cpu-quota
      --cpuset-cpus LIST       CPUs to run on (0-3,5)
      --cpuset-mems LIST       memory nodes to use
      --pids-max N             maximum number of processes
      --allow-device RULE      allow a device (\"c 1:3 rwm\"); denies all others
      --allow-all-devices      allow every device
  -h, --help                   print this help
  -V, --version                print the version

Exit status: 0 on success; 125 if ns-cgroup failed; for join with CMD, CMD's own
status (126 if it could not be executed, 127 if it was not found).
";

/// Options that take a value.
const VALUED: [&str; 14] = [
    "config",
    "parent",
    "pid",
    "timeout",
    "memory",
    "memory-reservation",
    "memory-swap",
    "cpu-shares",
    "cpu-quota",
    "cpu-period",
    "cpuset-cpus",
    "cpuset-mems",
    "pids-max",
    "allow-device",
];

/// What `--plan` and `--explain` print instead of acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// `--plan`: the actions as JSON.
    Json,
    /// `--explain`: the actions as a shell script.
    Shell,
}

/// Where a cgroup is: its name and parent.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The cgroup's name.
    pub name: String,
    /// `--parent` (or the config's `cgroups.parent`).
    pub parent: Option<String>,
}

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Print this text and exit 0.
    Info(String),
    /// Create the cgroup with these limits.
    Create(Target, Cgroups),
    /// Move a pid in.
    JoinPid(Target, i32),
    /// Move ourselves in, then exec the command.
    JoinExec(Target, Vec<OsString>),
    /// Change limits.
    Set(Target, Cgroups),
    /// Print stats.
    Stats(Target),
    /// Print events until the cgroup is removed.
    Watch(Target),
    /// Freeze (`true`) or thaw.
    Freeze(Target, bool),
    /// Signal every process.
    Kill(Target, Signal),
    /// Remove, waiting at most this long for processes to end.
    Remove(Target, Duration),
    /// Print what the command (create, join, set or remove) would do, and do nothing.
    Show(Show, Box<Command>),
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.parsing_style(getopts::ParsingStyle::StopAtFirstFree);
    for name in VALUED {
        if name == "allow-device" {
            o.optmulti("", name, "", "");
        } else {
            o.optopt("", name, "", "");
        }
    }
    o.optflag("", "allow-all-devices", "");
    o.optflag("", "plan", "");
    o.optflag("", "explain", "");
    o.optflag("h", "help", "");
    o.optflag("V", "version", "");
    o
}

/// Parses argv (without argv\[0\]).
pub fn parse(args: Vec<OsString>) -> Result<Command> {
    let mut args = args.into_iter();
    let Some(verb) = args.next() else {
        return Err(Error::usage("a verb is required (see ns-cgroup --help)"));
    };
    let verb = verb.to_string_lossy().into_owned();
    match verb.as_str() {
        "-h" | "--help" => return Ok(Command::Info(USAGE.into())),
        "-V" | "--version" => {
            return Ok(Command::Info(format!(
                "ns-cgroup {}\n",
                env!("CARGO_PKG_VERSION")
            )));
        }
        _ => {}
    }
    let mut rest: Vec<OsString> = args.collect();
    // NAME right after the verb, or as the first free argument after the options.
    let mut name = None;
    if rest
        .first()
        .is_some_and(|a| !a.as_encoded_bytes().starts_with(b"-"))
    {
        name = Some(rest.remove(0));
    }
    let split = cli::split(rest, &VALUED)?;
    let m = cli::parse(&options(), &split.opts)?;
    if m.opt_present("help") {
        return Ok(Command::Info(USAGE.into()));
    }
    if m.opt_present("version") {
        return Ok(Command::Info(format!(
            "ns-cgroup {}\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let mut free = split.rest;
    let after_dashdash = split.after_dashdash;
    if name.is_none() && !after_dashdash && !free.is_empty() {
        name = Some(free.remove(0));
    }
    let Some(name) = name else {
        return Err(Error::usage(format!("{verb}: NAME is required")));
    };
    let name = name
        .into_string()
        .map_err(|n| Error::usage(format!("cgroup name {n:?} is not valid UTF-8")))?;
    let config = match m.opt_str("config") {
        Some(path) => Some(read_config(&path)?),
        None => None,
    };
    let parent = m
        .opt_str("parent")
        .or_else(|| config.as_ref().and_then(|c| c.parent.clone()));
    let target = Target {
        name,
        parent: parent.clone(),
    };
    let limits_given = has_limit_flags(&m);
    let no_free = |free: &[OsString]| -> Result<()> {
        match free.first() {
            Some(a) => Err(Error::usage(format!("{verb}: unexpected argument {a:?}"))),
            None => Ok(()),
        }
    };
    let only = |allowed: &[&str]| -> Result<()> {
        for o in ["config", "pid", "timeout"] {
            if m.opt_present(o) && !allowed.contains(&o) {
                return Err(Error::usage(format!("{verb}: --{o} does not apply")));
            }
        }
        if limits_given && !allowed.contains(&"limits") {
            return Err(Error::usage(format!(
                "{verb}: limits apply to create and set"
            )));
        }
        Ok(())
    };
    let show = match (m.opt_present("plan"), m.opt_present("explain")) {
        (true, true) => return Err(Error::usage("--plan and --explain exclude each other")),
        (true, false) => Some(Show::Json),
        (false, true) => Some(Show::Shell),
        (false, false) => None,
    };
    if show.is_some() && !["create", "join", "set", "remove"].contains(&verb.as_str()) {
        return Err(Error::usage(format!(
            "{verb}: --plan and --explain apply to create, join, set and remove"
        )));
    }
    let command = match verb.as_str() {
        "create" | "set" => {
            only(&["config", "limits"])?;
            no_free(&free)?;
            let mut c = config.unwrap_or_else(empty_cgroups);
            c.parent = parent;
            apply_flags(&m, &mut c)?;
            let c = limits::validate(c)?;
            if verb == "create" {
                Command::Create(target, c)
            } else {
                Command::Set(target, c)
            }
        }
        "join" => {
            only(&["pid", "config"])?;
            match m.opt_str("pid") {
                Some(p) => {
                    no_free(&free)?;
                    let pid = p
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| Error::usage(format!("--pid: {p:?} is not a pid")))?;
                    Command::JoinPid(target, pid)
                }
                None if free.is_empty() => {
                    return Err(Error::usage("join: give --pid PID or a command to run"));
                }
                None => Command::JoinExec(target, free),
            }
        }
        "stats" | "watch" | "freeze" | "thaw" => {
            only(&["config"])?;
            no_free(&free)?;
            match verb.as_str() {
                "stats" => Command::Stats(target),
                "watch" => Command::Watch(target),
                v => Command::Freeze(target, v == "freeze"),
            }
        }
        "kill" => {
            only(&["config"])?;
            let sig = match free.len() {
                0 => Signal::SIGKILL,
                1 => signal(&free[0].to_string_lossy())?,
                _ => {
                    return Err(Error::usage(format!(
                        "kill: unexpected argument {:?}",
                        free[1]
                    )));
                }
            };
            Command::Kill(target, sig)
        }
        "remove" => {
            only(&["config", "timeout"])?;
            no_free(&free)?;
            let secs = match m.opt_str("timeout") {
                Some(t) => t.parse::<u64>().map_err(|_| {
                    Error::usage(format!("--timeout: {t:?} is not a number of seconds"))
                })?,
                None => 10,
            };
            Command::Remove(target, Duration::from_secs(secs))
        }
        _ => {
            return Err(Error::usage(format!(
                "unknown verb {verb:?} (see ns-cgroup --help)"
            )));
        }
    };
    Ok(match show {
        Some(show) => Command::Show(show, Box::new(command)),
        None => command,
    })
}

/// The `cgroups` object of the config file at `path`, its fields checked (the rootfs and the
/// rest of the container are not ns-cgroup's business).
fn read_config(path: &str) -> Result<Cgroups> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::io(format!("open config {path}"), e))?;
    let config = Config::read(file, None).map_err(|e| e.context(path))?;
    Ok(config.cgroups.unwrap_or_else(empty_cgroups))
}

fn empty_cgroups() -> Cgroups {
    Cgroups {
        name: None,
        parent: None,
        allow_all_devices: false,
        allowed_devices: Vec::new(),
        memory: None,
        memory_reservation: None,
        memory_swap: None,
        cpu_shares: None,
        cpu_quota: None,
        cpu_period: None,
        cpuset_cpus: None,
        cpuset_mems: None,
        pids_max: None,
        freezer: None,
        slice: None,
    }
}

const LIMIT_FLAGS: [&str; 11] = [
    "memory",
    "memory-reservation",
    "memory-swap",
    "cpu-shares",
    "cpu-quota",
    "cpu-period",
    "cpuset-cpus",
    "cpuset-mems",
    "pids-max",
    "allow-device",
    "allow-all-devices",
];

fn has_limit_flags(m: &getopts::Matches) -> bool {
    LIMIT_FLAGS.iter().any(|f| m.opt_present(f))
}

/// A signal by number, `KILL` or `SIGKILL`.
fn signal(text: &str) -> Result<Signal> {
    let bad = || Error::usage(format!("{text:?} is not a signal"));
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse().map_err(|_| bad())
}

/// Puts the limit flags over the config's values.
fn apply_flags(m: &getopts::Matches, c: &mut Cgroups) -> Result<()> {
    let bytes = |flag: &str| -> Result<Option<Bytes>> {
        m.opt_str(flag)
            .map(|v| {
                if v.trim() == "-1" {
                    return Ok(Bytes(-1));
                }
                Bytes::parse(&v)
                    .ok_or_else(|| Error::usage(format!("--{flag}: {v:?} is not a size")))
            })
            .transpose()
    };
    fn number<T: std::str::FromStr>(m: &getopts::Matches, flag: &str) -> Result<Option<T>> {
        m.opt_str(flag)
            .map(|v| {
                v.parse()
                    .map_err(|_| Error::usage(format!("--{flag}: {v:?} is not a number")))
            })
            .transpose()
    }
    if let Some(b) = bytes("memory")? {
        c.memory = Some(b);
    }
    if let Some(b) = bytes("memory-reservation")? {
        c.memory_reservation = Some(b);
    }
    if let Some(b) = bytes("memory-swap")? {
        c.memory_swap = Some(b);
    }
    if let Some(n) = number(m, "cpu-shares")? {
        c.cpu_shares = Some(n);
    }
    if let Some(n) = number(m, "cpu-quota")? {
        c.cpu_quota = Some(n);
    }
    if let Some(n) = number(m, "cpu-period")? {
        c.cpu_period = Some(n);
    }
    if let Some(s) = m.opt_str("cpuset-cpus") {
        c.cpuset_cpus = Some(s);
    }
    if let Some(s) = m.opt_str("cpuset-mems") {
        c.cpuset_mems = Some(s);
    }
    if let Some(n) = number(m, "pids-max")? {
        c.pids_max = Some(n);
    }
    if m.opt_present("allow-all-devices") {
        c.allow_all_devices = true;
    }
    for text in m.opt_strs("allow-device") {
        let r = Rule::parse(&text)
            .filter(|r| r.kind.is_some())
            .ok_or_else(|| {
                Error::usage(format!(
                    "--allow-device: {text:?} is not \"c|b MAJOR:MINOR [rwm]\" (* for any number)"
                ))
            })?;
        let n = |v: Option<u32>| v.map_or(-1, i64::from);
        c.allowed_devices.push(Device {
            kind: if r.kind == Some('b') {
                DeviceType::Block
            } else {
                DeviceType::Char
            },
            path: None,
            major_number: n(r.major),
            minor_number: n(r.minor),
            cgroup_permissions: Some(r.access),
            file_mode: None,
            uid: None,
            gid: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn target(name: &str) -> Target {
        Target {
            name: name.into(),
            parent: None,
        }
    }

    #[test]
    fn create_takes_limits_from_flags() {
        let Command::Create(t, c) = parse(os(&[
            "create",
            "c1",
            "--memory",
            "64m",
            "--memory-swap",
            "-1",
            "--pids-max",
            "10",
            "--allow-device",
            "c 1:3 rw",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(t, target("c1"));
        assert_eq!(c.memory, Some(Bytes(64 << 20)));
        assert_eq!(c.memory_swap, Some(Bytes(-1)));
        assert_eq!(c.pids_max, Some(10));
        assert_eq!(c.allowed_devices[0].major_number, 1);
    }

    #[test]
    fn name_may_follow_the_options() {
        let Command::Create(t, _) = parse(os(&["create", "--parent", "p/q", "c1"])).unwrap() else {
            panic!()
        };
        assert_eq!(t.name, "c1");
        assert_eq!(t.parent.as_deref(), Some("p/q"));
    }

    #[test]
    fn join_has_a_hook_and_a_chain_form() {
        assert_eq!(
            parse(os(&["join", "c1", "--pid", "42"])).unwrap(),
            Command::JoinPid(target("c1"), 42)
        );
        assert_eq!(
            parse(os(&["join", "c1", "--", "sh", "-c", "x", "--", "y"])).unwrap(),
            Command::JoinExec(target("c1"), os(&["sh", "-c", "x", "--", "y"]))
        );
        assert_eq!(
            parse(os(&["join", "c1", "true"])).unwrap(),
            Command::JoinExec(target("c1"), os(&["true"]))
        );
    }

    #[test]
    fn plan_and_explain_wrap_the_command() {
        assert_eq!(
            parse(os(&["create", "c1", "--plan", "--pids-max", "3"])).unwrap(),
            parse(os(&["create", "c1", "--pids-max", "3"]))
                .map(|c| Command::Show(Show::Json, Box::new(c)))
                .unwrap()
        );
        assert_eq!(
            parse(os(&["join", "c1", "--explain", "--", "sh", "--plan"])).unwrap(),
            Command::Show(
                Show::Shell,
                Box::new(Command::JoinExec(target("c1"), os(&["sh", "--plan"])))
            )
        );
        assert_eq!(
            parse(os(&["remove", "c1", "--plan"])).unwrap(),
            Command::Show(
                Show::Json,
                Box::new(Command::Remove(target("c1"), Duration::from_secs(10)))
            )
        );
    }

    #[test]
    fn kill_takes_a_signal_name_or_number() {
        assert_eq!(
            parse(os(&["kill", "c1"])).unwrap(),
            Command::Kill(target("c1"), Signal::SIGKILL)
        );
        assert_eq!(
            parse(os(&["kill", "c1", "term"])).unwrap(),
            Command::Kill(target("c1"), Signal::SIGTERM)
        );
        assert_eq!(
            parse(os(&["kill", "c1", "10"])).unwrap(),
            Command::Kill(target("c1"), Signal::SIGUSR1)
        );
        assert!(parse(os(&["kill", "c1", "NOPE"])).is_err());
    }

    #[test]
    fn usage_errors() {
        for args in [
            &[][..],
            &["bogus", "c1"][..],
            &["create"][..],
            &["join", "c1"][..],
            &["stats", "c1", "--memory", "1m"][..],
            &["create", "c1", "--memory", "5x"][..],
            &["remove", "c1", "--pid", "3"][..],
            &["create", "c1", "--allow-device", "a 1:3"][..],
            &["create", "c1", "--plan", "--explain"][..],
            &["stats", "c1", "--plan"][..],
            &["kill", "c1", "--explain"][..],
        ] {
            let e = parse(os(args)).unwrap_err();
            assert_eq!(e.code, 125, "{args:?}");
            assert!(e.to_string().starts_with("usage: "), "{args:?}: {e}");
        }
    }

    #[test]
    fn limits_are_validated_naming_the_field() {
        let e = parse(os(&["create", "c1", "--cpu-shares", "1"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config: cgroups.cpu_shares: must be in 2..262144"
        );
    }
}
