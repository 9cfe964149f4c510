//! The identity the command runs with: user and groups, capabilities, working directory.
//!
//! This is ns-init's last setup step. It runs after `pivot_root`, so the `/etc/passwd` and
//! `/etc/group` it reads are the container's, and before the exec, which the caller does next.
//! It has two halves:
//!
//! - [`lookup`] (and its pure core [`resolve`]) turns the config's `user` spec into an
//!   [`Identity`]. An all-digit user or group part is always an id and never looked up as a name
//!   (CVE-2016-3697: an image with a user literally named `1000` and uid 0 must not turn
//!   `user: "1000"` into root).
//! - [`apply`] switches to that identity. The order is fixed by what each call needs and what it
//!   destroys (security-and-hygiene.md §5.2, runc's `finalizeNamespace`):
//!   1. remember the parent-death signal, because changing credentials clears it;
//!   2. `chdir` while still root, since the directory may be reachable only by root; an
//!      `EACCES` is retried as the new user (the directory may be reachable only by that user);
//!   3. drop the bounding set, which needs `CAP_SETPCAP`, so before anything can lose it;
//!   4. `PR_SET_KEEPCAPS`, or leaving uid 0 empties the permitted set;
//!   5. `setgroups`, `setresgid`, `setresuid`: groups and gid first, because after leaving uid 0
//!      we can no longer change them;
//!   6. retry the `chdir` if needed, then check with `getcwd` that the cwd is inside the root
//!      (CVE-2024-21626: a leaked fd as `/proc/self/fd/N` would put it outside);
//!   7. set effective = permitted = the keep-list, inheritable and ambient empty
//!      (CVE-2022-29162: non-empty inheritable sets give file capabilities to the command);
//!   8. read every id and set back and abort on any difference: decisions come from what we
//!      asked for, never from re-reading ids (CVE-2020-5291);
//!   9. re-arm the parent-death signal;
//!   10. `PR_SET_NO_NEW_PRIVS` when asked, last, as it changes nothing above.
//!
//! See capabilities(7), credentials(7), PR_SET_KEEPCAPS(2const), PR_SET_PDEATHSIG(2const).

mod files;
mod switch;
mod users;
mod verify;

pub use files::{lookup, lookup_in};
pub use switch::apply;
pub use users::resolve;

/// Who the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id (real, effective and saved).
    pub uid: u32,
    /// The group id (real, effective and saved).
    pub gid: u32,
    /// The supplementary groups, exactly; empty means none (never the caller's).
    pub groups: Vec<u32>,
    /// The home directory from the user's passwd entry, for `HOME` when the config's
    /// environment sets none.
    pub home: Option<String>,
}
