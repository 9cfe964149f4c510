//! Fault injection at named steps, for tests and for debugging a stage by hand.
//!
//! `NS_FAULT=<stage>:<step>:<action>[,...]` (a documented debug variable, read in every build:
//! a person debugging one stage needs it as much as the tests do) makes [`point`] act when the
//! named stage reaches the named step:
//! - `fail`: the step fails with an error that says it was injected;
//! - `pause`: the process waits there until it is killed, so a test can inspect it (its mounts,
//!   its `/proc/PID/exe`, its fds) at exactly that moment;
//! - `kill`: the process kills itself with SIGKILL, as a crash would;
//! - `panic`: the process panics, as a bug would.
//!
//! The steps each stage offers are listed in docs/handoff.md. The variable is read once per
//! process ([`init`]); after that, an unset one costs a load per point.

use std::sync::OnceLock;

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
    /// Panic.
    Panic,
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
            "panic" => Some(Action::Panic),
            _ => None,
        }
    })
}

/// The variable's value, read once.
static SPEC: OnceLock<Option<String>> = OnceLock::new();

/// Reads `NS_FAULT` now. ns-exec calls this before it clones a child that runs in its memory
/// (spawn.rs): that child's points then only load the value, where reading the environment
/// would take std's environment lock, which a child killed there would never give back.
pub fn init() {
    spec();
}

fn spec() -> Option<&'static str> {
    SPEC.get_or_init(|| std::env::var_os(ENV_FAULT).map(|v| v.to_string_lossy().into_owned()))
        .as_deref()
}

/// A fault point: does what `NS_FAULT` says for `stage` at `step`, or nothing.
pub fn point(stage: &str, step: &str) -> Result<()> {
    let Some(spec) = spec() else {
        return Ok(());
    };
    match lookup(spec, stage, step) {
        None => Ok(()),
        Some(Action::Fail) => Err(Error::msg(step, "failure injected by NS_FAULT")),
        Some(Action::Pause) => loop {
            nix::unistd::pause();
        },
        Some(Action::Kill) => {
            // kill(getpid()), not raise(): glibc's raise signals the thread its thread
            // descriptor names, which in ns-exec's vfork-style child (spawn.rs) is the thread
            // that cloned it. The first process of a pid namespace ignores a SIGKILL of its
            // own (the kernel protects it), and exits 125 here instead.
            let _ =
                nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
            crate::sys::exit_now(crate::exit::FAILED)
        }
        Some(Action::Panic) => panic!("{stage}: {step}: panic injected by NS_FAULT"),
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
        assert_eq!(
            lookup("ns-init:x:panic", "ns-init", "x"),
            Some(Action::Panic)
        );
        assert_eq!(lookup("ns-init:x:explode", "ns-init", "x"), None);
        assert_eq!(lookup("", "ns-init", "x"), None);
    }
}
