//! The rootfs plan: what to mount, create and switch, as plain data, in order.
//!
//! [`plan`] is pure: it reads the config and nothing else, so the order and every flag can be
//! tested without privileges and printed as JSON. [`super::apply`] then does exactly these
//! steps. Why the order is what it is:
//!
//! - propagation first, before any mount, so nothing we mount reaches the host;
//! - `/dev` before anything inside it (nodes, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, links);
//! - `/proc` before `/dev/core`, which exists only when the container's `/proc/kcore` does;
//! - config mounts after the system mounts, so a config mount inside `/dev` lands on our tmpfs
//!   and not under it; config device nodes after the config mounts, as in 2014;
//! - the masks and read-only paths of `/proc` after every config mount, node and the console
//!   (none may go under `/proc` or `/sys`), so they cover the container's final `/proc`;
//! - `/sys` as late as it can be, then its masks: sysfs shows the network namespace of the
//!   process that mounts it, and when ns-exec makes that namespace beside the clone, it is
//!   joined right before (every step up to here runs while ns-exec makes it);
//! - the root switch after all of that: detaching the host's tree waits for an RCU grace
//!   period, which takes longest while the other CPU is busy making the network namespace
//!   (measured: 100 us then, 40 us idle), and nothing before needs the switch;
//! - the read-only root after the switch (with every mount point created);
//! - `umask(022)` last: everything before runs with umask 0 so modes are exact.

use serde::Serialize;
use std::path::PathBuf;

use common::config::{Config, DeviceType, MountKind};
use common::{Error, Result};

/// Files and directories hidden from the container when `restrictions` is on: a file gets the
/// null device bound over it, a directory an empty read-only tmpfs. Missing ones are skipped.
/// (Docker's and runc's default `maskedPaths`; CVE-2015-3630.)
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/latency_stats",
    "/proc/timer_stats",
    "/proc/acpi",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only (bound onto themselves, then read-only) when `restrictions` is on.
/// Missing ones are skipped. `/proc/sysrq-trigger` is here rather than masked: reading it is
/// harmless, writing it reboots or crashes the host.
pub const READONLY_PATHS: [&str; 6] = [
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/fs",
    "/proc/asound",
];

/// The device nodes every container gets in `/dev`, as (name, major, minor); all are
/// character devices with mode 0666 and owner 0:0. A `device_nodes` entry with the same path
/// replaces the default.
pub const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The symlinks in `/dev`, as (path, target). `/dev/ptmx` points into the container's own
/// devpts instance, so ptys opened there belong to it.
pub const DEV_SYMLINKS: [(&str, &str); 5] = [
    ("/dev/ptmx", "pts/ptmx"),
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// Permission bits of a device node whose config gives no `file_mode`.
pub const DEFAULT_DEVICE_MODE: u32 = 0o666;

/// The umask the command starts with.
pub const FINAL_UMASK: u32 = 0o022;

/// One step of the plan. Paths in the container are absolute strings; the host paths are the
/// rootfs and bind sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Sets the process umask.
    Umask {
        /// The new umask.
        mask: u32,
    },
    /// Changes the propagation of every mount in the namespace (`/`, recursively), so mounts
    /// made from here on do not propagate to the host.
    RootPropagation {
        /// Private, or slave when the root is switched with `MS_MOVE` (host mounts still
        /// propagate in, ours never out).
        propagation: Propagation,
    },
    /// Binds the rootfs onto itself (recursively), making it a mount point for the root
    /// switch, and opens it: every later path is resolved inside it.
    BindRootfs {
        /// The rootfs on the host (absolute, canonical).
        rootfs: PathBuf,
    },
    /// Mounts a new filesystem instance on `target`, created as a directory when missing.
    Mount {
        /// The filesystem type (`proc`, `sysfs`, `tmpfs`, `devpts`, `mqueue`).
        fstype: String,
        /// Where, in the container.
        target: String,
        /// Mount flags.
        flags: Vec<MountFlag>,
        /// Filesystem options, as mount(8) writes them (`mode=755,size=65536k`).
        data: String,
        /// Whether symlinks on the way to `target` are followed (inside the root) or refused.
        symlinks: Symlinks,
    },
    /// Creates a device node (parents as needed, no symlinks followed); when `mknod` is not
    /// allowed (`EPERM`, as in a user namespace), binds the host's node of the same path
    /// instead, after checking it is the same device.
    DeviceNode {
        /// The node's path in the container (under `/dev`).
        path: String,
        /// Character or block.
        kind: DeviceType,
        /// Major number.
        major: u64,
        /// Minor number.
        minor: u64,
        /// Permission bits, applied exactly (no umask).
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
    /// Creates a symlink (its parent must be free of symlinks).
    Symlink {
        /// The link's path in the container.
        path: String,
        /// What it points to.
        target: String,
        /// Only when this container path exists (then resolved without symlinks).
        #[serde(skip_serializing_if = "Option::is_none")]
        only_if_exists: Option<String>,
    },
    /// Binds a host path into the container (recursively); the target is created as a
    /// directory when the source is one, else as an empty file.
    Bind {
        /// The host path; opened before any other step.
        source: PathBuf,
        /// Where, in the container; symlinks are followed inside the root.
        target: String,
        /// Read-only, recursively, from the moment it becomes visible.
        readonly: bool,
        /// Make the mount private (no propagation either way).
        private: bool,
    },
    /// Binds the console (the pts handed in by the host side) onto `/dev/console`, by fd; only
    /// with `tty`, after `/dev` and the config's mounts and nodes, before the root switch
    /// (the host's devpts is still reachable to check the pts against).
    Console,
    /// `pivot_root` into the rootfs; the old root is detached and the cwd is `/`.
    PivotRoot,
    /// Receives the network namespace ns-exec made beside the clone (a `netns` message on the
    /// sync socket) and joins it (`setns`); right before `/sys` is mounted, which shows the
    /// network namespace of the process that mounts it.
    JoinNetns,
    /// Moves the rootfs mount onto `/` and `chroot`s into it (for a rootfs on a ramdisk, where
    /// `pivot_root` is not possible); the cwd is `/`.
    MoveRoot,
    /// Makes the mount at `/` read-only, keeping its other flags.
    ReadonlyRoot,
    /// Hides a file or directory (see [`MASKED_PATHS`]); missing paths are skipped.
    MaskPath {
        /// The path in the container.
        path: String,
    },
    /// Makes a path read-only (see [`READONLY_PATHS`]); missing paths are skipped.
    ReadonlyPath {
        /// The path in the container.
        path: String,
    },
}

/// Mount propagation of `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// `MS_PRIVATE`: no events in or out.
    Private,
    /// `MS_SLAVE`: events from the host come in, ours do not go out.
    Slave,
}

/// A per-mount flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountFlag {
    /// Read-only.
    Rdonly,
    /// Ignore set-user-id and set-group-id bits.
    Nosuid,
    /// No device nodes.
    Nodev,
    /// No execution.
    Noexec,
    /// Always update access times.
    Strictatime,
}

/// How symlinks on the way to a container path are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Symlinks {
    /// Followed, but inside the root: an absolute target starts at the container's `/` and
    /// `..` stops there. For the destinations a config names, as images use links.
    InRoot,
    /// Refused with an error: for what ns-init owns (`/proc`, `/sys`, `/dev` and all it
    /// creates in its `/dev`), which must be real directories (CVE-2019-19921).
    Refuse,
}

use MountFlag::{Nodev, Noexec, Nosuid, Rdonly, Strictatime};

/// Builds the plan for `config`, whose `rootfs` must be set (validation does that);
/// `join_netns` when the container's network namespace comes from ns-exec on the sync socket
/// rather than from the clone (see [`Step::JoinNetns`]).
pub fn plan(config: &Config, join_netns: bool) -> Result<Vec<Step>> {
    let rootfs = config
        .rootfs
        .clone()
        .ok_or_else(|| Error::msg("plan the rootfs", "the config names no rootfs"))?;
    let mut steps = vec![
        Step::Umask { mask: 0 },
        Step::RootPropagation {
            propagation: if config.no_pivot_root {
                Propagation::Slave
            } else {
                Propagation::Private
            },
        },
        Step::BindRootfs { rootfs },
    ];
    system_mounts(config, &mut steps);
    config_mounts(config, &mut steps)?;
    config_devices(config, &mut steps)?;
    if config.tty {
        steps.push(Step::Console);
    }
    // The masks and read-only paths in /proc: no config mount can go under it (or under /sys),
    // so they already cover the container's final /proc.
    if config.restrictions {
        steps.extend(restrictions_under("/proc/"));
    }
    if join_netns {
        steps.push(Step::JoinNetns);
    }
    // A writable sysfs lets the container reconfigure host devices and kernel knobs.
    let sys_flags: &[MountFlag] = if config.restrictions {
        &[Rdonly, Nosuid, Nodev, Noexec]
    } else {
        &[Nosuid, Nodev, Noexec]
    };
    steps.push(system("sysfs", "/sys", sys_flags, ""));
    if config.restrictions {
        steps.extend(restrictions_under("/sys/"));
    }
    steps.push(if config.no_pivot_root {
        Step::MoveRoot
    } else {
        Step::PivotRoot
    });
    if config.readonly_fs {
        steps.push(Step::ReadonlyRoot);
    }
    steps.push(Step::Umask { mask: FINAL_UMASK });
    Ok(steps)
}

/// The masks, then the read-only paths, of `restrictions` under `prefix`, in list order.
fn restrictions_under(prefix: &str) -> impl Iterator<Item = Step> + '_ {
    let masks = MASKED_PATHS
        .iter()
        .filter(move |p| p.starts_with(prefix))
        .map(|p| Step::MaskPath {
            path: p.to_string(),
        });
    let readonly = READONLY_PATHS
        .iter()
        .filter(move |p| p.starts_with(prefix))
        .map(|p| Step::ReadonlyPath {
            path: p.to_string(),
        });
    masks.chain(readonly)
}

/// A mount of a filesystem ns-init owns: the target may not be reached through a symlink.
fn system(fstype: &str, target: &str, flags: &[MountFlag], data: &str) -> Step {
    Step::Mount {
        fstype: fstype.to_string(),
        target: target.to_string(),
        flags: flags.to_vec(),
        data: data.to_string(),
        symlinks: Symlinks::Refuse,
    }
}

/// `/proc`, and a fresh `/dev` with its nodes, devpts, shm, mqueue and links (`/sys` comes
/// later: see the module documentation).
fn system_mounts(config: &Config, steps: &mut Vec<Step>) {
    steps.push(system("proc", "/proc", &[Nosuid, Nodev, Noexec], ""));
    steps.push(system("tmpfs", "/dev", &[Nosuid, Strictatime], "mode=755"));
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = format!("/dev/{name}");
        // The config's own entry for the same path wins; it is made with the config's nodes.
        if config
            .device_nodes
            .iter()
            .any(|d| d.path.as_deref() == Some(&path))
        {
            continue;
        }
        steps.push(Step::DeviceNode {
            path,
            kind: DeviceType::Char,
            major,
            minor,
            mode: DEFAULT_DEVICE_MODE,
            uid: 0,
            gid: 0,
        });
    }
    steps.push(system(
        "devpts",
        "/dev/pts",
        &[Nosuid, Noexec],
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    ));
    steps.push(system(
        "tmpfs",
        "/dev/shm",
        &[Nosuid, Nodev, Noexec],
        "mode=1777,size=65536k",
    ));
    steps.push(system(
        "mqueue",
        "/dev/mqueue",
        &[Nosuid, Nodev, Noexec],
        "",
    ));
    for (path, target) in DEV_SYMLINKS {
        steps.push(Step::Symlink {
            path: path.to_string(),
            target: target.to_string(),
            only_if_exists: None,
        });
    }
    steps.push(Step::Symlink {
        path: "/dev/core".to_string(),
        target: "/proc/kcore".to_string(),
        only_if_exists: Some("/proc/kcore".to_string()),
    });
}

/// `mounts[]`, in order.
fn config_mounts(config: &Config, steps: &mut Vec<Step>) -> Result<()> {
    for (i, m) in config.mounts.iter().enumerate() {
        let at = |field: &str| format!("mounts[{i}].{field}");
        if m.kind == MountKind::Devtmpfs {
            // The 2014 marker for a tmpfs /dev, which every container gets anyway.
            continue;
        }
        let target = m
            .destination
            .clone()
            .ok_or_else(|| Error::config(at("destination"), "is required"))?;
        check_destination(&target, &at("destination"))?;
        match m.kind {
            MountKind::Bind => {
                let source = m
                    .source
                    .clone()
                    .ok_or_else(|| Error::config(at("source"), "a bind mount needs a source"))?;
                steps.push(Step::Bind {
                    source,
                    target,
                    readonly: !m.writable,
                    private: m.private,
                });
            }
            MountKind::Tmpfs => {
                let data = match m.size {
                    Some(size) => format!("size={}", size.0),
                    None => String::new(),
                };
                steps.push(Step::Mount {
                    fstype: "tmpfs".to_string(),
                    target,
                    // The 2014 flags for config mounts (libcontainer's defaultMountFlags).
                    flags: vec![Nosuid, Nodev, Noexec],
                    data,
                    symlinks: Symlinks::InRoot,
                });
            }
            MountKind::Devtmpfs => {}
        }
    }
    Ok(())
}

/// Validation already refuses these; checked again because a plan that mounts over `/`,
/// `/proc` or `/sys` could undo the masks whatever built the config.
fn check_destination(dest: &str, field: &str) -> Result<()> {
    let bad = !dest.starts_with('/')
        || dest == "/"
        || dest.split('/').any(|c| c == "..")
        || ["/proc", "/sys"]
            .iter()
            .any(|fs| dest == *fs || dest.starts_with(&format!("{fs}/")));
    if bad {
        return Err(Error::config(
            field,
            format!("{dest:?} is not an allowed mount destination"),
        ));
    }
    Ok(())
}

/// `device_nodes[]`, in order.
fn config_devices(config: &Config, steps: &mut Vec<Step>) -> Result<()> {
    for (i, d) in config.device_nodes.iter().enumerate() {
        let at = format!("device_nodes[{i}]");
        let path = d
            .path
            .clone()
            .filter(|p| p.starts_with("/dev/") && !p.split('/').any(|c| c == ".."))
            .ok_or_else(|| Error::config(format!("{at}.path"), "device nodes go under /dev"))?;
        let number = |n: i64| {
            u64::try_from(n).map_err(|_| Error::config(&at, "device numbers are out of range"))
        };
        steps.push(Step::DeviceNode {
            path,
            kind: d.kind,
            major: number(d.major_number)?,
            minor: number(d.minor_number)?,
            mode: d.file_mode.unwrap_or(DEFAULT_DEVICE_MODE),
            uid: d.uid.unwrap_or(0),
            gid: d.gid.unwrap_or(0),
        });
    }
    Ok(())
}
