//! Namespace kinds: their config names, clone flags and `/proc/PID/ns/*` files.
//!
//! The config accepts the 2014 names (`NEWNS`, `NEWPID`, ...) and the OCI runtime spec's
//! (`mount`, `pid`, ...), so an OCI `config.json` can map onto the same type later.

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;

use crate::error::{Context, Error, Result};

/// One kind of namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Namespace {
    /// Mount namespace (`CLONE_NEWNS`).
    #[serde(rename = "NEWNS")]
    Mount,
    /// Hostname and domain name (`CLONE_NEWUTS`).
    #[serde(rename = "NEWUTS")]
    Uts,
    /// System V IPC and POSIX message queues (`CLONE_NEWIPC`).
    #[serde(rename = "NEWIPC")]
    Ipc,
    /// User and group ids (`CLONE_NEWUSER`).
    #[serde(rename = "NEWUSER")]
    User,
    /// Process ids (`CLONE_NEWPID`).
    #[serde(rename = "NEWPID")]
    Pid,
    /// Network stack (`CLONE_NEWNET`).
    #[serde(rename = "NEWNET")]
    Net,
    /// Cgroup root (`CLONE_NEWCGROUP`).
    #[serde(rename = "NEWCGROUP")]
    Cgroup,
}

impl Namespace {
    /// Every kind, in the order `setns` should join them when entering a container
    /// (user first; mount last but one so `/proc` paths still resolve on the host side while the
    /// others are opened, pid last because it only applies to children).
    pub const ALL: [Namespace; 7] = [
        Namespace::User,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Net,
        Namespace::Cgroup,
        Namespace::Mount,
        Namespace::Pid,
    ];

    /// The config name of the 2014 schema (`NEWNS`).
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Mount => "NEWNS",
            Namespace::Uts => "NEWUTS",
            Namespace::Ipc => "NEWIPC",
            Namespace::User => "NEWUSER",
            Namespace::Pid => "NEWPID",
            Namespace::Net => "NEWNET",
            Namespace::Cgroup => "NEWCGROUP",
        }
    }

    /// Parses a 2014 name (`NEWNS`) or an OCI name (`mount`).
    pub fn from_name(name: &str) -> Option<Namespace> {
        Some(match name {
            "NEWNS" | "mount" | "mnt" => Namespace::Mount,
            "NEWUTS" | "uts" => Namespace::Uts,
            "NEWIPC" | "ipc" => Namespace::Ipc,
            "NEWUSER" | "user" => Namespace::User,
            "NEWPID" | "pid" => Namespace::Pid,
            "NEWNET" | "network" | "net" => Namespace::Net,
            "NEWCGROUP" | "cgroup" => Namespace::Cgroup,
            _ => return None,
        })
    }

    /// The `clone(2)` flag that creates it.
    pub fn clone_flag(self) -> CloneFlags {
        match self {
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::User => CloneFlags::CLONE_NEWUSER,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }

    /// The file under `/proc/PID/ns/`.
    pub fn proc_file(self) -> &'static str {
        match self {
            Namespace::Mount => "mnt",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::User => "user",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Cgroup => "cgroup",
        }
    }
}

/// Makes a new network namespace and returns an fd to it, leaving this process in the one it
/// was in.
///
/// ns-exec makes the container's network namespace this way, beside the clone rather than in
/// it: creating one is the slowest part of a container's start (the kernel registers every
/// protocol's sysctl tables and the loopback device, a few hundred microseconds), and here it
/// runs while the child sets up its root filesystem, which joins it just before it mounts
/// `/sys` (sysfs shows the network namespace of the process that mounts it). The namespace
/// belongs to this process's user namespace, as one made by the clone would.
///
/// Only the calling thread enters the new namespace (`unshare(CLONE_NEWNET)` is per thread),
/// and only between two system calls. If it cannot return to its own network namespace, it is
/// left in the new one and the error says so: the caller must not go on with host-side
/// network work.
pub fn make_net_namespace() -> Result<OwnedFd> {
    let own = || {
        open(
            "/proc/thread-self/ns/net",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let host = own().ctx(|| "open this process's network namespace".into())?;
    unshare(CloneFlags::CLONE_NEWNET).ctx(|| "create a network namespace".into())?;
    let made = own().ctx(|| "open the new network namespace".into());
    // Back first, whatever happened: no error path may leave ns-exec in the new namespace.
    setns(&host, CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::sys(
            "return to the host's network namespace after creating the container's",
            e,
        )
    })?;
    made
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn names_round_trip() {
        for ns in Namespace::ALL {
            assert_eq!(Namespace::from_name(ns.name()), Some(ns));
        }
        assert_eq!(Namespace::from_name("network"), Some(Namespace::Net));
        assert_eq!(Namespace::from_name("NEWFOO"), None);
    }

    /// The namespace made is a network namespace other than ours, and we are still in ours.
    #[test]
    fn a_net_namespace_is_made_beside_this_thread() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (CAP_SYS_ADMIN)");
            return;
        }
        let ino = |path: &str| std::fs::metadata(path).unwrap().ino();
        let before = ino("/proc/thread-self/ns/net");
        let made = make_net_namespace().unwrap();
        let made_ino = nix::sys::stat::fstat(&made).unwrap().st_ino;
        assert_eq!(
            ino("/proc/thread-self/ns/net"),
            before,
            "left in the new one"
        );
        assert_ne!(made_ino, before, "not a new namespace");
        // setns with CLONE_NEWNET accepts only a network namespace.
        let back = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        setns(&made, CloneFlags::CLONE_NEWNET).unwrap();
        assert_eq!(ino("/proc/thread-self/ns/net"), made_ino);
        setns(&back, CloneFlags::CLONE_NEWNET).unwrap();
    }
}
