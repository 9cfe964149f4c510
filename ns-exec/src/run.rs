//! Starting a container: the host side of the 2014 `Exec`, in order.
//!
//! 1. distrust inherited fds (mark them close-on-exec), block the forwarded signals;
//! 2. load and validate the config, so a bad one fails before anything exists;
//! 3. with a cgroup, claim the state directory (the name) and make the cgroup; make the sync
//!    socket (and with `--init` the sealed config memfd);
//! 4. clone the child into its namespaces running ns-init's code (built in, or the ns-init
//!    program with `--init`);
//! 5. while the child starts: make the network namespace the clone did not
//!    (`spawn::netns_beside`) and send it, claim the name if not yet done
//!    (`plan::claims_after_clone`), record the state and the pid file (pid + start time), run
//!    the host-side stages;
//! 6. wait for the child's `ready`, send `go`, then learn from the sync socket whether the
//!    command was exec'd;
//! 7. wait, forwarding signals, and return the command's status.
//!
//! Every resource is an owned value whose `Drop` undoes it (the child is killed and reaped,
//! the state and pid files removed), so each early return cleans up what it made.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use common::config::Config;
use common::handoff::{ENV_CONSOLE_FD, ENV_INIT_PATH};
use common::ns::Namespace;
use common::sync::{AfterGo, SyncSocket};
use common::{Context, Error, Result, fault, ns_log, sys, trace};
use ns_pty::Attached;

use crate::cli::{RunArgs, Show};
use crate::plan::{self, STAGE};
use crate::spawn::{self, Child, Handoff};
use crate::state::{self, State, StateDir};
use crate::wait::{self, Signals};
use crate::{Failure, enter};
use ns_init::setup::Cloned;

/// The container's cgroup: everything left in it is killed and it is removed when dropped, on
/// every path (after the container ended, or when setup failed).
struct CgroupGuard(Option<ns_cgroup::Cgroup>);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            if let Err(e) = cg.remove() {
                eprintln!("ns-exec: {e}");
            }
        }
    }
}

/// How the child becomes the container's first process.
enum Launch {
    /// It runs ns-init's code (linked into ns-exec) and execs the command through ns-dmz.
    BuiltIn {
        /// ns-dmz, protected.
        dmz: OwnedFd,
    },
    /// It execs this ns-init program (protected): `--init`, `$NS_INIT`.
    Program(OwnedFd),
}

/// Kills and reaps the child when dropped, unless it was waited for.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn child(&self) -> &Child {
        self.0
            .as_ref()
            .expect("the guard holds its child until it is reaped")
    }

    /// The child was waited for: nothing left to kill.
    fn reaped(mut self) {
        self.0 = None;
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            wait::kill_and_reap(child.pidfd.as_fd());
        }
    }
}

/// Runs a container as `args` say; returns the status to exit with.
pub fn run(args: RunArgs) -> std::result::Result<i32, Failure> {
    // A caller may have leaked fds to us; none may reach the container (CVE-2024-21626).
    sys::close_range_from(3, true).ctx(|| "mark inherited fds close-on-exec".into())?;
    if args.show.is_none() {
        trace::init_from_env()?;
    }
    let rootfs = args.rootfs.as_deref().map(absolute).transpose()?;
    let config_path = args.config.to_string_lossy();
    let config = trace::step(STAGE, "config", Some(&config_path), || {
        Config::load(&args.config, rootfs.as_deref())
    })?;
    check_supported(&config)?;
    let name = match (&args.name, config.default_name()) {
        (Some(n), _) => n.clone(),
        (None, Some(n)) if common::config::validate::is_valid_name(n) => n.to_string(),
        _ => format!("ns-{}", std::process::id()),
    };
    if args.name.is_some() {
        if let Some(running) = state::read(&args.root, &name)?.filter(State::is_running) {
            // nsinit's `exec` joined the container when its pid file existed.
            return enter::enter_state(running, &args.command);
        }
    }
    if let Some(show) = args.show {
        return show_plan(&args, &config, &name, show);
    }
    let mut signals = Signals::block(config.tty)?;
    // Before any child runs in ns-exec's memory (spawn.rs): its fault points then take no lock.
    fault::init();
    if let Some(path) = &args.log {
        common::log::init(open_log(path)?, "ns-exec");
    }
    // The child runs ns-init's code built in and execs the command through ns-dmz; or, with
    // --init/$NS_INIT, execs that ns-init program (spawn.rs).
    let launch = match explicit_init(args.init.as_deref()) {
        Some(path) => {
            let init = find_helper("ns-init", Some(path))?;
            ns_log!("container {name:?}, ns-init {}", init.display());
            Launch::Program(common::mount_api::protected_program(&init, "ns-init")?)
        }
        None => {
            ns_log!("container {name:?}, ns-init built in");
            Launch::BuiltIn {
                dmz: protected_dmz()?,
            }
        }
    };

    // With a terminal: a pts handed in, or the master ns-init sends after `go`.
    let console = if config.tty { console()? } else { None };
    let mut terminal: Option<Attached> = None;
    let state_path = args.root.join(&name);
    let claim = || {
        trace::step(STAGE, "claim", Some(&state_path.to_string_lossy()), || {
            StateDir::create(&args.root, &name)
        })
    };
    // The name first when there is a cgroup: the cgroup is named after the container, and only
    // the holder of the name may make it (or remove it). Without one, the name is claimed right
    // after the clone, while the child starts (`claim_after_clone`).
    let claim_after_clone = plan::claims_after_clone(&config);
    let mut dir = if claim_after_clone {
        None
    } else {
        Some(claim()?)
    };
    let (parent, child_end) = SyncSocket::pair()?;
    let log_fd: Option<OwnedFd> = match common::log::take() {
        Some(f) => {
            let copy = f.try_clone().ctx(|| "duplicate log fd".into())?;
            common::log::init(f, "ns-exec");
            Some(copy.into())
        }
        None => None,
    };
    // The cgroup before the clone: the child starts in its cgroup2 directory
    // (CLONE_INTO_CGROUP, no migration), and is dropped (killed) before the cgroup is removed.
    let mut cgroup = CgroupGuard(None);
    let mut cgroup_ref = None;
    let mut cloned_into = None;
    if let Some(limits) = &config.cgroups {
        let cg_name = limits.name.clone().unwrap_or_else(|| name.clone());
        // Traced step by step by ns-cgroup's code, as its plan lists them.
        let plan =
            ns_cgroup::Cgroup::plan_create(&cg_name, limits).map_err(|e| e.context("cgroups"))?;
        let unified = plan.unified_dir().map(Path::to_path_buf);
        cgroup.0 = Some(plan.apply().map_err(|e| e.context("cgroups"))?);
        cloned_into = unified.map(|dir| open_dir(&dir)).transpose()?;
        ns_log!("cgroup {cg_name:?} created");
        cgroup_ref = Some(state::CgroupRef {
            name: cg_name,
            parent: limits.parent.clone(),
        });
    }
    // The clone step ends when ns-exec has the pid; the child's `ready` is awaited in the `go`
    // step, so the host side's work below overlaps the child's start.
    let clone_start = trace::now_us();
    let netns_beside = spawn::netns_beside(&config, matches!(launch, Launch::BuiltIn { .. }));
    let flags = spawn::clone_flags(&config, netns_beside);
    // Only the child may hold its end of the sync socket (EOF on ours must mean the child is
    // gone), and the console (the relay ends when the last holder of the pts closes it: that
    // must be the container); the spawn functions take them, and the parent's copies close
    // once the child has them (with --init when `spawn` returns; for the built-in child when it
    // has exec'd or died, spawn.rs).
    let spawned = match &launch {
        Launch::BuiltIn { dmz } => spawn::spawn_built_in(
            &config,
            &args.command,
            flags,
            cloned_into.as_ref(),
            spawn::BuiltIn {
                sync: child_end,
                parent: &parent,
                log: log_fd,
                console,
                dmz,
                cloned: Cloned {
                    // Cloned into its cgroup2 directory with no v1 hierarchy left to join.
                    placed: match &cgroup.0 {
                        None => true,
                        Some(cg) => {
                            cloned_into.is_some() && cg.join_except_unified_action(None).is_empty()
                        }
                    },
                    netns_beside,
                },
            },
        ),
        Launch::Program(init) => {
            let config_fd = sys::sealed_memfd(
                c"ns-tools-config",
                sys::Contents::Bytes(&config.to_json()),
                false,
            )
            .ctx(|| "create config memfd".into())?;
            let spawned = spawn::spawn(
                init,
                &args.command,
                flags,
                cloned_into.as_ref(),
                Handoff {
                    sync: &child_end,
                    config: &config_fd,
                    log: log_fd.as_ref(),
                    console: console.as_ref(),
                },
            );
            drop((child_end, config_fd, log_fd, console));
            spawned.map(spawn::Pending::Cloned)
        }
    };
    let pending = spawned.inspect_err(|e| {
        trace::record(STAGE, "clone", None, clone_start, trace::now_us(), Some(e))
    })?;
    let command0 = args.command.first().map(|c| c.as_os_str());
    // The network namespace the clone did not make, first, while the clone may still be under
    // way (it needs no pid): the child needs it soonest (it joins it right before it mounts
    // /sys), and the rest of the host side can follow.
    let netns_start = trace::now_us();
    let netns_sent = netns_beside.then(|| {
        fault::point(STAGE, "netns")?;
        let netns = common::ns::make_net_namespace()?;
        parent.send_netns(netns.as_fd())
    });
    let netns_end = trace::now_us();
    let guard = ChildGuard(Some(pending.started().inspect_err(|e| {
        trace::record(STAGE, "clone", None, clone_start, trace::now_us(), Some(e))
    })?));
    // The child has its own copy of ns-dmz (and of the cgroup fd) now.
    drop(launch);
    // A host-side failure below may be the child's doing (a child that failed its first steps
    // and exited has no start time): its own error, if it sent one, is the one to report, and
    // else how it ended, if it did (killed, by the OOM killer say); `within_ms` when it is
    // known to be on its way out.
    let child_ended = |e: Error, within_ms: u16| -> Failure {
        if let Some(wire) = parent.pending_error(command0) {
            return Failure::from_wire(wire);
        }
        match wait::ended(guard.child().pidfd.as_fd(), within_ms) {
            Some(how) => Error::msg(
                "the container's first process",
                format!("{how} before it was ready"),
            )
            .into(),
            None => e.into(),
        }
    };
    let child_first = |e: Error| child_ended(e, 0);
    let pid = guard.child().pid.as_raw();
    ns_log!("cloned {pid}");
    // The clone ends when ns-exec has the pid; the steps that overlapped it follow it in the
    // trace, as in the plan, with their own times.
    trace::record(STAGE, "clone", None, clone_start, trace::now_us(), None);
    if let Some(sent) = netns_sent {
        trace::record(
            STAGE,
            "netns",
            None,
            netns_start,
            netns_end,
            sent.as_ref().err(),
        );
        sent.map_err(child_first)?;
        ns_log!("network namespace made and sent");
    }
    // A name in use fails here as it would before the clone; the child, killed by the guard,
    // has changed nothing outside its own namespaces.
    let dir = match &mut dir {
        Some(dir) => dir,
        None => dir.insert(claim().map_err(child_first)?),
    };
    let start_time = state::start_time(pid)
        .ok_or_else(|| Error::msg("read the container's start time", "the process is gone"))
        .map_err(child_first)?;
    let config_networks = config.networks.clone();
    let config_tty = config.tty;
    // The v1 hierarchies (the cgroup2 tree was joined by the clone itself) before anything
    // inside runs, so no process of the container escapes them.
    if let Some(cg) = &cgroup.0 {
        let joined = if cloned_into.is_some() {
            cg.join_except_unified(pid)
        } else {
            cg.join(pid)
        };
        joined
            .map_err(|e| e.context("cgroups"))
            .map_err(child_first)?;
        ns_log!("cgroup joined");
    }
    let pid_file = args.pid_file.as_deref().map(absolute).transpose()?;
    let state = State {
        v: 1,
        name: name.clone(),
        pid,
        start_time,
        config,
        pid_file,
        cgroup: cgroup_ref,
    };
    let state_json = state_path.join(crate::state::STATE_FILE);
    trace::step(STAGE, "record", Some(&state_json.to_string_lossy()), || {
        dir.record(&state)
    })
    .map_err(child_first)?;
    // The network's host side, before the child is released.
    let networks = host_networks(&config_networks, pid).map_err(child_first)?;
    // The child announced `ready` long ago, or is about to: the host side above ran while it
    // started (with --init, while it exec'd ns-init), and only now does ns-exec wait for it.
    // An error it sent instead of `ready` ends the run here, and the guards undo the above.
    let release = || -> std::result::Result<(), Failure> {
        fault::point("ns-exec", "before-go")?;
        let mut reported = None;
        trace::step(STAGE, "go", None, || match parent.wait_for_ready()? {
            Some(e) => {
                let err = e.clone().into_error();
                reported = Some(e);
                Err(err)
            }
            // The child may have failed in a step it runs before `go`, and be gone: its
            // error is then waiting on the socket, and is the one to report.
            None => parent.send_go(networks.clone()).map_err(|err| {
                match parent.pending_error(command0) {
                    Some(e) => {
                        let shown = e.clone().into_error();
                        reported = Some(e);
                        shown
                    }
                    None => err,
                }
            }),
        })
        .map_err(|err| match reported.take() {
            // Printed under the stage that failed (ns-init), not ns-exec.
            Some(wire) => Failure::from_wire(wire),
            // The child went away instead of announcing itself.
            None => child_ended(err, 1000),
        })
    };
    if let Err(f) = release() {
        for n in &networks {
            let _ = ns_veth::undo(n);
        }
        return Err(f);
    }
    loop {
        match parent.wait_after_go(args.command.first().map(|c| c.as_os_str()))? {
            AfterGo::Exec => break,
            AfterGo::Error(e) => return Err(Failure::from_wire(e)),
            // The console ns-init allocated in the container's devpts: relay it from here on.
            AfterGo::Console(master) if config_tty && terminal.is_none() => {
                terminal = Some(Attached::new(master)?);
                // The relay and window size are in place: let the command start.
                parent.send_go(Vec::new())?;
            }
            AfterGo::Console(_) => {
                return Err(Error::msg("sync protocol", "a console nobody asked for").into());
            }
        }
    }
    ns_log!("command running");
    let status = trace::step(STAGE, "wait", None, || {
        signals.wait_forwarding(guard.child().pidfd.as_fd(), terminal.as_mut())
    })?;
    guard.reaped();
    if let Some(t) = terminal {
        t.finish()?;
    }
    ns_log!("container exited with status {status}");
    Ok(status)
}

/// An `O_PATH` fd of the directory `dir` (a cgroup to clone into).
fn open_dir(dir: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open cgroup {}", dir.display()))
}

/// Prints the run's plan (`--plan`) or its shell form (`--explain`); changes nothing.
fn show_plan(
    args: &RunArgs,
    config: &Config,
    name: &str,
    show: Show,
) -> std::result::Result<i32, Failure> {
    let init = match explicit_init(args.init.as_deref()) {
        Some(path) => Some(find_helper("ns-init", Some(path))?),
        None => None,
    };
    // With --init the ns-init program finds its own ns-dmz (beside it), or execs directly.
    let dmz = match init {
        Some(_) => None,
        None => Some(find_helper("ns-dmz", None)?),
    };
    let config_path = absolute(&args.config)?;
    let pid_file = args.pid_file.as_deref().map(absolute).transpose()?;
    let run = plan::Run {
        config_path: &config_path,
        config,
        name,
        root: &args.root,
        init: init.as_deref(),
        dmz: dmz.as_deref(),
        pid_file: pid_file.as_deref(),
        command: &args.command,
    };
    let actions = plan::actions(&run)?;
    let text = match show {
        Show::Plan => plan::json(actions),
        Show::Explain => plan::explain(&actions, &run),
    };
    common::cli::print(&text)?;
    Ok(0)
}

/// The container's console when it has a terminal: the pts a caller handed in (`ns-pty --
/// ns-exec ...` announces it in `NS_CONSOLE_FD`; the caller relays it). Otherwise ns-init
/// allocates one in the container's own devpts and sends the master back after `go`.
fn console() -> Result<Option<OwnedFd>> {
    match std::env::var(ENV_CONSOLE_FD).ok().filter(|v| !v.is_empty()) {
        Some(text) => Ok(Some(common::fd::take(&text, ENV_CONSOLE_FD)?)),
        None => Ok(None),
    }
}

/// ns-dmz, found and protected (`mount_api::protected_program`): what the container's first
/// process, and a process entering a container, exec their command through.
pub fn protected_dmz() -> Result<OwnedFd> {
    common::mount_api::protected_program(&find_helper("ns-dmz", None)?, "ns-dmz")
}

/// Refuses what this ns-exec cannot do yet, rather than silently running without it.
fn check_supported(config: &Config) -> Result<()> {
    let missing = |field: &str, what: &str| {
        Err(Error::config(
            field,
            format!("{what} is not supported by this version of ns-exec"),
        ))
    };
    if config.has_namespace(Namespace::User) {
        return missing("namespaces", "NEWUSER (uid/gid mapping)");
    }
    let c = &config.context;
    if c.apparmor_profile.is_some() {
        return missing("context.apparmor_profile", "AppArmor");
    }
    if c.process_label.is_some() || c.mount_label.is_some() {
        return missing("context.process_label", "SELinux labelling");
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .ctx(|| "get the current directory".into())?
        .join(path))
}

fn open_log(path: &Path) -> Result<std::fs::File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .ctx(|| format!("open log {}", path.display()))
}

/// The ns-init program to exec in the child: `--init`, else `$NS_INIT`; `None` when neither is
/// given, and the child runs ns-init's code built into ns-exec (the default, one exec less).
pub fn explicit_init(flag: Option<&Path>) -> Option<PathBuf> {
    match flag {
        Some(p) => Some(p.to_path_buf()),
        None => std::env::var_os(ENV_INIT_PATH)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    }
}

/// Finds the helper program `name` (ns-init, ns-dmz): `explicit` when given, else beside this
/// program (a build tree), else `../libexec/ns-tools/NAME` from it (an installation:
/// `bin/ns-exec`, `libexec/ns-tools/`); it must be executable.
pub fn find_helper(name: &str, explicit: Option<PathBuf>) -> Result<PathBuf> {
    let candidates = match explicit {
        Some(p) => vec![p],
        None => {
            let exe = std::env::current_exe().ctx(|| "find ns-exec's own path".into())?;
            let dir = exe.parent().unwrap_or(Path::new("/"));
            vec![dir.join(name), dir.join("../libexec/ns-tools").join(name)]
        }
    };
    let mut last = None;
    for path in &candidates {
        match nix::unistd::access(path, nix::unistd::AccessFlags::X_OK) {
            Ok(()) => return Ok(path.clone()),
            Err(e) => last = Some(e),
        }
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(Error::sys(
        format!("find {name} (tried {})", tried.join(", ")),
        last.unwrap_or(nix::errno::Errno::ENOENT),
    ))
}

/// Runs the host side of every network for the child `pid`; on a failure, undoes those made.
fn host_networks(
    networks: &[common::config::Network],
    pid: i32,
) -> Result<Vec<common::net::NetContext>> {
    let target = ns_veth::Target::Pid(pid);
    let mut made = Vec::new();
    for (i, n) in networks.iter().enumerate() {
        match ns_veth::host_side(n, &target) {
            Ok(c) => made.push(c),
            Err(e) => {
                for c in &made {
                    let _ = ns_veth::undo(c);
                }
                return Err(e.context(format!("networks[{i}]")));
            }
        }
    }
    Ok(made)
}
