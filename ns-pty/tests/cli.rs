//! ns-pty's command line, without privileges: help, usage errors, and the man page in step
//! with `--help`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ns-pty");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run ns-pty");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--help` prints the usage on stdout, fits one screen, and exits 0.
#[test]
fn help_exits_zero() {
    let (code, out, err) = run(&["--help"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("Usage: ns-pty"), "{out}");
    assert!(out.lines().count() <= 24, "{out}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ns-pty "), "{out}");
}

/// Every option in `--help` is in the man page's OPTIONS, and the other way round.
#[test]
fn help_and_man_page_list_the_same_options() {
    let (_, help, _) = run(&["--help"]);
    let page = include_str!("../../docs/man/ns-pty.1.md");
    let man = common::cli::long_options(common::cli::man_section(page, "OPTIONS"));
    assert!(!man.is_empty());
    assert_eq!(common::cli::long_options(&help), man);
}

/// Usage errors are one line on stderr and status 125, like every ns-tools failure.
#[test]
fn usage_errors_are_125_with_one_line() {
    for args in [&[][..], &["--bogus", "true"][..], &["--console-socket"][..]] {
        let (code, out, err) = run(args);
        assert_eq!(code, 125, "{args:?}");
        assert_eq!(out, "");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("ns-pty: usage: "), "{err}");
    }
}

/// A console socket path that cannot be made is one line naming it, status 125.
#[test]
fn unusable_socket_path_is_125() {
    let (code, _, err) = run(&["--console-socket", "/nonexistent/dir/c.sock"]);
    assert_eq!(code, 125);
    assert_eq!(
        err.trim_end(),
        "ns-pty: console socket /nonexistent/dir/c.sock: No such file or directory"
    );
}

/// Without privileges too: the command's status passes through and a missing command is 127.
#[test]
fn statuses_pass_through() {
    let (code, out, _) = run(&["--", "sh", "-c", "printf ok; exit 3"]);
    assert_eq!((code, out.as_str()), (3, "ok"));
    let (code, _, err) = run(&["/nonexistent/ns-tools-test"]);
    assert_eq!(code, 127);
    assert!(
        err.starts_with("ns-pty: exec \"/nonexistent/ns-tools-test\""),
        "{err}"
    );
}
