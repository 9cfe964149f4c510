//! Tests of the harness itself (root tier): the rootfs script builds what tests rely on, and
//! the leak checks catch the leaks they claim to catch, so a green privileged run means
//! something (security-and-hygiene.md §4.2: prove the check fails on a deliberate leak).
//! None of these needs ns-exec.

use ns_tests::{Fixture, Invocation, ProcId, Snapshot, mounts_under, require_root};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// `scripts/mkrootfs.sh` gives a static busybox with its applets linked in `/bin`, the users
/// and groups the tests use, and a world-writable sticky `/tmp`; the busybox runs on the host
/// (it needs no libc from the rootfs).
#[test]
fn rootfs_has_what_tests_rely_on() {
    require_root();
    let fx = Fixture::new();
    let root = fx.rootfs();
    for applet in [
        "sh", "cat", "id", "ls", "touch", "sleep", "hostname", "env", "readlink",
    ] {
        let link = fs::read_link(root.join("bin").join(applet))
            .unwrap_or_else(|e| panic!("/bin/{applet}: {e}"));
        assert_eq!(link.to_str(), Some("busybox"), "/bin/{applet}");
    }
    for dir in ["proc", "sys", "dev", "etc", "tmp", "root", "home/user"] {
        assert!(root.join(dir).is_dir(), "/{dir} missing");
    }
    let tmp_mode = fs::metadata(root.join("tmp")).unwrap().permissions().mode();
    assert_eq!(tmp_mode & 0o7777, 0o1777);
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("user:x:1000:1000:user:/home/user:/bin/sh\n"),
        "{passwd}"
    );
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(group.contains("wheel:x:10:user\n") && group.contains("users:x:100:user\n"));
    let out = Invocation::new(root.join("bin/busybox"))
        .args(["sh", "-c", "echo static-ok"])
        .run();
    out.expect_clean_success();
    assert_eq!(out.stdout, "static-ok\n");
}

/// The fixture's leak check reports a mount left below the fixture directory, and reports
/// nothing once it is gone. Runs on the shared-mount fixture, which holds the host mount table
/// exclusively, so the deliberate mount disturbs no other test's snapshot.
#[test]
fn leak_check_catches_a_mount() {
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    require_root();
    let fx = Fixture::on_shared_mount();
    assert_eq!(fx.leaks(), Vec::<String>::new());
    let point = fx.mkdir("leak");
    mount(
        Some("tmpfs"),
        &point,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .expect("mount tmpfs");
    let leaks = fx.leaks();
    umount2(&point, MntFlags::empty()).expect("umount our tmpfs");
    assert!(
        leaks
            .iter()
            .any(|l| l.contains("mount added") && l.contains("/leak")),
        "{leaks:?}"
    );
    assert_eq!(
        mounts_under(fx.dir()).len(),
        1,
        "only the fixture's own tmpfs"
    );
    assert_eq!(fx.leaks(), Vec::<String>::new());
    assert_eq!(
        Snapshot::take().diff(&Snapshot::take()),
        Vec::<String>::new()
    );
}

/// The fixture's leak check reports a tracked container process that is still running, and
/// the fixture kills it (by pid, after checking its start time) when asked.
#[test]
fn leak_check_catches_a_process() {
    require_root();
    let fx = Fixture::new();
    let mut child = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .expect("spawn sleep");
    let proc_id = ProcId::of(child.id() as i32).expect("sleep is running");
    fx.track(proc_id);
    // This one will not go by itself, so waiting long for it would only slow the test.
    let leaks = fx.leaks_with_grace(Duration::from_millis(50));
    assert!(
        leaks
            .iter()
            .any(|l| l.contains(&format!("process {}", proc_id.pid))),
        "{leaks:?}"
    );
    fx.kill_tracked();
    child.wait().expect("reap sleep");
    assert!(proc_id.wait_gone(Duration::from_secs(5)));
    assert_eq!(fx.leaks(), Vec::<String>::new());
}

/// `with_inherited_fd` really hands a non-close-on-exec fd to the program it starts, so the
/// container test that relies on it (`only_stdio_fds_reach_the_command`) is not vacuous.
#[test]
fn inherited_fd_reaches_the_spawned_program() {
    let out = Invocation::new("/bin/sh")
        .args(["-c", "ls /proc/$$/fd; :"])
        .with_inherited_fd(7)
        .run();
    out.expect_clean_success();
    let fds: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(fds.contains(&"7"), "{}", out.dump());
}

/// A program that outlives the bounded wait is killed by its pid and fails the test, instead
/// of hanging it.
#[test]
#[should_panic(expected = "did not end within")]
fn a_hang_fails_instead_of_hanging() {
    Invocation::new("sleep")
        .arg("100")
        .timeout(Duration::from_millis(200))
        .run();
}

/// `with_hostile_signals` really starts the program with signals ignored (32 and 33 among them)
/// and blocked, so the container test that relies on it (`signal_state_is_clean`) is not
/// vacuous.
#[test]
fn hostile_signal_state_reaches_the_spawned_program() {
    let out = Invocation::new("/bin/cat")
        .arg("/proc/self/status")
        .with_hostile_signals()
        .run();
    out.expect_clean_success();
    let ign = u64::from_str_radix(ns_tests::status_field(&out.stdout, "SigIgn").unwrap(), 16);
    let blk = u64::from_str_radix(ns_tests::status_field(&out.stdout, "SigBlk").unwrap(), 16);
    let bit = |sig: u32| 1u64 << (sig - 1);
    let ign = ign.unwrap();
    for sig in [libc::SIGPIPE as u32, libc::SIGCHLD as u32, 32, 33, 40] {
        assert_ne!(ign & bit(sig), 0, "signal {sig} not ignored: {ign:x}");
    }
    assert_ne!(blk.unwrap() & bit(libc::SIGTERM as u32), 0);
}
