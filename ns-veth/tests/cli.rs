//! ns-veth's command line, without privileges: help, version, usage errors, and the man page
//! in step with `--help`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ns-veth");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run ns-veth");
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
    assert!(out.starts_with("Usage: ns-veth add"), "{out}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ns-veth "), "{out}");
}

/// Every option in `--help` is in the man page's OPTIONS, and the other way round.
#[test]
fn help_and_man_page_list_the_same_options() {
    let (_, help, _) = run(&["--help"]);
    let page = include_str!("../../docs/man/ns-veth.1.md");
    let man = common::cli::long_options(common::cli::man_section(page, "OPTIONS"));
    assert!(!man.is_empty());
    assert_eq!(common::cli::long_options(&help), man);
}

/// Usage errors and bad values are one line on stderr and status 125, before anything is made
/// (none of these needs privileges, since each fails before the first netlink request).
#[test]
fn usage_errors_are_125_with_one_line() {
    for args in [
        &[][..],
        &["frob"][..],
        &["add", "--bridge", "br0"][..],
        &["add", "--pid", "1", "--netns", "/x", "--bridge", "br0"][..],
        &["add", "--pid", "x", "--bridge", "br0"][..],
        &["add", "--pid", "1", "--bridge", "br0", "--mtu", "10"][..],
        &[
            "add",
            "--pid",
            "1",
            "--bridge",
            "br0",
            "--prefix",
            "waytoolong",
        ][..],
        &["add", "--pid", "1", "--bridge", "br%d"][..],
        &[
            "add",
            "--pid",
            "1",
            "--bridge",
            "br0",
            "--address",
            "198.18.0.2",
        ][..],
        &["add", "--pid", "1", "--bridge", "br0", "--context-fd", "1"][..],
        &["del"][..],
        &["check", "a", "b"][..],
        &["del", "a/b"][..],
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ns-veth: "), "{err}");
    }
    let (_, _, err) = run(&[
        "add",
        "--pid",
        "1",
        "--bridge",
        "b",
        "--prefix",
        "waytoolong",
    ]);
    assert_eq!(
        err.trim_end(),
        "ns-veth: prefix \"waytoolong\": too long: at most 8 bytes, so that 7 random characters fit in 15"
    );
}
