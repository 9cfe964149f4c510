//! ns-init's whole run as a plan: the steps in order ([`steps`]), which `run` walks, and the
//! same steps as [`Action`]s ([`actions`]), which `--plan` prints as JSON and `--explain` as a
//! shell script. Both come from [`steps`], and each step's trace name is [`InitStep::name`], so
//! the plan printed and the steps traced (NS_TRACE) are one list.
//!
//! The order and why (docs/architecture.md): the network inside first (the contexts arrive
//! with `go`); `setsid` before anything opens a terminal; the cgroup namespace after `go`, so
//! its root is the container's cgroup; the rootfs before the user lookup, which reads the
//! container's `/etc/passwd`; the hostname; the identity last but for the exec.

use std::ffi::OsString;
use std::path::Path;

use common::config::{Config, DeviceType};
use common::net::NetContext;
use common::ns::Namespace;
use common::plan::{Action, quote, quote_os};
use common::{Error, Result};

use crate::identity::Identity;
use crate::rootfs::{self, MountFlag, Propagation, Step};

/// The stage name in plans and traces.
pub const STAGE: &str = "ns-init";

/// One step of ns-init, in the order it runs them.
#[derive(Debug, Clone, PartialEq)]
pub enum InitStep {
    /// The network inside: each context from `go`, then the routes.
    Network,
    /// A new session, so the command never shares the caller's (TIOCSTI).
    Setsid,
    /// The cgroup namespace, whose root becomes the container's cgroup.
    UnshareCgroupns,
    /// A pts handed in becomes fds 0–2 and the controlling terminal.
    ConsoleStdio,
    /// The root filesystem: mounts, the root switch, masks.
    Rootfs(Vec<Step>),
    /// The console allocated in the container's devpts, its master sent to ns-exec.
    ConsoleInside,
    /// The hostname.
    Hostname(String),
    /// User, groups, capabilities, cwd, no_new_privs.
    Identity,
    /// The command's `execve`.
    Exec,
}

impl InitStep {
    /// Whether the step needs the host side's `go` first: the network (its contexts come with
    /// `go`), the cgroup namespace (its root must be the cgroup the host side placed the
    /// process in), the console allocated inside (ns-exec relays it after `go`), and the
    /// identity and exec (the command runs only once the host side is done), and every step of
    /// a container with a cgroup it is not in yet. The steps before the first of them (the session, the root
    /// filesystem, the hostname) run while the host side works: they are ns-init's own, and
    /// touch nothing but the container's namespaces.
    ///
    /// `placed` says the process is already in every cgroup it will be in (cloned into its
    /// cgroup2 directory, with no v1 hierarchy to join); otherwise a container with a cgroup
    /// waits for `go` before every step, since what it mounted before its v1 joins would be
    /// charged to the caller's cgroup.
    pub fn needs_go(&self, config: &Config, placed: bool) -> bool {
        if config.cgroups.is_some() && !placed {
            return true;
        }
        match self {
            InitStep::Network => !config.networks.is_empty() || !config.routes.is_empty(),
            InitStep::Setsid
            | InitStep::ConsoleStdio
            | InitStep::Rootfs(_)
            | InitStep::Hostname(_) => false,
            InitStep::UnshareCgroupns
            | InitStep::ConsoleInside
            | InitStep::Identity
            | InitStep::Exec => true,
        }
    }

    /// The step's name in plans and traces.
    pub fn name(&self) -> &'static str {
        match self {
            InitStep::Network => "network",
            InitStep::Setsid => "setsid",
            InitStep::UnshareCgroupns => "unshare_cgroupns",
            InitStep::ConsoleStdio => "console_stdio",
            InitStep::Rootfs(_) => "rootfs",
            InitStep::ConsoleInside => "console_inside",
            InitStep::Hostname(_) => "sethostname",
            InitStep::Identity => "identity",
            InitStep::Exec => "exec",
        }
    }
}

/// ns-init's steps for `config`; `console_handed_in` when a pts came in (`--console-fd`),
/// `join_netns` when ns-exec makes the network namespace beside the clone and sends it
/// ([`Step::JoinNetns`]).
pub fn steps(config: &Config, console_handed_in: bool, join_netns: bool) -> Result<Vec<InitStep>> {
    let mut out = vec![InitStep::Network, InitStep::Setsid];
    if config.has_namespace(Namespace::Cgroup) {
        out.push(InitStep::UnshareCgroupns);
    }
    if console_handed_in {
        out.push(InitStep::ConsoleStdio);
    }
    let mut mounts = rootfs::plan(config, join_netns)?;
    if !console_handed_in {
        // The console is allocated in the container's own devpts after the switch instead.
        mounts.retain(|s| *s != Step::Console);
    }
    out.push(InitStep::Rootfs(mounts));
    if config.tty && !console_handed_in {
        out.push(InitStep::ConsoleInside);
    }
    if let Some(name) = config.hostname.as_deref().filter(|h| !h.is_empty()) {
        out.push(InitStep::Hostname(name.to_string()));
    }
    out.push(InitStep::Identity);
    out.push(InitStep::Exec);
    Ok(out)
}

/// The plan as actions: [`steps`] with their parameters and shell equivalents. `networks`
/// are the contexts the host side made (empty when ns-init is planned alone); `identity` is
/// the user looked up in the rootfs ([`crate::identity::lookup_in`]); `join_netns` as for
/// [`steps`].
pub fn actions(
    config: &Config,
    command: &[OsString],
    networks: &[NetContext],
    console_handed_in: bool,
    join_netns: bool,
    identity: &Identity,
) -> Result<Vec<Action>> {
    let root = config
        .rootfs
        .as_deref()
        .ok_or_else(|| Error::msg("plan ns-init", "the config names no rootfs"))?;
    let mut out = Vec::new();
    for step in steps(config, console_handed_in, join_netns)? {
        let a = Action::new(STAGE, step.name());
        match step {
            InitStep::Network => {
                out.extend(ns_veth::inside_actions(networks, &config.routes));
            }
            InitStep::Setsid => out.push(a.sh("# setsid is the first command of the exec below")),
            InitStep::UnshareCgroupns => {
                out.push(a.sh("# unshare --cgroup is part of the exec below"));
            }
            InitStep::ConsoleStdio => {
                out.push(a.sh("# the pts handed in (NS_CONSOLE_FD) becomes fds 0-2: not shown"));
            }
            InitStep::Rootfs(mounts) => {
                out.extend(mounts.iter().map(|s| rootfs_action(s, root)));
            }
            InitStep::ConsoleInside => out.push(a.sh(
                "# a pts of the container's devpts becomes /dev/console and fds 0-2; ns-exec \
                 relays its master: not shown",
            )),
            InitStep::Hostname(name) => out.push(
                a.arg("name", &name)
                    .sh(format!("hostname {}", quote(&name))),
            ),
            InitStep::Identity => out.push(identity_action(a, config, identity)),
            InitStep::Exec => out.push(exec_action(a, config, command, identity)),
        }
    }
    Ok(out)
}

/// The identity step: who the command runs as, with which capabilities, where.
fn identity_action(a: Action, config: &Config, id: &Identity) -> Action {
    let a = a
        .arg("user", config.user.as_deref().unwrap_or("0"))
        .arg("uid", id.uid)
        .arg("gid", id.gid)
        .arg("groups", &id.groups)
        .arg("capabilities", config.capabilities.names())
        .arg("no_new_privileges", config.no_new_privileges)
        .arg("cwd", config.working_dir.as_deref().unwrap_or("/"));
    let mut a = a.sh(format!(
        "# uid {} gid {} groups {:?}, keeping {}: setpriv and unshare in the exec below",
        id.uid,
        id.gid,
        id.groups,
        config.capabilities.names().join(",")
    ));
    if !id.groups.is_empty() {
        a = a.sh("# (unshare --setgid clears the supplementary groups; ns-init sets them)");
    }
    a
}

/// The exec step, and its shell form: the root switch, the identity and the environment
/// applied by well-known tools at the last moment, since none of them can run from the host
/// once the host's root is gone.
fn exec_action(a: Action, config: &Config, command: &[OsString], id: &Identity) -> Action {
    let argv: Vec<String> = command
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    // The environment the command gets: the config's, plus HOME from passwd when it sets none.
    let env: Vec<String> = crate::exec::environment(&config.environment, id.home.as_deref())
        .iter()
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    let a = a.arg("argv", &argv).arg("env", &env).sh(
        "# the root switch: unshare --root (a chroot) below, because the host's tools cannot \
             run once pivot_root has detached the host's root; it and the user switch need \
             CAP_SYS_CHROOT, CAP_SETUID and CAP_SETGID among the kept capabilities",
    );
    let mut line = String::from("exec setsid");
    if config.has_namespace(Namespace::Cgroup) {
        line.push_str(" unshare --cgroup --");
    }
    let keep: Vec<String> = config
        .capabilities
        .names()
        .iter()
        .map(|n| format!("+{}", n.to_ascii_lowercase()))
        .collect();
    line.push_str(" setpriv --inh-caps=-all --bounding-set=-all");
    if !keep.is_empty() {
        line.push(',');
        line.push_str(&keep.join(","));
    }
    if config.no_new_privileges {
        line.push_str(" --no-new-privs");
    }
    line.push_str(" -- unshare --root=\"$root\"");
    line.push_str(&format!(
        " --wd={}",
        quote(config.working_dir.as_deref().unwrap_or("/"))
    ));
    if id.uid != 0 || id.gid != 0 {
        line.push_str(&format!(" --setgid={} --setuid={}", id.gid, id.uid));
    }
    line.push_str(" -- env -i");
    for e in &env {
        line.push(' ');
        line.push_str(&quote(e));
    }
    for c in command {
        line.push(' ');
        line.push_str(&quote_os(c));
    }
    a.sh(line)
}

/// `"$root"` followed by the container path `path`, for the shell.
fn at(path: &str) -> String {
    format!("\"$root\"{}", quote(path))
}

/// The mount(8) options of `flags` and `data`.
fn options(flags: &[MountFlag], data: &str) -> String {
    let mut opts: Vec<&str> = flags
        .iter()
        .map(|f| match f {
            MountFlag::Rdonly => "ro",
            MountFlag::Nosuid => "nosuid",
            MountFlag::Nodev => "nodev",
            MountFlag::Noexec => "noexec",
            MountFlag::Strictatime => "strictatime",
        })
        .collect();
    if !data.is_empty() {
        opts.push(data);
    }
    opts.join(",")
}

/// One rootfs step as an action, with its shell form; container paths are below `$root`,
/// which the `bind_rootfs` step sets.
pub fn rootfs_action(step: &Step, rootfs: &Path) -> Action {
    let a = Action::tagged(STAGE, step);
    match step {
        Step::Umask { mask } => a.sh(format!("umask {mask:03o}")),
        Step::RootPropagation { propagation } => a.sh(match propagation {
            Propagation::Private => "mount --make-rprivate /",
            Propagation::Slave => "mount --make-rslave /",
        }),
        Step::JoinNetns => a.sh(
            "# ns-exec sends the network namespace it made beside the clone; ns-init joins it \
             before /sys: here the unshare that started this script made it",
        ),
        Step::BindRootfs { .. } => a
            .sh(format!("root={}", quote(&rootfs.to_string_lossy())))
            .sh("mount --rbind \"$root\" \"$root\""),
        Step::Mount {
            fstype,
            target,
            flags,
            data,
            ..
        } => {
            let opts = options(flags, data);
            let o = if opts.is_empty() {
                String::new()
            } else {
                format!(" -o {}", quote(&opts))
            };
            a.sh(format!("mkdir -p {}", at(target))).sh(format!(
                "mount -t {}{o} {} {}",
                quote(fstype),
                quote(fstype),
                at(target)
            ))
        }
        Step::DeviceNode {
            path,
            kind,
            major,
            minor,
            mode,
            uid,
            gid,
        } => {
            let t = match kind {
                DeviceType::Char => "c",
                DeviceType::Block => "b",
            };
            a.sh(format!(
                "mknod -m {mode:o} {} {t} {major} {minor}",
                at(path)
            ))
            .sh(format!("chown {uid}:{gid} {}", at(path)))
        }
        Step::Symlink {
            path,
            target,
            only_if_exists,
        } => {
            let ln = format!("ln -s {} {}", quote(target), at(path));
            match only_if_exists {
                Some(cond) => a.sh(format!("if [ -e {} ]; then {ln}; fi", at(cond))),
                None => a.sh(ln),
            }
        }
        Step::Bind {
            source,
            target,
            readonly,
            private,
        } => {
            let src = quote(&source.to_string_lossy());
            let mut a = a
                .sh(format!(
                    "if [ -d {src} ]; then mkdir -p {t}; else mkdir -p \"$(dirname {t})\" && \
                     touch {t}; fi",
                    t = at(target)
                ))
                .sh(format!("mount --rbind {src} {}", at(target)));
            if *readonly {
                a = a.sh(format!("mount -o remount,bind,ro {}", at(target)));
            }
            if *private {
                a = a.sh(format!("mount --make-rprivate {}", at(target)));
            }
            a
        }
        Step::Console => a.sh("# the pts handed in is bound onto /dev/console: not shown"),
        Step::PivotRoot | Step::MoveRoot => {
            a.sh("# the root switch happens at the exec below (unshare --root)")
        }
        Step::ReadonlyRoot => a.sh("mount -o remount,bind,ro \"$root\""),
        Step::MaskPath { path } => a.sh(format!(
            "if [ -d {p} ]; then mount -t tmpfs -o ro tmpfs {p}; elif [ -e {p} ]; then \
             mount --bind /dev/null {p}; fi",
            p = at(path)
        )),
        Step::ReadonlyPath { path } => a.sh(format!(
            "if [ -e {p} ]; then mount --bind {p} {p} && mount -o remount,bind,ro {p}; fi",
            p = at(path)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        Config::read(json.as_bytes(), Some(Path::new("/"))).unwrap()
    }

    fn root_id() -> Identity {
        Identity {
            uid: 0,
            gid: 0,
            groups: vec![],
            home: Some("/root".into()),
        }
    }

    #[test]
    fn steps_follow_the_documented_order() {
        let c = config(
            r#"{"rootfs":"/tmp","hostname":"h","namespaces":["NEWNS","NEWUTS","NEWCGROUP"],
                "tty":true}"#,
        );
        let names: Vec<&str> = steps(&c, false, false)
            .unwrap()
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(
            names,
            [
                "network",
                "setsid",
                "unshare_cgroupns",
                "rootfs",
                "console_inside",
                "sethostname",
                "identity",
                "exec"
            ]
        );
        let names: Vec<&str> = steps(&c, true, false)
            .unwrap()
            .iter()
            .map(|s| s.name())
            .collect();
        assert!(names.contains(&"console_stdio") && !names.contains(&"console_inside"));
    }

    #[test]
    fn actions_expand_the_rootfs_and_end_in_the_exec() {
        let c = config(r#"{"rootfs":"/tmp","hostname":"box","namespaces":["NEWNS","NEWUTS"]}"#);
        let acts = actions(&c, &["true".into()], &[], false, false, &root_id()).unwrap();
        let names: Vec<&str> = acts.iter().map(|a| a.step.as_str()).collect();
        assert_eq!(names[0], "setsid");
        assert!(names.contains(&"mount") && names.contains(&"pivot_root"));
        assert!(!names.contains(&"join_netns"));
        // With the network namespace from ns-exec: joined right before /sys, before the switch.
        let acts = actions(&c, &["true".into()], &[], false, true, &root_id()).unwrap();
        let at = |step: &str, what: Option<&str>| {
            acts.iter()
                .position(|a| a.step == step && (what.is_none() || a.what() == what))
                .unwrap_or_else(|| panic!("no {step} {what:?}"))
        };
        assert_eq!(at("mount", Some("/sys")), at("join_netns", None) + 1);
        assert!(at("pivot_root", None) > at("mount", Some("/sys")));
        assert_eq!(
            &names[names.len() - 3..],
            ["sethostname", "identity", "exec"]
        );
        let exec = acts.last().unwrap();
        let line = exec.shell.last().unwrap();
        assert!(line.starts_with("exec setsid setpriv"), "{line}");
        assert!(line.contains("--root=\"$root\" --wd=/ -- env -i"), "{line}");
        assert!(line.ends_with(" true"), "{line}");
    }

    #[test]
    fn rootfs_steps_render_as_mount_commands() {
        let a = rootfs_action(
            &Step::Mount {
                fstype: "proc".into(),
                target: "/proc".into(),
                flags: vec![MountFlag::Nosuid, MountFlag::Nodev],
                data: String::new(),
                symlinks: rootfs::Symlinks::Refuse,
            },
            Path::new("/r"),
        );
        assert_eq!(
            a.shell,
            [
                "mkdir -p \"$root\"/proc",
                "mount -t proc -o nosuid,nodev proc \"$root\"/proc"
            ]
        );
        let a = rootfs_action(
            &Step::BindRootfs {
                rootfs: "/my root".into(),
            },
            Path::new("/my root"),
        );
        assert_eq!(a.shell[0], "root='/my root'");
    }
}
