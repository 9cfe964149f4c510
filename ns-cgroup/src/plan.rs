//! Plan, then apply: every change ns-cgroup makes to the cgroup tree (`create`, `set`, `join`,
//! `remove`) is first built as an ordered list of [`common::plan::Action`]s, which `--plan`
//! prints as JSON, `--explain` as a shell script, and a real run walks one by one, each inside
//! [`common::trace::action`], so the trace (`NS_TRACE`) has the plan's steps in the plan's order.
//!
//! The steps (stage `ns-cgroup`):
//! - `mkdir` (`path`): a directory of the cgroup or a missing parent, one per hierarchy;
//! - `write` (`path` = the control file, `value`): a limit (with `field`, the `cgroups` field),
//!   v2 controllers enabled in a parent's `cgroup.subtree_control` (`optional` for the stats
//!   controllers, whose failure is ignored), or v1 `cpuset.cpus`/`cpuset.mems` copied into a new
//!   directory from its parent (a cpuset cgroup without them refuses tasks);
//! - `device_program` (`path`, `rules`): v2 only, the device eBPF program ([`crate::devices`]);
//! - `join` (`path` = a `cgroup.procs` file, `pid`); `remove` (`path`).
//!
//! A plan is built by reading the tree, never changing it, so printing one changes nothing. What
//! a create's actions depend on is read from what already exists:
//! - only missing directories get a `mkdir`;
//! - v2: each parent's `cgroup.controllers` and `cgroup.subtree_control`; a directory the plan
//!   makes starts with its parent's `subtree_control` as its controllers and none enabled;
//! - v1 cpuset: a directory the plan makes starts empty, and gets the nearest existing
//!   ancestor's value (each one made along the path copies its parent, as the kernel requires);
//! - swap accounting, from an existing cgroup of the memory hierarchy ([`swap_accounting`]);
//! - v2 `cpu.max` of a new cgroup is the kernel's default, `max 100000`;
//! - v1 `memory.memsw.limit_in_bytes` (unlimited in a new cgroup), which orders the memory and
//!   memory + swap writes ([`crate::limits`]).
//!
//! The tree can change between plan and apply; the apply then fails at the step that no longer
//! fits (a create removing what it made), and the trace names that step.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use serde_json::Value;

use common::config::Cgroups;
use common::plan::{Action, Plan, quote, quote_os};
use common::{Error, Result, trace};

use crate::cgroup::{self, Cgroup, Dir, V2_STATS, dir_for, populated};
use crate::cli::{Command, Show};
use crate::layout::{Hierarchy, Kind, Layout};
use crate::limits::{self, Current, Rule, Step};
use crate::{devices, files};

/// The stage name of every action and trace line.
pub const STAGE: &str = "ns-cgroup";

/// Who a `join` moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// This pid.
    Pid(i32),
    /// A pid known only later (`"$pid"` in the shell form).
    Var,
    /// The writing process itself (`0`, `$$` in the shell form).
    Myself,
}

/// One action, typed, as apply needs it.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Mkdir(PathBuf),
    Write {
        path: PathBuf,
        value: String,
        why: Why,
    },
    DeviceProgram {
        dir: PathBuf,
        rules: Vec<Rule>,
        field: &'static str,
    },
}

/// Why a file is written, which decides how its failure reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// A limit from `cgroups.FIELD`; the file must exist (else the kernel lacks the feature).
    Limit(&'static str),
    /// Controllers the limits need, in a v2 parent's `cgroup.subtree_control`.
    Enable,
    /// One stats controller: a convenience, its failure is ignored.
    EnableStats,
    /// v1 cpuset values copied from the parent.
    FillCpuset,
}

/// The typed ops and their actions, index for index.
#[derive(Debug, Default)]
struct Ops {
    ops: Vec<Op>,
    actions: Vec<Action>,
}

impl Ops {
    fn push(&mut self, op: Op) {
        self.actions.push(action(&op));
        self.ops.push(op);
    }
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn q(p: &Path) -> String {
    quote_os(p.as_os_str())
}

/// Whether a freezer value freezes (v1 `FROZEN`, v2 `1`).
fn freezes(value: &str) -> bool {
    value == "FROZEN" || value == "1"
}

/// The action (JSON arguments and shell lines) of `op`.
fn action(op: &Op) -> Action {
    match op {
        Op::Mkdir(path) => Action::new(STAGE, "mkdir")
            .arg("path", text(path))
            .sh(format!("mkdir {}", q(path))),
        Op::Write { path, value, why } => {
            let a = Action::new(STAGE, "write")
                .arg("path", text(path))
                .arg("value", value);
            let echo = format!("echo {} > {}", quote(value), q(path));
            match why {
                Why::Limit(field) => {
                    let a = a.arg("field", format!("cgroups.{field}")).sh(echo);
                    if *field == "freezer" && freezes(value) {
                        a.sh("# ns-cgroup then waits until the kernel reports it frozen")
                    } else {
                        a
                    }
                }
                Why::EnableStats => a
                    .arg("optional", true)
                    .sh(format!("{echo} || :  # only for stats: may fail")),
                Why::Enable | Why::FillCpuset => a.sh(echo),
            }
        }
        Op::DeviceProgram { dir, rules, field } => {
            let lines: Vec<String> = rules.iter().map(Rule::v1_line).collect();
            let mut a = Action::new(STAGE, "device_program")
                .arg("path", text(dir))
                .arg("rules", &lines)
                .arg("field", format!("cgroups.{field}"))
                .sh("# no shell tool does this: ns-cgroup loads a BPF_PROG_TYPE_CGROUP_DEVICE program")
                .sh(format!(
                    "# and attaches it to {}, allowing only these devices (all others denied):",
                    dir.display()
                ));
            for l in &lines {
                a = a.sh(format!("#   {l}"));
            }
            a
        }
    }
}

/// What [`Cgroup::create`] does, planned by [`Cgroup::plan_create`]: print its
/// [`actions`](CreatePlan::actions), or [`apply`](CreatePlan::apply) it.
#[derive(Debug)]
pub struct CreatePlan {
    /// The cgroup as it will be (nothing made yet).
    cg: Cgroup,
    /// The cgroup's directories that existed when planned: refused if in use at apply.
    existing: Vec<PathBuf>,
    ops: Ops,
}

impl CreatePlan {
    /// The actions, in order: per hierarchy the `mkdir`s (with v2 `subtree_control` and v1
    /// cpuset `write`s around them), then one `write` per limit file, or `device_program`.
    pub fn actions(&self) -> &[Action] {
        &self.ops.actions
    }

    /// `parent/name`.
    pub fn name(&self) -> &str {
        &self.cg.name
    }

    /// The layout it is planned for.
    pub fn kind(&self) -> Kind {
        self.cg.kind
    }

    /// Its directory in each hierarchy.
    pub fn dirs(&self) -> &[Dir] {
        &self.cg.dirs
    }

    /// The actions of [`Cgroup::join_action`] for the cgroup this plan makes.
    pub fn join_action(&self, pid: Option<i32>) -> Vec<Action> {
        join_actions(&self.cg.dirs, pid.map_or(Who::Var, Who::Pid))
    }

    /// The `remove` actions that take down what applying this plan makes, as
    /// [`Cgroup::remove_actions`] will list them then: the cgroup's directory in each
    /// hierarchy, then the parents the plan creates, deepest first (kept if in use). ns-exec's
    /// plan lists them after the container's end.
    pub fn remove_actions(&self) -> Vec<Action> {
        let mut out: Vec<Action> = self
            .cg
            .dirs
            .iter()
            .map(|d| {
                Action::new(STAGE, "remove")
                    .arg("path", text(&d.path))
                    .sh(format!("rmdir {}", q(&d.path)))
            })
            .collect();
        let made = self
            .ops
            .actions
            .iter()
            .filter(|a| a.step == "mkdir")
            .filter_map(|a| a.args.get("path").and_then(|p| p.as_str()))
            .filter(|p| !self.cg.dirs.iter().any(|d| d.path.as_os_str() == *p))
            .map(PathBuf::from)
            .collect::<Vec<_>>();
        for p in made.iter().rev() {
            out.push(
                Action::new(STAGE, "remove")
                    .arg("path", text(p))
                    .arg("if_unused", true)
                    .sh(format!("rmdir {} 2>/dev/null || :  # kept if in use", q(p))),
            );
        }
        out
    }

    /// Walks exactly [`CreatePlan::actions`], tracing each. On failure the directories it made
    /// are removed again, deepest first (not traced: not part of the plan), and the error names
    /// the cgroup.
    pub fn apply(self) -> Result<Cgroup> {
        let CreatePlan {
            mut cg,
            existing,
            ops,
        } = self;
        let mut made = Vec::new();
        let result = check_unused(&existing).and_then(|()| run(&cg, &ops, &mut made));
        cg.created = made;
        match result {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.remove_created();
                Err(e.context(format!("create cgroup {}", cg.name)))
            }
        }
    }
}

/// [`Cgroup::plan_create_in`].
pub(crate) fn plan_create(layout: &Layout, name: &str, limits: &Cgroups) -> Result<CreatePlan> {
    let (rel, absolute) = cgroup::placement(name, limits.parent.as_deref())?;
    let dirs: Vec<Dir> = cgroup::hierarchies(layout)
        .into_iter()
        .map(|h| Dir {
            path: cgroup::dir_in(&h, &rel, absolute),
            hierarchy: h,
        })
        .collect();
    let steps = limits::plan(layout.kind, limits, &current(layout.kind, &dirs))?;
    let needed = limits::controllers(&steps);
    cgroup::check_v1_controllers(layout, &needed)?;
    let cg = Cgroup {
        name: rel.clone(),
        kind: layout.kind,
        dirs,
        created: Vec::new(),
    };
    let context = |e: Error| e.context(format!("create cgroup {rel}"));
    let mut ops = Ops::default();
    for d in &cg.dirs {
        tree_ops(layout.kind, &d.hierarchy, absolute, &rel, &needed, &mut ops).map_err(context)?;
    }
    let existing: Vec<PathBuf> = cg
        .dirs
        .iter()
        .filter(|d| d.path.is_dir())
        .map(|d| d.path.clone())
        .collect();
    check_unused(&existing).map_err(context)?;
    for s in &steps {
        ops.push(limit_op(&cg, s).map_err(context)?);
    }
    Ok(CreatePlan { cg, existing, ops })
}

/// A v2 directory's `cgroup.controllers` (offered) and `cgroup.subtree_control` (enabled).
struct Controllers {
    offered: Vec<String>,
    enabled: Vec<String>,
}

impl Controllers {
    fn read(dir: &Path) -> Result<Controllers> {
        let words = |file: &str| -> Result<Vec<String>> {
            Ok(files::read(&dir.join(file))?
                .split_whitespace()
                .map(str::to_string)
                .collect())
        };
        Ok(Controllers {
            offered: words("cgroup.controllers")?,
            enabled: words("cgroup.subtree_control")?,
        })
    }
}

/// The actions that make `rel` in hierarchy `h`: for each directory along the path, v2's
/// controller enabling in its parent, its `mkdir` when missing, and v1's cpuset filling.
fn tree_ops(
    kind: Kind,
    h: &Hierarchy,
    absolute: bool,
    rel: &str,
    needed: &[(&'static str, &'static str)],
    ops: &mut Ops,
) -> Result<()> {
    let mut path = if absolute {
        h.mount.clone()
    } else {
        h.own.clone()
    };
    const CPUSET: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];
    let read_trimmed = |p: &Path| -> Result<String> { Ok(files::read(p)?.trim().to_string()) };
    let mut v2 = if h.unified && kind == Kind::V2 {
        Some(Controllers::read(&path)?)
    } else {
        None
    };
    // The parent's cpuset values as they will be when its child is made (read when needed).
    let mut cpuset: Option<[Option<String>; 2]> = h.has("cpuset").then_some([None, None]);
    for part in rel.split('/') {
        let parent = path.clone();
        path.push(part);
        let exists = path.is_dir();
        if let Some(state) = v2.as_mut() {
            let after = enable_ops(&parent, state, needed, kind, ops)?;
            *state = if exists {
                Controllers::read(&path)?
            } else {
                Controllers {
                    offered: after,
                    enabled: Vec::new(),
                }
            };
        }
        if !exists {
            ops.push(Op::Mkdir(path.clone()));
        }
        if let Some(values) = cpuset.as_mut() {
            for (file, value) in CPUSET.iter().zip(values.iter_mut()) {
                let mine = if exists {
                    read_trimmed(&path.join(file))?
                } else {
                    String::new()
                };
                if mine.is_empty() {
                    let theirs = match value {
                        Some(v) => v.clone(),
                        None => read_trimmed(&parent.join(file))?,
                    };
                    ops.push(Op::Write {
                        path: path.join(file),
                        value: theirs.clone(),
                        why: Why::FillCpuset,
                    });
                    *value = Some(theirs);
                } else {
                    *value = Some(mine);
                }
            }
        }
    }
    Ok(())
}

/// v2: the writes enabling `needed` (an error naming the field when `parent` does not offer
/// one) and the stats controllers it offers in `parent`'s `cgroup.subtree_control`; returns the
/// controllers enabled there afterwards (what a new child is offered).
fn enable_ops(
    parent: &Path,
    state: &Controllers,
    needed: &[(&'static str, &'static str)],
    kind: Kind,
    ops: &mut Ops,
) -> Result<Vec<String>> {
    let file = parent.join("cgroup.subtree_control");
    let offered = |c: &str| state.offered.iter().any(|o| o == c);
    let enabled = |c: &str| state.enabled.iter().any(|o| o == c);
    let mut after = state.enabled.clone();
    let mut todo = Vec::new();
    for (c, field) in needed {
        if !offered(c) {
            return Err(Error::config(
                format!("cgroups.{field}"),
                format!(
                    "the {c} controller is not available in {} ({} layout)",
                    parent.display(),
                    kind.name()
                ),
            ));
        }
        if !enabled(c) {
            todo.push(format!("+{c}"));
            after.push(c.to_string());
        }
    }
    if !todo.is_empty() {
        ops.push(Op::Write {
            path: file.clone(),
            value: todo.join(" "),
            why: Why::Enable,
        });
    }
    for c in V2_STATS {
        if offered(c) && !after.iter().any(|a| a == c) {
            ops.push(Op::Write {
                path: file.clone(),
                value: format!("+{c}"),
                why: Why::EnableStats,
            });
            after.push(c.to_string());
        }
    }
    Ok(after)
}

/// The op of one limit step, in the directory of its controller.
fn limit_op(cg: &Cgroup, step: &Step) -> Result<Op> {
    let dir = dir_for(cg.kind, &cg.dirs, step.controller).ok_or_else(|| {
        Error::msg(
            format!("cgroups.{}", step.field),
            format!(
                "the {} controller is not available ({} layout)",
                if step.controller.is_empty() {
                    "core"
                } else {
                    step.controller
                },
                cg.kind.name()
            ),
        )
    })?;
    Ok(match &step.action {
        limits::Action::Write { file, value } => Op::Write {
            path: dir.path.join(file),
            value: value.clone(),
            why: Why::Limit(step.field),
        },
        limits::Action::DeviceProgram(rules) => Op::DeviceProgram {
            dir: dir.path.clone(),
            rules: rules.clone(),
            field: step.field,
        },
    })
}

/// What the limits plan needs to know, read from `dirs` where they exist, and for a directory
/// not made yet, what the kernel gives a new cgroup.
fn current(kind: Kind, dirs: &[Dir]) -> Current {
    let mem = dir_for(kind, dirs, "memory");
    let read = |d: Option<&Dir>, file: &str| {
        d.and_then(|d| files::read(&d.path.join(file)).ok())
            .map(|s| s.trim().to_string())
    };
    let v2 = kind == Kind::V2;
    Current {
        swap_accounting: mem.is_some_and(|d| swap_accounting(kind, d)),
        // A new cgroup's cpu.max is `max 100000` (the kernel's default period), which
        // limits::cpu_max assumes when this is None.
        cpu_max: read(dir_for(kind, dirs, "cpu").filter(|_| v2), "cpu.max"),
        // A new cgroup's memsw limit is unlimited (None).
        memsw_limit: read(mem.filter(|_| !v2), "memory.memsw.limit_in_bytes")
            .and_then(|s| s.parse().ok()),
    }
}

/// Whether the kernel accounts swap in the memory hierarchy of `d`, known before `d` exists:
/// v1 has `memory.memsw.*` in every cgroup (the root included) exactly when it does, so the
/// nearest existing ancestor tells. v2 has `memory.swap.max` in every non-root cgroup with the
/// memory controller, so the nearest such ancestor tells, or else any child of the root.
/// When no cgroup shows it (a v2 tree where no cgroup has memory enabled), accounting is assumed
/// (the kernel's default); if that is wrong, the `memory.swap.max` write fails naming the field
/// instead of being left out.
pub(crate) fn swap_accounting(kind: Kind, d: &Dir) -> bool {
    let file = if kind == Kind::V2 {
        "memory.swap.max"
    } else {
        "memory.memsw.limit_in_bytes"
    };
    if d.path.is_dir() {
        return d.path.join(file).exists();
    }
    let mount = &d.hierarchy.mount;
    let mut candidates: Vec<PathBuf> = d
        .path
        .ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(mount))
        .filter(|a| a.is_dir())
        .map(Path::to_path_buf)
        .collect();
    if kind == Kind::V2 {
        candidates.retain(|a| a != mount);
        candidates.extend(cgroup::subdirs(mount));
        candidates.retain(|a| a.join("memory.max").exists());
    }
    candidates.first().is_none_or(|a| a.join(file).exists())
}

/// Refuses directories of the cgroup that have processes (another container of that name).
fn check_unused(dirs: &[PathBuf]) -> Result<()> {
    if dirs.iter().any(|d| populated(d)) {
        return Err(Error::msg(
            "in use",
            "it exists and has processes (another container with that name?)",
        ));
    }
    Ok(())
}

/// Walks `ops` on `cg`, each inside its traced action; directories made go to `made`.
fn run(cg: &Cgroup, ops: &Ops, made: &mut Vec<PathBuf>) -> Result<()> {
    for (op, a) in ops.ops.iter().zip(&ops.actions) {
        match (trace::action(a, || run_op(cg, op)), op) {
            (Ok(true), Op::Mkdir(path)) => made.push(path.clone()),
            (Ok(_), _) => {}
            // The stats controllers are a convenience: the cgroup works without them.
            (Err(_), Op::Write { why, .. }) if *why == Why::EnableStats => {}
            (Err(e), _) => return Err(e),
        }
    }
    Ok(())
}

/// Applies one op; `Ok(true)` when it made a directory.
fn run_op(cg: &Cgroup, op: &Op) -> Result<bool> {
    match op {
        Op::Mkdir(path) => match fs::create_dir(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                // Made by someone else since the plan: used as a directory that existed then
                // (never removed by us), and refused if it is the cgroup and in use.
                if cg.dirs.iter().any(|d| &d.path == path) {
                    check_unused(std::slice::from_ref(path))?;
                }
                Ok(false)
            }
            Err(e) => Err(Error::io(format!("mkdir {}", path.display()), e)),
        },
        Op::Write { path, value, why } => write(cg, path, value, *why).map(|()| false),
        Op::DeviceProgram { dir, rules, field } => {
            let fd = cgroup::open_dir(dir)?;
            devices::attach(&fd, rules).map_err(|(what, errno)| {
                Error::sys(
                    format!("cgroups.{field}: {what} on {}", dir.display()),
                    errno,
                )
            })?;
            Ok(false)
        }
    }
}

fn write(cg: &Cgroup, path: &Path, value: &str, why: Why) -> Result<()> {
    match why {
        Why::Limit(field) => {
            let field = format!("cgroups.{field}");
            if !path.exists() {
                return Err(Error::msg(
                    field,
                    format!(
                        "{} does not exist: not supported by this kernel ({} layout)",
                        path.display(),
                        cg.kind.name()
                    ),
                ));
            }
            files::write(path, value).map_err(|e| e.context(&field))?;
            if field == "cgroups.freezer" && freezes(value) {
                cg.wait_frozen(true)?;
            }
            Ok(())
        }
        Why::Enable => files::write(path, value).map_err(|e| {
            if e.errno == Some(Errno::EBUSY) {
                Error {
                    detail: Some(
                        "it has processes of its own (cgroup v2's no-internal-process rule)".into(),
                    ),
                    ..e
                }
            } else {
                e
            }
        }),
        Why::EnableStats | Why::FillCpuset => files::write(path, value),
    }
}

/// The ops of [`Cgroup::set`]: one per limit step, planned from the cgroup's files.
fn set_ops(cg: &Cgroup, limits: &Cgroups) -> Result<Ops> {
    let steps = limits::plan(cg.kind, limits, &current(cg.kind, &cg.dirs))?;
    let mut ops = Ops::default();
    for s in &steps {
        ops.push(limit_op(cg, s)?);
    }
    Ok(ops)
}

/// [`Cgroup::set_actions`].
pub(crate) fn set_actions(cg: &Cgroup, limits: &Cgroups) -> Result<Vec<Action>> {
    Ok(set_ops(cg, limits)?.actions)
}

/// [`Cgroup::set`].
pub(crate) fn set(cg: &Cgroup, limits: &Cgroups) -> Result<()> {
    let ops = set_ops(cg, limits)?;
    run(cg, &ops, &mut Vec::new())
}

/// One `join` per directory: `who` written to its `cgroup.procs`.
pub(crate) fn join_actions(dirs: &[Dir], who: Who) -> Vec<Action> {
    let (pid, word) = match who {
        Who::Pid(p) => (Value::from(p), p.to_string()),
        Who::Var => (Value::Null, "\"$pid\"".to_string()),
        Who::Myself => (Value::from(0), "$$".to_string()),
    };
    dirs.iter()
        .map(|d| {
            let procs = d.path.join("cgroup.procs");
            Action::new(STAGE, "join")
                .arg("path", text(&procs))
                .arg("pid", &pid)
                .sh(format!("echo {word} > {}", q(&procs)))
        })
        .collect()
}

/// What one `remove` action removes.
pub(crate) enum Removal {
    /// The cgroup's directory and its sub-cgroups, deepest first.
    Tree(PathBuf),
    /// A parent `create` made, unless something else uses it by now.
    Parent(PathBuf),
}

/// `dir` and its sub-cgroups, deepest first.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for child in cgroup::subdirs(dir) {
        out.extend(tree(&child));
    }
    out.push(dir.to_path_buf());
    out
}

/// The removals of [`Cgroup::remove_actions`], with their actions.
pub(crate) fn remove_ops(cg: &Cgroup) -> Vec<(Removal, Action)> {
    let mut out = Vec::new();
    for d in cg.dirs.iter().filter(|d| d.path.is_dir()) {
        let mut a = Action::new(STAGE, "remove").arg("path", text(&d.path));
        for dir in tree(&d.path) {
            a = a.sh(format!("rmdir {}", q(&dir)));
        }
        out.push((Removal::Tree(d.path.clone()), a));
    }
    let parents = cg
        .created
        .iter()
        .rev()
        .filter(|p| p.is_dir() && !cg.dirs.iter().any(|d| &d.path == *p));
    for p in parents {
        let a = Action::new(STAGE, "remove")
            .arg("path", text(p))
            .arg("if_unused", true)
            .sh(format!("rmdir {} 2>/dev/null || :  # kept if in use", q(p)));
        out.push((Removal::Parent(p.clone()), a));
    }
    out
}

/// Walks the removals of `cg` (retrying `EBUSY` until `deadline`), each traced; returns what
/// could not be removed.
pub(crate) fn remove(cg: &Cgroup, deadline: Instant) -> Vec<String> {
    let mut failed = Vec::new();
    for (r, a) in remove_ops(cg) {
        // A failure is recorded in the trace and reported with the others at the end.
        let _ = trace::action(&a, || {
            let before = failed.len();
            let path = match &r {
                Removal::Tree(dir) => {
                    cgroup::remove_tree(dir, deadline, &mut failed);
                    dir
                }
                Removal::Parent(p) => {
                    match fs::remove_dir(p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e)
                            if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {}
                        Err(e) => failed.push(format!("{}: {e}", p.display())),
                    }
                    p
                }
            };
            if failed.len() == before {
                Ok(())
            } else {
                Err(Error::msg(
                    format!("remove {}", path.display()),
                    failed[before..].join(", "),
                ))
            }
        });
    }
    failed
}

/// What `--plan` (JSON) or `--explain` (a shell script) prints for `cmd` (create, set, join
/// or remove); reads the tree, changes nothing.
pub fn render(show: Show, cmd: Command) -> Result<String> {
    let (actions, header, tail) = match cmd {
        Command::Create(t, limits) => {
            let p = Cgroup::plan_create(&t.name, &limits)?;
            let header = format!(
                "ns-cgroup create {}: make the cgroup in every hierarchy and write its limits\n\
                 ({} layout), as planned from the cgroup tree as it is now.\n\
                 Unlike ns-cgroup, this script leaves what it made when a step fails.",
                p.name(),
                p.kind().name()
            );
            (p.actions().to_vec(), header, String::new())
        }
        Command::Set(t, limits) => {
            let cg = Cgroup::open_existing(&t.name, t.parent.as_deref())?;
            let header = format!(
                "ns-cgroup set {}: write new limits to the live cgroup ({} layout).",
                cg.name(),
                cg.kind().name()
            );
            (cg.set_actions(&limits)?, header, String::new())
        }
        Command::JoinPid(t, pid) => {
            let cg = Cgroup::open_existing(&t.name, t.parent.as_deref())?;
            let header = format!(
                "ns-cgroup join {} --pid {pid}: move process {pid} into the cgroup in every hierarchy.",
                cg.name()
            );
            (cg.join_action(Some(pid)), header, String::new())
        }
        Command::JoinExec(t, argv) => {
            let cg = Cgroup::open_existing(&t.name, t.parent.as_deref())?;
            let words: Vec<String> = argv.iter().map(|a| quote_os(a)).collect();
            let header = format!(
                "ns-cgroup join {} -- CMD: move this shell into the cgroup in every hierarchy,\n\
                 then run the command in its place, so it and its children start inside.",
                cg.name()
            );
            let tail = format!("# ns-cgroup: exec\nexec {}\n", words.join(" "));
            (cg.join_self_action(), header, tail)
        }
        Command::Remove(t, timeout) => {
            let cg = Cgroup::open(&t.name, t.parent.as_deref())?;
            let what = match &cg {
                Some(_) => format!(
                    "remove the cgroup and its sub-cgroups, bottom-up, in every hierarchy.\n\
                     ns-cgroup first waits (at most {}s) until no process is left; this script does not.",
                    timeout.as_secs()
                ),
                None => "the cgroup does not exist: nothing to do.".to_string(),
            };
            let name = cg.as_ref().map_or(t.name.as_str(), |cg| cg.name());
            let header = format!("ns-cgroup remove {name}: {what}");
            let actions = cg.map(|cg| cg.remove_actions()).unwrap_or_default();
            (actions, header, String::new())
        }
        other => {
            return Err(Error::usage(format!(
                "--plan and --explain apply to create, join, set and remove, not {other:?}"
            )));
        }
    };
    let plan = Plan::new(STAGE, actions);
    Ok(match show {
        Show::Json => plan.to_json(),
        Show::Shell => plan.to_shell(&header) + &tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A throwaway directory standing in for /sys/fs/cgroup, removed on drop.
    struct FakeTree(PathBuf);

    impl FakeTree {
        fn new(tag: &str) -> FakeTree {
            static N: AtomicUsize = AtomicUsize::new(0);
            let root = std::env::temp_dir().join(format!(
                "nscg-unit-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).unwrap();
            FakeTree(root)
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.0.join(rel)
        }

        /// A file (and its directories) with `text`.
        fn file(&self, rel: &str, text: &str) {
            let p = self.path(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }

        /// A mountinfo line of a `fstype` mount at `rel` in the tree (made).
        fn mount(&self, id: u32, rel: &str, fstype: &str, options: &str) -> String {
            fs::create_dir_all(self.path(rel)).unwrap();
            format!(
                "{id} 1 0:{id} / {} rw - {fstype} {fstype} {options}\n",
                self.path(rel).display()
            )
        }
    }

    impl Drop for FakeTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn limits(json: &str) -> Cgroups {
        serde_json::from_str(json).unwrap()
    }

    /// (step, path, value or rules) of each action, paths relative to the tree.
    fn summary(tree: &FakeTree, actions: &[Action]) -> Vec<(String, String, String)> {
        let root = format!("{}/", tree.0.display());
        actions
            .iter()
            .map(|a| {
                let path = a.args["path"].as_str().unwrap().replace(&root, "");
                let value = match (&a.args.get("value"), &a.args.get("rules")) {
                    (Some(v), _) => v.as_str().unwrap().to_string(),
                    (None, Some(r)) => r.to_string(),
                    (None, None) => String::new(),
                };
                (a.step.clone(), path, value)
            })
            .collect()
    }

    fn row(step: &str, path: &str, value: &str) -> (String, String, String) {
        (step.into(), path.into(), value.into())
    }

    /// The trace lines written to `file` as (step, what, outcome).
    fn trace_of(file: &Path) -> Vec<(String, String, String)> {
        fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                assert_eq!(v["stage"], STAGE);
                (s("step"), s("what"), s("outcome"))
            })
            .collect()
    }

    #[test]
    fn v1_plan_makes_missing_dirs_fills_cpuset_from_the_parent_then_writes_limits() {
        let t = FakeTree::new("v1");
        let mountinfo = t.mount(1, "memory", "cgroup", "rw,memory")
            + &t.mount(2, "cpuset", "cgroup", "rw,cpuset")
            + &t.mount(3, "pids", "cgroup", "rw,pids");
        let layout = Layout::parse(&mountinfo, "4:memory:/user\n3:cpuset:/\n8:pids:/\n").unwrap();
        assert_eq!(layout.kind, Kind::V1);
        // Swap accounting shows in the own cgroup, the nearest existing ancestor.
        t.file(
            "memory/user/memory.memsw.limit_in_bytes",
            "9223372036854771712\n",
        );
        t.file("cpuset/cpuset.cpus", "0-3\n");
        t.file("cpuset/cpuset.mems", "0\n");
        let c = limits(
            r#"{"parent":"p","memory":"64m","memory_swap":"128m","pids_max":10,"cpuset_cpus":"1"}"#,
        );
        let plan = plan_create(&layout, "c", &c).unwrap();
        assert_eq!(plan.name(), "p/c");
        assert_eq!(
            summary(&t, plan.actions()),
            [
                row("mkdir", "memory/user/p", ""),
                row("mkdir", "memory/user/p/c", ""),
                row("mkdir", "cpuset/p", ""),
                row("write", "cpuset/p/cpuset.cpus", "0-3"),
                row("write", "cpuset/p/cpuset.mems", "0"),
                row("mkdir", "cpuset/p/c", ""),
                row("write", "cpuset/p/c/cpuset.cpus", "0-3"),
                row("write", "cpuset/p/c/cpuset.mems", "0"),
                row("mkdir", "pids/p", ""),
                row("mkdir", "pids/p/c", ""),
                row("write", "memory/user/p/c/memory.limit_in_bytes", "67108864"),
                row(
                    "write",
                    "memory/user/p/c/memory.memsw.limit_in_bytes",
                    "134217728"
                ),
                row("write", "cpuset/p/c/cpuset.cpus", "1"),
                row("write", "pids/p/c/pids.max", "10"),
            ]
        );
        let limit = &plan.actions()[10];
        assert_eq!(limit.args["field"], "cgroups.memory");
        assert_eq!(
            limit.shell,
            [format!(
                "echo 67108864 > {}",
                t.path("memory/user/p/c/memory.limit_in_bytes").display()
            )]
        );
        // Planning changed nothing.
        assert!(!t.path("memory/user/p").exists());
        // Without accounting, memory_swap is refused at plan time.
        fs::remove_file(t.path("memory/user/memory.memsw.limit_in_bytes")).unwrap();
        let e = plan_create(&layout, "c", &c).unwrap_err().to_string();
        assert!(e.contains("no swap accounting"), "{e}");
    }

    #[test]
    fn hybrid_plan_makes_only_missing_dirs_and_enables_nothing_in_the_unified_tree() {
        let t = FakeTree::new("hybrid");
        let mountinfo =
            t.mount(1, "memory", "cgroup", "rw,memory") + &t.mount(2, "unified", "cgroup2", "rw");
        let layout = Layout::parse(&mountinfo, "4:memory:/\n0::/user\n").unwrap();
        assert_eq!(layout.kind, Kind::Hybrid);
        t.file("memory/c/memory.limit_in_bytes", "9223372036854771712\n");
        t.file("unified/user/cgroup.controllers", "");
        t.file("unified/user/cgroup.subtree_control", "");
        let plan = plan_create(
            &layout,
            "c",
            &limits(r#"{"memory":"1m","freezer":"THAWED"}"#),
        );
        // No freezer hierarchy: refused naming the field.
        let e = plan.unwrap_err().to_string();
        assert!(e.contains("cgroups.freezer") && e.contains("hybrid"), "{e}");
        let plan = plan_create(&layout, "c", &limits(r#"{"memory":"1m"}"#)).unwrap();
        assert_eq!(
            summary(&t, plan.actions()),
            [
                row("mkdir", "unified/user/c", ""),
                row("write", "memory/c/memory.limit_in_bytes", "1048576"),
            ]
        );
    }

    #[test]
    fn v2_plan_enables_controllers_down_the_path_and_explains_the_device_program() {
        let t = FakeTree::new("v2");
        let layout = Layout::parse(&t.mount(1, "v2", "cgroup2", "rw"), "0::/user\n").unwrap();
        assert_eq!(layout.kind, Kind::V2);
        t.file("v2/user/cgroup.controllers", "cpuset cpu io memory pids\n");
        t.file("v2/user/cgroup.subtree_control", "memory\n");
        t.file("v2/user/memory.max", "max\n");
        t.file("v2/user/memory.swap.max", "max\n");
        let c = limits(
            r#"{"parent":"p","memory":100,"memory_swap":300,"cpu_quota":50000,"pids_max":5,
                "allowed_devices":[{"type":"c","major_number":1,"minor_number":3,
                                    "cgroup_permissions":"rw"}]}"#,
        );
        let plan = plan_create(&layout, "c", &c).unwrap();
        assert_eq!(
            summary(&t, plan.actions()),
            [
                row("write", "v2/user/cgroup.subtree_control", "+cpu +pids"),
                row("write", "v2/user/cgroup.subtree_control", "+io"),
                row("mkdir", "v2/user/p", ""),
                row(
                    "write",
                    "v2/user/p/cgroup.subtree_control",
                    "+memory +cpu +pids"
                ),
                row("write", "v2/user/p/cgroup.subtree_control", "+io"),
                row("mkdir", "v2/user/p/c", ""),
                row("write", "v2/user/p/c/memory.max", "100"),
                row("write", "v2/user/p/c/memory.swap.max", "200"),
                // A new cgroup's cpu.max is the kernel's `max 100000`.
                row("write", "v2/user/p/c/cpu.max", "50000 100000"),
                row("write", "v2/user/p/c/pids.max", "5"),
                row("device_program", "v2/user/p/c", r#"["c 1:3 rw"]"#),
            ]
        );
        let stats = &plan.actions()[1];
        assert_eq!(stats.args["optional"], true);
        assert!(stats.shell[0].ends_with("|| :  # only for stats: may fail"));
        let program = plan.actions().last().unwrap();
        assert!(program.shell.iter().all(|l| l.starts_with("# ")));
        assert!(program.shell[0].contains("no shell tool"));
        assert_eq!(program.shell.last().unwrap(), "#   c 1:3 rw");
        // A controller the own cgroup does not offer is refused before anything is done.
        t.file("v2/user/cgroup.controllers", "cpu io memory\n");
        let e = plan_create(&layout, "c", &c).unwrap_err().to_string();
        assert!(
            e.contains("cgroups.pids_max") && e.contains("pids controller"),
            "{e}"
        );
    }

    #[test]
    fn v2_swap_accounting_is_read_from_a_cgroup_with_memory() {
        let t = FakeTree::new("swap");
        let layout = Layout::parse(&t.mount(1, "v2", "cgroup2", "rw"), "0::/\n").unwrap();
        let d = Dir {
            hierarchy: layout.hierarchies[0].clone(),
            path: t.path("v2/new"),
        };
        // The root has no memory files; with no other cgroup, accounting is assumed.
        assert!(swap_accounting(Kind::V2, &d));
        t.file("v2/other/memory.max", "max\n");
        assert!(!swap_accounting(Kind::V2, &d));
        t.file("v2/other/memory.swap.max", "max\n");
        assert!(swap_accounting(Kind::V2, &d));
    }

    #[test]
    fn apply_walks_exactly_the_plan_in_order_and_traces_each_action() {
        let t = FakeTree::new("apply");
        let mountinfo =
            t.mount(1, "memory", "cgroup", "rw,memory") + &t.mount(2, "pids", "cgroup", "rw,pids");
        let layout = Layout::parse(&mountinfo, "4:memory:/\n8:pids:/\n").unwrap();
        // The cgroup exists in the memory hierarchy (with its limit file), not in pids.
        t.file("memory/c/memory.limit_in_bytes", "");
        let plan = plan_create(&layout, "c", &limits(r#"{"memory":"64m"}"#)).unwrap();
        let planned: Vec<(String, String)> = plan
            .actions()
            .iter()
            .map(|a| (a.step.clone(), a.what().unwrap().to_string()))
            .collect();
        let trace_file = t.path("trace");
        trace::init(&trace_file).unwrap();
        let cg = plan.apply().unwrap();
        let traced: Vec<(String, String)> = trace_of(&trace_file)
            .into_iter()
            .map(|(step, what, outcome)| {
                assert_eq!(outcome, "ok");
                (step, what)
            })
            .collect();
        assert_eq!(traced, planned);
        assert_eq!(planned.len(), 2);
        assert_eq!(
            fs::read_to_string(t.path("memory/c/memory.limit_in_bytes")).unwrap(),
            "67108864"
        );
        assert!(t.path("pids/c").is_dir());
        assert_eq!(cg.created, [t.path("pids/c")]);
    }

    #[test]
    fn a_failed_apply_traces_the_error_and_removes_what_it_made() {
        let t = FakeTree::new("fail");
        let layout =
            Layout::parse(&t.mount(1, "memory", "cgroup", "rw,memory"), "4:memory:/\n").unwrap();
        let plan = plan_create(&layout, "c", &limits(r#"{"parent":"p","memory":"1m"}"#)).unwrap();
        let steps: Vec<&str> = plan.actions().iter().map(|a| a.step.as_str()).collect();
        assert_eq!(steps, ["mkdir", "mkdir", "write"]);
        let trace_file = t.path("trace");
        trace::init(&trace_file).unwrap();
        // A fake directory has no memory.limit_in_bytes: the write fails.
        let e = plan.apply().unwrap_err().to_string();
        assert!(
            e.starts_with("create cgroup p/c: cgroups.memory: ") && e.contains("does not exist"),
            "{e}"
        );
        let outcomes: Vec<(String, String)> = trace_of(&trace_file)
            .into_iter()
            .map(|(step, _, outcome)| (step, outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("mkdir".to_string(), "ok".to_string()),
                ("mkdir".into(), "ok".into()),
                ("write".into(), "error".into()),
            ]
        );
        assert!(!t.path("memory/p").exists());
    }

    #[test]
    fn join_actions_write_a_pid_a_shell_variable_or_the_writer_itself() {
        let t = FakeTree::new("join");
        let layout =
            Layout::parse(&t.mount(1, "memory", "cgroup", "rw,memory"), "4:memory:/\n").unwrap();
        let plan = plan_create(&layout, "c", &limits("{}")).unwrap();
        let procs = t.path("memory/c/cgroup.procs").display().to_string();
        let a = &plan.join_action(Some(42))[0];
        assert_eq!((a.step.as_str(), a.what()), ("join", Some(procs.as_str())));
        assert_eq!(a.args["pid"], 42);
        assert_eq!(a.shell, [format!("echo 42 > {procs}")]);
        let a = &plan.join_action(None)[0];
        assert_eq!(a.args["pid"], Value::Null);
        assert_eq!(a.shell, [format!("echo \"$pid\" > {procs}")]);
        let a = &join_actions(plan.dirs(), Who::Myself)[0];
        assert_eq!(a.args["pid"], 0);
        assert_eq!(a.shell, [format!("echo $$ > {procs}")]);
    }

    #[test]
    fn remove_walks_its_actions_deepest_first() {
        let t = FakeTree::new("remove");
        let layout =
            Layout::parse(&t.mount(1, "memory", "cgroup", "rw,memory"), "4:memory:/\n").unwrap();
        fs::create_dir_all(t.path("memory/p/c/sub")).unwrap();
        let mut cg = plan_create(&layout, "c", &limits(r#"{"parent":"p"}"#))
            .unwrap()
            .cg;
        cg.created = vec![t.path("memory/p"), t.path("memory/p/c")];
        let actions = cg.remove_actions();
        assert_eq!(
            summary(&t, &actions),
            [
                row("remove", "memory/p/c", ""),
                row("remove", "memory/p", "")
            ]
        );
        let sub = t.path("memory/p/c/sub").display().to_string();
        let leaf = t.path("memory/p/c").display().to_string();
        assert_eq!(
            actions[0].shell,
            [format!("rmdir {sub}"), format!("rmdir {leaf}")]
        );
        let trace_file = t.path("trace");
        trace::init(&trace_file).unwrap();
        assert!(remove(&cg, Instant::now()).is_empty());
        let steps: Vec<(String, String, String)> = trace_of(&trace_file);
        assert_eq!(
            steps,
            [
                ("remove".into(), leaf, "ok".into()),
                (
                    "remove".into(),
                    t.path("memory/p").display().to_string(),
                    "ok".into()
                ),
            ]
        );
        assert!(!t.path("memory/p").exists());
    }
}
