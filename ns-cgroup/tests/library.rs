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

/// The `ID:CONTROLLERS:PATH` line of /proc/PID/cgroup split into (controllers, path).
fn split(line: &str) -> (&str, &str) {
    let mut p = line.splitn(3, ':').skip(1);
    (p.next().unwrap_or(""), p.next().unwrap_or(""))
}

/// Whether a cgroup with limits for `controllers` is made in the hierarchy of this
/// /proc/PID/cgroup line: those controllers, freezer, and the cgroup2 tree (`0::`).
fn made_for(line: &str, controllers: &[&str]) -> bool {
    let (cs, _) = split(line);
    cs.is_empty()
        || cs
            .split(',')
            .any(|c| c == "freezer" || controllers.contains(&c))
}

/// The v1 controllers of the hierarchies `cg` lives in (`unified` for the cgroup2 tree).
fn labels(cg: &Cgroup) -> Vec<String> {
    cg.dirs().iter().map(|d| d.hierarchy.label()).collect()
}

/// A `sleep 60` to move around, killed and reaped on drop.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("start sleep"),
        )
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Its /proc/PID/cgroup path in the hierarchy of `controller` (`""`: the cgroup2 tree).
    fn path_in(&self, controller: &str) -> Option<String> {
        std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid()))
            .expect("read /proc/PID/cgroup")
            .lines()
            .map(split)
            .find(|(cs, _)| {
                if controller.is_empty() {
                    cs.is_empty()
                } else {
                    cs.split(',').any(|c| c == controller)
                }
            })
            .map(|(_, p)| p.to_string())
    }

    /// Whether it is in the cgroup `name` in the hierarchy of `controller`.
    fn is_in(&self, controller: &str, name: &str) -> bool {
        self.path_in(controller)
            .is_some_and(|p| p.ends_with(&format!("/{name}")))
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `create` places the cgroup under its `parent` below the caller's cgroup, in the hierarchies
/// its limits need (memory, pids) plus freezer and the cgroup2 tree; `join` moves a pid into
/// each of them and no other; and `remove` kills what is left and removes the cgroup and the
/// parent it made, leaving nothing.
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
        let want = if made_for(own, &["memory", "pids"]) {
            format!("{}/{parent}/{name}", own.trim_end_matches('/'))
        } else {
            own.to_string()
        };
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

/// `join_except_unified` moves a process into every hierarchy but the cgroup2 one (which
/// ns-exec's clone puts it in), and `join` then adds that one: on hybrid the process is in
/// memory and freezer first, the cgroup2 tree after; on v2 the first is nothing at all.
#[test]
fn join_except_unified_leaves_only_the_cgroup2_tree_out() {
    require_root();
    let name = unique("except");
    let plan = Cgroup::plan_create(&name, &limits(r#"{"memory": "32m"}"#)).expect("plan");
    let unified = plan.unified_dir().map(Path::to_path_buf);
    let cg = plan.apply().expect("create");
    assert_eq!(cg.unified_dir().map(Path::to_path_buf), unified);
    let sleeper = Sleeper::start();
    cg.join_except_unified(sleeper.pid())
        .expect("join except unified");
    let v1 = cg.dirs().iter().any(|d| !d.hierarchy.unified);
    if v1 {
        assert!(sleeper.is_in("memory", &name) && sleeper.is_in("freezer", &name));
        assert!(!sleeper.is_in("blkio", &name) && !sleeper.is_in("pids", &name));
    }
    if unified.is_some() {
        assert!(!sleeper.is_in("", &name), "{:?}", sleeper.path_in(""));
    }
    cg.join(sleeper.pid()).expect("join");
    if unified.is_some() {
        assert!(sleeper.is_in("", &name), "{:?}", sleeper.path_in(""));
    }
    cg.remove().expect("remove");
    drop(sleeper);
    assert_eq!(dirs_named(&name), Vec::<PathBuf>::new());
}

/// `set` with a limit for a hierarchy the cgroup is not in makes it there, moves the cgroup's
/// process in, and the handle then knows it; a hierarchy another handle's `set` added is
/// removed too. Nothing is left.
#[test]
fn set_adds_a_hierarchy_with_the_processes_in_it() {
    require_root();
    let name = unique("setadd");
    let mut cg = Cgroup::create(&name, &limits(r#"{"memory": "32m"}"#)).expect("create");
    let v1 = cg.kind() != ns_cgroup::Kind::V2;
    if v1 {
        assert!(!labels(&cg).iter().any(|l| l.split(',').any(|c| c == "cpu")));
    }
    let sleeper = Sleeper::start();
    cg.join(sleeper.pid()).expect("join");
    cg.set(&limits(r#"{"cpu_shares": 512}"#))
        .expect("set cpu_shares");
    let cpu = cg.dir_for("cpu").expect("a cpu directory").to_path_buf();
    assert!(cpu.ends_with(&name), "{}", cpu.display());
    if v1 {
        assert!(sleeper.is_in("cpu", &name), "{:?}", sleeper.path_in("cpu"));
        let shares = std::fs::read_to_string(cpu.join("cpu.shares")).unwrap();
        assert_eq!(shares.trim(), "512");
    }
    // Another handle adds pids; the first one's remove still finds it.
    let mut other = Cgroup::open_existing(&name, None).expect("open");
    other
        .set(&limits(r#"{"pids_max": 9}"#))
        .expect("set pids_max");
    if v1 {
        assert!(
            sleeper.is_in("pids", &name),
            "{:?}",
            sleeper.path_in("pids")
        );
        assert!(!cg.dirs().iter().any(|d| d.hierarchy.has("pids")));
    }
    cg.remove().expect("remove");
    drop(sleeper);
    assert_eq!(dirs_named(&name), Vec::<PathBuf>::new());
}
