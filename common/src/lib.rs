//! The library the ns-tools programs share: the container config, the handoff protocol between
//! stages (fds, `NS_*` variables, sync messages), errors and exit statuses, and the few raw
//! system calls `nix` does not wrap.
//!
//! What must not live here: policy. Which namespaces, mounts or limits a container gets is the
//! config's and the caller's business; this crate only reads, checks and carries it.

pub mod caps;
pub mod cli;
pub mod config;
pub mod error;
pub mod exit;
pub mod fault;
pub mod fd;
pub mod handoff;
pub mod log;
pub mod mount_api;
pub mod net;
pub mod ns;
pub mod plan;
pub mod sync;
pub mod sync_pipe;
pub mod sys;
pub mod trace;

pub use error::{Context, Error, Result};
