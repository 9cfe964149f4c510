//! Harness for the ns-tools integration tests: real containers, run as root.
//!
//! What it gives a test:
//! - [`bin`]: the built ns-tools binaries (`NS_BIN_DIR`, else `target/<profile>` beside the test
//!   executable). Build them first: `cargo test` does not build other packages' binaries, which
//!   is why `scripts/test.sh` runs `cargo build --workspace` before `cargo test`.
//! - [`require_root`]: the root tier's gate. A missing prerequisite *fails* the test (STYLE.md
//!   §3.6: a root run that skips proves nothing); nothing here skips silently.
//! - [`Fixture`]: a throwaway directory with a busybox rootfs (`scripts/mkrootfs.sh`), a
//!   `container.json`, a state directory for `ns-exec --root` and a unique container name. On
//!   drop it checks that the test left nothing behind (security-and-hygiene.md §4: host mounts,
//!   host links, named netns, cgroup directories, state entries, pid files, container
//!   processes), then removes the directory. A leak fails the test.
//! - [`Invocation`] / [`Running`]: run a program with arguments and stdin, every wait bounded
//!   ([`TIMEOUT`]); a hang kills the child *by its pid* and fails the test instead of hanging CI.
//!
//! Rules the harness keeps so tests can run in parallel and on a shared machine: it ends only
//! processes it started (ns-exec children, and container processes whose pid ns-exec wrote to a
//! pid file we asked for, checked against their start time so a reused pid is never hit); it
//! unmounts only the one tmpfs [`Fixture::on_shared_mount`] mounted itself; it never deletes a
//! directory that still has something mounted below it.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The longest any single wait may take before the test fails (a run, a pid file, a line).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Interval of the bounded polling loops.
const POLL: Duration = Duration::from_millis(10);

/// How long a container process may take to disappear after ns-exec was reaped.
const GONE_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Binaries and the workspace

/// The directory holding the built ns-tools binaries: `$NS_BIN_DIR`, else the `target/<profile>`
/// directory this test executable was built into (it runs from `target/<profile>/deps/`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("find the test executable's path");
    let deps = exe
        .parent()
        .expect("the test executable has a parent directory");
    match deps.parent() {
        Some(profile) if deps.file_name() == Some(OsStr::new("deps")) => profile.to_path_buf(),
        _ => deps.to_path_buf(),
    }
}

/// The path of the ns-tools binary `name`; panics with what to do when it has not been built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.is_file() {
        panic!(
            "{name} not found at {}: build the workspace first (`cargo build --workspace`, or \
             run scripts/test.sh); NS_BIN_DIR overrides the directory",
            path.display()
        );
    }
    path
}

/// The workspace's top directory (the parent of the `tests/` crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// Gating

/// Fails the test unless it runs as root on a kernel that lets it create the namespaces a
/// container needs. The probe unshares mount, UTS, IPC, pid and net namespaces in a child that
/// then execs `/bin/true`, so the test process itself is never changed.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "this test belongs to the root tier (tests/tests/privileged.rs) and must run as \
             root, as CI does: run `sudo scripts/test.sh`. A root-tier test never skips."
        );
    }
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        use nix::sched::{CloneFlags, unshare};
        let flags = CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNET;
        let mut cmd = Command::new("/bin/true");
        cmd.stdin(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and makes one system call,
        // unshare(2), which allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || unshare(flags).map_err(std::io::Error::from));
        }
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("the probe child ended with {s}")),
            Err(e) => Err(format!("unshare(NEWNS|NEWUTS|NEWIPC|NEWPID|NEWNET): {e}")),
        }
    });
    if let Err(e) = probe {
        panic!(
            "running as root, but this host cannot create container namespaces ({e}); the root \
             tier needs CAP_SYS_ADMIN and namespace support, so this is a failure, not a skip"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// One process, named by its pid and its start time (field 22 of `/proc/PID/stat`), so a pid
/// the kernel has since given to another process is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId {
    /// The pid in the test's (the host's) pid namespace.
    pub pid: i32,
    /// Clock ticks since boot when it started.
    pub start: u64,
}

impl ProcId {
    /// Identifies the running process `pid`, if there is one.
    pub fn of(pid: i32) -> Option<ProcId> {
        proc_start_time(pid).map(|start| ProcId { pid, start })
    }

    /// Whether this very process still exists (a zombie counts: nobody has reaped it yet).
    pub fn exists(&self) -> bool {
        proc_start_time(self.pid) == Some(self.start)
    }

    /// Sends SIGKILL if this very process still exists. Used only for processes our tests
    /// started.
    pub fn kill(&self) {
        if self.exists() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
    }

    /// Waits, bounded by `timeout`, until the process runs the program `comm` (its exec is
    /// done: the pid file is written before the container's command starts); returns whether
    /// it does.
    pub fn wait_running(&self, comm: &str, timeout: Duration) -> bool {
        self.wait_until(timeout, |pid| {
            let now = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            now.trim_end() == comm
        })
    }

    /// Waits, bounded by `timeout`, until the process sleeps in `pause()` (an `NS_FAULT` pause
    /// point: its kernel wait channel names pause or sigsuspend); returns whether it does.
    pub fn wait_paused(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |pid| {
            let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            wchan.contains("pause") || wchan.contains("sigsuspend")
        })
    }

    /// Polls `reached` (given the pid) until it holds; false once the process is gone or
    /// `timeout` has passed.
    fn wait_until(&self, timeout: Duration, reached: impl Fn(i32) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if reached(self.pid) {
                return true;
            }
            if !self.exists() || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits, bounded by `timeout`, until the process is gone; returns whether it is.
    pub fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.exists() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
        true
    }
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), if it exists.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself;
    // the fields after the last ')' start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The pids of every process whose pid namespace is `ns` (a `pid:[N]` link text).
pub fn pids_in_pid_namespace(ns: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(link) = fs::read_link(format!("/proc/{pid}/ns/pid")) {
            if link.as_os_str() == OsStr::new(ns) {
                pids.push(pid);
            }
        }
    }
    pids
}

// ---------------------------------------------------------------------------------------------
// Host snapshots

/// The caller's mount table as sorted `mount-point fstype` lines, from `/proc/self/mountinfo`.
/// Two snapshots that differ mean something was mounted or unmounted in between.
pub fn mount_table() -> Vec<String> {
    let mut table: Vec<String> = mountinfo()
        .into_iter()
        .map(|(point, fstype)| format!("{} {fstype}", point.display()))
        .collect();
    table.sort();
    table
}

/// Mount points strictly below `dir` in the caller's mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .map(|(point, _)| point)
        .filter(|p| p != dir && p.starts_with(dir))
        .collect()
}

/// (mount point, fstype) for each line of `/proc/self/mountinfo`, mount points unescaped.
fn mountinfo() -> Vec<(PathBuf, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some((PathBuf::from(unescape_octal(point)), fstype.to_string()))
        })
        .collect()
}

/// Undoes the kernel's `\ooo` escaping of spaces, tabs, newlines and backslashes in mountinfo.
fn unescape_octal(s: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

/// The sorted entries of a directory, or nothing when it does not exist.
fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// The host-side state a container run must not change, taken whole so a diff names the leak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// [`mount_table`].
    pub mounts: Vec<String>,
    /// Network interfaces of the test's network namespace (`/sys/class/net`).
    pub links: Vec<String>,
    /// Named network namespaces (`/run/netns`).
    pub netns: Vec<String>,
}

impl Snapshot {
    /// Takes a snapshot now.
    pub fn take() -> Snapshot {
        Snapshot {
            mounts: mount_table(),
            links: dir_names(Path::new("/sys/class/net")),
            netns: dir_names(Path::new("/run/netns")),
        }
    }

    /// One line per difference from `earlier` (`mount added: /x tmpfs`), empty when equal.
    pub fn diff(&self, earlier: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (what, old, new) in [
            ("mount", &earlier.mounts, &self.mounts),
            ("link", &earlier.links, &self.links),
            ("named netns", &earlier.netns, &self.netns),
        ] {
            for line in new.iter().filter(|l| !old.contains(l)) {
                out.push(format!("{what} added: {line}"));
            }
            for line in old.iter().filter(|l| !new.contains(l)) {
                out.push(format!("{what} removed: {line}"));
            }
        }
        out
    }
}

/// Whether `name` holds `needle` not followed by a digit, so `nstest-1-1` does not match the
/// `nstest-1-12` of another fixture, but `nstest-1-1.scope` and `ns-tools-nstest-1-1` do.
fn names_match(name: &str, needle: &str) -> bool {
    name.match_indices(needle).any(|(i, _)| {
        !name[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Cgroup directories (v1 controllers and the v2 tree) whose name contains `needle`, searched
/// a few levels deep; symlinked controller names (`cpu` → `cpu,cpuacct`) are not followed.
pub fn cgroup_dirs_named(needle: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, needle: &str, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            let path = entry.path();
            if names_match(&entry.file_name().to_string_lossy(), needle) {
                out.push(path.clone());
            }
            if depth > 0 {
                walk(&path, needle, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), needle, 8, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Running programs

/// What a finished program did.
#[derive(Debug)]
pub struct Output {
    /// The command line, for messages.
    pub what: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output (lossily decoded).
    pub stdout: String,
    /// Its standard error (lossily decoded).
    pub stderr: String,
}

impl Output {
    /// The exit code; fails the test if the program itself (not its container) was killed by a
    /// signal, since ns-exec reports a signalled command as 128+N instead.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(code) => code,
            None => panic!("the program itself was killed by a signal\n{}", self.dump()),
        }
    }

    /// Fails the test with the whole output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Output {
        if self.status.code() != Some(code) {
            panic!("expected exit status {code}\n{}", self.dump());
        }
        self
    }

    /// Fails the test unless the exit code is 0 and stderr is empty.
    pub fn expect_clean_success(&self) -> &Output {
        self.expect_code(0);
        if !self.stderr.is_empty() {
            panic!("expected nothing on stderr\n{}", self.dump());
        }
        self
    }

    /// The non-empty stderr lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// The one error line ns-tools prints when it fails (`ns-exec: ...` or `ns-init: ...`);
    /// fails the test if stderr is not exactly one such line.
    pub fn error_line(&self) -> &str {
        let lines = self.stderr_lines();
        if lines.len() != 1 {
            panic!("expected exactly one line on stderr\n{}", self.dump());
        }
        let line = lines[0];
        if !(line.starts_with("ns-exec: ") || line.starts_with("ns-init: ")) {
            panic!(
                "expected the stderr line to start with `ns-exec: ` or `ns-init: `\n{}",
                self.dump()
            );
        }
        line
    }

    /// Everything about the run, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.what, self.status, self.stdout, self.stderr
        )
    }
}

enum StdinMode {
    Null,
    Bytes(Vec<u8>),
    Pipe,
}

/// A program to run, with a bounded wait. Built by [`Fixture::exec`] and friends, or
/// [`Invocation::new`] for programs that need no fixture.
pub struct Invocation<'f> {
    fixture: Option<&'f Fixture>,
    program: PathBuf,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    stdin: StdinMode,
    envs: Vec<(OsString, OsString)>,
    extra_fd: Option<i32>,
    hostile_signals: bool,
    timeout: Duration,
}

/// Signals [`Invocation::with_hostile_signals`] sets to `SIG_IGN`: SIGPIPE (the Rust runtime's
/// habit), SIGCHLD (which makes the kernel reap children behind the caller's back), SIGHUP
/// (nohup), SIGUSR1, glibc's internal 32 and 33, and a real-time signal.
pub const HOSTILE_IGNORED: [i32; 7] = [
    libc::SIGPIPE,
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGUSR1,
    32,
    33,
    40,
];

/// Signals [`Invocation::with_hostile_signals`] blocks.
pub const HOSTILE_BLOCKED: [i32; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGUSR2, 45];

impl<'f> Invocation<'f> {
    /// Runs `program` with no arguments, stdin from `/dev/null`, the test's environment.
    pub fn new(program: impl Into<PathBuf>) -> Invocation<'f> {
        Invocation {
            fixture: None,
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            stdin: StdinMode::Null,
            envs: Vec::new(),
            extra_fd: None,
            hostile_signals: false,
            timeout: TIMEOUT,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Runs it in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Feeds `bytes` on stdin, then closes it (EOF).
    pub fn stdin_bytes(mut self, bytes: &[u8]) -> Self {
        self.stdin = StdinMode::Bytes(bytes.to_vec());
        self
    }

    /// Gives it a stdin pipe the test writes to and closes ([`Running::close_stdin`]).
    pub fn stdin_pipe(mut self) -> Self {
        self.stdin = StdinMode::Pipe;
        self
    }

    /// Adds a variable to the environment it inherits from the test.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Starts it with fd `n` open and *not* close-on-exec (a copy of `/dev/null`), the way a
    /// careless caller leaks an fd into the programs it starts.
    pub fn with_inherited_fd(mut self, n: i32) -> Self {
        self.extra_fd = Some(n);
        self
    }

    /// Starts it the way a careless caller would: the signals in [`HOSTILE_IGNORED`] ignored
    /// and those in [`HOSTILE_BLOCKED`] blocked. Both survive `execve`, so they reach the
    /// program unless it resets them.
    pub fn with_hostile_signals(mut self) -> Self {
        self.hostile_signals = true;
        self
    }

    /// Overrides [`TIMEOUT`] for this run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs it to the end (bounded) and returns what it did.
    pub fn run(self) -> Output {
        self.spawn().wait()
    }

    /// Starts it and returns at once.
    pub fn spawn(self) -> Running<'f> {
        let what = std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.stdin(match self.stdin {
            StdinMode::Null => Stdio::null(),
            StdinMode::Bytes(_) | StdinMode::Pipe => Stdio::piped(),
        });
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        // Kept open (close-on-exec, as std opens it) until after the spawn.
        let devnull;
        if let Some(n) = self.extra_fd {
            devnull = fs::File::open("/dev/null").expect("open /dev/null");
            let src = std::os::fd::AsRawFd::as_raw_fd(&devnull);
            // SAFETY: the closure runs in the forked child before exec and makes one system
            // call, dup2(2), which allocates nothing and takes no lock. dup2 gives `n` a copy
            // without FD_CLOEXEC; `src` is open because `devnull` lives until after spawn().
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(src, n) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if self.hostile_signals {
            // The set is built here, before the fork: sigaddset is not on the async-signal-safe
            // list.
            let mut blocked = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            // SAFETY: sigemptyset initialises the set it is given; sigaddset then only writes
            // into that initialised set, with signal numbers below NSIG.
            let blocked = unsafe {
                libc::sigemptyset(blocked.as_mut_ptr());
                for sig in HOSTILE_BLOCKED {
                    libc::sigaddset(blocked.as_mut_ptr(), sig);
                }
                blocked.assume_init()
            };
            // SAFETY: the closure runs in the forked child before exec (after std reset the
            // mask and SIGPIPE, so what it sets stays) and makes only raw system calls,
            // rt_sigaction and sigprocmask, with data on its stack: no allocation, no lock.
            unsafe {
                cmd.pre_exec(move || {
                    for sig in HOSTILE_IGNORED {
                        ignore_signal(sig)?;
                    }
                    if libc::sigprocmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut()) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));

        let mut stdin = child.stdin.take();
        if let StdinMode::Bytes(bytes) = self.stdin {
            let mut pipe = stdin.take().expect("stdin is piped");
            // A thread, so a program that does not read cannot block the test; the pipe closes
            // (EOF) when the thread ends.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }

        let (out_tx, stdout_rx) = mpsc::channel();
        let mut out = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out_tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let (err_tx, stderr_rx) = mpsc::channel();
        let mut err = child.stderr.take().expect("stderr is piped");
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = err.read_to_end(&mut all);
            let _ = err_tx.send(all);
        });

        Running {
            fixture: self.fixture,
            what,
            child,
            status: None,
            stdin,
            stdout_rx,
            stdout: Vec::new(),
            stdout_eof: false,
            stderr_rx,
            timeout: self.timeout,
            deadline: Instant::now() + self.timeout,
        }
    }
}

/// Sets `sig` to `SIG_IGN` with the raw `rt_sigaction` system call: glibc's `sigaction` refuses
/// 32 and 33, which it keeps for itself, but a caller can still leave them ignored.
fn ignore_signal(sig: i32) -> std::io::Result<()> {
    /// The kernel's `struct sigaction` (not libc's): handler, flags, restorer, 64-bit mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::c_ulong,
        flags: libc::c_ulong,
        restorer: libc::c_ulong,
        mask: u64,
    }
    let act = KernelSigaction {
        handler: libc::SIG_IGN as libc::c_ulong,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction reads one kernel sigaction from `act`, which lives on this stack for
    // the call; the old action is not asked for (null), and 8 is the kernel's sigset size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig as libc::c_long,
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8 as libc::c_long,
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A started program. Dropping it before it ended kills it (SIGKILL, by its pid) and the
/// container process it announced in a pid file, if any.
pub struct Running<'f> {
    fixture: Option<&'f Fixture>,
    what: String,
    child: Child,
    status: Option<ExitStatus>,
    stdin: Option<ChildStdin>,
    stdout_rx: Receiver<Vec<u8>>,
    stdout: Vec<u8>,
    stdout_eof: bool,
    stderr_rx: Receiver<Vec<u8>>,
    timeout: Duration,
    deadline: Instant,
}

impl Running<'_> {
    /// The program's (ns-exec's) pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to the program by its pid. Safe from pid reuse: the test has not reaped it
    /// yet, so the pid still names it (at worst a zombie, which ignores signals).
    pub fn signal(&mut self, sig: Signal) {
        if self.status.is_some() {
            self.fail(&format!("cannot send {sig}: the program already ended"));
        }
        kill(Pid::from_raw(self.pid()), sig).unwrap_or_else(|e| panic!("kill {sig}: {e}"));
    }

    /// Closes the stdin pipe ([`Invocation::stdin_pipe`]), so the program reads EOF.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Whether the program has ended (reaps it if so).
    pub fn has_ended(&mut self) -> bool {
        if self.status.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
            }
        }
        self.status.is_some()
    }

    fn drain_stdout(&mut self) {
        loop {
            match self.stdout_rx.try_recv() {
                Ok(chunk) => self.stdout.extend_from_slice(&chunk),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.stdout_eof = true;
                    return;
                }
            }
        }
    }

    /// Waits (bounded) until the program's stdout holds `needle`.
    pub fn wait_for_stdout(&mut self, needle: &str) {
        loop {
            self.drain_stdout();
            if String::from_utf8_lossy(&self.stdout).contains(needle) {
                return;
            }
            if self.stdout_eof {
                self.fail(&format!("stdout closed before {needle:?} appeared"));
            }
            if Instant::now() >= self.deadline {
                self.fail(&format!(
                    "{needle:?} did not appear on stdout within {:?}",
                    self.timeout
                ));
            }
            match self.stdout_rx.recv_timeout(POLL) {
                Ok(chunk) => self.stdout.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stdout_eof = true,
            }
        }
    }

    /// Waits (bounded) until `path` holds a pid and a newline, as `--pid-file` promises, and
    /// returns that process. The fixture, if any, tracks it: it must be gone when the test ends,
    /// and is killed if the test fails first.
    pub fn wait_for_pid_file(&mut self, path: &Path) -> ProcId {
        loop {
            if let Ok(text) = fs::read_to_string(path) {
                if let Some(line) = text.strip_suffix('\n') {
                    let pid: i32 = line.parse().unwrap_or_else(|_| {
                        self.fail(&format!(
                            "pid file {} holds {text:?}, not a decimal pid and a newline",
                            path.display()
                        ))
                    });
                    let proc_id = ProcId::of(pid).unwrap_or_else(|| {
                        self.fail(&format!("pid file names pid {pid}, which does not exist"))
                    });
                    if let Some(fx) = self.fixture {
                        fx.track(proc_id);
                    }
                    return proc_id;
                }
            }
            if self.has_ended() {
                self.fail(&format!(
                    "the program ended before the pid file {} appeared",
                    path.display()
                ));
            }
            if Instant::now() >= self.deadline {
                self.fail(&format!(
                    "the pid file {} did not appear within {:?}",
                    path.display(),
                    self.timeout
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits (bounded) for the program to end and for its stdout and stderr to reach EOF. EOF
    /// long after the program ended means a process it started still holds the pipes: that
    /// fails the test, as a leaked process.
    pub fn wait(mut self) -> Output {
        loop {
            if self.has_ended() {
                break;
            }
            if Instant::now() >= self.deadline {
                let msg = format!("did not end within {:?}; killed it", self.timeout);
                self.fail(&msg);
            }
            match self.stdout_rx.recv_timeout(POLL) {
                Ok(chunk) => self.stdout.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.stdout_eof = true;
                    std::thread::sleep(POLL);
                }
            }
        }
        let status = self.status.expect("reaped");
        // The program is reaped; its pipes close as soon as no process holds them.
        let eof_deadline = Instant::now() + GONE_TIMEOUT;
        while !self.stdout_eof {
            match self.stdout_rx.recv_timeout(POLL) {
                Ok(chunk) => self.stdout.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stdout_eof = true,
            }
            if !self.stdout_eof && Instant::now() >= eof_deadline {
                self.fail(&format!(
                    "exited with {status}, but its stdout was still open {GONE_TIMEOUT:?} later: \
                     a process it started outlived it"
                ));
            }
        }
        let stderr = match self.stderr_rx.recv_timeout(GONE_TIMEOUT) {
            Ok(bytes) => bytes,
            Err(_) => self.fail(&format!(
                "exited with {status}, but its stderr was still open {GONE_TIMEOUT:?} later: a \
                 process it started outlived it"
            )),
        };
        Output {
            what: std::mem::take(&mut self.what),
            status,
            stdout: String::from_utf8_lossy(&self.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Kills the program (and tracked container processes), then fails the test with `msg` and
    /// whatever output there was.
    fn fail(&mut self, msg: &str) -> ! {
        self.kill_all();
        self.drain_stdout();
        let stderr = self
            .stderr_rx
            .recv_timeout(Duration::from_millis(200))
            .unwrap_or_default();
        panic!(
            "{}: {msg}\nstatus: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.what,
            self.status,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&stderr)
        );
    }

    fn kill_all(&mut self) {
        if !self.has_ended() {
            // Child::kill signals the child by its pid; it is unreaped, so the pid is still its.
            let _ = self.child.kill();
            let deadline = Instant::now() + GONE_TIMEOUT;
            while !self.has_ended() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        if let Some(fx) = self.fixture {
            fx.kill_tracked();
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.has_ended() {
            self.kill_all();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory `ns-tests-PID-N-PURPOSE` under the system temp dir, mode 0755.
fn make_temp_dir(purpose: &str) -> PathBuf {
    let base = std::env::temp_dir();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("ns-tests-{}-{n}-{purpose}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                    .expect("chmod temp dir");
                return dir;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create {}: {e}", dir.display()),
        }
    }
}

/// Removes `dir`, unless something is mounted below it (then deleting could reach into a
/// mounted host directory): that is reported instead.
fn remove_temp_dir(dir: &Path) -> Result<(), String> {
    let mounted = mounts_under(dir);
    if !mounted.is_empty() {
        return Err(format!(
            "left {} in place: still mounted below it: {mounted:?}",
            dir.display()
        ));
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("remove {}: {e}", dir.display())),
    }
}

/// A temporary directory removed on drop (for tests that need no rootfs).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Makes one; `purpose` goes into its name.
    pub fn new(purpose: &str) -> TempDir {
        TempDir {
            path: make_temp_dir(purpose),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = remove_temp_dir(&self.path) {
            eprintln!("ns-tests: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The container fixture

/// Tests that mount something on the host hold this for writing, so the mount-table snapshots
/// of the others (held for reading) never see a mount that is not a leak.
static HOST_MOUNTS: RwLock<()> = RwLock::new(());

#[allow(dead_code)] // held for its Drop only
enum MountsGuard {
    Shared(RwLockReadGuard<'static, ()>),
    Exclusive(RwLockWriteGuard<'static, ()>),
}

/// The capabilities the default config keeps.
pub const DEFAULT_CAPS: [&str; 12] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
];

/// The hostname the default config sets.
pub const DEFAULT_HOSTNAME: &str = "koye";

/// The environment the default config sets.
pub const DEFAULT_ENV: [&str; 3] = [
    "HOME=/",
    "PATH=/bin:/usr/bin:/sbin:/usr/sbin",
    "container=ns-tools",
];

/// The `container.json` every fixture starts from (the 2014 schema; `rootfs` is relative to
/// the config file's folder).
pub fn default_config() -> Value {
    json!({
        "rootfs": "rootfs",
        "hostname": DEFAULT_HOSTNAME,
        "namespaces": ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"],
        "capabilities": DEFAULT_CAPS,
        "environment": DEFAULT_ENV,
    })
}

/// One container's world: a temp dir holding `rootfs/` (busybox, from `scripts/mkrootfs.sh`),
/// `container.json`, `state/` (ns-exec's `--root`) and room for pid files and host dirs to
/// bind-mount. The container name is unique per fixture.
///
/// Dropping it checks that nothing leaked since it was made (see [`Fixture::leaks`]) and fails
/// the test if something did, then removes the directory.
pub struct Fixture {
    dir: PathBuf,
    name: String,
    rootfs_rel: &'static str,
    shared_mount: Option<PathBuf>,
    config: RefCell<Value>,
    tracked: RefCell<Vec<ProcId>>,
    allow_state: Cell<bool>,
    baseline: Snapshot,
    _guard: MountsGuard,
}

impl Fixture {
    /// A fixture with the default config.
    pub fn new() -> Fixture {
        let guard = MountsGuard::Shared(HOST_MOUNTS.read().unwrap_or_else(|e| e.into_inner()));
        Fixture::build(guard, false)
    }

    /// A fixture whose rootfs lies on a tmpfs the fixture mounts itself with *shared*
    /// propagation (as systemd sets up `/` on most hosts), so a container that does not make
    /// its mounts private leaks them back into the host's table. Runs exclusively with other
    /// fixtures, since it changes the host mount table on purpose.
    pub fn on_shared_mount() -> Fixture {
        let guard = MountsGuard::Exclusive(HOST_MOUNTS.write().unwrap_or_else(|e| e.into_inner()));
        Fixture::build(guard, true)
    }

    fn build(guard: MountsGuard, shared: bool) -> Fixture {
        let dir = make_temp_dir("fixture");
        let n = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').nth(3))
            .unwrap_or("0")
            .to_string();
        let mut fx = Fixture {
            name: format!("nstest-{}-{n}", std::process::id()),
            rootfs_rel: if shared { "shared/rootfs" } else { "rootfs" },
            shared_mount: None,
            config: RefCell::new(default_config()),
            tracked: RefCell::new(Vec::new()),
            allow_state: Cell::new(false),
            baseline: Snapshot::take(),
            _guard: guard,
            dir,
        };
        if shared {
            use nix::mount::{MsFlags, mount};
            let point = fx.dir.join("shared");
            fs::create_dir(&point).expect("mkdir shared");
            mount(
                Some("tmpfs"),
                &point,
                Some("tmpfs"),
                MsFlags::empty(),
                Some("mode=0755"),
            )
            .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", point.display()));
            fx.shared_mount = Some(point.clone());
            mount(
                None::<&str>,
                &point,
                None::<&str>,
                MsFlags::MS_SHARED,
                None::<&str>,
            )
            .unwrap_or_else(|e| panic!("make {} shared: {e}", point.display()));
            fx.baseline = Snapshot::take();
        }
        let script = workspace_root().join("scripts/mkrootfs.sh");
        let out = Command::new("/bin/sh")
            .arg(&script)
            .arg(fx.rootfs())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        if !out.status.success() {
            panic!(
                "{} failed ({}): {}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if fx.rootfs_rel != "rootfs" {
            fx.config.borrow_mut()["rootfs"] = json!(fx.rootfs_rel);
        }
        fx.write_config();
        fx
    }

    /// The fixture's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The container's unique name (`--name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(self.rootfs_rel)
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("container.json")
    }

    /// ns-exec's state directory for this fixture (`--root`).
    pub fn state_root(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Where [`Fixture::exec_with_pid_file`] asks for the pid file.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("container.pid")
    }

    /// Makes the directory `rel` inside the fixture (for bind-mount sources) and returns it.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.dir.join(rel);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        path
    }

    /// Changes the config and rewrites `container.json`.
    pub fn edit_config(&self, edit: impl FnOnce(&mut Value)) {
        edit(&mut self.config.borrow_mut());
        self.write_config();
    }

    /// The current config.
    pub fn config(&self) -> Value {
        self.config.borrow().clone()
    }

    fn write_config(&self) {
        let text = serde_json::to_vec_pretty(&*self.config.borrow()).expect("serialise config");
        fs::write(self.config_path(), text).expect("write container.json");
    }

    /// `ns-exec` with no arguments yet, run in the fixture's directory.
    pub fn ns_exec(&self) -> Invocation<'_> {
        let mut inv = Invocation::new(bin("ns-exec")).current_dir(&self.dir);
        inv.fixture = Some(self);
        inv
    }

    /// `ns-exec --config C --root R --name N -- CMD...`: run `cmd` in a new container.
    pub fn exec(&self, cmd: &[&str]) -> Invocation<'_> {
        self.ns_exec()
            .arg("--config")
            .arg(self.config_path())
            .arg("--root")
            .arg(self.state_root())
            .arg("--name")
            .arg(&self.name)
            .arg("--")
            .args(cmd)
    }

    /// Like [`Fixture::exec`], asking for the pid file [`Fixture::pid_file`].
    pub fn exec_with_pid_file(&self, cmd: &[&str]) -> Invocation<'_> {
        self.ns_exec()
            .arg("--config")
            .arg(self.config_path())
            .arg("--root")
            .arg(self.state_root())
            .arg("--name")
            .arg(&self.name)
            .arg("--pid-file")
            .arg(self.pid_file())
            .arg("--")
            .args(cmd)
    }

    /// `ns-exec enter --root R NAME -- CMD...`: run `cmd` in the running container.
    pub fn enter(&self, cmd: &[&str]) -> Invocation<'_> {
        self.ns_exec()
            .arg("enter")
            .arg("--root")
            .arg(self.state_root())
            .arg(&self.name)
            .arg("--")
            .args(cmd)
    }

    /// Runs `cmd` in a new container to the end.
    pub fn run(&self, cmd: &[&str]) -> Output {
        self.exec(cmd).run()
    }

    /// Accepts a state entry left in [`Fixture::state_root`] (a test that kills ns-exec itself
    /// leaves a stale one on purpose).
    pub fn allow_state_left(&self) {
        self.allow_state.set(true);
    }

    /// Adds a container process to the ones that must be gone at the end.
    pub fn track(&self, proc_id: ProcId) {
        let mut tracked = self.tracked.borrow_mut();
        if !tracked.contains(&proc_id) {
            tracked.push(proc_id);
        }
    }

    /// SIGKILLs the tracked container processes that still exist (they are ours).
    pub fn kill_tracked(&self) {
        for p in self.tracked.borrow().iter() {
            p.kill();
        }
    }

    /// Everything the fixture finds changed or left behind since it was made, one line each:
    /// host mounts, links and named netns (a diff against the snapshot taken at creation),
    /// container processes still running, entries in the state dir, the pid file, and cgroup
    /// directories named after the container.
    pub fn leaks(&self) -> Vec<String> {
        self.leaks_with_grace(GONE_TIMEOUT)
    }

    /// [`Fixture::leaks`], giving tracked processes at most `grace` to disappear.
    pub fn leaks_with_grace(&self, grace: Duration) -> Vec<String> {
        let mut out = Snapshot::take().diff(&self.baseline);
        for p in self.tracked.borrow().iter() {
            if !p.wait_gone(grace) {
                out.push(format!("container process {} still exists", p.pid));
            }
        }
        if !self.allow_state.get() {
            for name in dir_names(&self.state_root()) {
                out.push(format!(
                    "state entry left: {}",
                    self.state_root().join(name).display()
                ));
            }
        }
        if self.pid_file().exists() {
            out.push(format!("pid file left: {}", self.pid_file().display()));
        }
        for dir in cgroup_dirs_named(&self.name) {
            out.push(format!("cgroup directory left: {}", dir.display()));
        }
        out
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let leaks = self.leaks();
        self.kill_tracked();
        let mut problems = Vec::new();
        if let Some(point) = &self.shared_mount {
            use nix::mount::{MntFlags, umount2};
            // Our own mount. A lazy unmount also drops whatever leaked below it, which the leak
            // list above has already reported.
            let flags = if mounts_under(point).is_empty() {
                MntFlags::empty()
            } else {
                MntFlags::MNT_DETACH
            };
            if let Err(e) = umount2(point, flags) {
                problems.push(format!("unmount {}: {e}", point.display()));
            }
        }
        if let Err(e) = remove_temp_dir(&self.dir) {
            problems.push(e);
        }
        if std::thread::panicking() {
            for line in leaks.iter().chain(&problems) {
                eprintln!("ns-tests: also: {line}");
            }
        } else if !leaks.is_empty() || !problems.is_empty() {
            panic!(
                "the test left things behind:\n  {}",
                leaks
                    .iter()
                    .chain(&problems)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the container's view

/// The value of field `key` (`CapEff`) in a `/proc/PID/status` text.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// The capability mask of `names` (kernel names without `CAP_`), as `/proc/PID/status` prints
/// it: 16 hex digits.
pub fn cap_mask_hex(names: &[&str]) -> String {
    let mask = names.iter().fold(0u64, |mask, name| {
        let bit = cap_number(name).unwrap_or_else(|| panic!("unknown capability {name}"));
        mask | (1u64 << bit)
    });
    format!("{mask:016x}")
}

/// The kernel number of capability `name`, for the ones tests use (capability.h).
pub fn cap_number(name: &str) -> Option<u32> {
    Some(match name {
        "CHOWN" => 0,
        "DAC_OVERRIDE" => 1,
        "DAC_READ_SEARCH" => 2,
        "FOWNER" => 3,
        "FSETID" => 4,
        "KILL" => 5,
        "SETGID" => 6,
        "SETUID" => 7,
        "SETPCAP" => 8,
        "NET_BIND_SERVICE" => 10,
        "NET_ADMIN" => 12,
        "NET_RAW" => 13,
        "SYS_CHROOT" => 18,
        "SYS_PTRACE" => 19,
        "SYS_ADMIN" => 21,
        "MKNOD" => 27,
        "AUDIT_WRITE" => 29,
        "SETFCAP" => 31,
        _ => return None,
    })
}

/// A network namespace made for one test, held by a `sleep` we spawned; killed by its pid on
/// drop.
pub struct Netns {
    child: std::process::Child,
}

impl Netns {
    /// Makes one (`unshare --net sleep 600`), waiting until it exists.
    #[allow(clippy::new_without_default)] // It spawns a process: not a default value.
    pub fn new() -> Netns {
        let child = std::process::Command::new("unshare")
            .args(["--net", "--", "sleep", "600"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn unshare --net sleep (util-linux)");
        let ns = Netns { child };
        let own = std::fs::read_link("/proc/self/ns/net").expect("readlink own netns");
        let start = Instant::now();
        while std::fs::read_link(ns.path()).ok().is_none_or(|l| l == own) {
            assert!(start.elapsed() < TIMEOUT, "unshare --net did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        ns
    }

    /// The holding process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/proc/PID/ns/net` of the holding process.
    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }

    /// `program args` inside this namespace, bounded by the harness's timeout.
    pub fn inv(&self, program: impl AsRef<std::ffi::OsStr>) -> Invocation<'static> {
        Invocation::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program)
    }

    /// A shell script inside; fails the test unless it succeeds; returns its stdout.
    pub fn sh(&self, script: &str) -> String {
        let out = self.inv("sh").args(["-c", script]).run();
        out.expect_code(0);
        out.stdout
    }

    /// `ns-veth args` inside.
    pub fn ns_veth(&self, args: &[&str]) -> Output {
        self.inv(bin("ns-veth")).args(args).run()
    }

    /// Interface names with their state (`ip -o link`, sorted), to compare before and after.
    pub fn links(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .sh("ip -o link show")
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        names.sort();
        names
    }

    /// Makes bridge `br0` with `addr` (CIDR), up.
    pub fn bridge(&self, addr: &str) {
        self.sh(&format!(
            "ip link add br0 type bridge && ip addr add {addr} dev br0 && ip link set br0 up"
        ));
    }

    /// `ip -o link show dev NAME` inside.
    pub fn link_line(&self, name: &str) -> String {
        self.sh(&format!("ip -o link show dev {name}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_names_match_only_the_whole_container_name() {
        assert!(names_match("nstest-1-1", "nstest-1-1"));
        assert!(names_match("nstest-1-1.scope", "nstest-1-1"));
        assert!(names_match("ns-tools-nstest-1-1", "nstest-1-1"));
        assert!(!names_match("nstest-1-12", "nstest-1-1"));
        assert!(!names_match("user.slice", "nstest-1-1"));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_octal(r"/a\040b\134c"), OsString::from("/a b\\c"));
        assert_eq!(unescape_octal(r"/plain"), OsString::from("/plain"));
        assert_eq!(unescape_octal(r"/end\04"), OsString::from(r"/end\04"));
    }

    #[test]
    fn default_caps_mask_matches_the_kernel_numbers() {
        assert_eq!(cap_mask_hex(&DEFAULT_CAPS), "00000000880425eb");
    }

    #[test]
    fn status_fields_are_found_by_exact_key() {
        let s = "CapInh:\t0000000000000000\nCapEff:\t00000000880425eb\n";
        assert_eq!(status_field(s, "CapEff"), Some("00000000880425eb"));
        assert_eq!(status_field(s, "Cap"), None);
    }

    #[test]
    fn snapshot_diff_names_each_change() {
        let a = Snapshot {
            mounts: vec!["/ ext4".into()],
            links: vec!["lo".into()],
            netns: vec![],
        };
        let mut b = a.clone();
        b.mounts.push("/x tmpfs".into());
        b.links.clear();
        assert_eq!(b.diff(&a), ["mount added: /x tmpfs", "link removed: lo"]);
        assert!(a.diff(&a).is_empty());
    }

    #[test]
    fn start_time_of_self_is_readable_and_stable() {
        let me = ProcId::of(std::process::id() as i32).expect("own stat");
        assert!(me.exists());
    }
}
