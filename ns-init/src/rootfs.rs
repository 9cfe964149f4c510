//! The container's root filesystem: system mounts, `/dev`, config mounts, the root switch,
//! and the masks.
//!
//! ns-init runs this first, as root in its new mount, pid, uts, ipc and net namespaces, before
//! the hostname and the identity. It is two halves (STYLE.md "plan, then apply"): [`plan`]
//! turns the config into an ordered list of [`Step`]s without touching anything, and
//! [`apply`] carries them out. The order, and why (nsinit-2014.md §5.2, hardened):
//!
//! 1. `/` recursively private (slave for `no_pivot_root`) before any mount, so none of ours
//!    reaches the host;
//! 2. the rootfs bound onto itself, so it is a mount point `pivot_root` accepts, and opened
//!    once: from here every container path is resolved inside that fd, never as a host path
//!    string, and symlinks never lead out of it (security-and-hygiene.md §1.3);
//! 3. `/proc` and a fresh tmpfs `/dev` with its nodes, devpts, shm, mqueue and links; `/proc`
//!    and `/dev` must be real directories;
//! 4. the config's `mounts`, then its `device_nodes`;
//! 5. with `tty`, the console bound onto `/dev/console` (by fd, checked against the host's
//!    devpts while that is still reachable);
//! 6. with `restrictions`, the masks and read-only paths of `/proc` (§1.4): nothing later
//!    goes under `/proc`, so they cover the container's final one;
//! 7. `/sys` (read-only with `restrictions`, a real directory), after joining the network
//!    namespace when ns-exec made it beside the clone (sysfs shows the mounter's), and its
//!    masks;
//! 8. the root switch (`pivot_root`, or `MS_MOVE` + `chroot`), with the cwd at `/`, then
//!    `readonly_fs`;
//! 9. `umask(022)`.
//!
//! Mounts go through the new mount API onto target fds rather than `mount(2)` onto
//! `/proc/self/fd/N`: no trusted `/proc` is needed before we mount one, a bind is made
//! read-only (recursively) while still detached so it is never visible writable, and
//! `mount_setattr` keeps a mount's locked flags without reading them first. Linux 5.12 or
//! later is needed. See mount_namespaces(7), pivot_root(2), openat2(2), open_tree(2),
//! move_mount(2), mount_setattr(2).

mod apply;
mod plan;
mod resolve;

#[cfg(test)]
mod tests;

pub use apply::apply;
pub use plan::{
    DEFAULT_DEVICE_MODE, DEFAULT_DEVICES, DEV_SYMLINKS, FINAL_UMASK, MASKED_PATHS, MountFlag,
    Propagation, READONLY_PATHS, Step, Symlinks, plan,
};
