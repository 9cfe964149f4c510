//! ns-veth as a library: the stage's steps, used by its program, by ns-exec (host side) and by
//! ns-init (container side).
//!
//! The order of a container's network setup, and who runs what:
//!
//! 1. ns-exec, between the child's `ready` and `go`, plans the host side of each `networks[]`
//!    entry against the child ([`plan_host_side`] with [`Target::Pid`]) and applies it
//!    ([`HostPlan::apply`]; [`host_side`] does both); it collects one [`NetContext`] per
//!    network. On a failure path it calls [`undo`] for those already made.
//! 2. The contexts travel to ns-init inside `go`; ns-init, before its mounts, calls [`apply`],
//!    which walks [`inside_actions`]: each context in order, then the routes.
//! 3. When the container's network namespace dies, the kernel deletes every pair whose peer is
//!    in it, host end included: nothing to clean up on a normal exit.
//!
//! Both sides are plans first (`common::plan`): the actions `--plan` prints and `--explain`
//! shows as `ip` commands are the ones the apply takes, each recorded under its step name in
//! the stage trace (`NS_TRACE`, `common::trace`). Host steps (stage `ns-veth`): see [`host`];
//! container steps (stage `ns-init`): see [`inside`].
//!
//! Netlink messages are encoded by the `netlink-packet-route` crate ([`netlink`]).
//!
//! [`NetContext`]: common::net::NetContext

pub mod addr;
pub mod cli;
pub mod host;
pub mod inside;
pub mod name;
pub mod netlink;

pub use host::{HostPlan, Target, check, delete, host_side, plan_host_side, undo};
pub use inside::{add_routes, apply, container_side, inside_actions};
