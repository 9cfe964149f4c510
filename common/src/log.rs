//! Optional step logging (`--log FILE`, `NS_LOG_FD`).
//!
//! Each line is `<seconds.micros> <tool>[<pid>]: <message>`, appended with one `write` so lines
//! from several stages sharing the file do not interleave. Logging never fails a run: a write
//! error is dropped.

use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static SINK: RefCell<Option<(File, &'static str)>> = const { RefCell::new(None) };
}

/// Starts logging to `file` as `tool`.
pub fn init(file: File, tool: &'static str) {
    SINK.with(|s| *s.borrow_mut() = Some((file, tool)));
}

/// Stops logging and gives the file back (to hand it on to the next stage).
pub fn take() -> Option<File> {
    SINK.with(|s| s.borrow_mut().take().map(|(f, _)| f))
}

/// Whether a log is open.
pub fn enabled() -> bool {
    SINK.with(|s| s.borrow().is_some())
}

/// Appends one line, if logging.
pub fn line(message: std::fmt::Arguments<'_>) {
    SINK.with(|s| {
        if let Some((file, tool)) = s.borrow_mut().as_mut() {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let text = format!(
                "{}.{:06} {tool}[{}]: {message}\n",
                now.as_secs(),
                now.subsec_micros(),
                std::process::id()
            );
            let _ = file.write_all(text.as_bytes());
        }
    });
}

/// Logs a formatted line when logging is on: `ns_log!("cloned child {pid}")`.
#[macro_export]
macro_rules! ns_log {
    ($($arg:tt)*) => {
        if $crate::log::enabled() {
            $crate::log::line(format_args!($($arg)*));
        }
    };
}
