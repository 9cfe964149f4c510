//! ns-init's command line, without privileges: help, usage errors, and the man page in step
//! with `--help`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ns-init");

/// `--help` exits 0, and lists the same options as the man page's OPTIONS.
#[test]
fn help_and_man_page_list_the_same_options() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run ns-init");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    let page = include_str!("../../docs/man/ns-init.1.md");
    let man = common::cli::long_options(common::cli::man_section(page, "OPTIONS"));
    assert!(!man.is_empty());
    assert_eq!(common::cli::long_options(&help), man);
}

/// Without a command, ns-init prints one usage line and exits 125.
#[test]
fn no_command_is_a_usage_error() {
    let out = Command::new(BIN).output().expect("run ns-init");
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ns-init: usage: no command"), "{err}");
}
