//! The exit-status table every ns-tools program follows.
//!
//! It is the one `docker run` and `podman run` taught scripts: a relayed command's own status,
//! `128 + N` when signal N killed it, and three reserved values for our own failures. Stage tools
//! that do not relay a command use only [`OK`] and [`FAILED`].

/// Success.
pub const OK: i32 = 0;
/// ns-tools itself failed: usage, config, or a setup step (before the command ran).
pub const FAILED: i32 = 125;
/// The command was found but could not be executed (`EACCES`, `ENOEXEC`, `E2BIG`, a directory).
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;
/// Added to a signal number when a signal killed the command.
pub const SIGNAL_BASE: i32 = 128;

/// The status to report for a child that ended: its own exit code, or `128 + signal`.
pub fn from_wait(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(SIGNAL_BASE + sig as i32),
        _ => None,
    }
}

/// The status for an `execve` that failed with `errno`: 127 when nothing was found, else 126.
pub fn for_exec_errno(errno: nix::errno::Errno) -> i32 {
    use nix::errno::Errno;
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => NOT_FOUND,
        _ => NOT_EXECUTABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;
    use nix::unistd::Pid;

    #[test]
    fn wait_status_maps_like_docker_run() {
        let pid = Pid::from_raw(1);
        assert_eq!(from_wait(WaitStatus::Exited(pid, 42)), Some(42));
        assert_eq!(
            from_wait(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(from_wait(WaitStatus::StillAlive), None);
    }

    #[test]
    fn exec_errno_maps_to_126_or_127() {
        assert_eq!(for_exec_errno(Errno::ENOENT), 127);
        assert_eq!(for_exec_errno(Errno::EACCES), 126);
        assert_eq!(for_exec_errno(Errno::ENOEXEC), 126);
        assert_eq!(for_exec_errno(Errno::E2BIG), 126);
    }
}
