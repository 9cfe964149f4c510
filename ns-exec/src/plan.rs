//! `ns-exec --plan` and `--explain`: the whole run as one list of actions, changing nothing.
//!
//! The list is ns-exec's own steps with each stage's plan spliced in where ns-exec runs that
//! stage: `config`, `claim` (here with a cgroup), ns-cgroup's `mkdir`/`write`, `clone`,
//! `netns` (the network namespace made beside the clone, when it is), `claim` (here without a
//! cgroup), ns-cgroup's `join`, `record`, ns-veth's host actions, `go`
//! (which first waits for the child's `ready`), ns-init's actions, `wait`. A real run
//! records the same step names in the trace (NS_TRACE), in the same order: ns-exec's own steps
//! in `run`, the stages' steps in the stage code the plan was taken from.
//!
//! `--explain` prints it as a shell script that makes the same container with util-linux,
//! iproute2 and writes to cgroup files: a FIFO pair stands in for the sync socket, `unshare`
//! for the clone, and the container's first process is a shell running ns-init's steps.

use std::ffi::OsString;
use std::path::Path;

use common::config::Config;
use common::handoff::ENV_CONSOLE_FD;
use common::ns::Namespace;
use common::plan::{Action, Plan, quote, shell_lines};
use common::{Error, Result};

/// ns-exec's stage name in plans and traces.
pub const STAGE: &str = "ns-exec";

/// The util-linux `unshare` flag of each namespace the clone creates (not the cgroup one, which
/// ns-init unshares after `go`).
pub fn unshare_flags(config: &Config) -> Vec<&'static str> {
    config
        .namespaces
        .iter()
        .filter_map(|ns| match ns {
            Namespace::Mount => Some("--mount"),
            Namespace::Uts => Some("--uts"),
            Namespace::Ipc => Some("--ipc"),
            Namespace::User => Some("--user"),
            Namespace::Pid => Some("--pid"),
            Namespace::Net => Some("--net"),
            Namespace::Cgroup => None,
        })
        .collect()
}

/// Whether ns-exec claims the container's name after the clone rather than before: when there
/// is no cgroup, which is named after the container and which only the holder of the name may
/// make. The claim (a few files in the state directory) then runs while the child starts.
pub fn claims_after_clone(config: &Config) -> bool {
    config.cgroups.is_none()
}

/// What the plan needs to know of the run.
pub struct Run<'a> {
    /// The config file as given.
    pub config_path: &'a Path,
    /// The loaded config.
    pub config: &'a Config,
    /// The container's name.
    pub name: &'a str,
    /// The state directory's root.
    pub root: &'a Path,
    /// The ns-init program the child execs (`--init`); `None`: ns-init's code built in.
    pub init: Option<&'a Path>,
    /// ns-dmz, which the built-in ns-init execs the command through (`None` with `--init`).
    pub dmz: Option<&'a Path>,
    /// `--pid-file`.
    pub pid_file: Option<&'a Path>,
    /// The command.
    pub command: &'a [OsString],
}

/// The run's actions, in order.
pub fn actions(run: &Run<'_>) -> Result<Vec<Action>> {
    let config = run.config;
    let canonical: serde_json::Value = serde_json::from_slice(&config.to_json())
        .map_err(|e| Error::msg("plan", format!("canonical config: {e}")))?;
    let mut out = vec![
        Action::new(STAGE, "config")
            .arg("path", run.config_path)
            .arg("config", canonical),
    ];
    let claim = Action::new(STAGE, "claim")
        .arg("path", run.root.join(run.name))
        .arg("name", run.name);
    let claim_after_clone = claims_after_clone(config);
    if !claim_after_clone {
        out.push(claim.clone());
    }
    // The cgroup is made before the clone, which starts the child in its cgroup2 directory;
    // the v1 hierarchies are joined after it.
    let mut cleanup = Vec::new();
    let mut joins = Vec::new();
    let mut into = None;
    if let Some(limits) = &config.cgroups {
        let cg_name = limits.name.as_deref().unwrap_or(run.name);
        let plan =
            ns_cgroup::Cgroup::plan_create(cg_name, limits).map_err(|e| e.context("cgroups"))?;
        out.extend(plan.actions().iter().cloned());
        into = plan.unified_dir().map(Path::to_path_buf);
        joins = match into {
            Some(_) => plan.join_except_unified_action(None),
            None => plan.join_action(None),
        };
        cleanup = plan.remove_actions();
    }
    let netns_beside = crate::spawn::netns_beside(config, run.init.is_none());
    out.push(
        Action::new(STAGE, "clone")
            .arg(
                "namespaces",
                config
                    .namespaces
                    .iter()
                    .filter(|ns| **ns != Namespace::Cgroup)
                    .filter(|ns| !(netns_beside && **ns == Namespace::Net))
                    .map(|ns| ns.name())
                    .collect::<Vec<_>>(),
            )
            .arg("unshare", unshare_flags(config))
            .arg("init", run.init)
            .arg("dmz", run.dmz)
            .arg("cgroup", &into),
    );
    if netns_beside {
        out.push(Action::new(STAGE, "netns").sh(
            "# ns-exec makes the network namespace beside the clone and sends it to the child; \
             here the unshare below makes it",
        ));
    }
    if claim_after_clone {
        out.push(claim);
    }
    out.extend(joins);
    out.push(
        Action::new(STAGE, "record")
            .arg(
                "path",
                run.root.join(run.name).join(crate::state::STATE_FILE),
            )
            .arg("pid_file", run.pid_file),
    );
    let mut contexts = Vec::new();
    for (i, net) in config.networks.iter().enumerate() {
        let plan = ns_veth::plan_host_side(net, &ns_veth::Target::Unknown)
            .map_err(|e| e.context(format!("networks[{i}]")))?;
        out.extend(plan.actions().iter().cloned());
        contexts.push(plan.context().clone());
    }
    out.push(Action::new(STAGE, "go"));
    let rootfs = config
        .rootfs
        .as_deref()
        .ok_or_else(|| Error::msg("plan", "the config names no rootfs"))?;
    let id = ns_init::identity::lookup_in(rootfs, config.user.as_deref())?;
    let console_handed_in = std::env::var_os(ENV_CONSOLE_FD).is_some_and(|v| !v.is_empty());
    out.extend(ns_init::plan::actions(
        config,
        run.command,
        &contexts,
        console_handed_in,
        netns_beside,
        &id,
    )?);
    out.push(Action::new(STAGE, "wait"));
    out.extend(cleanup);
    Ok(out)
}

/// The plan document `--plan` prints.
pub fn json(actions: Vec<Action>) -> String {
    Plan::new(STAGE, actions).to_json()
}

/// The plan as the script `--explain` prints: the host side in the script itself, ns-init's
/// steps in a second script the container's first process runs under `unshare`.
pub fn explain(actions: &[Action], run: &Run<'_>) -> String {
    let inside: Vec<Action> = actions
        .iter()
        .filter(|a| a.stage == ns_init::plan::STAGE)
        .cloned()
        .collect();
    // The cgroup's removal runs when the script ends, however it ends: in the cleanup function.
    let removals: Vec<Action> = actions
        .iter()
        .filter(|a| a.stage == "ns-cgroup" && a.step == "remove")
        .cloned()
        .collect();
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&format!(
        "# ns-exec --explain: the container ns-exec runs for {}, made with util-linux,\n\
         # iproute2 and writes to cgroup files, step by step as ns-exec and its stages take\n\
         # them. FIFOs stand in for the sync socket, unshare for the clone; the container's\n\
         # first process is a shell running ns-init's steps. Run it as root with sh.\n",
        run.config_path.display()
    ));
    out.push_str("set -eu\n");
    // The script's own scratch directory (the FIFOs, ns-init's steps) and its cleanup, first:
    // ns-exec may claim the container's name before or after the clone.
    out.push_str("dir=$(mktemp -d)\nunshare_pid=\n");
    out.push_str("cleanup() {\n");
    out.push_str("\tif [ -n \"$unshare_pid\" ]; then kill -KILL \"$unshare_pid\" 2>/dev/null || :; wait \"$unshare_pid\" 2>/dev/null || :; fi\n");
    // The kernel frees a cgroup a moment after its last process: retry a while.
    out.push_str("\tretry() { for _ in 1 2 3 4 5 6 7 8 9 10; do [ -e \"$2\" ] || return 0; \"$@\" 2>/dev/null && return 0; sleep 0.1; done; \"$@\" || :; }\n");
    for a in &removals {
        out.push_str(
            &shell_lines(std::slice::from_ref(a), "\t").replace("\trmdir ", "\tretry rmdir "),
        );
    }
    if let Some(p) = run.pid_file {
        out.push_str(&format!("\trm -f {}\n", quote(&p.to_string_lossy())));
    }
    out.push_str(
        "\trm -rf \"$dir\"\n}\ntrap cleanup EXIT\ntrap 'exit 130' INT\ntrap 'exit 143' TERM\n",
    );
    out.push_str("mkfifo \"$dir/ready\" \"$dir/go\"\n");
    for a in actions {
        if a.stage == ns_init::plan::STAGE || (a.stage == "ns-cgroup" && a.step == "remove") {
            continue;
        }
        out.push_str(&shell_lines(std::slice::from_ref(a), ""));
        match (a.stage, a.step.as_str()) {
            (STAGE, "clone") => {
                out.push_str("cat > \"$dir/init.sh\" <<'NS_INIT_STEPS'\n");
                out.push_str(
                    "# ns-init: announce ready, wait for go, then the setup and the exec\n",
                );
                out.push_str("set -eu\necho ready > \"$1/ready\"\nread -r go < \"$1/go\"\n");
                out.push_str(&shell_lines(&inside, ""));
                out.push_str("NS_INIT_STEPS\n");
                let flags = unshare_flags(run.config).join(" ");
                // A background job's stdin is /dev/null unless redirected explicitly.
                out.push_str(&format!(
                    "exec 3<&0\nunshare {flags} --fork --kill-child sh \"$dir/init.sh\" \"$dir\" <&3 3<&- &\n"
                ));
                out.push_str("unshare_pid=$!\nexec 3<&-\nread -r ready < \"$dir/ready\"\n");
                out.push_str("# the container's first process: unshare's child\n");
                out.push_str("pid=$(cat /proc/\"$unshare_pid\"/task/\"$unshare_pid\"/children)\n");
                out.push_str("pid=${pid%% *}\n");
                if let Some(dir) = a.args.get("cgroup").and_then(|d| d.as_str()) {
                    out.push_str(
                        "# ns-exec clones straight into the cgroup2 directory; here it joins\n",
                    );
                    out.push_str(&format!(
                        "echo \"$pid\" > {}\n",
                        quote(&format!("{dir}/cgroup.procs"))
                    ));
                }
            }
            (STAGE, "record") => {
                if let Some(p) = run.pid_file {
                    out.push_str(&format!(
                        "echo \"$pid\" > {}\n",
                        quote(&p.to_string_lossy())
                    ));
                }
            }
            (STAGE, "go") => out.push_str("echo go > \"$dir/go\"\n"),
            (STAGE, "wait") => {
                out.push_str("status=0\nwait \"$unshare_pid\" || status=$?\nunshare_pid=\n");
                out.push_str("exit \"$status\"\n");
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup_namespace_is_not_unshared_by_the_clone() {
        let c = Config::read(
            r#"{"rootfs":"/tmp","namespaces":["NEWNS","NEWPID","NEWCGROUP","NEWNET"]}"#.as_bytes(),
            Some(Path::new("/")),
        )
        .unwrap();
        assert_eq!(unshare_flags(&c), ["--mount", "--pid", "--net"]);
    }
}
