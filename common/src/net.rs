//! Network contexts handed from the host side (ns-veth) to the container side (ns-init).
//!
//! One [`NetContext`] per `networks[]` entry: what the host side made (the veth names) plus what
//! the container side must apply (address, gateway, MTU, the name inside, or the namespace to
//! join). It travels as one JSON object: on `ns-veth add`'s context fd, and inside `go` from
//! ns-exec to ns-init. The format is versioned (`"v": 1`) and readers ignore fields they do not
//! know (see docs/handoff.md §1), so a newer host side can add fields within a version.
//!
//! Only the wire type lives here; the netlink code that makes and applies it is in `ns_veth`.

use serde::{Deserialize, Serialize};

use crate::config::NetworkKind;
use crate::error::{Error, Result};

/// The version of the network context format.
pub const VERSION: u32 = 1;

/// The interface name a veth peer gets inside the container when the config names none.
pub const DEFAULT_CHILD_NAME: &str = "eth0";

/// One network, as the host side set it up and the container side must finish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetContext {
    /// Format version, [`VERSION`].
    pub v: u32,
    /// The strategy.
    #[serde(rename = "type")]
    pub kind: NetworkKind,
    /// veth: the host end's name, attached to the bridge in the host's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// veth: the peer's temporary name inside the container's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// veth: the name the peer gets inside (`eth0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// veth: the bridge the host end is attached to (for the record and `ns-veth check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// veth: the peer's address in CIDR form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// veth: the default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// veth: the MTU of both ends; loopback: the MTU of `lo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// netns: the network namespace file to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nspath: Option<String>,
}

impl NetContext {
    /// An empty context of strategy `kind`, at the current version.
    pub fn new(kind: NetworkKind) -> Self {
        NetContext {
            v: VERSION,
            kind,
            host: None,
            peer: None,
            name: None,
            bridge: None,
            address: None,
            gateway: None,
            mtu: None,
            nspath: None,
        }
    }

    /// The JSON form: one object on one line, without a trailing newline.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers cannot fail; fall back to an object that
        // every reader refuses rather than panic.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// Parses one context, ignoring unknown fields, refusing another version.
    pub fn from_json(text: &[u8]) -> Result<NetContext> {
        #[derive(Deserialize)]
        struct Version {
            v: Option<u32>,
        }
        let what = "network context";
        let version: Version =
            serde_json::from_slice(text).map_err(|e| Error::msg(what, e.to_string()))?;
        match version.v {
            Some(VERSION) => {}
            Some(v) => {
                return Err(Error::msg(
                    what,
                    format!("version {v} is not the supported version {VERSION}"),
                ));
            }
            None => return Err(Error::msg(what, "no version (\"v\")")),
        }
        serde_json::from_slice(text).map_err(|e| Error::msg(what, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn veth() -> NetContext {
        NetContext {
            host: Some("veth0a1b2c3".into()),
            peer: Some("veth9f8e7d6".into()),
            name: Some("eth0".into()),
            bridge: Some("br0".into()),
            address: Some("198.18.0.2/24".into()),
            gateway: Some("198.18.0.1".into()),
            mtu: Some(1400),
            ..NetContext::new(NetworkKind::Veth)
        }
    }

    #[test]
    fn round_trips() {
        let c = veth();
        assert_eq!(NetContext::from_json(c.to_json().as_bytes()).unwrap(), c);
        let l = NetContext::new(NetworkKind::Loopback);
        assert_eq!(l.to_json(), r#"{"v":1,"type":"loopback"}"#);
    }

    #[test]
    fn writes_the_documented_form() {
        assert_eq!(
            veth().to_json(),
            r#"{"v":1,"type":"veth","host":"veth0a1b2c3","peer":"veth9f8e7d6","name":"eth0","bridge":"br0","address":"198.18.0.2/24","gateway":"198.18.0.1","mtu":1400}"#
        );
    }

    #[test]
    fn ignores_unknown_fields() {
        let c = NetContext::from_json(
            br#"{"v":1,"type":"netns","nspath":"/run/netns/x","later":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(c.kind, NetworkKind::Netns);
        assert_eq!(c.nspath.as_deref(), Some("/run/netns/x"));
    }

    #[test]
    fn refuses_other_versions_and_garbage() {
        let e = NetContext::from_json(br#"{"v":2,"type":"veth"}"#).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        assert!(NetContext::from_json(br#"{"type":"veth"}"#).is_err());
        assert!(NetContext::from_json(br#"{"v":1,"type":"tap"}"#).is_err());
        assert!(NetContext::from_json(b"[").is_err());
    }
}
