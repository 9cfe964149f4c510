//! Plans: the ordered actions a stage takes, as data.
//!
//! Every stage builds its plan with one code path whether it is going to act or only to show:
//! `--plan` prints the plan as JSON, `--explain` as the commands of well-known tools
//! (`unshare`, `mount`, `ip`, `setpriv`, writes to cgroup files), and a real run walks the same
//! plan, recording each action in the trace ([`crate::trace`]) under the same `step` name. So
//! the plan printed is the plan applied, and a trace can be laid beside it step by step.

use serde::Serialize;
use serde_json::{Map, Value};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::handoff::VERSION;

/// One action of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// The stage that takes it (`ns-init`, `ns-cgroup`, ...), also when ns-exec runs that
    /// stage's code in its own process.
    pub stage: &'static str,
    /// What kind of action (`clone`, `mount`, `write`, `link_add`, ...): the name the trace
    /// records it under.
    pub step: String,
    /// Its parameters, as named fields of the action's JSON object.
    #[serde(flatten)]
    pub args: Map<String, Value>,
    /// The equivalent shell commands (`--explain`); not part of the JSON.
    #[serde(skip)]
    pub shell: Vec<String>,
}

impl Action {
    /// An action of `stage` named `step`, without parameters yet.
    pub fn new(stage: &'static str, step: impl Into<String>) -> Action {
        Action {
            stage,
            step: step.into(),
            args: Map::new(),
            shell: Vec::new(),
        }
    }

    /// An action from a value that serializes as an object tagged with `"step"` (a serde enum
    /// with `#[serde(tag = "step")]`): the tag becomes the step, the other fields the
    /// parameters.
    pub fn tagged(stage: &'static str, value: &impl Serialize) -> Action {
        let mut args = match serde_json::to_value(value) {
            Ok(Value::Object(map)) => map,
            Ok(other) => Map::from_iter([("value".to_string(), other)]),
            Err(e) => Map::from_iter([("unserializable".to_string(), e.to_string().into())]),
        };
        let step = match args.remove("step") {
            Some(Value::String(s)) => s,
            _ => "unnamed".to_string(),
        };
        Action {
            stage,
            step,
            args,
            shell: Vec::new(),
        }
    }

    /// Adds the parameter `key`.
    pub fn arg(mut self, key: &str, value: impl Serialize) -> Action {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.args.insert(key.to_string(), value);
        self
    }

    /// Adds a shell command equivalent to (part of) the action.
    pub fn sh(mut self, line: impl Into<String>) -> Action {
        self.shell.push(line.into());
        self
    }

    /// A short name of what the action acts on, for the trace: the first of the parameters
    /// `path`, `target`, `file`, `name` that is a string.
    pub fn what(&self) -> Option<&str> {
        ["path", "target", "file", "name"]
            .iter()
            .find_map(|k| self.args.get(*k).and_then(Value::as_str))
    }
}

/// A stage's whole plan, as `--plan` prints it: `{"v":1,"stage":"ns-init","actions":[...]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The protocol version.
    pub v: u32,
    /// The stage that printed it.
    pub stage: &'static str,
    /// The actions, in the order they are taken.
    pub actions: Vec<Action>,
}

impl Plan {
    /// The plan of `stage`.
    pub fn new(stage: &'static str, actions: Vec<Action>) -> Plan {
        Plan {
            v: VERSION,
            stage,
            actions,
        }
    }

    /// The plan as pretty JSON, one document ending in a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            // Every field is a string, a number or a map of those: this cannot fail.
            format!("{{\"error\":{:?}}}", e.to_string())
        });
        text.push('\n');
        text
    }

    /// The plan as a POSIX shell script: a header, then each action as a comment naming its
    /// stage and step, followed by its commands.
    pub fn to_shell(&self, header: &str) -> String {
        let mut out = String::from("#!/bin/sh\n");
        for line in header.lines() {
            out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
        }
        out.push_str("set -eu\n");
        out.push_str(&shell_lines(&self.actions, ""));
        out
    }
}

/// The commands of `actions`, each group under a `# stage: step` comment, every line indented
/// by `indent`.
pub fn shell_lines(actions: &[Action], indent: &str) -> String {
    let mut out = String::new();
    for a in actions {
        out.push_str(&format!("{indent}# {}: {}", a.stage, a.step));
        if let Some(what) = a.what() {
            out.push_str(&format!(" {what}"));
        }
        out.push('\n');
        for line in &a.shell {
            out.push_str(&format!("{indent}{line}\n"));
        }
    }
    out
}

/// `word` quoted for a POSIX shell: unchanged when it is made only of characters no shell
/// treats specially, else in single quotes (a quote inside written as `'\''`).
pub fn quote(word: &str) -> String {
    quote_bytes(word.as_bytes())
}

/// [`quote`] for an `OsStr`, byte for byte (a non-UTF-8 argument stays what it was).
pub fn quote_os(word: &OsStr) -> String {
    quote_bytes(word.as_bytes())
}

fn quote_bytes(word: &[u8]) -> String {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(b);
    if !word.is_empty() && word.iter().all(plain) {
        return String::from_utf8_lossy(word).into_owned();
    }
    let mut out = String::from("'");
    for chunk in word.split(|b| *b == b'\'') {
        // A non-UTF-8 byte cannot live in a String; the lossy form marks it visibly.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("'\\''");
    }
    out.truncate(out.len() - 4);
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "step", rename_all = "snake_case")]
    enum Example {
        Mount {
            target: String,
            flags: Vec<&'static str>,
        },
    }

    #[test]
    fn tagged_enums_become_step_and_fields() {
        let a = Action::tagged(
            "ns-init",
            &Example::Mount {
                target: "/proc".into(),
                flags: vec!["nosuid"],
            },
        );
        assert_eq!(a.step, "mount");
        assert_eq!(a.what(), Some("/proc"));
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"stage":"ns-init","step":"mount","target":"/proc","flags":["nosuid"]})
        );
    }

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(quote("/usr/bin/true"), "/usr/bin/true");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        for word in ["a b", "it's", "$(x)", "'", "''", "\n", "*"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), word);
        }
    }

    #[test]
    fn a_plan_prints_as_json_and_as_a_script() {
        let plan = Plan::new(
            "ns-cgroup",
            vec![
                Action::new("ns-cgroup", "mkdir")
                    .arg("path", "/sys/fs/cgroup/x")
                    .sh("mkdir /sys/fs/cgroup/x"),
            ],
        );
        let v: Value = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["actions"][0]["step"], "mkdir");
        assert!(v["actions"][0].get("shell").is_none());
        let sh = plan.to_shell("made by a test");
        assert!(
            sh.starts_with("#!/bin/sh\n# made by a test\nset -eu\n"),
            "{sh}"
        );
        assert!(sh.contains("# ns-cgroup: mkdir /sys/fs/cgroup/x\nmkdir /sys/fs/cgroup/x\n"));
    }
}
