//! Reading and writing cgroup control files.
//!
//! A control file takes one value per `write(2)`: the whole text goes in one call (a short
//! write would split a value the kernel parses as a unit), retried on `EINTR`. Errors name the
//! file and keep the errno, since `EINVAL`, `EBUSY` and `ENOSPC` from a cgroup file mean
//! different things (bad value, non-empty cgroup, no cpus in the cpuset).

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use common::{Error, Result};

/// Reads a control file whole.
pub fn read(path: &Path) -> Result<String> {
    let mut text = String::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    Ok(text)
}

/// Writes `value` to a control file in one `write(2)`.
pub fn write(path: &Path, value: &str) -> Result<()> {
    let what = || format!("write {value:?} to {}", path.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(what(), e))?;
    loop {
        match f.write(value.as_bytes()) {
            Ok(n) if n == value.len() => return Ok(()),
            Ok(n) => {
                return Err(Error::msg(
                    what(),
                    format!("short write ({n} of {} bytes)", value.len()),
                ));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(what(), e)),
        }
    }
}

/// The number after `key` in a flat keyed file (`populated 1`, `oom_kill 3`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == key).then(|| words.next()?.parse().ok())?
    })
}

/// Every `key value` line of a flat keyed file with a numeric value, in order.
pub fn pairs(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let key = words.next()?;
            let value = words.next()?.parse().ok()?;
            Some((key.to_string(), value))
        })
        .collect()
}

/// A single-value file's number; `max` (v2's unlimited) is `None`.
pub fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_parse() {
        let t = "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n";
        assert_eq!(keyed(t, "oom_kill"), Some(1));
        assert_eq!(keyed(t, "oom"), Some(1));
        assert_eq!(keyed(t, "nope"), None);
        assert_eq!(pairs("a 1\nb x\nc 3\n"), [("a".into(), 1), ("c".into(), 3)]);
        assert_eq!(number("max\n"), None);
        assert_eq!(number("42\n"), Some(42));
    }
}
