//! Namespace kinds: their config names, clone flags and `/proc/PID/ns/*` files.
//!
//! The config accepts the 2014 names (`NEWNS`, `NEWPID`, ...) and the OCI runtime spec's
//! (`mount`, `pid`, ...), so an OCI `config.json` can map onto the same type later.

use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for ns in Namespace::ALL {
            assert_eq!(Namespace::from_name(ns.name()), Some(ns));
        }
        assert_eq!(Namespace::from_name("network"), Some(Namespace::Net));
        assert_eq!(Namespace::from_name("NEWFOO"), None);
    }
}
