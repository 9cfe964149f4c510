//! ns-pty: allocate a pseudo-terminal for a command (a container) and relay it, or relay the
//! one an OCI runtime sends over a console socket.
//!
//! It stays alive beside the command: it puts the caller's terminal in raw mode, copies bytes
//! both ways, follows the window size, forwards signals, and exits with the command's status
//! once the command's last output is out, the terminal restored. See ns-pty(1), the library
//! (`ns_pty`) for the pieces, and docs/handoff.md for `NS_CONSOLE_FD`.

mod cli;
mod plan;
mod run;

fn main() {
    let argv = std::env::args_os().skip(1).collect();
    let code = match cli::parse(argv) {
        Ok(cli::Invocation::Info(text)) => {
            print!("{text}");
            0
        }
        Ok(cli::Invocation::Plan { inner, json }) => match run::print_plan(&inner, json) {
            Ok(()) => 0,
            Err(e) => common::cli::fatal("ns-pty", &e),
        },
        Ok(invocation) => match run::run(invocation) {
            Ok(code) => code,
            Err(e) => common::cli::fatal("ns-pty", &e),
        },
        Err(e) => common::cli::fatal("ns-pty", &e),
    };
    std::process::exit(code)
}
