//! The names of the handoff protocol: the `NS_*` variables and fd numbers stages pass on.
//!
//! `docs/handoff.md` is the contract; this module is its code form. A variable carries only a
//! small value (an fd number), never data: anything sized by the config travels over an fd, so a
//! large config cannot push a re-exec over `ARG_MAX`. A consumer removes the variables it took
//! before it runs anything that is not one of our stages.

/// ns-init's end of the `SOCK_SEQPACKET` sync socket (see [`crate::sync`]), or the read end of
/// a script's pipe (see [`crate::sync_pipe`]).
pub const ENV_SYNC_FD: &str = "NS_SYNC_FD";
/// A writable fd ns-init writes its `ready` line to, then closes (a script's pipe).
pub const ENV_READY_FD: &str = "NS_READY_FD";
/// A readable fd holding the canonical config JSON (a sealed memfd from `ns-exec`).
pub const ENV_CONFIG_FD: &str = "NS_CONFIG_FD";
/// A writable fd to append log lines to.
pub const ENV_LOG_FD: &str = "NS_LOG_FD";
/// The console: a pts peer that becomes the container's terminal (from `ns-pty`, or allocated
/// by `ns-exec` for `tty: true`).
pub const ENV_CONSOLE_FD: &str = "NS_CONSOLE_FD";
/// Path of `ns-init`, overriding the one beside `ns-exec`.
pub const ENV_INIT_PATH: &str = "NS_INIT";

/// The fd number `ns-exec` gives the sync socket in the container's first process.
pub const SYNC_FD: i32 = 3;
/// The fd number `ns-exec` gives the config memfd.
pub const CONFIG_FD: i32 = 4;
/// The fd number `ns-exec` gives the log file, when logging.
pub const LOG_FD: i32 = 5;
/// The fd number `ns-exec` gives the console, when the container has a terminal.
pub const CONSOLE_FD: i32 = 6;

/// The version of the wire messages; every JSON message carries it as `"v"`.
pub const VERSION: u32 = 1;
