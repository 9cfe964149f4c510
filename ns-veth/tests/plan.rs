//! Root tier: `ns-veth add --plan`, `--explain`, `--config` and the stage trace (`NS_TRACE`)
//! on the real kernel, entirely inside network namespaces these tests create.
//!
//! Safety rule (issue 4): every namespace here is made by `ip netns add` under a name unique to
//! this process and test, and deleted when the test ends, also when it fails (a guard's
//! `Drop`). ns-veth runs under `ip netns exec HOSTNS` (the bridge and host ends live there); the
//! peers go to a second namespace given as `--netns /run/netns/NAME`. Nothing touches the
//! machine's own network namespace.
//!
//! As root, a missing prerequisite (`ip`, `sh`) fails the test.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_ns-veth");

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "root tier: run as root (sudo scripts/test.sh); a root-tier test never skips"
    );
}

fn dump(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip (iproute2)");
    assert!(out.status.success(), "ip {args:?}: {}", dump(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace made for one test (`ip netns add`), deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(test: &str) -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("nsvp-{}-{test}-{n}", std::process::id());
        ip(&["netns", "add", &name]);
        Netns { name }
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `program args` run inside, with `env` added.
    fn exec(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run ip netns exec")
    }

    /// The interface names inside, sorted.
    fn links(&self) -> Vec<String> {
        let mut names: Vec<String> = ip(&["-n", &self.name, "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        names.sort();
        names
    }

    /// `ip -o link show dev NAME` inside.
    fn link(&self, name: &str) -> String {
        ip(&["-n", &self.name, "-o", "link", "show", "dev", name])
    }

    /// Makes bridge `name`, up.
    fn bridge(&self, name: &str) {
        ip(&["-n", &self.name, "link", "add", name, "type", "bridge"]);
        ip(&["-n", &self.name, "link", "set", name, "up"]);
    }

    /// `ns-veth add --netns TARGET ARGS` run inside, with `env`.
    fn add(&self, target: &Netns, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = target.path();
        let mut all = vec!["add", "--netns", &path];
        all.extend_from_slice(args);
        self.exec(BIN, &all, env)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// A scratch directory for one test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("nsvp-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir scratch");
        Scratch(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ok_stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", dump(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The step names of a `--plan` document.
fn plan_steps(plan: &Value) -> Vec<String> {
    plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["step"].as_str().expect("step").to_string())
        .collect()
}

/// `add --plan` prints one valid JSON plan (stage `ns-veth`, the three veth steps with their
/// parameters) and creates nothing in either namespace; so do `--explain` and `--config
/// --plan`. A plan still checks what it can read: a missing bridge fails it.
#[test]
fn plan_prints_json_and_creates_nothing() {
    require_root();
    let host = Netns::new("plan-h");
    let ct = Netns::new("plan-c");
    host.bridge("br0");
    let before = (host.links(), ct.links());

    let args = [
        "--bridge",
        "br0",
        "--mtu",
        "1400",
        "--address",
        "198.18.4.2/24",
    ];
    let mut with_plan = args.to_vec();
    with_plan.push("--plan");
    let text = ok_stdout(&host.add(&ct, &with_plan, &[]));
    let plan: Value = serde_json::from_str(&text).expect("--plan prints JSON");
    assert_eq!(plan["v"], 1);
    assert_eq!(plan["stage"], "ns-veth");
    assert_eq!(plan_steps(&plan), ["link_add", "set_master", "set_up"]);
    let add = &plan["actions"][0];
    assert_eq!(add["netns"], ct.path());
    assert_eq!(add["mtu"], 1400);
    let host_end = add["name"].as_str().expect("name");
    assert!(
        host_end.starts_with("veth") && host_end.len() == 11,
        "{host_end}"
    );
    assert_eq!(plan["actions"][1]["bridge"], "br0");
    assert_eq!((host.links(), ct.links()), before, "--plan made something");

    let mut with_explain = args.to_vec();
    with_explain.push("--explain");
    let script = ok_stdout(&host.add(&ct, &with_explain, &[]));
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    assert_eq!(
        (host.links(), ct.links()),
        before,
        "--explain made something"
    );

    let scratch = Scratch::new("plan");
    let config = scratch.file("container.json");
    std::fs::write(
        &config,
        r#"{"networks": [{"type": "veth", "context": {"bridge": "br0", "prefix": "ca"}},
            {"type": "loopback"},
            {"type": "veth", "context": {"bridge": "br0", "prefix": "cb"}}]}"#,
    )
    .expect("write config");
    let text = ok_stdout(&host.add(&ct, &["--config", &config, "--plan"], &[]));
    let plan: Value = serde_json::from_str(&text).expect("--config --plan prints JSON");
    assert_eq!(plan_steps(&plan).len(), 6);
    assert_eq!(
        (host.links(), ct.links()),
        before,
        "--config --plan made something"
    );

    let out = host.add(&ct, &["--bridge", "nobr", "--plan"], &[]);
    assert_eq!(out.status.code(), Some(125), "{}", dump(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ns-veth: bridge \"nobr\" does not exist\n"
    );
}

/// With `NS_TRACE`, a real `add` records exactly the plan's steps, in order, each `ok`, under
/// stage `ns-veth`, acting on the host end the context names: the plan printed is the plan
/// applied.
#[test]
fn trace_steps_are_the_plan_steps() {
    require_root();
    let host = Netns::new("trace-h");
    let ct = Netns::new("trace-c");
    host.bridge("br0");
    let scratch = Scratch::new("trace");
    let trace = scratch.file("trace.jsonl");
    let args = ["--bridge", "br0", "--mtu", "1400"];
    let mut with_plan = args.to_vec();
    with_plan.push("--plan");
    let plan: Value =
        serde_json::from_str(&ok_stdout(&host.add(&ct, &with_plan, &[]))).expect("plan");

    let out = ok_stdout(&host.add(&ct, &args, &[("NS_TRACE", &trace)]));
    let ctx: Value = serde_json::from_str(out.trim_end()).expect("context");
    let lines: Vec<Value> = std::fs::read_to_string(&trace)
        .expect("read the trace")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a trace line is JSON"))
        .collect();
    let traced: Vec<String> = lines
        .iter()
        .map(|l| l["step"].as_str().expect("step").to_string())
        .collect();
    assert_eq!(traced, plan_steps(&plan));
    for l in &lines {
        assert_eq!(l["stage"], "ns-veth", "{l}");
        assert_eq!(l["outcome"], "ok", "{l}");
        assert_eq!(l["what"], ctx["host"], "{l}");
        assert!(l["end_us"].as_u64() >= l["start_us"].as_u64(), "{l}");
    }
    let link = host.link(ctx["host"].as_str().expect("host"));
    assert!(
        link.contains("master br0") && link.contains(",UP"),
        "{link}"
    );
}

/// The `--explain` script, run with `sh` in the host namespace, makes what a real run makes: a
/// veth whose host end is on the bridge, up, with the MTU, and whose peer (same MTU) is in the
/// target namespace. So the shell forms are faithful, not just illustrative.
#[test]
fn explain_script_makes_the_same_veth() {
    require_root();
    let host = Netns::new("explain-h");
    let ct = Netns::new("explain-c");
    host.bridge("br0");
    let script = ok_stdout(&host.add(&ct, &["--bridge", "br0", "--mtu", "1400", "--explain"], &[]));
    // The names, from the plan's comment lines (`# ns-veth: link_add vethXXXXXXX`) and command.
    let host_end = script
        .lines()
        .find_map(|l| l.strip_prefix("# ns-veth: link_add "))
        .expect("a link_add comment")
        .to_string();
    let peer = script
        .split(" peer name ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the peer name")
        .to_string();
    ok_stdout(&host.exec("sh", &["-c", &script], &[]));

    let link = host.link(&host_end);
    assert!(link.contains("master br0"), "{link}");
    assert!(link.contains(",UP"), "{link}");
    assert!(link.contains("mtu 1400"), "{link}");
    let inside = ct.link(&peer);
    assert!(inside.contains("mtu 1400"), "{inside}");

    // A real run with the same options gives an interface in the same state.
    let ctx: Value = serde_json::from_str(
        ok_stdout(&host.add(&ct, &["--bridge", "br0", "--mtu", "1400"], &[])).trim_end(),
    )
    .expect("context");
    let real = host.link(ctx["host"].as_str().expect("host"));
    for part in ["master br0", ",UP", "mtu 1400"] {
        assert!(real.contains(part), "{real}");
    }
    assert!(
        ct.link(ctx["peer"].as_str().expect("peer"))
            .contains("mtu 1400")
    );
}

/// `add --config FILE` sets up every network of the file and writes one context line each, in
/// order; a failing second network leaves nothing of the first. Two ways to fail: a bridge that
/// does not exist is found by the plan, before anything is made; a full bridge (1023 ports,
/// the kernel's limit) refuses the second host end only at `set_master`, after the first
/// network was made (its three steps are in the trace), which is then deleted again.
#[test]
fn config_networks_are_all_or_nothing() {
    require_root();
    let host = Netns::new("config-h");
    let ct = Netns::new("config-c");
    host.bridge("br0");
    let scratch = Scratch::new("config");
    let config = |second_bridge: &str| {
        let path = scratch.file(&format!("{second_bridge}.json"));
        std::fs::write(
            &path,
            format!(
                r#"{{"networks": [
                    {{"type": "veth", "context": {{"bridge": "br0", "prefix": "ca"}},
                      "address": "198.18.5.2/24"}},
                    {{"type": "veth", "context": {{"bridge": "{second_bridge}", "prefix": "cb"}},
                      "mtu": 1400}}]}}"#
            ),
        )
        .expect("write config");
        path
    };

    let before = (host.links(), ct.links());
    let out = ok_stdout(&host.add(&ct, &["--config", &config("br0")], &[]));
    let contexts: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a context line"))
        .collect();
    assert_eq!(contexts.len(), 2, "{out}");
    assert_eq!(contexts[0]["address"], "198.18.5.2/24");
    assert_eq!(contexts[1]["mtu"], 1400);
    for (c, prefix) in contexts.iter().zip(["ca", "cb"]) {
        let h = c["host"].as_str().expect("host");
        assert!(h.starts_with(prefix), "{c}");
        assert!(host.link(h).contains("master br0"), "{c}");
        assert!(
            ct.links()
                .contains(&c["peer"].as_str().expect("peer").to_string())
        );
    }
    for c in &contexts {
        ok_stdout(&host.exec(BIN, &["del", c["host"].as_str().expect("host")], &[]));
    }
    assert_eq!((host.links(), ct.links()), before);

    let out = host.add(&ct, &["--config", &config("nobr")], &[]);
    assert_eq!(out.status.code(), Some(125), "{}", dump(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ns-veth: networks[1]: bridge \"nobr\" does not exist\n"
    );
    assert_eq!((host.links(), ct.links()), before);

    // br1 with every port number taken by a veth of the host namespace.
    host.bridge("br1");
    let batch: String = (1..=1023)
        .map(|i| format!("link add f{i} type veth peer name g{i}\nlink set f{i} master br1\n"))
        .collect();
    let batch_file = scratch.file("fill.batch");
    std::fs::write(&batch_file, batch).expect("write batch");
    ip(&["-n", &host.name, "-batch", &batch_file]);
    let before = (host.links(), ct.links());
    let trace = scratch.file("trace.jsonl");
    let out = host.add(&ct, &["--config", &config("br1")], &[("NS_TRACE", &trace)]);
    assert_eq!(out.status.code(), Some(125), "{}", dump(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ns-veth: networks[1]: attach \"cb") && err.ends_with("Exchange full\n"),
        "{err}"
    );
    assert_eq!(out.stdout, b"", "no context for a failed run");
    let steps: Vec<(String, String)> = std::fs::read_to_string(&trace)
        .expect("read the trace")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("trace line");
            (
                v["step"].as_str().unwrap_or_default().to_string(),
                v["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        steps,
        [
            s("link_add", "ok"),
            s("set_master", "ok"),
            s("set_up", "ok"),
            s("link_add", "ok"),
            s("set_master", "error"),
            s("link_del", "ok"),
        ]
    );
    assert_eq!((host.links(), ct.links()), before, "something was left");
}

/// Not a test of its own: run by [`a_taken_name_is_retried`] inside its host namespace
/// (`ip netns exec`), with the target path in `NSVP_RETRY`. It plans a veth, takes the planned
/// host name with a bridge of that name (as another program could between plan and apply),
/// applies the plan, and prints the planned name and the context.
#[test]
#[ignore = "helper: run by a_taken_name_is_retried inside its own network namespace"]
fn retry_helper() {
    let Ok(target) = std::env::var("NSVP_RETRY") else {
        return;
    };
    common::trace::init_from_env().expect("open the trace");
    let net: common::config::Network = serde_json::from_value(serde_json::json!(
        {"type": "veth", "context": {"bridge": "br0", "prefix": "rt"}}
    ))
    .expect("network");
    let plan = ns_veth::plan_host_side(&net, &ns_veth::Target::Netns(target.into())).expect("plan");
    let planned = plan.context().host.clone().expect("a planned host name");
    ns_veth::netlink::Netlink::open()
        .expect("netlink")
        .create_bridge(&planned)
        .expect("take the planned name");
    let ctx = plan.apply().expect("apply");
    println!("PLANNED={planned}");
    println!("CONTEXT={}", ctx.to_json());
}

/// A host name taken between plan and apply (`EEXIST`) is retried with new names inside the
/// same `link_add` step: the trace still lists the plan's three steps (`link_add` naming the
/// planned host end, the later steps the real one), and the context returned names the real
/// ends, which exist and are attached.
#[test]
fn a_taken_name_is_retried() {
    require_root();
    let host = Netns::new("retry-h");
    let ct = Netns::new("retry-c");
    host.bridge("br0");
    let scratch = Scratch::new("retry");
    let trace = scratch.file("trace.jsonl");
    let exe = std::env::current_exe().expect("current_exe");
    let out = host.exec(
        exe.to_str().expect("exe path"),
        &["--exact", "retry_helper", "--ignored", "--nocapture"],
        &[("NSVP_RETRY", &ct.path()), ("NS_TRACE", &trace)],
    );
    let text = ok_stdout(&out);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.split_once(key).map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
    };
    let planned = field("PLANNED=");
    let ctx: Value = serde_json::from_str(&field("CONTEXT=")).expect("context");
    let real = ctx["host"].as_str().expect("host").to_string();
    assert_ne!(real, planned);
    assert!(host.link(&real).contains("master br0"));
    assert!(
        ct.links()
            .contains(&ctx["peer"].as_str().expect("peer").to_string())
    );
    let lines: Vec<Value> = std::fs::read_to_string(&trace)
        .expect("read the trace")
        .lines()
        .map(|l| serde_json::from_str(l).expect("trace line"))
        .collect();
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["step"].as_str().unwrap_or(""),
                l["what"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("link_add", planned.as_str()),
            ("set_master", real.as_str()),
            ("set_up", real.as_str()),
        ]
    );
}
