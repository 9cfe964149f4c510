//! ns-pty's steps as a plan (`--plan`, `--explain`), named as `run` traces them (NS_TRACE).
//!
//! Chain form: `attach` (the caller's terminal, raw when it is one), `open_pty` (a
//! `/dev/ptmx` master and its peer), `spawn` (CMD on the pts, with the pts also at fd 3 and
//! `NS_CONSOLE_FD=3`), `relay` (until CMD's last byte). Socket form: `attach`, `listen` (the
//! console socket), `spawn` when a CMD is given, `relay`. The shell form uses util-linux
//! `script`, which allocates a pty and relays it the same way.

use std::ffi::OsString;
use std::path::Path;

use common::handoff::ENV_CONSOLE_FD;
use common::plan::{Action, quote, quote_os};

/// The stage name in plans and traces.
pub const STAGE: &str = "ns-pty";

/// The fd the pts is handed on at, besides 0–2.
pub const CONSOLE_FD: i32 = 3;

/// The actions of `ns-pty [--console-socket PATH] -- CMD`.
pub fn actions(socket: Option<&Path>, command: &[OsString]) -> Vec<Action> {
    let argv: Vec<String> = command
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let words: Vec<String> = command.iter().map(|c| quote_os(c)).collect();
    let mut out = vec![
        Action::new(STAGE, "attach")
            .arg("path", "/dev/stdin")
            .sh("# script(1) puts the caller's terminal in raw mode and follows its size"),
    ];
    match socket {
        None => {
            out.push(
                Action::new(STAGE, "open_pty")
                    .arg("path", "/dev/ptmx")
                    .sh("# script(1) opens /dev/ptmx and the peer pts"),
            );
            let inner = format!(
                "{ENV_CONSOLE_FD}={CONSOLE_FD} exec {} {CONSOLE_FD}<&0",
                words.join(" ")
            );
            out.push(
                Action::new(STAGE, "spawn")
                    .arg("argv", &argv)
                    .arg("console_fd", CONSOLE_FD)
                    .sh(format!(
                        "exec script --quiet --return --command {} /dev/null",
                        quote(&inner)
                    )),
            );
        }
        Some(path) => {
            out.push(
                Action::new(STAGE, "listen")
                    .arg("path", path)
                    .sh("# no shell tool receives a pty master over a unix socket (SCM_RIGHTS)"),
            );
            if !command.is_empty() {
                out.push(
                    Action::new(STAGE, "spawn")
                        .arg("argv", &argv)
                        .sh(format!("{} &", words.join(" "))),
                );
            }
        }
    }
    out.push(Action::new(STAGE, "relay").sh("# until the command's last byte"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_form_is_script_with_the_pts_at_fd_3() {
        let acts = actions(None, &["sh".into(), "-c".into(), "tty".into()]);
        let steps: Vec<&str> = acts.iter().map(|a| a.step.as_str()).collect();
        assert_eq!(steps, ["attach", "open_pty", "spawn", "relay"]);
        assert_eq!(
            acts[2].shell,
            [
                "exec script --quiet --return --command 'NS_CONSOLE_FD=3 exec sh -c tty 3<&0' /dev/null"
            ]
        );
        let acts = actions(Some(Path::new("/run/c.sock")), &[]);
        let steps: Vec<&str> = acts.iter().map(|a| a.step.as_str()).collect();
        assert_eq!(steps, ["attach", "listen", "relay"]);
    }
}
