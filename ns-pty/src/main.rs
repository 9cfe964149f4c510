//! ns-pty: allocate a pseudo-terminal for a container and relay it.
//!
//! Not written yet: only `--help` and `--version` work, and every other invocation fails with
//! status 125, so nothing can mistake it for a working stage.

const USAGE: &str = "\
Usage: ns-pty [OPTIONS] -- CMD [ARG...]
       ns-pty --console-socket PATH [-- CMD [ARG...]]

Allocate a /dev/ptmx master and its pts, hand the pts on to CMD as its console, and relay
I/O with the caller's terminal in raw mode, following window size changes; or receive a
master over a console socket (the runc/crun --console-socket protocol) and relay it.

NOT IMPLEMENTED YET: this version only prints this help; every other use exits 125.
";

fn main() {
    common::cli::planned_stage("ns-pty", env!("CARGO_PKG_VERSION"), USAGE)
}
