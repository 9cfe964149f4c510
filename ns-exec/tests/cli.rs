//! ns-exec's command line, without privileges: help, usage errors, and the man page in step
//! with `--help`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ns-exec");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run ns-exec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--help` prints the usage on stdout and exits 0.
#[test]
fn help_exits_zero() {
    let (code, out, err) = run(&["--help"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("Usage: ns-exec"), "{out}");
}

/// Every option in `--help` is in the man page's OPTIONS, and the other way round.
#[test]
fn help_and_man_page_list_the_same_options() {
    let (_, help, _) = run(&["--help"]);
    let page = include_str!("../../docs/man/ns-exec.1.md");
    let man = common::cli::long_options(common::cli::man_section(page, "OPTIONS"));
    assert!(!man.is_empty());
    assert_eq!(common::cli::long_options(&help), man);
}

/// Usage errors are one line on stderr and status 125, like every ns-tools failure.
#[test]
fn usage_errors_are_125_with_one_line() {
    for args in [
        &[][..],
        &["--bogus", "true"][..],
        &["enter"][..],
        &["--name", "a/b", "true"][..],
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 125, "{args:?}");
        assert_eq!(out, "");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("ns-exec: usage: "), "{err}");
    }
}

/// A missing config fails before anything runs, naming the file.
#[test]
fn missing_config_is_125() {
    let (code, _, err) = run(&["--config", "/nonexistent/ns-tools.json", "--", "true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("/nonexistent/ns-tools.json: No such file"),
        "{err}"
    );
}
