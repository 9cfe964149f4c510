//! ns-init: the container's first process.
//!
//! `ns-exec` clones it into the new namespaces (or a script runs it under `unshare`). It waits
//! for the host side to finish (the `go` on the sync socket), prepares the root filesystem,
//! hostname, user, capabilities, cwd and environment, then `execve`s the command, which
//! replaces it as the container's process. Any failure before that exec travels back over the
//! sync socket with its errno, so `ns-exec` prints it; run by hand, ns-init prints it itself.
//! See ns-init(1) and docs/handoff.md.

mod cli;
mod run;

fn main() {
    let argv = std::env::args_os().skip(1).collect();
    match cli::parse(argv, |k| std::env::var(k).ok()) {
        Ok(cli::Invocation::Info(text)) => print!("{text}"),
        Ok(cli::Invocation::Run(args)) => run::run(args),
        Ok(cli::Invocation::Plan(args, explain)) => {
            if let Err(e) = run::print_plan(args, explain) {
                common::cli::fatal("ns-init", &e)
            }
        }
        Err(e) => common::cli::fatal("ns-init", &e),
    }
}
