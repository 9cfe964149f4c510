//! ns-init's steps, as a library so each can be tested on its own.
//!
//! [`setup`] runs them in order: wait for `go`, mounts and `pivot_root` ([`rootfs`]),
//! hostname, then the identity ([`identity`]: user, groups, capabilities, cwd), then the exec
//! ([`exec`]). The ns-init program (`main.rs`) and ns-exec's cloned child both call it.

pub mod console;
pub mod exec;
pub mod identity;
pub mod plan;
pub mod rootfs;
pub mod setup;
