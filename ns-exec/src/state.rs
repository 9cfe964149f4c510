//! The state of a running container: `<root>/<name>/state.json`, and the user's pid file.
//!
//! The state directory is root-owned and mode 0700 (nothing in a world-writable place,
//! CVE-2015-1331). Creating `<root>/<name>` with `mkdir` is the lock: of two runs with one name,
//! exactly one wins. `state.json` records the pid **and its start time** (field 22 of
//! `/proc/PID/stat`), so a pid the kernel has since given to another process is recognised as
//! stale and never joined. Files are written to a temporary name and renamed into place, so a
//! reader never sees half a file. Everything is removed when the container ends.

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
}

/// The start time of `pid` (field 22 of `/proc/PID/stat`), or `None` if it is gone or is a
/// zombie (dead, waiting to be reaped: its namespaces are already torn down).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
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

/// A container's directory under the state root, removed on drop.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    pid_file: Option<PathBuf>,
}

/// Reads the state of container `name` under `root`; `None` if there is none.
pub fn read(root: &Path, name: &str) -> Result<Option<State>> {
    let path = root.join(name).join("state.json");
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

impl StateDir {
    /// Claims `<root>/<name>`. A directory left by a container that is no longer running is
    /// reported and replaced; one whose container runs, or that another run is creating right
    /// now (no `state.json` yet), is an error.
    pub fn create(root: &Path, name: &str) -> Result<StateDir> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .ctx(|| format!("create state directory {}", root.display()))?;
        let dir = root.join(name);
        for attempt in 0..2 {
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    return Ok(StateDir {
                        dir,
                        pid_file: None,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt == 0 => {
                    match read(root, name)? {
                        Some(s) if s.is_running() => {
                            return Err(Error::msg(
                                format!("create container {name:?}"),
                                format!("it is already running (pid {})", s.pid),
                            ));
                        }
                        Some(s) => {
                            eprintln!(
                                "ns-exec: removing stale state of {name:?}: pid {} is gone",
                                s.pid
                            );
                            remove_tree(&dir)?;
                        }
                        None => {
                            return Err(Error::sys(
                                format!("create container {name:?} in {}", root.display()),
                                Errno::EEXIST,
                            ));
                        }
                    }
                }
                Err(e) => {
                    return Err(Error::io(format!("create {}", dir.display()), e));
                }
            }
        }
        Err(Error::sys(
            format!("create {}", dir.display()),
            Errno::EEXIST,
        ))
    }

    /// Records the running container, and writes the user's pid file if asked.
    pub fn record(&mut self, state: &State, pid_file: Option<&Path>) -> Result<()> {
        let json = serde_json::to_vec(state).expect("state serialises without failure");
        write_atomic(&self.dir.join("state.json"), &json, 0o600)?;
        if let Some(path) = pid_file {
            write_atomic(path, format!("{}\n", state.pid).as_bytes(), 0o644)?;
            self.pid_file = Some(path.to_path_buf());
        }
        Ok(())
    }
}

/// Removes a state directory: it holds only files we wrote, never a mount or a subdirectory.
fn remove_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).ctx(|| format!("read {}", dir.display()))? {
        let entry = entry.ctx(|| format!("read {}", dir.display()))?;
        fs::remove_file(entry.path()).ctx(|| format!("remove {}", entry.path().display()))?;
    }
    fs::remove_dir(dir).ctx(|| format!("remove {}", dir.display()))
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if let Some(p) = &self.pid_file {
            let _ = fs::remove_file(p);
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
