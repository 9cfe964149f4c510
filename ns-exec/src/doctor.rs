//! `ns-exec doctor`: what this host can do, and the fix for what it cannot.
//!
//! Each check probes the real thing where that is cheap and harmless (a child process that
//! unshares the namespaces and exits; opening `/dev/ptmx`), and reads the kernel's own
//! reports otherwise (the cgroup layout from `/proc/self/mountinfo`, module lists, sysctls).
//! It creates nothing that outlives it. One line per check, or one JSON document with
//! `--json`; the exit status says whether a default container (the five namespaces, no limits,
//! no network) can run: 0 yes, 1 no.

use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

use common::ns::Namespace;
use common::sys::{self, Forked};
use common::{Context, Result};
use ns_cgroup::layout::{Kind, Layout};

use crate::run::{explicit_init, find_helper};

/// One finding.
#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked (`namespaces`, `cgroup layout`, ...).
    pub name: String,
    /// Whether it works.
    pub ok: bool,
    /// Whether a default container needs it.
    pub required: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it does not work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    v: u32,
    ok: bool,
    checks: &'a [Check],
}

fn check(
    name: &str,
    required: bool,
    result: std::result::Result<String, (String, String)>,
) -> Check {
    match result {
        Ok(detail) => Check {
            name: name.into(),
            ok: true,
            required,
            detail,
            fix: None,
        },
        Err((detail, fix)) => Check {
            name: name.into(),
            ok: false,
            required,
            detail,
            fix: Some(fix),
        },
    }
}

/// Runs every check and prints the report; returns the exit status.
pub fn doctor(json: bool) -> Result<i32> {
    let checks = vec![
        check("privileges", true, privileges()),
        check("kernel", true, kernel()),
        check("namespaces", true, namespaces()),
        check("user namespaces", false, user_namespaces()),
        check("cgroup layout", false, cgroups()),
        check("veth and bridge", false, veth()),
        check("/dev/ptmx", false, ptmx()),
        check("ns-dmz", true, ns_dmz()),
        check("ns-init", explicit_init(None).is_some(), ns_init()),
        check("stage programs", false, stages()),
    ];
    let ok = checks.iter().all(|c| c.ok || !c.required);
    if json {
        let report = Report {
            v: 1,
            ok,
            checks: &checks,
        };
        println!(
            "{}",
            serde_json::to_string(&report).expect("the report serialises")
        );
    } else {
        for c in &checks {
            let mark = match (c.ok, c.required) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "warn",
            };
            println!("{mark} {}: {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                println!("     fix: {fix}");
            }
        }
        println!(
            "{}",
            if ok {
                "a default container can run here"
            } else {
                "a default container cannot run here"
            }
        );
    }
    Ok(if ok { 0 } else { 1 })
}

type Finding = std::result::Result<String, (String, String)>;

fn privileges() -> Finding {
    if nix::unistd::geteuid().is_root() {
        Ok("running as root".into())
    } else {
        Err((
            "not root: this version runs containers as root only".into(),
            "run ns-exec as root (rootless use with user namespaces is not supported yet)".into(),
        ))
    }
}

fn kernel() -> Finding {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) >= (5, 12) {
        Ok(format!("Linux {release}"))
    } else {
        Err((
            format!("Linux {release} is older than 5.12"),
            "ns-tools needs clone3, pidfds, openat2 and the new mount API (Linux 5.12 or later)"
                .into(),
        ))
    }
}

/// Whether a child can be cloned into the namespaces `flags` names.
fn can_clone(flags: u64) -> std::result::Result<(), nix::errno::Errno> {
    // SAFETY: single-threaded; the child only exits.
    match unsafe { sys::fork_into(flags, None) }? {
        Forked::Child => sys::exit_now(0),
        Forked::Parent(_, pidfd) => {
            let status = crate::wait::reap(std::os::fd::AsFd::as_fd(&pidfd));
            match status {
                Ok(0) => Ok(()),
                _ => Err(nix::errno::Errno::ECHILD),
            }
        }
    }
}

fn namespaces() -> Finding {
    let kinds = [
        Namespace::Mount,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Pid,
        Namespace::Net,
        Namespace::Cgroup,
    ];
    let all = kinds
        .iter()
        .fold(0, |f, ns| f | ns.clone_flag().bits() as u64);
    if can_clone(all).is_ok() {
        return Ok("mount, uts, ipc, pid, net and cgroup namespaces can be created".into());
    }
    let missing: Vec<&str> = kinds
        .iter()
        .filter(|ns| can_clone(ns.clone_flag().bits() as u64).is_err())
        .map(|ns| ns.name())
        .collect();
    Err((
        format!("cannot create: {}", missing.join(", ")),
        "a kernel built with these namespaces, and CAP_SYS_ADMIN (not a restricted container)"
            .into(),
    ))
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn user_namespaces() -> Finding {
    let max = read_trimmed("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    if max == "0" {
        return Err((
            "user.max_user_namespaces is 0".into(),
            "sysctl -w user.max_user_namespaces=15000 (needed only for future rootless use)".into(),
        ));
    }
    if read_trimmed("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Err((
            "kernel.unprivileged_userns_clone is 0 (Debian)".into(),
            "sysctl -w kernel.unprivileged_userns_clone=1 (needed only for future rootless use)"
                .into(),
        ));
    }
    if read_trimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
        == Some("1")
    {
        return Err((
            "AppArmor restricts unprivileged user namespaces (Ubuntu)".into(),
            "an AppArmor profile allowing userns for ns-exec, or sysctl -w \
             kernel.apparmor_restrict_unprivileged_userns=0 (future rootless use only)"
                .into(),
        ));
    }
    Ok(format!(
        "available (max {max}); not used yet: containers run as root"
    ))
}

/// The caller's own directory in the cgroup2 tree mounted at `mount`.
fn own_v2_dir(mount: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(mount.join(path.trim_start_matches('/')))
}

fn cgroups() -> Finding {
    let layout = Layout::detect().map_err(|e| {
        (
            e.to_string(),
            "mount cgroup2 at /sys/fs/cgroup (or the v1 controllers)".to_string(),
        )
    })?;
    let v1: Vec<String> = layout
        .hierarchies
        .iter()
        .filter(|h| !h.unified)
        .map(|h| h.label())
        .collect();
    match layout.kind {
        Kind::V2 => {
            let h = layout
                .unified()
                .ok_or_else(|| ("no cgroup2 tree".to_string(), "mount cgroup2".to_string()))?;
            let own = own_v2_dir(&h.mount).unwrap_or_else(|| h.mount.clone());
            let controllers =
                read_trimmed(&own.join("cgroup.controllers").to_string_lossy()).unwrap_or_default();
            let writable = nix::unistd::access(&own, nix::unistd::AccessFlags::W_OK).is_ok();
            if !writable {
                return Err((
                    format!("v2; {} is not writable: no child cgroups", own.display()),
                    "run from a delegated cgroup (systemd: Delegate=yes, or systemd-run \
                     --scope -p Delegate=yes)"
                        .into(),
                ));
            }
            Ok(format!(
                "v2; controllers in {}: {}",
                own.display(),
                if controllers.is_empty() {
                    "none"
                } else {
                    &controllers
                }
            ))
        }
        Kind::Hybrid => Ok(format!(
            "hybrid: v1 controllers {} plus a cgroup2 tree (limits use v1)",
            v1.join(" ")
        )),
        Kind::V1 => Ok(format!("v1: {}", v1.join(" "))),
    }
}

/// Creates a veth pair and a bridge in a throwaway network namespace: a child cloned into a
/// new one makes them there and exits, and the kernel removes them with the namespace.
fn veth() -> Finding {
    let probe = || -> Option<()> {
        let mut nl = ns_veth::netlink::Netlink::open().ok()?;
        let netns = nix::fcntl::open(
            "/proc/self/ns/net",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        nl.create_veth(
            "nsdoctor0",
            "nsdoctor1",
            None,
            std::os::fd::AsFd::as_fd(&netns),
        )
        .ok()
    };
    // SAFETY: single-threaded; the child only talks netlink in its own namespace and exits.
    let ok = match unsafe { sys::fork_into(libc::CLONE_NEWNET as u64, None) } {
        Ok(Forked::Child) => sys::exit_now(if probe().is_some() { 0 } else { 1 }),
        Ok(Forked::Parent(_, pidfd)) => {
            crate::wait::reap(std::os::fd::AsFd::as_fd(&pidfd)).is_ok_and(|s| s == 0)
        }
        Err(_) => false,
    };
    if ok {
        Ok("a veth pair and a bridge can be created (networks of type veth work)".into())
    } else {
        Err((
            "cannot create a veth pair and a bridge in a new network namespace".into(),
            "a kernel with CONFIG_VETH and CONFIG_BRIDGE (or those modules loaded)".into(),
        ))
    }
}

fn ptmx() -> Finding {
    match nix::fcntl::open(
        "/dev/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(_) => Ok("a pseudo-terminal can be allocated (tty: true works)".into()),
        Err(e) => Err((
            format!("open /dev/ptmx: {}", e.desc()),
            "mount devpts and make /dev/ptmx point to it".into(),
        )),
    }
}

fn version_of(program: &Path) -> Option<String> {
    let out = std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// ns-dmz, which every container's command is exec'd through: it answers a run without
/// arguments with its usage line (and status 126).
fn ns_dmz() -> Finding {
    let path = find_helper("ns-dmz", None).map_err(|e| {
        (
            e.to_string(),
            "install ns-dmz beside ns-exec or in ../libexec/ns-tools/".into(),
        )
    })?;
    let out = std::process::Command::new(&path).output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stderr).starts_with("ns-dmz: usage:") => {
            Ok(path.display().to_string())
        }
        _ => Err((
            format!("{} does not answer as ns-dmz", path.display()),
            "install ns-dmz from the same release as ns-exec".into(),
        )),
    }
}

/// The ns-init program: what `--init`/`$NS_INIT` names (then required), else the one the
/// scripts and `ns-exec --init` would use (not needed by a plain run, which has it built in).
fn ns_init() -> Finding {
    let path = find_helper("ns-init", explicit_init(None)).map_err(|e| {
        (
            e.to_string(),
            "install ns-init beside ns-exec or in ../libexec/ns-tools/, or set NS_INIT".into(),
        )
    })?;
    let version = version_of(&path).unwrap_or_default();
    let want = format!("ns-init {}", env!("CARGO_PKG_VERSION"));
    if version == want {
        Ok(format!("{} ({version})", path.display()))
    } else {
        Err((
            format!("{} reports {version:?}, expected {want:?}", path.display()),
            "install ns-init from the same release as ns-exec".into(),
        ))
    }
}

fn stages() -> Finding {
    let dir = std::env::current_exe()
        .ctx(|| "find ns-exec's own path".into())
        .map_err(|e| (e.to_string(), "run ns-exec by its path".to_string()))?
        .with_file_name("");
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for tool in ["ns-cgroup", "ns-veth", "ns-pty"] {
        match version_of(&dir.join(tool)) {
            Some(v) if !v.is_empty() => found.push(v),
            _ => missing.push(tool),
        }
    }
    if missing.is_empty() {
        Ok(found.join(", "))
    } else {
        Err((
            format!("not beside ns-exec: {}", missing.join(", ")),
            "install the stage programs in the same directory as ns-exec".into(),
        ))
    }
}
