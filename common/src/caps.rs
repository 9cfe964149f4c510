//! Capability names and sets.
//!
//! Names are the kernel's without the `CAP_` prefix (the 2014 spelling); `CAP_`-prefixed and
//! lower-case spellings are accepted too, as runc and Docker users write them. The table covers
//! every capability up to Linux 6.x (`CHECKPOINT_RESTORE` = 40). Sets are bit masks, so a set
//! also holds capabilities this table does not name; code that drops capabilities must iterate up
//! to the running kernel's `cap_last_cap`, never up to the table's end
//! (see capabilities(7) and the "remove undefined caps" lesson in security-and-hygiene.md).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Kernel capability names, indexed by capability number.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The keep-list used when a config names no capabilities: Docker's default set, which leaves
/// out everything that reaches beyond the container (`SYS_ADMIN`, `DAC_READ_SEARCH`,
/// `SYS_PTRACE`, `SYS_MODULE`, `NET_ADMIN`, ...).
pub const DEFAULT_KEEP: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The number of a capability name (`CAP_SYS_ADMIN`, `SYS_ADMIN`, `sys_admin`), if known.
pub fn number(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u8)
}

/// The name of capability `cap` (`SYS_ADMIN`), or its number for one newer than this table.
pub fn name(cap: u8) -> String {
    match NAMES.get(usize::from(cap)) {
        Some(n) => (*n).to_string(),
        None => cap.to_string(),
    }
}

/// A set of capabilities as a bit mask (bit N = capability N).
#[derive(Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CapSet(pub u64);

impl CapSet {
    /// Every capability this table names.
    pub fn all() -> Self {
        CapSet((1u64 << NAMES.len()) - 1)
    }

    /// The set [`DEFAULT_KEEP`] names.
    pub fn default_keep() -> Self {
        let mut set = CapSet(0);
        for name in DEFAULT_KEEP {
            set.insert(number(name).expect("DEFAULT_KEEP names are in NAMES"));
        }
        set
    }

    /// Adds capability `cap`.
    pub fn insert(&mut self, cap: u8) {
        self.0 |= 1u64 << cap;
    }

    /// Whether capability `cap` is in the set.
    pub fn contains(self, cap: u8) -> bool {
        cap < 64 && self.0 & (1u64 << cap) != 0
    }

    /// The names of the capabilities in the set, in number order.
    pub fn names(self) -> Vec<String> {
        (0..64u8).filter(|c| self.contains(*c)).map(name).collect()
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CapSet({:#x} {:?})", self.0, self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_in_every_spelling() {
        assert_eq!(number("SYS_ADMIN"), Some(21));
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("cap_sys_admin"), Some(21));
        assert_eq!(number("CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("FOO"), None);
        assert_eq!(number("CAP_"), None);
    }

    #[test]
    fn default_keep_leaves_out_dangerous_caps() {
        let keep = CapSet::default_keep();
        for bad in [
            "SYS_ADMIN",
            "DAC_READ_SEARCH",
            "SYS_MODULE",
            "SYS_PTRACE",
            "SYS_RAWIO",
            "SYS_TIME",
            "MAC_ADMIN",
            "MAC_OVERRIDE",
            "NET_ADMIN",
        ] {
            assert!(!keep.contains(number(bad).unwrap()), "{bad}");
        }
        assert_eq!(keep.names().len(), DEFAULT_KEEP.len());
    }

    #[test]
    fn all_covers_the_table() {
        assert_eq!(CapSet::all().names().len(), NAMES.len());
    }
}
