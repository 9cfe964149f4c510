//! Plan, then apply: every change ns-cgroup makes to the cgroup tree (`create`, `set`, `join`,
//! `remove`) is first built as an ordered list of [`common::plan::Action`]s, which `--plan`
//! prints as JSON, `--explain` as a shell script, and a real run walks one by one, each inside
//! [`common::trace::action`], so the trace (`NS_TRACE`) has the plan's steps in the plan's order.
//!
//! The steps (stage `ns-cgroup`):
//! - `mkdir` (`path`): a directory of the cgroup or a missing parent, in each hierarchy the
//!   cgroup is made in ([`crate::cgroup::made_in`]);
//! - `write` (`path` = the control file, `value`): a limit (with `field`, the `cgroups` field),
//!   v2 controllers enabled in a parent's `cgroup.subtree_control` (`optional` for the stats
//!   controllers, whose failure is ignored), or v1 `cpuset.cpus`/`cpuset.mems` copied into a new
//!   directory from its parent (a cpuset cgroup without them refuses tasks), or v1
//!   `freezer.state` around the move of `set` below;
//! - `device_program` (`path`, `rules`): v2 only, the device eBPF program ([`crate::devices`]);
//! - `join` (`path` = a `cgroup.procs` file, `pid`), or, when `set` adds a v1 hierarchy, (`path`,
//!   `from` = a directory of the cgroup): every process of `from` and its sub-cgroups moved in,
//!   read again until no new one shows up; `remove` (`path`).
//!
//! A plan is built by reading the tree, never changing it, so printing one changes nothing. What
//! a create's (or set's) actions depend on is read from what already exists:
//! - only missing directories get a `mkdir`;
//! - v2: each parent's `cgroup.controllers` and `cgroup.subtree_control`; a directory the plan
//!   makes starts with its parent's `subtree_control` as its controllers and none enabled;
//! - v1 cpuset: a directory the plan makes starts empty, and gets the nearest existing
//!   ancestor's value (each one made along the path copies its parent, as the kernel requires);
//! - swap accounting, from an existing cgroup of the memory hierarchy ([`swap_accounting`]);
//! - v2 `cpu.max` of a new cgroup is the kernel's default, `max 100000`;
//! - v1 `memory.memsw.limit_in_bytes` (unlimited in a new cgroup), which orders the memory and
//!   memory + swap writes ([`crate::limits`]);
//! - `set`: the hierarchies the cgroup is in (a limit for another one adds it) and whether its
//!   v1 freezer is `THAWED` (then frozen for the move into the added one, and thawed after).
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
    /// Every process of the cgroup's directory `from` (and its sub-cgroups) into `to`.
    Move {
        from: PathBuf,
        to: PathBuf,
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
    /// v1 `freezer.state` around a move: waits until the kernel reports the new state.
    Freeze,
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
                Why::Freeze => a.sh(echo).sh(format!(
                    "# ns-cgroup then waits until the kernel reports it {}",
                    if freezes(value) { "frozen" } else { "thawed" }
                )),
            }
        }
        Op::Move { from, to } => {
            let procs = to.join("cgroup.procs");
            Action::new(STAGE, "join")
                .arg("path", text(&procs))
                .arg("from", text(from))
                .sh(format!(
                    "for pid in $(find {} -name cgroup.procs -exec cat {{}} +); do",
                    q(from)
                ))
                .sh(format!(
                    "  echo \"$pid\" > {} || :  # gone meanwhile",
                    q(&procs)
                ))
                .sh("done")
                .sh("# ns-cgroup reads the list again until no new process shows up")
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

    /// Its directory in each hierarchy it is made in.
    pub fn dirs(&self) -> &[Dir] {
        &self.cg.dirs
    }

    /// Its directory in the cgroup2 tree (v2, or hybrid), where a process can be cloned
    /// straight in (`CLONE_INTO_CGROUP`) once the plan is applied.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.cg.unified_dir()
    }

    /// The actions of [`Cgroup::join_action`] for the cgroup this plan makes.
    pub fn join_action(&self, pid: Option<i32>) -> Vec<Action> {
        self.cg.join_action(pid)
    }

    /// The actions of [`Cgroup::join_except_unified_action`] for the cgroup this plan makes:
    /// one `join` per v1 hierarchy, none for the cgroup2 directory.
    pub fn join_except_unified_action(&self, pid: Option<i32>) -> Vec<Action> {
        self.cg.join_except_unified_action(pid)
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
    let all = cgroup::dirs_in(layout, &rel, absolute);
    let steps = limits::plan(layout.kind, limits, &current(layout.kind, &all))?;
    let needed = limits::controllers(&steps);
    cgroup::check_v1_controllers(layout, &needed)?;
    let dirs = all
        .iter()
        .filter(|d| cgroup::made_in(layout.kind, &d.hierarchy, &needed))
        .cloned()
        .collect();
    let cg = Cgroup {
        name: rel.clone(),
        kind: layout.kind,
        dirs,
        all,
        created: Vec::new(),
    };
    let context = |e: Error| e.context(format!("create cgroup {rel}"));
    let mut ops = Ops::default();
    for d in &cg.dirs {
        let base = if absolute {
            &d.hierarchy.mount
        } else {
            &d.hierarchy.own
        };
        tree_ops(layout.kind, &d.hierarchy, base, &rel, &needed, &mut ops).map_err(context)?;
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

/// The actions that make `rel` below `base` in hierarchy `h`: for each directory along the
/// path, v2's controller enabling in its parent, its `mkdir` when missing, and v1's cpuset
/// filling.
fn tree_ops(
    kind: Kind,
    h: &Hierarchy,
    base: &Path,
    rel: &str,
    needed: &[(&'static str, &'static str)],
    ops: &mut Ops,
) -> Result<()> {
    let mut path = base.to_path_buf();
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
        Op::Move { from, to } => move_procs(from, to).map(|()| false),
    }
}

/// How many times a move reads the cgroup's processes again before it gives up on processes
/// that fork faster than they are moved (possible only without a freezer).
const MOVE_PASSES: usize = 100;

/// Moves every process of `from` and its sub-cgroups into `to`, reading the list again until it
/// has no process not moved yet: one forked before its parent moved is still outside. A process
/// that exited meanwhile (`ESRCH`) is skipped.
fn move_procs(from: &Path, to: &Path) -> Result<()> {
    let procs = to.join("cgroup.procs");
    let mut moved: Vec<i32> = Vec::new();
    for _ in 0..MOVE_PASSES {
        let mut pids = Vec::new();
        cgroup::collect_pids(from, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        pids.retain(|p| !moved.contains(p));
        if pids.is_empty() {
            return Ok(());
        }
        for pid in pids {
            match files::write(&procs, &pid.to_string()) {
                Ok(()) => {}
                Err(e) if e.errno == Some(Errno::ESRCH) => {}
                Err(e) => return Err(e),
            }
            moved.push(pid);
        }
    }
    Err(Error::msg(
        format!(
            "move the processes of {} into {}",
            from.display(),
            to.display()
        ),
        format!("new ones still appear after {MOVE_PASSES} passes"),
    ))
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
        Why::Freeze => {
            files::write(path, value)?;
            cg.wait_frozen(freezes(value))
        }
    }
}

/// What [`Cgroup::set`] does: its ops, and the cgroup as it is afterwards (with the
/// hierarchies it adds).
struct SetPlan {
    after: Cgroup,
    ops: Ops,
    /// Whether it freezes the cgroup for the move (and must thaw it if a step fails).
    freezes: bool,
}

/// The ops of [`Cgroup::set`], planned from the cgroup's files: on v1 and hybrid, for each
/// hierarchy a limit needs that the cgroup is not in, the `mkdir`s (and cpuset filling) making
/// it; then one op per limit step but the freezer's; then, if hierarchies were added, the move
/// of the cgroup's processes into each (frozen meanwhile, when it has a freezer and is thawed);
/// then the freezer step, which [`limits::plan`] puts last.
fn set_ops(cg: &Cgroup, limits: &Cgroups) -> Result<SetPlan> {
    let steps = limits::plan(cg.kind, limits, &current(cg.kind, &cg.all))?;
    let needed = limits::controllers(&steps);
    let has = |d: &Dir| cg.dirs.iter().any(|x| x.path == d.path);
    let added: Vec<Dir> = cg
        .all
        .iter()
        .filter(|d| cg.kind != Kind::V2 && !d.hierarchy.unified && !has(d))
        .filter(|d| needed.iter().any(|(c, _)| d.hierarchy.has(c)))
        .cloned()
        .collect();
    let after = Cgroup {
        name: cg.name.clone(),
        kind: cg.kind,
        dirs: cg
            .all
            .iter()
            .filter(|d| has(d) || added.contains(d))
            .cloned()
            .collect(),
        all: cg.all.clone(),
        created: cg.created.clone(),
    };
    let mut ops = Ops::default();
    let depth = cg.name.split('/').count();
    for d in &added {
        let base = d.path.ancestors().nth(depth).unwrap_or(&d.hierarchy.mount);
        tree_ops(cg.kind, &d.hierarchy, base, &cg.name, &needed, &mut ops)?;
    }
    let (freezer_steps, others): (Vec<&Step>, Vec<&Step>) =
        steps.iter().partition(|s| s.field == "freezer");
    for s in others {
        ops.push(limit_op(&after, s)?);
    }
    let mut freezes = false;
    if !added.is_empty() {
        // The processes come from the freezer directory when there is one (where they are
        // frozen), else from any directory the cgroup is in: every process is in each.
        let fz = dir_for(cg.kind, &cg.dirs, "freezer").map(|d| d.path.clone());
        let Some(from) = fz
            .clone()
            .or_else(|| cg.dirs.first().map(|d| d.path.clone()))
        else {
            return Err(Error::msg(
                format!("set cgroup {}", cg.name),
                "it has no directory to move processes from",
            ));
        };
        let state = fz.map(|d| d.join("freezer.state"));
        freezes = state
            .as_ref()
            .is_some_and(|f| files::read(f).is_ok_and(|v| v.trim() == "THAWED"));
        let freeze = |value: &str| Op::Write {
            path: state.clone().unwrap_or_default(),
            value: value.into(),
            why: Why::Freeze,
        };
        if freezes {
            ops.push(freeze("FROZEN"));
        }
        for d in &added {
            ops.push(Op::Move {
                from: from.clone(),
                to: d.path.clone(),
            });
        }
        if freezes {
            ops.push(freeze("THAWED"));
        }
    }
    for s in freezer_steps {
        ops.push(limit_op(&after, s)?);
    }
    Ok(SetPlan {
        after,
        ops,
        freezes,
    })
}

/// [`Cgroup::set_actions`].
pub(crate) fn set_actions(cg: &Cgroup, limits: &Cgroups) -> Result<Vec<Action>> {
    Ok(set_ops(cg, limits)?.ops.actions)
}

/// [`Cgroup::set`]. On failure the directories it made are removed again, deepest first (those
/// still empty), and a cgroup it froze is thawed; neither is traced (not part of the plan).
pub(crate) fn set(cg: &mut Cgroup, limits: &Cgroups) -> Result<()> {
    let SetPlan {
        mut after,
        ops,
        freezes,
    } = set_ops(cg, limits)?;
    let mut made = Vec::new();
    let result = run(&after, &ops, &mut made);
    if result.is_err() {
        if freezes && after.is_frozen().unwrap_or(false) {
            let _ = after.freeze(false);
        }
        for p in made.iter().rev() {
            let _ = fs::remove_dir(p);
        }
        after.dirs.retain(|d| d.path.is_dir());
    }
    // Parents it made (not the cgroup's own directories) go with the cgroup.
    after.created.extend(
        made.into_iter()
            .filter(|p| p.is_dir() && !after.dirs.iter().any(|d| &d.path == p)),
    );
    *cg = after;
    result
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
                "ns-cgroup create {}: make the cgroup in the hierarchies its limits need\n\
                 and write them ({} layout), as planned from the cgroup tree as it is now.\n\
                 Unlike ns-cgroup, this script leaves what it made when a step fails.",
                p.name(),
                p.kind().name()
            );
            (p.actions().to_vec(), header, String::new())
        }
        Command::Set(t, limits) => {
            let cg = Cgroup::open_existing(&t.name, t.parent.as_deref())?;
            let header = format!(
                "ns-cgroup set {}: write new limits to the live cgroup ({} layout),\n\
                 adding (and moving its processes into) any hierarchy a limit needs.",
                cg.name(),
                cg.kind().name()
            );
            (cg.set_actions(&limits)?, header, String::new())
        }
        Command::JoinPid(t, pid) => {
            let cg = Cgroup::open_existing(&t.name, t.parent.as_deref())?;
            let header = format!(
                "ns-cgroup join {} --pid {pid}: move process {pid} into the cgroup\n\
                 in every hierarchy it is in.",
                cg.name()
            );
            (cg.join_action(Some(pid)), header, String::new())
        }
        Command::JoinExec(t, argv) => {
            let cg = Cgroup::open_existing(&t.name, t.parent.as_deref())?;
            let words: Vec<String> = argv.iter().map(|a| quote_os(a)).collect();
            let header = format!(
                "ns-cgroup join {} -- CMD: move this shell into the cgroup in every hierarchy\n\
                 it is in, then run the command in its place, so it and its children start inside.",
                cg.name()
            );
            let tail = format!("# ns-cgroup: exec\nexec {}\n", words.join(" "));
            (cg.join_self_action(), header, tail)
        }
        Command::Remove(t, timeout) => {
            let cg = Cgroup::open(&t.name, t.parent.as_deref())?;
            let what = match &cg {
                Some(_) => format!(
                    "remove the cgroup and its sub-cgroups, bottom-up, in every hierarchy\n\
                     it is in. ns-cgroup first waits (at most {}s) until no process is left;\n\
                     this script does not.",
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
        let mountinfo = t.mount(1, "memory", "cgroup", "rw,memory")
            + &t.mount(2, "pids", "cgroup", "rw,pids")
            + &t.mount(3, "freezer", "cgroup", "rw,freezer");
        let layout = Layout::parse(&mountinfo, "4:memory:/\n8:pids:/\n6:freezer:/\n").unwrap();
        // The cgroup exists in the memory hierarchy (with its limit file), not in freezer; a
        // memory limit does not need pids.
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
        assert!(t.path("freezer/c").is_dir());
        assert!(!t.path("pids/c").exists());
        assert_eq!(cg.created, [t.path("freezer/c")]);
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

    /// The managed v1 hierarchies of this machine kind, each mounted alone.
    const V1: [&str; 8] = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
    ];

    /// A layout with every hierarchy of [`V1`], `name=systemd` and, when `hybrid`, the cgroup2
    /// tree, the caller's cgroup being the root of each; cpuset's root has cpus and mems.
    fn full_layout(t: &FakeTree, hybrid: bool) -> Layout {
        let mut mountinfo = String::new();
        let mut cgroup = String::new();
        for (i, c) in (1u32..).zip(V1) {
            mountinfo += &t.mount(i, c, "cgroup", &format!("rw,{c}"));
            cgroup += &format!("{i}:{c}:/\n");
        }
        mountinfo += &t.mount(9, "systemd", "cgroup", "rw,xattr,name=systemd");
        cgroup += "9:name=systemd:/\n";
        if hybrid {
            mountinfo += &t.mount(10, "unified", "cgroup2", "rw");
            cgroup += "0::/\n";
        }
        t.file("cpuset/cpuset.cpus", "0-1\n");
        t.file("cpuset/cpuset.mems", "0\n");
        Layout::parse(&mountinfo, &cgroup).unwrap()
    }

    fn labels(dirs: &[Dir]) -> Vec<String> {
        dirs.iter().map(|d| d.hierarchy.label()).collect()
    }

    /// The paths of `actions` with step `step`, relative to the tree.
    fn paths_of(t: &FakeTree, actions: &[Action], step: &str) -> Vec<String> {
        summary(t, actions)
            .into_iter()
            .filter(|(s, _, _)| s == step)
            .map(|(_, p, _)| p)
            .collect()
    }

    #[test]
    fn v1_and_hybrid_make_the_cgroup_where_a_limit_needs_it_plus_freezer_and_unified() {
        for hybrid in [false, true] {
            let t = FakeTree::new(if hybrid { "choice-hybrid" } else { "choice-v1" });
            let layout = full_layout(&t, hybrid);
            let with_unified = |mut v: Vec<&str>| {
                if hybrid {
                    v.push("unified");
                }
                v.into_iter().map(String::from).collect::<Vec<_>>()
            };
            for (json, want) in [
                (r#"{"memory":"64m"}"#, vec!["memory", "freezer"]),
                (
                    r#"{"memory":"64m","pids_max":9}"#,
                    vec!["memory", "freezer", "pids"],
                ),
                (r#"{"cpuset_cpus":"0"}"#, vec!["cpuset", "freezer"]),
                (r#"{"cpu_shares":512}"#, vec!["cpu", "freezer"]),
                (
                    r#"{"cpu_quota":5000,"cpu_period":10000}"#,
                    vec!["cpu", "freezer"],
                ),
                (r#"{"allow_all_devices":true}"#, vec!["devices", "freezer"]),
                (r#"{"freezer":"THAWED"}"#, vec!["freezer"]),
                // No limit: a cgroup for accounting, in every hierarchy (not name=systemd).
                ("{}", V1.to_vec()),
                (r#"{"parent":"p"}"#, V1.to_vec()),
            ] {
                let plan = plan_create(&layout, "c", &limits(json)).unwrap();
                let want = with_unified(want);
                assert_eq!(labels(plan.dirs()), want, "{json}");
                // Made, joined and removed exactly there.
                let leaves: Vec<String> = paths_of(&t, plan.actions(), "mkdir")
                    .into_iter()
                    .filter(|p| p.ends_with("/c"))
                    .collect();
                let joins = paths_of(&t, &plan.join_action(Some(7)), "join");
                let removes = paths_of(&t, &plan.remove_actions(), "remove");
                let dirs: Vec<String> = want.iter().map(|h| format!("{h}/c")).collect();
                let p = |parent: &str| -> Vec<String> {
                    want.iter().map(|h| format!("{h}/{parent}c")).collect()
                };
                if json.contains("parent") {
                    assert_eq!(leaves, p("p/"), "{json}");
                } else {
                    assert_eq!(leaves, dirs, "{json}");
                    assert_eq!(removes, dirs, "{json}");
                    let procs: Vec<String> =
                        dirs.iter().map(|d| d.clone() + "/cgroup.procs").collect();
                    assert_eq!(joins, procs, "{json}");
                }
            }
        }
    }

    #[test]
    fn v2_makes_its_one_directory_with_or_without_limits() {
        let t = FakeTree::new("choice-v2");
        let layout = Layout::parse(&t.mount(1, "v2", "cgroup2", "rw"), "0::/\n").unwrap();
        t.file("v2/cgroup.controllers", "cpu memory pids\n");
        t.file("v2/cgroup.subtree_control", "cpu memory pids\n");
        for json in ["{}", r#"{"memory":"1m"}"#] {
            let plan = plan_create(&layout, "c", &limits(json)).unwrap();
            assert_eq!(labels(plan.dirs()), ["unified"], "{json}");
            assert_eq!(paths_of(&t, plan.actions(), "mkdir"), ["v2/c"], "{json}");
        }
    }

    #[test]
    fn join_except_unified_leaves_out_only_the_cgroup2_directory() {
        // Hybrid: the v1 hierarchies, not the cgroup2 tree the clone puts the process in.
        let t = FakeTree::new("except-hybrid");
        let layout = full_layout(&t, true);
        let plan = plan_create(&layout, "c", &limits(r#"{"memory":"1m"}"#)).unwrap();
        assert_eq!(plan.unified_dir(), Some(t.path("unified/c").as_path()));
        let except = plan.join_except_unified_action(Some(42));
        assert_eq!(
            summary(&t, &except),
            [
                row("join", "memory/c/cgroup.procs", ""),
                row("join", "freezer/c/cgroup.procs", ""),
            ]
        );
        assert!(except.iter().all(|a| a.args["pid"] == 42));
        assert_eq!(plan.join_action(Some(42))[..2], except[..]);
        assert_eq!(
            paths_of(&t, &plan.join_action(None)[2..], "join"),
            ["unified/c/cgroup.procs"]
        );
        let var = plan.join_except_unified_action(None);
        assert!(var.iter().all(|a| a.args["pid"] == Value::Null));
        // The same on the cgroup the plan makes.
        assert_eq!(plan.cg.join_except_unified_action(Some(42)), except);

        // v1: no cgroup2 directory, so every join stays.
        let t = FakeTree::new("except-v1");
        let layout = full_layout(&t, false);
        let plan = plan_create(&layout, "c", &limits(r#"{"memory":"1m"}"#)).unwrap();
        assert_eq!(plan.unified_dir(), None);
        assert_eq!(
            plan.join_except_unified_action(Some(1)),
            plan.join_action(Some(1))
        );

        // v2: the one directory is the cgroup2 one; nothing is left to join.
        let t = FakeTree::new("except-v2");
        let layout = Layout::parse(&t.mount(1, "v2", "cgroup2", "rw"), "0::/\n").unwrap();
        t.file("v2/cgroup.controllers", "");
        t.file("v2/cgroup.subtree_control", "");
        let plan = plan_create(&layout, "c", &limits("{}")).unwrap();
        assert_eq!(plan.unified_dir(), Some(t.path("v2/c").as_path()));
        assert_eq!(plan.join_except_unified_action(Some(1)), []);
        assert_eq!(plan.join_action(Some(1)).len(), 1);
    }

    /// A cgroup made for a memory limit, as `open` finds it: in memory and freezer (with the
    /// freezer in `state`).
    fn memory_cgroup(t: &FakeTree, layout: &Layout, state: &str) -> Cgroup {
        t.file("memory/c/memory.limit_in_bytes", "9223372036854771712\n");
        t.file("memory/c/cgroup.procs", "");
        t.file("freezer/c/freezer.state", state);
        t.file("freezer/c/cgroup.procs", "");
        let all = cgroup::dirs_in(layout, "c", false);
        Cgroup {
            name: "c".into(),
            kind: layout.kind,
            dirs: all.iter().filter(|d| d.path.is_dir()).cloned().collect(),
            all,
            created: Vec::new(),
        }
    }

    #[test]
    fn set_adds_a_hierarchy_a_limit_needs_and_moves_the_processes_in_frozen() {
        let t = FakeTree::new("set-add");
        let layout = full_layout(&t, true);
        let cg = memory_cgroup(&t, &layout, "THAWED\n");
        assert_eq!(labels(&cg.dirs), ["memory", "freezer"]);
        // A limit for a hierarchy it is in: only the write.
        let c = limits(r#"{"memory":"32m"}"#);
        assert_eq!(
            summary(&t, &set_actions(&cg, &c).unwrap()),
            [row("write", "memory/c/memory.limit_in_bytes", "33554432")]
        );
        // cpu and cpuset added: made (cpuset filled from its parent), limited, then joined by
        // every process, frozen meanwhile.
        let c = limits(r#"{"memory":"32m","cpu_shares":512,"cpuset_cpus":"1"}"#);
        let actions = set_actions(&cg, &c).unwrap();
        assert_eq!(
            summary(&t, &actions),
            [
                row("mkdir", "cpu/c", ""),
                row("mkdir", "cpuset/c", ""),
                row("write", "cpuset/c/cpuset.cpus", "0-1"),
                row("write", "cpuset/c/cpuset.mems", "0"),
                row("write", "memory/c/memory.limit_in_bytes", "33554432"),
                row("write", "cpu/c/cpu.shares", "512"),
                row("write", "cpuset/c/cpuset.cpus", "1"),
                row("write", "freezer/c/freezer.state", "FROZEN"),
                row("join", "cpu/c/cgroup.procs", ""),
                row("join", "cpuset/c/cgroup.procs", ""),
                row("write", "freezer/c/freezer.state", "THAWED"),
            ]
        );
        let from = t.path("freezer/c").display().to_string();
        assert!(
            actions[8..10]
                .iter()
                .all(|a| a.args["from"] == from.as_str())
        );
        assert!(
            actions[8].shell[0].contains("cgroup.procs"),
            "{:?}",
            actions[8]
        );
        assert!(actions[7].shell[1].contains("frozen"));
        // Planning changed nothing.
        assert!(!t.path("cpu/c").exists());
        // Frozen already: no freeze and thaw around the move; a freezer limit comes last.
        let cg = memory_cgroup(&t, &layout, "FROZEN\n");
        let c = limits(r#"{"pids_max":5,"freezer":"THAWED"}"#);
        assert_eq!(
            summary(&t, &set_actions(&cg, &c).unwrap()),
            [
                row("mkdir", "pids/c", ""),
                row("write", "pids/c/pids.max", "5"),
                row("join", "pids/c/cgroup.procs", ""),
                row("write", "freezer/c/freezer.state", "THAWED"),
            ]
        );
    }

    #[test]
    fn set_on_v2_never_adds_a_directory() {
        let t = FakeTree::new("set-v2");
        let layout = Layout::parse(&t.mount(1, "v2", "cgroup2", "rw"), "0::/\n").unwrap();
        t.file("v2/c/pids.max", "max\n");
        let all = cgroup::dirs_in(&layout, "c", false);
        let cg = Cgroup {
            name: "c".into(),
            kind: Kind::V2,
            dirs: all.clone(),
            all,
            created: Vec::new(),
        };
        assert_eq!(
            summary(&t, &set_actions(&cg, &limits(r#"{"pids_max":5}"#)).unwrap()),
            [row("write", "v2/c/pids.max", "5")]
        );
    }

    #[test]
    fn removal_finds_a_hierarchy_added_after_the_cgroup_was_made() {
        let t = FakeTree::new("refresh");
        let layout = full_layout(&t, false);
        let mut cg = memory_cgroup(&t, &layout, "THAWED\n");
        // Another process's `set` added cpu.
        fs::create_dir_all(t.path("cpu/c")).unwrap();
        assert_eq!(labels(&cg.dirs), ["memory", "freezer"]);
        cg.refresh();
        assert_eq!(labels(&cg.dirs), ["cpu", "memory", "freezer"]);
        assert_eq!(
            paths_of(&t, &cg.remove_actions(), "remove"),
            ["cpu/c", "memory/c", "freezer/c"]
        );
    }

    #[test]
    fn a_move_takes_every_process_of_the_cgroup_and_its_sub_cgroups() {
        let t = FakeTree::new("move");
        t.file("from/cgroup.procs", "3\n1\n");
        t.file("from/sub/cgroup.procs", "2\n");
        // A fake cgroup.procs keeps the last write only: record them in a directory instead.
        fs::create_dir_all(t.path("to")).unwrap();
        let e = move_procs(&t.path("from"), &t.path("to")).unwrap_err();
        assert!(e.to_string().contains("to/cgroup.procs"), "{e}");
        t.file("to/cgroup.procs", "");
        move_procs(&t.path("from"), &t.path("to")).unwrap();
        assert_eq!(fs::read_to_string(t.path("to/cgroup.procs")).unwrap(), "3");
        // Nothing to move is fine.
        t.file("empty/cgroup.procs", "");
        move_procs(&t.path("empty"), &t.path("to")).unwrap();
    }
}
