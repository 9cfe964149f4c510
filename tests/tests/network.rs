//! Root tier: ns-veth's host side on the real kernel, and (in [`needs_integration`]) whole
//! containers with networks run by ns-exec.
//!
//! Safety rule (issue 4): every network namespace here is made by the test with `unshare -n`
//! (held by a `sleep` we spawned and kill by its pid on drop, which destroys the namespace and
//! everything in it). The "host" side, bridge included, lives in one of them and ns-veth or
//! ns-exec runs there under `nsenter --net`; addresses come from 198.18.0.0/15. No interface,
//! address or route is ever added to the machine's own network namespace, and the leak checks
//! compare the interfaces of the test's namespaces before and after each failure.
//!
//! The container side is tested with the library in ns-veth/tests/container_side.rs.

use ns_tests::{Fixture, Invocation, Netns, Output, TIMEOUT, TempDir, bin, require_root};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one `ns-veth: ...` line of a failed run with status 125.
fn veth_error(out: &Output) -> String {
    out.expect_code(125);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", out.dump());
    assert!(lines[0].starts_with("ns-veth: "), "{}", out.dump());
    assert_eq!(out.stdout, "", "{}", out.dump());
    lines[0].to_string()
}

/// `add` with `--context-fd` writes one JSON context to that fd (nothing on stdout), the host
/// end is up on the bridge with the MTU, the peer is in the target namespace with the MTU and
/// down; `check` reports it, `del` removes both ends and is idempotent, and `check` then says
/// there is none (status 1).
#[test]
fn add_check_del_on_the_real_kernel() {
    require_root();
    let host = Netns::new();
    host.bridge("198.18.10.1/24");
    let ct = Netns::new();
    let tmp = TempDir::new("network");
    let ctx_file = tmp.path().join("ctx.json");
    let script = format!(
        "exec {} add --netns {} --bridge br0 --mtu 1400 --address 198.18.10.2/24 \
         --gateway 198.18.10.1 --context-fd 3 3>{}",
        bin("ns-veth").display(),
        ct.path(),
        ctx_file.display()
    );
    let out = host.inv("sh").args(["-c", &script]).run();
    out.expect_clean_success();
    assert_eq!(out.stdout, "");
    let text = std::fs::read_to_string(&ctx_file).expect("context file");
    assert_eq!(text.lines().count(), 1, "{text}");
    let ctx: Value = serde_json::from_str(&text).expect("JSON context");
    assert_eq!(ctx["v"], 1);
    assert_eq!(ctx["type"], "veth");
    assert_eq!(ctx["name"], "eth0");
    assert_eq!(ctx["address"], "198.18.10.2/24");
    assert_eq!(ctx["gateway"], "198.18.10.1");
    assert_eq!(ctx["mtu"], 1400);
    let h = ctx["host"].as_str().expect("host").to_string();
    let p = ctx["peer"].as_str().expect("peer").to_string();
    assert!(h.starts_with("veth") && h.len() == 11, "{h}");

    let line = host.link_line(&h);
    assert!(
        line.contains("master br0") && line.contains(",UP") && line.contains("mtu 1400"),
        "{line}"
    );
    let line = ct.link_line(&p);
    assert!(line.contains("mtu 1400") && !line.contains(",UP"), "{line}");
    assert_eq!(ct.links(), vec!["lo".to_string(), p.clone()]);

    let out = host.ns_veth(&["check", &h]);
    out.expect_clean_success();
    let state: Value = serde_json::from_str(out.stdout.trim()).expect("check JSON");
    let br_index: u64 = host
        .sh("ip -o link show br0")
        .split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("br0 index");
    assert_eq!(state["master"], json!(br_index));
    assert_eq!(state["up"], true);
    assert_eq!(state["mtu"], 1400);

    host.ns_veth(&["del", &h]).expect_clean_success();
    assert_eq!(host.links(), ["br0", "lo"]);
    assert_eq!(ct.links(), ["lo"]);
    host.ns_veth(&["del", &h]).expect_clean_success();
    let out = host.ns_veth(&["check", &h]);
    out.expect_code(1);
    assert_eq!(
        out.stderr.trim(),
        format!("ns-veth: check {h:?}: no such interface")
    );
    // del and check refuse what is not a veth, and leave it alone.
    assert_eq!(
        veth_error(&host.ns_veth(&["del", "br0"])),
        "ns-veth: delete \"br0\": not a veth; ns-veth deletes only veths"
    );
    assert_eq!(host.links(), ["br0", "lo"]);
}

/// Each failure of `add` is one clear line with status 125 and leaves no interface behind in
/// either namespace: a missing bridge, something that is not a bridge, an over-long prefix, a
/// target that died before `add`, and the caller's own namespace as the target.
#[test]
fn add_failures_are_one_line_and_leave_nothing() {
    require_root();
    let host = Netns::new();
    host.bridge("198.18.11.1/24");
    let ct = Netns::new();
    let dead_pid = {
        let gone = Netns::new();
        gone.pid()
    }; // killed and reaped: its pid names no process now
    let before = (host.links(), ct.links());
    let ctp = ct.path();
    let dead = dead_pid.to_string();
    let cases: [(&[&str], String); 5] = [
        (
            &["add", "--netns", &ctp, "--bridge", "nope"],
            "ns-veth: bridge \"nope\" does not exist".into(),
        ),
        (
            &["add", "--netns", &ctp, "--bridge", "lo"],
            "ns-veth: \"lo\" is not a bridge".into(),
        ),
        (
            &[
                "add",
                "--netns",
                &ctp,
                "--bridge",
                "br0",
                "--prefix",
                "overlong1",
            ],
            "ns-veth: prefix \"overlong1\": too long: at most 8 bytes, so that 7 random \
             characters fit in 15"
                .into(),
        ),
        (
            &["add", "--pid", &dead, "--bridge", "br0"],
            format!("ns-veth: target pid {dead}: No such process"),
        ),
        (
            &["add", "--netns", "/proc/self/ns/net", "--bridge", "br0"],
            "ns-veth: target netns /proc/self/ns/net: is ns-veth's own network namespace, not a \
             container's"
                .into(),
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(veth_error(&host.ns_veth(args)), expected, "{args:?}");
        assert_eq!(
            (host.links(), ct.links()),
            before,
            "{args:?} left something"
        );
    }
}

/// A failure after the pair exists (injected with `NS_FAULT` after its creation, and after the
/// host end joined the bridge) rolls the pair back: one line, status 125, nothing left.
#[test]
fn a_failure_after_creation_rolls_the_pair_back() {
    require_root();
    let host = Netns::new();
    host.bridge("198.18.13.1/24");
    let ct = Netns::new();
    let before = (host.links(), ct.links());
    for step in ["after-create", "after-attach"] {
        let out = host
            .inv(bin("ns-veth"))
            .args(["add", "--netns", &ct.path(), "--bridge", "br0"])
            .env("NS_FAULT", format!("ns-veth:{step}:fail"))
            .run();
        assert_eq!(
            veth_error(&out),
            format!("ns-veth: {step}: failure injected by NS_FAULT")
        );
        assert_eq!((host.links(), ct.links()), before, "{step} left something");
    }
}

/// Even when ns-veth is SIGKILLed halfway (after the host end joined the bridge), the pair
/// cannot outlive the target: the peer was born in the target namespace, so the kernel removes
/// both ends when that namespace dies.
#[test]
fn a_killed_add_leaks_nothing_past_the_target() {
    use std::os::unix::process::ExitStatusExt;
    require_root();
    let host = Netns::new();
    host.bridge("198.18.14.1/24");
    let ct = Netns::new();
    let out = host
        .inv(bin("ns-veth"))
        .args(["add", "--netns", &ct.path(), "--bridge", "br0"])
        .env("NS_FAULT", "ns-veth:after-attach:kill")
        .run();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{}", out.dump());
    assert_eq!(
        host.links().len(),
        3,
        "the half-made pair is there until the target dies"
    );
    drop(ct);
    wait_until("the half-made pair vanishes", || {
        host.links() == ["br0", "lo"]
    });
}

/// The pair's peer is created directly in the target namespace, so when that namespace dies
/// the kernel removes the host end too: nothing to clean up after a container, even a killed one.
#[test]
fn the_host_end_vanishes_with_the_target_namespace() {
    require_root();
    let host = Netns::new();
    host.bridge("198.18.12.1/24");
    let ct = Netns::new();
    let out = host.ns_veth(&["add", "--pid", &ct.pid().to_string(), "--bridge", "br0"]);
    out.expect_clean_success();
    let ctx: Value = serde_json::from_str(out.stdout.trim()).expect("context");
    let h = ctx["host"].as_str().expect("host").to_string();
    assert!(host.links().contains(&h));
    drop(ct);
    wait_until("the host end vanishes", || host.links() == ["br0", "lo"]);
}

/// Whole containers with networks, through ns-exec and ns-init: ns-exec runs
/// `ns_veth::host_side` between `ready` and `go` and sends the contexts in `go`; ns-init applies
/// them before its mounts.
mod through_ns_exec {
    use super::*;

    /// ns-exec run in `host`'s namespace for `fixture`, running `cmd` in the container.
    fn exec_in(host: &Netns, f: &Fixture, cmd: &[&str]) -> Invocation<'static> {
        host.inv(bin("ns-exec"))
            .arg("--config")
            .arg(f.config_path())
            .arg("--root")
            .arg(f.state_root())
            .arg("--name")
            .arg(f.name())
            .arg("--")
            .args(cmd)
            .current_dir(f.dir())
    }

    fn veth(addr: &str, gw: &str) -> Value {
        json!({"type": "veth", "context": {"bridge": "br0", "prefix": "ct"},
               "address": addr, "gateway": gw, "mtu": 1400})
    }

    /// The container sees `eth0` with the configured address and MTU and a default route, and
    /// pings the bridge; after the run no interface it made is left in the host namespace.
    #[test]
    fn container_gets_eth0_and_reaches_the_bridge() {
        require_root();
        let host = Netns::new();
        host.bridge("198.18.20.1/24");
        let f = Fixture::new();
        f.edit_config(|c| {
            c["networks"] = json!([{"type": "loopback"}, veth("198.18.20.2/24", "198.18.20.1")]);
        });
        let out = exec_in(
            &host,
            &f,
            &[
                "sh",
                "-c",
                "ip -o -4 addr show dev eth0; cat /sys/class/net/eth0/mtu; ip route show default; \
                 ping -c 1 -W 5 198.18.20.1 >/dev/null && echo PING-OK",
            ],
        )
        .run();
        out.expect_clean_success();
        assert!(out.stdout.contains("inet 198.18.20.2/24"), "{}", out.dump());
        assert!(out.stdout.contains("\n1400\n"), "{}", out.dump());
        assert!(
            out.stdout.contains("default via 198.18.20.1 dev eth0"),
            "{}",
            out.dump()
        );
        assert!(out.stdout.contains("PING-OK"), "{}", out.dump());
        wait_until("the host end is gone", || host.links() == ["br0", "lo"]);
    }

    /// The host side pings a running container back.
    #[test]
    fn host_reaches_the_container() {
        require_root();
        let host = Netns::new();
        host.bridge("198.18.21.1/24");
        let f = Fixture::new();
        f.edit_config(|c| c["networks"] = json!([veth("198.18.21.2/24", "198.18.21.1")]));
        // It runs until its stdin closes (pid 1 would ignore a SIGTERM it has no handler for).
        let mut running = exec_in(&host, &f, &["sh", "-c", "echo READY; read x; exit 0"])
            .stdin_pipe()
            .spawn();
        running.wait_for_stdout("READY");
        host.sh("busybox ping -c 1 -W 5 198.18.21.2 >/dev/null");
        running.close_stdin();
        running.wait().expect_clean_success();
        wait_until("the host end is gone", || host.links() == ["br0", "lo"]);
    }

    /// Two containers on one bridge reach each other.
    #[test]
    fn two_containers_reach_each_other() {
        require_root();
        let host = Netns::new();
        host.bridge("198.18.22.1/24");
        let a = Fixture::new();
        a.edit_config(|c| c["networks"] = json!([veth("198.18.22.2/24", "198.18.22.1")]));
        let mut first = exec_in(&host, &a, &["sh", "-c", "echo READY; read x; exit 0"])
            .stdin_pipe()
            .spawn();
        first.wait_for_stdout("READY");
        let b = Fixture::new();
        b.edit_config(|c| c["networks"] = json!([veth("198.18.22.3/24", "198.18.22.1")]));
        exec_in(&host, &b, &["ping", "-c", "1", "-W", "5", "198.18.22.2"])
            .run()
            .expect_code(0);
        first.close_stdin();
        first.wait().expect_clean_success();
        wait_until("both host ends are gone", || host.links() == ["br0", "lo"]);
    }

    /// A loopback-only config gives a working `lo` and no other interface.
    #[test]
    fn loopback_only_gives_lo_and_nothing_else() {
        require_root();
        let f = Fixture::new();
        f.edit_config(|c| c["networks"] = json!([{"type": "loopback", "mtu": 16384}]));
        let out = f
            .run(&[
                "sh",
                "-c",
                "ls /sys/class/net; cat /sys/class/net/lo/mtu; ping -c 1 -W 5 127.0.0.1 >/dev/null && echo PING-OK",
            ]);
        out.expect_clean_success();
        assert_eq!(out.stdout, "lo\n16384\nPING-OK\n", "{}", out.dump());
    }

    /// A `netns` network joins a namespace the test made.
    #[test]
    fn netns_network_joins_the_given_namespace() {
        require_root();
        let other = Netns::new();
        let id = std::fs::read_link(other.path()).expect("readlink");
        let f = Fixture::new();
        f.edit_config(|c| {
            c["networks"] = json!([{"type": "netns", "context": {"nspath": other.path()}}]);
        });
        let out = f.run(&["readlink", "/proc/self/ns/net"]);
        out.expect_clean_success();
        assert_eq!(out.stdout.trim(), id.to_string_lossy());
    }

    /// A missing bridge fails the run with one line and status 125, before the command runs,
    /// and leaves nothing in the host namespace.
    #[test]
    fn a_missing_bridge_fails_cleanly() {
        require_root();
        let host = Netns::new();
        host.bridge("198.18.23.1/24");
        let f = Fixture::new();
        f.edit_config(|c| {
            c["networks"] =
                json!([{"type": "veth", "context": {"bridge": "nope", "prefix": "ct"}}]);
        });
        let out = exec_in(&host, &f, &["echo", "RAN"]).run();
        out.expect_code(125);
        assert_eq!(out.stdout, "");
        let line = out.error_line();
        assert!(line.contains("bridge \"nope\" does not exist"), "{line}");
        assert_eq!(host.links(), ["br0", "lo"]);
    }
}
