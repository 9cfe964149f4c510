//! The root tier: real containers from `ns-exec`, one property per test.
//!
//! Every test runs as root (a non-root or namespace-less host fails them, never skips them),
//! makes its own [`Fixture`] (busybox rootfs, `container.json`, state dir, unique name) and
//! leaves nothing behind: the fixture's drop fails the test if host mounts, links or named netns
//! changed, a container process survived, or a state entry, pid file or cgroup dir was left.
//! Every wait is bounded; nothing here measures time.

use nix::sys::signal::Signal;
use ns_tests::{
    DEFAULT_CAPS, DEFAULT_ENV, DEFAULT_HOSTNAME, Fixture, Snapshot, cap_mask_hex, mounts_under,
    pids_in_pid_namespace, require_root, status_field,
};
use serde_json::{Value, json};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

fn fixture() -> Fixture {
    require_root();
    Fixture::new()
}

/// The text of a symlink under `/proc` on the host, e.g. `uts:[4026531838]`.
fn host_link(path: &str) -> String {
    fs::read_link(path)
        .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Makes `rel` (absolute inside the container) as a directory of the fixture's rootfs.
fn mkdir_in_rootfs(fx: &Fixture, rel: &str) {
    let path = fx.rootfs().join(rel.trim_start_matches('/'));
    fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

/// A bind-mount entry for `mounts[]`.
fn bind(source: &std::path::Path, destination: &str, writable: bool) -> Value {
    json!({
        "type": "bind",
        "source": source.to_str().expect("fixture paths are UTF-8"),
        "destination": destination,
        "writable": writable,
    })
}

// --- identity of the container -----------------------------------------------------------------

/// The container's UTS namespace carries the configured hostname, and setting it leaves the
/// host's hostname alone.
#[test]
fn hostname_is_the_configured_one() {
    let fx = fixture();
    let host_before = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = fx.run(&["hostname"]);
    out.expect_clean_success();
    assert_eq!(
        out.stdout,
        format!("{DEFAULT_HOSTNAME}\n"),
        "{}",
        out.dump()
    );
    let host_after = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(host_before, host_after, "the host's hostname changed");
}

/// The command is the init (pid 1) of a new pid namespace.
#[test]
fn command_is_pid_1() {
    let fx = fixture();
    let out = fx.run(&["/bin/sh", "-c", "echo $$"]);
    out.expect_clean_success();
    assert_eq!(out.stdout, "1\n", "{}", out.dump());
}

/// `/proc` inside is the container's own: it lists only the container's processes, not the
/// host's. The shell globs `/proc/[0-9]*` itself (no child process), so the one pid there is its
/// own; a pipeline `ls /proc | grep` sees only the shell, `ls` and `grep`.
#[test]
fn proc_lists_only_the_containers_processes() {
    let fx = fixture();
    let out = fx.run(&["/bin/sh", "-c", "cd /proc && echo [0-9]*"]);
    out.expect_clean_success();
    assert_eq!(out.stdout, "1\n", "{}", out.dump());

    let out = fx.run(&["/bin/sh", "-c", "ls /proc | grep '^[0-9]'"]);
    out.expect_clean_success();
    let pids: Vec<u32> = out
        .stdout
        .lines()
        .map(|l| {
            l.parse()
                .unwrap_or_else(|_| panic!("not a pid: {l:?}\n{}", out.dump()))
        })
        .collect();
    assert!(pids.contains(&1), "pid 1 missing\n{}", out.dump());
    assert!(pids.len() <= 3, "more than sh, ls and grep\n{}", out.dump());
}

/// A new network namespace holds nothing but the loopback device.
#[test]
fn net_namespace_has_only_lo() {
    let fx = fixture();
    let out = fx.run(&["cat", "/proc/net/dev"]);
    out.expect_clean_success();
    // Two header lines, then `  name: counters...` per interface.
    let names: Vec<&str> = out
        .stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .collect();
    assert_eq!(names, ["lo"], "{}", out.dump());
}

/// The network namespace ns-exec makes beside the clone is the container's: its `/sys` (mounted
/// after joining it) lists only the loopback device, like `/proc/net/dev`, and it is not the
/// host's.
#[test]
fn sys_shows_the_network_namespace_made_beside_the_clone() {
    let fx = fixture();
    let out = fx.run(&[
        "/bin/sh",
        "-c",
        "ls /sys/class/net && readlink /proc/self/ns/net",
    ]);
    out.expect_clean_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"lo"), "{}", out.dump());
    assert_eq!(lines.len(), 2, "{}", out.dump());
    let host = fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(lines[1], host.to_string_lossy(), "{}", out.dump());
}

// --- the host stays untouched ----------------------------------------------------------------

/// The host's mount table (mount points and types) is the same after a good run, after a run
/// whose command fails, after a command that is not found, and after a setup step fails (a bind
/// mount of a missing host path).
#[test]
fn host_mount_table_is_unchanged_after_runs() {
    let fx = fixture();
    let before = Snapshot::take();

    fx.run(&["true"]).expect_clean_success();
    assert_eq!(
        Snapshot::take().diff(&before),
        Vec::<String>::new(),
        "after a good run"
    );

    fx.run(&["/bin/sh", "-c", "exit 42"]).expect_code(42);
    assert_eq!(
        Snapshot::take().diff(&before),
        Vec::<String>::new(),
        "after exit 42"
    );

    fx.run(&["/bin/no-such-command"]).expect_code(127);
    assert_eq!(
        Snapshot::take().diff(&before),
        Vec::<String>::new(),
        "after a 127"
    );

    mkdir_in_rootfs(&fx, "/missing");
    let missing = fx.dir().join("does-not-exist");
    fx.edit_config(|c| c["mounts"] = json!([bind(&missing, "/missing", false)]));
    let out = fx.run(&["true"]);
    out.expect_code(125);
    out.error_line();
    assert_eq!(
        Snapshot::take().diff(&before),
        Vec::<String>::new(),
        "after a failed setup"
    );
}

/// Mounts the container makes stay in its own mount namespace even when the rootfs lies on a
/// mount with shared propagation (as `/` is on systemd hosts): nothing appears in the host's
/// table while the container runs, nor after it ended.
#[test]
fn mounts_do_not_propagate_from_a_shared_rootfs() {
    require_root();
    let fx = Fixture::on_shared_mount();
    let before = Snapshot::take();
    let mut running = fx.exec_with_pid_file(&["cat"]).stdin_pipe().spawn();
    running.wait_for_pid_file(&fx.pid_file());
    assert_eq!(
        mounts_under(&fx.rootfs()),
        Vec::<std::path::PathBuf>::new(),
        "container mounts propagated to the host while it runs"
    );
    assert_eq!(
        Snapshot::take().diff(&before),
        Vec::<String>::new(),
        "while running"
    );
    running.close_stdin();
    running.wait().expect_clean_success();
    assert_eq!(
        Snapshot::take().diff(&before),
        Vec::<String>::new(),
        "after the run"
    );
}

/// Processes the command leaves running in the background die with the container: after
/// ns-exec returned, no process of the container's pid namespace exists on the host.
#[test]
fn background_processes_die_with_the_container() {
    let fx = fixture();
    let script = "readlink /proc/self/ns/pid; \
                  sleep 100 </dev/null >/dev/null 2>&1 & \
                  (setsid sleep 100 </dev/null >/dev/null 2>&1 &); \
                  exit 0";
    let out = fx.run(&["/bin/sh", "-c", script]);
    out.expect_clean_success();
    let ns = out.stdout.trim();
    assert!(ns.starts_with("pid:["), "{}", out.dump());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = pids_in_pid_namespace(ns);
        if left.is_empty() {
            break;
        }
        if std::time::Instant::now() >= deadline {
            for pid in &left {
                if let Some(p) = ns_tests::ProcId::of(*pid) {
                    fx.track(p);
                }
            }
            panic!("processes of {ns} outlived the container: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// --- filesystem ------------------------------------------------------------------------------

/// `readonly_fs: true` makes the root filesystem read-only: `touch /x` fails with the command's
/// own non-zero status, and nothing appears in the rootfs.
#[test]
fn readonly_fs_refuses_writes() {
    let fx = fixture();
    fx.edit_config(|c| c["readonly_fs"] = json!(true));
    let out = fx.run(&["touch", "/x"]);
    let code = out.code();
    assert!(
        code != 0 && !(125..=127).contains(&code),
        "expected touch's own failure status\n{}",
        out.dump()
    );
    assert!(!fx.rootfs().join("x").exists(), "/x was created");
}

/// Bind mounts follow `writable`: the container reads a read-only bind's host files but cannot
/// write there, and its writes to a writable bind reach the host directory.
#[test]
fn bind_mounts_follow_writable() {
    let fx = fixture();
    let ro = fx.mkdir("host-ro");
    let rw = fx.mkdir("host-rw");
    fs::write(ro.join("hello"), "from-host\n").unwrap();
    mkdir_in_rootfs(&fx, "/ro");
    mkdir_in_rootfs(&fx, "/rw");
    fx.edit_config(|c| c["mounts"] = json!([bind(&ro, "/ro", false), bind(&rw, "/rw", true)]));
    let script = "cat /ro/hello; touch /rw/ran; touch /ro/nope 2>/dev/null && echo ro-writable; \
                  exit 0";
    let out = fx.run(&["/bin/sh", "-c", script]);
    out.expect_clean_success();
    assert_eq!(out.stdout, "from-host\n", "{}", out.dump());
    assert!(
        rw.join("ran").exists(),
        "write to the writable bind did not reach the host"
    );
    assert!(!ro.join("nope").exists(), "the read-only bind was writable");
}

/// The `/proc` files that restrictions mask (the ones every runtime masks), as far as this
/// kernel has them: a kernel without `CONFIG_PROC_KCORE` has no `/proc/kcore` to mask.
fn maskable_proc_files() -> Vec<&'static str> {
    ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
        .into_iter()
        .filter(|p| std::path::Path::new(p).exists())
        .collect()
}

/// With `restrictions` on (the default), `/proc/sys` is mounted read-only and `/proc/kcore`,
/// `/proc/keys` and `/proc/timer_list` (those this kernel has) are each covered by a mount.
#[test]
fn restrictions_mask_proc() {
    let fx = fixture();
    let out = fx.run(&["cat", "/proc/self/mountinfo"]);
    out.expect_clean_success();
    let sys = mount_options(&out.stdout, "/proc/sys")
        .unwrap_or_else(|| panic!("no mount on /proc/sys\n{}", out.dump()));
    assert!(
        sys.split(',').any(|o| o == "ro"),
        "/proc/sys is not read-only ({sys})\n{}",
        out.dump()
    );
    for path in maskable_proc_files() {
        assert!(
            mount_options(&out.stdout, path).is_some(),
            "{path} is not masked\n{}",
            out.dump()
        );
    }
}

/// `restrictions: false` leaves `/proc` as mounted: no mount on `/proc/sys` or on the files
/// restrictions would mask.
#[test]
fn restrictions_off_leaves_proc_alone() {
    let fx = fixture();
    fx.edit_config(|c| c["restrictions"] = json!(false));
    let out = fx.run(&["cat", "/proc/self/mountinfo"]);
    out.expect_clean_success();
    for path in std::iter::once("/proc/sys").chain(maskable_proc_files()) {
        assert!(
            mount_options(&out.stdout, path).is_none(),
            "{path} has a mount\n{}",
            out.dump()
        );
    }
}

/// The per-mount options of the mount on `point` in a mountinfo text (the last one wins).
fn mount_options<'a>(mountinfo: &'a str, point: &str) -> Option<&'a str> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(4) == Some(&point)).then(|| *f.get(5).unwrap_or(&""))
        })
        .next_back()
}

// --- process state handed to the command -----------------------------------------------------

/// The command's capability sets are the keep-list and nothing else: effective, permitted and
/// bounding equal its mask exactly; inheritable and ambient are empty.
#[test]
fn capabilities_are_exactly_the_keep_list() {
    let fx = fixture();
    let out = fx.run(&["cat", "/proc/self/status"]);
    out.expect_clean_success();
    let want = cap_mask_hex(&DEFAULT_CAPS);
    assert_eq!(want, "00000000880425eb");
    for (key, value) in [
        ("CapEff", want.as_str()),
        ("CapPrm", want.as_str()),
        ("CapBnd", want.as_str()),
        ("CapInh", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
    ] {
        assert_eq!(
            status_field(&out.stdout, key),
            Some(value),
            "{key}\n{}",
            out.dump()
        );
    }
}

/// The command starts with no signal blocked or ignored and no handler installed, even when
/// ns-exec's caller left signals ignored (SIGPIPE, SIGCHLD, glibc's 32 and 33, a real-time one)
/// and blocked (SIGTERM among them): dispositions set to `SIG_IGN` and the mask survive
/// `execve`, so ns-exec and ns-init must reset every signal, not only the ones `nix` names.
#[test]
fn signal_state_is_clean() {
    let fx = fixture();
    let out = fx
        .exec(&["cat", "/proc/self/status"])
        .with_hostile_signals()
        .run();
    out.expect_clean_success();
    for key in ["SigBlk", "SigIgn", "SigCgt"] {
        assert_eq!(
            status_field(&out.stdout, key),
            Some("0000000000000000"),
            "{key}\n{}",
            out.dump()
        );
    }
}

/// `no_new_privileges: true` sets the no_new_privs bit on the command.
#[test]
fn no_new_privileges_is_set_when_asked() {
    let fx = fixture();
    fx.edit_config(|c| c["no_new_privileges"] = json!(true));
    let out = fx.run(&["cat", "/proc/self/status"]);
    out.expect_clean_success();
    assert_eq!(
        status_field(&out.stdout, "NoNewPrivs"),
        Some("1"),
        "{}",
        out.dump()
    );
}

/// Parses `id -u; id -g; id -G` output into (uid, gid, groups).
fn ids(out: &ns_tests::Output) -> (u32, u32, Vec<u32>) {
    let lines: Vec<&str> = out.stdout.lines().collect();
    let num = |s: &str| -> u32 {
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}", out.dump()))
    };
    assert_eq!(lines.len(), 3, "{}", out.dump());
    let groups = lines[2].split_whitespace().map(num).collect();
    (num(lines[0]), num(lines[1]), groups)
}

/// `user: "user"` is looked up in the container's `/etc/passwd` and `/etc/group`: uid 1000, gid
/// 1000, supplementary groups wheel (10) and users (100), and none of the host's (no 0).
#[test]
fn user_by_name_gets_its_ids_and_groups() {
    let fx = fixture();
    fx.edit_config(|c| c["user"] = json!("user"));
    let out = fx.run(&["/bin/sh", "-c", "id -u; id -g; id -G"]);
    out.expect_clean_success();
    let (uid, gid, groups) = ids(&out);
    assert_eq!((uid, gid), (1000, 1000), "{}", out.dump());
    assert!(
        groups.contains(&10) && groups.contains(&100),
        "{}",
        out.dump()
    );
    assert!(
        groups.iter().all(|g| [10, 100, 1000].contains(g)),
        "{}",
        out.dump()
    );
}

/// `user: "1000:100"` sets those numbers as uid and gid, and the host's groups (root's 0) do
/// not reach the command.
#[test]
fn user_by_numbers_gets_uid_and_gid() {
    let fx = fixture();
    fx.edit_config(|c| c["user"] = json!("1000:100"));
    let out = fx.run(&["/bin/sh", "-c", "id -u; id -g; id -G"]);
    out.expect_clean_success();
    let (uid, gid, groups) = ids(&out);
    assert_eq!((uid, gid), (1000, 100), "{}", out.dump());
    assert!(!groups.contains(&0), "host group 0 leaked\n{}", out.dump());
}

/// The command's environment is the configured one: every `environment` entry is there, and
/// nothing from ns-exec's own environment (cargo's `CARGO*`, a marker the test sets, or any
/// `NS_*` handoff variable) is.
#[test]
fn environment_is_the_configured_one() {
    let fx = fixture();
    let out = fx
        .exec(&["env"])
        .env("NS_TESTS_HOST_MARKER", "must-not-leak")
        .env("CARGO_NS_TESTS_MARKER", "must-not-leak")
        .run();
    out.expect_clean_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for entry in DEFAULT_ENV {
        assert!(lines.contains(&entry), "{entry} missing\n{}", out.dump());
    }
    for line in &lines {
        assert!(
            !line.starts_with("CARGO") && !line.starts_with("NS_"),
            "host variable leaked: {line}\n{}",
            out.dump()
        );
    }
}

/// `working_dir` is the command's current directory.
#[test]
fn working_dir_is_the_cwd() {
    let fx = fixture();
    fx.edit_config(|c| c["working_dir"] = json!("/tmp"));
    let out = fx.run(&["pwd"]);
    out.expect_clean_success();
    assert_eq!(out.stdout, "/tmp\n", "{}", out.dump());
}

/// Only stdin, stdout and stderr are open in the container, even when ns-exec's caller leaked
/// a non-close-on-exec fd (7). The shell lists its own fds while `ls` runs as its child, so the
/// directory fd `ls` opens is not counted.
#[test]
fn only_stdio_fds_reach_the_command() {
    let fx = fixture();
    let out = fx
        .exec(&["/bin/sh", "-c", "ls /proc/$$/fd; :"])
        .with_inherited_fd(7)
        .run();
    out.expect_clean_success();
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2"], "{}", out.dump());
}

/// With its stdin closed by the caller (`<&-`), ns-exec puts /dev/null there before it opens
/// anything (as Rust's start-up would have; ns-exec skips that start-up), so none of its own
/// fds takes number 0: the command gets fds 0, 1 and 2, and 0 is /dev/null.
#[test]
fn a_closed_stdin_is_dev_null_in_the_container() {
    let fx = fixture();
    let out = ns_tests::Invocation::new("/bin/sh")
        .arg("-c")
        .arg("exec \"$@\" <&-")
        .arg("sh")
        .arg(ns_tests::bin("ns-exec"))
        .arg("--config")
        .arg(fx.config_path())
        .arg("--root")
        .arg(fx.state_root())
        .arg("--")
        .args(["/bin/sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/fd/0; :"])
        .run();
    out.expect_clean_success();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words, ["0", "1", "2", "/dev/null"], "{}", out.dump());
}

/// The same for the ns-init program run alone under unshare (as a script runs it): with its
/// stdin closed it opens `/dev/null` there before anything else, so the config it reads does
/// not land on fd 0, and the command gets fds 0, 1 and 2, 0 being the null device (char 1:3;
/// the host's node, opened before the root switch, so its path shows outside the root).
#[test]
fn ns_init_alone_with_a_closed_stdin_gives_dev_null() {
    let fx = fixture();
    let out = ns_tests::Invocation::new("/bin/sh")
        .arg("-c")
        .arg("exec \"$@\" <&-")
        .arg("sh")
        .args([
            "unshare", "--mount", "--uts", "--ipc", "--pid", "--net", "--fork",
        ])
        .arg(ns_tests::bin("ns-init"))
        .arg("--config")
        .arg(fx.config_path())
        .arg("--")
        .args([
            "/bin/sh",
            "-c",
            "ls /proc/$$/fd; stat -L -c %t:%T /proc/$$/fd/0",
        ])
        .run();
    out.expect_clean_success();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words, ["0", "1", "2", "1:3"], "{}", out.dump());
}

// --- stdio, exit status and signals ------------------------------------------------------------

/// The command's exit status is ns-exec's exit status.
#[test]
fn exit_status_passes_through() {
    let fx = fixture();
    fx.run(&["/bin/sh", "-c", "exit 42"]).expect_code(42);
    fx.run(&["false"]).expect_code(1);
}

/// stdout and stderr are passed through, each to its own stream.
#[test]
fn stdout_and_stderr_pass_through() {
    let fx = fixture();
    let out = fx.run(&["/bin/sh", "-c", "echo out; echo err >&2"]);
    out.expect_code(0);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n"),
        "{}",
        out.dump()
    );
}

/// Input on ns-exec's stdin reaches the command, and so does its end (EOF): `cat` copies it
/// and exits 0.
#[test]
fn stdin_and_its_eof_reach_the_command() {
    let fx = fixture();
    let out = fx.exec(&["cat"]).stdin_bytes(b"hello\n").run();
    out.expect_clean_success();
    assert_eq!(out.stdout, "hello\n", "{}", out.dump());
}

/// A command killed by SIGKILL makes ns-exec exit 128 + 9 = 137.
#[test]
fn sigkill_of_the_command_gives_137() {
    let fx = fixture();
    let mut running = fx.exec_with_pid_file(&["sleep", "100"]).spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    assert!(container.wait_running("sleep", Duration::from_secs(10)));
    container.kill();
    running.wait().expect_code(137);
}

/// SIGTERM sent to ns-exec is forwarded to the command, whose handler runs and decides the
/// exit status.
#[test]
fn sigterm_is_forwarded() {
    let fx = fixture();
    let script = r#"trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done"#;
    let mut running = fx.exec(&["/bin/sh", "-c", script]).spawn();
    running.wait_for_stdout("ready");
    running.signal(Signal::SIGTERM);
    let out = running.wait();
    out.expect_code(3);
    assert!(out.stdout.contains("got-term"), "{}", out.dump());
}

/// Each of SIGHUP, SIGINT, SIGQUIT, SIGUSR1 and SIGUSR2 sent to ns-exec reaches the command,
/// and ns-exec keeps running until the command ends.
#[test]
fn every_forwarded_signal_reaches_the_command() {
    let fx = fixture();
    let script = r#"for s in HUP INT QUIT USR1 USR2; do trap "echo got-$s" $s; done
trap "echo got-TERM; exit 3" TERM
echo ready
while :; do sleep 0.1; done"#;
    let mut running = fx.exec(&["/bin/sh", "-c", script]).spawn();
    running.wait_for_stdout("ready");
    for (sig, name) in [
        (Signal::SIGHUP, "HUP"),
        (Signal::SIGINT, "INT"),
        (Signal::SIGQUIT, "QUIT"),
        (Signal::SIGUSR1, "USR1"),
        (Signal::SIGUSR2, "USR2"),
    ] {
        running.signal(sig);
        running.wait_for_stdout(&format!("got-{name}\n"));
    }
    running.signal(Signal::SIGTERM);
    running.wait().expect_code(3);
}

/// The pid file holds the container process's host pid (it is pid 1 of another pid namespace)
/// while the container runs, and is gone once ns-exec returned.
#[test]
fn pid_file_exists_exactly_while_running() {
    let fx = fixture();
    let mut running = fx.exec_with_pid_file(&["cat"]).stdin_pipe().spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    let status = fs::read_to_string(format!("/proc/{}/status", container.pid)).unwrap();
    let nspid = status_field(&status, "NSpid").unwrap_or("");
    assert_eq!(nspid.split_whitespace().last(), Some("1"), "NSpid: {nspid}");
    assert_ne!(
        host_link(&format!("/proc/{}/ns/pid", container.pid)),
        host_link("/proc/self/ns/pid")
    );
    running.close_stdin();
    running.wait().expect_clean_success();
    assert!(!fx.pid_file().exists(), "pid file left after the run");
    assert!(
        container.wait_gone(Duration::from_secs(5)),
        "container process still exists"
    );
}

// --- entering a running container ----------------------------------------------------------

/// `ns-exec enter --root R NAME -- CMD` runs CMD in every namespace of the running container
/// (its namespace links equal the container process's, read from the host), sees the
/// container's hostname, and passes CMD's exit status through. Once the container is gone,
/// entering it fails with 125 and one line naming it.
#[test]
fn enter_runs_in_the_running_containers_namespaces() {
    let fx = fixture();
    let mut running = fx
        .exec_with_pid_file(&["sh", "-c", "echo READY; exec sleep 100"])
        .spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    // The pid file exists from before the setup: wait until the command runs.
    running.wait_for_stdout("READY");

    let out = fx.enter(&["hostname"]).run();
    out.expect_clean_success();
    assert_eq!(
        out.stdout,
        format!("{DEFAULT_HOSTNAME}\n"),
        "{}",
        out.dump()
    );

    let kinds = ["uts", "ipc", "net", "mnt", "pid"];
    let script = "for n in uts ipc net mnt pid; do readlink /proc/self/ns/$n; done";
    let out = fx.enter(&["/bin/sh", "-c", script]).run();
    out.expect_clean_success();
    let inside: Vec<&str> = out.stdout.lines().collect();
    let outside: Vec<String> = kinds
        .iter()
        .map(|k| host_link(&format!("/proc/{}/ns/{k}", container.pid)))
        .collect();
    assert_eq!(inside, outside, "{}", out.dump());

    fx.enter(&["/bin/sh", "-c", "exit 7"]).run().expect_code(7);

    container.kill();
    running.wait().expect_code(137);
    let out = fx.enter(&["true"]).run();
    out.expect_code(125);
    let line = out.error_line();
    assert!(
        line.contains(fx.name()),
        "the error does not name the container\n{}",
        out.dump()
    );
}

/// A process started by `ns-exec enter` lands in every cgroup of the container (the same
/// `/proc/self/cgroup` as the container's first process), so it is held to the container's
/// limits like any process of it.
#[test]
fn enter_joins_the_containers_cgroups() {
    let fx = fixture();
    fx.edit_config(|c| c["cgroups"] = json!({"pids_max": 40, "memory": "64m"}));
    let mut running = fx
        .exec_with_pid_file(&["sh", "-c", "echo READY; exec sleep 100"])
        .spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    running.wait_for_stdout("READY");
    let expected = fs::read_to_string(format!("/proc/{}/cgroup", container.pid)).unwrap();
    assert!(expected.contains(fx.name()), "{expected}");
    let out = fx.enter(&["cat", "/proc/self/cgroup"]).run();
    out.expect_clean_success();
    assert_eq!(out.stdout, expected, "{}", out.dump());
    container.kill();
    running.wait().expect_code(137);
}

/// `ns-exec --root R --name NAME -- CMD` with NAME running enters it instead of starting a
/// second container.
#[test]
fn run_with_the_name_of_a_running_container_enters_it() {
    let fx = fixture();
    let mut running = fx.exec_with_pid_file(&["sleep", "100"]).spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    let out = fx.run(&["readlink", "/proc/self/ns/uts"]);
    out.expect_clean_success();
    assert_eq!(
        out.stdout.trim(),
        host_link(&format!("/proc/{}/ns/uts", container.pid)),
        "{}",
        out.dump()
    );
    container.kill();
    running.wait().expect_code(137);
}

/// Killing ns-exec itself (SIGKILL, no chance to clean up) takes the container down with it,
/// and the state it left is reported as stale by `enter` (125, one line naming the container),
/// never joined.
#[test]
fn killing_ns_exec_kills_the_container_and_enter_reports_stale_state() {
    let fx = fixture();
    fx.allow_state_left();
    let mut running = fx.exec_with_pid_file(&["sleep", "100"]).spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    running.signal(Signal::SIGKILL);
    let out = running.wait();
    assert_eq!(out.status.signal(), Some(9), "{}", out.dump());
    assert!(
        container.wait_gone(Duration::from_secs(5)),
        "the container outlived ns-exec"
    );
    let out = fx.enter(&["true"]).run();
    out.expect_code(125);
    let line = out.error_line();
    assert!(
        line.contains(fx.name()),
        "the error does not name the container\n{}",
        out.dump()
    );
    // A pid file ns-exec had no chance to remove is stale, like the state.
    let _ = fs::remove_file(fx.pid_file());
    // A new run of that name replaces the stale state (saying so) and cleans up after itself.
    let out = fx.run(&["echo", "fresh"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "fresh\n", "{}", out.dump());
    assert!(out.stderr.contains("stale"), "{}", out.dump());
    let entries = fs::read_dir(fx.state_root())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(entries, 0, "the state dir has an entry");
}

/// `enter` runs the command as the container's configured user, with its environment and
/// working directory and its capability sets, not as the caller.
#[test]
fn enter_applies_the_containers_identity() {
    let fx = fixture();
    fx.edit_config(|c| {
        c["user"] = json!("user");
        c["working_dir"] = json!("/tmp");
    });
    let mut running = fx.exec_with_pid_file(&["sleep", "100"]).spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    let script =
        "id -u; id -g; pwd; echo $container; grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status";
    let out = fx.enter(&["/bin/sh", "-c", script]).run();
    out.expect_clean_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        ["1000", "1000", "/tmp", "ns-tools"],
        "{}",
        out.dump()
    );
    assert!(
        lines[4].ends_with(&ns_tests::cap_mask_hex(&DEFAULT_CAPS)),
        "{}",
        out.dump()
    );
    container.kill();
    running.wait().expect_code(137);
}

// --- setup failures and options -----------------------------------------------------------

/// A setup step that fails inside the container reaches the caller as one `ns-init:` line with
/// the step and the cause, status 125, and nothing runs or is left behind: here a rootfs whose
/// `/proc` is a symlink to a host directory (CVE-2019-19921's class), which must not be
/// mounted over.
#[test]
fn rootfs_with_a_symlinked_proc_is_refused_by_ns_init() {
    let fx = fixture();
    let canary = fx.mkdir("canary");
    let proc_dir = fx.rootfs().join("proc");
    fs::remove_dir(&proc_dir).unwrap();
    std::os::unix::fs::symlink(&canary, &proc_dir).unwrap();
    let out = fx.run(&["true"]);
    out.expect_code(125);
    let line = out.error_line();
    assert!(line.starts_with("ns-init: "), "{}", out.dump());
    assert!(line.contains("/proc"), "{}", out.dump());
    assert_eq!(
        fs::read_dir(&canary).unwrap().count(),
        0,
        "the host canary was touched"
    );
}

/// A user the container's `/etc/passwd` does not have is an error from ns-init, naming it.
#[test]
fn unknown_user_is_refused_by_ns_init() {
    let fx = fixture();
    fx.edit_config(|c| c["user"] = json!("nosuchuser"));
    let out = fx.run(&["true"]);
    out.expect_code(125);
    let line = out.error_line();
    assert!(
        line.starts_with("ns-init: ") && line.contains("nosuchuser"),
        "{}",
        out.dump()
    );
}

/// A bind destination that is a symlink to an absolute path is resolved inside the rootfs:
/// the mount lands on the rootfs's own directory of that name and the host directory the link
/// names is untouched (CVE-2021-30465's class). Where the link points nowhere inside the
/// rootfs, the run is refused with one line naming the destination, rather than creating
/// anything through the link.
#[test]
fn symlinked_bind_destination_stays_inside_the_rootfs() {
    let fx = fixture();
    let canary = fx.mkdir("canary");
    let source = fx.mkdir("source");
    fs::write(source.join("hello"), "bound\n").unwrap();
    std::os::unix::fs::symlink(&canary, fx.rootfs().join("data")).unwrap();
    fx.edit_config(|c| c["mounts"] = json!([bind(&source, "/data", false)]));

    let out = fx.run(&["cat", "/data/hello"]);
    out.expect_code(125);
    assert!(
        out.error_line().starts_with("ns-init: ") && out.error_line().contains("/data"),
        "{}",
        out.dump()
    );
    assert_eq!(
        fs::read_dir(&canary).unwrap().count(),
        0,
        "the host canary was touched"
    );

    let inside = fx.rootfs().join(canary.strip_prefix("/").unwrap());
    fs::create_dir_all(&inside).unwrap();
    let out = fx.run(&["cat", "/data/hello"]);
    out.expect_clean_success();
    assert_eq!(out.stdout, "bound\n", "{}", out.dump());
    assert_eq!(
        fs::read_dir(&canary).unwrap().count(),
        0,
        "the host canary was touched"
    );
}

/// `device_nodes` are created with their type, numbers, mode and owner (the default nodes
/// 0:0, which mknod gives them as it is; another owner by chown), and a config `tmpfs` mount
/// gets its size.
#[test]
fn device_nodes_and_tmpfs_mounts() {
    let fx = fixture();
    fx.edit_config(|c| {
        c["device_nodes"] = json!([
            {"type": "c", "path": "/dev/fuse", "major_number": 10, "minor_number": 229,
             "file_mode": 384},
            {"type": "c", "path": "/dev/net/tun", "major_number": 10, "minor_number": 200,
             "uid": 1000, "gid": 1001}
        ]);
        c["mounts"] = json!([{"type": "tmpfs", "destination": "/scratch", "size": "1m"}]);
    });
    let script = "stat -c '%F %t:%T %a %u:%g' /dev/fuse /dev/net/tun /dev/null; \
                  grep ' /scratch ' /proc/self/mountinfo";
    let out = fx.run(&["/bin/sh", "-c", script]);
    out.expect_clean_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "character special file a:e5 600 0:0",
            "character special file a:c8 666 1000:1001",
            "character special file 1:3 666 0:0"
        ],
        "{}",
        out.dump()
    );
    assert!(
        lines[3].contains(" - tmpfs ") && lines[3].contains("size=1024k"),
        "{}",
        out.dump()
    );
}

/// With `no_pivot_root` the root is switched by move + chroot: the container sees its own
/// tree, and the host's mount table is unchanged after the run (checked by the fixture).
#[test]
fn no_pivot_root_switches_root_by_move_and_chroot() {
    let fx = fixture();
    fx.edit_config(|c| c["no_pivot_root"] = json!(true));
    fs::write(fx.rootfs().join("marker"), "inside\n").unwrap();
    let out = fx.run(&["/bin/sh", "-c", "cat /marker; echo $$"]);
    out.expect_clean_success();
    assert_eq!(out.stdout, "inside\n1\n", "{}", out.dump());
}

/// `--log FILE` gets one line per step from both ns-exec and ns-init, in one file.
#[test]
fn log_file_records_both_stages() {
    let fx = fixture();
    let log = fx.dir().join("run.log");
    let out = fx
        .ns_exec()
        .arg("--config")
        .arg(fx.config_path())
        .arg("--root")
        .arg(fx.state_root())
        .arg("--name")
        .arg(fx.name())
        .arg("--log")
        .arg(&log)
        .args(["--", "true"])
        .run();
    out.expect_clean_success();
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains(" ns-exec["), "{text}");
    assert!(text.contains(" ns-init["), "{text}");
    assert!(text.contains("container exited with status 0"), "{text}");
}

// --- exec failures ---------------------------------------------------------------------------

/// A command that does not exist, by path or by `PATH` lookup, gives 127 and one line on stderr
/// naming it.
#[test]
fn missing_command_gives_127() {
    let fx = fixture();
    for cmd in ["/bin/no-such-command", "no-such-command"] {
        let out = fx.run(&[cmd]);
        out.expect_code(127);
        let line = out.error_line();
        assert!(
            line.contains(cmd),
            "the error does not name {cmd}\n{}",
            out.dump()
        );
    }
}

/// A directory as the command gives 126 and one line on stderr naming it.
#[test]
fn directory_as_command_gives_126() {
    let fx = fixture();
    let out = fx.run(&["/tmp"]);
    out.expect_code(126);
    let line = out.error_line();
    assert!(
        line.contains("/tmp"),
        "the error does not name /tmp\n{}",
        out.dump()
    );
}

// --- bad configs -------------------------------------------------------------------------------

/// Runs a command that would leave a file in a bind-mounted host directory, with `edit` applied
/// to an otherwise good config, and checks the run is refused: 125, one `ns-exec:` line naming
/// `path`, no output, no file, no pid file, no state entry.
fn assert_config_rejected(edit: impl FnOnce(&mut Value), path: &str) {
    let fx = fixture();
    let probe = fx.mkdir("probe");
    mkdir_in_rootfs(&fx, "/probe");
    fx.edit_config(|c| {
        c["mounts"] = json!([bind(&probe, "/probe", true)]);
        edit(c);
    });
    let out = fx
        .exec_with_pid_file(&["/bin/sh", "-c", "touch /probe/ran"])
        .run();
    out.expect_code(125);
    let line = out.error_line();
    assert!(line.starts_with("ns-exec: "), "{}", out.dump());
    assert!(
        line.contains(path),
        "the error does not name {path}\n{}",
        out.dump()
    );
    assert!(out.stdout.is_empty(), "{}", out.dump());
    assert!(
        !probe.join("ran").exists(),
        "the command ran despite the bad config"
    );
    assert!(!fx.pid_file().exists(), "a pid file was written");
    let entries = fs::read_dir(fx.state_root())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(entries, 0, "the state dir has an entry");
}

/// An unknown namespace name is refused before anything runs, naming `namespaces[1]`.
#[test]
fn unknown_namespace_is_rejected() {
    assert_config_rejected(
        |c| c["namespaces"] = json!(["NEWNS", "NEWFOO"]),
        "namespaces[1]",
    );
}

/// A misspelt key is refused before anything runs, naming the key.
#[test]
fn unknown_key_is_rejected() {
    assert_config_rejected(|c| c["hostnmae"] = json!("x"), "hostnmae");
}

/// A malformed size is refused before anything runs, naming `cgroups.memory`.
#[test]
fn bad_memory_size_is_rejected() {
    assert_config_rejected(|c| c["cgroups"] = json!({"memory": "5x"}), "cgroups.memory");
}

// --- hardening and fault injection --------------------------------------------------------------

/// With `--init` (here `$NS_INIT`), ns-exec execs that ns-init inside the container from a
/// read-only view of its file, never from a writable one (CVE-2019-5736): a handle on
/// `/proc/PID/exe` grabbed while ns-init runs (as a container process could) cannot be
/// reopened for writing once ns-init is gone (`EROFS`: the view is a read-only mount), and the
/// host's ns-init is unchanged. ns-dmz, which every command is exec'd through by default, is
/// protected by the same function, as a sealed copy (`mount_api::protected_program`, whose unit
/// test checks both forms).
#[test]
fn an_explicit_ns_init_runs_from_a_read_only_view() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    let fx = fixture();
    let host_init = ns_tests::bin("ns-init");
    let before = fs::read(&host_init).unwrap();
    let mut running = fx
        .exec_with_pid_file(&["true"])
        .env("NS_INIT", &host_init)
        .env("NS_FAULT", "ns-init:before-exec:pause")
        .spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    // The pid file is written before `go`: wait until ns-init has taken its steps.
    assert!(
        container.wait_paused(Duration::from_secs(10)),
        "ns-init did not pause before its exec"
    );
    let exe = format!("/proc/{}/exe", container.pid);
    let grabbed = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&exe)
        .unwrap();
    container.kill();
    running.wait().expect_code(137);
    let err = fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", grabbed.as_raw_fd()))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert!(
        fs::read(&host_init).unwrap() == before,
        "the host's ns-init changed"
    );
}

/// By default the container's first process runs ns-init's code inside ns-exec, so until its
/// exec `/proc/PID/exe` names the host's ns-exec. It is non-dumpable for that time: a process
/// with the container's capabilities but not CAP_SYS_PTRACE (a process of another container
/// sharing the host's pid namespace, say) cannot open the link, while the same process can
/// open a running container command's (the control: dumpable, the same capabilities).
#[test]
fn the_built_in_init_is_not_dumpable_before_its_exec() {
    let fx = fixture();
    let open_exe = |pid: i32| {
        ns_tests::Invocation::new("setpriv")
            .arg("--bounding-set=-sys_ptrace")
            .arg("--inh-caps=-all")
            .arg("--")
            .arg("cat")
            .arg(format!("/proc/{pid}/exe"))
            .run()
    };
    // Paused after the identity step: the default capabilities, just before the exec.
    let mut running = fx
        .exec_with_pid_file(&["true"])
        .env("NS_FAULT", "ns-init:before-exec:pause")
        .spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    assert!(
        container.wait_paused(Duration::from_secs(10)),
        "ns-init did not pause before its exec"
    );
    let out = open_exe(container.pid);
    assert_ne!(out.code(), 0, "{}", out.dump());
    assert!(out.stderr.contains("Permission denied"), "{}", out.dump());
    container.kill();
    running.wait().expect_code(137);

    let mut running = fx
        .exec_with_pid_file(&["sh", "-c", "echo READY; exec sleep 100"])
        .spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    running.wait_for_stdout("READY");
    let control = open_exe(container.pid);
    assert_eq!(control.code(), 0, "{}", control.dump());
    container.kill();
    running.wait().expect_code(137);
}

/// A command that re-enters `/proc/self/exe` (here by naming it; a `#!/proc/self/exe` script
/// is the attack of CVE-2019-5736) reaches ns-dmz, which says so and exits 126, never ns-exec
/// or ns-init: in a new container and in an entered one.
#[test]
fn a_command_reentering_proc_self_exe_reaches_ns_dmz() {
    let fx = fixture();
    fs::write(fx.rootfs().join("reenter.sh"), "#!/proc/self/exe\n").unwrap();
    fs::set_permissions(
        fx.rootfs().join("reenter.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for cmd in ["/proc/self/exe", "/reenter.sh"] {
        let out = fx.run(&[cmd]);
        out.expect_code(126);
        assert!(out.stderr.starts_with("ns-dmz: usage:"), "{}", out.dump());
    }
    let mut running = fx
        .exec_with_pid_file(&["sh", "-c", "echo READY; exec sleep 100"])
        .spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    running.wait_for_stdout("READY");
    for cmd in ["/proc/self/exe", "/reenter.sh"] {
        let out = fx.enter(&[cmd]).run();
        out.expect_code(126);
        assert!(out.stderr.starts_with("ns-dmz: usage:"), "{}", out.dump());
    }
    container.kill();
    running.wait().expect_code(137);
}

/// An exec that fails only in ns-dmz's `execve` (a file that exists and is executable but is
/// no program: ENOEXEC; a script whose interpreter is missing: ENOENT) is reported as ns-init
/// reports any exec failure: one line naming the command and the cause, and 126 or 127; for
/// an entered container too.
#[test]
fn an_exec_failing_in_ns_dmz_is_reported_as_the_commands() {
    let fx = fixture();
    for (name, text) in [
        ("garbage", "garbage\n"),
        ("nointerp", "#!/no/such/interpreter\n"),
    ] {
        let path = fx.rootfs().join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let check = |out: &ns_tests::Output, cmd: &str, code: i32, cause: &str| {
        out.expect_code(code);
        let line = out.error_line();
        assert!(line.contains(&format!("exec \"{cmd}\"")), "{}", out.dump());
        assert!(line.contains(cause), "{}", out.dump());
    };
    check(&fx.run(&["/garbage"]), "/garbage", 126, "Exec format error");
    check(
        &fx.run(&["/nointerp"]),
        "/nointerp",
        127,
        "No such file or directory",
    );
    let mut running = fx
        .exec_with_pid_file(&["sh", "-c", "echo READY; exec sleep 100"])
        .spawn();
    let container = running.wait_for_pid_file(&fx.pid_file());
    running.wait_for_stdout("READY");
    check(
        &fx.enter(&["/garbage"]).run(),
        "/garbage",
        126,
        "Exec format error",
    );
    check(
        &fx.enter(&["/nointerp"]).run(),
        "/nointerp",
        127,
        "No such file or directory",
    );
    container.kill();
    running.wait().expect_code(137);
}

/// A step that fails at any point between clone and exec (injected with `NS_FAULT`) gives 125
/// and one line naming the stage and the step, and leaves nothing behind (the fixture checks
/// mounts, processes, state and pid files).
#[test]
fn a_failure_at_any_setup_step_cleans_up() {
    for (stage, step) in [
        ("ns-init", "cloned"),
        ("ns-exec", "netns"),
        ("ns-exec", "before-go"),
        ("ns-init", "after-go"),
        ("ns-init", "after-rootfs"),
        ("ns-init", "before-exec"),
    ] {
        let fx = fixture();
        let out = fx
            .exec_with_pid_file(&["true"])
            .env("NS_FAULT", format!("{stage}:{step}:fail"))
            .run();
        out.expect_code(125);
        assert!(
            out.error_line()
                .starts_with(&format!("{stage}: {step}: failure injected")),
            "{}",
            out.dump()
        );
        assert!(!fx.pid_file().exists(), "the pid file was left");
    }
}

/// The container's first process runs ns-exec's code in ns-exec's memory until its exec
/// (spawn.rs), and may be killed at any point of that (by an OOM kill, by a user): ns-exec
/// must never be left waiting for it, nor hang on anything it held. First the sharpest case:
/// killed before its first step (paused there with `ns-init:cloned:pause`), with no network
/// namespace for ns-exec to make meanwhile, so ns-exec is already waiting for its pid: 125,
/// and one line that says how it ended.
/// A panic in it (`panic`, before its first step and after its root filesystem) is one line
/// on stderr and 125, never a hang on the lock of ns-exec's standard error. Then killed at
/// spread-out moments of its setup, 60 times: every run ends with 0 (the command ran first),
/// 125 or 137, within the harness's time limit. Nothing is left behind (the fixture checks).
#[test]
fn killing_the_first_process_anywhere_in_its_setup_never_hangs_ns_exec() {
    let fx = fixture();
    let config = fx.config();
    fx.edit_config(|c| c["namespaces"] = json!(["NEWNS", "NEWUTS", "NEWIPC", "NEWPID"]));
    let children = |ns_exec: i32| -> Vec<i32> {
        fs::read_dir(format!("/proc/{ns_exec}/task"))
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
                    .flat_map(|text| {
                        text.split_whitespace()
                            .filter_map(|p| p.parse().ok())
                            .collect::<Vec<i32>>()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // A pid of ns-exec's own child, which it has not reaped: not reused meanwhile.
    let kill = |pid: i32| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    };
    for _ in 0..3 {
        let running = fx
            .exec(&["true"])
            .env("NS_FAULT", "ns-init:cloned:pause")
            .spawn();
        let paused = loop {
            if let Some(&pid) = children(running.pid()).first() {
                break pid;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        kill(paused);
        let out = running.wait();
        out.expect_code(125);
        assert_eq!(
            out.error_line(),
            "ns-exec: the container's first process: was killed by SIGKILL before it was ready",
            "{}",
            out.dump()
        );
    }
    fx.edit_config(|c| *c = config);
    for step in ["cloned", "after-rootfs"] {
        let out = fx
            .exec(&["true"])
            .env("NS_FAULT", format!("ns-init:{step}:panic"))
            .run();
        out.expect_code(125);
        let wanted = format!("ns-init: {step}: panic injected by NS_FAULT");
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("ns-init: internal error at ") && l.ends_with(&wanted)),
            "{}",
            out.dump()
        );
    }
    for i in 0..60u64 {
        let running = fx.exec(&["true"]).spawn();
        // 0 to 3 ms: from before the clone to after the command's exec.
        std::thread::sleep(Duration::from_micros(i * 50));
        children(running.pid()).into_iter().for_each(kill);
        let out = running.wait();
        assert!(
            matches!(out.code(), 0 | 125 | 137),
            "run {i}: {}",
            out.dump()
        );
    }
}

/// A name another live ns-exec holds while starting its container (its state directory with an
/// `owner` but no state yet) is refused with 125 and one line saying so. Without a cgroup the
/// name is claimed after the clone: the child cloned meanwhile is killed, nothing is left
/// behind, and the other run's directory is untouched.
#[test]
fn a_name_another_run_is_starting_is_refused_after_the_clone() {
    let fx = fixture();
    // The "other run": a process of ours, with its start time as ns-exec records it.
    let mut holder = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let start = ns_tests::proc_start_time(holder.id() as i32).unwrap();
    let held = fx.state_root().join(fx.name());
    fs::create_dir_all(&held).unwrap();
    let owner = format!("{} {start}\n", holder.id());
    fs::write(held.join("owner"), &owner).unwrap();

    let out = fx.exec_with_pid_file(&["true"]).run();
    out.expect_code(125);
    assert!(
        out.error_line().contains("another ns-exec is starting it"),
        "{}",
        out.dump()
    );
    assert!(!fx.pid_file().exists(), "a pid file was written");
    assert_eq!(fs::read_to_string(held.join("owner")).unwrap(), owner);
    let _ = holder.kill();
    let _ = holder.wait();
    fs::remove_dir_all(&held).unwrap();
}

/// With the open-files limit below the handoff fds (`ulimit -n 8`), ns-exec fails cleanly:
/// 125, one line that says too many files are open, and nothing left behind.
#[test]
fn a_tiny_open_files_limit_fails_cleanly() {
    let fx = fixture();
    let ns_exec = ns_tests::bin("ns-exec");
    let out = ns_tests::Invocation::new("/bin/sh")
        .current_dir(fx.dir())
        .arg("-c")
        .arg("ulimit -n 8 && exec \"$@\"")
        .arg("sh")
        .arg(&ns_exec)
        .arg("--config")
        .arg(fx.config_path())
        .arg("--root")
        .arg(fx.state_root())
        .arg("--name")
        .arg(fx.name())
        .args(["--", "true"])
        .run();
    out.expect_code(125);
    assert!(
        out.error_line().contains("Too many open files"),
        "{}",
        out.dump()
    );
    let entries = fs::read_dir(fx.state_root())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(entries, 0, "the state dir has an entry");
}

/// `ns-exec gc` removes exactly what a SIGKILLed ns-exec left behind (its state entry and pid
/// file), lists it first with `--dry-run` without removing it, never touches a running
/// container, and finds nothing the second time.
#[test]
fn gc_removes_what_a_killed_run_left() {
    let fx = fixture();
    let live_name = format!("{}-live", fx.name());
    let live_pid_file = fx.dir().join("live.pid");
    let mut live = fx
        .ns_exec()
        .arg("--config")
        .arg(fx.config_path())
        .arg("--root")
        .arg(fx.state_root())
        .arg("--name")
        .arg(&live_name)
        .arg("--pid-file")
        .arg(&live_pid_file)
        .args(["--", "sleep", "100"])
        .spawn();
    let live_container = live.wait_for_pid_file(&live_pid_file);

    let mut killed = fx.exec_with_pid_file(&["sleep", "100"]).spawn();
    let container = killed.wait_for_pid_file(&fx.pid_file());
    killed.signal(Signal::SIGKILL);
    killed.wait();
    assert!(
        container.wait_gone(Duration::from_secs(5)),
        "the container outlived ns-exec"
    );

    let gc = |extra: &[&str]| {
        fx.ns_exec()
            .arg("gc")
            .arg("--root")
            .arg(fx.state_root())
            .args(extra)
            .run()
    };
    let out = gc(&["--dry-run"]);
    out.expect_clean_success();
    assert_eq!(
        out.stdout,
        format!(
            "would remove {:?}: its container (pid {}) is gone\n",
            fx.name(),
            container.pid
        ),
        "{}",
        out.dump()
    );
    assert!(fx.state_root().join(fx.name()).exists() && fx.pid_file().exists());

    let out = gc(&[]);
    out.expect_clean_success();
    assert!(out.stdout.starts_with("removed "), "{}", out.dump());
    assert!(
        !fx.state_root().join(fx.name()).exists(),
        "the stale entry is still there"
    );
    assert!(!fx.pid_file().exists(), "the stale pid file is still there");
    assert!(
        fx.state_root().join(&live_name).exists(),
        "gc removed a running container"
    );
    assert!(
        live_pid_file.exists(),
        "gc removed a running container's pid file"
    );

    let out = gc(&[]);
    out.expect_clean_success();
    assert_eq!(out.stdout, "", "{}", out.dump());

    live_container.kill();
    live.wait().expect_code(137);
}

// --- bad input, table-driven ---------------------------------------------------------------------

/// One bad input: how to make it, and what the run must answer.
struct BadInput {
    what: &'static str,
    /// Changes the config (as JSON), or replaces the config file's text when it returns text.
    edit: fn(&Fixture, &mut Value) -> Option<Vec<u8>>,
    /// The command to run.
    cmd: fn() -> Vec<std::ffi::OsString>,
    code: i32,
    /// Text the single error line must contain.
    says: &'static str,
}

fn plain_cmd() -> Vec<std::ffi::OsString> {
    vec!["true".into()]
}

/// Every bad input gets its documented status and one line on stderr saying what is wrong, and
/// leaves nothing behind: no state entry, no pid file (the fixture checks mounts, processes and
/// the rest).
#[test]
fn bad_inputs_fail_cleanly_with_one_line() {
    let cases = [
        BadInput {
            what: "missing rootfs",
            edit: |_, c| {
                c["rootfs"] = json!("no-such-dir");
                None
            },
            cmd: plain_cmd,
            code: 125,
            says: "config: rootfs",
        },
        BadInput {
            what: "rootfs is a file",
            edit: |fx, c| {
                fs::write(fx.dir().join("file"), "").unwrap();
                c["rootfs"] = json!("file");
                None
            },
            cmd: plain_cmd,
            code: 125,
            says: "not a directory",
        },
        BadInput {
            what: "rootfs is the host's /",
            edit: |_, c| {
                c["rootfs"] = json!("/");
                None
            },
            cmd: plain_cmd,
            code: 125,
            says: "config: rootfs",
        },
        BadInput {
            what: "not JSON",
            edit: |_, _| Some(b"{\"hostname\": ".to_vec()),
            cmd: plain_cmd,
            code: 125,
            says: "EOF while parsing",
        },
        BadInput {
            what: "config over 4 MiB",
            edit: |_, _| {
                let mut text = b"{\"hostname\": \"".to_vec();
                text.resize(5 << 20, b'a');
                text.extend_from_slice(b"\"}");
                Some(text)
            },
            cmd: plain_cmd,
            code: 125,
            says: "larger than",
        },
        BadInput {
            what: "wrong type",
            edit: |_, c| {
                c["readonly_fs"] = json!("yes");
                None
            },
            cmd: plain_cmd,
            code: 125,
            says: "config: readonly_fs: invalid type",
        },
        BadInput {
            what: "unknown capability",
            edit: |_, c| {
                c["capabilities"] = json!(["CHOWN", "CAP_FOO"]);
                None
            },
            cmd: plain_cmd,
            code: 125,
            says: "capabilities[1]: unknown capability",
        },
        BadInput {
            what: "env entry without =",
            edit: |_, c| {
                c["environment"] = json!(["PATH=/bin", "JUNK"]);
                None
            },
            cmd: plain_cmd,
            code: 125,
            says: "environment[1]",
        },
        BadInput {
            what: "bind destination escaping with ..",
            edit: |_, c| {
                c["mounts"] =
                    json!([{"type": "bind", "source": "/tmp", "destination": "/a/../../etc"}]);
                None
            },
            cmd: plain_cmd,
            code: 125,
            says: "mounts[0].destination",
        },
        BadInput {
            what: "hostname over 64 bytes",
            edit: |_, c| {
                c["hostname"] = json!("h".repeat(65));
                None
            },
            cmd: plain_cmd,
            code: 125,
            says: "config: hostname",
        },
        BadInput {
            // The config reaches ns-init through a memfd, so only the command's own execve
            // meets the kernel's 128 KiB limit on one string.
            what: "an environment entry over 128 KiB",
            edit: |_, c| {
                c["environment"] = json!(["PATH=/bin", format!("BIG={}", "x".repeat(200 << 10))]);
                None
            },
            cmd: plain_cmd,
            code: 126,
            says: "Argument list too long",
        },
    ];
    for case in cases {
        let fx = fixture();
        let mut config = fx.config();
        let text = (case.edit)(&fx, &mut config);
        match text {
            Some(text) => fs::write(fx.config_path(), text).unwrap(),
            None => fx.edit_config(|c| *c = config),
        }
        let cmd = (case.cmd)();
        let cmd: Vec<&str> = cmd.iter().map(|a| a.to_str().unwrap()).collect();
        let out = fx.exec_with_pid_file(&cmd).run();
        assert_eq!(out.code(), case.code, "{}: {}", case.what, out.dump());
        let line = out.error_line();
        assert!(line.contains(case.says), "{}: {}", case.what, out.dump());
        assert!(
            !fx.pid_file().exists(),
            "{}: a pid file was left",
            case.what
        );
        let entries = fs::read_dir(fx.state_root())
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(entries, 0, "{}: the state dir has an entry", case.what);
    }
}

/// Arguments that are not UTF-8 reach the command byte for byte.
#[test]
fn non_utf8_arguments_pass_through() {
    use std::os::unix::ffi::OsStrExt;
    let fx = fixture();
    let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe-x");
    let out = fx
        .ns_exec()
        .arg("--config")
        .arg(fx.config_path())
        .arg("--root")
        .arg(fx.state_root())
        .arg("--name")
        .arg(fx.name())
        .args(["--", "sh", "-c", "printf %s \"$1\" | od -An -tx1", "sh"])
        .arg(bad)
        .run();
    out.expect_clean_success();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["ff", "fe", "2d", "78"],
        "{}",
        out.dump()
    );
}

/// A working directory naming one of ns-init's own fds (`/proc/self/fd/N`, the CVE-2024-21626
/// trick) never puts the command outside the container's root: it fails with 125, or lands
/// inside. An fd the caller leaked (7 here) is not even open in ns-init.
#[test]
fn working_dir_through_proc_self_fd_cannot_leave_the_root() {
    let fx = fixture();
    for n in 3..=10 {
        fx.edit_config(|c| c["working_dir"] = json!(format!("/proc/self/fd/{n}")));
        let out = fx
            .exec(&["/bin/sh", "-c", "readlink /proc/self/cwd"])
            .with_inherited_fd(7)
            .run();
        match out.code() {
            125 => assert!(
                out.error_line().contains("/proc/self/fd/"),
                "{}",
                out.dump()
            ),
            0 => assert!(
                out.stdout.starts_with('/') && !out.stdout.contains("unreachable"),
                "fd {n}: {}",
                out.dump()
            ),
            _ => panic!("fd {n}: {}", out.dump()),
        }
    }
}

/// A state whose pid now belongs to another process (same pid, other start time) is never
/// joined: enter refuses it as stale, and the unrelated process is untouched.
#[test]
fn a_reused_pid_is_never_joined() {
    let fx = fixture();
    let mut other = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let pid = other.id() as i32;
    let dir = fx.state_root().join(fx.name());
    fs::create_dir_all(&dir).unwrap();
    let state = json!({"v": 1, "name": fx.name(), "pid": pid, "start_time": 1,
                       "config": {"rootfs": fx.rootfs()}});
    fs::write(dir.join("state.json"), state.to_string()).unwrap();
    let out = fx.enter(&["true"]).run();
    out.expect_code(125);
    assert!(out.error_line().contains("stale"), "{}", out.dump());
    assert!(
        other.try_wait().unwrap().is_none(),
        "the unrelated process was touched"
    );
    other.kill().unwrap();
    other.wait().unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

// --- doctor ---------------------------------------------------------------------------------------

/// The cgroup layout as `/proc/self/mountinfo` shows it: `v2` when cgroup2 is mounted at
/// `/sys/fs/cgroup`, `hybrid` when it is mounted elsewhere beside v1 hierarchies, else `v1`.
fn layout_from_mountinfo() -> &'static str {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let fstypes: Vec<(String, String)> = info
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?.to_string();
            let fstype = right.split(' ').next()?.to_string();
            Some((point, fstype))
        })
        .collect();
    if fstypes
        .iter()
        .any(|(p, t)| p == "/sys/fs/cgroup" && t == "cgroup2")
    {
        "v2"
    } else if fstypes.iter().any(|(_, t)| t == "cgroup2") {
        "hybrid"
    } else {
        "v1"
    }
}

/// `ns-exec doctor --json` reports that a default container can run here (it just did, in the
/// other tests), names this machine's cgroup layout as mountinfo shows it, finds the stage
/// programs, and can create namespaces and a veth pair; the text form says the same.
#[test]
fn doctor_reports_this_host() {
    require_root();
    let doctor = |args: &[&str]| {
        ns_tests::Invocation::new(ns_tests::bin("ns-exec"))
            .arg("doctor")
            .args(args)
            .run()
    };
    let out = doctor(&["--json"]);
    out.expect_clean_success();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["ok"], json!(true), "{}", out.dump());
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == json!(name))
            .unwrap_or_else(|| panic!("no check {name}: {}", out.dump()))
            .clone()
    };
    for name in [
        "privileges",
        "kernel",
        "namespaces",
        "veth and bridge",
        "/dev/ptmx",
        "ns-dmz",
        "ns-init",
        "stage programs",
    ] {
        assert_eq!(check(name)["ok"], json!(true), "{name}: {}", out.dump());
    }
    let layout = check("cgroup layout")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(layout.starts_with(layout_from_mountinfo()), "{layout}");
    let text = doctor(&[]);
    text.expect_clean_success();
    assert!(
        text.stdout.ends_with("a default container can run here\n"),
        "{}",
        text.dump()
    );
}

/// As an unprivileged user, doctor says a default container cannot run, exits 1, and gives
/// the fix.
#[test]
fn doctor_fails_without_privileges() {
    use std::os::unix::fs::PermissionsExt;
    require_root();
    // A copy the unprivileged user can reach, wherever the build tree lives.
    let dir = ns_tests::TempDir::new("doctor");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("ns-exec");
    fs::copy(ns_tests::bin("ns-exec"), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    let out = ns_tests::Invocation::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&copy)
        .arg("doctor")
        .run();
    out.expect_code(1);
    assert!(
        out.stdout.contains("FAIL privileges: not root"),
        "{}",
        out.dump()
    );
    assert!(
        out.stdout.contains("fix: run ns-exec as root"),
        "{}",
        out.dump()
    );
    assert!(
        out.stdout
            .ends_with("a default container cannot run here\n"),
        "{}",
        out.dump()
    );
}
