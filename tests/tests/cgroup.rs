//! The root tier for ns-cgroup: real cgroups on this machine's layout (hybrid here; v2 inside
//! `run-in-vm --cgroup v2` through tests/vm/cgroup-v2.sh), with real containers joined in chain
//! form: `ns-cgroup join NAME -- ns-exec ... -- CMD`, which puts ns-exec and its container in
//! the cgroup.
//!
//! Every cgroup is made below the test process's own cgroup (as /proc/self/cgroup says), named
//! after the fixture's unique container name, so the fixture's leak check (no directory with
//! that name in any hierarchy) proves the tree is as it was. A [`Group`] guard kills and removes
//! its cgroup if a test fails half-way. Every wait is bounded; nothing measures time.

use ns_tests::{Fixture, Invocation, Output, bin, cgroup_dirs_named, require_root};
use serde_json::{Value, json};
use std::fs;
use std::time::{Duration, Instant};

fn fixture() -> Fixture {
    require_root();
    Fixture::new()
}

/// `ns-cgroup ARGS...`.
fn ns_cgroup<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Invocation<'static> {
    Invocation::new(bin("ns-cgroup")).args(args)
}

/// A cgroup a test created: killed and removed on drop if the test did not remove it.
struct Group {
    name: String,
    removed: bool,
}

impl Group {
    /// `ns-cgroup create NAME LIMITS...`, which must succeed.
    fn create(name: &str, limits: &[&str]) -> Group {
        let mut args = vec!["create", name];
        args.extend_from_slice(limits);
        ns_cgroup(&args).run().expect_clean_success();
        Group {
            name: name.to_string(),
            removed: false,
        }
    }

    /// `ns-cgroup VERB NAME ARGS...`.
    fn verb(&self, verb: &str, args: &[&str]) -> Output {
        let mut all = vec![verb, self.name.as_str()];
        all.extend_from_slice(args);
        ns_cgroup(&all).run()
    }

    /// `ns-cgroup stats NAME`, parsed.
    fn stats(&self) -> Value {
        let out = self.verb("stats", &[]);
        out.expect_clean_success();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("stats is not JSON: {e}\n{}", out.dump()))
    }

    /// Kills what is left and removes it; both must succeed.
    fn remove(mut self) {
        self.verb("kill", &[]).expect_clean_success();
        self.verb("remove", &[]).expect_clean_success();
        self.removed = true;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.verb("kill", &[]);
            let _ = self.verb("remove", &[]);
        }
    }
}

/// `ns-cgroup join NAME -- ns-exec --config C --root R --name N -- CMD...`: the container and
/// the ns-exec that waits for it, both in the cgroup.
fn run_in(fx: &Fixture, group: &Group, cmd: &[&str]) -> Invocation<'static> {
    let mut args: Vec<std::ffi::OsString> =
        vec!["join".into(), group.name.clone().into(), "--".into()];
    args.push(bin("ns-exec").into());
    args.push("--config".into());
    args.push(fx.config_path().into());
    args.push("--root".into());
    args.push(fx.state_root().into());
    args.push("--name".into());
    args.push(fx.name().into());
    args.push("--".into());
    args.extend(cmd.iter().map(Into::into));
    Invocation::new(bin("ns-cgroup"))
        .current_dir(fx.dir())
        .args(args)
}

/// The caller's cgroup paths: `(controllers, path)` per line of `/proc/PID/cgroup`.
fn proc_cgroup(pid: &str) -> Vec<(String, String)> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/cgroup: {e}"))
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            p.next()?;
            Some((p.next()?.to_string(), p.next()?.to_string()))
        })
        .collect()
}

/// The one stderr line of a failed ns-cgroup run, which must start with `ns-cgroup: `.
fn error_line(out: &Output) -> &str {
    let lines = out.stderr_lines();
    match lines[..] {
        [line] if line.starts_with("ns-cgroup: ") => line,
        _ => panic!("expected one `ns-cgroup: ` line on stderr\n{}", out.dump()),
    }
}

/// This machine's cgroup layout, as ns-cgroup names it: `v1`, `hybrid` or `v2`.
fn layout() -> &'static str {
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let has = |fstype: &str| mounts.lines().any(|l| l.contains(&format!(" - {fstype} ")));
    match (has("cgroup"), has("cgroup2")) {
        (true, true) => "hybrid",
        (true, false) => "v1",
        _ => "v2",
    }
}

// --- limits enforced -------------------------------------------------------------------------

/// A memory hog is OOM-killed at the memory limit (the container exits 137), and `watch`,
/// started before the container, reported the OOM kill and the cgroup emptying, then ended when
/// the cgroup was removed.
#[test]
fn memory_hog_is_oom_killed_and_watch_reports_it() {
    let fx = fixture();
    let group = Group::create(fx.name(), &["--memory", "32m"]);
    let mut watch = ns_cgroup(&["watch", fx.name()]).spawn();
    watch.wait_for_stdout("\"watching\"");
    // dd allocates and fills one 64 MiB buffer: twice the limit.
    let out = run_in(
        &fx,
        &group,
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    )
    .run();
    out.expect_code(137);
    watch.wait_for_stdout("\"oom_kill\"");
    let stats = group.stats();
    assert_eq!(stats["memory"]["limit"], json!(32u64 << 20), "{stats}");
    group.remove();
    let w = watch.wait();
    w.expect_clean_success();
    let events: Vec<Value> = w
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let has = |ev: &str| events.iter().any(|e| e["event"] == ev);
    assert!(has("oom_kill"), "{}", w.stdout);
    assert_eq!(
        events.last().map(|e| e["event"].clone()),
        Some(json!("removed"))
    );
    // Pure v1 cannot report emptiness; hybrid (this machine) and v2 can.
    assert!(
        layout() == "v1"
            || events
                .iter()
                .any(|e| e["event"] == "populated" && e["populated"] == false),
        "{}",
        w.stdout
    );
}

/// A fork loop stops at `pids_max`: the shell cannot start more than the limit allows (ns-exec
/// and the shell count too), fails with "can't fork", and the counter shows the limit.
#[test]
fn fork_loop_stops_at_pids_max() {
    let fx = fixture();
    let group = Group::create(fx.name(), &["--pids-max", "8"]);
    let out = run_in(
        &fx,
        &group,
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 50 ]; do sleep 30 & i=$((i+1)); echo $i; done",
        ],
    )
    .run();
    assert_ne!(out.code(), 0, "{}", out.dump());
    let started: u32 = out.stdout.lines().last().map_or(0, |l| {
        l.parse().unwrap_or_else(|_| panic!("{}", out.dump()))
    });
    assert!(
        started < 8,
        "{started} sleeps started under pids.max 8\n{}",
        out.dump()
    );
    assert!(out.stderr.contains("fork"), "{}", out.dump());
    let stats = group.stats();
    assert_eq!(stats["pids"]["max"], 8, "{stats}");
    group.remove();
}

/// `cpuset_cpus=0` shows in the container's `Cpus_allowed_list`.
#[test]
fn cpuset_shows_in_cpus_allowed_list() {
    let fx = fixture();
    let group = Group::create(fx.name(), &["--cpuset-cpus", "0"]);
    let out = run_in(
        &fx,
        &group,
        &["grep", "Cpus_allowed_list", "/proc/self/status"],
    )
    .run();
    out.expect_clean_success();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["Cpus_allowed_list:", "0"],
        "{}",
        out.dump()
    );
    group.remove();
}

/// A denied device cannot be opened while an allowed one can: only `/dev/null` (1:3) is
/// allowed for reading and writing (plus mknod of any char device, which ns-init needs to make
/// `/dev`, and the tty and pty devices), so `/dev/zero` (1:5) is refused.
#[test]
fn denied_device_cannot_be_opened_allowed_one_can() {
    let fx = fixture();
    let group = Group::create(
        fx.name(),
        &[
            "--allow-device",
            "c *:* m",
            "--allow-device",
            "c 1:3 rw",
            "--allow-device",
            "c 5:* rw",
            "--allow-device",
            "c 136:* rw",
        ],
    );
    let out = run_in(
        &fx,
        &group,
        &[
            "sh",
            "-c",
            "echo x > /dev/null && echo null-ok; \
             head -c 1 /dev/zero > /dev/null 2>&1 || echo zero-denied",
        ],
    )
    .run();
    out.expect_clean_success();
    assert_eq!(out.stdout, "null-ok\nzero-denied\n", "{}", out.dump());
    group.remove();
}

/// `stats` of a running container is valid JSON with non-zero memory usage and the container's
/// processes counted, and only the groups of hierarchies the cgroup is in (no cpu on v1 and
/// hybrid: no cpu limit); `kill` ends the container (137) and everything in the cgroup.
#[test]
fn stats_is_json_with_memory_usage_and_kill_ends_the_container() {
    let fx = fixture();
    let group = Group::create(fx.name(), &["--memory", "64m", "--pids-max", "20"]);
    let mut running = run_in(&fx, &group, &["sh", "-c", "sleep 60 & echo up; wait"]).spawn();
    running.wait_for_stdout("up");
    let stats = group.stats();
    assert_eq!(stats["v"], 1);
    let usage = stats["memory"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0, "{stats}");
    // ns-exec, sh and sleep.
    assert!(
        stats["pids"]["current"].as_u64().unwrap_or(0) >= 3,
        "{stats}"
    );
    if layout() == "v2" {
        assert!(stats["cpu"]["usage_usec"].is_u64(), "{stats}");
    } else {
        assert!(stats.get("cpu").is_none(), "{stats}");
    }
    group.verb("kill", &[]).expect_clean_success();
    let out = running.wait();
    // ns-exec itself was killed too (it is in the cgroup); its status is SIGKILL's.
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "{}",
        out.dump()
    );
    fx.allow_state_left();
    fs::remove_dir_all(fx.state_root()).expect("remove the killed ns-exec's state");
    group.remove();
}

/// `freeze` stops a busy loop (its CPU time stays put while frozen) and `thaw` resumes it (its
/// CPU time grows again).
#[test]
fn freeze_stops_a_busy_loop_and_thaw_resumes_it() {
    let fx = fixture();
    let group = Group::create(fx.name(), &[]);
    let mut running = run_in(&fx, &group, &["sh", "-c", "echo up; while :; do :; done"]).spawn();
    running.wait_for_stdout("up");
    let cpu = |g: &Group| {
        g.stats()["cpu"]["usage_usec"]
            .as_u64()
            .expect("cpu usage_usec")
    };
    group.verb("freeze", &[]).expect_clean_success();
    let frozen = cpu(&group);
    // Frozen tasks cannot run: the counter must not move, however long we look.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu(&group), frozen, "CPU time grew while frozen");
    group.verb("thaw", &[]).expect_clean_success();
    let deadline = Instant::now() + ns_tests::TIMEOUT;
    while cpu(&group) <= frozen {
        assert!(
            Instant::now() < deadline,
            "the loop did not run again after thaw"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    group.verb("kill", &[]).expect_clean_success();
    drop(running.wait());
    fx.allow_state_left();
    fs::remove_dir_all(fx.state_root()).expect("remove the killed ns-exec's state");
    group.remove();
}

/// `set` changes the limits of a live cgroup.
#[test]
fn set_changes_limits_of_a_live_cgroup() {
    let fx = fixture();
    let group = Group::create(fx.name(), &["--memory", "32m", "--pids-max", "10"]);
    group
        .verb("set", &["--memory", "48m", "--pids-max", "12"])
        .expect_clean_success();
    let stats = group.stats();
    assert_eq!(stats["memory"]["limit"], json!(48u64 << 20), "{stats}");
    assert_eq!(stats["pids"]["max"], 12, "{stats}");
    group.remove();
}

/// Limits come from a container.json's `cgroups` object, and flags override its values.
#[test]
fn limits_come_from_the_config_and_flags_override_them() {
    let fx = fixture();
    let config = fx.dir().join("limits.json");
    fs::write(
        &config,
        r#"{"cgroups": {"memory": "24m", "pids_max": 9, "cpu_shares": 512}}"#,
    )
    .unwrap();
    let config = config.to_str().expect("fixture paths are UTF-8");
    let group = Group::create(fx.name(), &["--config", config, "--pids-max", "11"]);
    let stats = group.stats();
    assert_eq!(stats["memory"]["limit"], json!(24u64 << 20), "{stats}");
    assert_eq!(stats["pids"]["max"], 11, "{stats}");
    group.remove();
}

/// A CPU quota throttles a busy loop: `stats` shows throttled periods (counted by the kernel,
/// waited for with a bound, never timed).
#[test]
fn cpu_quota_throttles_a_busy_loop() {
    let fx = fixture();
    let group = Group::create(
        fx.name(),
        &["--cpu-quota", "10000", "--cpu-period", "100000"],
    );
    let mut running = run_in(&fx, &group, &["sh", "-c", "echo up; while :; do :; done"]).spawn();
    running.wait_for_stdout("up");
    let deadline = Instant::now() + ns_tests::TIMEOUT;
    loop {
        let stats = group.stats();
        if stats["cpu"]["nr_throttled"].as_u64().unwrap_or(0) > 0 {
            assert!(
                stats["cpu"]["throttled_usec"].as_u64().unwrap_or(0) > 0,
                "{stats}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never throttled: {stats}");
        std::thread::sleep(Duration::from_millis(50));
    }
    group.verb("kill", &[]).expect_clean_success();
    drop(running.wait());
    fx.allow_state_left();
    fs::remove_dir_all(fx.state_root()).expect("remove the killed ns-exec's state");
    group.remove();
}

// --- placement and cleanup -------------------------------------------------------------------

/// The cgroup is placed below the caller's own cgroup (under `--parent`) in each hierarchy it
/// is made in: for `--pids-max`, pids, freezer and the cgroup2 tree (on v2, the one tree); `join
/// --pid` moves a process there in each of them and leaves it in the caller's cgroup elsewhere.
#[test]
fn placement_is_below_the_callers_cgroup_and_join_moves_a_pid() {
    let fx = fixture();
    let parent = format!("{}-parent", fx.name());
    let group = Group::create(&parent, &[]);
    ns_cgroup(&["create", fx.name(), "--parent", &parent, "--pids-max", "5"])
        .run()
        .expect_clean_success();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("start sleep");
    let pid = sleeper.id().to_string();
    ns_cgroup(&["join", fx.name(), "--parent", &parent, "--pid", &pid])
        .run()
        .expect_clean_success();
    let mine = proc_cgroup("self");
    let theirs = proc_cgroup(&pid);
    for ((c, own), (c2, path)) in mine.iter().zip(&theirs) {
        assert_eq!(c, c2);
        // Hierarchies without a controller ns-cgroup manages (`name=systemd`, `misc`,
        // `hugetlb`, ...) are left alone.
        let managed = c.is_empty()
            || c.split(',').any(|c| {
                [
                    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                ]
                .contains(&c)
            });
        if !managed {
            assert_eq!(path, own, "hierarchy {c:?} is not ns-cgroup's");
            continue;
        }
        let made = c.is_empty() || c.split(',').any(|c| c == "pids" || c == "freezer");
        let want = if made {
            format!("{}/{parent}/{}", own.trim_end_matches('/'), fx.name())
        } else {
            own.clone()
        };
        assert_eq!(path, &want, "hierarchy {c:?}");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    ns_cgroup(&["remove", fx.name(), "--parent", &parent])
        .run()
        .expect_clean_success();
    group.remove();
}

/// Whether `pid` is in cgroup `name` in the hierarchy of v1 controller `controller` (`""`: the
/// cgroup2 tree).
fn is_in(pid: &str, controller: &str, name: &str) -> bool {
    proc_cgroup(pid).iter().any(|(c, path)| {
        let here = if controller.is_empty() {
            c.is_empty()
        } else {
            c.split(',').any(|c| c == controller)
        };
        here && path.ends_with(&format!("/{name}"))
    })
}

/// With only a memory limit the cgroup is made in the memory and freezer hierarchies (and the
/// cgroup2 tree on hybrid), not in blkio, cpu or pids. `set --cpu-shares` then adds the cpu
/// hierarchy with the process in it; stats, freeze, thaw, kill and remove work on that subset,
/// and nothing is left.
#[test]
fn a_memory_limit_makes_only_its_hierarchies_and_set_adds_one() {
    let fx = fixture();
    let group = Group::create(fx.name(), &["--memory", "32m"]);
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("start sleep");
    let pid = sleeper.id().to_string();
    group.verb("join", &["--pid", &pid]).expect_clean_success();
    let dirs = cgroup_dirs_named(fx.name());
    match layout() {
        "v2" => {
            assert!(is_in(&pid, "", fx.name()));
            assert_eq!(dirs.len(), 1, "{dirs:?}");
        }
        kind => {
            assert!(is_in(&pid, "memory", fx.name()), "{:?}", proc_cgroup(&pid));
            assert!(is_in(&pid, "freezer", fx.name()), "{:?}", proc_cgroup(&pid));
            for other in ["blkio", "cpu", "pids", "devices"] {
                assert!(!is_in(&pid, other, fx.name()), "in {other}");
            }
            assert_eq!(is_in(&pid, "", fx.name()), kind == "hybrid");
            assert_eq!(dirs.len(), if kind == "hybrid" { 3 } else { 2 }, "{dirs:?}");
        }
    }
    group
        .verb("set", &["--cpu-shares", "512"])
        .expect_clean_success();
    if layout() != "v2" {
        assert!(is_in(&pid, "cpu", fx.name()), "{:?}", proc_cgroup(&pid));
        let cpu = cgroup_dirs_named(fx.name())
            .into_iter()
            .find(|d| d.join("cpu.shares").exists())
            .expect("a cpu directory");
        let shares = fs::read_to_string(cpu.join("cpu.shares")).unwrap();
        assert_eq!(shares.trim(), "512");
        // Still not in blkio.
        assert!(!is_in(&pid, "blkio", fx.name()));
    }
    let stats = group.stats();
    assert_eq!(stats["memory"]["limit"], json!(32u64 << 20), "{stats}");
    group.verb("freeze", &[]).expect_clean_success();
    group.verb("thaw", &[]).expect_clean_success();
    group.verb("kill", &[]).expect_clean_success();
    let status = sleeper.wait().expect("reap sleep");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    group.remove();
    assert_eq!(
        cgroup_dirs_named(fx.name()),
        Vec::<std::path::PathBuf>::new()
    );
}

/// A container ns-exec runs with only a memory limit sees itself in the memory and freezer
/// hierarchies and the cgroup2 tree (cloned straight into it), and in no other.
#[test]
fn ns_exec_container_with_a_memory_limit_is_only_in_the_hierarchies_it_needs() {
    let fx = fixture();
    fx.edit_config(|c| c["cgroups"] = json!({"memory": "32m"}));
    let out = fx.run(&["cat", "/proc/self/cgroup"]);
    out.expect_clean_success();
    let suffix = format!("/{}", fx.name());
    for line in out.stdout.lines() {
        let mut p = line.splitn(3, ':').skip(1);
        let (c, path) = (p.next().unwrap_or(""), p.next().unwrap_or(""));
        let want = c.is_empty() || c.split(',').any(|c| c == "memory" || c == "freezer");
        assert_eq!(path.ends_with(&suffix), want, "{line}\n{}", out.dump());
    }
    assert!(
        cgroup_dirs_named(fx.name()).is_empty(),
        "the cgroup is left"
    );
}

/// `remove` is idempotent: a removed (or never created) cgroup is removed again with status 0.
#[test]
fn remove_is_idempotent() {
    let fx = fixture();
    let group = Group::create(fx.name(), &["--memory", "16m"]);
    assert!(!cgroup_dirs_named(fx.name()).is_empty());
    group.remove();
    ns_cgroup(&["remove", fx.name()])
        .run()
        .expect_clean_success();
    assert!(cgroup_dirs_named(fx.name()).is_empty());
}

/// A create that fails half-way (a CPU that does not exist, refused by the kernel after the
/// directories were made) leaves no directory behind and names the field.
#[test]
fn failed_create_leaves_nothing() {
    let fx = fixture();
    let out = ns_cgroup(&[
        "create",
        fx.name(),
        "--memory",
        "16m",
        "--cpuset-cpus",
        "4095",
    ])
    .run();
    out.expect_code(125);
    assert!(
        error_line(&out).contains("cgroups.cpuset_cpus"),
        "{}",
        out.dump()
    );
    assert_eq!(
        cgroup_dirs_named(fx.name()),
        Vec::<std::path::PathBuf>::new()
    );
}

/// When the container fails during setup (a bind mount whose source does not exist), the
/// cgroup empties and is removed without a trace.
#[test]
fn container_failing_in_setup_leaves_a_removable_cgroup() {
    let fx = fixture();
    fx.edit_config(|c| {
        c["mounts"] = json!([{
            "type": "bind",
            "source": "/nonexistent/ns-cgroup-test",
            "destination": "/mnt",
        }]);
    });
    let group = Group::create(fx.name(), &["--memory", "32m", "--pids-max", "10"]);
    let out = run_in(&fx, &group, &["true"]).run();
    out.expect_code(125);
    group.verb("remove", &[]).expect_clean_success();
    let mut group = group;
    group.removed = true;
}

/// A limit the layout cannot enforce is an error naming the field and the layout; here a
/// systemd slice, which ns-cgroup does not support on any layout.
#[test]
fn unsupported_fields_name_the_field_and_layout() {
    let fx = fixture();
    let config = fx.dir().join("cg.json");
    fs::write(&config, r#"{"cgroups": {"slice": "system.slice"}}"#).unwrap();
    let out = ns_cgroup(&["create", fx.name(), "--config", config.to_str().unwrap()]).run();
    out.expect_code(125);
    let line = error_line(&out);
    assert!(
        line.contains("cgroups.slice") && line.contains(&format!("{} layout", layout())),
        "{}",
        out.dump()
    );
}

/// The chain form returns the command's own status, and 127 for a command that is not found.
#[test]
fn join_chain_form_returns_the_commands_status() {
    let fx = fixture();
    let group = Group::create(fx.name(), &[]);
    ns_cgroup(&["join", fx.name(), "--", "sh", "-c", "exit 7"])
        .run()
        .expect_code(7);
    let out = ns_cgroup(&["join", fx.name(), "--", "/nonexistent/cmd"]).run();
    out.expect_code(127);
    group.remove();
}

// --- ns-exec with a `cgroups` object -----------------------------------------------------------

/// With `cgroups` in the config, ns-exec places the container in its own cgroup (named after
/// the container, below the caller's cgroup) before releasing it: the memory limit holds, a
/// hog is OOM-killed (137), and the cgroup is gone afterwards in every hierarchy (the fixture
/// checks).
#[test]
fn ns_exec_applies_the_configs_memory_limit_and_removes_the_cgroup() {
    let fx = fixture();
    fx.edit_config(|c| c["cgroups"] = json!({"memory": "32m", "memory_swap": "32m"}));
    let out = fx
        .exec(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
        .run();
    out.expect_code(137);
    assert!(
        cgroup_dirs_named(fx.name()).is_empty(),
        "the cgroup is left"
    );
}

/// The container's processes are in the cgroup from their first instruction (joined between
/// `ready` and `go`): `/proc/self/cgroup` inside names it in the memory and pids hierarchies,
/// and `pids_max` stops a fork loop.
#[test]
fn ns_exec_puts_the_container_in_its_cgroup_before_it_runs() {
    let fx = fixture();
    fx.edit_config(|c| {
        c["cgroups"] = json!({"pids_max": 8});
        c["namespaces"] = json!(["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]);
    });
    let out = fx.run(&["cat", "/proc/self/cgroup"]);
    out.expect_clean_success();
    let memberships: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(":pids:") || l.starts_with("0::"))
        .collect();
    assert!(!memberships.is_empty(), "{}", out.dump());
    for line in memberships {
        assert!(
            line.ends_with(&format!("/{}", fx.name())),
            "{line}\n{}",
            out.dump()
        );
    }
    let out = fx.run(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 50 ]; do sleep 30 & i=$((i+1)); echo $i; done",
    ]);
    assert_ne!(out.code(), 0, "{}", out.dump());
    let started: u32 = out
        .stdout
        .lines()
        .last()
        .map_or(0, |l| l.parse().unwrap_or(99));
    assert!(
        started < 8,
        "{started} sleeps under pids_max 8\n{}",
        out.dump()
    );
    assert!(
        cgroup_dirs_named(fx.name()).is_empty(),
        "the cgroup is left"
    );
}

/// A cgroup limit the kernel refuses fails the run before the command runs: 125, one line
/// naming `cgroups`, and no cgroup directory left.
#[test]
fn ns_exec_with_an_impossible_cgroup_limit_leaves_nothing() {
    let fx = fixture();
    fx.edit_config(|c| c["cgroups"] = json!({"cpuset_cpus": "4095"}));
    let out = fx.run(&["true"]);
    out.expect_code(125);
    assert!(
        out.stderr.lines().count() == 1 && out.stderr.starts_with("ns-exec: cgroups: "),
        "{}",
        out.dump()
    );
    assert!(
        cgroup_dirs_named(fx.name()).is_empty(),
        "the cgroup is left"
    );
}

/// A SIGKILLed ns-exec leaves its container's cgroup (and state) behind; `ns-exec gc` kills
/// what is left in it and removes it.
#[test]
fn gc_removes_the_cgroup_of_a_killed_run() {
    use nix::sys::signal::Signal;
    let fx = fixture();
    fx.allow_state_left();
    fx.edit_config(|c| c["cgroups"] = json!({"pids_max": 16}));
    let mut running = fx.exec_with_pid_file(&["sleep", "100"]).spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    running.signal(Signal::SIGKILL);
    running.wait();
    assert!(container.wait_gone(Duration::from_secs(5)));
    assert!(
        !cgroup_dirs_named(fx.name()).is_empty(),
        "no cgroup to collect"
    );
    let out = fx
        .ns_exec()
        .arg("gc")
        .arg("--root")
        .arg(fx.state_root())
        .run();
    out.expect_clean_success();
    assert!(out.stdout.starts_with("removed "), "{}", out.dump());
    assert!(
        cgroup_dirs_named(fx.name()).is_empty(),
        "gc left the cgroup"
    );
}
