//! ns-cgroup as a library: a container's cgroup on cgroup v1, hybrid and v2 layouts, used by the
//! `ns-cgroup` program and by `ns-exec`.
//!
//! The steps, in the order a run uses them:
//! 1. [`Layout::detect`] reads `/proc/self/mountinfo` and `/proc/self/cgroup` ([`layout`]);
//! 2. [`Cgroup::create`] makes the cgroup below the caller's own cgroup in the hierarchies its
//!    limits need (plus freezer, and the cgroup2 tree on hybrid; every one without limits, see
//!    [`cgroup`]) and applies the limits, planned by [`limits::plan`] (v2 devices through
//!    [`devices`]);
//! 3. [`Cgroup::join`] moves the container's first process in, before it is released, so no
//!    child of it can start outside ([`Cgroup::join_except_unified`] when it was cloned into the
//!    cgroup2 directory already);
//! 4. [`stats::collect`], [`watch::watch`], [`Cgroup::freeze`], [`Cgroup::kill`] while it runs;
//! 5. [`Cgroup::remove`] kills what is left, waits (bounded) and removes bottom-up.
//!
//! Every change to the tree (steps 2, 3 and 5, and `set`) is planned before it is made, as a
//! list of [`common::plan::Action`]s that `--plan` prints and a run walks, tracing each
//! ([`plan`]): [`Cgroup::plan_create`] then [`CreatePlan::apply`] is what `create` does.
//!
//! Everything here is single-threaded and synchronous; the only waits are bounded ones.

pub mod cgroup;
pub mod cli;
pub mod devices;
pub mod files;
pub mod layout;
pub mod limits;
pub mod plan;
pub mod stats;
pub mod watch;

pub use cgroup::Cgroup;
pub use layout::{Kind, Layout};
pub use plan::CreatePlan;
