//! The ns-init program's run: read the config, find ns-dmz beside this program, then
//! [`ns_init::setup::setup_and_exec`], and where its errors go (back over the sync socket to
//! ns-exec, else to stderr).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use common::config::Config;
use common::plan::Plan;
use common::{Error, Result, ns_log, trace};
use ns_init::exec::Launcher;
use ns_init::plan::STAGE;
use ns_init::setup::{Cloned, Host, setup_and_exec};
use ns_init::{identity, plan};

use crate::cli::{Args, ConfigSource};

/// Runs the setup and execs the command; never returns.
pub fn run(args: Args) -> ! {
    if let Some(log) = args.log {
        common::log::init(File::from(log), "ns-init");
    }
    let mut host = match Host::new(args.sync) {
        Ok(h) => h,
        Err(e) => common::cli::fatal(STAGE, &e),
    };
    let err = match trace::init_from_env()
        .and_then(|()| read_config(args.config))
        .and_then(|config| {
            // The command through ns-dmz when it is beside this program, as ns-exec does it:
            // run from the host's file (a script's `unshare ... ns-init`), this program is
            // what a command re-entering /proc/self/exe would reach (CVE-2019-5736). Opened
            // now, while the host's files are in reach.
            let dmz = common::mount_api::dmz_beside_self()?;
            // SAFETY: the socket stays open in `host` until this process execs or exits, which
            // outlives `launcher`.
            let report = host
                .socket()
                .map(|s| unsafe { BorrowedFd::borrow_raw(s.fd().as_raw_fd()) });
            let launcher = match &dmz {
                Some(fd) => Launcher::Dmz {
                    program: fd.as_fd(),
                    report,
                },
                None => Launcher::Direct,
            };
            setup_and_exec(
                &config,
                &args.command,
                args.console,
                args.ready,
                &mut host,
                &launcher,
                // A script's or ns-exec --init's ns-init cannot tell whether the host side
                // still has cgroups to put it in; its network namespace, if any, came with
                // the clone (or the script's unshare).
                Cloned::default(),
            )
        }) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    ns_log!("failed: {err}");
    match host.socket() {
        // ns-exec prints it; printing here too would show the line twice.
        Some(s) => {
            s.report_error(STAGE, &err);
            std::process::exit(err.code)
        }
        None => common::cli::fatal(STAGE, &err),
    }
}

/// Prints the plan (`--plan`) or its shell form (`--explain`); changes nothing.
pub fn print_plan(args: Args, explain: bool) -> Result<()> {
    let config = read_config(args.config)?;
    let root = config
        .rootfs
        .clone()
        .ok_or_else(|| Error::msg("plan", "the config names no rootfs"))?;
    let id = identity::lookup_in(&root, config.user.as_deref())?;
    let actions = plan::actions(
        &config,
        &args.command,
        &[],
        args.console.is_some(),
        false,
        &id,
    )?;
    let plan = Plan::new(STAGE, actions);
    let text = if explain {
        plan.to_shell(
            "ns-init --explain: the container's setup with util-linux and iproute2.\n\
             Run it inside the container's new namespaces, as ns-init would be run:\n\
             unshare --mount --uts --ipc --pid --net --fork sh THIS-FILE",
        )
    } else {
        plan.to_json()
    };
    common::cli::print(&text)
}

/// Reads the config. From a file, a relative rootfs is relative to the file's folder; from an
/// fd (ns-exec's canonical copy), the rootfs is already absolute.
fn read_config(source: ConfigSource) -> Result<Config> {
    match source {
        ConfigSource::File(path) => Config::load(&path, None),
        ConfigSource::Fd(fd) => Config::read(File::from(fd), Some(Path::new("."))),
    }
}
