//! Tier-1 tests of the rootfs plan: order, flags and lists, without privileges.

use super::plan::{MountFlag, Propagation, Step, Symlinks};
use super::*;
use common::config::{Config, DeviceType};

fn config(json: &str) -> Config {
    match Config::parse(json.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("test config {json}: {e}"),
    }
}

fn steps(json: &str) -> Vec<Step> {
    plan_of(json, false)
}

fn plan_of(json: &str, join_netns: bool) -> Vec<Step> {
    match plan(&config(json), join_netns) {
        Ok(s) => s,
        Err(e) => panic!("plan for {json}: {e}"),
    }
}

/// The index of the first step matching `f`.
fn pos(steps: &[Step], f: impl Fn(&Step) -> bool) -> usize {
    match steps.iter().position(f) {
        Some(i) => i,
        None => panic!("no such step in {steps:#?}"),
    }
}

fn is_mount_on(step: &Step, path: &str) -> bool {
    matches!(step, Step::Mount { target, .. } if target == path)
}

/// Whether `step` makes or changes something at a container path (not the root switch).
fn builds_tree(step: &Step) -> bool {
    matches!(
        step,
        Step::Mount { .. } | Step::DeviceNode { .. } | Step::Symlink { .. } | Step::Bind { .. }
    )
}

/// The path a `/dev` step works on, if it is one.
fn dev_path(step: &Step) -> Option<&str> {
    let p = match step {
        Step::Mount { target, .. } => target,
        Step::DeviceNode { path, .. } | Step::Symlink { path, .. } => path,
        _ => return None,
    };
    p.starts_with("/dev/").then_some(p.as_str())
}

const BASIC: &str = r#"{"rootfs": "/srv/root"}"#;

#[test]
fn propagation_and_the_rootfs_bind_come_before_any_mount() {
    let s = steps(BASIC);
    assert_eq!(s[0], Step::Umask { mask: 0 });
    assert_eq!(
        s[1],
        Step::RootPropagation {
            propagation: Propagation::Private
        }
    );
    assert_eq!(
        s[2],
        Step::BindRootfs {
            rootfs: "/srv/root".into()
        }
    );
    assert!(
        s[3..]
            .iter()
            .all(|x| !matches!(x, Step::RootPropagation { .. }))
    );
    assert_eq!(s.last(), Some(&Step::Umask { mask: FINAL_UMASK }));
}

#[test]
fn system_mounts_refuse_symlinks_and_have_their_flags() {
    let s = steps(BASIC);
    let mount = |path: &str| match &s[pos(&s, |x| is_mount_on(x, path))] {
        Step::Mount {
            fstype,
            flags,
            data,
            symlinks,
            ..
        } => (fstype.clone(), flags.clone(), data.clone(), *symlinks),
        _ => unreachable!(),
    };
    use MountFlag::*;
    assert_eq!(
        mount("/proc"),
        (
            "proc".into(),
            vec![Nosuid, Nodev, Noexec],
            "".into(),
            Symlinks::Refuse
        )
    );
    assert_eq!(mount("/sys").1, vec![Rdonly, Nosuid, Nodev, Noexec]);
    assert_eq!(
        mount("/dev"),
        (
            "tmpfs".into(),
            vec![Nosuid, Strictatime],
            "mode=755".into(),
            Symlinks::Refuse
        )
    );
    assert_eq!(
        mount("/dev/pts"),
        (
            "devpts".into(),
            vec![Nosuid, Noexec],
            "newinstance,ptmxmode=0666,mode=0620,gid=5".into(),
            Symlinks::Refuse
        )
    );
    assert_eq!(mount("/dev/shm").2, "mode=1777,size=65536k");
    assert_eq!(mount("/dev/mqueue").0, "mqueue");
}

#[test]
fn dev_comes_before_everything_inside_it() {
    let s = steps(BASIC);
    let dev = pos(&s, |x| is_mount_on(x, "/dev"));
    assert!(dev < pos(&s, |x| is_mount_on(x, "/dev/pts")));
    for (i, step) in s.iter().enumerate() {
        if dev_path(step).is_some() {
            assert!(i > dev, "{step:?} before the /dev mount");
        }
    }
    // /dev/core is conditional on the container's /proc/kcore, so it needs /proc first.
    let core = pos(
        &s,
        |x| matches!(x, Step::Symlink { path, .. } if path == "/dev/core"),
    );
    assert!(core > pos(&s, |x| is_mount_on(x, "/proc")));
    assert!(
        matches!(&s[core], Step::Symlink { only_if_exists: Some(p), .. } if p == "/proc/kcore")
    );
    assert!(s.iter().any(
        |x| matches!(x, Step::Symlink { path, target, .. } if path == "/dev/ptmx" && target == "pts/ptmx")
    ));
}

#[test]
fn default_devices_are_the_six_0666_char_nodes() {
    let s = steps(BASIC);
    let nodes: Vec<_> = s
        .iter()
        .filter_map(|x| match x {
            Step::DeviceNode {
                path,
                kind,
                major,
                minor,
                mode,
                ..
            } => Some((path.as_str(), *kind, *major, *minor, *mode)),
            _ => None,
        })
        .collect();
    assert_eq!(
        nodes,
        [
            ("/dev/null", DeviceType::Char, 1, 3, 0o666),
            ("/dev/zero", DeviceType::Char, 1, 5, 0o666),
            ("/dev/full", DeviceType::Char, 1, 7, 0o666),
            ("/dev/random", DeviceType::Char, 1, 8, 0o666),
            ("/dev/urandom", DeviceType::Char, 1, 9, 0o666),
            ("/dev/tty", DeviceType::Char, 5, 0, 0o666),
        ]
    );
}

#[test]
fn the_root_switch_is_pivot_root_by_default_and_move_without_it() {
    let s = steps(BASIC);
    assert!(s.contains(&Step::PivotRoot));
    assert!(!s.contains(&Step::MoveRoot));
    let s = steps(r#"{"rootfs": "/r", "no_pivot_root": true}"#);
    assert!(s.contains(&Step::MoveRoot));
    assert!(!s.contains(&Step::PivotRoot));
    assert!(s.contains(&Step::RootPropagation {
        propagation: Propagation::Slave
    }));
}

#[test]
fn readonly_root_comes_after_the_switch_and_every_mount_point() {
    let s = steps(
        r#"{"rootfs": "/r", "readonly_fs": true,
            "mounts": [{"type": "bind", "source": "/srv/x", "destination": "/data"}]}"#,
    );
    let ro = pos(&s, |x| *x == Step::ReadonlyRoot);
    assert!(ro > pos(&s, |x| *x == Step::PivotRoot));
    let last_build = s.iter().rposition(builds_tree).unwrap_or(0);
    assert!(ro > last_build);
    assert!(!steps(BASIC).contains(&Step::ReadonlyRoot));
}

/// Each mask and read-only path comes after the filesystem it covers is mounted and after
/// every config mount, device node and the console (none of which may go under `/proc` or
/// `/sys`), so it covers the container's final tree; and before the root switch, which only
/// moves that tree.
#[test]
fn masks_and_readonly_paths_cover_the_final_tree_before_the_switch() {
    let s = steps(
        r#"{"rootfs": "/r", "tty": true,
            "mounts": [{"type": "bind", "source": "/srv/x", "destination": "/data"}],
            "device_nodes": [{"path": "/dev/fuse", "type": "c", "major_number": 10,
                              "minor_number": 229}]}"#,
    );
    let switch = pos(&s, |x| *x == Step::PivotRoot);
    let masks: Vec<&str> = s
        .iter()
        .filter_map(|x| match x {
            Step::MaskPath { path } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    let readonly: Vec<&str> = s
        .iter()
        .filter_map(|x| match x {
            Step::ReadonlyPath { path } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(masks, MASKED_PATHS);
    assert_eq!(readonly, READONLY_PATHS);
    let proc = pos(&s, |x| is_mount_on(x, "/proc"));
    let sys = pos(&s, |x| is_mount_on(x, "/sys"));
    let last_other = s
        .iter()
        .rposition(|x| (builds_tree(x) && !is_mount_on(x, "/sys")) || *x == Step::Console)
        .unwrap_or(0);
    for (i, step) in s.iter().enumerate() {
        let (Step::MaskPath { path } | Step::ReadonlyPath { path }) = step else {
            continue;
        };
        let covered = if path.starts_with("/proc/") {
            proc
        } else {
            sys
        };
        assert!(i > covered, "{step:?} before its filesystem is mounted");
        assert!(
            i > last_other,
            "{step:?} before a config mount, node or the console"
        );
        assert!(i < switch, "{step:?} after the switch");
    }
}

/// `/sys` is mounted after the masks of `/proc`, as late as it can be before the root switch:
/// when ns-exec makes the network namespace beside the clone, the step that joins it comes
/// right before (sysfs shows the mounter's network namespace), and everything up to there
/// runs meanwhile. The switch comes after `/sys` and its masks: it detaches the host's tree,
/// which waits for an RCU grace period, quicker once ns-exec is done making the namespace.
#[test]
fn sys_comes_right_after_the_netns_is_joined_and_before_the_switch() {
    for json in [BASIC, r#"{"rootfs": "/r", "no_pivot_root": true}"#] {
        let s = steps(json);
        assert!(!s.contains(&Step::JoinNetns), "{json}");
        let sys = pos(&s, |x| is_mount_on(x, "/sys"));
        let last_proc = s
            .iter()
            .rposition(|x| matches!(x, Step::MaskPath { path } | Step::ReadonlyPath { path } if path.starts_with("/proc/")))
            .unwrap_or(0);
        assert_eq!(sys, last_proc + 1, "{json}");
        let switch = pos(&s, |x| matches!(x, Step::PivotRoot | Step::MoveRoot));
        assert!(switch > sys, "{json}");

        let s = plan_of(json, true);
        let join = pos(&s, |x| *x == Step::JoinNetns);
        assert_eq!(join, last_proc + 1, "{json}");
        assert_eq!(pos(&s, |x| is_mount_on(x, "/sys")), join + 1, "{json}");
        assert_eq!(s.len(), steps(json).len() + 1, "{json}");
    }
}

#[test]
fn without_restrictions_there_are_no_masks_and_sysfs_is_writable() {
    let s = steps(r#"{"rootfs": "/r", "restrictions": false}"#);
    assert!(
        !s.iter()
            .any(|x| matches!(x, Step::MaskPath { .. } | Step::ReadonlyPath { .. }))
    );
    let sys = pos(&s, |x| is_mount_on(x, "/sys"));
    assert!(matches!(&s[sys], Step::Mount { flags, .. } if !flags.contains(&MountFlag::Rdonly)));
}

#[test]
fn the_mask_lists_are_the_documented_ones() {
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/acpi",
        "/proc/scsi",
        "/sys/firmware",
    ] {
        assert!(MASKED_PATHS.contains(&p), "{p} not masked");
    }
    for p in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/irq",
        "/proc/bus",
        "/proc/fs",
    ] {
        assert!(READONLY_PATHS.contains(&p), "{p} not read-only");
    }
    // sysrq-trigger is made read-only, not masked; nothing is in both lists.
    assert!(!MASKED_PATHS.contains(&"/proc/sysrq-trigger"));
    for p in MASKED_PATHS.iter().chain(READONLY_PATHS.iter()) {
        assert!(p.starts_with("/proc/") || p.starts_with("/sys/"), "{p}");
        assert!(
            !p.ends_with('/') && !p.contains("/../") && !p.contains("//"),
            "{p}"
        );
    }
    for p in MASKED_PATHS {
        assert!(!READONLY_PATHS.contains(&p), "{p} in both lists");
    }
}

#[test]
fn config_mounts_follow_in_order_after_the_system_mounts() {
    let s = steps(
        r#"{"rootfs": "/r", "mounts": [
            {"type": "devtmpfs"},
            {"type": "bind", "source": "/srv/a", "destination": "/a"},
            {"type": "tmpfs", "destination": "/tmp", "size": "64m"},
            {"type": "bind", "source": "/srv/b", "destination": "/b", "writable": true,
             "private": true}
        ]}"#,
    );
    let a = pos(
        &s,
        |x| matches!(x, Step::Bind { target, .. } if target == "/a"),
    );
    let tmp = pos(&s, |x| is_mount_on(x, "/tmp"));
    let b = pos(
        &s,
        |x| matches!(x, Step::Bind { target, .. } if target == "/b"),
    );
    assert!(a < tmp && tmp < b);
    assert!(a > pos(&s, |x| is_mount_on(x, "/dev/mqueue")));
    assert!(b < pos(&s, |x| *x == Step::PivotRoot));
    assert_eq!(
        s[a],
        Step::Bind {
            source: "/srv/a".into(),
            target: "/a".into(),
            readonly: true,
            private: false
        }
    );
    assert!(matches!(
        &s[b],
        Step::Bind {
            readonly: false,
            private: true,
            ..
        }
    ));
    assert!(matches!(
        &s[tmp],
        Step::Mount { fstype, data, symlinks: Symlinks::InRoot, .. }
            if fstype == "tmpfs" && data == "size=67108864"
    ));
    // devtmpfs adds nothing: one tmpfs /dev as always.
    assert_eq!(s.iter().filter(|x| is_mount_on(x, "/dev")).count(), 1);
}

#[test]
fn config_device_nodes_replace_defaults_and_come_after_config_mounts() {
    let s = steps(
        r#"{"rootfs": "/r",
            "mounts": [{"type": "bind", "source": "/srv/a", "destination": "/a"}],
            "device_nodes": [
              {"type": 99, "path": "/dev/null", "major_number": 1, "minor_number": 3,
               "file_mode": 438},
              {"type": "c", "path": "/dev/net/tun", "major_number": 10, "minor_number": 200,
               "file_mode": 384, "uid": 7, "gid": 8},
              {"type": "b", "path": "/dev/loop0", "major_number": 7, "minor_number": 0}
            ]}"#,
    );
    let nulls = s
        .iter()
        .filter(|x| matches!(x, Step::DeviceNode { path, .. } if path == "/dev/null"))
        .count();
    assert_eq!(nulls, 1);
    let bind = pos(&s, |x| matches!(x, Step::Bind { .. }));
    let tun = pos(
        &s,
        |x| matches!(x, Step::DeviceNode { path, .. } if path == "/dev/net/tun"),
    );
    assert!(tun > bind);
    assert!(tun < pos(&s, |x| *x == Step::PivotRoot));
    assert_eq!(
        s[tun],
        Step::DeviceNode {
            path: "/dev/net/tun".into(),
            kind: DeviceType::Char,
            major: 10,
            minor: 200,
            mode: 0o600,
            uid: 7,
            gid: 8
        }
    );
    assert!(matches!(
        &s[pos(
            &s,
            |x| matches!(x, Step::DeviceNode { path, .. } if path == "/dev/loop0")
        )],
        Step::DeviceNode {
            kind: DeviceType::Block,
            mode: 0o666,
            uid: 0,
            gid: 0,
            ..
        }
    ));
    for step in &s {
        if let Step::DeviceNode { path, .. } = step {
            assert!(path.starts_with("/dev/"), "{path}");
        }
    }
}

#[test]
fn plans_refuse_what_validation_should_have_caught() {
    let no_root = plan(&config("{}"), false);
    assert!(no_root.is_err());
    for dest in ["/proc", "/proc/sys", "/sys/x", "/", "rel", "/a/../b"] {
        let json = format!(
            r#"{{"rootfs": "/r", "mounts": [{{"type": "tmpfs", "destination": "{dest}"}}]}}"#
        );
        assert!(plan(&config(&json), false).is_err(), "{dest}");
    }
    let bad_dev = r#"{"rootfs": "/r", "device_nodes": [
        {"type": "c", "path": "/etc/x", "major_number": 1, "minor_number": 3}]}"#;
    assert!(plan(&config(bad_dev), false).is_err());
}

#[test]
fn the_plan_serialises_to_tagged_json() {
    let s = steps(r#"{"rootfs": "/r", "readonly_fs": true}"#);
    let json = match serde_json::to_value(&s) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        json[1],
        serde_json::json!({"step": "root_propagation", "propagation": "private"})
    );
    assert_eq!(
        json[2],
        serde_json::json!({"step": "bind_rootfs", "rootfs": "/r"})
    );
    assert_eq!(
        json[3],
        serde_json::json!({"step": "mount", "fstype": "proc", "target": "/proc",
            "flags": ["nosuid", "nodev", "noexec"], "data": "", "symlinks": "refuse"})
    );
    let texts: Vec<String> = s
        .iter()
        .filter_map(|x| serde_json::to_string(x).ok())
        .collect();
    assert_eq!(texts.len(), s.len());
    assert!(texts.iter().any(|t| t == r#"{"step":"pivot_root"}"#));
    assert!(texts.iter().any(|t| t == r#"{"step":"readonly_root"}"#));
    assert!(texts.iter().any(|t| t.contains(r#""kind":"c""#)));
}
