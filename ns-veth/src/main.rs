//! ns-veth: give a network namespace a veth pair attached to a bridge (see `ns-veth --help`
//! and ns-veth(1)). The work is in the library; this only opens the trace (`NS_TRACE`), runs
//! it and maps errors to the exit status.

fn main() {
    let code = match common::trace::init_from_env()
        .and_then(|()| ns_veth::cli::run(std::env::args_os().skip(1)))
    {
        Ok(code) => code,
        Err(e) => common::cli::fatal("ns-veth", &e),
    };
    std::process::exit(code)
}
