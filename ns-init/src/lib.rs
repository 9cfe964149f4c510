//! ns-init's steps, as a library so each can be tested on its own.
//!
//! `main.rs` runs them in order: wait for `go`, mounts and `pivot_root` ([`rootfs`]),
//! hostname, then the identity ([`identity`]: user, groups, capabilities, cwd), then the exec.

pub mod console;
pub mod exec;
pub mod identity;
pub mod plan;
pub mod rootfs;
