//! Command-line helpers shared by every tool.
//!
//! Arguments are read as `OsString`s and split by hand at the first `--` or the first free
//! argument (chain loading: everything after it is the next program's argv, passed on byte for
//! byte). Only the option part goes to getopts, which refuses non-UTF-8 text even after `--`.

use std::ffi::OsString;

use crate::error::{Error, Result};

/// argv split into our options and the command that follows them.
#[derive(Debug, Default, PartialEq)]
pub struct Split {
    /// The option words, for getopts.
    pub opts: Vec<String>,
    /// The first free argument and everything after it.
    pub rest: Vec<OsString>,
    /// Whether `rest` came after an explicit `--` (then it is never a subcommand).
    pub after_dashdash: bool,
}

/// Splits `args` (without argv\[0\]) at the first `--` or the first argument that is neither an
/// option nor the value of one. `takes_value` lists the long options (without `--`) whose value
/// is the next word.
pub fn split(args: impl IntoIterator<Item = OsString>, takes_value: &[&str]) -> Result<Split> {
    let mut out = Split::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.after_dashdash = true;
            out.rest.extend(args);
            break;
        }
        let bytes = arg.as_encoded_bytes();
        if bytes.len() < 2 || bytes[0] != b'-' {
            out.rest.push(arg);
            out.rest.extend(args);
            break;
        }
        let text = utf8(arg)?;
        let needs_value = text
            .strip_prefix("--")
            .is_some_and(|name| !name.contains('=') && takes_value.contains(&name));
        out.opts.push(text);
        if needs_value {
            if let Some(value) = args.next() {
                out.opts.push(utf8(value)?);
            }
        }
    }
    Ok(out)
}

fn utf8(arg: OsString) -> Result<String> {
    arg.into_string()
        .map_err(|a| Error::usage(format!("option {} is not valid UTF-8", a.to_string_lossy())))
}

/// Parses the option words with getopts, turning its error into a usage error.
pub fn parse(opts: &getopts::Options, words: &[String]) -> Result<getopts::Matches> {
    let m = opts.parse(words).map_err(|e| Error::usage(e.to_string()))?;
    if let Some(free) = m.free.first() {
        return Err(Error::usage(format!("unexpected argument {free:?}")));
    }
    Ok(m)
}

/// Writes `text` to stdout. Rust ignores `SIGPIPE`, so a reader that went away (`| head`)
/// shows as `EPIPE`: that is an error like any other write error, reported in one line.
pub fn print(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("write to stdout", e))
}

/// Prints `tool: <error>` on stderr and exits with the error's status.
pub fn fatal(tool: &str, err: &Error) -> ! {
    eprintln!("{tool}: {err}");
    std::process::exit(err.code)
}

/// The long options (`--name`) a usage text or a man page section mentions, for the tests that
/// keep `--help` and the man pages in step.
pub fn long_options(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let name: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        if name.len() > 1 && !name.starts_with('-') {
            out.insert(format!("--{name}"));
        }
    }
    out
}

/// The text of section `# NAME` of a Markdown man page, up to the next `# ` heading.
pub fn man_section<'a>(page: &'a str, name: &str) -> &'a str {
    let heading = format!("\n# {name}\n");
    let Some(start) = page.find(&heading) else {
        return "";
    };
    let body = &page[start + heading.len()..];
    &body[..body.find("\n# ").unwrap_or(body.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn stops_at_first_free_argument() {
        let s = split(
            os(&["--config", "c.json", "--rm", "sh", "-c", "x"]),
            &["config"],
        )
        .unwrap();
        assert_eq!(s.opts, ["--config", "c.json", "--rm"]);
        assert_eq!(s.rest, os(&["sh", "-c", "x"]));
        assert!(!s.after_dashdash);
    }

    #[test]
    fn consumes_only_the_first_dashdash() {
        let s = split(os(&["--name=x", "--", "a", "--", "b"]), &[]).unwrap();
        assert_eq!(s.opts, ["--name=x"]);
        assert_eq!(s.rest, os(&["a", "--", "b"]));
        assert!(s.after_dashdash);
    }

    #[test]
    fn passes_non_utf8_commands_through() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![0xff, b'x']);
        let s = split(
            vec![OsString::from("--"), OsString::from("echo"), bad.clone()],
            &[],
        )
        .unwrap();
        assert_eq!(s.rest[1], bad);
    }

    #[test]
    fn refuses_non_utf8_options_with_a_message() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'-', b'-', 0xfe]);
        let e = split(vec![bad], &[]).unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn a_lone_dash_is_a_free_argument() {
        let s = split(os(&["-", "x"]), &[]).unwrap();
        assert_eq!(s.rest, os(&["-", "x"]));
    }
}
