//! `ns-cgroup watch`: JSON lines as the cgroup's events happen, woken by the kernel, never by a
//! timer.
//!
//! Sources per layout:
//! - v2: `memory.events` (`oom`, `oom_kill`, `max`), `pids.events` (`max`) and `cgroup.events`
//!   (`populated`). The kernel signals a change of these files with `inotify` `IN_MODIFY` (and
//!   `POLLPRI`), so one inotify fd watches them all.
//! - v1: an `eventfd` registered in `cgroup.event_control` for `memory.oom_control` counts OOMs
//!   (the 2014 `notifyOnOOM`), and `memory.oom_control`'s `oom_kill` the kills; `pids.events` as
//!   on v2. Only hybrid layouts report `populated` (from the cgroup2 tree's `cgroup.events`):
//!   pure v1 has no notification for it.
//!
//! The first line is `{"event":"watching",...}` with the current counts, written once every
//! source is armed, so a caller can start the container after reading it and miss nothing. The
//! last is `{"event":"removed"}`: the watch ends when the cgroup is removed (inotify
//! `IN_DELETE` of its directory, seen by a watch on the parent; v1 also signals the eventfd on
//! `rmdir`). See
//! [inotify(7)](https://man7.org/linux/man-pages/man7/inotify.7.html),
//! [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html), the kernel's
//! `Documentation/admin-guide/cgroup-v1/memory.rst` §9 and `cgroup-v2.rst`.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::Mode;
use serde_json::{Value, json};

use common::{Error, Result};

use crate::cgroup::Cgroup;
use crate::files;
use crate::layout::Kind;

/// The counters a watch reports changes of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Times the memory limit was hit and reclaim failed (`oom`).
    pub oom: u64,
    /// Processes the OOM killer killed (`oom_kill`).
    pub oom_kill: u64,
    /// Times usage reached the limit (v2 `memory.events` `max`).
    pub memory_max: u64,
    /// Forks refused at `pids.max` (`pids.events` `max`).
    pub pids_max: u64,
    /// Whether a process is in the cgroup (`None` where the layout cannot tell).
    pub populated: Option<bool>,
}

/// What a removed cgroup's counters were last: `last`, and empty. It can only be removed once
/// no process is left, and the change to empty may come in the same batch of inotify events
/// as the removal, with its files gone before they could be read.
pub fn at_removal(last: &Counters) -> Counters {
    Counters {
        populated: last.populated.map(|_| false),
        ..*last
    }
}

/// The event lines for the change from `old` to `new`.
pub fn changes(old: &Counters, new: &Counters) -> Vec<Value> {
    let mut out = Vec::new();
    // A cgroup that filled and emptied between two reads shows both; a new process comes
    // before what it caused, and emptiness after.
    let populated = new
        .populated
        .filter(|p| old.populated != Some(*p))
        .map(|p| json!({"v": 1, "event": "populated", "populated": p}));
    if new.populated == Some(true) {
        out.extend(populated.clone());
    }
    for (name, a, b) in [
        ("oom", old.oom, new.oom),
        ("oom_kill", old.oom_kill, new.oom_kill),
        ("memory_max", old.memory_max, new.memory_max),
        ("pids_max", old.pids_max, new.pids_max),
    ] {
        if b > a {
            out.push(json!({"v": 1, "event": name, "count": b}));
        }
    }
    if new.populated == Some(false) {
        out.extend(populated);
    }
    out
}

/// What a watch reads and waits on.
struct Sources {
    v2: bool,
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    unified: Option<PathBuf>,
    /// v1: the OOM eventfd and the `memory.oom_control` fd it is registered for (kept open).
    oom_fd: Option<(EventFd, OwnedFd)>,
    /// OOMs counted from the eventfd (v1).
    v1_ooms: u64,
}

impl Sources {
    fn read(&self) -> Counters {
        let mut c = Counters::default();
        if let Some(m) = &self.memory {
            if self.v2 {
                let ev = files::read(&m.join("memory.events")).unwrap_or_default();
                c.oom = files::keyed(&ev, "oom").unwrap_or(0);
                c.oom_kill = files::keyed(&ev, "oom_kill").unwrap_or(0);
                c.memory_max = files::keyed(&ev, "max").unwrap_or(0);
            } else {
                let ctl = files::read(&m.join("memory.oom_control")).unwrap_or_default();
                c.oom = self.v1_ooms;
                c.oom_kill = files::keyed(&ctl, "oom_kill").unwrap_or(0);
            }
        }
        if let Some(p) = &self.pids {
            let ev = files::read(&p.join("pids.events")).unwrap_or_default();
            c.pids_max = files::keyed(&ev, "max").unwrap_or(0);
        }
        if let Some(u) = &self.unified {
            let ev = files::read(&u.join("cgroup.events")).unwrap_or_default();
            c.populated = files::keyed(&ev, "populated").map(|n| n == 1);
        }
        c
    }
}

/// Writes one JSON line; a closed stdout ends the watch quietly (`watch | head -1`).
fn emit(out: &mut impl Write, v: &Value) -> bool {
    writeln!(out, "{v}").and_then(|()| out.flush()).is_ok()
}

/// Watches `cg` until it is removed (or stdout is closed), writing JSON lines to `out`.
pub fn watch(cg: &Cgroup, out: &mut impl Write) -> Result<()> {
    let v2 = cg.kind() == Kind::V2;
    let what = |w: &str| format!("watch cgroup {}: {w}", cg.name());
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .map_err(|e| Error::sys(what("inotify_init"), e))?;
    let mut src = Sources {
        v2,
        memory: cg.dir_for("memory").map(PathBuf::from),
        pids: cg.dir_for("pids").map(PathBuf::from),
        unified: cg.unified_dir().map(PathBuf::from),
        oom_fd: None,
        v1_ooms: 0,
    };
    let mut watched = Vec::new();
    for (dir, file) in [
        (&src.memory, "memory.events"),
        (&src.pids, "pids.events"),
        (&src.unified, "cgroup.events"),
    ] {
        if let Some(d) = dir {
            let path = d.join(file);
            if path.exists() {
                watched.push(path);
            }
        }
    }
    for path in &watched {
        inotify
            .add_watch(path.as_path(), AddWatchFlags::IN_MODIFY)
            .map_err(|e| Error::sys(what(&format!("watch {}", path.display())), e))?;
    }
    // The removal of any one of the cgroup's directories ends the watch.
    let Some(first) = cg.dirs().first().map(|d| d.path.clone()) else {
        return Err(Error::msg(what("directories"), "none"));
    };
    // The kernel reports an `rmdir` as IN_DELETE on the parent directory; IN_DELETE_SELF on the
    // directory itself comes only when nothing else holds its dentry, so it is not enough.
    let leaf = first.file_name().map(|n| n.to_os_string());
    let parent = first.parent().map(PathBuf::from);
    if let Some(p) = &parent {
        inotify
            .add_watch(
                p.as_path(),
                AddWatchFlags::IN_DELETE | AddWatchFlags::IN_ONLYDIR,
            )
            .map_err(|e| Error::sys(what(&format!("watch {}", p.display())), e))?;
    }
    inotify
        .add_watch(first.as_path(), AddWatchFlags::IN_DELETE_SELF)
        .map_err(|e| Error::sys(what(&format!("watch {}", first.display())), e))?;
    if !v2 {
        if let Some(m) = &src.memory {
            src.oom_fd = Some(register_oom(m).map_err(|e| e.context(what("OOM eventfd")))?);
        }
    }
    let mut last = src.read();
    let mut hello = json!({
        "v": 1, "event": "watching", "layout": cg.kind().name(),
        "oom": last.oom, "oom_kill": last.oom_kill, "memory_max": last.memory_max,
        "pids_max": last.pids_max,
    });
    if let Some(p) = last.populated {
        hello["populated"] = json!(p);
    }
    if !emit(out, &hello) {
        return Ok(());
    }
    loop {
        let mut fds = vec![PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        if let Some((efd, _)) = &src.oom_fd {
            fds.push(PollFd::new(efd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(what("poll"), e)),
        }
        let mut removed = false;
        match inotify.read_events() {
            Ok(events) => {
                removed = events.iter().any(|e| {
                    e.mask.contains(AddWatchFlags::IN_DELETE_SELF)
                        || (e.mask.contains(AddWatchFlags::IN_DELETE)
                            && e.name.is_some()
                            && e.name == leaf)
                });
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => return Err(Error::sys(what("read inotify events"), e)),
        }
        if let Some((efd, _)) = &src.oom_fd {
            match efd.read() {
                Ok(n) => {
                    src.v1_ooms += n;
                    settle_v1_oom(src.memory.as_deref(), last.oom_kill);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(Error::sys(what("read the OOM eventfd"), e)),
            }
        }
        let gone = removed || !first.exists();
        if gone {
            // The eventfd also fires on rmdir; that is not an OOM.
            src.v1_ooms = last.oom;
        }
        let now = if gone { at_removal(&last) } else { src.read() };
        for line in changes(&last, &now) {
            if !emit(out, &line) {
                return Ok(());
            }
        }
        last = now;
        if gone {
            emit(out, &json!({"v": 1, "event": "removed"}));
            return Ok(());
        }
    }
}

/// v1 signals the eventfd as the OOM starts, before the OOM killer has picked and killed a
/// process, and nothing signals the kill itself: wait (bounded, 1 s) for `oom_kill` in
/// `memory.oom_control` to pass `seen`, so the read that follows counts the kill. An OOM that
/// kills nothing (the victim was already exiting) just costs the bound.
fn settle_v1_oom(dir: Option<&std::path::Path>, seen: u64) {
    use std::time::{Duration, Instant};
    let Some(dir) = dir else { return };
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match files::read(&dir.join("memory.oom_control")) {
            Ok(text) if files::keyed(&text, "oom_kill").unwrap_or(0) <= seen => {
                std::thread::sleep(Duration::from_millis(1));
            }
            _ => return,
        }
    }
}

/// v1: an eventfd that counts OOMs of the memory cgroup `dir`, registered by writing
/// `"<eventfd> <oom_control fd>"` to its `cgroup.event_control`.
fn register_oom(dir: &std::path::Path) -> Result<(EventFd, OwnedFd)> {
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(|e| Error::sys("eventfd", e))?;
    let ctl = dir.join("memory.oom_control");
    let ctl_fd = open(&ctl, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("open {}", ctl.display()), e))?;
    files::write(
        &dir.join("cgroup.event_control"),
        &format!("{} {}", efd.as_raw_fd(), ctl_fd.as_raw_fd()),
    )?;
    Ok((efd, ctl_fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_report_increases_and_populated_flips() {
        let a = Counters {
            populated: Some(true),
            ..Default::default()
        };
        let b = Counters {
            oom: 1,
            oom_kill: 1,
            populated: Some(false),
            ..a
        };
        let lines: Vec<String> = changes(&a, &b).iter().map(Value::to_string).collect();
        assert_eq!(
            lines,
            [
                r#"{"count":1,"event":"oom","v":1}"#,
                r#"{"count":1,"event":"oom_kill","v":1}"#,
                r#"{"event":"populated","populated":false,"v":1}"#,
            ]
        );
        assert!(changes(&b, &b).is_empty());
    }

    /// A cgroup removed while the watch still saw a process in it was emptied first: the
    /// watch says so before `removed`. Where the layout cannot tell, it says nothing.
    #[test]
    fn a_removed_cgroup_was_emptied() {
        let full = Counters {
            oom_kill: 2,
            populated: Some(true),
            ..Default::default()
        };
        let lines: Vec<String> = changes(&full, &at_removal(&full))
            .iter()
            .map(Value::to_string)
            .collect();
        assert_eq!(lines, [r#"{"event":"populated","populated":false,"v":1}"#]);
        let v1 = Counters::default();
        assert!(changes(&v1, &at_removal(&v1)).is_empty());
    }
}
