//! The container config: `container.json` in the 2014 nsinit schema, read strictly.
//!
//! Reading is two steps (raw, then validated). [`Config::parse`] deserialises with serde, which
//! accepts every shape the 2014 schema had (namespaces as a list or a map, `network` or
//! `networks`, sizes as numbers or `"64m"`) and rejects unknown keys; each error carries the JSON
//! path of the bad field. [`Config::validate`] then checks what types cannot (env syntax,
//! absolute paths, hostname length, names that become paths) and normalises (`network` is folded
//! into `networks`, the rootfs made absolute). Serialising a validated config gives its canonical
//! form, which `ns-exec` hands to `ns-init`; parsing that again gives the same value.
//!
//! The field names follow the 2014 schema; each type says which OCI runtime-spec field maps
//! onto it, so an OCI `config.json` front can fill the same types later.

mod shapes;
pub mod validate;

pub use shapes::{Bytes, DeviceType};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::caps::CapSet;
use crate::error::{Error, Result};
use crate::ns::Namespace;

/// The largest config file we read; a bigger one is refused before it is parsed.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// One container, as `container.json` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The root filesystem directory; relative paths are relative to the config file's folder.
    /// Absent means the current directory, as nsinit did. (OCI: `root.path`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<PathBuf>,
    /// The hostname to set; absent or empty leaves the UTS namespace's name alone.
    /// (OCI: `hostname`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Remount the root filesystem read-only after the pivot. (OCI: `root.readonly`.)
    #[serde(default)]
    pub readonly_fs: bool,
    /// Use `MS_MOVE` + `chroot` instead of `pivot_root` (for a rootfs on a ramdisk).
    #[serde(default)]
    pub no_pivot_root: bool,
    /// `name|uid[:group|gid]`, looked up in the container's `/etc/passwd` and `/etc/group`.
    /// An all-digit spec is always a number. (OCI: `process.user`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The command's working directory inside the container. (OCI: `process.cwd`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `KEY=VALUE` entries: the command's whole environment. `PATH` from here is used to find
    /// the command. (OCI: `process.env`.)
    #[serde(default)]
    pub environment: Vec<String>,
    /// Give the container a pseudo-terminal as its console. (OCI: `process.terminal`.)
    #[serde(default)]
    pub tty: bool,
    /// The namespaces to create, as a list of names or a map of name to bool.
    /// Absent means mount, uts, ipc, pid and net. (OCI: `linux.namespaces`.)
    #[serde(default = "shapes::default_namespaces", with = "shapes::namespaces")]
    pub namespaces: Vec<Namespace>,
    /// The capabilities to keep, as a list of names (`"ALL"` for every one) or a map of name to
    /// bool; everything else is dropped from every set. Absent means Docker's default list
    /// ([`crate::caps::DEFAULT_KEEP`]). (OCI: `process.capabilities.bounding` and friends.)
    #[serde(default = "CapSet::default_keep", with = "shapes::capabilities")]
    pub capabilities: CapSet,
    /// Networks, applied in order. (OCI: left to hooks/CNI.)
    #[serde(default)]
    pub networks: Vec<Network>,
    /// The older single-network form; folded into `networks` by validation.
    #[serde(default, skip_serializing)]
    pub network: Option<Network>,
    /// Routes added inside the container after the networks.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Extra mounts inside the container. (OCI: `mounts`.)
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Device nodes to create in the container's `/dev`. (OCI: `linux.devices`.)
    #[serde(default)]
    pub device_nodes: Vec<Device>,
    /// The cgroup and its limits. (OCI: `linux.cgroupsPath` + `linux.resources`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<Cgroups>,
    /// Security labels and the legacy `restrictions` switch.
    #[serde(default)]
    pub context: Context,
    /// Mask `/proc/kcore` and friends and make `/proc/sys` etc. read-only. On by default.
    /// (OCI: `linux.maskedPaths` / `linux.readonlyPaths`.)
    #[serde(default = "shapes::yes")]
    pub restrictions: bool,
    /// Set `PR_SET_NO_NEW_PRIVS` before running the command. (OCI: `process.noNewPrivileges`.)
    #[serde(default)]
    pub no_new_privileges: bool,
}

/// One network of `networks[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The strategy.
    #[serde(rename = "type")]
    pub kind: NetworkKind,
    /// Strategy options: `bridge` and `prefix` for veth, `nspath` for netns.
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// The container side's address in CIDR form (`172.17.0.2/16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The MTU of both ends (and of `lo` for loopback); absent means the kernel's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// The network strategies of the 2014 schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// A veth pair, the host end on a bridge.
    Veth,
    /// Bring `lo` up.
    Loopback,
    /// Join an existing network namespace by path.
    Netns,
}

/// One route of `routes[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Destination in CIDR form; absent means the default route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Source in CIDR form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Gateway address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The interface the route goes out of.
    pub interface_name: String,
}

/// One mount of `mounts[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// `bind`, `tmpfs`, or the 2014 marker `devtmpfs` (a tmpfs `/dev`, which is always made).
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// The host path to bind (bind mounts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    /// The absolute path inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Writable; bind mounts are read-only unless this is set.
    #[serde(default)]
    pub writable: bool,
    /// Make the mount `MS_PRIVATE` (the default propagation is inherited from the rootfs,
    /// which is private).
    #[serde(default)]
    pub private: bool,
    /// tmpfs size in bytes or with a suffix (`"64m"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Bytes>,
}

/// The kinds of `mounts[]` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A bind mount of a host path.
    Bind,
    /// A fresh tmpfs.
    Tmpfs,
    /// The 2014 marker for a tmpfs `/dev`; ns-tools always makes one, so it changes nothing.
    Devtmpfs,
}

/// A device node, in `device_nodes[]` or `cgroups.allowed_devices[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// `c` or `b` (the 2014 files wrote the rune as a number: 99 or 98).
    #[serde(rename = "type")]
    pub kind: DeviceType,
    /// The path inside the container (required for `device_nodes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Major number; -1 is the cgroup wildcard `*`.
    pub major_number: i64,
    /// Minor number; -1 is the cgroup wildcard `*`.
    pub minor_number: i64,
    /// The cgroup access string (`rwm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_permissions: Option<String>,
    /// Permission bits of the node (438 = 0666).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    /// Owner of the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group of the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// The `cgroups` object: where the container's cgroup goes and its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cgroups {
    /// Leaf cgroup name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Parent path, relative to the caller's own cgroup (as `/proc/self/cgroup` names it); a
    /// leading `/` makes it absolute, from the root of each hierarchy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Skip the device allow-list (privileged). `device_access` is the older spelling.
    #[serde(default, alias = "device_access")]
    pub allow_all_devices: bool,
    /// Devices the container may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_devices: Vec<Device>,
    /// Memory limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Bytes>,
    /// Memory soft limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<Bytes>,
    /// Memory + swap limit in bytes; -1 is unlimited. Written only when set (cgroup v2 gets
    /// the swap part alone, `memory_swap - memory`); never derived from `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<Bytes>,
    /// Relative CPU weight (v1 `cpu.shares`, 2..262144).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// CPU time per period, in microseconds; -1 is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// The period for `cpu_quota`, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// CPUs the container may run on (`0-3,5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    /// `FROZEN` or `THAWED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freezer: Option<String>,
    /// systemd parent slice (2014 systemd driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<String>,
}

/// The `context` map of the 2014 schema, with its known keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// AppArmor profile to run the command under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    /// SELinux label of the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_label: Option<String>,
    /// SELinux label of the container's mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_label: Option<String>,
    /// The 2014 switch for the masked and read-only paths; a non-empty value turns them on,
    /// which is already the default (see [`Config::restrictions`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<String>,
}

impl Config {
    /// [`Config::parse`], refusing a text over [`MAX_CONFIG_BYTES`] (read with one byte more
    /// than that, to notice).
    fn parse_bounded(text: &[u8]) -> Result<Config> {
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(Error::msg(
                "read config",
                format!("larger than {MAX_CONFIG_BYTES} bytes"),
            ));
        }
        Config::parse(text)
    }

    /// Parses a config document; errors name the JSON path of the bad field.
    pub fn parse(text: &[u8]) -> Result<Config> {
        // Tracking the path of every field costs as much as the parse itself, on every start;
        // a good config never needs it. Only a bad one is parsed again, with the tracking.
        if let Ok(config) = serde_json::from_slice::<Config>(text) {
            return Ok(config);
        }
        let mut de = serde_json::Deserializer::from_slice(text);
        let config: Config = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let (path, message) = shapes::describe_serde_error(path, e.inner());
            Error::config(path, message)
        })?;
        de.end().map_err(|e| {
            let (path, message) = shapes::describe_serde_error(String::new(), &e);
            Error::config(path, message)
        })?;
        Ok(config)
    }

    /// Reads, parses and validates the config at `path`; a relative `rootfs` is taken relative
    /// to the file's folder. `rootfs`, when given, replaces the config's (`--rootfs`).
    pub fn load(path: &Path, rootfs: Option<&Path>) -> Result<Config> {
        let what = || format!("config {}", path.display());
        let file =
            std::fs::File::open(path).map_err(|e| Error::io(format!("open {}", what()), e))?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Sized from the file, so a small config is one read, not a series of growing ones.
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut text = Vec::with_capacity(size.min(MAX_CONFIG_BYTES + 1) as usize + 1);
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|e| Error::io(format!("read {}", what()), e))?;
        let mut config = Config::parse_bounded(&text)?;
        if let Some(r) = rootfs {
            config.rootfs = Some(r.to_path_buf());
        }
        config.validate(&base)?;
        Ok(config)
    }

    /// Reads at most [`MAX_CONFIG_BYTES`] from `reader`, parses, and validates: with `base`, in
    /// full (a relative rootfs is relative to `base`, and must exist); without, only the fields
    /// ([`Config::validate_fields`]).
    pub fn read(reader: impl Read, base: Option<&Path>) -> Result<Config> {
        let mut text = Vec::new();
        reader
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|e| Error::io("read config", e))?;
        let mut config = Config::parse_bounded(&text)?;
        match base {
            Some(base) => config.validate(base)?,
            None => config.validate_fields()?,
        }
        Ok(config)
    }

    /// The canonical JSON form of a validated config.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("config types serialise without failure")
    }

    /// Whether namespace `ns` is created.
    pub fn has_namespace(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }

    /// The container's default name: the cgroup name, else the hostname.
    pub fn default_name(&self) -> Option<&str> {
        self.cgroups
            .as_ref()
            .and_then(|c| c.name.as_deref())
            .or(self.hostname.as_deref())
            .filter(|n| !n.is_empty())
    }
}

#[cfg(test)]
mod tests;
