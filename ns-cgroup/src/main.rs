//! ns-cgroup: create a cgroup, apply limits, move a pid in, report stats, remove it.
//!
//! Not written yet: only `--help` and `--version` work, and every other invocation fails with
//! status 125, so nothing can mistake it for a working stage.

const USAGE: &str = "\
Usage: ns-cgroup create NAME [--config FILE] [LIMITS]
       ns-cgroup join NAME (--pid PID | -- CMD [ARG...])
       ns-cgroup set NAME [LIMITS]
       ns-cgroup stats|watch|freeze|thaw|remove NAME
       ns-cgroup kill NAME [SIG]

Manage the cgroup of a container on cgroup v1, hybrid and v2 layouts: create it below the
caller's own cgroup, apply the limits of a container.json's \"cgroups\" object (memory,
memory_swap, cpu_shares, cpu_quota/cpu_period, cpuset_cpus/cpuset_mems, pids_max, devices,
freezer), move a process in, report stats and events as JSON, and remove it.

NOT IMPLEMENTED YET: this version only prints this help; every other use exits 125.
";

fn main() {
    common::cli::planned_stage("ns-cgroup", env!("CARGO_PKG_VERSION"), USAGE)
}
