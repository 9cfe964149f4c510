//! The value shapes of `container.json` that plain derives cannot read.
//!
//! Namespaces and capabilities come as a list of names or as a map of name to bool (both shapes
//! were in use in 2014); sizes come as numbers or as strings with a unit; device types as `"c"`
//! or as the rune number 99. Each reader reports an unknown name or a bad value itself, so the
//! error names the value and `serde_path_to_error` adds where it sits.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::caps::{self, CapSet};
use crate::ns::Namespace;

/// `true`, for `#[serde(default = ...)]`.
pub(crate) fn yes() -> bool {
    true
}

/// The namespaces of the 2014 sample: all but user (and cgroup, which came later).
pub(crate) fn default_namespaces() -> Vec<Namespace> {
    vec![
        Namespace::Mount,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Pid,
        Namespace::Net,
    ]
}

/// Turns a serde_json error at `path` into our wording: `(path, message)`. A bad value's
/// message drops serde_json's "at line L column C" (the path says where); a syntax error keeps
/// the position, as there is no path to name. An unknown key's path stops at its object, and the
/// list of every field the object could have had is left out.
pub(crate) fn describe_serde_error(path: String, e: &serde_json::Error) -> (String, String) {
    let text = e.to_string();
    let location = format!(" at line {} column {}", e.line(), e.column());
    let message = match e.classify() {
        serde_json::error::Category::Data => {
            text.strip_suffix(&location).unwrap_or(&text).to_string()
        }
        _ => match text.strip_suffix(&location) {
            Some(m) => format!("{m} (line {}, column {})", e.line(), e.column()),
            None => text.clone(),
        },
    };
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return (path, message);
    };
    let key = rest.split('`').next().unwrap_or_default();
    let parent = path
        .strip_suffix(key)
        .map(|p| p.trim_end_matches('.').to_string())
        .unwrap_or(path);
    (parent, format!("unknown field `{key}`"))
}

/// One namespace name, read with its own error message.
struct NsName(Namespace);

impl<'de> Deserialize<'de> for NsName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Namespace::from_name(&name)
            .map(NsName)
            .ok_or_else(|| de::Error::custom(format!("unknown namespace {name:?}")))
    }
}

/// A namespace list entry: a name, or an object `{"type"|"key": NAME, "enabled": bool}`
/// (the March-April 2014 shape and the OCI shape).
struct NsEntry(Option<Namespace>);

impl<'de> Deserialize<'de> for NsEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NsEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a namespace name or {\"type\": name, \"enabled\": bool}")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<NsEntry, E> {
                Namespace::from_name(name)
                    .map(|ns| NsEntry(Some(ns)))
                    .ok_or_else(|| E::custom(format!("unknown namespace {name:?}")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NsEntry, A::Error> {
                let mut ns = None;
                let mut enabled = true;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "type" | "key" => ns = Some(map.next_value::<NsName>()?.0),
                        "enabled" => enabled = map.next_value()?,
                        // The 2014 objects carried the flag value and proc file name too;
                        // both follow from the name.
                        "value" | "file" => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                        other => {
                            return Err(de::Error::custom(format!("unknown field `{other}`")));
                        }
                    }
                }
                let ns = ns.ok_or_else(|| de::Error::missing_field("type"))?;
                Ok(NsEntry(enabled.then_some(ns)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `#[serde(with)]` for the namespace set: a list or a map in, a sorted list of names out.
pub(crate) mod namespaces {
    use super::*;

    pub fn serialize<S: Serializer>(list: &[Namespace], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for ns in list {
            seq.serialize_element(ns.name())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Namespace>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<Namespace>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of namespace names or a map of name to bool")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(NsEntry(entry)) = seq.next_element()? {
                    if let Some(ns) = entry {
                        if out.contains(&ns) {
                            return Err(de::Error::custom(format!(
                                "namespace {} is listed twice",
                                ns.name()
                            )));
                        }
                        out.push(ns);
                    }
                }
                out.sort();
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                let mut seen = Vec::new();
                while let Some(NsName(ns)) = map.next_key()? {
                    if seen.contains(&ns) {
                        return Err(de::Error::custom(format!(
                            "namespace {} is listed twice",
                            ns.name()
                        )));
                    }
                    seen.push(ns);
                    if map.next_value::<bool>()? {
                        out.push(ns);
                    }
                }
                out.sort();
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// A capability name, or `ALL`, read with its own error message.
struct CapName(CapSet);

impl<'de> Deserialize<'de> for CapName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if name.eq_ignore_ascii_case("ALL") {
            return Ok(CapName(CapSet::all()));
        }
        let n = caps::number(&name)
            .ok_or_else(|| de::Error::custom(format!("unknown capability {name:?}")))?;
        let mut set = CapSet(0);
        set.insert(n);
        Ok(CapName(set))
    }
}

/// `#[serde(with)]` for the keep-list: a list or a map in, a list of names out.
pub(crate) mod capabilities {
    use super::*;

    pub fn serialize<S: Serializer>(set: &CapSet, s: S) -> Result<S::Ok, S::Error> {
        let names = set.names();
        let mut seq = s.serialize_seq(Some(names.len()))?;
        for name in names {
            seq.serialize_element(&name)?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CapSet, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CapSet;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of capability names or a map of name to bool")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CapSet, A::Error> {
                let mut set = CapSet(0);
                while let Some(CapName(c)) = seq.next_element()? {
                    set.0 |= c.0;
                }
                Ok(set)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CapSet, A::Error> {
                let mut set = CapSet(0);
                while let Some(CapName(c)) = map.next_key()? {
                    if map.next_value::<bool>()? {
                        set.0 |= c.0;
                    }
                }
                Ok(set)
            }
        }
        d.deserialize_any(V)
    }
}

/// A size in bytes: a number, or a string with a binary unit (`"64m"`, `"1G"`); -1 means
/// unlimited where a field allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub i64);

impl Bytes {
    /// Parses `"1234"`, `"64k"`, `"64m"`, `"2g"`, `"1t"` (also with a trailing `b`/`B`).
    pub fn parse(text: &str) -> Option<Bytes> {
        let lower = text.trim().to_ascii_lowercase();
        let body = lower.strip_suffix('b').unwrap_or(&lower);
        let (digits, shift) = match body.chars().last()? {
            'k' => (&body[..body.len() - 1], 10),
            'm' => (&body[..body.len() - 1], 20),
            'g' => (&body[..body.len() - 1], 30),
            't' => (&body[..body.len() - 1], 40),
            _ => (body, 0),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: i64 = digits.parse().ok()?;
        n.checked_mul(1i64 << shift).map(Bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes (a number, or a string like \"64m\")")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Bytes, E> {
                if n < -1 {
                    return Err(E::custom(format!("expected bytes, got {n}")));
                }
                Ok(Bytes(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Bytes, E> {
                i64::try_from(n)
                    .map(Bytes)
                    .map_err(|_| E::custom(format!("expected bytes, got {n} (too large)")))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Bytes, E> {
                Err(E::custom(format!("expected bytes, got {n}")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Bytes, E> {
                Bytes::parse(s).ok_or_else(|| E::custom(format!("expected bytes, got {s:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A device node type: character or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// `c`, a character device.
    Char,
    /// `b`, a block device.
    Block,
}

impl Serialize for DeviceType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            DeviceType::Char => "c",
            DeviceType::Block => "b",
        })
    }
}

impl<'de> Deserialize<'de> for DeviceType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DeviceType;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"c\" or \"b\" (or the rune numbers 99 and 98)")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<DeviceType, E> {
                match n {
                    99 => Ok(DeviceType::Char),
                    98 => Ok(DeviceType::Block),
                    _ => Err(E::custom(format!(
                        "expected a device type \"c\" or \"b\", got {n}"
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<DeviceType, E> {
                Err(E::custom(format!(
                    "expected a device type \"c\" or \"b\", got {n}"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DeviceType, E> {
                match s {
                    "c" | "u" => Ok(DeviceType::Char),
                    "b" => Ok(DeviceType::Block),
                    _ => Err(E::custom(format!(
                        "expected a device type \"c\" or \"b\", got {s:?}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}
