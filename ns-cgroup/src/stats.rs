//! `ns-cgroup stats`: one JSON document with what the kernel counts for the cgroup.
//!
//! The shape is the same on every layout; a group appears only when its controller is there:
//! `memory` (usage, max_usage, limit — `null` for unlimited — failcnt, `stat` and, on v2,
//! `events`), `cpu` (usage_usec, user_usec, system_usec, nr_periods, nr_throttled,
//! throttled_usec), `pids` (current, max), `io` (per device `MAJ:MIN`, from v2 `io.stat` or v1
//! `blkio.throttle.io_service_bytes`/`io_serviced`). Sources: the kernel's
//! `Documentation/admin-guide/cgroup-v2.rst` and `cgroup-v1/memory.rst`.

use std::path::Path;

use serde_json::{Map, Value, json};

use common::Result;

use crate::cgroup::Cgroup;
use crate::files;
use crate::layout::Kind;

/// v1 reports "no limit" as a huge page-aligned number (`PAGE_COUNTER_MAX` pages); anything
/// this large is unlimited.
const V1_UNLIMITED: u64 = 1 << 62;

/// The stats document of `cg`.
pub fn collect(cg: &Cgroup) -> Result<Value> {
    let v2 = cg.kind() == Kind::V2;
    let mut out = Map::new();
    out.insert("v".into(), json!(1));
    out.insert("name".into(), json!(cg.name()));
    out.insert("layout".into(), json!(cg.kind().name()));
    if let Some(d) = cg.dir_for("memory") {
        out.insert(
            "memory".into(),
            if v2 { memory_v2(d) } else { memory_v1(d) },
        );
    }
    let cpu = if v2 {
        cg.dir_for("cpu").map(cpu_v2)
    } else {
        cpu_v1(cg.dir_for("cpuacct"), cg.dir_for("cpu"))
    };
    if let Some(cpu) = cpu {
        out.insert("cpu".into(), cpu);
    }
    if let Some(d) = cg
        .dir_for("pids")
        .filter(|d| d.join("pids.current").exists())
    {
        out.insert(
            "pids".into(),
            json!({
                "current": num(d, "pids.current"),
                "max": num(d, "pids.max"),
            }),
        );
    }
    let io = if v2 {
        cg.dir_for("io")
            .and_then(|d| read(d, "io.stat"))
            .map(|t| io_v2(&t))
    } else {
        cg.dir_for("blkio").map(io_v1)
    };
    if let Some(io) = io {
        out.insert("io".into(), io);
    }
    Ok(Value::Object(out))
}

fn read(dir: &Path, file: &str) -> Option<String> {
    files::read(&dir.join(file)).ok()
}

/// A single-number file; `null` for `max`, a missing file, or v1's "unlimited".
fn num(dir: &Path, file: &str) -> Value {
    match read(dir, file).as_deref().and_then(files::number) {
        Some(n) if n < V1_UNLIMITED => json!(n),
        _ => Value::Null,
    }
}

fn keyed_map(text: Option<String>) -> Value {
    let map: Map<String, Value> = text
        .map(|t| files::pairs(&t))
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    Value::Object(map)
}

fn memory_v1(d: &Path) -> Value {
    json!({
        "usage": num(d, "memory.usage_in_bytes"),
        "max_usage": num(d, "memory.max_usage_in_bytes"),
        "limit": num(d, "memory.limit_in_bytes"),
        "failcnt": num(d, "memory.failcnt"),
        "swap_limit": num(d, "memory.memsw.limit_in_bytes"),
        "oom_control": keyed_map(read(d, "memory.oom_control")),
        "stat": keyed_map(read(d, "memory.stat")),
    })
}

fn memory_v2(d: &Path) -> Value {
    json!({
        "usage": num(d, "memory.current"),
        "max_usage": num(d, "memory.peak"),
        "limit": num(d, "memory.max"),
        "swap_usage": num(d, "memory.swap.current"),
        "swap_limit": num(d, "memory.swap.max"),
        "events": keyed_map(read(d, "memory.events")),
        "stat": keyed_map(read(d, "memory.stat")),
    })
}

fn cpu_v2(d: &Path) -> Value {
    let stat = read(d, "cpu.stat").unwrap_or_default();
    let k = |key| files::keyed(&stat, key).map_or(Value::Null, |n| json!(n));
    json!({
        "usage_usec": k("usage_usec"),
        "user_usec": k("user_usec"),
        "system_usec": k("system_usec"),
        "nr_periods": k("nr_periods"),
        "nr_throttled": k("nr_throttled"),
        "throttled_usec": k("throttled_usec"),
    })
}

fn cpu_v1(cpuacct: Option<&Path>, cpu: Option<&Path>) -> Option<Value> {
    if cpuacct.is_none() && cpu.is_none() {
        return None;
    }
    let usec = |d: Option<&Path>, file| {
        d.and_then(|d| read(d, file))
            .as_deref()
            .and_then(files::number)
            .map_or(Value::Null, |ns| json!(ns / 1000))
    };
    // cpuacct.stat counts USER_HZ ticks; the kernel's USER_HZ is 100 on every architecture.
    let acct = cpuacct
        .and_then(|d| read(d, "cpuacct.stat"))
        .unwrap_or_default();
    let ticks = |key| files::keyed(&acct, key).map_or(Value::Null, |t| json!(t * 10_000));
    let stat = cpu.and_then(|d| read(d, "cpu.stat")).unwrap_or_default();
    let k = |key| files::keyed(&stat, key).map_or(Value::Null, |n| json!(n));
    let throttled =
        files::keyed(&stat, "throttled_time").map_or(Value::Null, |ns| json!(ns / 1000));
    Some(json!({
        "usage_usec": usec(cpuacct, "cpuacct.usage"),
        "user_usec": ticks("user"),
        "system_usec": ticks("system"),
        "nr_periods": k("nr_periods"),
        "nr_throttled": k("nr_throttled"),
        "throttled_usec": throttled,
    }))
}

/// v2 `io.stat`: `MAJ:MIN rbytes=1 wbytes=2 ...` per line.
fn io_v2(text: &str) -> Value {
    let mut out = Map::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(dev) = words.next() else { continue };
        let fields: Map<String, Value> = words
            .filter_map(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k.to_string(), json!(v.parse::<u64>().ok()?)))
            })
            .collect();
        out.insert(dev.to_string(), Value::Object(fields));
    }
    Value::Object(out)
}

/// v1 blkio: `MAJ:MIN Read 123` lines of the bytes and ops files, as `rbytes`/`wbytes`/
/// `rios`/`wios` like v2's names.
fn io_v1(d: &Path) -> Value {
    let mut out: Map<String, Value> = Map::new();
    for (file, read_key, write_key) in [
        ("blkio.throttle.io_service_bytes", "rbytes", "wbytes"),
        ("blkio.throttle.io_serviced", "rios", "wios"),
    ] {
        for line in read(d, file).unwrap_or_default().lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let [dev, op, n] = words[..] else { continue };
            let Ok(n) = n.parse::<u64>() else { continue };
            let key = match op {
                "Read" => read_key,
                "Write" => write_key,
                _ => continue,
            };
            let entry = out
                .entry(dev.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert(key.to_string(), json!(n));
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_stat_parses_per_device() {
        let v = io_v2("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(v["8:0"]["wbytes"], 20);
        assert_eq!(v["8:0"]["rios"], 1);
    }
}
