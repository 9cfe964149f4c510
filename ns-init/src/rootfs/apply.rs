//! Carries out a rootfs plan with system calls, one step at a time.
//!
//! Mounts use the new mount API (see [`super::sys`]) rather than `mount(2)` on
//! `/proc/self/fd/N`, for three reasons:
//!
//! - a target fd works as it is, while the magic-link path needs a trusted `/proc` we have not
//!   mounted yet (before the switch it is whatever the parent left in our namespace);
//! - a bind is made read-only while still detached, so it never appears writable, and
//!   `mount_setattr(AT_RECURSIVE)` also covers its submounts, which a second `MS_REMOUNT`
//!   pass never did;
//! - `mount_setattr` changes only the bits it names, so a read-only remount keeps the locked
//!   `nosuid`/`nodev` flags of a mount without reading them first with `statvfs` (dropping one
//!   fails with `EPERM`).
//!
//! This needs Linux 5.12. Bind sources are opened before any other step, while the caller's
//! view of the host is untouched; every container path is resolved by [`super::resolve`].

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag, makedev, mknodat, umask};
use nix::sys::statfs::{FsType, PROC_SUPER_MAGIC, SYSFS_MAGIC, fstatfs};
use nix::unistd::{Gid, Uid, chdir, chroot, fchdir, fchownat, pivot_root, symlinkat};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::plan::{MountFlag, Propagation, Step, Symlinks};
use super::resolve::{self, refused};
use crate::console::Console;
use common::config::DeviceType;
use common::mount_api as sys;
use common::{Context, Error, Result};

/// A bind source, opened before anything else.
struct Source {
    fd: OwnedFd,
    is_dir: bool,
}

/// What the steps share: the root (an `O_PATH` fd of the container's `/`, on the host side
/// until the switch), the bind sources, and the verified null device once masks need it.
struct State<'c> {
    sources: Vec<Option<Source>>,
    root: Option<OwnedFd>,
    null: Option<OwnedFd>,
    /// The first masked directory's empty read-only tmpfs, once attached: every other masked
    /// directory gets a bind of it instead of a superblock of its own.
    empty: Option<OwnedFd>,
    /// The directory the last device node or symlink went into (`/dev`, mostly), reused by the
    /// next one in a run of such steps: no step between them mounts anything.
    parent: Option<Parent>,
    console: Option<&'c Console>,
    /// Where [`Step::JoinNetns`] gets the network namespace from.
    netns: &'c mut dyn FnMut() -> Result<OwnedFd>,
}

/// A directory device nodes and symlinks are made in.
struct Parent {
    /// Its container path.
    path: String,
    fd: OwnedFd,
    /// The owner a node made in it gets: our effective uid, and its gid when it is set-group-ID,
    /// else ours. A node asked for with that owner needs no `chown`.
    new_owner: (u32, u32),
}

/// Applies `steps` in order; `netns` gives a [`Step::JoinNetns`] the network namespace to
/// join (ns-exec's, from the sync socket). On failure the umask is put back; mounts already
/// made stay, which is harmless: they live in the container's own mount namespace, which dies
/// with it.
pub fn apply(
    steps: &[Step],
    console: Option<&Console>,
    netns: &mut dyn FnMut() -> Result<OwnedFd>,
) -> Result<()> {
    let saved = umask(Mode::empty());
    umask(saved);
    let result = apply_all(steps, console, netns);
    if result.is_err() {
        umask(saved);
    }
    result
}

fn apply_all(
    steps: &[Step],
    console: Option<&Console>,
    netns: &mut dyn FnMut() -> Result<OwnedFd>,
) -> Result<()> {
    let mut state = State {
        sources: open_sources(steps)?,
        root: None,
        null: None,
        empty: None,
        parent: None,
        console,
        netns,
    };
    for (i, step) in steps.iter().enumerate() {
        if common::trace::enabled() {
            // The step's name and fields as the plan prints them (`ns-init --plan`).
            let action = common::plan::Action::tagged(crate::plan::STAGE, step);
            common::trace::action(&action, || state.step(i, step))?;
        } else {
            state.step(i, step)?;
        }
    }
    Ok(())
}

/// Opens every bind source on the host, by step index.
fn open_sources(steps: &[Step]) -> Result<Vec<Option<Source>>> {
    steps
        .iter()
        .map(|step| {
            let Step::Bind { source, target, .. } = step else {
                return Ok(None);
            };
            let what = || format!("bind mount {target}: {}", source.display());
            let fd = nix::fcntl::open(
                source.as_path(),
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(what)?;
            let is_dir = resolve::is(&resolve::stat(fd.as_fd(), &what())?, SFlag::S_IFDIR);
            Ok(Some(Source { fd, is_dir }))
        })
        .collect()
}

/// The `MOUNT_ATTR_*` bits of `flags`.
fn attrs(flags: &[MountFlag]) -> u64 {
    flags
        .iter()
        .map(|f| match f {
            MountFlag::Rdonly => libc::MOUNT_ATTR_RDONLY,
            MountFlag::Nosuid => libc::MOUNT_ATTR_NOSUID,
            MountFlag::Nodev => libc::MOUNT_ATTR_NODEV,
            MountFlag::Noexec => libc::MOUNT_ATTR_NOEXEC,
            MountFlag::Strictatime => libc::MOUNT_ATTR_STRICTATIME,
        })
        .fold(0, |a, b| a | b)
}

/// Opens this process's `/` (after the root switch, the container's).
fn open_slash() -> Result<OwnedFd> {
    nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open / after the root switch".to_string())
}

impl State<'_> {
    fn root(&self) -> Result<BorrowedFd<'_>> {
        self.root
            .as_ref()
            .map(|fd| fd.as_fd())
            .ok_or_else(|| Error::msg("apply the rootfs plan", "no step opened the rootfs"))
    }

    /// The parent directory of `path` and its last component, resolved beneath the root once
    /// per run of device nodes and symlinks (see `parent`).
    fn parent_of<'p>(&mut self, path: &'p str) -> Result<(&Parent, &'p str)> {
        let (dir, name) = path
            .trim_end_matches('/')
            .rsplit_once('/')
            .ok_or_else(|| Error::msg(format!("create {path}"), "not a file path"))?;
        let dir = if dir.is_empty() { "/" } else { dir };
        if self.parent.as_ref().is_none_or(|p| p.path != dir) {
            let (fd, _) = resolve::parent(self.root()?, path)?;
            let st = resolve::stat(fd.as_fd(), dir)?;
            let gid = if st.st_mode & libc::S_ISGID != 0 {
                st.st_gid
            } else {
                nix::unistd::getegid().as_raw()
            };
            self.parent = Some(Parent {
                path: dir.to_string(),
                fd,
                new_owner: (nix::unistd::geteuid().as_raw(), gid),
            });
        }
        Ok((self.parent.as_ref().expect("just set"), name))
    }

    fn step(&mut self, index: usize, step: &Step) -> Result<()> {
        if !matches!(step, Step::DeviceNode { .. } | Step::Symlink { .. }) {
            // Anything else may mount over the cached directory.
            self.parent = None;
        }
        match step {
            Step::Umask { mask } => {
                umask(Mode::from_bits_truncate(*mask));
                Ok(())
            }
            Step::RootPropagation { propagation } => root_propagation(*propagation),
            Step::BindRootfs { rootfs } => {
                self.root = Some(bind_rootfs(rootfs)?);
                Ok(())
            }
            Step::Mount {
                fstype,
                target,
                flags,
                data,
                symlinks,
            } => mount(self.root()?, fstype, target, flags, data, *symlinks),
            Step::DeviceNode {
                path,
                kind,
                major,
                minor,
                mode,
                uid,
                gid,
            } => {
                let (parent, name) = self.parent_of(path)?;
                let dev = makedev(*major, *minor);
                let owner = (*uid, *gid);
                let chown = parent.new_owner != owner;
                let made = device_node(
                    parent.fd.as_fd(),
                    name,
                    path,
                    *kind,
                    dev,
                    *mode,
                    owner,
                    chown,
                )?;
                if made {
                    return Ok(());
                }
                // No CAP_MKNOD in the initial user namespace: reuse the host's node, as runc
                // does.
                bind_host_device(self.root()?, path, sflag(*kind), dev)
            }
            Step::Symlink {
                path,
                target,
                only_if_exists,
            } => {
                if let Some(cond) = only_if_exists {
                    if resolve::existing(self.root()?, cond, Symlinks::Refuse)?.is_none() {
                        return Ok(());
                    }
                }
                let (parent, name) = self.parent_of(path)?;
                symlinkat(target.as_str(), parent.fd.as_fd(), name)
                    .ctx(|| format!("symlink {path} -> {target}"))
            }
            Step::Bind {
                source,
                target,
                readonly,
                private,
            } => {
                let src = self
                    .sources
                    .get_mut(index)
                    .and_then(Option::take)
                    .ok_or_else(|| {
                        Error::msg(format!("bind mount {target}"), "the source was not opened")
                    })?;
                bind(self.root()?, &src, source, target, *readonly, *private)
            }
            Step::Console => match self.console {
                Some(console) => console.bind_dev_console(self.root()?),
                None => Err(Error::msg(
                    "bind /dev/console",
                    "the config asks for a terminal (tty), but none was handed in \
                     (--console-fd, NS_CONSOLE_FD)",
                )),
            },
            Step::PivotRoot => {
                pivot(self.root()?)?;
                self.root = Some(open_slash()?);
                Ok(())
            }
            Step::MoveRoot => {
                move_root(self.root()?)?;
                self.root = Some(open_slash()?);
                Ok(())
            }
            Step::JoinNetns => {
                let netns = (self.netns)()?;
                // setns with CLONE_NEWNET refuses an fd that is not a network namespace.
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .ctx(|| "join the network namespace ns-exec made".to_string())
            }
            Step::ReadonlyRoot => sys::set_attr(self.root()?, false, libc::MOUNT_ATTR_RDONLY, 0)
                .ctx(|| "remount / read-only".to_string()),
            Step::MaskPath { path } => self.mask(path),
            Step::ReadonlyPath { path } => readonly_path(self.root()?, path),
        }
    }

    /// Hides `path`: an empty read-only tmpfs over a directory, the null device over anything
    /// else. A mask that cannot be applied is an error, never a warning (systemd#40501).
    fn mask(&mut self, path: &str) -> Result<()> {
        let what = || format!("mask {path}");
        let Some((target, st)) = resolve::existing_with_stat(self.root()?, path)? else {
            return Ok(());
        };
        check_fs(target.as_fd(), path, &what())?;
        if !resolve::is(&st, SFlag::S_IFDIR) {
            let tree = sys::clone_tree(self.null()?, false).ctx(what)?;
            return sys::attach(tree.as_fd(), target.as_fd()).ctx(what);
        }
        if let Some(empty) = &self.empty {
            // A bind of the first mask's tmpfs (attached, so in this mount namespace and
            // clonable on every kernel), read-only like it.
            let tree = sys::clone_tree(empty.as_fd(), false).ctx(what)?;
            return sys::attach(tree.as_fd(), target.as_fd()).ctx(what);
        }
        let flags = libc::MOUNT_ATTR_RDONLY
            | libc::MOUNT_ATTR_NOSUID
            | libc::MOUNT_ATTR_NODEV
            | libc::MOUNT_ATTR_NOEXEC;
        let tree = sys::new_fs("tmpfs", "", flags).map_err(|e| fs_error(what(), e))?;
        sys::attach(tree.as_fd(), target.as_fd()).ctx(what)?;
        self.empty = Some(tree);
        Ok(())
    }

    /// The container's `/dev/null`, opened once and checked to be char 1:3: binding whatever
    /// is there unchecked would let an image put a procfs file in its place and have us bind
    /// *that* over the masked paths, writable (CVE-2025-31133).
    fn null(&mut self) -> Result<BorrowedFd<'_>> {
        let fd = match self.null.take() {
            Some(fd) => fd,
            None => verified_null(self.root()?)?,
        };
        let fd: &OwnedFd = self.null.insert(fd);
        Ok(fd.as_fd())
    }
}

/// Opens the container's `/dev/null` and checks that it is char 1:3.
fn verified_null(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let Some((fd, st)) = resolve::existing_with_stat(root, "/dev/null")? else {
        return Err(refused(
            "/dev/null is missing in the container; cannot mask with it".to_string(),
        ));
    };
    if !resolve::is(&st, SFlag::S_IFCHR) || st.st_rdev != makedev(1, 3) {
        return Err(refused(
            "/dev/null in the container is not the null device (char 1:3); cannot mask with it"
                .to_string(),
        ));
    }
    Ok(fd)
}

/// An error of [`sys::new_fs`], with the filesystem's own message when it gave one.
fn fs_error(what: String, e: sys::FsError) -> Error {
    let mut err = Error::sys(what, e.errno);
    err.detail = e.log;
    err
}

fn root_propagation(propagation: Propagation) -> Result<()> {
    let (flag, name) = match propagation {
        Propagation::Private => (MsFlags::MS_PRIVATE, "private"),
        Propagation::Slave => (MsFlags::MS_SLAVE, "slave"),
    };
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | flag,
        None::<&str>,
    )
    .ctx(|| format!("make / {name} (recursively)"))
}

/// Binds the rootfs onto itself and returns the new mount's root, which every later step
/// resolves against. The fd from `open_tree` is that root once attached; the fd of the
/// directory underneath is dropped, so nothing later can land under the bind by mistake.
fn bind_rootfs(rootfs: &Path) -> Result<OwnedFd> {
    let what = || format!("bind the rootfs {} onto itself", rootfs.display());
    let dir = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open the rootfs {}", rootfs.display()))?;
    let tree = sys::clone_tree(dir.as_fd(), true).ctx(what)?;
    sys::attach(tree.as_fd(), dir.as_fd()).ctx(what)?;
    Ok(tree)
}

fn mount(
    root: BorrowedFd<'_>,
    fstype: &str,
    target: &str,
    flags: &[MountFlag],
    data: &str,
    symlinks: Symlinks,
) -> Result<()> {
    let what = || format!("mount {fstype} on {target}");
    let dir = resolve::dir(root, target, symlinks)?;
    let fs = sys::new_fs(fstype, data, attrs(flags)).map_err(|e| fs_error(what(), e))?;
    sys::attach(fs.as_fd(), dir.as_fd()).ctx(what)
}

/// The file type bits of a device node of `kind`.
fn sflag(kind: DeviceType) -> SFlag {
    match kind {
        DeviceType::Char => SFlag::S_IFCHR,
        DeviceType::Block => SFlag::S_IFBLK,
    }
}

/// Makes the device node `name` in `parent` (the container's `path`), owned by `owner`
/// (`chown`: the node is not made with that owner); `false` when mknod is not permitted here
/// (the caller binds the host's node instead).
#[allow(clippy::too_many_arguments)]
fn device_node(
    parent: BorrowedFd<'_>,
    name: &str,
    path: &str,
    kind: DeviceType,
    dev: libc::dev_t,
    mode: u32,
    (uid, gid): (u32, u32),
    chown: bool,
) -> Result<bool> {
    match mknodat(
        parent,
        name,
        sflag(kind),
        Mode::from_bits_truncate(mode),
        dev,
    ) {
        Ok(()) => {}
        Err(Errno::EPERM) => return Ok(false),
        Err(e) => return Err(Error::sys(format!("mknod {path}"), e)),
    }
    if !chown {
        return Ok(true);
    }
    fchownat(
        parent,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {path} to {uid}:{gid}"))?;
    Ok(true)
}

/// Binds the host's node at `path` onto an empty file at `path` in the container, after
/// checking that the host's node is the same device (its path is the host's business, but
/// what we expose must be what the plan says).
fn bind_host_device(root: BorrowedFd<'_>, path: &str, kind: SFlag, dev: libc::dev_t) -> Result<()> {
    let what = || format!("bind the host's {path} (mknod is not permitted)");
    let host = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(what)?;
    let st = resolve::stat(host.as_fd(), path)?;
    if !resolve::is(&st, kind) || st.st_rdev != dev {
        return Err(Error::msg(what(), "the host's node is a different device"));
    }
    let target = resolve::file(root, path, Symlinks::Refuse)?;
    let tree = sys::clone_tree(host.as_fd(), false).ctx(what)?;
    sys::attach(tree.as_fd(), target.as_fd()).ctx(what)
}

fn bind(
    root: BorrowedFd<'_>,
    src: &Source,
    source: &Path,
    target: &str,
    readonly: bool,
    private: bool,
) -> Result<()> {
    let what = || format!("bind mount {target}: {}", source.display());
    let tree = sys::clone_tree(src.fd.as_fd(), true).ctx(what)?;
    if readonly {
        sys::set_attr(tree.as_fd(), true, libc::MOUNT_ATTR_RDONLY, 0).ctx(what)?;
    }
    let dest = if src.is_dir {
        resolve::dir(root, target, Symlinks::InRoot)?
    } else {
        resolve::file(root, target, Symlinks::InRoot)?
    };
    sys::attach(tree.as_fd(), dest.as_fd()).ctx(what)?;
    if private {
        sys::set_attr(tree.as_fd(), true, 0, libc::MS_PRIVATE).ctx(what)?;
    }
    Ok(())
}

/// `pivot_root(".", ".")` from inside the new root: the old root ends up stacked on top of
/// the new one, and detaching it leaves only the container's tree, with no temporary
/// directory to create in (a possibly read-only) rootfs or to remove afterwards.
fn pivot(root: BorrowedFd<'_>) -> Result<()> {
    fchdir(root).ctx(|| "chdir into the rootfs".to_string())?;
    pivot_root(".", ".").ctx(|| "pivot_root into the rootfs".to_string())?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach the old root".to_string())?;
    chdir("/").ctx(|| "chdir to / in the container".to_string())
}

/// Moves the rootfs mount onto `/` and `chroot`s into it. The old root stays underneath,
/// reachable to anything that can escape a chroot (`CAP_SYS_CHROOT`), which is why this is
/// only for a rootfs on a ramdisk, where `pivot_root` is refused.
fn move_root(root: BorrowedFd<'_>) -> Result<()> {
    fchdir(root).ctx(|| "chdir into the rootfs".to_string())?;
    sys::move_onto_slash(root).ctx(|| "move the rootfs onto /".to_string())?;
    chroot(".").ctx(|| "chroot into the rootfs".to_string())?;
    chdir("/").ctx(|| "chdir to / in the container".to_string())
}

/// Checks that a target under `/proc` or `/sys` is on the procfs or sysfs we mounted, so a
/// mask or read-only bind can only ever land where the list says.
fn check_fs(fd: BorrowedFd<'_>, path: &str, what: &str) -> Result<()> {
    let (want, name): (FsType, &str) = if path.starts_with("/proc/") {
        (PROC_SUPER_MAGIC, "procfs")
    } else if path.starts_with("/sys/") {
        (SYSFS_MAGIC, "sysfs")
    } else {
        return Ok(());
    };
    let found = fstatfs(fd)
        .ctx(|| format!("statfs {path}"))?
        .filesystem_type();
    if found != want {
        return Err(Error::msg(
            what,
            format!("{path} is not on the container's {name}"),
        ));
    }
    Ok(())
}

/// Binds `path` onto itself read-only (recursively).
fn readonly_path(root: BorrowedFd<'_>, path: &str) -> Result<()> {
    let what = || format!("make {path} read-only");
    let Some(target) = resolve::existing(root, path, Symlinks::Refuse)? else {
        return Ok(());
    };
    check_fs(target.as_fd(), path, &what())?;
    let tree = sys::clone_tree(target.as_fd(), true).ctx(what)?;
    sys::set_attr(tree.as_fd(), true, libc::MOUNT_ATTR_RDONLY, 0).ctx(what)?;
    sys::attach(tree.as_fd(), target.as_fd()).ctx(what)
}
