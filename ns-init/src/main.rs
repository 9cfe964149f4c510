//! ns-init: the container's first process.
//!
//! This is the program: a script runs it under `unshare`, and `ns-exec --init` execs it (by
//! default ns-exec's cloned child runs the same steps from this crate's library). It waits
//! for the host side to finish (the `go` on the sync socket), prepares the root filesystem,
//! hostname, user, capabilities, cwd and environment, then `execve`s the command, which
//! replaces it as the container's process. Any failure before that exec travels back over the
//! sync socket with its errno, so `ns-exec` prints it; run by hand, ns-init prints it itself.
//! See ns-init(1) and docs/handoff.md.
//!
//! ns-init starts once per container, so its start-up counts: it is `#![no_main]`, which skips
//! Rust's runtime set-up before `main` (reading `/proc/self/maps` to find the main thread's
//! stack guard, an alternate signal stack and its handlers, `SIGPIPE` set to ignored), 19 of
//! its 34 system calls before `--version` prints. Nothing here needs them: a stack overflow
//! still faults, every signal is reset before the exec anyway, and arguments and environment
//! come from `std::env`, which glibc fills before any `main`. Output goes through
//! `common::cli::print`, which flushes, since nothing flushes stdout at exit without that
//! runtime. What it did do that matters, opening `/dev/null` on a closed fd 0, 1 or 2, `main`
//! does first (`common::sys::standard_fds_open`).

// Not in the unit-test build, whose harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

mod cli;
mod run;

/// The C entry point, without Rust's runtime start-up (see the module documentation).
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    common::sys::standard_fds_open();
    ns_init_main();
    0
}

#[cfg_attr(test, allow(dead_code))]
fn ns_init_main() {
    let argv = std::env::args_os().skip(1).collect();
    match cli::parse(argv, |k| std::env::var(k).ok()) {
        Ok(cli::Invocation::Info(text)) => {
            if let Err(e) = common::cli::print(&text) {
                common::cli::fatal("ns-init", &e)
            }
        }
        Ok(cli::Invocation::Run(args)) => run::run(args),
        Ok(cli::Invocation::Plan(args, explain)) => {
            if let Err(e) = run::print_plan(args, explain) {
                common::cli::fatal("ns-init", &e)
            }
        }
        Err(e) => common::cli::fatal("ns-init", &e),
    }
}
