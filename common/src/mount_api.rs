//! The new mount API (open_tree(2), move_mount(2), fsopen(2), fsconfig(2), fsmount(2),
//! mount_setattr(2)), each behind a small safe function.
//!
//! `nix` 0.30 wraps none of these. ns-init mounts the container's filesystems with them, and
//! ns-exec makes the read-only view of ns-init it executes with `--init`
//! ([`protected_program`]). All of them
//! need Linux 5.12 (`mount_setattr`); older kernels get `ENOSYS`, which the caller reports as
//! it is.
//!
//! Every mount object here is an fd: a detached tree from [`clone_tree`] or [`new_fs`] is
//! configured while nobody can see it and then attached in one step by [`attach`] onto a
//! target that is itself an fd, so no path is ever resolved twice.

use nix::errno::Errno;
use nix::libc;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The kernel's `struct mount_attr` (mount_setattr(2)), declared here because libc's is not
/// guaranteed constructible across versions.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Takes ownership of the fd a successful syscall returned.
fn adopt(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = Errno::result(ret)?;
    // SAFETY: every caller passes the return value of a syscall that, on success, returns a
    // fresh fd owned by nobody else; errors were turned into Err above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `open_tree(fd, "", OPEN_TREE_CLONE)`: a detached copy of the mount at `fd` (a bind mount
/// not yet attached anywhere); with `recursive`, submounts come along (`MS_REC`).
pub fn clone_tree(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: an empty C string with AT_EMPTY_PATH names the file `fd` refers to; no other
    // pointers are passed.
    adopt(unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) })
}

/// `move_mount(tree, "", target, "", F_EMPTY_PATH|T_EMPTY_PATH)`: attaches the mount `tree`
/// refers to on top of whatever `target` (an `O_PATH` fd) refers to.
pub fn attach(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both paths are empty C strings, which with the EMPTY_PATH flags name the fds
    // themselves.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// `move_mount(tree, "", AT_FDCWD, "/", F_EMPTY_PATH)`: moves the mount `tree` refers to onto
/// this process's `/` (the `MS_MOVE` half of the no-`pivot_root` root switch).
pub fn move_onto_slash(tree: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: valid C strings; the empty source path with F_EMPTY_PATH names `tree` itself.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c"/".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH)`: sets the `MOUNT_ATTR_*` bits in `set` on the mount
/// `fd` refers to (every mount below it too with `recursive`), and its propagation when
/// `propagation` is not 0 (`MS_PRIVATE`, `MS_SLAVE`, ...). Bits not named are left as they
/// are, so locked flags (nosuid, nodev) are kept without reading them first.
pub fn set_attr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    propagation: u64,
) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `attr` is a valid mount_attr of the size passed and outlives the call; the empty
    // path with AT_EMPTY_PATH names `fd` itself.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// A read-only view of the file `file` (an `O_PATH` fd): a detached bind mount of it alone,
/// made read-only, nosuid and nodev before anyone can see it, and attached nowhere, so it never
/// appears in any mount table and nothing propagates. Executing it leaves `/proc/PID/exe`
/// pointing into a read-only mount: a process that grabs that link can never reopen it for
/// writing (`EROFS`) and overwrite the host's file (CVE-2019-5736), and no copy of the file is
/// made. The mount goes away with its last user.
pub fn readonly_file(file: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let tree = clone_tree(file, false)?;
    let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    set_attr(tree.as_fd(), false, attrs, 0)?;
    Ok(tree)
}

/// Why [`new_fs`] failed: the errno, and the kernel's own message from the filesystem
/// context's log when it wrote one (`devpts: Unsupported parameter 'x'`).
#[derive(Debug)]
pub struct FsError {
    /// The error number.
    pub errno: Errno,
    /// The message the filesystem logged, if any.
    pub log: Option<String>,
}

/// The largest program [`protected_program`] copies into a sealed memfd rather than viewing
/// read-only: ns-dmz (a few KiB) is copied, ns-init (megabytes) viewed.
pub const COPY_AT_MOST: u64 = 256 * 1024;

/// The program at `path` (`name` in messages), opened so that a process running it can never
/// write the host's file through `/proc/PID/exe` (CVE-2019-5736), for
/// `execveat(fd, "", ..., AT_EMPTY_PATH)`.
///
/// A small program ([`COPY_AT_MOST`]) is copied into a sealed in-memory file: a few system
/// calls, and nothing to undo. A read-only view ([`readonly_file`]) would cost more where it
/// matters: the detached mount is dissolved when the last process running it is gone, and that
/// waits for an expedited RCU grace period (tens to hundreds of microseconds on a virtual
/// machine, in the exec of the command that replaces ns-dmz). A larger program gets the view,
/// which copies nothing; where the kernel refuses one, the copy.
pub fn protected_program(path: &std::path::Path, name: &str) -> crate::Result<OwnedFd> {
    use crate::Context;
    let file = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {name} {}", path.display()))?;
    let size = nix::sys::stat::fstat(&file)
        .ctx(|| format!("stat {name} {}", path.display()))?
        .st_size;
    let small = u64::try_from(size).is_ok_and(|size| size <= COPY_AT_MOST);
    if !small {
        match readonly_file(file.as_fd()) {
            Ok(view) => return Ok(view),
            Err(e) => {
                crate::ns_log!("no read-only view of {name} ({e}): copying it into a sealed memfd")
            }
        }
    }
    let memfd_name = CString::new(name).unwrap_or_default();
    // From the fd opened above, so the copy is of the file that was checked, even if the path
    // has been replaced since.
    match crate::sys::sealed_memfd(&memfd_name, crate::sys::Contents::File(file.as_fd()), true) {
        Ok(copy) => Ok(copy),
        // No executable memfd here (vm.memfd_noexec=2): the view, after all.
        Err(e) if small => readonly_file(file.as_fd()).map_err(|view_err| {
            crate::Error::sys(
                format!(
                    "copy {name} {} into a sealed memfd ({e}), or view it read-only",
                    path.display()
                ),
                view_err,
            )
        }),
        Err(e) => Err(crate::Error::sys(
            format!("copy {name} {} into a sealed memfd", path.display()),
            e,
        )),
    }
}

/// ns-dmz beside the running program (a build tree's `target/*/`, an installation's
/// `libexec/ns-tools/`), protected ([`protected_program`]); `None` when there is none, or when
/// the path `/proc/self/exe` shows is not the running file itself (ns-exec's protected
/// ns-init runs from a view whose path names no directory, or from a memfd copy, whose
/// `/memfd:ns-init (deleted)` would otherwise point at `/ns-dmz`).
pub fn dmz_beside_self() -> crate::Result<Option<OwnedFd>> {
    use std::os::unix::fs::MetadataExt;
    let Ok(exe) = std::env::current_exe() else {
        return Ok(None);
    };
    let same_file = match (std::fs::metadata(&exe), std::fs::metadata("/proc/self/exe")) {
        (Ok(a), Ok(b)) => a.is_file() && a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    let Some(dir) = exe.parent().filter(|d| same_file && d.is_absolute()) else {
        return Ok(None);
    };
    let dmz = dir.join("ns-dmz");
    if nix::unistd::access(&dmz, nix::unistd::AccessFlags::X_OK).is_err() {
        return Ok(None);
    }
    protected_program(&dmz, "ns-dmz").map(Some)
}

/// A new, detached instance of filesystem `fstype` (`fsopen`, one `fsconfig` per option of
/// `data`, `fsmount`), with the `MOUNT_ATTR_*` bits `attrs`.
///
/// `data` is the mount(8) option string: `key=value` becomes `FSCONFIG_SET_STRING`, a bare
/// `key` becomes `FSCONFIG_SET_FLAG`. Values cannot contain commas (no SELinux contexts here).
pub fn new_fs(fstype: &str, data: &str, attrs: u64) -> Result<OwnedFd, FsError> {
    let plain = |errno| FsError { errno, log: None };
    let fstype = CString::new(fstype).map_err(|_| plain(Errno::EINVAL))?;
    // SAFETY: `fstype` is a valid C string; fsopen returns a new fd on success.
    let ctx =
        adopt(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })
            .map_err(plain)?;
    let with_log = |errno| FsError {
        errno,
        log: read_log(ctx.as_fd()),
    };
    for option in data.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        let key = CString::new(key).map_err(|_| plain(Errno::EINVAL))?;
        let value = value
            .map(CString::new)
            .transpose()
            .map_err(|_| plain(Errno::EINVAL))?;
        let (cmd, value_ptr) = match &value {
            Some(v) => (libc::FSCONFIG_SET_STRING, v.as_ptr()),
            None => (libc::FSCONFIG_SET_FLAG, std::ptr::null()),
        };
        // SAFETY: `key` and `value` (or NULL for a flag) are valid C strings that outlive the
        // call; aux is 0 for both commands.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                ctx.as_raw_fd(),
                cmd,
                key.as_ptr(),
                value_ptr,
                0,
            )
        };
        Errno::result(ret).map_err(with_log)?;
    }
    // SAFETY: FSCONFIG_CMD_CREATE takes no key, value or aux.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map_err(with_log)?;
    // SAFETY: plain syscall on our own context fd; returns a new mount fd on success.
    adopt(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            ctx.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs,
        )
    })
    .map_err(with_log)
}

/// The messages a filesystem context logged (one `e `/`w `/`i ` line per read), joined; `None`
/// when there are none.
fn read_log(ctx: BorrowedFd<'_>) -> Option<String> {
    let mut lines = Vec::new();
    let mut buf = [0u8; 512];
    // A context keeps at most 8 messages; the bound keeps a misbehaving kernel from looping us.
    for _ in 0..8 {
        // SAFETY: reading into a buffer of the length passed, from our own open fd.
        let n = unsafe { libc::read(ctx.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf[..n as usize]);
        let text = text.trim_end();
        lines.push(text.get(2..).unwrap_or(text).to_string());
    }
    (!lines.is_empty()).then(|| lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root, but touches nothing: the filesystem is never attached and goes away with
    /// its fd.
    #[test]
    fn new_fs_reports_the_filesystems_own_message() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: fsopen needs CAP_SYS_ADMIN");
            return;
        }
        assert!(new_fs("tmpfs", "mode=755,size=1m", libc::MOUNT_ATTR_NOSUID).is_ok());
        let e = new_fs("tmpfs", "nosuchoption=1", 0).unwrap_err();
        assert_eq!(e.errno, Errno::EINVAL);
        let log = e.log.unwrap_or_default();
        assert!(log.contains("nosuchoption"), "{log:?}");
        assert_eq!(new_fs("nosuchfs", "", 0).unwrap_err().errno, Errno::ENODEV);
    }

    /// A small program is copied into a sealed memfd (nothing can write it, grow or shrink it),
    /// a large one viewed read-only (a write through `/proc/self/fd` is `EROFS`); both are the
    /// file's bytes. Needs root for the view, and touches nothing: the view is attached nowhere.
    #[test]
    fn small_programs_are_copied_and_large_ones_viewed_read_only() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: open_tree needs CAP_SYS_ADMIN");
            return;
        }
        let dir = std::env::temp_dir().join(format!("ns-protected-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let reopen = |fd: &OwnedFd, write: bool| {
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        };
        for (name, size) in [("small", 3000usize), ("large", COPY_AT_MOST as usize + 1)] {
            let path = dir.join(name);
            let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &bytes).unwrap();
            let fd = protected_program(&path, name).unwrap();
            assert_eq!(
                std::fs::read(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap(),
                bytes
            );
            if name == "small" {
                // SAFETY: fcntl on our own open fd.
                let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
                let want = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK;
                assert_eq!(seals & want, want, "seals {seals:#x}");
                let mut w = reopen(&fd, true).unwrap();
                let err = std::io::Write::write_all(&mut w, b"x").unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
            } else {
                let err = reopen(&fd, true).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
