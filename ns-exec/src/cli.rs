//! ns-exec's command line: `ns-exec [OPTIONS] [--] CMD...` and `ns-exec enter NAME [--] CMD...`.

use std::ffi::OsString;
use std::path::PathBuf;

use common::config::validate::is_valid_name;
use common::{Error, Result, cli};

/// The usage text; `docs/man/ns-exec.1.md` lists the same options.
pub const USAGE: &str = "\
Usage: ns-exec [OPTIONS] [--] CMD [ARG...]
       ns-exec enter [--root DIR] NAME [--] CMD [ARG...]
       ns-exec gc [--root DIR] [--dry-run]
       ns-exec doctor [--json]

Run CMD in a new container described by a container.json, or inside a running one;
gc removes what killed runs left behind; doctor says what this host can run.

Options:
      --config FILE     the container config (default: ./container.json)
      --rootfs DIR      the root filesystem (overrides the config's \"rootfs\")
      --name NAME       the container's name (default: the config's cgroup name or
                        hostname); if NAME is running, CMD runs inside it
      --pid-file FILE   write the container process's pid to FILE while it runs
      --log FILE        append a log of each step to FILE
      --root DIR        the state directory (default: /run/ns-tools)
      --init PATH       exec this ns-init program as the container's first process
                        (default: $NS_INIT; without either, ns-init's code runs
                        built into ns-exec)
      --plan            print the run's steps as JSON and change nothing
      --explain         print the run's steps as a shell script of util-linux,
                        iproute2 and cgroupfs commands, and change nothing
      --dry-run         gc: list what would be removed, remove nothing
      --json            doctor: print the report as one JSON document
  -h, --help            print this help
  -V, --version         print the version

Exit status: CMD's own; 128+N if signal N killed it; 125 if ns-tools failed;
126 if CMD could not be executed; 127 if CMD was not found.
";

/// The default state directory.
pub const DEFAULT_ROOT: &str = "/run/ns-tools";

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    /// Print this text and exit 0.
    Info(String),
    /// Start a new container (or enter it, if `--name` names a running one).
    Run(RunArgs),
    /// Run a command inside a running container.
    Enter(EnterArgs),
    /// Remove what killed runs left behind.
    Gc(GcArgs),
    /// Check the host; `true` for JSON output.
    Doctor(bool),
}

/// Options of `gc`.
#[derive(Debug, PartialEq)]
pub struct GcArgs {
    /// `--root`.
    pub root: PathBuf,
    /// `--dry-run`: list only.
    pub dry_run: bool,
}

/// Options of a run.
#[derive(Debug, PartialEq)]
pub struct RunArgs {
    /// The config file.
    pub config: PathBuf,
    /// `--rootfs`, overriding the config.
    pub rootfs: Option<PathBuf>,
    /// `--name`.
    pub name: Option<String>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--log`.
    pub log: Option<PathBuf>,
    /// `--root`.
    pub root: PathBuf,
    /// `--init`.
    pub init: Option<PathBuf>,
    /// `--plan` or `--explain`: print the plan instead of running.
    pub show: Option<Show>,
    /// The command.
    pub command: Vec<OsString>,
}

/// How to print a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// As JSON (`--plan`).
    Plan,
    /// As a shell script (`--explain`).
    Explain,
}

/// Options of `enter`.
#[derive(Debug, PartialEq)]
pub struct EnterArgs {
    /// The running container's name.
    pub name: String,
    /// `--root`.
    pub root: PathBuf,
    /// `--log`.
    pub log: Option<PathBuf>,
    /// The command.
    pub command: Vec<OsString>,
}

const VALUED: [&str; 7] = [
    "config", "rootfs", "name", "pid-file", "log", "root", "init",
];

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt("", "config", "", "FILE")
        .optopt("", "rootfs", "", "DIR")
        .optopt("", "name", "", "NAME")
        .optopt("", "pid-file", "", "FILE")
        .optopt("", "log", "", "FILE")
        .optopt("", "root", "", "DIR")
        .optopt("", "init", "", "PATH")
        .optflag("", "dry-run", "")
        .optflag("", "plan", "")
        .optflag("", "explain", "")
        .optflag("", "json", "")
        .optflag("h", "help", "")
        .optflag("V", "version", "");
    o
}

/// Parses argv without argv\[0\].
pub fn parse(argv: Vec<OsString>) -> Result<Invocation> {
    let split = cli::split(argv, &VALUED)?;
    let m = cli::parse(&options(), &split.opts)?;
    if m.opt_present("help") {
        return Ok(Invocation::Info(USAGE.to_string()));
    }
    if m.opt_present("version") {
        return Ok(Invocation::Info(format!(
            "ns-exec {}\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let root = PathBuf::from(m.opt_str("root").unwrap_or_else(|| DEFAULT_ROOT.into()));
    if !split.after_dashdash && split.rest.first().is_some_and(|w| w == "enter") {
        return parse_enter(split.rest[1..].to_vec(), &m, root);
    }
    if !split.after_dashdash && split.rest.first().is_some_and(|w| w == "gc") {
        return parse_gc(split.rest[1..].to_vec(), &m, root);
    }
    if !split.after_dashdash && split.rest.first().is_some_and(|w| w == "doctor") {
        let rest = cli::split(split.rest[1..].to_vec(), &VALUED)?;
        let inner = cli::parse(&options(), &rest.opts)?;
        if let Some(extra) = rest.rest.first() {
            return Err(Error::usage(format!(
                "doctor takes no arguments, got {:?}",
                extra.to_string_lossy()
            )));
        }
        return Ok(Invocation::Doctor(
            inner.opt_present("json") || m.opt_present("json"),
        ));
    }
    if m.opt_present("dry-run") {
        return Err(Error::usage("--dry-run goes with gc"));
    }
    if m.opt_present("json") {
        return Err(Error::usage("--json goes with doctor"));
    }
    if split.rest.is_empty() {
        return Err(Error::usage("no command given (see ns-exec --help)"));
    }
    let name = m.opt_str("name");
    check_name(name.as_deref())?;
    let show = match (m.opt_present("plan"), m.opt_present("explain")) {
        (true, true) => return Err(Error::usage("give --plan or --explain, not both")),
        (true, false) => Some(Show::Plan),
        (false, true) => Some(Show::Explain),
        (false, false) => None,
    };
    Ok(Invocation::Run(RunArgs {
        config: m
            .opt_str("config")
            .unwrap_or_else(|| "container.json".into())
            .into(),
        rootfs: m.opt_str("rootfs").map(PathBuf::from),
        name,
        pid_file: m.opt_str("pid-file").map(PathBuf::from),
        log: m.opt_str("log").map(PathBuf::from),
        root,
        init: m.opt_str("init").map(PathBuf::from),
        show,
        command: split.rest,
    }))
}

/// `enter [--root DIR] NAME [--] CMD...`; options may also stand before `enter`.
fn parse_enter(
    words: Vec<OsString>,
    outer: &getopts::Matches,
    root: PathBuf,
) -> Result<Invocation> {
    let split = cli::split(words, &VALUED)?;
    let m = cli::parse(&options(), &split.opts)?;
    for only_run in [
        "config", "rootfs", "name", "pid-file", "init", "dry-run", "plan", "explain",
    ] {
        if m.opt_present(only_run) || outer.opt_present(only_run) {
            return Err(Error::usage(format!("--{only_run} does not go with enter")));
        }
    }
    let mut rest = split.rest.into_iter();
    let name = rest
        .next()
        .ok_or_else(|| Error::usage("enter needs a container name"))?
        .into_string()
        .map_err(|_| Error::usage("the container name is not valid UTF-8"))?;
    check_name(Some(&name))?;
    let mut command: Vec<OsString> = rest.collect();
    if !split.after_dashdash && command.first().is_some_and(|w| w == "--") {
        command.remove(0);
    }
    if command.is_empty() {
        return Err(Error::usage(
            "no command given (ns-exec enter NAME [--] CMD [ARG...])",
        ));
    }
    let pick = |flag: &str| {
        m.opt_str(flag)
            .or_else(|| outer.opt_str(flag))
            .map(PathBuf::from)
    };
    Ok(Invocation::Enter(EnterArgs {
        name,
        root: pick("root").unwrap_or(root),
        log: pick("log"),
        command,
    }))
}

/// `gc [--root DIR] [--dry-run]`; options may also stand before `gc`.
fn parse_gc(words: Vec<OsString>, outer: &getopts::Matches, root: PathBuf) -> Result<Invocation> {
    let split = cli::split(words, &VALUED)?;
    let m = cli::parse(&options(), &split.opts)?;
    if let Some(extra) = split.rest.first() {
        return Err(Error::usage(format!(
            "gc takes no arguments, got {:?}",
            extra.to_string_lossy()
        )));
    }
    for only_run in ["config", "rootfs", "name", "pid-file", "init", "log"] {
        if m.opt_present(only_run) || outer.opt_present(only_run) {
            return Err(Error::usage(format!("--{only_run} does not go with gc")));
        }
    }
    Ok(Invocation::Gc(GcArgs {
        root: m.opt_str("root").map(PathBuf::from).unwrap_or(root),
        dry_run: m.opt_present("dry-run") || outer.opt_present("dry-run"),
    }))
}

fn check_name(name: Option<&str>) -> Result<()> {
    match name {
        Some(n) if !is_valid_name(n) => Err(Error::usage(format!(
            "--name: {n:?} is not a valid name ([A-Za-z0-9_.-]+, at most 128 bytes)"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn run_takes_options_then_the_command() {
        let Invocation::Run(r) = parse(os(&[
            "--config", "c.json", "--name", "web", "sh", "-c", "exit 3",
        ]))
        .unwrap() else {
            panic!("expected run")
        };
        assert_eq!(r.config, PathBuf::from("c.json"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.root, PathBuf::from(DEFAULT_ROOT));
        assert_eq!(r.command, os(&["sh", "-c", "exit 3"]));
    }

    #[test]
    fn enter_takes_a_name_and_a_command() {
        let inv = parse(os(&["--root", "/r", "enter", "web", "--", "ps"])).unwrap();
        let Invocation::Enter(e) = inv else {
            panic!("expected enter")
        };
        assert_eq!(
            (e.name.as_str(), e.root.as_path()),
            ("web", std::path::Path::new("/r"))
        );
        assert_eq!(e.command, os(&["ps"]));
        let Invocation::Enter(e) =
            parse(os(&["enter", "--root", "/s", "web", "ps", "-ef"])).unwrap()
        else {
            panic!("expected enter")
        };
        assert_eq!(e.root, PathBuf::from("/s"));
        assert_eq!(e.command, os(&["ps", "-ef"]));
    }

    #[test]
    fn doctor_takes_json() {
        assert_eq!(parse(os(&["doctor"])).unwrap(), Invocation::Doctor(false));
        assert_eq!(
            parse(os(&["doctor", "--json"])).unwrap(),
            Invocation::Doctor(true)
        );
        assert!(parse(os(&["doctor", "x"])).is_err());
        assert!(parse(os(&["--json", "true"])).is_err());
    }

    #[test]
    fn gc_takes_root_and_dry_run() {
        let inv = parse(os(&["gc", "--root", "/r", "--dry-run"])).unwrap();
        assert_eq!(
            inv,
            Invocation::Gc(GcArgs {
                root: PathBuf::from("/r"),
                dry_run: true
            })
        );
        assert!(parse(os(&["gc", "x"])).is_err());
        assert!(parse(os(&["--dry-run", "true"])).is_err());
    }

    #[test]
    fn a_command_named_enter_runs_after_dashdash() {
        let Invocation::Run(r) = parse(os(&["--", "enter", "x"])).unwrap() else {
            panic!("expected run")
        };
        assert_eq!(r.command, os(&["enter", "x"]));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["--name", "../x", "sh"][..],
            &["enter"][..],
            &["enter", "web"][..],
            &["enter", "--config", "c", "web", "sh"][..],
            &["--bogus", "sh"][..],
        ] {
            let e = parse(os(bad)).unwrap_err();
            assert_eq!(e.code, 125, "{bad:?}");
            assert!(e.to_string().starts_with("usage: "), "{e}");
        }
    }
}
