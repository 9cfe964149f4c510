//! Root tier: `--plan`, `--explain` and the stage trace (`NS_TRACE`) on real containers
//! (issue 6).
//!
//! What must hold: a plan changes nothing; the steps a traced run records are the steps its
//! plan lists, in the same order, stage by stage; a failing step shows in the trace as an error
//! with its message; and the `--explain` script, run by hand, makes a container with the same
//! namespaces, hostname, cgroup limits and network as ns-exec makes. Network parts run in a
//! network namespace the test makes (`unshare --net`, held by a `sleep` it kills by pid), with
//! addresses from 198.18.0.0/15; the fixture checks nothing is left behind.

use ns_tests::{Fixture, Invocation, Netns, cgroup_dirs_named, require_root};
use serde_json::{Value, json};
use std::fs;

fn fixture() -> Fixture {
    require_root();
    Fixture::new()
}

/// `(stage, step)` of every action of a plan document.
/// The (stage, step) of each trace line, in the file's order.
fn traced_steps(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            (
                l["stage"].as_str().unwrap().to_string(),
                l["step"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn plan_steps(plan: &Value) -> Vec<(String, String)> {
    plan["actions"]
        .as_array()
        .expect("a plan has actions")
        .iter()
        .map(|a| {
            (
                a["stage"].as_str().unwrap().to_string(),
                a["step"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The lines of a trace file, parsed.
fn trace_lines(path: &std::path::Path) -> Vec<Value> {
    fs::read_to_string(path)
        .expect("the trace file exists")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `ns-exec --plan ...` for the fixture's container, parsed.
fn ns_exec_plan(fx: &Fixture, extra: &[&str], cmd: &[&str]) -> Value {
    let out = fx
        .ns_exec()
        .arg("--plan")
        .args(extra)
        .arg("--config")
        .arg(fx.config_path())
        .arg("--root")
        .arg(fx.state_root())
        .arg("--name")
        .arg(fx.name())
        .arg("--")
        .args(cmd)
        .run();
    out.expect_clean_success();
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--plan is not JSON: {e}\n{}", out.dump()))
}

fn with_limits_and_mounts(fx: &Fixture) {
    let src = fx.mkdir("shared");
    fs::write(src.join("file"), "from the host\n").unwrap();
    fx.edit_config(|c| {
        c["cgroups"] = json!({"memory": "48m", "pids_max": 32});
        c["mounts"] = json!([
            {"type": "bind", "source": src, "destination": "/shared"},
            {"type": "tmpfs", "destination": "/scratch"}
        ]);
    });
}

/// `ns-exec --plan` prints one JSON document (`v`, `stage`, `actions`) whose steps run from
/// `config` to `wait` (the cgroup made before the clone and joined after it, then ns-init's
/// steps) with the cgroup's removal after, and changes nothing:
/// no state entry, no cgroup, no container process (the fixture checks mounts and processes).
#[test]
fn ns_exec_plan_is_json_and_changes_nothing() {
    let fx = fixture();
    with_limits_and_mounts(&fx);
    let plan = ns_exec_plan(&fx, &[], &["true"]);
    assert_eq!(plan["v"], 1);
    assert_eq!(plan["stage"], "ns-exec");
    let steps = plan_steps(&plan);
    let names: Vec<&str> = steps.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(&names[..2], ["config", "claim"], "{names:?}");
    // The cgroup is made before the clone (which starts the child in it), joined after.
    let clone_at = names
        .iter()
        .position(|n| *n == "clone")
        .expect("a clone step");
    assert!(
        names[2..clone_at]
            .iter()
            .all(|n| *n == "mkdir" || *n == "write"),
        "{names:?}"
    );
    assert!(names[clone_at + 1..].contains(&"join"), "{names:?}");
    // After the wait, the cgroup's removal.
    let wait = names
        .iter()
        .position(|n| *n == "wait")
        .expect("a wait step");
    assert!(
        names[wait + 1..].iter().all(|n| *n == "remove"),
        "{names:?}"
    );
    for needed in [
        "mkdir", "write", "join", "record", "go", "mount", "bind", "identity", "exec",
    ] {
        assert!(names.contains(&needed), "no {needed} step in {names:?}");
    }
    let config = &plan["actions"][0]["config"];
    assert_eq!(config["hostname"], ns_tests::DEFAULT_HOSTNAME, "{config}");
    let clone = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["step"] == "clone")
        .unwrap();
    assert_eq!(
        clone["unshare"],
        json!(["--mount", "--uts", "--ipc", "--pid", "--net"]),
        "{clone}"
    );
    let memory = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["step"] == "write" && a["value"].as_str() == Some("50331648"))
        .unwrap_or_else(|| panic!("no write of the memory limit: {plan:#}"));
    assert!(
        memory["path"].as_str().unwrap().contains(fx.name()),
        "{memory}"
    );
    assert!(
        cgroup_dirs_named(fx.name()).is_empty(),
        "--plan made a cgroup"
    );
    assert!(
        fs::read_dir(fx.state_root()).map_or(true, |mut d| d.next().is_none()),
        "--plan claimed a state entry"
    );
}

/// A run with `NS_TRACE` records, stage by stage, exactly the steps `--plan` listed for it, in
/// the same order, all with outcome `ok` and end times not before start times; ns-init's lines
/// come from another process than ns-exec's, into the same file. (Stage by stage: ns-init's
/// steps before its first one that needs `go` run while ns-exec records the state, so the two
/// processes' lines interleave in the file as they happen to.)
#[test]
fn a_traced_run_takes_the_steps_its_plan_lists() {
    let fx = fixture();
    with_limits_and_mounts(&fx);
    let plan = ns_exec_plan(&fx, &[], &["cat", "/shared/file"]);
    let trace = fx.dir().join("trace.jsonl");
    let out = fx
        .exec(&["cat", "/shared/file"])
        .env("NS_TRACE", &trace)
        .run();
    out.expect_clean_success();
    assert_eq!(out.stdout, "from the host\n");
    let lines = trace_lines(&trace);
    let traced = traced_steps(&lines);
    let by_stage = |steps: &[(String, String)], stage: &str| -> Vec<String> {
        steps
            .iter()
            .filter(|(s, _)| s == stage)
            .map(|(_, step)| step.clone())
            .collect()
    };
    let planned = plan_steps(&plan);
    let stages: std::collections::BTreeSet<&str> =
        planned.iter().map(|(s, _)| s.as_str()).collect();
    assert!(stages.contains("ns-init"), "{planned:?}");
    for stage in stages {
        assert_eq!(
            by_stage(&traced, stage),
            by_stage(&planned, stage),
            "{stage}'s steps; the trace:\n{lines:#?}"
        );
    }
    assert_eq!(traced.len(), planned.len(), "the trace:\n{lines:#?}");
    let mut pids = std::collections::BTreeSet::new();
    for l in &lines {
        assert_eq!(l["outcome"], "ok", "{l}");
        assert!(l["end_us"].as_u64() >= l["start_us"].as_u64(), "{l}");
        pids.insert(l["pid"].as_u64().unwrap());
    }
    assert_eq!(
        pids.len(),
        2,
        "ns-exec and ns-init write the trace: {pids:?}"
    );
}

/// A step that fails is the last ns-init line of the trace, with outcome `error` and the same
/// message ns-exec prints; nothing after it ran, and the run fails with 125.
#[test]
fn a_failing_step_is_traced_with_its_error() {
    let fx = fixture();
    // /bin/busybox is a file: a tmpfs cannot be mounted below it.
    fx.edit_config(|c| c["mounts"] = json!([{"type": "tmpfs", "destination": "/bin/busybox/x"}]));
    let trace = fx.dir().join("trace.jsonl");
    let out = fx.exec(&["true"]).env("NS_TRACE", &trace).run();
    out.expect_code(125);
    let lines = trace_lines(&trace);
    let last_init = lines
        .iter()
        .rev()
        .find(|l| l["stage"] == "ns-init")
        .expect("ns-init traced its steps");
    assert_eq!(last_init["outcome"], "error", "{lines:#?}");
    assert_eq!(last_init["step"], "mount", "{last_init}");
    let message = last_init["error"].as_str().unwrap();
    assert!(
        out.error_line().ends_with(message),
        "ns-exec printed {:?}, the trace has {message:?}",
        out.error_line()
    );
    assert!(!lines.iter().any(|l| l["step"] == "exec"), "{lines:#?}");
}

/// `ns-init --plan` alone lists its own steps (no network without contexts): from `setsid`
/// through the rootfs steps to `identity` (uid 0 from the image's passwd) and `exec`.
#[test]
fn ns_init_plans_alone() {
    let fx = fixture();
    let out = Invocation::new(ns_tests::bin("ns-init"))
        .args(["--plan", "--config"])
        .arg(fx.config_path())
        .args(["--", "true"])
        .run();
    out.expect_clean_success();
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["stage"], "ns-init");
    let steps = plan_steps(&plan);
    assert_eq!(steps[0], ("ns-init".to_string(), "setsid".to_string()));
    let identity = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["step"] == "identity")
        .unwrap();
    assert_eq!(identity["uid"], 0, "{identity}");
    assert_eq!(steps.last().unwrap().1, "exec");
}

/// What the probe reports of its container, and the host side reads of its cgroup.
#[derive(Debug, PartialEq)]
struct Seen {
    hostname: String,
    /// Which of the probe's namespaces differ from the test's.
    new_namespaces: Vec<String>,
    /// `eth0`'s address and MTU, and the default route.
    network: String,
    /// The bound file's text, and whether writing to it fails.
    bind: String,
    memory_limit: String,
    pids_max: String,
}

/// The probe: reports, waits for a line on stdin (while the test reads the cgroup), ends.
const PROBE: &str = "hostname; for n in ipc mnt net pid uts cgroup; do echo \"ns $n $(readlink /proc/self/ns/$n)\"; done; \
     ip -o -4 addr show dev eth0 | awk '{print \"addr\", $4}'; cat /sys/class/net/eth0/mtu; ip route | grep default; \
     cat /shared/file; (echo x >> /shared/file) 2>/dev/null || echo read-only; echo READY; read line || :";

/// Runs `inv` (a container running [`PROBE`]), reads its cgroup limits from the host while it
/// waits, releases it and returns what was seen.
fn observe(inv: Invocation<'_>, pid_file: &std::path::Path) -> Seen {
    let mut running = inv.stdin_pipe().spawn();
    running.wait_for_stdout("READY");
    let pid = running.wait_for_pid_file(pid_file).pid;
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let limit = |controller: &str, file: &str| -> String {
        let rel = cgroups
            .lines()
            .find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
                ctrls
                    .split(',')
                    .any(|c| c == controller)
                    .then(|| path.to_string())
            })
            .unwrap_or_else(|| panic!("no {controller} in {cgroups}"));
        fs::read_to_string(format!("/sys/fs/cgroup/{controller}{rel}/{file}"))
            .unwrap()
            .trim()
            .to_string()
    };
    let memory_limit = limit("memory", "memory.limit_in_bytes");
    let pids_max = limit("pids", "pids.max");
    running.close_stdin();
    let out = running.wait();
    out.expect_code(0);
    let own: Vec<(String, String)> = ["ipc", "mnt", "net", "pid", "uts", "cgroup"]
        .iter()
        .map(|n| {
            let link = fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
            (n.to_string(), link.to_string_lossy().into_owned())
        })
        .collect();
    let mut lines = out.stdout.lines();
    let hostname = lines.next().unwrap().to_string();
    let mut new_namespaces = Vec::new();
    let mut rest = Vec::new();
    for line in lines {
        match line.strip_prefix("ns ") {
            Some(ns) => {
                let (name, link) = ns.split_once(' ').unwrap();
                if !own.iter().any(|(n, l)| n == name && l == link) {
                    new_namespaces.push(name.to_string());
                }
            }
            None if line == "READY" => break,
            None => rest.push(line.to_string()),
        }
    }
    let bind = rest.split_off(rest.len() - 2).join("|");
    Seen {
        hostname,
        new_namespaces,
        network: rest.join("|"),
        bind,
        memory_limit,
        pids_max,
    }
}

/// The script `ns-exec --explain` prints, run by hand with `sh` (util-linux, iproute2 and
/// cgroup file writes, no ns-tools program), makes a container that shows the same hostname,
/// the same new namespaces, the same cgroup limits, the same eth0 address, MTU and route, and
/// the same read-only bind mount as the container ns-exec makes from the same config; and it
/// leaves nothing behind (no cgroup, mount, process, veth).
#[test]
fn the_explained_script_makes_the_same_container() {
    let fx = fixture();
    with_limits_and_mounts(&fx);
    fx.edit_config(|c| {
        c["hostname"] = json!("explained");
        c["networks"] = json!([{"type": "veth", "context": {"bridge": "br0", "prefix": "ex"},
                                "address": "198.18.7.2/24", "gateway": "198.18.7.1",
                                "mtu": 1400}]);
    });
    let net = Netns::new();
    net.inv("sh")
        .args([
            "-c",
            "ip link add br0 type bridge && ip addr add 198.18.7.1/24 dev br0 && ip link set br0 up",
        ])
        .run()
        .expect_code(0);
    let pid_file = fx.pid_file();
    // ns-exec in the test's namespace, with `extra` options, running the probe.
    let ns_exec = |extra: &[&str]| {
        net.inv(ns_tests::bin("ns-exec"))
            .args(extra)
            .arg("--config")
            .arg(fx.config_path())
            .arg("--root")
            .arg(fx.state_root())
            .arg("--name")
            .arg(fx.name())
            .arg("--pid-file")
            .arg(&pid_file)
            .args(["--", "sh", "-c", PROBE])
    };
    // In the test's namespace: planning the veth checks that the bridge exists.
    let explain = ns_exec(&["--explain"]).run();
    explain.expect_clean_success();
    assert!(!explain.stdout.contains("ns-init "), "{}", explain.stdout);
    let script = fx.dir().join("explained.sh");
    fs::write(&script, &explain.stdout).unwrap();
    let by_script = observe(net.inv("sh").arg(&script), &pid_file);

    let by_ns_exec = observe(ns_exec(&[]).current_dir(fx.dir()), &pid_file);
    assert_eq!(by_script, by_ns_exec, "script:\n{}", explain.stdout);
    assert_eq!(by_script.hostname, "explained");
    assert_eq!(
        by_script.new_namespaces,
        ["ipc", "mnt", "net", "pid", "uts"]
    );
    assert_eq!(by_script.memory_limit, (48u64 << 20).to_string());
    assert_eq!(by_script.pids_max, "32");
    assert!(by_script.network.contains("198.18.7.2/24"), "{by_script:?}");
    assert!(by_script.network.contains("1400"), "{by_script:?}");
    assert_eq!(by_script.bind, "from the host|read-only");
}

/// `ns-pty --plan` lists attach, open_pty, spawn, relay, and a run with `NS_TRACE` records
/// exactly those steps, all `ok`, while the command sees a terminal at fds 0 and 3.
#[test]
fn ns_pty_traces_the_steps_its_plan_lists() {
    let fx = fixture();
    let cmd = ["sh", "-c", "[ -t 0 ] && [ -t 3 ] && echo TERMINAL"];
    let out = Invocation::new(ns_tests::bin("ns-pty"))
        .arg("--plan")
        .arg("--")
        .args(cmd)
        .run();
    out.expect_clean_success();
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    let trace = fx.dir().join("pty-trace.jsonl");
    let out = Invocation::new(ns_tests::bin("ns-pty"))
        .arg("--")
        .args(cmd)
        .env("NS_TRACE", &trace)
        .run();
    out.expect_code(0);
    assert!(out.stdout.contains("TERMINAL"), "{}", out.dump());
    let lines = trace_lines(&trace);
    assert_eq!(traced_steps(&lines), plan_steps(&plan));
    assert!(lines.iter().all(|l| l["outcome"] == "ok"), "{lines:#?}");
}
