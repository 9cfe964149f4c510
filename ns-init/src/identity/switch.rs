//! Applying an [`Identity`]: ids, groups, capabilities, cwd and `no_new_privs`, in the order the
//! module documentation of [`super`] gives and explains.
//!
//! Every step's error names the step (`setgroups [10, 20]`, `chdir /work`), so the line ns-exec
//! prints says what failed. Nothing here reads an id to decide what to do: the target comes from
//! the caller, and the result is checked against it at the end ([`super::verify`]).

use nix::errno::Errno;
use nix::libc;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use common::caps::{self, CapSet};
use common::sys::{self, CapSets};
use common::{Context, Error, Result, ns_log};

use super::Identity;
use super::verify::{self, Expected};

/// Applies `id`, keeps exactly `keep` (as far as the process has it) and moves to
/// `working_dir` (`/` when `None`), in the safe order.
///
/// On return the process holds exactly `keep` ∩ its former permitted set in its effective and
/// permitted sets, nothing outside `keep` in its bounding set, nothing in its inheritable and
/// ambient sets, runs as `id` with exactly `id.groups` as supplementary groups, and its cwd is
/// inside its root. All of this is read back and checked; any difference is an error. The parent
/// death signal is kept, and `PR_SET_NO_NEW_PRIVS` is set when `no_new_privs` is.
///
/// A command running as a uid other than 0 loses its permitted and effective capabilities at
/// `execve` (capabilities(7): without inheritable or ambient capabilities nothing carries over),
/// so for such a user `keep` limits what setuid or file-capability programs may gain.
pub fn apply(
    id: &Identity,
    keep: CapSet,
    working_dir: Option<&str>,
    no_new_privs: bool,
) -> Result<()> {
    check_target(id)?;
    let parent = ParentDeath::save()?;
    let dir = working_dir.unwrap_or("/");
    let retry_chdir = chdir_early(dir)?;
    let last = last_cap()?;
    drop_bounding(keep, last)?;
    prctl::set_keepcaps(true).ctx(|| "set PR_SET_KEEPCAPS".into())?;
    switch_ids(id)?;
    if retry_chdir {
        nix::unistd::chdir(dir).ctx(|| format!("chdir {dir} as uid {}", id.uid))?;
    }
    verify_cwd(dir)?;
    prctl::set_keepcaps(false).ctx(|| "clear PR_SET_KEEPCAPS".into())?;
    let caps = set_caps(keep)?;
    let want = Expected {
        uid: id.uid,
        gid: id.gid,
        groups: id.groups.clone(),
        caps,
        keep,
    };
    verify::compare(&want, &verify::observe(last)?)?;
    parent.restore()?;
    if no_new_privs {
        set_no_new_privs()?;
    }
    ns_log!(
        "identity: uid {} gid {} groups {:?} caps {:?} cwd {dir}",
        id.uid,
        id.gid,
        id.groups,
        CapSet(caps).names()
    );
    Ok(())
}

/// Refuses ids the `setres*id` and `setgroups` calls cannot take: -1 means "unchanged" to
/// `setresuid`, so passing it would silently leave the process root.
fn check_target(id: &Identity) -> Result<()> {
    let bad = |what: &str, n: u32| {
        Error::msg(
            format!("apply the identity: {what} {n}"),
            "-1 is not an id (it means \"unchanged\" to the kernel)",
        )
    };
    if id.uid == u32::MAX {
        return Err(bad("uid", id.uid));
    }
    if id.gid == u32::MAX {
        return Err(bad("gid", id.gid));
    }
    if let Some(&g) = id.groups.iter().find(|&&g| g == u32::MAX) {
        return Err(bad("supplementary group", g));
    }
    Ok(())
}

/// The parent-death signal and the parent it was armed against, saved before the credential
/// change clears the signal (PR_SET_PDEATHSIG(2const)).
struct ParentDeath {
    signal: Option<Signal>,
    parent: Pid,
}

impl ParentDeath {
    fn save() -> Result<Self> {
        let signal = prctl::get_pdeathsig().ctx(|| "read the parent-death signal".into())?;
        Ok(ParentDeath {
            signal,
            parent: nix::unistd::getppid(),
        })
    }

    /// Re-arms the signal. If the parent died while it was cleared, the signal will never come,
    /// so that is an error rather than an orphaned container. (In a new pid namespace the parent
    /// is outside and `getppid` is 0 throughout; the sync socket covers that case.)
    fn restore(&self) -> Result<()> {
        let Some(signal) = self.signal else {
            return Ok(());
        };
        prctl::set_pdeathsig(signal).ctx(|| format!("restore the parent-death signal {signal}"))?;
        if nix::unistd::getppid() != self.parent {
            return Err(Error::msg(
                "restore the parent-death signal",
                format!(
                    "the parent (pid {}) exited during the identity switch",
                    self.parent
                ),
            ));
        }
        Ok(())
    }
}

/// `chdir` while still privileged. Returns whether to retry as the new user: `EACCES` may mean
/// the directory is reachable only by that user (root squashed on NFS, a user namespace); any
/// other error fails at once.
fn chdir_early(dir: &str) -> Result<bool> {
    match nix::unistd::chdir(dir) {
        Ok(()) => Ok(false),
        Err(Errno::EACCES) => Ok(true),
        Err(e) => Err(Error::sys(format!("chdir {dir}"), e)),
    }
}

/// Checks that the cwd is inside the process's root. `getcwd` reports a directory outside it
/// (reached through a leaked fd as `/proc/self/fd/N`, CVE-2024-21626) as `(unreachable)/...`,
/// which glibc turns into `ENOENT`; a deleted directory fails the same way.
fn verify_cwd(dir: &str) -> Result<()> {
    let what = || format!("verify the working directory {dir}");
    let cwd = match nix::unistd::getcwd() {
        Ok(cwd) => cwd,
        Err(Errno::ENOENT) => {
            return Err(Error {
                detail: Some("it is outside the container's root, or was deleted".into()),
                ..Error::sys(what(), Errno::ENOENT)
            });
        }
        Err(e) => return Err(Error::sys(what(), e)),
    };
    let text = cwd.to_string_lossy();
    if text.starts_with("(unreachable)") || !text.starts_with('/') {
        return Err(Error::msg(
            what(),
            format!("the kernel reports it as {text:?}, outside the container's root"),
        ));
    }
    Ok(())
}

/// The kernel's last capability (`sys::cap_last_cap`: what `/proc/sys/kernel/cap_last_cap`
/// says, asked of `PR_CAPBSET_READ`, so no procfs is needed).
fn last_cap() -> Result<u8> {
    let last = sys::cap_last_cap().ctx(|| "read the kernel's last capability".into())?;
    // CapSet is a 64-bit mask; a kernel with more capabilities needs a wider type.
    if last > 63 {
        return Err(Error::msg(
            "read the kernel's last capability",
            format!("{last} does not fit a 64-bit capability set"),
        ));
    }
    Ok(last)
}

/// Drops from the bounding set every capability `0..=last` not in `keep`. The whole range up to
/// the running kernel's last capability is walked, not the names we know, so a capability newer
/// than our table cannot survive (security-and-hygiene.md §1.5). Dropping one already absent is
/// no error; without `CAP_SETPCAP` every drop is refused (`EPERM`), which is an error only for
/// a capability still present, so this also works when nothing is left to drop.
fn drop_bounding(keep: CapSet, last: u8) -> Result<()> {
    for cap in (0..=last).filter(|&c| !keep.contains(c)) {
        let dropped = sys::prctl(libc::PR_CAPBSET_DROP, cap.into(), 0);
        if let Err(e) = dropped {
            let present = sys::prctl(libc::PR_CAPBSET_READ, cap.into(), 0)
                .ctx(|| format!("read capability {} in the bounding set", caps::name(cap)))?;
            if present == 1 || e != Errno::EPERM {
                return Err(Error::sys(
                    format!("drop capability {} from the bounding set", caps::name(cap)),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// `setgroups` (always, even empty, so the caller's groups never reach the command), then
/// `setresgid`, then `setresuid`: once uid 0 is left, the gid can no longer be changed.
fn switch_ids(id: &Identity) -> Result<()> {
    // System calls of this task alone (common::sys::set_groups says why).
    if let Err(e) = common::sys::set_groups(&id.groups) {
        return Err(setgroups_error(&id.groups, e));
    }
    common::sys::set_all_gids(id.gid).ctx(|| format!("setresgid {}", id.gid))?;
    common::sys::set_all_uids(id.uid).ctx(|| format!("setresuid {}", id.uid))?;
    Ok(())
}

/// The `setgroups` error; in a user namespace whose `setgroups` file says `deny` (CVE-2014-8989)
/// the call can never succeed, and the message says so.
fn setgroups_error(groups: &[u32], errno: Errno) -> Error {
    let mut err = Error::sys(format!("setgroups {groups:?}"), errno);
    let denied =
        std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|text| text.trim() == "deny");
    if errno == Errno::EPERM && denied {
        err.detail = Some("setgroups is denied in this user namespace".into());
    }
    err
}

/// Sets effective = permitted = `keep` ∩ what the process holds, inheritable empty, then empties
/// the ambient set. Returns the set now held.
fn set_caps(keep: CapSet) -> Result<u64> {
    let now = sys::capget().ctx(|| "read the capability sets".into())?;
    let held = keep.0 & now.permitted;
    let sets = CapSets {
        effective: held,
        permitted: held,
        inheritable: 0,
    };
    sys::capset(sets).ctx(|| {
        format!(
            "set capabilities {:?} (effective and permitted; inheritable empty)",
            CapSet(held).names()
        )
    })?;
    sys::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )
    .ctx(|| "clear the ambient capability set".into())?;
    Ok(held)
}

fn set_no_new_privs() -> Result<()> {
    prctl::set_no_new_privs().ctx(|| "set PR_SET_NO_NEW_PRIVS".into())?;
    match prctl::get_no_new_privs() {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::msg(
            "set PR_SET_NO_NEW_PRIVS",
            "the flag reads back as 0",
        )),
        Err(e) => Err(Error::sys("read PR_GET_NO_NEW_PRIVS", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_one_ids_are_refused() {
        let id = |uid, gid, groups: &[u32]| Identity {
            uid,
            gid,
            groups: groups.to_vec(),
            home: None,
        };
        assert!(check_target(&id(1000, 1000, &[10])).is_ok());
        for bad in [
            id(u32::MAX, 0, &[]),
            id(0, u32::MAX, &[]),
            id(0, 0, &[5, u32::MAX]),
        ] {
            let text = match check_target(&bad) {
                Ok(()) => panic!("{bad:?} passed"),
                Err(e) => e.to_string(),
            };
            assert!(text.contains("4294967295"), "{text}");
        }
    }

    #[test]
    fn capability_names_cover_unknown_numbers() {
        assert_eq!(caps::name(21), "SYS_ADMIN");
        assert_eq!(caps::name(45), "45");
    }
}
