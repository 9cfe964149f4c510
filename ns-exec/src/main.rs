//! ns-exec: start a container, or run a command inside a running one.
//!
//! It reads the container config, clones the container's first process into new namespaces
//! running `ns-init`, runs the host-side stages for its pid, releases it, waits and returns
//! its exit status, and cleans up on every path. See ns-exec(1), docs/architecture.md and
//! docs/handoff.md.

mod cli;
mod doctor;
mod enter;
mod gc;
mod plan;
mod run;
mod spawn;
mod state;
mod wait;

use std::io::Write;

use common::Error;
use common::sync::WireError;

/// An error, and the stage whose name goes in front of it on stderr.
#[derive(Debug)]
pub struct Failure {
    stage: String,
    err: Error,
}

impl Failure {
    /// An error a stage reported over the sync socket.
    fn from_wire(w: WireError) -> Self {
        Failure {
            stage: w.stage.clone(),
            err: w.into_error(),
        }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure {
            stage: "ns-exec".into(),
            err,
        }
    }
}

fn main() {
    let argv = std::env::args_os().skip(1).collect();
    let result = match cli::parse(argv) {
        Ok(cli::Invocation::Info(text)) => {
            // A closed stdout (`ns-exec --help | head -0`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(text.as_bytes());
            Ok(0)
        }
        Ok(cli::Invocation::Run(args)) => run::run(args),
        Ok(cli::Invocation::Enter(args)) => enter::enter(args),
        Ok(cli::Invocation::Gc(args)) => gc::gc(args).map_err(Failure::from),
        Ok(cli::Invocation::Doctor(json)) => doctor::doctor(json).map_err(Failure::from),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(f) => {
            eprintln!("{}: {}", f.stage, f.err);
            std::process::exit(f.err.code)
        }
    }
}
