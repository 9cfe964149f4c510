//! Root tier: ns-exec is one composition of the stages, and the scripts in `scripts/` are others
//! (issue 6). `compose.sh` builds the container ns-exec builds from ns-cgroup, unshare, ns-init,
//! ns-veth and ns-pty; `enter.sh`, `cgroup-pid.sh` and `veth-netns.sh` run single stages by hand.
//!
//! The equivalence test runs one container twice, once by ns-exec and once by compose.sh, with
//! the same probe, and compares what the probe saw inside and what the test read outside (the
//! cgroup limits, through the pid file).
//!
//! Network rule: every network namespace here is made by the test with `ip netns add` and a
//! unique name (`nsc-<pid>-<n>`), and deleted on drop; the bridge, the host ends and their
//! addresses live there, and ns-exec and the scripts run in it under `nsenter --net` (not
//! `ip netns exec`, which remounts /sys and so hides /sys/fs/cgroup from ns-exec and
//! ns-cgroup). Nothing is added to the machine's own network namespace. Cgroups are made below
//! the test's own cgroup, named after the fixture's unique container name, so the fixture's leak
//! check covers them. Since a named netns is a mount and a `/run/netns` entry, which every
//! fixture's snapshot compares, the tests here run one at a time, and each makes its netns
//! before its fixture and deletes it after.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use ns_tests::{
    Fixture, Invocation, Output, ProcId, Running, TIMEOUT, bin, bin_dir, cap_mask_hex,
    cgroup_dirs_named, require_root, workspace_root,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One test at a time (see the module doc).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A script of `scripts/`.
fn script(name: &str) -> PathBuf {
    workspace_root().join("scripts").join(name)
}

/// A named network namespace (`ip netns add`) made for one test, deleted on drop.
struct NamedNetns {
    name: String,
}

impl NamedNetns {
    fn new() -> NamedNetns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "nsc-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Invocation::new("ip")
            .args(["netns", "add", &name])
            .run()
            .expect_clean_success();
        NamedNetns { name }
    }

    /// One with bridge `br0` holding `addr` (CIDR), up, and `lo` up.
    fn with_bridge(addr: &str) -> NamedNetns {
        let ns = NamedNetns::new();
        ns.sh(&format!(
            "ip link add br0 type bridge && ip addr add {addr} dev br0 && ip link set br0 up \
             && ip link set lo up"
        ));
        ns
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `program` run in this network namespace (only: the mounts stay the test's).
    fn inv(&self, program: impl AsRef<OsStr>) -> Invocation<'static> {
        Invocation::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program)
    }

    /// A shell script inside; fails the test unless it succeeds; returns its stdout.
    fn sh(&self, script: &str) -> String {
        let out = self.inv("sh").args(["-c", script]).run();
        out.expect_code(0);
        out.stdout
    }

    /// The interface names inside, sorted.
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

    /// Waits (bounded) until the interfaces inside are `want`.
    fn wait_links(&self, want: &[&str]) {
        let start = Instant::now();
        loop {
            let links = self.links();
            if links == want {
                return;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "{}: interfaces {links:?}, expected {want:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let out = Invocation::new("ip")
            .args(["netns", "del", &self.name])
            .run();
        if out.status.code() != Some(0) {
            eprintln!("ns-tests: ip netns del {}: {}", self.name, out.stderr);
        }
    }
}

/// `compose.sh --name NAME EXTRA... CONFIG -- CMD...` of the fixture, in `host`'s network
/// namespace, with the programs of this build.
fn compose(host: &NamedNetns, fx: &Fixture, extra: &[&str], cmd: &[&str]) -> Invocation<'static> {
    host.inv("sh")
        .arg(script("compose.sh"))
        .arg("--name")
        .arg(fx.name())
        .args(extra)
        .arg(fx.config_path())
        .arg("--")
        .args(cmd)
        .env("NS_BIN_DIR", bin_dir())
        .current_dir(fx.dir())
}

/// `ns-exec --config C --root R --name N EXTRA... -- CMD...` in `host`'s network namespace.
fn ns_exec(host: &NamedNetns, fx: &Fixture, extra: &[&str], cmd: &[&str]) -> Invocation<'static> {
    host.inv(bin("ns-exec"))
        .arg("--config")
        .arg(fx.config_path())
        .arg("--root")
        .arg(fx.state_root())
        .arg("--name")
        .arg(fx.name())
        .args(extra)
        .arg("--")
        .args(cmd)
        .current_dir(fx.dir())
}

/// Runs `inv`, waits for its pid file and READY, and returns the container's host pid and the
/// still-running program.
fn start_and_wait<'a>(fx: &Fixture, inv: Invocation<'a>) -> (Running<'a>, ProcId) {
    let mut running = inv.stdin_pipe().spawn();
    running.wait_for_stdout("READY");
    let pid = running.wait_for_pid_file(&fx.pid_file());
    fx.track(pid);
    (running, pid)
}

/// The probe: what the container's command sees, one fact per line, then `READY`, and it
/// waits for stdin to close so the test can look at it from outside meanwhile.
const PROBE: &str = r#"
echo "hostname $(hostname)"
for n in cgroup ipc mnt net pid time user uts; do echo "ns $n $(readlink /proc/$$/ns/$n)"; done
sed 's/^/cgroup /' /proc/self/cgroup
ip -o -4 addr show dev eth0 | sed 's/^/addr /'
echo "mtu $(cat /sys/class/net/eth0/mtu)"
ip route | sed 's/^/route /'
while read -r k v; do
  case $k in Cap*|Uid:|Gid:|Groups:|NoNewPrivs:|SigBlk:|SigIgn:|Seccomp:) echo "status $k $v";; esac
done < /proc/$$/status
echo "id $(id -u) $(id -g) $(id -G)"
echo "pid $$"
echo "fds $(ls /proc/$$/fd | tr '\n' ' ')"
echo "cwd $(pwd)"
env | sort | sed 's/^/env /'
cat /data/hello | sed 's/^/data /'
sed 's/^/mountinfo /' /proc/$$/mountinfo
echo READY
read -r x || :
"#;

/// The probe's output with what must differ between two runs taken out: a namespace becomes
/// `same` or `differs` (from the test's own), a mount line loses its ids and device numbers
/// (its parent named by mount point instead), and `READY` goes.
fn normalize(stdout: &str) -> Vec<String> {
    let mut points: HashMap<String, String> = HashMap::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("mountinfo ") {
            let f: Vec<&str> = rest.split(' ').collect();
            if f.len() > 4 {
                points.insert(f[0].to_string(), f[4].to_string());
            }
        }
    }
    let mut out = Vec::new();
    for line in stdout.lines() {
        if line == "READY" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ns ") {
            let (kind, link) = rest.split_once(' ').unwrap_or((rest, ""));
            let ours = fs::read_link(format!("/proc/self/ns/{kind}"))
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let verdict = if link == ours { "same" } else { "differs" };
            out.push(format!("ns {kind} {verdict}"));
        } else if let Some(rest) = line.strip_prefix("mountinfo ") {
            let (left, right) = rest.split_once(" - ").unwrap_or((rest, ""));
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let parent = points.get(l[1]).map(String::as_str).unwrap_or("(outside)");
            out.push(format!(
                "mount {} root={} opts={} type={} source={} super={} parent={parent}",
                l[4],
                l[3],
                l[5],
                r.first().unwrap_or(&""),
                r.get(1).unwrap_or(&""),
                r.get(2).unwrap_or(&""),
            ));
        } else {
            out.push(line.to_string());
        }
    }
    out
}

/// Where each cgroup hierarchy is mounted: (controllers or "" for v2, mount point).
fn cgroup_mounts() -> Vec<(String, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?.to_string();
            let mut r = right.split(' ');
            match r.next()? {
                "cgroup2" => Some((String::new(), point)),
                "cgroup" => {
                    let opts = r.nth(1)?;
                    let ctrls: Vec<&str> = opts
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                        .collect();
                    Some((ctrls.join(","), point))
                }
                _ => None,
            }
        })
        .collect()
}

/// The memory and pids limits of process `pid`'s cgroup, read on the host (v1 files, or v2
/// ones where v1 has no such controller).
fn cgroup_limits(pid: i32) -> Vec<String> {
    let procs = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/PID/cgroup");
    let mounts = cgroup_mounts();
    let mut out = Vec::new();
    for (ctrl, file) in [("memory", "memory.limit_in_bytes"), ("pids", "pids.max")] {
        let v1 = procs.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            p.next()?;
            let ctrls = p.next()?;
            let path = p.next()?;
            ctrls.split(',').any(|c| c == ctrl).then(|| {
                let (_, point) = mounts.iter().find(|(c, _)| c == ctrls)?;
                fs::read_to_string(format!("{point}{path}/{file}")).ok()
            })?
        });
        let value = v1.or_else(|| {
            let path = procs.lines().find_map(|l| l.strip_prefix("0::"))?;
            let (_, point) = mounts.iter().find(|(c, _)| c.is_empty())?;
            let v2file = if ctrl == "memory" {
                "memory.max"
            } else {
                "pids.max"
            };
            fs::read_to_string(format!("{point}{path}/{v2file}")).ok()
        });
        out.push(format!(
            "limit {ctrl} {}",
            value.as_deref().unwrap_or("(none)").trim()
        ));
    }
    out
}

/// The capabilities of the equivalence config.
const CAPS: [&str; 9] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "SETGID",
    "SETUID",
    "KILL",
    "NET_RAW",
    "SYS_CHROOT",
    "NET_BIND_SERVICE",
];

/// THE EQUIVALENCE TEST. One config (mount, UTS, IPC, pid and net namespaces; a hostname; a
/// cgroup with a memory and a pids limit; loopback and a veth on a bridge of a test-made
/// netns; a capability list; the rootfs's non-root user; a read-only bind mount) runs the
/// same probe once under ns-exec and once under compose.sh. What the probe sees inside
/// (hostname, which namespaces differ from the test's, /proc/self/cgroup, eth0's address and
/// MTU, the routes, the five capability sets, uid/gid/groups, signals, fds, cwd, environment,
/// the bind's content, the mount tree) and what the test reads outside (the limit files of the
/// container's cgroup, through its host pid) is the same for both, after mount ids and
/// namespace inode numbers are taken out. Both runs leave nothing behind.
#[test]
fn compose_builds_the_container_ns_exec_builds() {
    require_root();
    let _serial = serial();
    let host = NamedNetns::with_bridge("198.18.40.1/24");
    let fx = Fixture::new();
    let data = fx.mkdir("data");
    fs::write(data.join("hello"), "from the host\n").expect("write data/hello");
    fx.edit_config(|c| {
        c["hostname"] = json!("koye-eq");
        c["namespaces"] = json!(["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]);
        c["capabilities"] = json!(CAPS);
        c["user"] = json!("user");
        c["cgroups"] = json!({"memory": "48m", "pids_max": 40});
        c["networks"] = json!([
            {"type": "loopback"},
            {"type": "veth", "context": {"bridge": "br0", "prefix": "ce"},
             "address": "198.18.40.2/24", "gateway": "198.18.40.1", "mtu": 1400}
        ]);
        c["mounts"] = json!([{"type": "bind", "source": data, "destination": "/data"}]);
    });
    let pid_file = fx.pid_file().to_string_lossy().into_owned();
    let extra = ["--pid-file", pid_file.as_str()];
    let cmd = ["sh", "-c", PROBE];

    let mut seen = Vec::new();
    for (what, inv) in [
        ("ns-exec", ns_exec(&host, &fx, &extra, &cmd)),
        ("compose.sh", compose(&host, &fx, &extra, &cmd)),
    ] {
        let (mut running, pid) = start_and_wait(&fx, inv);
        let mut lines = cgroup_limits(pid.pid);
        running.close_stdin();
        let out = running.wait();
        out.expect_clean_success();
        assert!(pid.wait_gone(TIMEOUT), "{what}: the container outlived it");
        assert_eq!(
            cgroup_dirs_named(fx.name()),
            Vec::<PathBuf>::new(),
            "{what} left its cgroup"
        );
        assert!(!fx.pid_file().exists(), "{what} left its pid file");
        host.wait_links(&["br0", "lo"]);
        lines.extend(normalize(&out.stdout));
        seen.push((what, lines, out));
    }

    let (_, exec_lines, exec_out) = &seen[0];
    let (_, compose_lines, compose_out) = &seen[1];
    // What ns-exec's container is, so equality means more than "both equally broken".
    let has = |line: &str| exec_lines.iter().any(|l| l == line);
    for line in [
        "limit memory 50331648",
        "limit pids 40",
        "hostname koye-eq",
        "ns ipc differs",
        "ns mnt differs",
        "ns net differs",
        "ns pid differs",
        "ns uts differs",
        "ns cgroup same",
        "ns user same",
        "mtu 1400",
        "id 1000 1000 1000 10 100",
        "pid 1",
        "data from the host",
        "env PATH=/bin:/usr/bin:/sbin:/usr/sbin",
    ] {
        assert!(
            has(line),
            "ns-exec's container lacks {line:?}\n{}",
            exec_out.dump()
        );
    }
    let bnd = format!("status CapBnd: {}", cap_mask_hex(&CAPS));
    assert!(has(&bnd), "{bnd}\n{}", exec_out.dump());
    assert!(
        exec_lines
            .iter()
            .any(|l| l.starts_with("addr ") && l.contains("inet 198.18.40.2/24")),
        "{}",
        exec_out.dump()
    );
    assert!(
        has("route default via 198.18.40.1 dev eth0 "),
        "{}",
        exec_out.dump()
    );
    assert!(
        exec_lines
            .iter()
            .any(|l| l.starts_with("mount /data ") && l.contains("opts=ro")),
        "{}",
        exec_out.dump()
    );
    assert!(
        exec_lines
            .iter()
            .any(|l| l.starts_with("cgroup ") && l.ends_with(&format!("/{}", fx.name()))),
        "{}",
        exec_out.dump()
    );

    if exec_lines != compose_lines {
        let only_exec: Vec<&String> = exec_lines
            .iter()
            .filter(|l| !compose_lines.contains(l))
            .collect();
        let only_compose: Vec<&String> = compose_lines
            .iter()
            .filter(|l| !exec_lines.contains(l))
            .collect();
        panic!(
            "the two containers differ\nonly ns-exec's: {only_exec:#?}\nonly compose.sh's: \
             {only_compose:#?}\n(order differs if both are empty)\n--- ns-exec ---\n{}\n--- \
             compose.sh ---\n{}",
            exec_out.dump(),
            compose_out.dump()
        );
    }
}

/// compose.sh exits with the command's own status (7), 127 for a command that is not found,
/// 126 (from ns-dmz) for a command re-entering /proc/self/exe,
/// and 137 when the container's command is SIGKILLed from outside, even with util-linux's
/// unshare that cannot pass a SIGKILL on (it forks through a shell there); SIGTERM to
/// compose.sh is forwarded to the container's command, whose status (3) is then compose.sh's.
/// Every run removes its cgroup and pid file.
#[test]
fn compose_passes_the_exit_status_on() {
    require_root();
    let _serial = serial();
    let host = NamedNetns::with_bridge("198.18.41.1/24");
    let fx = Fixture::new();
    fx.edit_config(|c| {
        c["cgroups"] = json!({"pids_max": 20});
        c["networks"] = json!([{"type": "veth", "context": {"bridge": "br0", "prefix": "ct"},
                                "address": "198.18.41.2/24"}]);
    });
    let pid_file = fx.pid_file().to_string_lossy().into_owned();
    let extra = ["--pid-file", pid_file.as_str()];

    compose(&host, &fx, &[], &["sh", "-c", "exit 7"])
        .run()
        .expect_code(7);
    let out = compose(&host, &fx, &[], &["nope"]).run();
    out.expect_code(127);
    assert_eq!(out.stdout, "");
    // ns-init run from the host's file by the script execs the command through ns-dmz too: a
    // command re-entering /proc/self/exe reaches ns-dmz, not the host's ns-init
    // (CVE-2019-5736).
    let out = compose(&host, &fx, &[], &["/proc/self/exe"]).run();
    out.expect_code(126);
    assert!(out.stderr.contains("ns-dmz: usage:"), "{}", out.dump());

    let (mut running, pid) = start_and_wait(
        &fx,
        compose(
            &host,
            &fx,
            &extra,
            &["sh", "-c", "echo READY; read -r x || :"],
        ),
    );
    kill(Pid::from_raw(pid.pid), Signal::SIGKILL).expect("kill the container's command");
    running.close_stdin();
    let out = running.wait();
    out.expect_code(137);
    assert_eq!(out.stderr, "", "{}", out.dump());

    let (mut running, pid) = start_and_wait(
        &fx,
        compose(
            &host,
            &fx,
            &extra,
            &[
                "sh",
                "-c",
                "trap 'echo TERM; exit 3' TERM; echo READY; while :; do sleep 0.1; done",
            ],
        ),
    );
    running.signal(Signal::SIGTERM);
    let out = running.wait();
    out.expect_code(3);
    assert!(out.stdout.ends_with("READY\nTERM\n"), "{}", out.dump());
    assert!(pid.wait_gone(TIMEOUT));
    host.wait_links(&["br0", "lo"]);
}

/// A stage that fails gives 125 and leaves nothing behind (no cgroup, no pid file, no link in
/// the test's netns, no process): a bridge that does not exist (refused by ns-exec's plan, which
/// compose.sh reads before it makes anything), ns-veth failing after it made the pair (the
/// container was already started and waits for go: it reads EOF and ends), ns-init failing after
/// go, and a config ns-exec refuses. Each failure says so on stderr.
#[test]
fn a_failing_stage_gives_125_and_leaves_nothing() {
    require_root();
    let _serial = serial();
    let host = NamedNetns::with_bridge("198.18.42.1/24");
    let fx = Fixture::new();
    let pid_file = fx.pid_file().to_string_lossy().into_owned();
    let extra = ["--pid-file", pid_file.as_str()];
    let veth = |bridge: &str| {
        json!([{"type": "veth", "context": {"bridge": bridge, "prefix": "ct"},
                "address": "198.18.42.2/24"}])
    };
    fx.edit_config(|c| {
        c["cgroups"] = json!({"memory": "32m"});
        c["networks"] = veth("nope");
    });
    let out = compose(&host, &fx, &extra, &["echo", "RAN"]).run();
    out.expect_code(125);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("bridge \"nope\" does not exist"),
        "{}",
        out.dump()
    );

    fx.edit_config(|c| c["networks"] = veth("br0"));
    for (fault, needle) in [
        ("ns-veth:after-create:fail", "ns-veth: "),
        (
            "ns-init:after-go:fail",
            "ns-init: after-go: failure injected",
        ),
    ] {
        let out = compose(&host, &fx, &extra, &["echo", "RAN"])
            .env("NS_FAULT", fault)
            .run();
        out.expect_code(125);
        assert_eq!(out.stdout, "", "{fault}: {}", out.dump());
        assert!(out.stderr.contains(needle), "{fault}: {}", out.dump());
        assert_eq!(
            cgroup_dirs_named(fx.name()),
            Vec::<PathBuf>::new(),
            "{fault}: cgroup left"
        );
        assert!(!fx.pid_file().exists(), "{fault}: pid file left");
        host.wait_links(&["br0", "lo"]);
    }

    fx.edit_config(|c| c["hostname"] = json!(7));
    let out = compose(&host, &fx, &extra, &["echo", "RAN"]).run();
    out.expect_code(125);
    assert!(out.stderr.starts_with("ns-exec: "), "{}", out.dump());
    assert_eq!(host.links(), ["br0", "lo"]);
}

/// A signal before `go` aborts the start and cleans up through the trap, even while a stage
/// hangs: with ns-veth paused after it put the host end on the bridge (NS_FAULT), SIGTERM to
/// compose.sh ends it with 143 at once; the stage, the waiting container, its veth pair, its
/// cgroup and the pid file are all gone, and the command never ran.
#[test]
fn a_signal_before_go_aborts_and_leaves_nothing() {
    require_root();
    let _serial = serial();
    let host = NamedNetns::with_bridge("198.18.45.1/24");
    let fx = Fixture::new();
    fx.edit_config(|c| {
        c["cgroups"] = json!({"pids_max": 20});
        c["networks"] = json!([{"type": "veth", "context": {"bridge": "br0", "prefix": "ct"},
                                "address": "198.18.45.2/24"}]);
    });
    let pid_file = fx.pid_file().to_string_lossy().into_owned();
    let mut running = compose(&host, &fx, &["--pid-file", &pid_file], &["echo", "RAN"])
        .env("NS_FAULT", "ns-veth:after-attach:pause")
        .spawn();
    let pid = running.wait_for_pid_file(&fx.pid_file());
    fx.track(pid);
    // The pause comes once the host end is on the bridge.
    let start = Instant::now();
    while host.links().len() < 3 {
        assert!(start.elapsed() < TIMEOUT, "ns-veth did not reach its pause");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.signal(Signal::SIGTERM);
    let out = running.wait();
    out.expect_code(143);
    assert_eq!(out.stdout, "", "{}", out.dump());
    assert!(pid.wait_gone(TIMEOUT), "the container outlived compose.sh");
    host.wait_links(&["br0", "lo"]);
    assert_eq!(cgroup_dirs_named(fx.name()), Vec::<PathBuf>::new());
    assert!(!fx.pid_file().exists());
}

/// With `"tty": true` compose.sh puts ns-pty in front: the command runs on a terminal (its
/// fds 0-2 a pts, /dev/console by name, as with any pts handed in), piped input reaches it
/// through the relay, and its status passes through.
#[test]
fn compose_with_tty_runs_the_command_on_a_terminal() {
    require_root();
    let _serial = serial();
    let host = NamedNetns::new();
    let fx = Fixture::new();
    fx.edit_config(|c| c["tty"] = json!(true));
    let out = compose(
        &host,
        &fx,
        &[],
        &["sh", "-c", "tty; read -r x; echo \"got $x\"; exit 5"],
    )
    .stdin_bytes(b"hello\n")
    .run();
    out.expect_code(5);
    assert!(out.stdout.contains("/dev/console"), "{}", out.dump());
    assert!(out.stdout.contains("got hello"), "{}", out.dump());
}

/// enter.sh runs a command inside a running ns-exec container: it sees the container's
/// hostname, namespaces, user, groups, capabilities and environment exactly as `ns-exec enter`
/// does, and (unlike `ns-exec enter`) it is in the container's cgroup. A state whose recorded
/// start time does not match its pid (a reused pid) is refused with 125, and that process is
/// left alone.
#[test]
fn enter_runs_a_command_inside_a_running_container() {
    require_root();
    let _serial = serial();
    let host = NamedNetns::with_bridge("198.18.43.1/24");
    let fx = Fixture::new();
    fx.edit_config(|c| {
        c["hostname"] = json!("koye-enter");
        c["user"] = json!("user");
        c["cgroups"] = json!({"pids_max": 30});
        c["networks"] = json!([{"type": "veth", "context": {"bridge": "br0", "prefix": "ct"},
                                "address": "198.18.43.2/24"}]);
    });
    let pid_file = fx.pid_file().to_string_lossy().into_owned();
    let (mut running, pid) = start_and_wait(
        &fx,
        ns_exec(
            &host,
            &fx,
            &["--pid-file", pid_file.as_str()],
            &["sh", "-c", "echo READY; read -r x || :"],
        ),
    );
    let probe = r#"hostname
for n in cgroup ipc mnt net pid uts; do echo "ns $n $(readlink /proc/$$/ns/$n)"; done
grep -E '^(Cap|Uid|Gid|Groups|NoNewPrivs)' /proc/$$/status
id; pwd; env | sort; ip -o -4 addr show dev eth0 | cut -d' ' -f2-7"#;
    let enter_sh = Invocation::new("sh")
        .arg(script("enter.sh"))
        .arg("--root")
        .arg(fx.state_root())
        .arg(fx.name())
        .arg("--")
        .args(["sh", "-c", probe])
        .env("NS_BIN_DIR", bin_dir())
        .run();
    enter_sh.expect_clean_success();
    let by_ns_exec = fx.enter(&["sh", "-c", probe]).run();
    by_ns_exec.expect_clean_success();
    assert!(
        enter_sh.stdout.starts_with("koye-enter\n"),
        "{}",
        enter_sh.dump()
    );
    assert_eq!(enter_sh.stdout, by_ns_exec.stdout, "{}", enter_sh.dump());

    let cgroup_of = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("cgroup "))
            .map(str::to_string)
            .collect()
    };
    let inside = Invocation::new("sh")
        .arg(script("enter.sh"))
        .arg("--root")
        .arg(fx.state_root())
        .arg(fx.name())
        .arg("--")
        .args(["sed", "s/^/cgroup /", "/proc/self/cgroup"])
        .env("NS_BIN_DIR", bin_dir())
        .run();
    inside.expect_clean_success();
    let container = fs::read_to_string(format!("/proc/{}/cgroup", pid.pid)).expect("cgroup");
    let container: Vec<String> = container.lines().map(|l| format!("cgroup {l}")).collect();
    assert_eq!(cgroup_of(&inside.stdout), container, "{}", inside.dump());

    // A state naming a live process with another start time: a reused pid.
    let victim = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let vpid = victim.id() as i32;
    let mut victim = ChildGuard(victim);
    let fake = fx.state_root().join("reused");
    fs::create_dir_all(&fake).expect("mkdir fake state");
    let mut state: Value = serde_json::from_str(
        &fs::read_to_string(fx.state_root().join(fx.name()).join("state.json"))
            .expect("state.json"),
    )
    .expect("state JSON");
    state["pid"] = json!(vpid);
    state["start_time"] = json!(1);
    fs::write(fake.join("state.json"), state.to_string()).expect("write fake state");
    let out = Invocation::new("sh")
        .arg(script("enter.sh"))
        .arg("--root")
        .arg(fx.state_root())
        .arg("reused")
        .arg("--")
        .arg("true")
        .env("NS_BIN_DIR", bin_dir())
        .run();
    fs::remove_dir_all(&fake).expect("remove fake state");
    out.expect_code(125);
    assert!(
        out.stderr.contains("now belongs to another process"),
        "{}",
        out.dump()
    );
    assert!(
        victim.0.try_wait().expect("try_wait").is_none(),
        "the other process was touched"
    );
    victim.end();

    running.close_stdin();
    running.wait().expect_clean_success();
    assert!(pid.wait_gone(TIMEOUT));
}

/// A child process the test started, killed by its pid and reaped on drop (or by `end`).
struct ChildGuard(std::process::Child);

impl ChildGuard {
    fn end(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.end();
    }
}

/// cgroup-pid.sh puts a process the test started (no container) into a new cgroup with a
/// memory and a pids limit, and prints ns-cgroup's stats showing them; the process's
/// /proc/PID/cgroup names the cgroup. `--remove NAME PID` takes the process back to the test's
/// own cgroup and removes the cgroup; the process lives on, untouched.
#[test]
fn cgroup_pid_moves_a_process_in_and_out() {
    require_root();
    let _serial = serial();
    let fx = Fixture::new();
    let own = fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    let mut sleeper = ChildGuard(
        std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = sleeper.0.id().to_string();
    let run = |args: &[&str]| {
        Invocation::new("sh")
            .arg(script("cgroup-pid.sh"))
            .args(args)
            .env("NS_BIN_DIR", bin_dir())
            .run()
    };
    let out = run(&["--memory", "32m", "--pids-max", "10", fx.name(), &pid]);
    out.expect_clean_success();
    let stats: Value = serde_json::from_str(&out.stdout).expect("stats JSON");
    assert_eq!(stats["pids"]["max"], 10, "{}", out.dump());
    assert_eq!(stats["pids"]["current"], 1, "{}", out.dump());
    assert_eq!(stats["memory"]["limit"], 32 << 20, "{}", out.dump());
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert!(
        cg.lines().any(|l| l.ends_with(&format!("/{}", fx.name()))),
        "{cg}"
    );

    run(&["--remove", fx.name(), &pid]).expect_clean_success();
    assert_eq!(cgroup_dirs_named(fx.name()), Vec::<PathBuf>::new());
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup after");
    assert_eq!(cg, own, "the process is back in the test's cgroup");
    assert!(
        sleeper.0.try_wait().expect("try_wait").is_none(),
        "it still runs"
    );
    sleeper.end();

    // A usage error names the problem and prints the usage; nothing is made.
    let out = run(&[fx.name()]);
    out.expect_code(125);
    assert!(
        out.stderr.contains("Usage: cgroup-pid.sh"),
        "{}",
        out.dump()
    );
}

/// veth-netns.sh gives a named network namespace the test made a veth on the bridge of
/// another test-made namespace: the inside is configured from ns-veth's JSON context (eth0,
/// address, MTU, default route) and reaches the bridge; `del` removes the pair from both sides,
/// and again succeeds with nothing to do. An inside step that fails (an unreachable gateway)
/// gives 125 and deletes the pair again.
#[test]
fn veth_netns_gives_a_named_netns_a_veth() {
    require_root();
    let _serial = serial();
    let host = NamedNetns::with_bridge("198.18.44.1/24");
    let target = NamedNetns::new();
    let run = |args: &[&str]| {
        host.inv("sh")
            .arg(script("veth-netns.sh"))
            .args(args)
            .env("NS_BIN_DIR", bin_dir())
            .run()
    };
    let out = run(&[
        "add",
        &target.path(),
        "--bridge",
        "br0",
        "--address",
        "198.18.44.2/24",
        "--gateway",
        "198.18.44.1",
        "--mtu",
        "1400",
    ]);
    out.expect_clean_success();
    let ctx: Value = serde_json::from_str(out.stdout.trim()).expect("context JSON");
    assert_eq!(ctx["type"], "veth");
    assert_eq!(ctx["name"], "eth0");
    let host_end = ctx["host"].as_str().expect("host").to_string();
    let mut want = vec!["br0", host_end.as_str(), "lo"];
    want.sort();
    assert_eq!(host.links(), want);
    assert_eq!(target.links(), ["eth0", "lo"]);
    let inside = target.sh(
        "ip -o -4 addr show dev eth0; cat /sys/class/net/eth0/mtu; ip route show default; \
         /bin/busybox ping -c 1 -W 5 198.18.44.1 >/dev/null && echo PING-OK",
    );
    assert!(inside.contains("inet 198.18.44.2/24"), "{inside}");
    assert!(inside.contains("\n1400\n"), "{inside}");
    assert!(
        inside.contains("default via 198.18.44.1 dev eth0"),
        "{inside}"
    );
    assert!(inside.contains("PING-OK"), "{inside}");
    let line = host.sh(&format!("ip -o link show dev {host_end}"));
    assert!(line.contains("master br0"), "{line}");

    // By name, as `ip netns` knows it.
    run(&["del", &target.name]).expect_clean_success();
    host.wait_links(&["br0", "lo"]);
    assert_eq!(target.links(), ["lo"]);
    run(&["del", &target.path()]).expect_clean_success();

    let out = run(&[
        "add",
        &target.path(),
        "--bridge",
        "br0",
        "--address",
        "198.18.44.2/24",
        "--gateway",
        "10.255.0.1",
    ]);
    out.expect_code(125);
    assert_eq!(out.stdout, "");
    host.wait_links(&["br0", "lo"]);
    assert_eq!(target.links(), ["lo"]);
}

/// Each script prints its usage: on stdout with status 0 for `--help`, on stderr with status
/// 125 for bad arguments (none, or an unknown option), and changes nothing then.
#[test]
fn scripts_print_usage_on_bad_arguments() {
    for name in ["compose.sh", "enter.sh", "cgroup-pid.sh", "veth-netns.sh"] {
        let run = |args: &[&str]| -> Output {
            Invocation::new("sh")
                .arg(script(name))
                .args(args)
                .env("NS_BIN_DIR", bin_dir())
                .run()
        };
        let out = run(&["--help"]);
        out.expect_clean_success();
        assert!(
            out.stdout.starts_with(&format!("Usage: {name} ")),
            "{}",
            out.dump()
        );
        for bad in [&[][..], &["--bogus"][..]] {
            let out = run(bad);
            out.expect_code(125);
            assert_eq!(out.stdout, "", "{name} {bad:?}");
            assert!(
                out.stderr.starts_with(&format!("{name}: ")) && out.stderr.contains("Usage: "),
                "{name} {bad:?}: {}",
                out.dump()
            );
        }
    }
}
