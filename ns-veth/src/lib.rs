//! ns-veth as a library: the stage's steps, used by its program, by ns-exec (host side) and by
//! ns-init (container side).
//!
//! The order of a container's network setup, and who runs what:
//!
//! 1. ns-exec, between the child's `ready` and `go`, calls [`host_side`] for each `networks[]`
//!    entry against the child ([`Target::Pid`]); it collects one [`NetContext`] per network.
//!    On a failure path it calls [`undo`] for those already made.
//! 2. The contexts travel to ns-init inside `go`; ns-init, before its mounts, calls
//!    [`container_side`] for each in order, then [`add_routes`] (or [`apply`] for both).
//! 3. When the container's network namespace dies, the kernel deletes every pair whose peer is
//!    in it, host end included: nothing to clean up on a normal exit.
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

pub use host::{Target, check, delete, host_side, undo};
pub use inside::{add_routes, apply, container_side};
