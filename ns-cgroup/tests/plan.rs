//! `--plan`, `--explain` and `NS_TRACE` of the `ns-cgroup` program on this machine's real
//! cgroups: the plan printed is the plan applied. Root only: as root a missing prerequisite
//! fails, never skips. Every cgroup is made below the test process's own cgroup (ns-cgroup's
//! default placement) with a unique name, removed by a guard, and each test checks that no
//! directory with that name is left in any hierarchy.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ns-cgroup");

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create real cgroups and must run as root (scripts/test.sh under sudo)"
    );
}

fn unique(tag: &str) -> String {
    format!("nscg-plan-{tag}-{}", std::process::id())
}

/// `ns-cgroup ARGS...`, with `NS_TRACE=trace` when given: (status, stdout, stderr).
fn run(args: &[&str], trace: Option<&Path>) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("NS_TRACE");
    if let Some(t) = trace {
        cmd.env("NS_TRACE", t);
    }
    let out = cmd.output().expect("run ns-cgroup");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ns-cgroup ARGS...`, which must succeed without a word on stderr; its stdout.
fn ok(args: &[&str], trace: Option<&Path>) -> String {
    let (code, out, err) = run(args, trace);
    assert_eq!((code, err.as_str()), (0, ""), "ns-cgroup {args:?}\n{out}");
    out
}

/// A cgroup a test may have created: killed and removed on drop, then checked gone.
struct Group(String);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = run(&["kill", &self.0], None);
        let _ = run(&["remove", &self.0], None);
        if !std::thread::panicking() {
            assert_eq!(dirs_named(&self.0), Vec::<PathBuf>::new());
        }
    }
}

/// A file in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        let p = std::env::temp_dir().join(unique(tag));
        let _ = std::fs::remove_file(&p);
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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

/// The actions of a `--plan` document, checked for its envelope.
fn actions(plan: &str) -> Vec<Value> {
    let doc: Value =
        serde_json::from_str(plan).unwrap_or_else(|e| panic!("plan is not JSON: {e}\n{plan}"));
    assert_eq!((&doc["v"], &doc["stage"]), (&1.into(), &"ns-cgroup".into()));
    doc["actions"].as_array().expect("actions").clone()
}

/// (stage, step, what) of each planned action; `what` is its `path`.
fn planned(plan: &str) -> Vec<(String, String, String)> {
    actions(plan)
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("stage"), s("step"), s("path"))
        })
        .collect()
}

/// The trace lines as JSON.
fn trace_lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("read trace {}: {e}", file.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("trace line {l:?}: {e}")))
        .collect()
}

/// (stage, step, what) of each trace line.
fn traced(lines: &[Value]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            (s("stage"), s("step"), s("what"))
        })
        .collect()
}

/// `create --plan` prints one valid JSON plan (mkdirs and the limit writes with their values)
/// and changes nothing: none of the directories it plans to make exists afterwards.
#[test]
fn create_plan_prints_json_and_creates_nothing() {
    require_root();
    let name = unique("dry");
    let _guard = Group(name.clone());
    let out = ok(
        &[
            "create",
            &name,
            "--memory",
            "64m",
            "--pids-max",
            "10",
            "--plan",
        ],
        None,
    );
    let actions = actions(&out);
    let mkdirs: Vec<&str> = actions
        .iter()
        .filter(|a| a["step"] == "mkdir")
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert!(!mkdirs.is_empty(), "{out}");
    for dir in &mkdirs {
        assert!(!Path::new(dir).exists(), "{dir} exists after --plan");
    }
    let limit = |field: &str| {
        actions
            .iter()
            .find(|a| a["field"] == field)
            .unwrap_or_else(|| panic!("no write of {field}\n{out}"))["value"]
            .clone()
    };
    assert_eq!(limit("cgroups.memory"), "67108864");
    assert_eq!(limit("cgroups.pids_max"), "10");
    assert_eq!(dirs_named(&name), Vec::<PathBuf>::new());
}

/// With `NS_TRACE`, a real `create` records one line per action, and their (stage, step, what)
/// are exactly those of the `create --plan` printed just before, in order, all `ok`; the same
/// holds for `remove` and its plan.
#[test]
fn create_and_remove_trace_the_steps_of_their_plans() {
    require_root();
    let name = unique("trace");
    let guard = Group(name.clone());
    let args = ["create", &name, "--memory", "64m", "--pids-max", "10"];
    let plan = ok(&[&args[..], &["--plan"]].concat(), None);
    let trace = TempFile::new("trace");
    ok(&args, Some(&trace.0));
    let lines = trace_lines(&trace.0);
    assert!(lines.iter().all(|l| l["outcome"] == "ok"), "{lines:?}");
    assert_eq!(traced(&lines), planned(&plan));

    let plan = ok(&["remove", &name, "--plan"], None);
    assert!(
        !dirs_named(&name).is_empty(),
        "remove --plan removed something"
    );
    let trace = TempFile::new("trace-rm");
    ok(&["remove", &name], Some(&trace.0));
    let lines = trace_lines(&trace.0);
    assert!(!lines.is_empty());
    assert_eq!(traced(&lines), planned(&plan));
    drop(guard);
}

/// The `--explain` script, run with `sh`, makes a cgroup whose limit files hold the same values
/// as those of a cgroup `create` made with the same flags (and the values the plan names).
#[test]
fn explain_script_creates_what_create_creates() {
    require_root();
    let by_script = unique("sh");
    let by_create = unique("create");
    let _guards = (Group(by_script.clone()), Group(by_create.clone()));
    let limits = ["--memory", "48m", "--pids-max", "7", "--cpu-shares", "512"];
    let script = ok(
        &[&["create", by_script.as_str()][..], &limits, &["--explain"]].concat(),
        None,
    );
    assert!(
        script.starts_with("#!/bin/sh\n# ns-cgroup create "),
        "{script}"
    );
    let plan = ok(
        &[&["create", by_script.as_str()][..], &limits, &["--plan"]].concat(),
        None,
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "the script failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(
        &[&["create", by_create.as_str()][..], &limits].concat(),
        None,
    );
    let writes: Vec<Value> = actions(&plan)
        .into_iter()
        .filter(|a| a["step"] == "write" && a.get("field").is_some())
        .collect();
    assert_eq!(writes.len(), 3, "{plan}");
    for w in writes {
        let file = w["path"].as_str().unwrap();
        let read = |f: &str| {
            std::fs::read_to_string(f)
                .unwrap_or_else(|e| panic!("read {f}: {e}"))
                .trim()
                .to_string()
        };
        let from_script = read(file);
        let from_create = read(&file.replace(&by_script, &by_create));
        assert_eq!(from_script, from_create, "{file}");
        assert_eq!(from_script, w["value"].as_str().unwrap(), "{file}");
    }
}

/// The chain form's `--explain` script moves the shell running it into the cgroup
/// (`echo $$ > .../cgroup.procs`) and execs the command there; with `NS_TRACE`, the chain form
/// itself traces the `join` steps of `join --plan`.
#[test]
fn join_chain_explain_and_trace_follow_the_plan() {
    require_root();
    let name = unique("join");
    let _guard = Group(name.clone());
    ok(&["create", &name], None);
    let script = ok(
        &["join", &name, "--explain", "--", "cat", "/proc/self/cgroup"],
        None,
    );
    assert!(script.contains("echo $$ > "), "{script}");
    assert!(script.ends_with("exec cat /proc/self/cgroup\n"), "{script}");
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let theirs = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{theirs}");
    // In every hierarchy ns-cgroup manages (name=systemd is not one), below our own cgroup.
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(mine.lines().count(), theirs.lines().count(), "{theirs}");
    for (own, line) in mine.lines().zip(theirs.lines()) {
        if !own.contains("name=systemd") {
            assert_eq!(line, format!("{}/{name}", own.trim_end_matches('/')));
        }
    }

    let plan = ok(&["join", &name, "--plan", "--", "true"], None);
    assert!(actions(&plan).iter().all(|a| a["pid"] == 0), "{plan}");
    let trace = TempFile::new("trace-join");
    ok(&["join", &name, "--", "true"], Some(&trace.0));
    assert_eq!(traced(&trace_lines(&trace.0)), planned(&plan));
}

/// A step the kernel refuses (a CPU that does not exist) is the last trace line, with
/// `"outcome":"error"` and the error naming the field; the lines before it are the plan's
/// first steps, all `ok`; the run fails (125) and leaves no directory.
#[test]
fn a_failing_step_is_traced_as_an_error() {
    require_root();
    let name = unique("fail");
    let _guard = Group(name.clone());
    let args = ["create", &name, "--memory", "16m", "--cpuset-cpus", "4095"];
    let plan = planned(&ok(&[&args[..], &["--plan"]].concat(), None));
    let trace = TempFile::new("trace-fail");
    let (code, _, err) = run(&args, Some(&trace.0));
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("cgroups.cpuset_cpus"), "{err}");
    let lines = trace_lines(&trace.0);
    let (last, before) = lines.split_last().expect("a trace");
    assert_eq!(last["outcome"], "error", "{last}");
    assert_eq!(last["step"], "write");
    assert!(last["what"].as_str().unwrap().ends_with("/cpuset.cpus"));
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("cgroups.cpuset_cpus")
    );
    assert!(before.iter().all(|l| l["outcome"] == "ok"), "{lines:?}");
    let got = traced(&lines);
    assert_eq!(got[..], plan[..got.len()]);
    assert_eq!(dirs_named(&name), Vec::<PathBuf>::new());
}

/// `set` with a limit for a hierarchy the cgroup is not in (v1 and hybrid): its plan makes the
/// directory, writes the limit and moves the cgroup's processes in (a `join` with `from`), frozen
/// meanwhile; the trace has exactly the plan's steps, and the process ends up in the new
/// directory. The `--explain` script is valid shell.
#[test]
fn set_adding_a_hierarchy_traces_the_steps_of_its_plan() {
    require_root();
    let name = unique("setadd");
    let _guard = Group(name.clone());
    ok(&["create", &name, "--memory", "32m"], None);
    let mut sleeper = Command::new("sleep").arg("60").spawn().expect("sleep");
    let pid = sleeper.id().to_string();
    ok(&["join", &name, "--pid", &pid], None);
    let args = ["set", &name, "--cpu-shares", "512"];
    let plan = ok(&[&args[..], &["--plan"]].concat(), None);
    let script = ok(&[&args[..], &["--explain"]].concat(), None);
    let syntax = Command::new("sh").arg("-n").arg("-c").arg(&script).status();
    assert!(syntax.unwrap().success(), "{script}");
    let v2 = actions(&plan).iter().all(|a| a["step"] == "write");
    if !v2 {
        let steps: Vec<String> = actions(&plan)
            .iter()
            .map(|a| a["step"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            steps,
            ["mkdir", "write", "write", "join", "write"],
            "{plan}"
        );
        let join = &actions(&plan)[3];
        assert!(join["from"].as_str().unwrap().ends_with(&name), "{plan}");
    }
    let trace = TempFile::new("trace-set");
    ok(&args, Some(&trace.0));
    let lines = trace_lines(&trace.0);
    assert!(lines.iter().all(|l| l["outcome"] == "ok"), "{lines:?}");
    assert_eq!(traced(&lines), planned(&plan));
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let cpu = cgroup.lines().find(|l| {
        l.split(':')
            .nth(1)
            .is_some_and(|c| c.split(',').any(|c| c == "cpu"))
    });
    if let Some(line) = cpu {
        assert!(line.ends_with(&format!("/{name}")), "{cgroup}");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}
