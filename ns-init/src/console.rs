//! The container console: the pts handed in by the host side becomes `/dev/console`, the
//! command's fds 0-2 and its controlling terminal.
//!
//! The pty comes from the host's devpts (ns-exec or ns-pty allocate it before the container
//! exists and open the peer with `TIOCGPTPEER`); the peer reaches ns-init as an inherited fd
//! (`--console-fd N`, `NS_CONSOLE_FD`). Three steps, each at its place in ns-init's order:
//!
//! 1. [`Console::bind_dev_console`], after the container's `/dev` tmpfs exists and before the
//!    root switch: `/dev/console` is created in that fresh tmpfs without following anything and
//!    the pts is bind-mounted onto it through fds. The mount source cannot be the peer fd
//!    itself: it points into the *host's* mount namespace, and `open_tree` refuses mounts of
//!    another namespace (`EINVAL`). So the pts is opened in our copy of the host's `/dev/pts`,
//!    which the container cannot reach before the switch, and checked to be the very device of
//!    the peer (`st_dev` and `st_rdev`) before it is used; the container's `/dev/pts/N` is never
//!    looked up (CVE-2025-52565).
//! 2. [`Console::make_stdio`], any time after ns-init's `setsid`: the pts becomes fds 0, 1, 2
//!    and the session's controlling terminal (`TIOCSCTTY`). If the pts is already the
//!    controlling terminal of the host-side session (`ns-pty -- ns-exec ...` makes it ns-exec's),
//!    it is taken over (`TIOCSCTTY` with 1, which needs the `CAP_SYS_ADMIN` ns-init still has):
//!    `^C` and `SIGWINCH` must reach the container's foreground group, not ns-exec.
//! 3. [`Console::give_to`], after the user lookup and before the identity switch (it needs
//!    `CAP_CHOWN`): the pts is chowned to the container's user, keeping its group, and set to
//!    mode 0620, as runc does (its devpts has `mode=620,gid=5`; `fixStdioPermissions`), so a
//!    non-root command can use its own terminal.
//!
//! [`open_in_container`] is the other design (runc's, youki's): the pty is allocated in the
//! container's own devpts and the master sent out to the host side. Then `tty` inside prints
//! `/dev/pts/N`; with a host pty the pts has no name in the container but `/dev/console`
//! (the container's `/dev/pts` is its own instance), so `tty` prints `/dev/console`. Steps 1-3
//! are the same for both.
//!
//! See pty(7), ioctl_tty(2) (`TIOCSCTTY`), open_tree(2), move_mount(2).

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, major, minor, mknodat};
use nix::unistd::{Gid, Uid, fchown};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use common::mount_api::{attach, clone_tree};
use common::{Context, Error, Result};

/// The first major number of the pts devices (`UNIX98_PTY_SLAVE_MAJOR`); they use 8 majors.
const PTS_MAJOR_FIRST: u64 = 136;
/// The last major number of the pts devices.
const PTS_MAJOR_LAST: u64 = 143;

/// The mode of the console pts, as runc's devpts gives its ptys (`mode=620`): the owner reads
/// and writes, the tty group may write (`write`, `wall`).
pub const CONSOLE_MODE: u32 = 0o620;

/// The console: the pts peer ns-init was given.
#[derive(Debug)]
pub struct Console {
    fd: OwnedFd,
    st: FileStat,
}

/// The index N of a pts device number (`/dev/pts/N`), or `None` when `rdev` is no pts.
pub fn pts_index(rdev: u64) -> Option<u64> {
    let (maj, min) = (major(rdev), minor(rdev));
    (PTS_MAJOR_FIRST..=PTS_MAJOR_LAST)
        .contains(&maj)
        .then(|| (maj - PTS_MAJOR_FIRST) * 256 + min)
}

impl Console {
    /// Takes the inherited console fd; it must be a pts (a character device of the pts majors),
    /// so nothing else is ever made the container's terminal or chowned.
    pub fn new(fd: OwnedFd) -> Result<Console> {
        let st = fstat(&fd).ctx(|| "console: stat the console fd".into())?;
        let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
        if !is_chr || pts_index(st.st_rdev).is_none() {
            return Err(Error::msg(
                "console",
                "the console fd is not a pseudo-terminal (pts)",
            ));
        }
        Ok(Console { fd, st })
    }

    /// The console fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Binds the pts onto `/dev/console` of the root `root` (an `O_PATH` fd of the container's
    /// `/`, before the root switch). Call after the container's `/dev` tmpfs is mounted and
    /// before `pivot_root`, while our copy of the host's `/dev/pts` is still there.
    pub fn bind_dev_console(&self, root: BorrowedFd<'_>) -> Result<()> {
        let what = || "bind the console onto /dev/console".to_string();
        let tree = match clone_tree(self.fd.as_fd(), false) {
            Ok(tree) => tree,
            // The peer lives in another mount namespace (the usual case): find the same pts
            // in our copy of the host's /dev/pts.
            Err(Errno::EINVAL) => clone_tree(self.host_pts()?.as_fd(), false).ctx(what)?,
            Err(e) => return Err(Error::sys(what(), e)),
        };
        let target = console_target(root)?;
        attach(tree.as_fd(), target.as_fd()).ctx(what)
    }

    /// Opens the pts in this mount namespace's `/dev/pts` and checks that it is the console's
    /// device on the console's devpts.
    fn host_pts(&self) -> Result<OwnedFd> {
        let n = pts_index(self.st.st_rdev).unwrap_or(u64::MAX);
        let path = format!("/dev/pts/{n}");
        let what = || format!("console: open {path} (before the root switch)");
        let fd = nix::fcntl::open(
            path.as_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(what)?;
        let st = fstat(&fd).ctx(what)?;
        if (st.st_dev, st.st_rdev) != (self.st.st_dev, self.st.st_rdev) {
            return Err(Error::msg(
                what(),
                "it is not the console's device (another devpts instance?)",
            ));
        }
        Ok(fd)
    }

    /// Makes the pts fds 0, 1 and 2 and the controlling terminal of this process's session.
    /// Call after `setsid`.
    pub fn make_stdio(&self) -> Result<()> {
        for target in 0..=2 {
            dup_onto(self.fd.as_raw_fd(), target)
                .ctx(|| format!("console: make the console fd {target}"))?;
        }
        set_controlling(0).ctx(|| "console: make it the controlling terminal (TIOCSCTTY)".into())
    }

    /// Gives the pts to `uid` (its group stays) with mode [`CONSOLE_MODE`]. Call before the
    /// identity switch.
    pub fn give_to(&self, uid: u32) -> Result<()> {
        fchown(&self.fd, Some(Uid::from_raw(uid)), None::<Gid>)
            .ctx(|| format!("console: chown the console to uid {uid}"))?;
        fchmod(&self.fd, Mode::from_bits_truncate(CONSOLE_MODE))
            .ctx(|| format!("console: chmod the console to {CONSOLE_MODE:o}"))
    }
}

/// The alternative to a host pty (runc's and youki's choice): allocates the console in the
/// container's own devpts instance, below `root` (the container's `/`, before or after the
/// root switch, once `/dev/pts` is mounted). Returns the master, for the host side to relay
/// (it has to travel out, e.g. as `SCM_RIGHTS` on the sync socket), and the peer as a
/// [`Console`]. Inside, the pts is then `/dev/pts/N` of the container's own devpts, which is
/// what `tty` prints; with a host pty its only name inside is `/dev/console`.
///
/// `dev/pts/ptmx` is opened beneath the root without following any link and checked to be
/// the ptmx node (char 5:2) of a devpts, so an image cannot make us open something else; the
/// peer comes from `TIOCGPTPEER`, never from a path.
pub fn open_in_container(root: BorrowedFd<'_>) -> Result<(OwnedFd, Console)> {
    let what = || "console: open the container's /dev/pts/ptmx".to_string();
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let master = common::sys::openat2(
        root,
        c"dev/pts/ptmx",
        libc::O_RDWR | libc::O_NOCTTY,
        0,
        resolve,
    )
    .ctx(what)?;
    let st = fstat(&master).ctx(what)?;
    let fs = nix::sys::statfs::fstatfs(&master).ctx(what)?;
    if fs.filesystem_type() != nix::sys::statfs::DEVPTS_SUPER_MAGIC
        || st.st_rdev != nix::sys::stat::makedev(5, 2)
    {
        return Err(Error::msg(what(), "it is not the ptmx of a devpts"));
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which points at a live local.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })
        .ctx(|| "console: unlock the pts (TIOCSPTLCK)".into())?;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes its open flags as an integer and returns a new fd.
    let peer = Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })
        .ctx(|| "console: open the pts (TIOCGPTPEER)".into())?;
    // SAFETY: a successful TIOCGPTPEER returns a fresh fd owned by nobody else.
    let peer = unsafe { OwnedFd::from_raw_fd(peer) };
    Ok((master, Console::new(peer)?))
}

/// Creates (or finds) `/dev/console` under `root` as the target of the bind: the lookup of
/// `dev` refuses symlinks and stays beneath the root; `console` is made as an empty regular
/// file with `mknodat`, which opens nothing, and then opened without following a link. An
/// existing entry (a `device_nodes` console) is bound over, unless it is a symlink.
fn console_target(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let what = || "console: create /dev/console".to_string();
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let dev = common::sys::openat2(root, c"dev", libc::O_PATH | libc::O_DIRECTORY, 0, resolve)
        .ctx(what)?;
    match mknodat(
        &dev,
        "console",
        SFlag::S_IFREG,
        Mode::from_bits_truncate(0o666),
        0,
    ) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys(what(), e)),
    }
    let target = common::sys::openat2(
        dev.as_fd(),
        c"console",
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        resolve,
    )
    .ctx(what)?;
    let st = fstat(&target).ctx(what)?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        return Err(Error::msg(
            what(),
            "/dev/console exists and is neither a file nor a device",
        ));
    }
    Ok(target)
}

/// `dup3(fd, target, 0)`: a copy at `target` that survives `execve`.
fn dup_onto(fd: RawFd, target: RawFd) -> std::result::Result<(), Errno> {
    if fd == target {
        return Ok(());
    }
    // SAFETY: dup3 onto a stdio number, which this process means to replace.
    Errno::result(unsafe { libc::dup3(fd, target, 0) }).map(drop)
}

/// `ioctl(fd, TIOCSCTTY, 1)`: 1 takes the terminal over when another session has it as its
/// controlling terminal (the host side's, see the module doc); without one it is the plain call.
fn set_controlling(fd: RawFd) -> std::result::Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument; no memory is passed.
    Errno::result(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 1 as libc::c_int) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::makedev;

    #[test]
    fn pts_numbers_span_eight_majors() {
        assert_eq!(pts_index(makedev(136, 0)), Some(0));
        assert_eq!(pts_index(makedev(136, 255)), Some(255));
        assert_eq!(pts_index(makedev(137, 1)), Some(257));
        assert_eq!(pts_index(makedev(143, 255)), Some(2047));
        assert_eq!(pts_index(makedev(5, 1)), None);
        assert_eq!(pts_index(makedev(1, 3)), None);
        assert_eq!(pts_index(makedev(144, 0)), None);
    }

    /// No privileges needed: a pipe or /dev/null is never taken as the console.
    #[test]
    fn only_a_pts_is_a_console() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let e = Console::new(r).unwrap_err();
        assert!(e.to_string().contains("not a pseudo-terminal"), "{e}");
        let null = std::fs::File::open("/dev/null").unwrap();
        assert!(Console::new(null.into()).is_err());
    }

    /// A real pts (from /dev/ptmx, no privileges) is accepted.
    #[test]
    fn a_pts_is_a_console() {
        let (_master, peer) = open_pair();
        assert!(Console::new(peer).is_ok());
    }

    /// The pty pair, opened the way ns-exec does.
    fn open_pair() -> (OwnedFd, OwnedFd) {
        let master = nix::fcntl::open(
            "/dev/ptmx",
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK reads one int from a live local.
        let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
        assert_eq!(r, 0);
        // SAFETY: TIOCGPTPEER takes integer flags and returns a fresh fd.
        let peer = unsafe {
            libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        assert!(peer >= 0);
        // SAFETY: fresh fd from TIOCGPTPEER.
        (master, unsafe { OwnedFd::from_raw_fd(peer) })
    }

    /// Needs root; runs the three steps in a child of its own (this test binary again, in a
    /// new mount namespace and session), with the peer opened *before* the unshare, as ns-exec
    /// hands it over. The child's mounts die with its namespace; the parent removes the dir.
    #[test]
    fn console_steps_on_the_real_kernel() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (mount namespace, chown)");
            return;
        }
        let (master, peer) = open_pair();
        let peer_rdev = fstat(&peer).unwrap().st_rdev;
        let dir = std::env::temp_dir().join(format!("ns-init-console-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let peer_raw = peer.as_raw_fd();
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "console::tests::console_child",
            "--ignored",
            "--nocapture",
        ])
        .env("NS_CONSOLE_TEST_DIR", &dir)
        .env("NS_CONSOLE_TEST_RDEV", peer_rdev.to_string())
        .env("RUST_TEST_THREADS", "1");
        // SAFETY: between fork and exec: setsid, unshare and dup2 only.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                nix::unistd::setsid()?;
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                if libc::dup2(peer_raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        drop(peer);
        // What the child wrote on its new stdio (the pts) arrives at the master.
        let mut buf = [0u8; 4096];
        nix::fcntl::fcntl(
            &master,
            nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK | OFlag::O_RDWR),
        )
        .unwrap();
        let n = nix::unistd::read(&master, &mut buf).unwrap_or(0);
        std::fs::remove_dir(&dir).unwrap();
        let on_pts = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(out.status.success(), "child: {out:?}; on its pts: {on_pts}");
        assert!(
            String::from_utf8_lossy(&buf[..n]).contains("console-ok"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }

    /// The child half of [`console_steps_on_the_real_kernel`]; does nothing on its own.
    #[test]
    #[ignore = "run by console_steps_on_the_real_kernel"]
    fn console_child() {
        let (Ok(dir), Ok(rdev)) = (
            std::env::var("NS_CONSOLE_TEST_DIR"),
            std::env::var("NS_CONSOLE_TEST_RDEV"),
        ) else {
            return;
        };
        use nix::mount::{MsFlags, mount};
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .unwrap();
        mount(
            Some("tmpfs"),
            dir.as_str(),
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        std::fs::create_dir(format!("{dir}/dev")).unwrap();
        let root = nix::fcntl::open(
            dir.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        // SAFETY: fd 3 was placed by the parent for this process to own.
        let fd = unsafe { OwnedFd::from_raw_fd(3) };
        let console = Console::new(fd).unwrap();
        console.bind_dev_console(root.as_fd()).unwrap();
        let st = nix::sys::stat::stat(format!("{dir}/dev/console").as_str()).unwrap();
        assert_eq!(st.st_rdev, rdev.parse::<u64>().unwrap());
        console.give_to(1000).unwrap();
        let st = fstat(console.fd()).unwrap();
        assert_eq!((st.st_uid, st.st_mode & 0o7777), (1000, CONSOLE_MODE));
        console.make_stdio().unwrap();
        // SAFETY: isatty only inspects the fd.
        assert_eq!(unsafe { libc::isatty(0) }, 1);
        // The pts is our session's controlling terminal now: /dev/tty opens, and the pts
        // names our session.
        std::fs::File::open("/dev/tty").unwrap();
        let sid = nix::sys::termios::tcgetsid(console.fd()).unwrap();
        assert_eq!(sid, nix::unistd::getpid());
        // A symlinked /dev is refused.
        std::fs::remove_dir(format!("{dir}/dev")).ok();
        nix::mount::umount2(
            format!("{dir}/dev/console").as_str(),
            nix::mount::MntFlags::MNT_DETACH,
        )
        .unwrap();
        std::fs::remove_file(format!("{dir}/dev/console")).unwrap();
        std::fs::remove_dir(format!("{dir}/dev")).unwrap();
        std::os::unix::fs::symlink("/tmp", format!("{dir}/dev")).unwrap();
        assert!(console.bind_dev_console(root.as_fd()).is_err());
        // The container-devpts alternative: a pts of a devpts mounted below the root, bound
        // straight from the peer (same mount namespace), named /dev/pts/N inside.
        std::fs::remove_file(format!("{dir}/dev")).unwrap();
        std::fs::create_dir_all(format!("{dir}/dev/pts")).unwrap();
        mount(
            Some("devpts"),
            format!("{dir}/dev/pts").as_str(),
            Some("devpts"),
            MsFlags::empty(),
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )
        .unwrap();
        let (inner_master, inner) = open_in_container(root.as_fd()).unwrap();
        let inner_st = fstat(inner.fd()).unwrap();
        let index = pts_index(inner_st.st_rdev).unwrap();
        let named = nix::sys::stat::stat(format!("{dir}/dev/pts/{index}").as_str()).unwrap();
        assert_eq!(
            (named.st_dev, named.st_rdev),
            (inner_st.st_dev, inner_st.st_rdev)
        );
        inner.bind_dev_console(root.as_fd()).unwrap();
        let st = nix::sys::stat::stat(format!("{dir}/dev/console").as_str()).unwrap();
        assert_eq!(st.st_rdev, inner_st.st_rdev);
        drop(inner_master);
        use std::io::Write;
        let mut out = std::fs::File::from(nix::unistd::dup(std::io::stdout().as_fd()).unwrap());
        out.write_all(b"console-ok\n").unwrap();
    }
}
