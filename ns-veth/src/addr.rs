//! Addresses in the forms the config uses: `a.b.c.d/n` (CIDR) and plain IPs.
//!
//! The config is validated before anything is made (common::config::validate); this parses the
//! same forms again where a value reaches netlink, so a context from another source (the
//! command line, a hand-written context) gets the same clear error instead of a kernel `EINVAL`.

use common::{Error, Result};
use std::net::IpAddr;

/// An address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length, at most 32 (IPv4) or 128 (IPv6).
    pub len: u8,
}

/// Parses `a.b.c.d/n` or `x::y/n`; `what` names the value in the error.
pub fn cidr(text: &str, what: &str) -> Result<Cidr> {
    let bad = || {
        Error::msg(
            format!("{what} {text:?}"),
            "not an address in CIDR form (a.b.c.d/n)",
        )
    };
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(bad());
    }
    Ok(Cidr { addr, len })
}

/// Parses a plain IP address; `what` names the value in the error.
pub fn ip(text: &str, what: &str) -> Result<IpAddr> {
    text.parse()
        .map_err(|_| Error::msg(format!("{what} {text:?}"), "not an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_families() {
        let c = cidr("198.18.0.2/24", "address").unwrap();
        assert_eq!((c.addr.to_string(), c.len), ("198.18.0.2".to_string(), 24));
        assert_eq!(cidr("2001:db8::1/64", "address").unwrap().len, 64);
        assert_eq!(
            ip("198.18.0.1", "gateway").unwrap().to_string(),
            "198.18.0.1"
        );
    }

    #[test]
    fn refuses_what_netlink_would_misread() {
        for bad in [
            "198.18.0.2",
            "198.18.0.2/33",
            "198.18.0.2/",
            "x/24",
            "198.18.0.2/+4",
            "::1/129",
        ] {
            assert!(cidr(bad, "address").is_err(), "{bad}");
        }
        let e = cidr("1.2.3.4", "address").unwrap_err().to_string();
        assert_eq!(
            e,
            "address \"1.2.3.4\": not an address in CIDR form (a.b.c.d/n)"
        );
        assert!(ip("198.18.0.1/24", "gateway").is_err());
    }
}
