//! `ns-exec gc`: remove what runs that were killed left behind.
//!
//! ns-exec cleans up after itself on every path it controls. A SIGKILL gives it no chance:
//! the container dies with it (parent-death signal), but its state directory and pid file stay.
//! gc walks the state root, judges each entry with [`state::liveness`] (pid + start time of the
//! container, or of the ns-exec that claimed it), and removes the stale ones; a running or
//! starting container is never touched. Idempotent: a second run finds nothing.

use std::fs;

use common::{Context, Result};

use crate::cli::GcArgs;
use crate::state::{self, Liveness};

/// Removes (or with `--dry-run` lists) every stale entry under the state root; prints one
/// line per entry on stdout. Returns the exit status.
pub fn gc(args: GcArgs) -> Result<i32> {
    let entries = match fs::read_dir(&args.root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        other => other.ctx(|| format!("read {}", args.root.display()))?,
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let Liveness::Stale(why, state) = state::liveness(&args.root, &name)? else {
            continue;
        };
        let shown = name.trim_start_matches('.');
        if args.dry_run {
            println!("would remove {shown:?}: {why}");
        } else {
            state::remove_stale(&args.root.join(&name), state.as_deref())?;
            println!("removed {shown:?}: {why}");
        }
    }
    Ok(0)
}
