//! ns-init's command line: options, then the command to run.

use std::ffi::OsString;
use std::os::fd::OwnedFd;

use common::handoff::{ENV_CONFIG_FD, ENV_CONSOLE_FD, ENV_LOG_FD, ENV_READY_FD, ENV_SYNC_FD};
use common::{Error, Result, cli, fd};

/// The usage text; `docs/man/ns-init.1.md` lists the same options.
pub const USAGE: &str = "\
Usage: ns-init [OPTIONS] [--] CMD [ARG...]

Set up the container this process is the first process of, then execute CMD:
mounts and pivot_root, hostname, user, capabilities, cwd, environment.

Options:
      --config FILE   read the container config from FILE (default: ./container.json)
      --config-fd N   read the container config from fd N (default: $NS_CONFIG_FD)
      --sync-fd N     the sync socket to ns-exec, or a pipe a script writes network
                      contexts and then the go line into (default: $NS_SYNC_FD)
      --ready-fd N    write the ready line to fd N, then close it (default: $NS_READY_FD)
      --log-fd N      append log lines to fd N (default: $NS_LOG_FD)
      --console-fd N  the container's terminal, a pts (default: $NS_CONSOLE_FD)
      --plan          print the steps as JSON and change nothing
      --explain       print the steps as a shell script and change nothing
  -h, --help          print this help
  -V, --version       print the version
";

/// Where the config comes from.
#[derive(Debug)]
pub enum ConfigSource {
    /// A file path.
    File(std::path::PathBuf),
    /// An inherited fd.
    Fd(OwnedFd),
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Invocation {
    /// Print help or version and exit 0.
    Info(String),
    /// Set up and run.
    Run(Args),
    /// Print the plan (`--plan`, or `--explain` when `true`) and change nothing.
    Plan(Args, bool),
}

/// Parsed options of a run.
#[derive(Debug)]
pub struct Args {
    /// The config.
    pub config: ConfigSource,
    /// The sync socket (ns-exec) or pipe (a script).
    pub sync: Option<OwnedFd>,
    /// Where to announce `ready` (a script's pipe).
    pub ready: Option<OwnedFd>,
    /// The log fd.
    pub log: Option<OwnedFd>,
    /// The console (a pts), when the container has a terminal.
    pub console: Option<OwnedFd>,
    /// The command and its arguments.
    pub command: Vec<OsString>,
}

/// Parses argv (without argv\[0\]) and the `NS_*` variables of the protocol.
pub fn parse(argv: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> Result<Invocation> {
    let split = cli::split(
        argv,
        &[
            "config",
            "config-fd",
            "sync-fd",
            "ready-fd",
            "log-fd",
            "console-fd",
        ],
    )?;
    let mut opts = getopts::Options::new();
    opts.optopt("", "config", "", "FILE")
        .optopt("", "config-fd", "", "N")
        .optopt("", "sync-fd", "", "N")
        .optopt("", "ready-fd", "", "N")
        .optflag("", "plan", "")
        .optflag("", "explain", "")
        .optopt("", "log-fd", "", "N")
        .optopt("", "console-fd", "", "N")
        .optflag("h", "help", "")
        .optflag("V", "version", "");
    let m = cli::parse(&opts, &split.opts)?;
    if m.opt_present("help") {
        return Ok(Invocation::Info(USAGE.to_string()));
    }
    if m.opt_present("version") {
        return Ok(Invocation::Info(format!(
            "ns-init {}\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    // An explicit flag wins over the variable (handoff.md).
    let fd_opt = |flag: &str, var: &str| -> Result<Option<OwnedFd>> {
        match m
            .opt_str(flag)
            .or_else(|| env(var).filter(|v| !v.is_empty()))
        {
            Some(text) => fd::take(&text, &format!("--{flag}")).map(Some),
            None => Ok(None),
        }
    };
    let sync = fd_opt("sync-fd", ENV_SYNC_FD)?;
    let ready = fd_opt("ready-fd", ENV_READY_FD)?;
    let log = fd_opt("log-fd", ENV_LOG_FD)?;
    let console = fd_opt("console-fd", ENV_CONSOLE_FD)?;
    let config = match (m.opt_str("config"), fd_opt("config-fd", ENV_CONFIG_FD)?) {
        (Some(_), Some(_)) if m.opt_present("config-fd") => {
            return Err(Error::usage("give --config or --config-fd, not both"));
        }
        (Some(path), _) => ConfigSource::File(path.into()),
        (None, Some(fd)) => ConfigSource::Fd(fd),
        (None, None) => ConfigSource::File("container.json".into()),
    };
    if split.rest.is_empty() {
        return Err(Error::usage(
            "no command given (ns-init [OPTIONS] [--] CMD [ARG...])",
        ));
    }
    let args = Args {
        config,
        sync,
        ready,
        log,
        console,
        command: split.rest,
    };
    Ok(match (m.opt_present("plan"), m.opt_present("explain")) {
        (true, true) => return Err(Error::usage("give --plan or --explain, not both")),
        (true, false) => Invocation::Plan(args, false),
        (false, true) => Invocation::Plan(args, true),
        (false, false) => Invocation::Run(args),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn command_is_required() {
        let e = parse(os(&["--config", "x.json"]), |_| None).unwrap_err();
        assert!(e.to_string().contains("no command"), "{e}");
    }

    #[test]
    fn defaults_to_container_json_and_keeps_the_command_whole() {
        let Invocation::Run(a) = parse(os(&["sh", "-c", "--x"]), |_| None).unwrap() else {
            panic!("expected a run")
        };
        assert!(matches!(a.config, ConfigSource::File(p) if p.as_os_str() == "container.json"));
        assert_eq!(a.command, os(&["sh", "-c", "--x"]));
        assert!(a.sync.is_none());
    }

    #[test]
    fn bad_fd_numbers_are_usage_errors() {
        let e = parse(os(&["--sync-fd", "x", "sh"]), |_| None).unwrap_err();
        assert!(e.to_string().contains("not an fd number"), "{e}");
        let e = parse(os(&["sh"]), |v| (v == "NS_SYNC_FD").then(|| "-1".into())).unwrap_err();
        assert!(e.to_string().contains("not an fd number"), "{e}");
    }

    #[test]
    fn help_needs_no_command() {
        assert!(matches!(
            parse(os(&["--help"]), |_| None).unwrap(),
            Invocation::Info(_)
        ));
    }
}
