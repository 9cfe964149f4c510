//! A container's cgroup: one directory per hierarchy it lives in, created with its limits,
//! joined, frozen, killed and removed.
//!
//! Ordering constraints:
//! - **Create fully before join.** Limits are written before any process is moved in, so the
//!   container never runs a moment unlimited. On v1 a new `cpuset` cgroup starts with empty
//!   `cpuset.cpus`/`cpuset.mems` and refuses tasks, so each directory made along the path is
//!   filled from its parent first (the 2014 code's `ensureParent`). On v2 the controllers the
//!   limits need are enabled in `cgroup.subtree_control` of every directory from the caller's
//!   own cgroup down to the new one's parent, before that parent gets its child.
//! - **A failed create leaves nothing**: the directories it made are removed again, deepest
//!   first.
//! - **Remove kills, waits, then removes bottom-up**: `rmdir` of a cgroup fails while it has
//!   processes or children (sub-cgroups the container made through its cgroup namespace), so
//!   every process is killed (`cgroup.kill` on v2, else freeze + kill each + thaw, so a fork
//!   loop cannot outrun the kill), the tree is emptied (bounded wait), and directories go
//!   deepest first. A cgroup that is already gone is not an error.
//!
//! Placement: `parent/name` is relative to the caller's own cgroup in each hierarchy (from
//! `/proc/self/cgroup`), or to the hierarchy's root when `parent` starts with `/`. See
//! [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html).

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use common::config::Cgroups;
use common::config::validate::is_valid_name;
use common::{Error, Result};

use crate::layout::{Hierarchy, Kind, Layout, under};
use crate::limits::{self, Action, Current, Step};
use crate::{devices, files};

/// How long remove waits for the processes of a cgroup to be gone.
pub const EMPTY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long freeze waits for a cgroup to report frozen.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Interval of the bounded waits for the kernel to finish a state change.
const POLL: Duration = Duration::from_millis(5);

/// The controllers a v2 cgroup gets enabled for stats, when the parent offers them.
const V2_STATS: [&str; 4] = ["memory", "pids", "cpu", "io"];

/// One directory of the cgroup, in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dir {
    /// The hierarchy.
    pub hierarchy: Hierarchy,
    /// The cgroup's directory in it.
    pub path: PathBuf,
}

/// A cgroup (every hierarchy it lives in), removed by [`Cgroup::remove`].
#[derive(Debug)]
pub struct Cgroup {
    /// `parent/name`, for messages.
    name: String,
    /// The layout it lives in.
    kind: Kind,
    /// Its directory in each hierarchy.
    dirs: Vec<Dir>,
    /// Directories `create` made, in the order made (parents first); removed in reverse.
    created: Vec<PathBuf>,
}

/// The relative path `parent/name`, and whether it is absolute (from the hierarchy's root).
fn placement(name: &str, parent: Option<&str>) -> Result<(String, bool)> {
    if !is_valid_name(name) {
        return Err(Error::msg(
            "cgroup name",
            format!("{name:?} is not a valid name ([A-Za-z0-9_.-]+)"),
        ));
    }
    let parent = parent.unwrap_or("");
    let absolute = parent.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for p in parent.split('/').filter(|p| !p.is_empty()) {
        if !is_valid_name(p) {
            return Err(Error::config(
                "cgroups.parent",
                format!("{parent:?} is not a path of valid names"),
            ));
        }
        parts.push(p);
    }
    parts.push(name);
    Ok((parts.join("/"), absolute))
}

/// The directory of `rel` in hierarchy `h`.
fn dir_in(h: &Hierarchy, rel: &str, absolute: bool) -> PathBuf {
    under(if absolute { &h.mount } else { &h.own }, rel)
}

/// The hierarchies a cgroup lives in: every managed v1 one plus the unified tree (hybrid), or
/// the unified tree alone (v2).
fn hierarchies(layout: &Layout) -> Vec<Hierarchy> {
    layout.hierarchies.clone()
}

impl Cgroup {
    /// Creates `name` (under `limits.parent`, relative to the caller's own cgroup unless it
    /// starts with `/`) in every hierarchy the layout has, and applies the limits. On failure
    /// nothing it made is left.
    pub fn create(name: &str, limits: &Cgroups) -> Result<Cgroup> {
        let layout = Layout::detect()?;
        Cgroup::create_in(&layout, name, limits)
    }

    /// [`Cgroup::create`] on a given layout.
    pub fn create_in(layout: &Layout, name: &str, limits: &Cgroups) -> Result<Cgroup> {
        let (rel, absolute) = placement(name, limits.parent.as_deref())?;
        // The controllers the limits need, known before the real plan (which depends on files
        // that exist only once the cgroup does).
        let guess = Current {
            swap_accounting: true,
            cpu_max: None,
        };
        let needed = limits::controllers(&limits::plan(layout.kind, limits, &guess)?);
        check_v1_controllers(layout, &needed)?;
        let mut cg = Cgroup {
            name: rel.clone(),
            kind: layout.kind,
            dirs: Vec::new(),
            created: Vec::new(),
        };
        let made = cg
            .make_dirs(layout, &rel, absolute, &needed)
            .and_then(|()| {
                if cg.dirs.iter().any(|d| populated(&d.path)) {
                    return Err(Error::msg(
                        "in use",
                        "it exists and has processes (another container with that name?)",
                    ));
                }
                cg.set(limits)
            });
        match made {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.remove_created();
                Err(e.context(format!("create cgroup {rel}")))
            }
        }
    }

    /// Opens the existing cgroup `parent/name` (placed as [`Cgroup::create`] places it): its
    /// directory in every hierarchy where it exists; `None` when it exists in none.
    pub fn open(name: &str, parent: Option<&str>) -> Result<Option<Cgroup>> {
        let layout = Layout::detect()?;
        let (rel, absolute) = placement(name, parent)?;
        let dirs: Vec<Dir> = hierarchies(&layout)
            .into_iter()
            .map(|h| Dir {
                path: dir_in(&h, &rel, absolute),
                hierarchy: h,
            })
            .filter(|d| d.path.is_dir())
            .collect();
        if dirs.is_empty() {
            return Ok(None);
        }
        Ok(Some(Cgroup {
            name: rel,
            kind: layout.kind,
            dirs,
            created: Vec::new(),
        }))
    }

    /// [`Cgroup::open`], failing when the cgroup does not exist.
    pub fn open_existing(name: &str, parent: Option<&str>) -> Result<Cgroup> {
        Cgroup::open(name, parent)?.ok_or_else(|| {
            Error::msg(
                format!(
                    "cgroup {}",
                    placement(name, parent).map(|p| p.0).unwrap_or_default()
                ),
                "does not exist",
            )
        })
    }

    /// `parent/name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layout it lives in.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its directory in each hierarchy.
    pub fn dirs(&self) -> &[Dir] {
        &self.dirs
    }

    /// The directory of v1 controller `controller`, or the unified one on v2 (`""` = the
    /// cgroup's core files: the unified directory on v2, none on v1).
    pub fn dir_for(&self, controller: &str) -> Option<&Path> {
        let d = if self.kind == Kind::V2 {
            self.dirs.iter().find(|d| d.hierarchy.unified)
        } else if controller.is_empty() {
            None
        } else {
            self.dirs.iter().find(|d| d.hierarchy.has(controller))
        };
        d.map(|d| d.path.as_path())
    }

    /// The unified directory (v2, or the cgroup2 tree of a hybrid layout).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.hierarchy.unified)
            .map(|d| d.path.as_path())
    }

    /// Makes the directory in each hierarchy (and missing parents), recording what it made.
    fn make_dirs(
        &mut self,
        layout: &Layout,
        rel: &str,
        absolute: bool,
        needed: &[(&'static str, &'static str)],
    ) -> Result<()> {
        for h in hierarchies(layout) {
            let base = if absolute {
                h.mount.clone()
            } else {
                h.own.clone()
            };
            let mut path = base.clone();
            for part in rel.split('/') {
                let parent = path.clone();
                path.push(part);
                if h.unified && layout.kind == Kind::V2 {
                    enable_controllers(&parent, needed, layout.kind)?;
                }
                match fs::create_dir(&path) {
                    Ok(()) => self.created.push(path.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io(format!("mkdir {}", path.display()), e)),
                }
                // An existing parent with an empty cpuset is filled too: a child cannot get
                // CPUs its parent does not have.
                if h.has("cpuset") {
                    fill_cpuset(&parent, &path)?;
                }
            }
            self.dirs.push(Dir { hierarchy: h, path });
        }
        Ok(())
    }

    /// Applies `limits` to the live cgroup (what `create` does after making it, and `set`).
    /// A write the kernel refuses because of another value's order (v1 `memory.limit_in_bytes`
    /// above the old `memory.memsw.limit_in_bytes`, a lowered memsw below the old limit) is
    /// retried once after the others.
    pub fn set(&self, limits: &Cgroups) -> Result<()> {
        let current = self.current();
        let steps = limits::plan(self.kind, limits, &current)?;
        let mut deferred: Vec<&Step> = Vec::new();
        for step in &steps {
            match self.apply(step) {
                Err(e) if e.errno == Some(Errno::EINVAL) && self.kind != Kind::V2 => {
                    deferred.push(step)
                }
                r => r?,
            }
        }
        for step in deferred {
            self.apply(step)?;
        }
        if limits.freezer.as_deref() == Some("FROZEN") {
            self.wait_frozen(true)?;
        }
        Ok(())
    }

    /// What the plan needs to know about this cgroup's files.
    fn current(&self) -> Current {
        let mem = self.dir_for("memory");
        let swap_file = if self.kind == Kind::V2 {
            "memory.swap.max"
        } else {
            "memory.memsw.limit_in_bytes"
        };
        Current {
            swap_accounting: mem.is_some_and(|d| d.join(swap_file).exists()),
            cpu_max: self
                .dir_for("cpu")
                .filter(|_| self.kind == Kind::V2)
                .and_then(|d| files::read(&d.join("cpu.max")).ok())
                .map(|s| s.trim().to_string()),
        }
    }

    /// Applies one step.
    fn apply(&self, step: &Step) -> Result<()> {
        let field = format!("cgroups.{}", step.field);
        let dir = self.dir_for(step.controller).ok_or_else(|| {
            Error::msg(
                field.clone(),
                format!(
                    "the {} controller is not available ({} layout)",
                    if step.controller.is_empty() {
                        "core"
                    } else {
                        step.controller
                    },
                    self.kind.name()
                ),
            )
        })?;
        match &step.action {
            Action::Write { file, value } => {
                let path = dir.join(file);
                if !path.exists() {
                    return Err(Error::msg(
                        field,
                        format!(
                            "{} does not exist: not supported by this kernel ({} layout)",
                            path.display(),
                            self.kind.name()
                        ),
                    ));
                }
                files::write(&path, value).map_err(|e| e.context(field))
            }
            Action::DeviceProgram(rules) => {
                let fd = open_dir(dir)?;
                devices::attach(&fd, rules).map_err(|(what, errno)| {
                    Error::sys(format!("{field}: {what} on {}", dir.display()), errno)
                })
            }
        }
    }

    /// Moves process `pid` (its whole thread group) into the cgroup in every hierarchy, by
    /// writing `cgroup.procs`.
    pub fn join(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            files::write(&d.path.join("cgroup.procs"), &pid.to_string())
                .map_err(|e| e.context(format!("join cgroup {} with pid {pid}", self.name)))?;
        }
        Ok(())
    }

    /// Moves the calling process in ([`Cgroup::join`] with its own pid).
    pub fn join_self(&self) -> Result<()> {
        self.join(std::process::id() as i32)
    }

    /// Freezes (`true`) or thaws every process in the cgroup, and waits (bounded) until the
    /// kernel reports the new state.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let what = if frozen { "freeze" } else { "thaw" };
        let (path, value) = self.freezer_file(frozen).ok_or_else(|| {
            Error::msg(
                format!("{what} cgroup {}", self.name),
                format!("no freezer controller ({} layout)", self.kind.name()),
            )
        })?;
        files::write(&path, value)
            .map_err(|e| e.context(format!("{what} cgroup {}", self.name)))?;
        self.wait_frozen(frozen)
    }

    /// The freezer's state file and the value for `frozen`.
    fn freezer_file(&self, frozen: bool) -> Option<(PathBuf, &'static str)> {
        if self.kind == Kind::V2 {
            let d = self.unified_dir()?;
            Some((d.join("cgroup.freeze"), if frozen { "1" } else { "0" }))
        } else {
            let d = self.dir_for("freezer")?;
            Some((
                d.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ))
        }
    }

    /// Whether the cgroup is frozen now.
    pub fn is_frozen(&self) -> Result<bool> {
        if self.kind == Kind::V2 {
            let Some(d) = self.unified_dir() else {
                return Ok(false);
            };
            let events = files::read(&d.join("cgroup.events"))?;
            Ok(files::keyed(&events, "frozen") == Some(1))
        } else {
            let Some(d) = self.dir_for("freezer") else {
                return Ok(false);
            };
            Ok(files::read(&d.join("freezer.state"))?.trim() == "FROZEN")
        }
    }

    /// Waits (bounded) until the freezer reports `frozen`; v1 passes through `FREEZING`, v2
    /// sets `frozen 1` in `cgroup.events` once every task has stopped.
    fn wait_frozen(&self, frozen: bool) -> Result<()> {
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        while self.is_frozen()? != frozen {
            if Instant::now() >= deadline {
                return Err(Error::msg(
                    format!("freeze cgroup {}", self.name),
                    format!(
                        "not {} after {FREEZE_TIMEOUT:?}",
                        if frozen { "frozen" } else { "thawed" }
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// The pids of every process in the cgroup and its sub-cgroups (from the first hierarchy,
    /// which every process of the cgroup is in).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        if let Some(d) = self.dirs.first() {
            collect_pids(&d.path, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Sends `sig` to every process in the cgroup. SIGKILL uses v2's `cgroup.kill` where the
    /// kernel has it; otherwise the cgroup is frozen while the signals go out (so no process
    /// can fork a child that misses its signal), then thawed.
    pub fn kill(&self, sig: Signal) -> Result<()> {
        let what = || format!("kill cgroup {}", self.name);
        if sig == Signal::SIGKILL {
            if let Some(d) = self.unified_dir().filter(|_| self.kind == Kind::V2) {
                let file = d.join("cgroup.kill");
                if file.exists() {
                    return files::write(&file, "1").map_err(|e| e.context(what()));
                }
            }
        }
        let freezable = self.freezer_file(true).is_some();
        let was_frozen = self.is_frozen()?;
        if freezable && !was_frozen {
            self.freeze(true).map_err(|e| e.context(what()))?;
        }
        let mut result = Ok(());
        for pid in self.pids()? {
            match kill(Pid::from_raw(pid), sig) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => {
                    result = Err(Error::sys(format!("{}: signal pid {pid}", what()), e));
                    break;
                }
            }
        }
        // SIGKILL reaches frozen tasks (the kernel wakes them to die); other signals are
        // delivered when they run again.
        if freezable && !was_frozen {
            self.freeze(false).map_err(|e| e.context(what()))?;
        }
        result
    }

    /// Whether any process is left in the cgroup or its sub-cgroups.
    pub fn is_populated(&self) -> bool {
        self.dirs.iter().any(|d| populated(&d.path))
    }

    /// Waits (bounded by `timeout`) until no process is left.
    pub fn wait_empty(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.is_populated() {
            if Instant::now() >= deadline {
                return Err(Error::msg(
                    format!("remove cgroup {}", self.name),
                    format!(
                        "processes still in it after {timeout:?}: {:?}",
                        self.pids().unwrap_or_default()
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Kills every process left (bounded wait), then removes the cgroup bottom-up in every
    /// hierarchy, including parents `create` made; a cgroup already gone is fine.
    pub fn remove(self) -> Result<()> {
        if self.is_populated() {
            self.kill(Signal::SIGKILL)?;
        }
        self.remove_empty(EMPTY_TIMEOUT)
    }

    /// Waits (bounded) for the cgroup to empty, then removes it bottom-up, reporting every
    /// directory it could not remove. Parents made by `create` are removed when empty.
    pub fn remove_empty(mut self, timeout: Duration) -> Result<()> {
        let waited = self.wait_empty(timeout);
        let mut failed = Vec::new();
        let deadline = Instant::now() + timeout;
        for d in &self.dirs {
            remove_tree(&d.path, deadline, &mut failed);
        }
        // Parents this run made, deepest first; one someone else uses now stays.
        self.created
            .retain(|p| !self.dirs.iter().any(|d| &d.path == p));
        while let Some(p) = self.created.pop() {
            match fs::remove_dir(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {}
                Err(e) => failed.push(format!("{}: {e}", p.display())),
            }
        }
        if !failed.is_empty() {
            return Err(Error::msg(
                format!("remove cgroup {}", self.name),
                format!("could not remove {}", failed.join(", ")),
            ));
        }
        waited
    }

    /// Removes the directories a failed create made, deepest first (they are empty).
    fn remove_created(&mut self) {
        while let Some(p) = self.created.pop() {
            let _ = fs::remove_dir(&p);
        }
    }
}

/// Fails unless every v1 controller in `needed` has a mounted hierarchy; the error names the
/// field that needs it and the layout.
fn check_v1_controllers(layout: &Layout, needed: &[(&'static str, &'static str)]) -> Result<()> {
    if layout.kind == Kind::V2 {
        return Ok(());
    }
    for (c, field) in needed {
        if layout.v1(c).is_none() {
            return Err(Error::config(
                format!("cgroups.{field}"),
                format!(
                    "the {c} controller is not mounted ({} layout)",
                    layout.kind.name()
                ),
            ));
        }
    }
    Ok(())
}

/// v2: enables `needed` (an error naming the field when unavailable) and the stats controllers
/// (when available) in `dir`'s `cgroup.subtree_control`, so its children get them.
fn enable_controllers(
    dir: &Path,
    needed: &[(&'static str, &'static str)],
    kind: Kind,
) -> Result<()> {
    let available = files::read(&dir.join("cgroup.controllers"))?;
    let available: Vec<&str> = available.split_whitespace().collect();
    let enabled = files::read(&dir.join("cgroup.subtree_control"))?;
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let mut want = Vec::new();
    for (c, field) in needed {
        if !available.contains(c) {
            return Err(Error::config(
                format!("cgroups.{field}"),
                format!(
                    "the {c} controller is not available in {} ({} layout)",
                    dir.display(),
                    kind.name()
                ),
            ));
        }
        want.push(*c);
    }
    if !want.is_empty() {
        let todo: Vec<String> = want
            .iter()
            .filter(|c| !enabled.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        if !todo.is_empty() {
            files::write(&dir.join("cgroup.subtree_control"), &todo.join(" ")).map_err(|e| {
                if e.errno == Some(Errno::EBUSY) {
                    Error {
                        detail: Some(
                            "it has processes of its own (cgroup v2's no-internal-process rule)"
                                .into(),
                        ),
                        ..e
                    }
                } else {
                    e
                }
            })?;
        }
    }
    // The stats controllers are a convenience: the cgroup works without them.
    for c in V2_STATS {
        if available.contains(&c) && !enabled.contains(&c) && !want.contains(&c) {
            let _ = files::write(&dir.join("cgroup.subtree_control"), &format!("+{c}"));
        }
    }
    Ok(())
}

/// v1: copies `cpuset.cpus` and `cpuset.mems` from `parent` into the new `dir` when empty, as
/// a cpuset cgroup without them refuses tasks.
fn fill_cpuset(parent: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mine = files::read(&dir.join(file))?;
        if mine.trim().is_empty() {
            let theirs = files::read(&parent.join(file))?;
            files::write(&dir.join(file), theirs.trim())?;
        }
    }
    Ok(())
}

/// Whether `dir` or a sub-cgroup has a process: v2 `cgroup.events` says so directly; v1 has
/// only the `cgroup.procs` lists.
fn populated(dir: &Path) -> bool {
    if let Ok(events) = files::read(&dir.join("cgroup.events")) {
        return files::keyed(&events, "populated") == Some(1);
    }
    let mut pids = Vec::new();
    let _ = collect_pids(dir, &mut pids);
    !pids.is_empty()
}

/// Appends the pids in `dir`'s `cgroup.procs` and its sub-cgroups'; a directory that vanished
/// meanwhile contributes nothing.
fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    match files::read(&dir.join("cgroup.procs")) {
        Ok(text) => out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.errno == Some(Errno::ENOENT) || e.errno == Some(Errno::ENODEV) => return Ok(()),
        Err(e) => return Err(e),
    }
    for child in subdirs(dir) {
        collect_pids(&child, out)?;
    }
    Ok(())
}

/// The sub-cgroups of `dir`.
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Removes `dir` and its sub-cgroups deepest first, retrying `EBUSY` (a task that has exited
/// but is not yet unlinked from its cgroup) until `deadline`; failures go to `failed`.
fn remove_tree(dir: &Path, deadline: Instant, failed: &mut Vec<String>) {
    for child in subdirs(dir) {
        remove_tree(&child, deadline, failed);
    }
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(POLL);
            }
            Err(e) => {
                failed.push(format!("{}: {e}", dir.display()));
                return;
            }
        }
    }
}

/// Opens a cgroup directory (for the eBPF attach and for watching).
pub fn open_dir(dir: &Path) -> Result<OwnedFd> {
    open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_relative_unless_parent_is_absolute() {
        assert_eq!(placement("c1", None).unwrap(), ("c1".into(), false));
        assert_eq!(
            placement("c1", Some("a/b")).unwrap(),
            ("a/b/c1".into(), false)
        );
        assert_eq!(placement("c1", Some("/a/")).unwrap(), ("a/c1".into(), true));
        assert!(placement("../x", None).is_err());
        assert!(
            placement("c", Some("a/../b"))
                .unwrap_err()
                .to_string()
                .contains("cgroups.parent")
        );
    }

    #[test]
    fn dirs_go_below_own_cgroup_or_the_mount() {
        let h = Hierarchy {
            controllers: vec!["memory".into()],
            unified: false,
            mount: "/sys/fs/cgroup/memory".into(),
            own: "/sys/fs/cgroup/memory/user/me".into(),
        };
        assert_eq!(
            dir_in(&h, "p/c", false),
            Path::new("/sys/fs/cgroup/memory/user/me/p/c")
        );
        assert_eq!(
            dir_in(&h, "p/c", true),
            Path::new("/sys/fs/cgroup/memory/p/c")
        );
    }
}
