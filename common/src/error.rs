//! The one error type of ns-tools.
//!
//! An error says what we were doing (`mount proc on /proc`), keeps the errno as a number so
//! callers can match on it, and knows the exit status it maps to. It crosses process boundaries
//! as JSON (see [`crate::sync`]) without losing any of that, so `ns-exec` can print the exact
//! line `ns-init` would have printed. Displayed, it is one line: `<what>: <cause>`; the program
//! name is put in front by [`crate::cli::fatal`].

use nix::errno::Errno;
use std::fmt;

use crate::exit;

/// A failure of one step, with the exit status it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What was being done, e.g. `mount proc on /proc` or `config: cgroups.memory`.
    pub what: String,
    /// The system error, when a system call failed.
    pub errno: Option<Errno>,
    /// Further explanation when there is no errno, or in addition to it.
    pub detail: Option<String>,
    /// The exit status this error maps to (see [`crate::exit`]).
    pub code: i32,
}

/// Shorthand for results of ns-tools steps.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A system call failed while doing `what`.
    pub fn sys(what: impl Into<String>, errno: Errno) -> Self {
        Error {
            what: what.into(),
            errno: Some(errno),
            detail: None,
            code: exit::FAILED,
        }
    }

    /// A failure that is not a system call's: `what` and an explanation.
    pub fn msg(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error {
            what: what.into(),
            errno: None,
            detail: Some(detail.into()),
            code: exit::FAILED,
        }
    }

    /// A bad config value at the JSON path `path` (`cgroups.memory`).
    pub fn config(path: impl fmt::Display, detail: impl Into<String>) -> Self {
        let path = path.to_string();
        let what = if path.is_empty() || path == "." {
            "config".to_string()
        } else {
            format!("config: {path}")
        };
        Error::msg(what, detail)
    }

    /// A command-line mistake.
    pub fn usage(detail: impl Into<String>) -> Self {
        Error::msg("usage", detail)
    }

    /// `execve` of `program` failed: 127 when it was not found, 126 otherwise.
    pub fn exec(program: impl fmt::Display, errno: Errno) -> Self {
        Error {
            what: format!("exec {program}"),
            errno: Some(errno),
            detail: None,
            code: exit::for_exec_errno(errno),
        }
    }

    /// Wraps a `std::io::Error` from doing `what`.
    pub fn io(what: impl Into<String>, err: std::io::Error) -> Self {
        match err.raw_os_error() {
            Some(n) => Error::sys(what, Errno::from_raw(n)),
            None => Error::msg(what, err.to_string()),
        }
    }

    /// Puts `context` in front of what was being done (`ns-init` steps add their step name).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.what = format!("{context}: {}", self.what);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(errno) = self.errno {
            write!(f, ": {}", errno.desc())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Adds the step being done to errno results, so `?` keeps the call site's words.
pub trait Context<T> {
    /// On error, wrap the errno with `what`.
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_one_line_with_errno_text() {
        let e = Error::sys("mount proc on /proc", Errno::EPERM);
        assert_eq!(
            e.to_string(),
            "mount proc on /proc: Operation not permitted"
        );
        assert_eq!(e.code, 125);
    }

    #[test]
    fn config_errors_name_the_path() {
        let e = Error::config("cgroups.memory", "expected bytes, got \"5x\"");
        assert_eq!(
            e.to_string(),
            "config: cgroups.memory: expected bytes, got \"5x\""
        );
    }

    #[test]
    fn exec_errors_carry_126_or_127() {
        assert_eq!(Error::exec("\"/bin/nope\"", Errno::ENOENT).code, 127);
        assert_eq!(Error::exec("\"/etc\"", Errno::EACCES).code, 126);
    }
}
