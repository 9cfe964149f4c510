//! ns-cgroup's command line, without privileges: help, usage errors, and the man page in step
//! with `--help`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ns-cgroup");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run ns-cgroup");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--help` prints the usage on stdout and exits 0; `--version` names the program.
#[test]
fn help_and_version_exit_zero() {
    let (code, out, err) = run(&["--help"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("Usage: ns-cgroup"), "{out}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ns-cgroup "), "{out}");
}

/// Every option in `--help` is in the man page's OPTIONS, and the other way round.
#[test]
fn help_and_man_page_list_the_same_options() {
    let (_, help, _) = run(&["--help"]);
    let page = include_str!("../../docs/man/ns-cgroup.1.md");
    let man = common::cli::long_options(common::cli::man_section(page, "OPTIONS"));
    assert!(!man.is_empty());
    assert_eq!(common::cli::long_options(&help), man);
}

/// Usage errors are one line on stderr and status 125, before anything is touched.
#[test]
fn usage_errors_are_125_with_one_line() {
    for args in [
        &[][..],
        &["frobnicate", "x"][..],
        &["create"][..],
        &["create", "a/b"][..],
        &["join", "x"][..],
        &["create", "x", "--memory", "lots"][..],
        &["stats", "x", "--pids-max", "3"][..],
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert_eq!(out, "");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("ns-cgroup: "), "{err}");
    }
}

/// A bad limit is refused naming its config field, from a flag as from a file.
#[test]
fn bad_limits_name_the_field() {
    let (code, _, err) = run(&["create", "x", "--cpu-quota", "10"]);
    assert_eq!(code, 125);
    assert_eq!(
        err,
        "ns-cgroup: config: cgroups.cpu_quota: must be -1 or at least 1000\n"
    );
    let dir = std::env::temp_dir().join(format!("ns-cgroup-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.json");
    std::fs::write(&file, r#"{"cgroups": {"memroy": 1}}"#).unwrap();
    let (code, _, err) = run(&["create", "x", "--config", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 125);
    assert!(err.contains("cgroups: unknown field"), "{err}");
}

/// A trace file that cannot be opened (`NS_TRACE` naming a missing directory) fails the run
/// before anything is done: one line naming the file, status 125.
#[test]
fn an_unopenable_trace_file_is_an_error() {
    let out = Command::new(BIN)
        .args(["remove", "nscg-never-made"])
        .env("NS_TRACE", "/nonexistent/dir/trace")
        .output()
        .expect("run ns-cgroup");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ns-cgroup: open trace file /nonexistent/dir/trace"),
        "{err}"
    );
}

/// `--plan` and `--explain` exclude each other and apply only to create, join, set and remove.
#[test]
fn plan_and_explain_are_usage_errors_elsewhere() {
    for args in [
        &["create", "x", "--plan", "--explain"][..],
        &["stats", "x", "--plan"][..],
        &["kill", "x", "--explain"][..],
    ] {
        let (code, out, err) = run(args);
        assert_eq!((code, out.as_str()), (125, ""), "{args:?}: {err}");
        assert!(err.starts_with("ns-cgroup: usage: "), "{err}");
    }
}
