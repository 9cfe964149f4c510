//! A container's cgroup: one directory per hierarchy it lives in, created with its limits,
//! joined, frozen, killed and removed.
//!
//! Which hierarchies (v1 and hybrid; v2 has one tree): the ones whose controllers the limits
//! write to, plus `freezer` and, on hybrid, the cgroup2 tree ([`made_in`]). Every directory
//! costs a `mkdir`, a migration of the first process under the kernel's global
//! `cgroup_threadgroup_rwsem` and an `rmdir`, so a container with a memory limit pays for three
//! hierarchies, not nine. `freezer` is kept because [`Cgroup::kill`] (and so
//! [`Cgroup::remove`]) freezes the cgroup while it signals, so a fork loop cannot outrun the
//! kill, and because `freeze`/`thaw` need it. The cgroup2 tree of a hybrid layout has no
//! controllers but has `cgroup.events`, whose `populated` is what [`crate::watch`] reports and
//! what the wait before removal reads, and it is the directory ns-exec clones the container
//! straight into (`CLONE_INTO_CGROUP`), which costs no migration. A cgroup with no limit to write
//! is made in every hierarchy: it exists to account, and accounting is per hierarchy. A later
//! [`Cgroup::set`] with a limit for a hierarchy the cgroup is not in makes the directory, writes
//! the limit, and moves the cgroup's processes in (frozen meanwhile, where there is a freezer).
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
//!
//! Every change to the tree (create, set, join, remove) is planned first as a list of
//! [`common::plan::Action`]s and then applied by walking exactly that list, each action
//! traced ([`crate::plan`]).

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
use common::plan::Action;
use common::{Error, Result, trace};

use crate::files;
use crate::layout::{Hierarchy, Kind, Layout, under};
use crate::plan::{self as steps, CreatePlan, Who};

/// How long remove waits for the processes of a cgroup to be gone.
pub const EMPTY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long freeze waits for a cgroup to report frozen.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Interval of the bounded waits for the kernel to finish a state change.
const POLL: Duration = Duration::from_millis(5);

/// The controllers a v2 cgroup gets enabled for stats, when the parent offers them.
pub(crate) const V2_STATS: [&str; 4] = ["memory", "pids", "cpu", "io"];

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
    pub(crate) name: String,
    /// The layout it lives in.
    pub(crate) kind: Kind,
    /// Its directory in each hierarchy it lives in, in the layout's order.
    pub(crate) dirs: Vec<Dir>,
    /// Its directory in every hierarchy of the layout, whether it lives there or not: where
    /// `set` adds one, and where `remove` looks (another process's `set` may have added one).
    pub(crate) all: Vec<Dir>,
    /// Directories `create` (or `set`) made, in the order made (parents first); removed in
    /// reverse.
    pub(crate) created: Vec<PathBuf>,
}

/// The relative path `parent/name`, and whether it is absolute (from the hierarchy's root).
pub(crate) fn placement(name: &str, parent: Option<&str>) -> Result<(String, bool)> {
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
pub(crate) fn dir_in(h: &Hierarchy, rel: &str, absolute: bool) -> PathBuf {
    under(if absolute { &h.mount } else { &h.own }, rel)
}

/// The directory of `rel` in every hierarchy of `layout` (the managed v1 ones, then the
/// cgroup2 tree).
pub(crate) fn dirs_in(layout: &Layout, rel: &str, absolute: bool) -> Vec<Dir> {
    layout
        .hierarchies
        .iter()
        .map(|h| Dir {
            path: dir_in(h, rel, absolute),
            hierarchy: h.clone(),
        })
        .collect()
}

/// Whether a cgroup whose limits need the controllers `needed` ([`crate::limits::controllers`])
/// is made in hierarchy `h`: on v1 and hybrid, when a controller of `h` is needed, when `h` has
/// the freezer (kill, freeze) or is the cgroup2 tree (populated events, clone into it), or when
/// nothing is needed (a cgroup for accounting alone lives everywhere); on v2, always.
pub fn made_in(kind: Kind, h: &Hierarchy, needed: &[(&str, &str)]) -> bool {
    kind == Kind::V2
        || needed.is_empty()
        || h.unified
        || h.has("freezer")
        || needed.iter().any(|(c, _)| h.has(c))
}

impl Cgroup {
    /// Creates `name` (under `limits.parent`, relative to the caller's own cgroup unless it
    /// starts with `/`) in the hierarchies its limits need ([`made_in`]), and applies them: the
    /// plan of [`Cgroup::plan_create`], applied. On failure nothing it made is left.
    pub fn create(name: &str, limits: &Cgroups) -> Result<Cgroup> {
        Cgroup::plan_create(name, limits)?.apply()
    }

    /// [`Cgroup::create`] on a given layout.
    pub fn create_in(layout: &Layout, name: &str, limits: &Cgroups) -> Result<Cgroup> {
        Cgroup::plan_create_in(layout, name, limits)?.apply()
    }

    /// What [`Cgroup::create`] would do, as a plan to print or apply; reads the tree, changes
    /// nothing.
    pub fn plan_create(name: &str, limits: &Cgroups) -> Result<CreatePlan> {
        let layout = Layout::detect()?;
        Cgroup::plan_create_in(&layout, name, limits)
    }

    /// [`Cgroup::plan_create`] on a given layout.
    pub fn plan_create_in(layout: &Layout, name: &str, limits: &Cgroups) -> Result<CreatePlan> {
        steps::plan_create(layout, name, limits)
    }

    /// Opens the existing cgroup `parent/name` (placed as [`Cgroup::create`] places it): its
    /// directory in every hierarchy where it exists, which is every hierarchy it was made in
    /// (or `set` added); `None` when it exists in none.
    pub fn open(name: &str, parent: Option<&str>) -> Result<Option<Cgroup>> {
        let layout = Layout::detect()?;
        let (rel, absolute) = placement(name, parent)?;
        let all = dirs_in(&layout, &rel, absolute);
        let dirs: Vec<Dir> = all.iter().filter(|d| d.path.is_dir()).cloned().collect();
        if dirs.is_empty() {
            return Ok(None);
        }
        Ok(Some(Cgroup {
            name: rel,
            kind: layout.kind,
            dirs,
            all,
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

    /// Its directory in each hierarchy it lives in.
    pub fn dirs(&self) -> &[Dir] {
        &self.dirs
    }

    /// The directory of v1 controller `controller`, or the unified one on v2 (`""` = the
    /// cgroup's core files: the unified directory on v2, none on v1).
    pub fn dir_for(&self, controller: &str) -> Option<&Path> {
        dir_for(self.kind, &self.dirs, controller).map(|d| d.path.as_path())
    }

    /// The unified directory (v2, or the cgroup2 tree of a hybrid layout).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.hierarchy.unified)
            .map(|d| d.path.as_path())
    }

    /// Applies `limits` to the live cgroup: the plan of [`Cgroup::set_actions`], applied. A
    /// hierarchy it adds becomes one of [`Cgroup::dirs`].
    pub fn set(&mut self, limits: &Cgroups) -> Result<()> {
        steps::set(self, limits)
    }

    /// The actions [`Cgroup::set`] would take (one `write` per limit file, a `device_program`
    /// on v2), planned from the cgroup's current files; changes nothing. On v1 and hybrid a
    /// limit for a hierarchy the cgroup is not in adds it: its `mkdir`s (and cpuset filling),
    /// the limit writes, then a `join` moving the cgroup's processes in, between a freeze and a
    /// thaw when the cgroup has a freezer and is not frozen.
    pub fn set_actions(&self, limits: &Cgroups) -> Result<Vec<Action>> {
        steps::set_actions(self, limits)
    }

    /// The actions that move a process in: one `join` per hierarchy, writing `pid` to the
    /// directory's `cgroup.procs`. With `None` (a pid not known yet) the JSON has
    /// `"pid": null` and the shell form writes `"$pid"`.
    pub fn join_action(&self, pid: Option<i32>) -> Vec<Action> {
        steps::join_actions(&self.dirs, pid.map_or(Who::Var, Who::Pid))
    }

    /// [`Cgroup::join_action`] without the cgroup2 directory (v2, or the cgroup2 tree of a
    /// hybrid layout): for a process cloned straight into it with `CLONE_INTO_CGROUP`.
    pub fn join_except_unified_action(&self, pid: Option<i32>) -> Vec<Action> {
        steps::join_actions(&self.v1_dirs(), pid.map_or(Who::Var, Who::Pid))
    }

    /// The directories of the v1 hierarchies (all but the cgroup2 one).
    fn v1_dirs(&self) -> Vec<Dir> {
        self.dirs
            .iter()
            .filter(|d| !d.hierarchy.unified)
            .cloned()
            .collect()
    }

    /// The actions that move the calling process in ([`Cgroup::join_self`]): `"pid": 0`, the
    /// kernel's name for the writing process, and `$$` in the shell form.
    pub fn join_self_action(&self) -> Vec<Action> {
        steps::join_actions(&self.dirs, Who::Myself)
    }

    /// Moves process `pid` (its whole thread group) into the cgroup in every hierarchy it is
    /// in, by writing `cgroup.procs`: the actions of [`Cgroup::join_action`], each traced as
    /// `join`.
    pub fn join(&self, pid: i32) -> Result<()> {
        walk_join(&self.dirs, Who::Pid(pid))
            .map_err(|e| e.context(format!("join cgroup {} with pid {pid}", self.name)))
    }

    /// Moves process `pid` into the cgroup in every hierarchy but the cgroup2 one, which it is
    /// already in (cloned there with `CLONE_INTO_CGROUP`): the actions of
    /// [`Cgroup::join_except_unified_action`], each traced as `join`. On v2 there is nothing to
    /// do.
    pub fn join_except_unified(&self, pid: i32) -> Result<()> {
        walk_join(&self.v1_dirs(), Who::Pid(pid))
            .map_err(|e| e.context(format!("join cgroup {} with pid {pid}", self.name)))
    }

    /// Moves the calling process in, writing `0` (the writer itself, see cgroups(7)): the
    /// actions of [`Cgroup::join_self_action`].
    pub fn join_self(&self) -> Result<()> {
        walk_join(&self.dirs, Who::Myself)
            .map_err(|e| e.context(format!("join cgroup {}", self.name)))
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
    pub(crate) fn wait_frozen(&self, frozen: bool) -> Result<()> {
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

    /// The pids of every process in the cgroup and its sub-cgroups, from the freezer's
    /// hierarchy (the one [`Cgroup::kill`] freezes) or else the first one: every process of the
    /// cgroup is in each hierarchy it lives in.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        let dir = dir_for(self.kind, &self.dirs, "freezer").or(self.dirs.first());
        if let Some(d) = dir {
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
    /// hierarchy where its directory exists, including parents `create` made; a cgroup already
    /// gone is fine.
    pub fn remove(mut self) -> Result<()> {
        self.refresh();
        if self.is_populated() {
            self.kill(Signal::SIGKILL)?;
        }
        self.remove_empty(EMPTY_TIMEOUT)
    }

    /// The actions [`Cgroup::remove_empty`] takes once the cgroup is empty: one `remove` per
    /// hierarchy where its directory exists (with its sub-cgroups, deepest first), then one per
    /// parent `create` made, deepest first, kept if something else uses it by then.
    pub fn remove_actions(&self) -> Vec<Action> {
        steps::remove_ops(self)
            .into_iter()
            .map(|(_, a)| a)
            .collect()
    }

    /// Waits (bounded) for the cgroup to empty, then removes it bottom-up (the actions of
    /// [`Cgroup::remove_actions`], each traced as `remove`), reporting every directory it could
    /// not remove.
    pub fn remove_empty(mut self, timeout: Duration) -> Result<()> {
        self.refresh();
        let waited = self.wait_empty(timeout);
        let deadline = Instant::now() + timeout;
        let failed = steps::remove(&self, deadline);
        if !failed.is_empty() {
            return Err(Error::msg(
                format!("remove cgroup {}", self.name),
                format!("could not remove {}", failed.join(", ")),
            ));
        }
        waited
    }

    /// Makes [`Cgroup::dirs`] every directory of the cgroup that exists now, so removal also
    /// finds a hierarchy another process's `set` added.
    pub(crate) fn refresh(&mut self) {
        self.dirs = self
            .all
            .iter()
            .filter(|d| d.path.is_dir())
            .cloned()
            .collect();
    }

    /// Removes the directories a failed create made, deepest first (they are empty).
    pub(crate) fn remove_created(&mut self) {
        while let Some(p) = self.created.pop() {
            let _ = fs::remove_dir(&p);
        }
    }
}

/// Writes `who` into `cgroup.procs` of each of `dirs`, each write traced as its `join` action.
fn walk_join(dirs: &[Dir], who: Who) -> Result<()> {
    let value = match who {
        Who::Pid(pid) => pid.to_string(),
        Who::Myself | Who::Var => "0".to_string(),
    };
    let actions = steps::join_actions(dirs, who);
    for (d, a) in dirs.iter().zip(&actions) {
        trace::action(a, || files::write(&d.path.join("cgroup.procs"), &value))?;
    }
    Ok(())
}

/// Fails unless every v1 controller in `needed` has a mounted hierarchy; the error names the
/// field that needs it and the layout.
pub(crate) fn check_v1_controllers(
    layout: &Layout,
    needed: &[(&'static str, &'static str)],
) -> Result<()> {
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

/// The directory of v1 controller `controller` among `dirs`, or the unified one on v2 (`""` =
/// the cgroup's core files: the unified directory on v2, none on v1).
pub(crate) fn dir_for<'a>(kind: Kind, dirs: &'a [Dir], controller: &str) -> Option<&'a Dir> {
    if kind == Kind::V2 {
        dirs.iter().find(|d| d.hierarchy.unified)
    } else if controller.is_empty() {
        None
    } else {
        dirs.iter().find(|d| d.hierarchy.has(controller))
    }
}

/// Whether `dir` or a sub-cgroup has a process: v2 `cgroup.events` says so directly; v1 has
/// only the `cgroup.procs` lists.
pub(crate) fn populated(dir: &Path) -> bool {
    if let Ok(events) = files::read(&dir.join("cgroup.events")) {
        return files::keyed(&events, "populated") == Some(1);
    }
    let mut pids = Vec::new();
    let _ = collect_pids(dir, &mut pids);
    !pids.is_empty()
}

/// Appends the pids in `dir`'s `cgroup.procs` and its sub-cgroups'; a directory that vanished
/// meanwhile contributes nothing.
pub(crate) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
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
pub(crate) fn subdirs(dir: &Path) -> Vec<PathBuf> {
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
pub(crate) fn remove_tree(dir: &Path, deadline: Instant, failed: &mut Vec<String>) {
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
