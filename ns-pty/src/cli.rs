//! ns-pty's command line: options, then the command to run.

use std::ffi::OsString;
use std::path::PathBuf;

use common::{Error, Result, cli};

/// The usage text; `docs/man/ns-pty.1.md` lists the same options.
pub const USAGE: &str = "\
Usage: ns-pty [--] CMD [ARG...]
       ns-pty --console-socket PATH [--] [CMD [ARG...]]

Allocate a pseudo-terminal and run CMD on it: the pts is CMD's fds 0-2, its controlling
terminal, and fd 3, announced as NS_CONSOLE_FD=3 (ns-exec hands it on to the container).
Relay meanwhile: the caller's terminal in raw mode (restored at the end, also on SIGTERM),
stdin to the pty, the pty to stdout until CMD's last byte, the window size followed.
Exit with CMD's status (128+N when signal N killed it).

With --console-socket, listen on PATH instead and relay the pty master an OCI runtime
sends there (runc/crun --console-socket); CMD, if given, is usually that runtime, and
its status is ns-pty's; without CMD, relay until the console is closed.

Options:
      --console-socket PATH  receive the pty master on the unix socket PATH
      --plan                 print the steps as JSON and change nothing
      --explain              print the steps as a shell script (util-linux script)
  -h, --help                 print this help
  -V, --version              print the version
";

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    /// Print help or version and exit 0.
    Info(String),
    /// Allocate a pty and run the command on it.
    Chain {
        /// The command and its arguments.
        command: Vec<OsString>,
    },
    /// Receive a master on a console socket; run the command (if any) beside it.
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// The command, usually the runtime that will connect.
        command: Vec<OsString>,
    },
    /// Print the plan of `inner`: as JSON (`--plan`) or as a shell script (`--explain`).
    Plan {
        /// What would run.
        inner: Box<Invocation>,
        /// `--plan` rather than `--explain`.
        json: bool,
    },
}

/// Parses argv (without argv\[0\]).
pub fn parse(argv: Vec<OsString>) -> Result<Invocation> {
    let split = cli::split(argv, &["console-socket"])?;
    let mut opts = getopts::Options::new();
    opts.optopt("", "console-socket", "", "PATH")
        .optflag("", "plan", "")
        .optflag("", "explain", "")
        .optflag("h", "help", "")
        .optflag("V", "version", "");
    let m = cli::parse(&opts, &split.opts)?;
    if m.opt_present("help") {
        return Ok(Invocation::Info(USAGE.to_string()));
    }
    if m.opt_present("version") {
        return Ok(Invocation::Info(format!(
            "ns-pty {}\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let invocation = match m.opt_str("console-socket") {
        Some(path) if path.is_empty() => Err(Error::usage("--console-socket: empty path")),
        Some(path) => Ok(Invocation::Socket {
            path: path.into(),
            command: split.rest,
        }),
        None if split.rest.is_empty() => Err(Error::usage(
            "no command given (ns-pty [--] CMD [ARG...], or --console-socket PATH)",
        )),
        None => Ok(Invocation::Chain {
            command: split.rest,
        }),
    }?;
    match (m.opt_present("plan"), m.opt_present("explain")) {
        (true, true) => Err(Error::usage("give --plan or --explain, not both")),
        (false, false) => Ok(invocation),
        (plan, _) => Ok(Invocation::Plan {
            inner: Box::new(invocation),
            json: plan,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn chain_form_keeps_the_command_whole() {
        assert_eq!(
            parse(os(&["--", "sh", "-c", "--x"])).unwrap(),
            Invocation::Chain {
                command: os(&["sh", "-c", "--x"])
            }
        );
        assert_eq!(
            parse(os(&["sh", "-i"])).unwrap(),
            Invocation::Chain {
                command: os(&["sh", "-i"])
            }
        );
    }

    #[test]
    fn socket_form_takes_an_optional_command() {
        assert_eq!(
            parse(os(&["--console-socket", "/run/x.sock"])).unwrap(),
            Invocation::Socket {
                path: "/run/x.sock".into(),
                command: vec![]
            }
        );
        assert_eq!(
            parse(os(&["--console-socket=/s", "--", "runc", "run", "x"])).unwrap(),
            Invocation::Socket {
                path: "/s".into(),
                command: os(&["runc", "run", "x"])
            }
        );
    }

    #[test]
    fn usage_errors() {
        for args in [&[][..], &["--bogus", "sh"][..], &["--console-socket="][..]] {
            let e = parse(os(args)).unwrap_err();
            assert!(e.to_string().starts_with("usage: "), "{args:?}: {e}");
            assert_eq!(e.code, 125);
        }
    }
}
