//! Fault injection at named steps, for tests and for debugging a stage by hand.
//!
//! `NS_FAULT=<stage>:<step>:<action>[,...]` (a documented debug variable, read in every build:
//! a person debugging one stage needs it as much as the tests do) makes [`point`] act when the
//! named stage reaches the named step:
//! - `fail`: the step fails with an error that says it was injected;
//! - `pause`: the process waits there until it is killed, so a test can inspect it (its mounts,
//!   its `/proc/PID/exe`, its fds) at exactly that moment;
//! - `kill`: the process kills itself with SIGKILL, as a crash would.
//!
//! The steps each stage offers are listed in docs/handoff.md. An unset or empty variable costs
//! one environment lookup per point.

use crate::error::{Error, Result};

/// The variable.
pub const ENV_FAULT: &str = "NS_FAULT";

/// What a matching fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fail the step.
    Fail,
    /// Wait until killed.
    Pause,
    /// SIGKILL ourselves.
    Kill,
}

/// The action `spec` (the variable's value) names for `stage` at `step`, if any.
pub fn lookup(spec: &str, stage: &str, step: &str) -> Option<Action> {
    spec.split(',').find_map(|entry| {
        let mut parts = entry.trim().splitn(3, ':');
        let (s, p, a) = (parts.next()?, parts.next()?, parts.next()?);
        if s != stage || p != step {
            return None;
        }
        match a {
            "fail" => Some(Action::Fail),
            "pause" => Some(Action::Pause),
            "kill" => Some(Action::Kill),
            _ => None,
        }
    })
}

/// A fault point: does what `NS_FAULT` says for `stage` at `step`, or nothing.
pub fn point(stage: &str, step: &str) -> Result<()> {
    let Some(spec) = std::env::var_os(ENV_FAULT) else {
        return Ok(());
    };
    match lookup(&spec.to_string_lossy(), stage, step) {
        None => Ok(()),
        Some(Action::Fail) => Err(Error::msg(step, "failure injected by NS_FAULT")),
        Some(Action::Pause) => loop {
            nix::unistd::pause();
        },
        Some(Action::Kill) => {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            crate::sys::exit_now(crate::exit::FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_stage_and_step() {
        let spec = "ns-init:after-go:fail, ns-exec:before-go:pause";
        assert_eq!(lookup(spec, "ns-init", "after-go"), Some(Action::Fail));
        assert_eq!(lookup(spec, "ns-exec", "before-go"), Some(Action::Pause));
        assert_eq!(lookup(spec, "ns-exec", "after-go"), None);
        assert_eq!(lookup("ns-init:x:explode", "ns-init", "x"), None);
        assert_eq!(lookup("", "ns-init", "x"), None);
    }
}
