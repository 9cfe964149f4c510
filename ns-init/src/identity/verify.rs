//! Reading the process's credentials back after the switch, and comparing them with the target.
//!
//! The lesson of CVE-2020-5291 (bubblewrap) is that a privilege drop must be checked, not
//! assumed: a call that "succeeded" in a user namespace with an unmapped id, or a kernel that
//! silently kept a set, must stop the start. [`observe`] reads what the kernel says; [`compare`]
//! is pure, so each mismatch has a unit test.

use nix::errno::Errno;
use nix::libc;

use common::caps::CapSet;
use common::sys::{self, CapSets};
use common::{Context, Error, Result};

/// What the process must look like after [`super::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Real, effective and saved uid.
    pub uid: u32,
    /// Real, effective and saved gid.
    pub gid: u32,
    /// Supplementary groups, in any order.
    pub groups: Vec<u32>,
    /// Effective and permitted set; inheritable must be empty.
    pub caps: u64,
    /// The bounding set may hold nothing outside this.
    pub keep: CapSet,
}

/// What the kernel reports for the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Real, effective, saved uid.
    pub uids: [u32; 3],
    /// Real, effective, saved gid.
    pub gids: [u32; 3],
    /// Supplementary groups, as `getgroups` lists them.
    pub groups: Vec<u32>,
    /// The three capability sets.
    pub caps: CapSets,
    /// The bounding set, capabilities `0..=last` only.
    pub bounding: u64,
    /// The ambient set, capabilities `0..=last` only.
    pub ambient: u64,
}

/// Reads the process's ids, groups and capability sets; `last` is the kernel's last capability.
pub fn observe(last: u8) -> Result<Observed> {
    let uids = nix::unistd::getresuid().ctx(|| "verify the identity: getresuid".into())?;
    let gids = nix::unistd::getresgid().ctx(|| "verify the identity: getresgid".into())?;
    let groups = sys::getgroups().ctx(|| "verify the identity: getgroups".into())?;
    let caps = sys::capget().ctx(|| "verify the identity: capget".into())?;
    let bounding = cap_mask(last, libc::PR_CAPBSET_READ, None)
        .ctx(|| "verify the identity: read the bounding set".into())?;
    let ambient = cap_mask(
        last,
        libc::PR_CAP_AMBIENT,
        Some(libc::PR_CAP_AMBIENT_IS_SET),
    )
    .ctx(|| "verify the identity: read the ambient set".into())?;
    Ok(Observed {
        uids: [uids.real, uids.effective, uids.saved].map(|u| u.as_raw()),
        gids: [gids.real, gids.effective, gids.saved].map(|g| g.as_raw()),
        groups,
        caps,
        bounding,
        ambient,
    })
}

/// The mask of capabilities `0..=last` for which a per-capability query prctl answers 1:
/// `prctl(option, cap)` or, with a sub-operation, `prctl(option, sub, cap)`.
fn cap_mask(last: u8, option: i32, sub: Option<i32>) -> std::result::Result<u64, Errno> {
    let mut mask = 0;
    for cap in 0..=last {
        let set = match sub {
            None => sys::prctl(option, cap.into(), 0)?,
            Some(sub) => sys::prctl(option, sub as libc::c_ulong, cap.into())?,
        };
        if set == 1 {
            mask |= 1u64 << cap;
        }
    }
    Ok(mask)
}

/// Compares what the kernel reports with the target; the error lists every difference.
pub fn compare(want: &Expected, got: &Observed) -> Result<()> {
    let mut wrong = Vec::new();
    if got.uids != [want.uid; 3] {
        wrong.push(format!(
            "uids are {:?} (real, effective, saved), expected {}",
            got.uids, want.uid
        ));
    }
    if got.gids != [want.gid; 3] {
        wrong.push(format!(
            "gids are {:?} (real, effective, saved), expected {}",
            got.gids, want.gid
        ));
    }
    // The kernel keeps supplementary groups sorted, so compare as sets.
    if sorted(&got.groups) != sorted(&want.groups) {
        wrong.push(format!(
            "groups are {:?}, expected {:?}",
            got.groups, want.groups
        ));
    }
    let sets = [
        ("effective", got.caps.effective, want.caps),
        ("permitted", got.caps.permitted, want.caps),
        ("inheritable", got.caps.inheritable, 0),
        ("ambient", got.ambient, 0),
    ];
    for (name, have, should) in sets {
        if have != should {
            wrong.push(format!(
                "{name} set is {:?}, expected {:?}",
                CapSet(have).names(),
                CapSet(should).names()
            ));
        }
    }
    let extra = got.bounding & !want.keep.0;
    if extra != 0 {
        wrong.push(format!(
            "bounding set still holds {:?}",
            CapSet(extra).names()
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(Error::msg("verify the identity", wrong.join("; ")))
    }
}

fn sorted(ids: &[u32]) -> Vec<u32> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHOWN: u64 = 1 << 0;
    const NET_BIND_SERVICE: u64 = 1 << 10;
    const SYS_ADMIN: u64 = 1 << 21;

    fn want() -> Expected {
        Expected {
            uid: 1000,
            gid: 1000,
            groups: vec![20, 10],
            caps: CHOWN | NET_BIND_SERVICE,
            keep: CapSet(CHOWN | NET_BIND_SERVICE),
        }
    }

    fn good() -> Observed {
        Observed {
            uids: [1000; 3],
            gids: [1000; 3],
            groups: vec![10, 20],
            caps: CapSets {
                effective: CHOWN | NET_BIND_SERVICE,
                permitted: CHOWN | NET_BIND_SERVICE,
                inheritable: 0,
            },
            bounding: CHOWN | NET_BIND_SERVICE,
            ambient: 0,
        }
    }

    fn detail(got: &Observed) -> String {
        match compare(&want(), got) {
            Ok(()) => panic!("{got:?} passed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn matching_state_passes_in_any_group_order() {
        assert_eq!(compare(&want(), &good()), Ok(()));
    }

    #[test]
    fn a_bounding_set_smaller_than_keep_passes() {
        let mut got = good();
        got.bounding = CHOWN;
        assert_eq!(compare(&want(), &got), Ok(()));
    }

    #[test]
    fn any_id_left_behind_fails() {
        let mut got = good();
        got.uids = [1000, 1000, 0];
        assert_eq!(
            detail(&got),
            "verify the identity: uids are [1000, 1000, 0] (real, effective, saved), expected 1000"
        );
        let mut got = good();
        got.gids = [0, 1000, 1000];
        assert!(detail(&got).contains("gids are [0, 1000, 1000]"));
    }

    #[test]
    fn extra_or_missing_groups_fail() {
        let mut got = good();
        got.groups = vec![0, 10, 20];
        assert!(detail(&got).contains("groups are [0, 10, 20], expected [20, 10]"));
        got.groups = vec![10];
        assert!(detail(&got).contains("groups are [10]"));
    }

    #[test]
    fn capability_differences_fail_and_are_all_listed() {
        let mut got = good();
        got.caps.inheritable = CHOWN;
        got.ambient = CHOWN;
        got.bounding |= SYS_ADMIN;
        got.caps.effective = CHOWN;
        let text = detail(&got);
        assert!(text.contains("effective set is [\"CHOWN\"]"), "{text}");
        assert!(
            text.contains("inheritable set is [\"CHOWN\"], expected []"),
            "{text}"
        );
        assert!(text.contains("ambient set is [\"CHOWN\"]"), "{text}");
        assert!(
            text.contains("bounding set still holds [\"SYS_ADMIN\"]"),
            "{text}"
        );
        assert!(!text.contains("permitted"), "{text}");
    }
}
