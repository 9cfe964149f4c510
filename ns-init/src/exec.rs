//! The last step: find the command in the container's `PATH` and `execve` it.
//!
//! The search follows `execvp(3)` without its shell fallback: a name with a `/` is run as is;
//! otherwise each `PATH` entry is tried in order, a "not found" moves on, a "permission denied"
//! is remembered and moves on, anything else stops the search. The result maps to 127 when
//! nothing was found and 126 when something was found but could not run.

use nix::errno::Errno;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use common::config::Config;
use common::{Context, Error, sys, trace};

use crate::console::Console;
use crate::identity;
use crate::plan::STAGE;

/// How the last `execve` happens.
#[derive(Clone, Copy)]
pub enum Launcher<'a> {
    /// This process execs the command itself (the ns-init program, whose own file is then
    /// what a command re-entering `/proc/self/exe` reaches).
    Direct,
    /// This process resolves the command, then execs ns-dmz (`program`, a protected view of
    /// it), which execs the command: a command that re-enters `/proc/self/exe` reaches
    /// ns-dmz, never this process's own file (ns-exec's, on the host; CVE-2019-5736). If the
    /// command's `execve` fails, ns-dmz writes the errno to `report` (a sync protocol
    /// message) and exits 126 or 127.
    Dmz {
        /// ns-dmz, protected (`mount_api::protected_program`: a sealed copy).
        program: BorrowedFd<'a>,
        /// Where ns-dmz reports a failed `execve`; stays open across the exec into ns-dmz,
        /// which marks it close-on-exec.
        report: Option<BorrowedFd<'a>>,
    },
}

/// `PATH` when the container's environment has none (the same default as runc and Docker).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command's environment: the config's entries, plus `HOME` from the user's passwd entry
/// when the config does not set it.
pub fn environment(config_env: &[String], home: Option<&str>) -> Vec<CString> {
    let mut env: Vec<CString> = config_env
        .iter()
        .filter_map(|e| CString::new(e.as_bytes()).ok())
        .collect();
    if !config_env.iter().any(|e| e.starts_with("HOME=")) {
        if let Some(home) = home.and_then(|h| CString::new(format!("HOME={h}")).ok()) {
            env.push(home);
        }
    }
    env
}

/// The `PATH` entry of `env`, if any.
fn path_of(env: &[CString]) -> Option<&str> {
    env.iter()
        .filter_map(|e| e.to_str().ok())
        .find_map(|e| e.strip_prefix("PATH="))
}

/// The candidate paths for `program`, in the order they are tried.
pub fn candidates(program: &OsStr, path_var: Option<&str>) -> Vec<OsString> {
    if program.as_bytes().contains(&b'/') {
        return vec![program.to_os_string()];
    }
    path_var
        .unwrap_or(DEFAULT_PATH)
        .split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| {
            let mut p = OsString::from(dir);
            p.push("/");
            p.push(program);
            p
        })
        .collect()
}

/// Runs `argv` with `env`, searching the `PATH` found in `env`. Returns only on failure, with
/// the error to report (exit status 126 or 127).
pub fn exec(argv: &[OsString], env: &[CString]) -> Error {
    let Some(program) = argv.first() else {
        return Error::usage("no command to run");
    };
    let shown = format!("{:?}", program.to_string_lossy());
    let args: Vec<CString> = match argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
    {
        Ok(a) => a,
        Err(_) => return Error::exec(shown, Errno::EINVAL),
    };
    let path_var = path_of(env);
    let mut denied = None;
    for candidate in candidates(program, path_var) {
        let Ok(path) = CString::new(candidate.as_bytes()) else {
            continue;
        };
        // execve only returns on failure.
        let Err(errno) = nix::unistd::execve(&path, &args, env);
        match errno {
            Errno::ENOENT | Errno::ENOTDIR => continue,
            Errno::EACCES | Errno::EPERM => denied = Some(errno),
            other => return Error::exec(shown, other),
        }
    }
    Error::exec(shown, denied.unwrap_or(Errno::ENOENT))
}

/// Finds the file `argv[0]` names as [`exec`] would run it, without running it: the first
/// candidate that exists, is a regular file and that this process may execute. Not found
/// anywhere is 127; found but never executable is 126.
pub fn resolve(argv: &[OsString], env: &[CString]) -> Result<CString, Error> {
    let Some(program) = argv.first() else {
        return Err(Error::usage("no command to run"));
    };
    let shown = format!("{:?}", program.to_string_lossy());
    let path_var = path_of(env);
    let mut denied = None;
    for candidate in candidates(program, path_var) {
        let Ok(path) = CString::new(candidate.as_bytes()) else {
            continue;
        };
        let regular = match nix::sys::stat::stat(path.as_c_str()) {
            Ok(st) => st.st_mode & libc::S_IFMT == libc::S_IFREG,
            Err(Errno::ENOENT | Errno::ENOTDIR) => continue,
            Err(e @ (Errno::EACCES | Errno::EPERM)) => {
                denied = Some(e);
                continue;
            }
            Err(e) => return Err(Error::exec(shown, e)),
        };
        // What execve answers for a directory or a device, and for a file without an x bit
        // or on a noexec mount (faccessat checks both, with the effective ids).
        let executable = regular
            && nix::unistd::faccessat(
                nix::fcntl::AT_FDCWD,
                path.as_c_str(),
                nix::unistd::AccessFlags::X_OK,
                nix::fcntl::AtFlags::AT_EACCESS,
            )
            .is_ok();
        if executable {
            return Ok(path);
        }
        denied = Some(Errno::EACCES);
    }
    Err(Error::exec(shown, denied.unwrap_or(Errno::ENOENT)))
}

/// Runs `argv` with `env` through ns-dmz ([`Launcher::Dmz`]). Returns only on failure: the
/// command cannot be found or run (126, 127), or ns-dmz itself did not start (125).
fn exec_via_dmz(
    program: BorrowedFd<'_>,
    report: Option<BorrowedFd<'_>>,
    argv: &[OsString],
    env: &[CString],
) -> Error {
    let path = match resolve(argv, env) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let report_arg = match report {
        Some(fd) => {
            // Open across this exec; ns-dmz marks it close-on-exec again before the next.
            if let Err(e) = nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            ) {
                return Error::sys("hand the report fd to ns-dmz", e);
            }
            fd.as_raw_fd().to_string()
        }
        None => "-".to_string(),
    };
    let mut dmz_argv = vec![
        c"ns-dmz".to_owned(),
        CString::new(report_arg).unwrap_or_default(),
        path,
    ];
    for arg in argv {
        match CString::new(arg.as_bytes()) {
            Ok(a) => dmz_argv.push(a),
            Err(_) => {
                return Error::exec(format!("{:?}", argv[0].to_string_lossy()), Errno::EINVAL);
            }
        }
    }
    match sys::execveat_fd(program, &dmz_argv, env) {
        // ns-dmz gets the command's arguments and environment: too long for it is too long
        // for the command, and that is the command's error (126), not ns-tools' (125).
        Errno::E2BIG => Error::exec(format!("{:?}", argv[0].to_string_lossy()), Errno::E2BIG),
        e => Error::sys("exec ns-dmz", e),
    }
}

/// The last steps, shared by ns-init and `ns-exec enter`: look the user up (in the current
/// root, so after the root switch), give it the console, take the identity and capabilities
/// (the trace step `identity`), reset the signal state, mark every fd above 2 close-on-exec,
/// and exec `command` with the config's environment, as `launcher` says (the trace step `exec`, recorded just
/// before the `execve`, whose success nothing can record; a failed exec adds an error line).
/// Returns only on failure.
pub fn finish(
    config: &Config,
    command: &[OsString],
    console: Option<&Console>,
    launcher: &Launcher<'_>,
) -> Error {
    let run = || -> common::Result<std::convert::Infallible> {
        let env = trace::step(STAGE, "identity", None, || {
            let id = identity::lookup(config.user.as_deref())?;
            if let Some(console) = console {
                // The user must be able to use its terminal after the uid change.
                console.give_to(id.uid)?;
            }
            identity::apply(
                &id,
                config.capabilities,
                config.working_dir.as_deref(),
                config.no_new_privileges,
            )?;
            Ok(environment(&config.environment, id.home.as_deref()))
        })?;
        common::ns_log!("exec {:?}", command);
        common::fault::point("ns-init", "before-exec")?;
        sys::reset_signals();
        sys::close_range_from(3, true).ctx(|| "mark fds close-on-exec".into())?;
        let start = trace::now_us();
        trace::record(STAGE, "exec", None, start, start, None);
        let err = match *launcher {
            Launcher::Direct => exec(command, &env),
            Launcher::Dmz { program, report } => exec_via_dmz(program, report, command, &env),
        };
        trace::record(STAGE, "exec", None, start, trace::now_us(), Some(&err));
        Err(err)
    };
    match run() {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_a_slash_is_not_searched() {
        assert_eq!(
            candidates(OsStr::new("./x"), Some("/bin")),
            vec![OsString::from("./x")]
        );
        assert_eq!(
            candidates(OsStr::new("/bin/sh"), None),
            vec![OsString::from("/bin/sh")]
        );
    }

    #[test]
    fn path_entries_are_tried_in_order_and_empty_means_cwd() {
        assert_eq!(
            candidates(OsStr::new("sh"), Some("/usr/bin::/bin")),
            vec![
                OsString::from("/usr/bin/sh"),
                OsString::from("./sh"),
                OsString::from("/bin/sh")
            ]
        );
        assert_eq!(candidates(OsStr::new("sh"), None).len(), 6);
    }

    #[test]
    fn home_comes_from_passwd_only_when_unset() {
        let env = environment(&["A=1".into()], Some("/root"));
        assert_eq!(env, vec![c"A=1".to_owned(), c"HOME=/root".to_owned()]);
        let env = environment(&["HOME=/x".into()], Some("/root"));
        assert_eq!(env, vec![c"HOME=/x".to_owned()]);
    }

    #[test]
    fn missing_program_maps_to_127() {
        let e = exec(&[OsString::from("/nonexistent/ns-tools-test")], &[]);
        assert_eq!(e.code, 127);
        assert!(e.to_string().contains("No such file or directory"), "{e}");
    }

    #[test]
    fn a_directory_maps_to_126() {
        let e = exec(&[OsString::from("/")], &[]);
        assert_eq!(e.code, 126);
    }
}
