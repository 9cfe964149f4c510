//! The state of a running container: `<root>/<name>/state.json`, and the user's pid file.
//!
//! The state directory is root-owned and mode 0700 (nothing in a world-writable place,
//! CVE-2015-1331). A run prepares `<root>/.<name>.tmp-<pid>` holding an `owner` file (its own
//! pid and start time) and renames it to `<root>/<name>` with `RENAME_NOREPLACE`: that rename is
//! the lock, so of two runs with one name exactly one wins, and every claimed directory says who
//! claimed it. `state.json` then records the container's pid **and its start time** (field 22 of
//! `/proc/PID/stat`), so a pid the kernel has since given to another process is recognised as
//! stale and never joined. Files are written to a temporary name and renamed into place, so a
//! reader never sees half a file. Everything is removed when the container ends; what a killed
//! ns-exec could not remove, [`liveness`] recognises as stale and `ns-exec gc` removes.

use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use common::config::Config;
use common::{Context, Error, Result};

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub v: u32,
    /// The container's name.
    pub name: String,
    /// Host pid of the container's first process.
    pub pid: i32,
    /// Its start time in clock ticks since boot, from `/proc/PID/stat`.
    pub start_time: u64,
    /// The canonical config it was started with (enter applies the same user, caps, env).
    pub config: Config,
    /// The `--pid-file` written for it, for `gc` to remove after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<PathBuf>,
    /// The cgroup made for it, for `gc` to remove after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupRef>,
}

/// Where a container's cgroup is: its name and parent, relative to the cgroup of the ns-exec
/// that made it (so `gc` finds it when run from the same place, as `ns-cgroup` does).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupRef {
    /// The cgroup's name.
    pub name: String,
    /// Its parent, as the config gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// The start time of `pid` (field 22 of `/proc/PID/stat`), or `None` if it is gone or is a
/// zombie (dead, waiting to be reaped: its namespaces are already torn down).
pub fn start_time(pid: i32) -> Option<u64> {
    // One read: the file is a single line well under 1 KiB (52 numbers and a 16-byte name).
    let mut buf = [0u8; 1024];
    let n = {
        use std::io::Read;
        let mut f = fs::File::open(format!("/proc/{pid}/stat")).ok()?;
        loop {
            match f.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other.ok()?,
            }
        }
    };
    let stat = std::str::from_utf8(&buf[..n]).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

impl State {
    /// Whether the recorded process still runs (same pid, same start time, not a zombie).
    pub fn is_running(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// Writes `data` to `path` atomically: a temporary file in the same folder, then `rename`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(data)?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(format!("write {}", path.display()), e)
    })
}

/// The running container's state in its directory (the [`State`], as JSON).
pub const STATE_FILE: &str = "state.json";
/// Who holds a directory while its container starts: `PID START-TIME` of that ns-exec.
const OWNER_FILE: &str = "owner";

/// A container's directory under the state root, removed on drop.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    pid_file: Option<PathBuf>,
}

/// Reads the state of container `name` under `root`; `None` if there is none.
pub fn read(root: &Path, name: &str) -> Result<Option<State>> {
    let path = root.join(name).join(STATE_FILE);
    match fs::read(&path) {
        Ok(text) => serde_json::from_slice(&text).map(Some).map_err(|e| {
            Error::msg(
                format!("read {}", path.display()),
                format!("malformed state: {e}"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

/// Whether the process `pid` with start time `start` still runs.
fn alive(pid: i32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// The `owner` file: the pid and start time of the ns-exec that claimed a directory.
fn read_owner(dir: &Path) -> Option<(i32, u64)> {
    let text = fs::read_to_string(dir.join(OWNER_FILE)).ok()?;
    let mut words = text.split_whitespace();
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// What a directory under the state root stands for.
#[derive(Debug)]
pub enum Liveness {
    /// Its container runs.
    Running(Box<State>),
    /// An ns-exec that still runs claimed it and has not started its container yet.
    Starting,
    /// Nothing runs for it any more: left by an ns-exec that was killed. The reason, and the
    /// state if there is one.
    Stale(String, Option<Box<State>>),
}

/// Judges `<root>/<name>` (or a temporary `.<name>.tmp-<pid>` directory).
pub fn liveness(root: &Path, name: &str) -> Result<Liveness> {
    let dir = root.join(name);
    let state = if name.starts_with('.') {
        None
    } else {
        read(root, name)?
    };
    if let Some(s) = state {
        return Ok(if s.is_running() {
            Liveness::Running(Box::new(s))
        } else {
            let why = format!("its container (pid {}) is gone", s.pid);
            Liveness::Stale(why, Some(Box::new(s)))
        });
    }
    Ok(match read_owner(&dir) {
        Some((pid, start)) if alive(pid, start) => Liveness::Starting,
        Some((pid, _)) => Liveness::Stale(format!("ns-exec (pid {pid}) is gone"), None),
        None => Liveness::Stale("it has no owner".into(), None),
    })
}

impl StateDir {
    /// Claims `<root>/<name>`. A directory left by a run that is no longer alive is reported
    /// and replaced; one whose container runs, or that another live run is starting, is an
    /// error.
    pub fn create(root: &Path, name: &str) -> Result<StateDir> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .ctx(|| format!("create state directory {}", root.display()))?;
        let me = std::process::id() as i32;
        let my_start = start_time(me).ok_or_else(|| {
            Error::msg(
                "read ns-exec's own start time",
                "/proc/self/stat is unreadable",
            )
        })?;
        let tmp = root.join(format!(".{name}.tmp-{me}"));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .ctx(|| format!("create {}", tmp.display()))?;
        let claimed = write_atomic(
            &tmp.join(OWNER_FILE),
            format!("{me} {my_start}\n").as_bytes(),
            0o600,
        )
        .and_then(|()| claim(root, name, &tmp));
        if claimed.is_err() {
            let _ = remove_tree(&tmp);
        }
        claimed?;
        Ok(StateDir {
            dir: root.join(name),
            pid_file: None,
        })
    }

    /// Records the running container, and writes the user's pid file if asked.
    pub fn record(&mut self, state: &State) -> Result<()> {
        let json = serde_json::to_vec(state).expect("state serialises without failure");
        write_atomic(&self.dir.join(STATE_FILE), &json, 0o600)?;
        if let Some(path) = &state.pid_file {
            write_atomic(path, format!("{}\n", state.pid).as_bytes(), 0o644)?;
            self.pid_file = Some(path.clone());
        }
        Ok(())
    }
}

/// Renames the prepared `tmp` to `<root>/<name>` without replacing anything; a stale holder of
/// the name is removed (once) and the rename retried.
fn claim(root: &Path, name: &str, tmp: &Path) -> Result<()> {
    let dir = root.join(name);
    for attempt in 0..2 {
        match nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            tmp,
            nix::fcntl::AT_FDCWD,
            &dir,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => return Ok(()),
            Err(Errno::EEXIST) if attempt == 0 => match liveness(root, name)? {
                Liveness::Running(s) => {
                    return Err(Error::msg(
                        format!("create container {name:?}"),
                        format!("it is already running (pid {})", s.pid),
                    ));
                }
                Liveness::Starting => {
                    return Err(Error::msg(
                        format!("create container {name:?}"),
                        "another ns-exec is starting it",
                    ));
                }
                Liveness::Stale(why, state) => {
                    eprintln!("ns-exec: removing stale state of {name:?}: {why}");
                    remove_stale(&dir, state.as_deref())?;
                }
            },
            Err(e) => return Err(Error::sys(format!("create {}", dir.display()), e)),
        }
    }
    Err(Error::sys(
        format!("create {}", dir.display()),
        Errno::EEXIST,
    ))
}

/// Removes a stale directory and the pid file its state names, if that file still holds the
/// state's pid (a newer run may have reused the path).
pub fn remove_stale(dir: &Path, state: Option<&State>) -> Result<()> {
    if let Some(c) = state.and_then(|s| s.cgroup.as_ref()) {
        // Kills what is left in it and removes it; already gone is fine.
        if let Some(cg) = ns_cgroup::Cgroup::open(&c.name, c.parent.as_deref())? {
            cg.remove()?;
        }
    }
    if let Some(s) = state {
        if let Some(p) = &s.pid_file {
            if fs::read_to_string(p).is_ok_and(|t| t.trim() == s.pid.to_string()) {
                fs::remove_file(p).ctx(|| format!("remove {}", p.display()))?;
            }
        }
    }
    remove_tree(dir)
}

/// Removes a state directory: it holds only files we wrote, never a mount or a subdirectory.
/// Already gone is fine (another gc, or the owner, got there first).
fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.ctx(|| format!("read {}", dir.display()))?,
    };
    for entry in entries {
        let entry = entry.ctx(|| format!("read {}", dir.display()))?;
        match fs::remove_file(entry.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(format!("remove {}", entry.path().display()), e));
            }
            _ => {}
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("remove {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if let Some(p) = &self.pid_file {
            let _ = fs::remove_file(p);
        }
        // The files this run wrote, by name, on every container's way out; a directory that
        // holds anything else after all is emptied by listing it.
        for name in [STATE_FILE, OWNER_FILE] {
            let _ = fs::remove_file(self.dir.join(name));
        }
        if fs::remove_dir(&self.dir).is_ok() {
            return;
        }
        if let Err(e) = remove_tree(&self.dir) {
            eprintln!("ns-exec: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_is_stable_and_of_a_dead_pid_absent() {
        let me = std::process::id() as i32;
        let t = start_time(me).unwrap();
        assert_eq!(start_time(me), Some(t));
        assert_eq!(start_time(i32::MAX), None);
    }
}
