//! ns-cgroup: create a container's cgroup with its limits, move a process in, report stats and
//! events, freeze, kill and remove it, on cgroup v1, hybrid and v2 layouts.
//!
//! One program with verbs (see ns-cgroup(1)). `join NAME -- CMD` is the chain form: it moves
//! itself in, then execs CMD through `std::process::Command` (which resets SIGPIPE and the
//! signal mask), so CMD and all its children start inside. Everything else is in the library.
//!
//! The trace file (`NS_TRACE`) is opened first, before anything can fail half-way, so every
//! action a run applies is recorded ([`ns_cgroup::plan`]).

use std::io::Write;
use std::os::unix::process::CommandExt;

use common::{Error, Result, exit};
use ns_cgroup::Cgroup;
use ns_cgroup::cli::{self, Command, Target};

fn main() {
    if let Err(e) = common::trace::init_from_env() {
        common::cli::fatal("ns-cgroup", &e);
    }
    let argv = std::env::args_os().skip(1).collect();
    match cli::parse(argv).and_then(run) {
        Ok(code) => std::process::exit(code),
        Err(e) => common::cli::fatal("ns-cgroup", &e),
    }
}

fn open(t: &Target) -> Result<Cgroup> {
    Cgroup::open_existing(&t.name, t.parent.as_deref())
}

fn run(cmd: Command) -> Result<i32> {
    match cmd {
        Command::Info(text) => {
            // A closed stdout (`ns-cgroup --help | head -0`) is not an error worth a message.
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
        Command::Show(show, cmd) => {
            let text = ns_cgroup::plan::render(show, *cmd)?;
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
        Command::Create(t, limits) => {
            Cgroup::create(&t.name, &limits)?;
        }
        Command::Set(t, limits) => open(&t)?.set(&limits)?,
        Command::JoinPid(t, pid) => open(&t)?.join(pid)?,
        Command::JoinExec(t, argv) => {
            open(&t)?.join_self()?;
            let program = argv[0].clone();
            let err = std::process::Command::new(&program).args(&argv[1..]).exec();
            let errno = nix::errno::Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO));
            return Err(Error::exec(format!("{:?}", program), errno));
        }
        Command::Stats(t) => {
            let doc = ns_cgroup::stats::collect(&open(&t)?)?;
            let _ = writeln!(std::io::stdout(), "{doc}");
        }
        Command::Watch(t) => ns_cgroup::watch::watch(&open(&t)?, &mut std::io::stdout().lock())?,
        Command::Freeze(t, frozen) => open(&t)?.freeze(frozen)?,
        Command::Kill(t, sig) => open(&t)?.kill(sig)?,
        Command::Remove(t, timeout) => {
            // Idempotent: a cgroup that is not there is already removed.
            if let Some(cg) = Cgroup::open(&t.name, t.parent.as_deref())? {
                cg.remove_empty(timeout)?;
            }
        }
    }
    Ok(exit::OK)
}
