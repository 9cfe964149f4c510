//! The stage trace (`NS_TRACE=FILE`): one JSON line per step each stage takes, with start and
//! end times and the outcome, so a user sees where start-up time goes and which step failed.
//!
//! A line: `{"v":1,"stage":"ns-init","pid":42,"step":"mount","what":"/proc",
//! "start_us":1764400000123456,"end_us":1764400000123502,"outcome":"ok"}`; a failed step has
//! `"outcome":"error"` and `"error"`, the one-line message. Times are microseconds of
//! `CLOCK_REALTIME`, comparable across the stages of one run. Step names are the `step` names
//! of the stage's plan ([`crate::plan`]).
//!
//! Every stage opens the file itself (append, close-on-exec) when it starts, before any mount
//! changes what the path means, and writes each line with one `write`, so lines of stages that
//! share the file never interleave. Tracing never fails a run once the file is open: a failed
//! write is dropped. With the variable unset, a step costs one thread-local lookup.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Context, Error, Result};
use crate::handoff::VERSION;
use crate::plan::Action;

/// The variable naming the trace file.
pub const ENV_TRACE: &str = "NS_TRACE";

thread_local! {
    static SINK: RefCell<Option<File>> = const { RefCell::new(None) };
}

/// Opens the file `$NS_TRACE` names, if it is set and not empty. A file that cannot be opened
/// is an error: the user asked for a trace.
pub fn init_from_env() -> Result<()> {
    match std::env::var_os(ENV_TRACE).filter(|v| !v.is_empty()) {
        Some(path) => init(std::path::Path::new(&path)),
        None => Ok(()),
    }
}

/// Appends the trace to `path` (created with mode 0600 when missing).
pub fn init(path: &std::path::Path) -> Result<()> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .ctx(|| format!("open trace file {} ({ENV_TRACE})", path.display()))?;
    SINK.with(|s| *s.borrow_mut() = Some(file));
    Ok(())
}

/// A copy (a new fd) of this thread's trace file, for another thread to write the same trace
/// ([`init_file`]); `None` when not tracing.
pub fn duplicate() -> Result<Option<File>> {
    SINK.with(|s| {
        s.borrow()
            .as_ref()
            .map(|f| f.try_clone().ctx(|| "duplicate the trace file".to_string()))
            .transpose()
    })
}

/// Writes this thread's trace to `file` (from [`duplicate`]).
pub fn init_file(file: File) {
    SINK.with(|s| *s.borrow_mut() = Some(file));
}

/// Whether a trace is being written.
pub fn enabled() -> bool {
    SINK.with(|s| s.borrow().is_some())
}

/// Microseconds since the epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Runs `f` as step `step` of `stage` (acting on `what`, if given), recording it.
pub fn step<T>(
    stage: &str,
    step: &str,
    what: Option<&str>,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if !enabled() {
        return f();
    }
    let start = now_us();
    let result = f();
    record(stage, step, what, start, now_us(), result.as_ref().err());
    result
}

/// Runs `f` as the plan action `action`, recording it under the action's step name.
pub fn action<T>(action: &Action, f: impl FnOnce() -> Result<T>) -> Result<T> {
    step(action.stage, &action.step, action.what(), f)
}

/// Appends one line for a step that ran from `start_us` to `end_us`.
pub fn record(
    stage: &str,
    step: &str,
    what: Option<&str>,
    start_us: u64,
    end_us: u64,
    error: Option<&Error>,
) {
    SINK.with(|s| {
        let mut sink = s.borrow_mut();
        let Some(file) = sink.as_mut() else { return };
        let mut line = serde_json::json!({
            "v": VERSION,
            "stage": stage,
            "pid": std::process::id(),
            "step": step,
            "start_us": start_us,
            "end_us": end_us,
            "outcome": if error.is_some() { "error" } else { "ok" },
        });
        if let Some(w) = what {
            line["what"] = w.into();
        }
        if let Some(e) = error {
            line["error"] = e.to_string().into();
        }
        let mut text = line.to_string();
        text.push('\n');
        let _ = file.write_all(text.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_recorded_with_their_outcome() {
        let dir = std::env::temp_dir().join(format!("ns-trace-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        init(&dir).unwrap();
        assert_eq!(step("ns-test", "one", Some("/x"), || Ok(7)).unwrap(), 7);
        let failed: Result<()> = step("ns-test", "two", None, || Err(Error::msg("mount", "no")));
        assert!(failed.is_err());
        SINK.with(|s| *s.borrow_mut() = None);
        let text = std::fs::read_to_string(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["step"], "one");
        assert_eq!(lines[0]["what"], "/x");
        assert_eq!(lines[0]["outcome"], "ok");
        assert!(lines[0]["end_us"].as_u64() >= lines[0]["start_us"].as_u64());
        assert_eq!(lines[1]["outcome"], "error");
        assert_eq!(lines[1]["error"], "mount: no");
    }

    #[test]
    fn without_a_file_a_step_just_runs() {
        assert!(!enabled());
        assert_eq!(step("ns-test", "x", None, || Ok(1)).unwrap(), 1);
    }
}
