//! Root tier: the container side (`ns_veth::apply`) on the real kernel, with the host side made
//! by the built `ns-veth` program, entirely inside network namespaces these tests create.
//!
//! Safety rule (issue 4): every namespace here is made by `unshare -n` (a `sleep` holds it, and
//! is killed by its pid at the end); the "host" side runs under `nsenter --net` in one of them,
//! addresses come from 198.18.0.0/15, and nothing touches the machine's own network namespace.
//! The library's container side is never run in the test process: the test binary re-runs
//! itself under `nsenter` with the contexts in `NSVT_APPLY`, and only that child applies them
//! (see [`apply_helper`]).
//!
//! As root, a missing prerequisite (`unshare`, `nsenter`, `ip`, `busybox`) fails the test.

use common::config::{NetworkKind, Route};
use common::net::NetContext;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ns-veth");
const TIMEOUT: Duration = Duration::from_secs(30);

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "root tier: run as root (sudo scripts/test.sh); a root-tier test never skips"
    );
}

/// A network namespace made for one test, held by a `sleep` we started; killed by its pid on
/// drop, which destroys the namespace and everything in it.
struct Netns {
    child: Child,
}

impl Netns {
    fn new() -> Netns {
        let child = Command::new("unshare")
            .args(["--net", "--", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare --net sleep (util-linux)");
        let ns = Netns { child };
        let own = std::fs::read_link("/proc/self/ns/net").expect("readlink own netns");
        let start = Instant::now();
        // unshare has switched namespaces once the link differs from ours (bounded wait).
        while std::fs::read_link(ns.path()).ok().is_none_or(|l| l == own) {
            assert!(start.elapsed() < TIMEOUT, "unshare --net did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        ns
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }

    /// The `net:[ino]` identity of the namespace.
    fn id(&self) -> String {
        std::fs::read_link(self.path())
            .expect("readlink netns")
            .to_string_lossy()
            .into_owned()
    }

    /// Runs `program args` inside this namespace.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter (util-linux)")
    }

    /// Runs a shell script inside; fails the test unless it succeeds; returns its stdout.
    fn sh(&self, script: &str) -> String {
        let out = self.run("sh", &["-c", script]);
        assert!(out.status.success(), "{script}: {}", dump(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The interface names inside, sorted. (Not `/sys/class/net`: sysfs shows the namespace
    /// of whoever mounted it, not ours.)
    fn links(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .sh("ip -o link show")
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        names.sort();
        names
    }

    /// The MTU of interface `name` inside.
    fn mtu(&self, name: &str) -> String {
        let line = self.sh(&format!("ip -o link show dev {name}"));
        line.split_whitespace()
            .skip_while(|w| *w != "mtu")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    /// Makes bridge `br0` with `addr` (CIDR), up.
    fn bridge(&self, addr: &str) {
        self.sh(&format!(
            "ip link add br0 type bridge && ip addr add {addr} dev br0 && ip link set br0 up"
        ));
    }

    /// `ns-veth add` run here against `target`; returns the context it printed.
    fn add(&self, target: &Netns, extra: &[&str]) -> NetContext {
        let path = target.path();
        let mut args = vec!["add", "--netns", &path, "--bridge", "br0"];
        args.extend_from_slice(extra);
        let out = self.run(BIN, &args);
        assert!(out.status.success(), "ns-veth add: {}", dump(&out));
        NetContext::from_json(out.stdout.trim_ascii_end()).expect("a context")
    }

    /// Applies `contexts` and `routes` inside, in a child: the test binary under nsenter.
    fn apply(&self, contexts: &[NetContext], routes: &[Route]) -> Output {
        let payload = serde_json::json!({ "contexts": contexts, "routes": routes });
        let exe = std::env::current_exe().expect("current_exe");
        Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(exe)
            .args(["--exact", "apply_helper", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env("NSVT_APPLY", payload.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("re-run the test binary under nsenter")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Only the sleep we spawned, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dump(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits (bounded) until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Not a test of its own: the child process the other tests start inside a namespace of
/// theirs, applying the contexts from `NSVT_APPLY` with the library. It prints the network
/// namespace it ends up in (a `netns` context switches it).
#[test]
#[ignore = "helper: run by the other tests inside their own network namespace"]
fn apply_helper() {
    let Ok(payload) = std::env::var("NSVT_APPLY") else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&payload).expect("NSVT_APPLY is JSON");
    let contexts: Vec<NetContext> = v["contexts"]
        .as_array()
        .expect("contexts")
        .iter()
        .map(|c| NetContext::from_json(c.to_string().as_bytes()).expect("context"))
        .collect();
    let routes: Vec<Route> = serde_json::from_value(v["routes"].clone()).expect("routes");
    if let Err(e) = ns_veth::apply(&contexts, &routes) {
        eprintln!("APPLY-ERROR: {e}");
        std::process::exit(3);
    }
    let ns = std::fs::read_link("/proc/thread-self/ns/net").expect("readlink");
    println!("NETNS={}", ns.to_string_lossy());
}

fn applied_ok(out: &Output) -> String {
    assert!(out.status.success(), "apply: {}", dump(out));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        // libtest prints "test apply_helper ... " on the same line first.
        .find_map(|l| l.split_once("NETNS=").map(|(_, ns)| ns.trim()))
        .expect("the helper ran (NETNS= line)")
        .to_string()
}

/// A veth context gives the container `eth0` with the address and MTU, `lo` up, a default
/// route via the gateway; the container pings the bridge and the host side pings it back; and
/// when the container's namespace dies, the host end goes with it.
#[test]
fn veth_gives_eth0_address_mtu_default_route_and_traffic() {
    require_root();
    let host = Netns::new();
    host.bridge("198.18.1.1/24");
    let ct = Netns::new();
    let ctx = host.add(
        &ct,
        &[
            "--mtu",
            "1400",
            "--address",
            "198.18.1.2/24",
            "--gateway",
            "198.18.1.1",
        ],
    );
    let host_end = ctx.host.clone().expect("host name");
    assert!(host.links().contains(&host_end));
    applied_ok(&ct.apply(&[ctx], &[]));

    assert_eq!(ct.links(), ["eth0", "lo"]);
    assert_eq!(ct.mtu("eth0"), "1400");
    let addr = ct.sh("ip -o -4 addr show dev eth0");
    assert!(addr.contains("inet 198.18.1.2/24"), "{addr}");
    let lo = ct.sh("ip -o link show lo");
    assert!(lo.contains(",UP"), "{lo}");
    let route = ct.sh("ip route show default");
    assert!(route.contains("default via 198.18.1.1 dev eth0"), "{route}");
    ct.sh("busybox ping -c 1 -W 5 198.18.1.1 >/dev/null");
    host.sh("busybox ping -c 1 -W 5 198.18.1.2 >/dev/null");
    ct.sh("busybox ping -c 1 -W 5 127.0.0.1 >/dev/null");

    drop(ct);
    wait_until(
        "the host end vanishes with the container's namespace",
        || !host.links().contains(&host_end),
    );
    assert_eq!(host.links(), ["br0", "lo"]);
}

/// Two containers on one bridge reach each other.
#[test]
fn two_containers_on_one_bridge_reach_each_other() {
    require_root();
    let host = Netns::new();
    host.bridge("198.18.2.1/24");
    let a = Netns::new();
    let b = Netns::new();
    let ca = host.add(&a, &["--address", "198.18.2.2/24", "--prefix", "ct"]);
    let cb = host.add(&b, &["--address", "198.18.2.3/24", "--prefix", "ct"]);
    assert!(ca.host.as_deref().is_some_and(|h| h.starts_with("ct")));
    applied_ok(&a.apply(&[ca], &[]));
    applied_ok(&b.apply(&[cb], &[]));
    a.sh("busybox ping -c 1 -W 5 198.18.2.3 >/dev/null");
    b.sh("busybox ping -c 1 -W 5 198.18.2.2 >/dev/null");
    drop((a, b));
    wait_until("both host ends vanish", || host.links() == ["br0", "lo"]);
}

/// A loopback-only network gives a working `lo` with the MTU, and nothing else.
#[test]
fn loopback_only_gives_lo_and_nothing_else() {
    require_root();
    let ct = Netns::new();
    let mut lo = NetContext::new(NetworkKind::Loopback);
    lo.mtu = Some(16384);
    applied_ok(&ct.apply(&[lo], &[]));
    assert_eq!(ct.links(), ["lo"]);
    assert_eq!(ct.mtu("lo"), "16384");
    ct.sh("busybox ping -c 1 -W 5 127.0.0.1 >/dev/null");
    assert_eq!(ct.sh("ip route show").trim(), "");
}

/// A `netns` network joins the namespace the test made (by path).
#[test]
fn netns_joins_the_given_namespace() {
    require_root();
    let ct = Netns::new();
    let other = Netns::new();
    let mut ctx = NetContext::new(NetworkKind::Netns);
    ctx.nspath = Some(other.path());
    let joined = applied_ok(&ct.apply(&[ctx], &[]));
    assert_eq!(joined, other.id());
    assert_ne!(joined, ct.id());
}

/// `routes[]` are added after the networks, with and without a gateway, on the named interface.
#[test]
fn routes_are_added_on_the_named_interface() {
    require_root();
    let host = Netns::new();
    host.bridge("198.18.3.1/24");
    let ct = Netns::new();
    let ctx = host.add(&ct, &["--address", "198.18.3.2/24", "--name", "net0"]);
    let routes: Vec<Route> = serde_json::from_value(serde_json::json!([
        {"destination": "198.19.0.0/16", "gateway": "198.18.3.1", "interface_name": "net0"},
        {"destination": "198.18.200.0/24", "interface_name": "net0"},
    ]))
    .expect("routes");
    applied_ok(&ct.apply(&[ctx], &routes));
    let table = ct.sh("ip route show");
    assert!(
        table.contains("198.19.0.0/16 via 198.18.3.1 dev net0"),
        "{table}"
    );
    assert!(table.contains("198.18.200.0/24 dev net0"), "{table}");
    assert!(!table.contains("default"), "{table}");
    assert_eq!(ct.links(), ["lo", "net0"]);
}

/// Container-side failures are one clear line: a peer that is not in the namespace, and a
/// route on an interface that does not exist.
#[test]
fn container_side_errors_name_the_cause() {
    require_root();
    let ct = Netns::new();
    let mut ctx = NetContext::new(NetworkKind::Veth);
    ctx.peer = Some("vethnothere".into());
    let out = ct.apply(&[ctx], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "APPLY-ERROR: veth \"vethnothere\": is not in the container's network namespace"
        ),
        "{}",
        dump(&out)
    );
    let routes: Vec<Route> = serde_json::from_value(serde_json::json!([
        {"destination": "198.19.0.0/16", "interface_name": "eth9"},
    ]))
    .expect("routes");
    let out = ct.apply(&[], &routes);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("APPLY-ERROR: routes[0]: interface \"eth9\": does not exist"),
        "{}",
        dump(&out)
    );
    assert!(Path::new(&ct.path()).exists());
}
