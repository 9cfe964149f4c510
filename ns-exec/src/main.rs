//! ns-exec: start a container, or run a command inside a running one.
//!
//! It reads the container config, clones the container's first process into new namespaces
//! running `ns-init`, runs the host-side stages for its pid, releases it, waits and returns
//! its exit status, and cleans up on every path. See ns-exec(1), docs/architecture.md and
//! docs/handoff.md.
//!
//! ns-exec starts once per container, so its start-up counts: like ns-init it is
//! `#![no_main]`, which skips Rust's runtime set-up before `main` (reading `/proc/self/maps`
//! for the main thread's stack guard, an alternate signal stack and its handlers). It keeps
//! the one thing of that set-up it needs: `SIGPIPE` ignored, so a caller that closed the
//! terminal or a pipe ns-exec writes to gets `EPIPE` back rather than killing the container's
//! host side. Arguments come from `std::env`, which glibc fills before any `main`, and every
//! exit goes through `std::process::exit`, which flushes stdout.

// Not in the unit-test build, whose harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

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

/// The C entry point, without Rust's runtime start-up (see the module documentation).
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // SAFETY: setting a disposition to SIG_IGN has no handler to race with.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    common::sys::standard_fds_open();
    // The thread that clones the container gets a malloc arena of its own, which its child
    // allocates in (spawn.rs): never the main thread's, whatever MALLOC_ARENA_MAX says.
    // SAFETY: mallopt before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if spawn::in_vfork_child() {
            // In ns-exec's memory (spawn.rs): no standard error lock, no abort().
            let payload = info.payload();
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic");
            let at = info
                .location()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            let line = format!("ns-init: internal error{at}: {what}\n");
            // SAFETY: a write of our own buffer to fd 2.
            unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
            common::sys::exit_now(common::exit::FAILED);
        }
        default_hook(info)
    }));
    ns_exec_main()
}

#[cfg_attr(test, allow(dead_code))]
fn ns_exec_main() -> ! {
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
