//! Which cgroup layout this machine has, and where the caller's own cgroup is in each hierarchy.
//!
//! Read from two files, parsed by pure functions so tests can feed samples:
//! - `/proc/self/mountinfo`
//!   ([proc_pid_mountinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html)):
//!   every `cgroup` mount with the controllers in its super options (`rw,cpu,cpuacct` for a
//!   co-mounted hierarchy) and every `cgroup2` mount, each with the root of the hierarchy it
//!   shows (not `/` inside a container or a bind mount);
//! - `/proc/self/cgroup` ([cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html)):
//!   `ID:CONTROLLERS:PATH` per v1 hierarchy, `0::PATH` for v2.
//!
//! The layout is v2 when only a `cgroup2` mount exists, v1 when only `cgroup` mounts do, and
//! hybrid when both do (systemd's "hybrid": v1 controllers plus an empty cgroup2 tree, usually at
//! `/sys/fs/cgroup/unified`). Hierarchies without a controller we manage (`name=systemd`) are
//! left alone: they belong to the init system.

use std::path::{Path, PathBuf};

use common::{Error, Result};

/// The v1 controllers ns-cgroup manages; a v1 hierarchy with none of them is not touched.
pub const V1_CONTROLLERS: [&str; 8] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];

/// The three cgroup layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only v1 hierarchies.
    V1,
    /// v1 controller hierarchies plus a cgroup2 tree.
    Hybrid,
    /// One cgroup2 tree.
    V2,
}

impl Kind {
    /// The name used in messages (`v1`, `hybrid`, `v2`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::V1 => "v1",
            Kind::Hybrid => "hybrid",
            Kind::V2 => "v2",
        }
    }
}

/// One mounted hierarchy and the caller's cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The v1 controllers of this hierarchy (several when co-mounted); empty for cgroup2.
    pub controllers: Vec<String>,
    /// Whether this is the cgroup2 tree.
    pub unified: bool,
    /// Where it is mounted.
    pub mount: PathBuf,
    /// The directory of the hierarchy's root as this mount shows it: `mount` itself, since the
    /// mount's root is the top of what we can reach.
    pub own: PathBuf,
}

impl Hierarchy {
    /// Whether this hierarchy carries v1 controller `name`.
    pub fn has(&self, name: &str) -> bool {
        self.controllers.iter().any(|c| c == name)
    }

    /// A short label for messages: `cpu,cpuacct` or `unified`.
    pub fn label(&self) -> String {
        if self.unified {
            "unified".into()
        } else {
            self.controllers.join(",")
        }
    }
}

/// The layout and every hierarchy ns-cgroup works in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// v1, hybrid or v2.
    pub kind: Kind,
    /// The hierarchies, v1 ones first (in mount order), the cgroup2 tree last.
    pub hierarchies: Vec<Hierarchy>,
}

impl Layout {
    /// Reads this process's layout from `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn detect() -> Result<Layout> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| Error::io("read /proc/self/cgroup", e))?;
        Layout::parse(&mountinfo, &cgroup)
    }

    /// The layout with process `pid`'s cgroups as the `own` directories: where `pid` is in
    /// each hierarchy, as this process's mounts reach it (`ns-exec enter` puts a process
    /// exactly there).
    pub fn of_pid(pid: i32) -> Result<Layout> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
        let path = format!("/proc/{pid}/cgroup");
        let cgroup =
            std::fs::read_to_string(&path).map_err(|e| Error::io(format!("read {path}"), e))?;
        Layout::parse(&mountinfo, &cgroup)
    }

    /// The layout described by a mountinfo text and a `/proc/PID/cgroup` text.
    pub fn parse(mountinfo: &str, cgroup: &str) -> Result<Layout> {
        let mounts = parse_mountinfo(mountinfo);
        let memberships = parse_proc_cgroup(cgroup);
        let mut v1 = Vec::new();
        let mut v2 = None;
        for m in mounts {
            if m.unified {
                if v2.is_some() {
                    continue;
                }
                let Some(path) = memberships.iter().find(|p| p.unified).map(|p| &p.path) else {
                    continue;
                };
                v2 = Some(hierarchy(&m, path)?);
            } else {
                let managed = m
                    .controllers
                    .iter()
                    .any(|c| V1_CONTROLLERS.contains(&c.as_str()));
                // A hierarchy mounted twice is used at its first mount point.
                let seen = v1
                    .iter()
                    .any(|h: &Hierarchy| h.controllers == m.controllers);
                if !managed || seen {
                    continue;
                }
                let Some(path) = memberships
                    .iter()
                    .find(|p| !p.unified && same_set(&p.controllers, &m.controllers))
                    .map(|p| &p.path)
                else {
                    return Err(Error::msg(
                        "cgroup layout",
                        format!(
                            "hierarchy {} mounted at {} is not in /proc/self/cgroup",
                            m.controllers.join(","),
                            m.mount.display()
                        ),
                    ));
                };
                v1.push(hierarchy(&m, path)?);
            }
        }
        let kind = match (v1.is_empty(), v2.is_some()) {
            (true, true) => Kind::V2,
            (false, true) => Kind::Hybrid,
            (false, false) => Kind::V1,
            (true, false) => {
                return Err(Error::msg(
                    "cgroup layout",
                    "no cgroup file system is mounted",
                ));
            }
        };
        v1.extend(v2);
        Ok(Layout {
            kind,
            hierarchies: v1,
        })
    }

    /// The hierarchy carrying v1 controller `name`, if any.
    pub fn v1(&self, name: &str) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.has(name))
    }

    /// The cgroup2 tree, if mounted.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.unified)
    }
}

/// One cgroup mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    root: String,
    mount: PathBuf,
    unified: bool,
    controllers: Vec<String>,
}

/// One line of `/proc/PID/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Membership {
    unified: bool,
    controllers: Vec<String>,
    path: String,
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// The caller's cgroup directory in mount `m`, given its path in the hierarchy.
fn hierarchy(m: &CgroupMount, path: &str) -> Result<Hierarchy> {
    let rel = relative_to_root(&m.root, path).ok_or_else(|| {
        Error::msg(
            "cgroup layout",
            format!(
                "own cgroup {path:?} is outside the part of the hierarchy mounted at {}",
                m.mount.display()
            ),
        )
    })?;
    let mut own = m.mount.clone();
    if !rel.is_empty() {
        own.push(rel);
    }
    Ok(Hierarchy {
        controllers: m.controllers.clone(),
        unified: m.unified,
        mount: m.mount.clone(),
        own,
    })
}

/// `path` (from /proc/self/cgroup) relative to a mount's `root`, or `None` when it lies outside.
/// The kernel prints paths relative to the reader's cgroup namespace root, as it does the mount
/// root, so the two compare directly.
fn relative_to_root<'a>(root: &str, path: &'a str) -> Option<&'a str> {
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    Some(rest.trim_start_matches('/'))
}

/// Cgroup mounts of a mountinfo text, in order.
fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    // A later mount on the same mount point hides an earlier one: only the last is reachable.
    let points: Vec<Option<&str>> = text.lines().map(|line| line.split(' ').nth(4)).collect();
    text.lines()
        .enumerate()
        .filter(|(i, _)| !points[i + 1..].contains(&points[*i]))
        .map(|(_, line)| line)
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let root = unescape(fields.get(3)?);
            let mount = PathBuf::from(unescape(fields.get(4)?));
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let options = right.next().unwrap_or("");
            match fstype {
                "cgroup2" => Some(CgroupMount {
                    root,
                    mount,
                    unified: true,
                    controllers: Vec::new(),
                }),
                "cgroup" => {
                    // Super options are `rw,cpu,cpuacct` plus flags like `noprefix`,
                    // `clone_children`, `xattr`, `release_agent=...`; `name=systemd` names a
                    // controller-less hierarchy.
                    let controllers = options
                        .split(',')
                        .filter(|o| {
                            V1_CONTROLLERS.contains(o)
                                || o.starts_with("name=")
                                || [
                                    "net_cls",
                                    "net_prio",
                                    "perf_event",
                                    "hugetlb",
                                    "rdma",
                                    "misc",
                                ]
                                .contains(o)
                        })
                        .map(str::to_string)
                        .collect();
                    Some(CgroupMount {
                        root,
                        mount,
                        unified: false,
                        controllers,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// The lines of a `/proc/PID/cgroup` text.
fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let unified = id == "0" && controllers.is_empty();
            Some(Membership {
                unified,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// Undoes mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Joins a cgroup's relative path (`a/b`) under a hierarchy directory.
pub fn under(base: &Path, rel: &str) -> PathBuf {
    let mut p = base.to_path_buf();
    for part in rel.split('/').filter(|s| !s.is_empty()) {
        p.push(part);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hierarchy mounted over again at the same point is used through the mount on top
    /// (the one a path reaches), not the hidden one underneath.
    #[test]
    fn a_mount_hidden_by_a_later_one_is_not_used() {
        let mountinfo = "\
30 20 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
31 20 0:26 /a /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let layout = Layout::parse(mountinfo, "4:memory:/a/b\n").unwrap();
        let h = layout.v1("memory").unwrap();
        assert_eq!(h.mount, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(h.own, Path::new("/sys/fs/cgroup/memory/b"), "{h:?}");
    }

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/user.slice
8:pids:/user.slice/s
4:memory:/process_api/95a
3:cpuset:/
1:cpu,cpuacct:/a b
0::/user.slice/s
";

    #[test]
    fn hybrid_layout_with_co_mounted_cpu_and_cpuacct() {
        let l = Layout::parse(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        assert_eq!(l.kind, Kind::Hybrid);
        let labels: Vec<String> = l.hierarchies.iter().map(Hierarchy::label).collect();
        assert_eq!(
            labels,
            ["cpu,cpuacct", "cpuset", "memory", "pids", "unified"]
        );
        assert_eq!(
            l.v1("cpuacct").unwrap().own,
            Path::new("/sys/fs/cgroup/cpu,cpuacct/a b")
        );
        assert_eq!(
            l.v1("memory").unwrap().own,
            Path::new("/sys/fs/cgroup/memory/process_api/95a")
        );
        assert_eq!(
            l.v1("cpuset").unwrap().own,
            Path::new("/sys/fs/cgroup/cpuset")
        );
        assert_eq!(
            l.unified().unwrap().own,
            Path::new("/sys/fs/cgroup/unified/user.slice/s")
        );
        assert!(l.v1("devices").is_none());
    }

    #[test]
    fn v2_layout() {
        let l = Layout::parse(
            "25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
            "0::/init.scope\n",
        )
        .unwrap();
        assert_eq!(l.kind, Kind::V2);
        assert_eq!(l.hierarchies.len(), 1);
        assert_eq!(
            l.unified().unwrap().own,
            Path::new("/sys/fs/cgroup/init.scope")
        );
    }

    #[test]
    fn v1_layout_and_the_root_cgroup() {
        let l = Layout::parse(
            "32 31 0:29 / /cg/memory rw - cgroup cgroup rw,memory\n",
            "4:memory:/\n",
        )
        .unwrap();
        assert_eq!(l.kind, Kind::V1);
        assert_eq!(l.v1("memory").unwrap().own, Path::new("/cg/memory"));
    }

    #[test]
    fn a_mount_of_a_subtree_maps_the_path_below_its_root() {
        // Inside a container, the mount shows only the container's part of the hierarchy.
        let l = Layout::parse(
            "40 31 0:38 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/docker/abc/sub\n",
        )
        .unwrap();
        assert_eq!(l.unified().unwrap().own, Path::new("/sys/fs/cgroup/sub"));
        let e = Layout::parse(
            "40 31 0:38 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/docker/abcd\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        let e = Layout::parse("1 0 8:1 / / rw - ext4 /dev/sda rw\n", "0::/\n").unwrap_err();
        assert!(e.to_string().contains("no cgroup file system"), "{e}");
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(under(Path::new("/x"), "/a//b/"), Path::new("/x/a/b"));
    }
}
