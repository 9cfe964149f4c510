//! ns-exec's command line, no privileges needed: help, usage errors and their exit status.
//!
//! Each test runs ns-exec in an empty temporary directory, so a `./container.json` lying around
//! cannot change what it does, and with `--root` inside it, so even a regression that got past
//! the usage check could not touch the host's `/run/ns-tools`.

use ns_tests::{Invocation, TempDir, bin};

fn ns_exec(cwd: &TempDir) -> Invocation<'static> {
    Invocation::new(bin("ns-exec"))
        .current_dir(cwd.path())
        .arg("--root")
        .arg(cwd.path().join("state"))
}

/// `--help` succeeds, prints to stdout, and documents `--config`.
#[test]
fn help_exits_0_and_mentions_config() {
    let cwd = TempDir::new("cli");
    let out = ns_exec(&cwd).arg("--help").run();
    out.expect_code(0);
    assert!(out.stdout.contains("--config"), "{}", out.dump());
}

/// An unknown option is a usage error: 125, and stderr carries a usage line.
#[test]
fn unknown_option_is_a_usage_error() {
    let cwd = TempDir::new("cli");
    let out = ns_exec(&cwd).args(["--no-such-option", "--", "true"]).run();
    out.expect_code(125);
    assert!(out.stderr.starts_with("ns-exec: "), "{}", out.dump());
    assert!(
        out.stderr.to_lowercase().contains("usage"),
        "no usage line on stderr\n{}",
        out.dump()
    );
    assert!(out.stdout.is_empty(), "{}", out.dump());
}

/// No command at all is a usage error: 125, with a message on stderr.
#[test]
fn missing_command_is_a_usage_error() {
    let cwd = TempDir::new("cli");
    let out = ns_exec(&cwd).run();
    out.expect_code(125);
    assert!(out.stderr.starts_with("ns-exec: "), "{}", out.dump());
    assert!(out.stdout.is_empty(), "{}", out.dump());
}
