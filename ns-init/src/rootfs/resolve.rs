//! Paths inside the container's root, resolved by fd and never outside it.
//!
//! Every function takes the root as an `O_PATH` fd and a container path, and returns an
//! `O_PATH` fd for the object, creating it when asked. Nothing here builds a host path string
//! from rootfs + destination: that string could be redirected by a symlink in the image, or by
//! one swapped in between a check and its use (CVE-2021-30465, CVE-2024-45310,
//! security-and-hygiene.md §1.3). Instead:
//!
//! - [`Symlinks::InRoot`] lookups use `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: the
//!   kernel treats the root fd as `/` for absolute link targets and `..`, and refuses
//!   `/proc/self/fd`-style magic links;
//! - [`Symlinks::Refuse`] lookups go one component at a time with
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` and `O_NOFOLLOW`, so a symlink anywhere is seen
//!   and refused by name;
//! - missing directories are made with `mkdirat` relative to their parent's fd, and missing
//!   files with `mknodat(S_IFREG)`, so creating never opens or follows anything; what was made
//!   is then opened without following links, so a link raced into its place is refused.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, mkdirat, mknodat};
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::plan::Symlinks;
use common::{Context, Error, Result, exit};

/// Permission bits of directories we create (the umask is 0 while the plan is applied).
const DIR_MODE: u32 = 0o755;
/// Permission bits of the empty files we create as bind targets.
const FILE_MODE: u32 = 0o644;

/// An error with its whole text in `what` (a refusal, not a failed system call).
pub fn refused(text: String) -> Error {
    Error {
        what: text,
        errno: None,
        detail: None,
        code: exit::FAILED,
    }
}

/// `path` relative to the root: no leading `/`, `.` for the root itself.
fn relative(path: &str) -> std::result::Result<CString, Errno> {
    let rel = path.trim_start_matches('/');
    CString::new(if rel.is_empty() { "." } else { rel }).map_err(|_| Errno::EINVAL)
}

/// The non-empty components of `path`.
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// Opens `path` below `dir` as `O_PATH` with `flags`. With [`Symlinks::Refuse`], a trailing
/// symlink is opened itself (callers check with [`is_symlink`]) and any other fails `ELOOP`.
pub fn open(
    dir: BorrowedFd<'_>,
    path: &str,
    symlinks: Symlinks,
    flags: OFlag,
) -> std::result::Result<OwnedFd, Errno> {
    let (flags, resolve) = match symlinks {
        Symlinks::InRoot => (flags, libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS),
        Symlinks::Refuse => (
            flags | OFlag::O_NOFOLLOW,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
        ),
    };
    let flags = (flags | OFlag::O_PATH | OFlag::O_CLOEXEC).bits();
    common::sys::openat2(dir, &relative(path)?, flags, 0, resolve)
}

/// The `stat` of an open object, for the error of `what`.
pub fn stat(fd: BorrowedFd<'_>, what: &str) -> Result<FileStat> {
    fstat(fd).ctx(|| format!("stat {what}"))
}

fn is_symlink(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK
}

/// Whether `st` is of file type `kind` (`S_IFDIR`, `S_IFCHR`, ...).
pub fn is(st: &FileStat, kind: SFlag) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == kind.bits()
}

/// Checks that `fd` (opened as `shown`) is a real directory.
fn real_dir(fd: OwnedFd, shown: &str) -> Result<OwnedFd> {
    let st = stat(fd.as_fd(), shown)?;
    if is_symlink(&st) {
        return Err(refused(format!(
            "{shown} in the rootfs is a symlink; it must be a directory"
        )));
    }
    if !is(&st, SFlag::S_IFDIR) {
        return Err(refused(format!("{shown} in the rootfs is not a directory")));
    }
    Ok(fd)
}

/// `path` as errors show it: its components from the root (`/dev/pts` for `dev//pts/`).
fn shown(path: &str) -> String {
    let shown: String = components(path).flat_map(|c| ["/", c]).collect();
    if shown.is_empty() { "/".into() } else { shown }
}

/// Makes directory `name` in `parent` (an existing one is fine) and opens it without following
/// links: a dangling link in the way, or one raced in after `mkdirat`, is refused.
fn make_dir(parent: BorrowedFd<'_>, name: &str, shown: &str) -> Result<OwnedFd> {
    match mkdirat(parent, name, Mode::from_bits_truncate(DIR_MODE)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys(format!("create {shown}"), e)),
    }
    let fd =
        open(parent, name, Symlinks::Refuse, OFlag::empty()).ctx(|| format!("open {shown}"))?;
    if is_symlink(&stat(fd.as_fd(), shown)?) {
        return Err(Error::msg(
            format!("create {shown}"),
            "a symlink that points nowhere is in the way",
        ));
    }
    real_dir(fd, shown)
}

/// Opens directory `path` in the root, creating it and its missing parents (`mkdir -p`).
pub fn dir(root: BorrowedFd<'_>, path: &str, symlinks: Symlinks) -> Result<OwnedFd> {
    // Most targets exist (the image's `/proc` and `/dev`), or only their last directory is
    // missing (`/dev/pts` on our fresh `/dev`): one lookup of the whole path, under the rules
    // the walk below applies one component at a time (a symlink anywhere fails it with
    // `Refuse`), and the same checks of what it found or made. Any other failure takes the
    // walk, which names the component at fault.
    let flags = match symlinks {
        Symlinks::InRoot => OFlag::O_DIRECTORY,
        Symlinks::Refuse => OFlag::empty(),
    };
    match open(root, path, symlinks, flags) {
        Ok(fd) => return real_dir(fd, &shown(path)),
        Err(Errno::ENOENT) => {
            if let Some((parent, name)) = split_last(path).filter(|(_, n)| *n != "..") {
                let parent = dir(root, parent, symlinks)?;
                return make_dir(parent.as_fd(), name, &shown(path));
            }
        }
        Err(_) => {}
    }
    let mut cur = root
        .try_clone_to_owned()
        .ctx(|| "dup the root fd".to_string())?;
    let mut shown = String::new();
    for name in components(path) {
        shown.push('/');
        shown.push_str(name);
        let opened = match symlinks {
            // The whole prefix from the root each time, so a link in it is resolved against
            // the container's `/` and not against the directory it sits in.
            Symlinks::InRoot => open(root, &shown, symlinks, OFlag::O_DIRECTORY),
            Symlinks::Refuse => open(cur.as_fd(), name, symlinks, OFlag::empty()),
        };
        cur = match opened {
            Ok(fd) => real_dir(fd, &shown)?,
            Err(Errno::ENOENT) => make_dir(cur.as_fd(), name, &shown)?,
            Err(Errno::ELOOP) if symlinks == Symlinks::Refuse => {
                return Err(refused(format!(
                    "{shown} in the rootfs is a symlink; it must be a directory"
                )));
            }
            Err(e) => return Err(Error::sys(format!("open {shown}"), e)),
        };
    }
    Ok(cur)
}

/// Splits `path` into its parent and last component (`None` for `/`).
fn split_last(path: &str) -> Option<(&str, &str)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = trimmed.rsplit_once('/')?;
    (!name.is_empty()).then_some((parent, name))
}

/// Opens `path` in the root as a mount target for a non-directory, creating its parents and,
/// when missing, an empty regular file.
pub fn file(root: BorrowedFd<'_>, path: &str, symlinks: Symlinks) -> Result<OwnedFd> {
    let (parent, name) =
        split_last(path).ok_or_else(|| Error::msg(format!("create {path}"), "not a file path"))?;
    let dir = dir(root, parent, symlinks)?;
    let opened = match symlinks {
        Symlinks::InRoot => open(root, path, symlinks, OFlag::empty()),
        Symlinks::Refuse => open(dir.as_fd(), name, symlinks, OFlag::empty()),
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            let mode = Mode::from_bits_truncate(FILE_MODE);
            match mknodat(dir.as_fd(), name, SFlag::S_IFREG, mode, 0) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::sys(format!("create {path}"), e)),
            }
            let fd = open(dir.as_fd(), name, Symlinks::Refuse, OFlag::empty())
                .ctx(|| format!("open {path}"))?;
            if is_symlink(&stat(fd.as_fd(), path)?) {
                return Err(Error::msg(
                    format!("create {path}"),
                    "a symlink that points nowhere is in the way",
                ));
            }
            fd
        }
        Err(e) => return Err(Error::sys(format!("open {path}"), e)),
    };
    if symlinks == Symlinks::Refuse && is_symlink(&stat(fd.as_fd(), path)?) {
        return Err(refused(format!(
            "{path} in the rootfs is a symlink; refusing to follow it"
        )));
    }
    Ok(fd)
}

/// Opens `path` in the root if it exists; `None` when it does not. With
/// [`Symlinks::Refuse`], a symlink anywhere on the way is an error.
pub fn existing(root: BorrowedFd<'_>, path: &str, symlinks: Symlinks) -> Result<Option<OwnedFd>> {
    if symlinks == Symlinks::Refuse {
        return Ok(existing_with_stat(root, path)?.map(|(fd, _)| fd));
    }
    match open(root, path, symlinks, OFlag::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::sys(format!("open {path}"), e)),
    }
}

/// [`existing`] with [`Symlinks::Refuse`], and the file's status, which that check reads
/// anyway (the last component is opened without following it, so a symlink shows as one).
pub fn existing_with_stat(root: BorrowedFd<'_>, path: &str) -> Result<Option<(OwnedFd, FileStat)>> {
    let refuse = || {
        refused(format!(
            "{path} in the container is a symlink; refusing to follow it"
        ))
    };
    match open(root, path, Symlinks::Refuse, OFlag::empty()) {
        Ok(fd) => {
            let st = stat(fd.as_fd(), path)?;
            if is_symlink(&st) {
                return Err(refuse());
            }
            Ok(Some((fd, st)))
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP) => Err(refuse()),
        Err(e) => Err(Error::sys(format!("open {path}"), e)),
    }
}

/// Opens the parent directory of `path` in the root without following any symlink, creating
/// missing directories; returns it with the last component.
pub fn parent<'p>(root: BorrowedFd<'_>, path: &'p str) -> Result<(OwnedFd, &'p str)> {
    let (parent, name) =
        split_last(path).ok_or_else(|| Error::msg(format!("create {path}"), "not a file path"))?;
    Ok((dir(root, parent, Symlinks::Refuse)?, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// A scratch directory standing in for a rootfs; removed on drop (without following the
    /// symlinks the tests put in it).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("ns-init-resolve-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).expect("create scratch dir");
            Scratch(dir)
        }

        fn root(&self) -> OwnedFd {
            nix::fcntl::open(&self.0, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
                .expect("open scratch dir")
        }

        fn link(&self, name: &str, target: &str) {
            std::os::unix::fs::symlink(target, self.0.join(name)).expect("symlink");
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A name no host path has, for checking that nothing was created outside.
    fn unique() -> String {
        format!("ns-init-canary-{}", std::process::id())
    }

    #[test]
    fn paths_split_into_parent_and_name() {
        assert_eq!(split_last("/dev/null"), Some(("/dev", "null")));
        assert_eq!(split_last("/data"), Some(("", "data")));
        assert_eq!(split_last("/a/b/"), Some(("/a", "b")));
        assert_eq!(split_last("/"), None);
    }

    #[test]
    fn paths_become_relative_to_the_root() {
        assert_eq!(relative("/").unwrap().as_bytes(), b".");
        assert_eq!(relative("/dev/pts").unwrap().as_bytes(), b"dev/pts");
        assert_eq!(components("//a/./b/").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn links_are_followed_inside_the_root_only() {
        let s = Scratch::new("inroot");
        let name = unique();
        // An absolute link and a relative one climbing far above the root both stay inside.
        std::fs::create_dir(s.0.join("tmp")).unwrap();
        s.link("abs", "/tmp");
        s.link("up", "../../../../../../tmp");
        dir(
            s.root().as_fd(),
            &format!("/abs/{name}/x"),
            Symlinks::InRoot,
        )
        .unwrap();
        file(s.root().as_fd(), &format!("/up/{name}/f"), Symlinks::InRoot).unwrap();
        assert!(s.0.join("tmp").join(&name).join("x").is_dir());
        assert!(s.0.join("tmp").join(&name).join("f").is_file());
        assert!(!Path::new("/tmp").join(&name).exists());
    }

    #[test]
    fn owned_paths_refuse_links() {
        let s = Scratch::new("refuse");
        s.link("proc", "/proc");
        let e = dir(s.root().as_fd(), "/proc", Symlinks::Refuse).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc in the rootfs is a symlink; it must be a directory"
        );
        std::fs::write(s.0.join("sys"), "").unwrap();
        let e = dir(s.root().as_fd(), "/sys", Symlinks::Refuse).unwrap_err();
        assert_eq!(e.to_string(), "/sys in the rootfs is not a directory");
        std::fs::create_dir(s.0.join("dev")).unwrap();
        s.link("dev/null", "/dev/null");
        let e = file(s.root().as_fd(), "/dev/null", Symlinks::Refuse).unwrap_err();
        assert!(e.to_string().contains("is a symlink"), "{e}");
        let e = existing(s.root().as_fd(), "/dev/null", Symlinks::Refuse).unwrap_err();
        assert!(e.to_string().contains("is a symlink"), "{e}");
        // A link in the middle of the path is refused as well, by its own name.
        s.link("d", "dev");
        let e = dir(s.root().as_fd(), "/d/pts", Symlinks::Refuse).unwrap_err();
        assert!(
            e.to_string().starts_with("/d in the rootfs is a symlink"),
            "{e}"
        );
    }

    #[test]
    fn a_dangling_link_is_never_created_through() {
        let s = Scratch::new("dangling");
        let name = unique();
        s.link("data", &format!("/{name}"));
        let e = dir(s.root().as_fd(), "/data", Symlinks::InRoot).unwrap_err();
        assert!(e.to_string().contains("points nowhere"), "{e}");
        let e = file(s.root().as_fd(), "/data", Symlinks::InRoot).unwrap_err();
        assert!(e.to_string().contains("points nowhere"), "{e}");
        assert!(!s.0.join(&name).exists());
        assert!(!Path::new("/").join(&name).exists());
    }

    #[test]
    fn existing_skips_missing_paths() {
        let s = Scratch::new("existing");
        assert!(
            existing(s.root().as_fd(), "/proc/kcore", Symlinks::Refuse)
                .unwrap()
                .is_none()
        );
        std::fs::create_dir(s.0.join("proc")).unwrap();
        std::fs::write(s.0.join("proc/kcore"), "").unwrap();
        assert!(
            existing(s.root().as_fd(), "/proc/kcore", Symlinks::Refuse)
                .unwrap()
                .is_some()
        );
    }
}
