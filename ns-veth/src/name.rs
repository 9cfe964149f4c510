//! Interface names: the kernel's rules, and the random names of new veth ends.
//!
//! A name is checked the way the kernel's `dev_valid_name` (net/core/dev.c) does: 1 to 15 bytes
//! (`IFNAMSIZ` - 1), not `.` or `..`, no `/`, `:` or whitespace. We also refuse `%`, which the
//! kernel would *expand* (`veth%d` picks a free number), so a name we ask for is the name we get.
//! New veth ends are named prefix + [`SUFFIX_LEN`] random hex digits (from getrandom(2)); a
//! collision (`EEXIST`) is retried with new randomness by the caller. See
//! <https://man7.org/linux/man-pages/man7/netdevice.7.html>.

use common::{Error, Result};
use nix::errno::Errno;

/// The longest interface name the kernel takes (`IFNAMSIZ` - 1).
pub const IFNAME_MAX: usize = 15;
/// Hex digits of randomness after the prefix (28 bits; libcontainer settled on 7).
pub const SUFFIX_LEN: usize = 7;
/// The longest prefix: it must leave room for the suffix.
pub const PREFIX_MAX: usize = IFNAME_MAX - SUFFIX_LEN;
/// The prefix when none is given.
pub const DEFAULT_PREFIX: &str = "veth";

/// Whether `name` is an interface name the kernel takes literally.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c == '%' || c.is_whitespace() || c.is_control())
}

/// Checks an interface name given by the user; `what` says which (`bridge`, `name`).
pub fn check(name: &str, what: &str) -> Result<()> {
    if name.len() > IFNAME_MAX {
        return Err(Error::msg(
            format!("{what} {name:?}"),
            format!("longer than {IFNAME_MAX} bytes"),
        ));
    }
    if !is_valid(name) {
        return Err(Error::msg(
            format!("{what} {name:?}"),
            "not a valid interface name (empty, \".\", \"..\", or contains '/', ':', '%' or a space)",
        ));
    }
    Ok(())
}

/// Checks a veth name prefix: a valid name start that leaves room for the random suffix.
pub fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.len() > PREFIX_MAX {
        return Err(Error::msg(
            format!("prefix {prefix:?}"),
            format!(
                "too long: at most {PREFIX_MAX} bytes, so that {SUFFIX_LEN} random characters fit in {IFNAME_MAX}"
            ),
        ));
    }
    check(prefix, "prefix")
}

/// `prefix` followed by [`SUFFIX_LEN`] hex digits of `random`.
pub fn with_suffix(prefix: &str, random: u32) -> String {
    let mask = (1u32 << (4 * SUFFIX_LEN)) - 1;
    format!("{prefix}{:0width$x}", random & mask, width = SUFFIX_LEN)
}

/// A new random name from `prefix` (already checked with [`check_prefix`]).
pub fn random(prefix: &str) -> Result<String> {
    Ok(with_suffix(prefix, random_u32()?))
}

/// Four random bytes from getrandom(2).
fn random_u32() -> Result<u32> {
    let mut buf = [0u8; 4];
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which we own.
        let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
        match Errno::result(n) {
            Ok(4) => return Ok(u32::from_ne_bytes(buf)),
            // Requests of up to 256 bytes are never short once the pool is ready; retry anyway.
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("getrandom", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_fit_and_keep_the_prefix() {
        assert_eq!(with_suffix("veth", 0x0abc_def1), "vethabcdef1");
        assert_eq!(with_suffix("v", 1), "v0000001");
        let longest = "p".repeat(PREFIX_MAX);
        assert_eq!(with_suffix(&longest, u32::MAX).len(), IFNAME_MAX);
        let a = random("veth").unwrap();
        assert!(
            a.starts_with("veth") && a.len() == 4 + SUFFIX_LEN && is_valid(&a),
            "{a}"
        );
        // Two draws differing is what the retry on EEXIST relies on (2^-28 to fail by chance).
        assert_ne!(random("veth").unwrap(), random("veth").unwrap());
    }

    #[test]
    fn follows_the_kernel_rules_and_refuses_percent() {
        for ok in ["eth0", "br-test", "a", "veth_1.2", &"x".repeat(15)] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "eth%d",
            "a\tb",
            &"x".repeat(16),
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn prefix_errors_say_why() {
        check_prefix("veth").unwrap();
        check_prefix(&"p".repeat(PREFIX_MAX)).unwrap();
        let e = check_prefix("averylongprefix").unwrap_err().to_string();
        assert_eq!(
            e,
            "prefix \"averylongprefix\": too long: at most 8 bytes, so that 7 random characters fit in 15"
        );
        assert!(check_prefix("a/").is_err());
        assert!(check_prefix("").is_err());
        let e = check("br0:1", "bridge").unwrap_err().to_string();
        assert!(e.starts_with("bridge \"br0:1\": not a valid"), "{e}");
    }
}
