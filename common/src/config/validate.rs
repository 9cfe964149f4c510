//! Checks a parsed config for what its types cannot say, and normalises it.
//!
//! Everything here runs before `ns-exec` creates anything, so a bad config never leaves a
//! half-made container behind. Each error names the JSON path of the field. Strings that reach
//! system calls are checked for NUL bytes here, so no later `CString::new` can fail.

use std::net::IpAddr;
use std::path::{Component, Path};

use super::{Config, Device, MountKind, NetworkKind};
use crate::error::{Error, Result};
use crate::ns::Namespace;

/// `HOST_NAME_MAX` on Linux.
const HOST_NAME_MAX: usize = 64;
/// `IFNAMSIZ - 1`: the longest interface name the kernel takes.
pub const IFNAME_MAX: usize = 15;
/// Longest name we accept for anything that becomes a path component.
pub const NAME_MAX: usize = 128;

/// Whether `name` may become a path component or a cgroup name: `[A-Za-z0-9_.-]+`, not `.` or
/// `..`, at most [`NAME_MAX`] bytes.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Checks that an in-container path is absolute and has no `..` and no NUL, and returns it
/// with duplicate slashes and `.` components removed.
pub fn container_path(path: &str, field: &str) -> Result<String> {
    no_nul(path, field)?;
    if !path.starts_with('/') {
        return Err(Error::config(
            field,
            format!("{path:?} is not an absolute path"),
        ));
    }
    let mut out = String::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => {
                out.push('/');
                out.push_str(&part.to_string_lossy());
            }
            Component::ParentDir => {
                return Err(Error::config(
                    field,
                    format!("{path:?} contains \"..\", which could leave the container's root"),
                ));
            }
            Component::Prefix(_) => unreachable!("no prefixes on Unix"),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn no_nul(s: &str, field: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(Error::config(field, "contains a NUL byte"));
    }
    Ok(())
}

fn ip(s: &str, field: &str) -> Result<IpAddr> {
    s.parse()
        .map_err(|_| Error::config(field, format!("{s:?} is not an IP address")))
}

fn cidr(s: &str, field: &str) -> Result<IpAddr> {
    let bad = || {
        Error::config(
            field,
            format!("{s:?} is not an address in CIDR form (a.b.c.d/n)"),
        )
    };
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max || len.to_string() != s.split_once('/').map_or("", |p| p.1) {
        return Err(bad());
    }
    Ok(addr)
}

/// Parses a user spec `name|uid[:group|gid]` for syntax only; names are looked up later, in the
/// container's own files.
pub fn check_user_spec(spec: &str, field: &str) -> Result<()> {
    no_nul(spec, field)?;
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    for (part, what) in [(Some(user), "user"), (group, "group")] {
        let Some(part) = part else { continue };
        if part.is_empty() {
            return Err(Error::config(field, format!("empty {what} in {spec:?}")));
        }
        if part.bytes().all(|b| b.is_ascii_digit()) {
            if part.parse::<u32>().map_or(true, |n| n == u32::MAX) {
                return Err(Error::config(
                    field,
                    format!("{what} id {part} is out of range"),
                ));
            }
        } else if part
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b':' || b == b'/' || b.is_ascii_control())
            || part.starts_with(['-', '+'])
        {
            return Err(Error::config(
                field,
                format!("{spec:?} is not a valid {what} name or id"),
            ));
        }
    }
    Ok(())
}

impl Config {
    /// Validates and normalises the config; `base` is the folder a relative rootfs is relative
    /// to. Checks that the rootfs is an existing directory other than `/`.
    pub fn validate(&mut self, base: &Path) -> Result<()> {
        let rootfs = match &self.rootfs {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => base.join(p),
            None => base.to_path_buf(),
        };
        if rootfs.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(Error::config("rootfs", "contains a NUL byte"));
        }
        let rootfs = std::fs::canonicalize(&rootfs)
            .map_err(|e| Error::io(format!("config: rootfs: {}", rootfs.display()), e))?;
        if !rootfs.is_dir() {
            return Err(Error::config(
                "rootfs",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        if rootfs == Path::new("/") {
            return Err(Error::config(
                "rootfs",
                "the host's \"/\" cannot be a container's root",
            ));
        }
        self.rootfs = Some(rootfs);
        self.validate_fields()
    }

    /// The checks that need no file system.
    pub fn validate_fields(&mut self) -> Result<()> {
        if let Some(h) = &self.hostname {
            no_nul(h, "hostname")?;
            if h.len() > HOST_NAME_MAX {
                return Err(Error::config(
                    "hostname",
                    format!("longer than {HOST_NAME_MAX} bytes"),
                ));
            }
            if !h.is_empty() && !self.has_namespace(Namespace::Uts) {
                return Err(Error::config(
                    "hostname",
                    "needs the NEWUTS namespace (it would rename the host)",
                ));
            }
        }
        if let Some(u) = &self.user {
            check_user_spec(u, "user")?;
        }
        if let Some(w) = &self.working_dir {
            self.working_dir = Some(container_path(w, "working_dir")?);
        }
        self.check_environment()?;
        if !self.has_namespace(Namespace::Mount) {
            return Err(Error::config(
                "namespaces",
                "NEWNS is required: the container's mounts must not reach the host",
            ));
        }
        if let Some(n) = self.network.take() {
            if !self.networks.is_empty() {
                return Err(Error::config(
                    "network",
                    "give either \"network\" or \"networks\", not both",
                ));
            }
            self.networks.push(n);
        }
        self.check_networks()?;
        self.check_mounts()?;
        for (i, d) in self.device_nodes.iter_mut().enumerate() {
            check_device_node(d, &format!("device_nodes[{i}]"))?;
        }
        self.check_cgroups()?;
        Ok(())
    }

    fn check_environment(&self) -> Result<()> {
        let mut keys: Vec<&str> = Vec::new();
        for (i, entry) in self.environment.iter().enumerate() {
            let field = format!("environment[{i}]");
            no_nul(entry, &field)?;
            let Some((key, _)) = entry.split_once('=') else {
                return Err(Error::config(field, format!("{entry:?} is not KEY=VALUE")));
            };
            if key.is_empty() {
                return Err(Error::config(field, format!("{entry:?} has an empty name")));
            }
            if keys.contains(&key) {
                return Err(Error::config(field, format!("{key} is set twice")));
            }
            keys.push(key);
        }
        Ok(())
    }

    fn check_networks(&self) -> Result<()> {
        /// Whether `name` is an interface name the kernel takes literally: `dev_valid_name`
        /// (net/core/dev.c), plus no `%`, which the kernel would expand (`eth%d`).
        fn is_ifname(name: &str) -> bool {
            !name.is_empty()
                && name.len() <= IFNAME_MAX
                && name != "."
                && name != ".."
                && !name.chars().any(|c| {
                    c == '/' || c == ':' || c == '%' || c.is_whitespace() || c.is_control()
                })
        }
        // Without its own network namespace the container runs in the caller's: a veth peer,
        // lo's MTU or a route would then change the host's network. A `netns` network switches
        // to another namespace first, so what follows it changes that one.
        let mut own_netns = self.has_namespace(Namespace::Net);
        for (i, n) in self.networks.iter().enumerate() {
            let at = |f: &str| format!("networks[{i}].{f}");
            if n.kind == NetworkKind::Netns {
                own_netns = true;
            } else if !own_netns {
                return Err(Error::config(
                    at("type"),
                    "needs the NEWNET namespace (it would change the host's network)",
                ));
            }
            if let Some(mtu) = n.mtu {
                if !(68..=65535).contains(&mtu) {
                    return Err(Error::config(
                        at("mtu"),
                        format!("{mtu} is not in 68..65535"),
                    ));
                }
            }
            if let Some(a) = &n.address {
                cidr(a, &at("address"))?;
            }
            if let Some(g) = &n.gateway {
                ip(g, &at("gateway"))?;
            }
            for (k, v) in &n.context {
                no_nul(v, &at(&format!("context.{k}")))?;
            }
            match n.kind {
                NetworkKind::Veth => {
                    for key in ["bridge", "prefix"] {
                        if n.context.get(key).is_none_or(|v| v.is_empty()) {
                            return Err(Error::config(
                                at("context"),
                                format!("a veth network needs \"{key}\""),
                            ));
                        }
                    }
                    for key in ["bridge", "name"] {
                        let Some(name) = n.context.get(key) else {
                            continue;
                        };
                        if !is_ifname(name) {
                            return Err(Error::config(
                                at(&format!("context.{key}")),
                                format!("{name:?} is not a valid interface name"),
                            ));
                        }
                    }
                    // ns-veth names the ends prefix + 7 random hex digits (ns_veth::name).
                    let prefix = &n.context["prefix"];
                    if !is_ifname(prefix) || prefix.len() > IFNAME_MAX - 7 {
                        return Err(Error::config(
                            at("context.prefix"),
                            format!(
                                "{prefix:?} is not a valid prefix: at most {} bytes of an \
                                 interface name, leaving 7 for the random suffix",
                                IFNAME_MAX - 7
                            ),
                        ));
                    }
                }
                NetworkKind::Netns => {
                    if n.context.get("nspath").is_none_or(|v| v.is_empty()) {
                        return Err(Error::config(
                            at("context"),
                            "a netns network needs \"nspath\"",
                        ));
                    }
                }
                NetworkKind::Loopback => {}
            }
        }
        if !own_netns && !self.routes.is_empty() {
            return Err(Error::config(
                "routes",
                "need the NEWNET namespace or a netns network (they would change the host's routes)",
            ));
        }
        for (i, r) in self.routes.iter().enumerate() {
            let at = |f: &str| format!("routes[{i}].{f}");
            if r.destination.is_none() && r.source.is_none() && r.gateway.is_none() {
                return Err(Error::config(
                    format!("routes[{i}]"),
                    "needs at least one of destination, source, gateway",
                ));
            }
            let mut families = Vec::new();
            if let Some(d) = &r.destination {
                families.push(cidr(d, &at("destination"))?.is_ipv4());
            }
            if let Some(s) = &r.source {
                families.push(cidr(s, &at("source"))?.is_ipv4());
            }
            if let Some(g) = &r.gateway {
                families.push(ip(g, &at("gateway"))?.is_ipv4());
            }
            if families.windows(2).any(|w| w[0] != w[1]) {
                return Err(Error::config(
                    format!("routes[{i}]"),
                    "mixes IPv4 and IPv6 addresses",
                ));
            }
            if r.interface_name.is_empty() || r.interface_name.len() > IFNAME_MAX {
                return Err(Error::config(
                    at("interface_name"),
                    "is not a valid interface name",
                ));
            }
        }
        Ok(())
    }

    fn check_mounts(&mut self) -> Result<()> {
        for (i, m) in self.mounts.iter_mut().enumerate() {
            let at = |f: &str| format!("mounts[{i}].{f}");
            if m.kind == MountKind::Devtmpfs {
                continue;
            }
            let Some(dest) = &m.destination else {
                return Err(Error::config(at("destination"), "is required"));
            };
            let dest = container_path(dest, &at("destination"))?;
            if dest == "/" {
                return Err(Error::config(
                    at("destination"),
                    "cannot be the root itself",
                ));
            }
            for fs in ["/proc", "/sys"] {
                if dest == fs || dest.starts_with(&format!("{fs}/")) {
                    return Err(Error::config(
                        at("destination"),
                        format!("{dest:?} is inside {fs}, which ns-init manages"),
                    ));
                }
            }
            m.destination = Some(dest);
            match m.kind {
                MountKind::Bind => {
                    let Some(src) = &m.source else {
                        return Err(Error::config(at("source"), "a bind mount needs a source"));
                    };
                    if !src.is_absolute() {
                        return Err(Error::config(
                            at("source"),
                            format!("{} is not an absolute path", src.display()),
                        ));
                    }
                    if src.as_os_str().as_encoded_bytes().contains(&0) {
                        return Err(Error::config(at("source"), "contains a NUL byte"));
                    }
                    if m.size.is_some() {
                        return Err(Error::config(at("size"), "applies to tmpfs mounts only"));
                    }
                }
                MountKind::Tmpfs => {
                    if m.source.is_some() {
                        return Err(Error::config(at("source"), "a tmpfs mount has no source"));
                    }
                    if m.size.is_some_and(|s| s.0 <= 0) {
                        return Err(Error::config(at("size"), "must be positive"));
                    }
                }
                MountKind::Devtmpfs => {}
            }
        }
        Ok(())
    }

    fn check_cgroups(&self) -> Result<()> {
        let Some(c) = &self.cgroups else {
            return Ok(());
        };
        if let Some(name) = &c.name {
            if !is_valid_name(name) {
                return Err(Error::config(
                    "cgroups.name",
                    format!("{name:?} is not a valid name ([A-Za-z0-9_.-]+)"),
                ));
            }
        }
        if let Some(parent) = &c.parent {
            if parent
                .split('/')
                .filter(|p| !p.is_empty())
                .any(|p| !is_valid_name(p))
            {
                return Err(Error::config(
                    "cgroups.parent",
                    format!("{parent:?} is not a path of valid names"),
                ));
            }
        }
        for (field, v) in [
            ("memory", c.memory),
            ("memory_reservation", c.memory_reservation),
        ] {
            if v.is_some_and(|b| b.0 < 0) {
                return Err(Error::config(
                    format!("cgroups.{field}"),
                    "must not be negative",
                ));
            }
        }
        if let (Some(mem), Some(swap)) = (c.memory, c.memory_swap) {
            if swap.0 != -1 && swap.0 < mem.0 {
                return Err(Error::config(
                    "cgroups.memory_swap",
                    "is memory + swap, so it cannot be below memory",
                ));
            }
        }
        if c.cpu_shares.is_some_and(|s| !(2..=262_144).contains(&s)) {
            return Err(Error::config("cgroups.cpu_shares", "must be in 2..262144"));
        }
        if c.cpu_quota.is_some_and(|q| q != -1 && q < 1000) {
            return Err(Error::config(
                "cgroups.cpu_quota",
                "must be -1 or at least 1000",
            ));
        }
        if c.cpu_period
            .is_some_and(|p| !(1000..=1_000_000).contains(&p))
        {
            return Err(Error::config(
                "cgroups.cpu_period",
                "must be in 1000..1000000",
            ));
        }
        if c.pids_max == Some(0) {
            return Err(Error::config("cgroups.pids_max", "must be at least 1"));
        }
        if let Some(f) = &c.freezer {
            if f != "FROZEN" && f != "THAWED" {
                return Err(Error::config("cgroups.freezer", "must be FROZEN or THAWED"));
            }
        }
        for (i, d) in c.allowed_devices.iter().enumerate() {
            let at = format!("cgroups.allowed_devices[{i}]");
            if d.major_number < -1 || d.minor_number < -1 {
                return Err(Error::config(at, "device numbers are -1 (any) or positive"));
            }
            let perms = d.cgroup_permissions.as_deref().unwrap_or("rwm");
            if perms.is_empty() || !perms.chars().all(|ch| "rwm".contains(ch)) {
                return Err(Error::config(
                    format!("{at}.cgroup_permissions"),
                    format!("{perms:?} is not a subset of \"rwm\""),
                ));
            }
        }
        Ok(())
    }
}

fn check_device_node(d: &mut Device, at: &str) -> Result<()> {
    let Some(path) = &d.path else {
        return Err(Error::config(format!("{at}.path"), "is required"));
    };
    let path = container_path(path, &format!("{at}.path"))?;
    if !path.starts_with("/dev/") {
        return Err(Error::config(
            format!("{at}.path"),
            "device nodes go under /dev",
        ));
    }
    if !(0..=0xfff).contains(&d.major_number) || !(0..=0xfffff).contains(&d.minor_number) {
        return Err(Error::config(at, "device numbers are out of range"));
    }
    if d.file_mode.is_some_and(|m| m > 0o7777) {
        return Err(Error::config(
            format!("{at}.file_mode"),
            "has bits beyond 07777",
        ));
    }
    d.path = Some(path);
    Ok(())
}
