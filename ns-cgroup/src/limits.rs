//! The limits of a `cgroups` object turned into a plan: which file of which controller gets which
//! value, on v1 and on v2. Pure, so every conversion is unit-tested; [`crate::cgroup`] applies it.
//!
//! Conversions (the ones runc and crun document, so users get the numbers they expect):
//! - `memory` → v1 `memory.limit_in_bytes`, v2 `memory.max`;
//! - `memory_reservation` → v1 `memory.soft_limit_in_bytes`, v2 `memory.low`;
//! - `memory_swap` (memory + swap, -1 = unlimited) → v1 `memory.memsw.limit_in_bytes`, v2
//!   `memory.swap.max` = swap − memory (swap alone). Written only when set, and an error when the
//!   kernel has no swap accounting; never derived from `memory` (the 2014 code forced 2×memory);
//! - `cpu_shares` → v1 `cpu.shares`, v2 `cpu.weight` = 1 + ((shares − 2) × 9999) / 262142
//!   (runc's `ConvertCPUSharesToCgroupV2Value`: 2 → 1, 1024 → 39, 262144 → 10000);
//! - `cpu_quota`/`cpu_period` → v1 `cpu.cfs_period_us` then `cpu.cfs_quota_us`, v2 `cpu.max`
//!   = `QUOTA PERIOD` (`max` for -1); on v2 a missing half keeps its current value;
//! - `cpuset_cpus`/`cpuset_mems` → `cpuset.cpus`/`cpuset.mems` (v1 and v2);
//! - `pids_max` → `pids.max`;
//! - devices → v1 `devices.deny` `a` then one `devices.allow` per rule; v2 a
//!   `BPF_PROG_TYPE_CGROUP_DEVICE` program ([`crate::devices`]);
//! - `freezer` → v1 `freezer.state`, v2 `cgroup.freeze`, applied last.
//!
//! On v1 the kernel refuses a `memory.limit_in_bytes` above the current
//! `memory.memsw.limit_in_bytes` (and a memsw limit below the memory limit), so when both are
//! set and the new memory limit is above the current memsw limit, memsw is written first. The
//! order is decided here, from [`Current`], so the plan printed is the order applied.
//!
//! Without `allowed_devices` and `allow_all_devices`, the device policy is left as inherited
//! from the parent: the caller decides policy, and an empty list must not lock a container out of
//! `/dev/null`. See [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html) and the
//! kernel's `Documentation/admin-guide/cgroup-v2.rst`.

use common::config::{Cgroups, Device, DeviceType};
use common::{Error, Result};

use crate::layout::Kind;

/// One step of applying limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The `cgroups` field this comes from (for error messages).
    pub field: &'static str,
    /// The controller whose hierarchy (v1) or which must be enabled (v2); `""` for the v2 core
    /// files (`cgroup.freeze`).
    pub controller: &'static str,
    /// What to do.
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write `value` to `file` in the controller's directory.
    Write {
        /// The file name, e.g. `memory.max`.
        file: &'static str,
        /// The text to write.
        value: String,
    },
    /// v2: attach a device-cgroup eBPF program allowing exactly these rules.
    DeviceProgram(Vec<Rule>),
}

/// One device allow rule: type, numbers (`None` = any) and access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `Some('c')`, `Some('b')`, or `None` for any type.
    pub kind: Option<char>,
    /// Major number, `None` = any.
    pub major: Option<u32>,
    /// Minor number, `None` = any.
    pub minor: Option<u32>,
    /// Subset of `rwm`.
    pub access: String,
}

impl Rule {
    /// The rule a config device entry allows.
    pub fn from_device(d: &Device) -> Rule {
        let num = |n: i64| u32::try_from(n).ok();
        Rule {
            kind: Some(match d.kind {
                DeviceType::Char => 'c',
                DeviceType::Block => 'b',
            }),
            major: num(d.major_number),
            minor: num(d.minor_number),
            access: d.cgroup_permissions.clone().unwrap_or_else(|| "rwm".into()),
        }
    }

    /// The v1 `devices.allow` line: `c 1:3 rwm`, `*` for any.
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind.unwrap_or('a'),
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// Parses a v1-style rule `c 1:3 rwm` (the `--allow-device` flag).
    pub fn parse(text: &str) -> Option<Rule> {
        let mut words = text.split_whitespace();
        let kind = match words.next()? {
            "c" => Some('c'),
            "b" => Some('b'),
            "a" => None,
            _ => return None,
        };
        let (major, minor) = words.next()?.split_once(':')?;
        let num = |s: &str| -> Option<Option<u32>> {
            if s == "*" {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        let access = words.next().unwrap_or("rwm").to_string();
        if words.next().is_some() || access.is_empty() || !access.chars().all(|c| "rwm".contains(c))
        {
            return None;
        }
        Some(Rule {
            kind,
            major: num(major)?,
            minor: num(minor)?,
            access,
        })
    }
}

/// What the plan needs to know about the live cgroup.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Whether swap accounting exists (v1 `memory.memsw.*`, v2 `memory.swap.max`).
    pub swap_accounting: bool,
    /// The v2 `cpu.max` text (`max 100000`), for changing one half of it.
    pub cpu_max: Option<String>,
    /// v1: the current `memory.memsw.limit_in_bytes`; `None` when unlimited or unknown (a new
    /// cgroup's is unlimited). Decides whether memory or memory + swap is written first.
    pub memsw_limit: Option<u64>,
}

/// The v2 `cpu.weight` for a v1 `cpu.shares` value (runc's and crun's formula).
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The v2 `memory.swap.max` value for the config's memory + swap total.
pub fn swap_v2(memory: Option<i64>, memory_swap: i64) -> Result<String> {
    if memory_swap == -1 {
        return Ok("max".into());
    }
    let Some(memory) = memory else {
        return Err(Error::config(
            "cgroups.memory_swap",
            "is memory + swap, so it needs \"memory\" on cgroup v2",
        ));
    };
    if memory_swap < memory {
        return Err(Error::config(
            "cgroups.memory_swap",
            "is memory + swap, so it cannot be below memory",
        ));
    }
    Ok((memory_swap - memory).to_string())
}

/// The v2 `cpu.max` text for the given halves, keeping the current value of a missing one.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>, current: Option<&str>) -> String {
    let mut cur = current.unwrap_or("max 100000").split_whitespace();
    let cur_quota = cur.next().unwrap_or("max").to_string();
    let cur_period = cur.next().unwrap_or("100000").to_string();
    let quota = match quota {
        Some(q) if q < 0 => "max".to_string(),
        Some(q) => q.to_string(),
        None => cur_quota,
    };
    let period = period.map_or(cur_period, |p| p.to_string());
    format!("{quota} {period}")
}

/// The steps that apply `c`'s limits on layout `kind` (on hybrid the v1 hierarchies carry them).
pub fn plan(kind: Kind, c: &Cgroups, current: &Current) -> Result<Vec<Step>> {
    let v2 = kind == Kind::V2;
    let layout = kind.name();
    let mut steps = Vec::new();
    let mut write = |field, controller, file, value: String| {
        steps.push(Step {
            field,
            controller,
            action: Action::Write { file, value },
        })
    };
    if let Some(slice) = &c.slice {
        return Err(Error::config(
            "cgroups.slice",
            format!(
                "systemd slices ({slice:?}) are not supported on the {layout} layout: \
                 use \"parent\""
            ),
        ));
    }
    if let Some(m) = c.memory {
        let file = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        write("memory", "memory", file, m.0.to_string());
    }
    if let Some(r) = c.memory_reservation {
        let file = if v2 {
            "memory.low"
        } else {
            "memory.soft_limit_in_bytes"
        };
        write("memory_reservation", "memory", file, r.0.to_string());
    }
    if let Some(s) = c.memory_swap {
        if !current.swap_accounting {
            // -1 asks for what an unaccounted kernel already does.
            if s.0 != -1 {
                return Err(Error::config(
                    "cgroups.memory_swap",
                    format!("this kernel has no swap accounting ({layout} layout)"),
                ));
            }
        } else if v2 {
            write(
                "memory_swap",
                "memory",
                "memory.swap.max",
                swap_v2(c.memory.map(|m| m.0), s.0)?,
            );
        } else {
            write(
                "memory_swap",
                "memory",
                "memory.memsw.limit_in_bytes",
                s.0.to_string(),
            );
        }
    }
    if let Some(shares) = c.cpu_shares {
        if v2 {
            write(
                "cpu_shares",
                "cpu",
                "cpu.weight",
                shares_to_weight(shares).to_string(),
            );
        } else {
            write("cpu_shares", "cpu", "cpu.shares", shares.to_string());
        }
    }
    if c.cpu_quota.is_some() || c.cpu_period.is_some() {
        if v2 {
            let field = if c.cpu_quota.is_some() {
                "cpu_quota"
            } else {
                "cpu_period"
            };
            write(
                field,
                "cpu",
                "cpu.max",
                cpu_max(c.cpu_quota, c.cpu_period, current.cpu_max.as_deref()),
            );
        } else {
            if let Some(p) = c.cpu_period {
                write("cpu_period", "cpu", "cpu.cfs_period_us", p.to_string());
            }
            if let Some(q) = c.cpu_quota {
                write("cpu_quota", "cpu", "cpu.cfs_quota_us", q.to_string());
            }
        }
    }
    if let Some(cpus) = &c.cpuset_cpus {
        write("cpuset_cpus", "cpuset", "cpuset.cpus", cpus.clone());
    }
    if let Some(mems) = &c.cpuset_mems {
        write("cpuset_mems", "cpuset", "cpuset.mems", mems.clone());
    }
    if let Some(p) = c.pids_max {
        write("pids_max", "pids", "pids.max", p.to_string());
    }
    let field = if c.allow_all_devices {
        "allow_all_devices"
    } else {
        "allowed_devices"
    };
    if c.allow_all_devices || !c.allowed_devices.is_empty() {
        let rules: Vec<Rule> = if c.allow_all_devices {
            vec![Rule {
                kind: None,
                major: None,
                minor: None,
                access: "rwm".into(),
            }]
        } else {
            c.allowed_devices.iter().map(Rule::from_device).collect()
        };
        if v2 {
            steps.push(Step {
                field,
                controller: "",
                action: Action::DeviceProgram(rules),
            });
        } else {
            let mut write = |file, value| {
                steps.push(Step {
                    field,
                    controller: "devices",
                    action: Action::Write { file, value },
                })
            };
            if !c.allow_all_devices {
                write("devices.deny", "a".to_string());
            }
            for r in rules {
                write("devices.allow", r.v1_line());
            }
        }
    }
    if let Some(f) = &c.freezer {
        let frozen = f == "FROZEN";
        let (controller, file, value) = if v2 {
            ("", "cgroup.freeze", if frozen { "1" } else { "0" })
        } else {
            ("freezer", "freezer.state", f.as_str())
        };
        steps.push(Step {
            field: "freezer",
            controller,
            action: Action::Write {
                file,
                value: value.to_string(),
            },
        });
    }
    if !v2 {
        order_memsw(&mut steps, c, current);
    }
    Ok(steps)
}

/// v1: moves the memsw write before the memory write when the new memory limit is above the
/// current memsw limit (the kernel would refuse the memory write first; -1 is unlimited).
fn order_memsw(steps: &mut Vec<Step>, c: &Cgroups, current: &Current) {
    let pos = |field| steps.iter().position(|s| s.field == field);
    let (Some(memory), Some(mem), Some(swap)) = (c.memory, pos("memory"), pos("memory_swap"))
    else {
        return;
    };
    let new = u64::try_from(memory.0).unwrap_or(u64::MAX);
    if new > current.memsw_limit.unwrap_or(u64::MAX) {
        let step = steps.remove(swap);
        steps.insert(mem, step);
    }
}

/// The controllers a plan needs, each once, in first-use order (`""` left out), each with the
/// first field that needs it (for errors).
pub fn controllers(steps: &[Step]) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for s in steps {
        if !s.controller.is_empty() && !out.iter().any(|(c, _)| *c == s.controller) {
            out.push((s.controller, s.field));
        }
    }
    out
}

/// Checks a `cgroups` object the way a config file's is checked (flags and files go through the
/// same rules), returning it with errors naming `cgroups.FIELD`.
pub fn validate(c: Cgroups) -> Result<Cgroups> {
    let mut config = common::config::Config::parse(b"{}")?;
    config.cgroups = Some(c);
    config.validate_fields()?;
    config
        .cgroups
        .ok_or_else(|| Error::msg("cgroups", "lost while validating"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::config::Bytes;

    fn empty() -> Cgroups {
        serde_json::from_str("{}").unwrap()
    }

    fn writes(steps: &[Step]) -> Vec<(&str, String)> {
        steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Write { file, value } => Some((*file, value.clone())),
                Action::DeviceProgram(_) => None,
            })
            .collect()
    }

    #[test]
    fn shares_convert_to_weight_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn swap_on_v2_is_the_swap_part_only() {
        assert_eq!(swap_v2(Some(100), 300).unwrap(), "200");
        assert_eq!(swap_v2(Some(100), -1).unwrap(), "max");
        assert!(
            swap_v2(None, 300)
                .unwrap_err()
                .to_string()
                .contains("cgroups.memory_swap")
        );
        assert!(swap_v2(Some(300), 100).is_err());
    }

    #[test]
    fn cpu_max_keeps_the_missing_half() {
        assert_eq!(
            cpu_max(Some(50_000), None, Some("max 100000")),
            "50000 100000"
        );
        assert_eq!(
            cpu_max(None, Some(20_000), Some("10000 100000")),
            "10000 20000"
        );
        assert_eq!(cpu_max(Some(-1), Some(50_000), None), "max 50000");
    }

    #[test]
    fn v1_plan_writes_the_v1_files_and_never_invents_swap() {
        let mut c = empty();
        c.memory = Some(Bytes(64 << 20));
        c.cpu_shares = Some(512);
        c.cpu_quota = Some(50_000);
        c.cpu_period = Some(100_000);
        c.pids_max = Some(10);
        let cur = Current {
            swap_accounting: true,
            ..Current::default()
        };
        let steps = plan(Kind::Hybrid, &c, &cur).unwrap();
        assert_eq!(
            writes(&steps),
            [
                ("memory.limit_in_bytes", "67108864".to_string()),
                ("cpu.shares", "512".into()),
                ("cpu.cfs_period_us", "100000".into()),
                ("cpu.cfs_quota_us", "50000".into()),
                ("pids.max", "10".into()),
            ]
        );
        assert_eq!(
            controllers(&steps),
            [
                ("memory", "memory"),
                ("cpu", "cpu_shares"),
                ("pids", "pids_max")
            ]
        );
    }

    #[test]
    fn v2_plan_converts() {
        let mut c = empty();
        c.memory = Some(Bytes(100));
        c.memory_swap = Some(Bytes(300));
        c.memory_reservation = Some(Bytes(50));
        c.cpu_shares = Some(1024);
        c.cpu_quota = Some(20_000);
        c.freezer = Some("FROZEN".into());
        let cur = Current {
            swap_accounting: true,
            cpu_max: Some("max 100000".into()),
            memsw_limit: None,
        };
        assert_eq!(
            writes(&plan(Kind::V2, &c, &cur).unwrap()),
            [
                ("memory.max", "100".to_string()),
                ("memory.low", "50".into()),
                ("memory.swap.max", "200".into()),
                ("cpu.weight", "39".into()),
                ("cpu.max", "20000 100000".into()),
                ("cgroup.freeze", "1".into()),
            ]
        );
    }

    #[test]
    fn v1_memsw_goes_first_when_memory_rises_above_the_current_memsw() {
        let mut c = empty();
        c.memory = Some(Bytes(256 << 20));
        c.memory_swap = Some(Bytes(512 << 20));
        let mut cur = Current {
            swap_accounting: true,
            memsw_limit: Some(128 << 20),
            ..Current::default()
        };
        let files = |cur: &Current| -> Vec<&str> {
            plan(Kind::V1, &c, cur)
                .unwrap()
                .into_iter()
                .filter_map(|s| match s.action {
                    Action::Write { file, .. } => Some(file),
                    Action::DeviceProgram(_) => None,
                })
                .collect()
        };
        assert_eq!(
            files(&cur),
            ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
        );
        // Lowering (or a new cgroup, unlimited): memory first.
        cur.memsw_limit = Some(1 << 30);
        assert_eq!(
            files(&cur),
            ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        );
        cur.memsw_limit = None;
        assert_eq!(
            files(&cur),
            ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        );
    }

    #[test]
    fn swap_without_accounting_is_an_error_unless_unlimited() {
        let mut c = empty();
        c.memory_swap = Some(Bytes(1 << 30));
        let e = plan(Kind::V1, &c, &Current::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config: cgroups.memory_swap: this kernel has no swap accounting (v1 layout)"
        );
        c.memory_swap = Some(Bytes(-1));
        assert!(plan(Kind::V1, &c, &Current::default()).unwrap().is_empty());
    }

    #[test]
    fn devices_deny_all_then_allow_on_v1_and_make_a_program_on_v2() {
        let mut c = empty();
        c.allowed_devices = serde_json::from_str(
            r#"[{"type":"c","major_number":1,"minor_number":3,"cgroup_permissions":"rw"},
                {"type":"c","major_number":136,"minor_number":-1}]"#,
        )
        .unwrap();
        assert_eq!(
            writes(&plan(Kind::V1, &c, &Current::default()).unwrap()),
            [
                ("devices.deny", "a".to_string()),
                ("devices.allow", "c 1:3 rw".into()),
                ("devices.allow", "c 136:* rwm".into()),
            ]
        );
        let steps = plan(Kind::V2, &c, &Current::default()).unwrap();
        assert!(matches!(&steps[0].action, Action::DeviceProgram(r) if r.len() == 2));
        // No list, no allow-all: the inherited policy stays.
        assert!(
            plan(Kind::V1, &empty(), &Current::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn slices_are_refused_naming_the_field_and_layout() {
        let mut c = empty();
        c.slice = Some("system.slice".into());
        let e = plan(Kind::V2, &c, &Current::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config: cgroups.slice: ") && e.contains("v2 layout"),
            "{e}"
        );
    }

    #[test]
    fn device_rules_parse_from_flags() {
        let r = Rule::parse("c 1:3 rw").unwrap();
        assert_eq!(r.v1_line(), "c 1:3 rw");
        assert_eq!(Rule::parse("b *:* m").unwrap().v1_line(), "b *:* m");
        assert_eq!(Rule::parse("a *:*").unwrap().v1_line(), "a *:* rwm");
        assert!(Rule::parse("x 1:3").is_none());
        assert!(Rule::parse("c 1:3 q").is_none());
        assert!(Rule::parse("c 1 rw").is_none());
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = empty();
        c.cpu_shares = Some(1);
        assert!(
            validate(c)
                .unwrap_err()
                .to_string()
                .contains("cgroups.cpu_shares")
        );
    }
}
