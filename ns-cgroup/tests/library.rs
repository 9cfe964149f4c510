//! The library API `ns-exec` calls (`Cgroup::create`, `join`, `remove`), on this machine's real
//! cgroups. Root only: as root a missing prerequisite fails, never skips. Every cgroup is made
//! below the test process's own cgroup with a unique name, and each test checks that no
//! directory with that name is left in any hierarchy, parents included.

use std::path::{Path, PathBuf};
use std::process::Command;

use common::config::{Bytes, Cgroups};
use ns_cgroup::Cgroup;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create real cgroups and must run as root (scripts/test.sh under sudo)"
    );
}

fn unique(tag: &str) -> String {
    format!("nscg-{tag}-{}", std::process::id())
}

fn limits(json: &str) -> Cgroups {
    serde_json::from_str(json).expect("cgroups JSON")
}

/// Directories named `name` anywhere under /sys/fs/cgroup (a few levels deep).
fn dirs_named(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_str() == Some(name) {
                out.push(e.path());
            }
            if depth > 0 {
                walk(&e.path(), name, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), name, 8, &mut out);
    out
}

/// `create` places the cgroup under its `parent` below the caller's cgroup, `join` moves a pid
/// into every hierarchy, and `remove` kills what is left and removes the cgroup and the parent
/// it made, leaving nothing.
#[test]
fn create_join_remove_leaves_nothing() {
    require_root();
    let parent = unique("parent");
    let name = unique("leaf");
    let cg = Cgroup::create(
        &name,
        &limits(&format!(
            r#"{{"parent": "{parent}", "memory": "32m", "pids_max": 4}}"#
        )),
    )
    .expect("create");
    assert!(!dirs_named(&name).is_empty());
    let mut sleeper = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("start sleep");
    let pid = sleeper.id() as i32;
    cg.join(pid).expect("join");
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for (own, line) in mine.lines().zip(theirs.lines()) {
        if own.contains("name=systemd") {
            continue;
        }
        let want = format!("{}/{parent}/{name}", own.trim_end_matches('/'));
        assert_eq!(line, want);
    }
    cg.remove().expect("remove");
    // remove killed the sleeper; reap it.
    let status = sleeper.wait().expect("wait for sleep");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert_eq!(dirs_named(&name), Vec::<PathBuf>::new());
    assert_eq!(dirs_named(&parent), Vec::<PathBuf>::new());
}

/// A create the kernel refuses half-way leaves no directory, parents included, and the error
/// names the field.
#[test]
fn failed_create_leaves_nothing() {
    require_root();
    let parent = unique("fparent");
    let name = unique("fleaf");
    let mut c = limits(&format!(r#"{{"parent": "{parent}"}}"#));
    c.memory = Some(Bytes(16 << 20));
    c.cpuset_cpus = Some("4095".into());
    let e = Cgroup::create(&name, &c).expect_err("cpu 4095 does not exist");
    assert!(e.to_string().contains("cgroups.cpuset_cpus"), "{e}");
    assert_eq!(dirs_named(&name), Vec::<PathBuf>::new());
    assert_eq!(dirs_named(&parent), Vec::<PathBuf>::new());
}

/// `remove` of a cgroup that is already gone succeeds (ns-exec calls it on every exit path).
#[test]
fn remove_twice_is_fine() {
    require_root();
    let name = unique("twice");
    let cg = Cgroup::create(&name, &limits("{}")).expect("create");
    cg.remove().expect("remove");
    if let Some(again) = Cgroup::open(&name, None).expect("open") {
        panic!("still there: {:?}", again.dirs());
    }
}
