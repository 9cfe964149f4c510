//! Reading the container's `/etc/passwd` and `/etc/group`.
//!
//! This runs after `pivot_root`, so `/` is the container's root, and the files are the image's:
//! untrusted input. They are opened with `openat2` below an fd for `/`, with
//! `RESOLVE_NO_MAGICLINKS`, so a symlink such as `/etc/passwd -> /proc/1/root/etc/passwd` cannot
//! reach into another mount namespace when there is no pid namespace; with `O_NONBLOCK`, so a
//! FIFO cannot hang the start; and only a regular file of bounded size is read, so
//! `/etc/passwd -> /dev/zero` cannot exhaust memory. A missing file is not an error: the spec may
//! be numeric (see [`super::resolve`]).

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use std::ffi::CStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use common::{Context, Error, Result, sys};

use super::{Identity, resolve};

/// The largest passwd or group file read: far above any real one, small enough for ns-init.
const MAX_DB_BYTES: u64 = 32 << 20;

/// Reads the container's `/etc/passwd` and `/etc/group` (after `pivot_root`) and resolves
/// `spec` against them with [`resolve`].
pub fn lookup(spec: Option<&str>) -> Result<Identity> {
    lookup_in(std::path::Path::new("/"), spec)
}

/// [`lookup`] in the root directory `root`: `/` inside the container, or the rootfs seen
/// from the host when only planning (`ns-init --plan`), with the same confinement.
pub fn lookup_in(root: &std::path::Path, spec: Option<&str>) -> Result<Identity> {
    let root = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open the container's root {}", root.display()))?;
    let passwd = read_db(&root, c"etc/passwd")?;
    let group = read_db(&root, c"etc/group")?;
    resolve(spec, passwd.as_deref(), group.as_deref())
}

/// The text of `/<path>` below `root`, or `None` when it does not exist. Bytes that are not
/// UTF-8 are replaced, which can only make a name fail to match.
fn read_db(root: &OwnedFd, path: &CStr) -> Result<Option<String>> {
    let shown = format!("/{}", path.to_string_lossy());
    let what = || format!("read the container's {shown}");
    let Some(fd) = open_db(root, path).ctx(what)? else {
        return Ok(None);
    };
    let stat = nix::sys::stat::fstat(fd.as_fd()).ctx(what)?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Error::msg(what(), "not a regular file"));
    }
    let mut bytes = Vec::new();
    File::from(fd)
        .take(MAX_DB_BYTES + 1)
        .read_to_end(&mut bytes)
        .ctx(what)?;
    if bytes.len() as u64 > MAX_DB_BYTES {
        return Err(Error::msg(
            what(),
            format!("larger than {MAX_DB_BYTES} bytes"),
        ));
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Opens `path` below `root` for reading without following magic links; `None` when it (or a
/// directory on the way) does not exist.
fn open_db(root: &OwnedFd, path: &CStr) -> std::result::Result<Option<OwnedFd>, Errno> {
    let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK;
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    match sys::openat2(root.as_fd(), path, flags, 0, resolve) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(e),
    }
}
