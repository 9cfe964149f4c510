//! The man pages against the programs, no privileges needed.
//!
//! STYLE.md rule 15: `--help` and the man page change together, and a test keeps them honest.
//! Per program, every option its `--help` prints must have an entry in the OPTIONS section of
//! `docs/man/<program>.1.md`, and every option that section lists must appear in `--help`. A
//! page may list its options in `##` subsections per verb (`ns-cgroup`, `ns-veth`): the
//! section is read to the next top-level heading, and `--help` prints all verbs at once, so
//! both sides are compared as whole sets.
//!
//! Every page must also render: `go-md2man` turns it into roff, `man -l` must print that
//! without a single diagnostic (groff warnings on), and what it prints must carry the page's
//! title and NAME line. Installing, packaging and `man ns-exec` depend on exactly that, and the
//! Markdown dialect is easy to get subtly wrong (an unbalanced `**`, a long inline JSON
//! example that groff cannot break). The tools are not optional: without `go-md2man` or `man`
//! this test fails and says what to install (CI installs them in `.ci/run`), because a skip
//! would let a broken page through unnoticed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ns_tests::{Invocation, TempDir, bin, workspace_root};

/// The programs that have a section-1 page.
const PROGRAMS: [&str; 5] = ["ns-exec", "ns-init", "ns-cgroup", "ns-veth", "ns-pty"];

/// The pages that must exist besides the programs' own.
const OTHER_PAGES: [&str; 2] = ["container.json.5.md", "ns-handoff.7.md"];

fn man_dir() -> PathBuf {
    workspace_root().join("docs/man")
}

/// Every page in `docs/man`, sorted.
fn pages() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(man_dir())
        .unwrap_or_else(|e| panic!("read {}: {e}", man_dir().display()))
        .map(|entry| entry.expect("read docs/man").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    out.sort();
    out
}

/// The page's name and section from its file name: `ns-handoff.7.md` is `("ns-handoff", "7")`.
fn name_and_section(page: &Path) -> (String, String) {
    let stem = page
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    match stem.rsplit_once('.') {
        Some((name, section)) => (name.to_string(), section.to_string()),
        None => panic!(
            "{}: a page is named NAME.SECTION.md (scripts/install.sh takes the section from it)",
            page.display()
        ),
    }
}

/// The options written in `text`: `--long` words, and `-x` short ones (a letter alone after a
/// dash). A dash only counts at the start of a word, so `0-3`, `ns-exec` and `-1` are not
/// options, and a bare `--` is not one either.
fn options_in(text: &str) -> BTreeSet<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = BTreeSet::new();
    let word_start = |i: usize| i == 0 || " \t([|,\"'`".contains(chars[i - 1]);
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '-' || !word_start(i) {
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(char::is_ascii_alphabetic)
        {
            let mut end = i + 2;
            while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '-') {
                end += 1;
            }
            let word: String = chars[i..end].iter().collect();
            out.insert(word.trim_end_matches('-').to_string());
            i = end;
        } else if chars.get(i + 1).is_some_and(char::is_ascii_alphabetic)
            && !chars
                .get(i + 2)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '-')
        {
            out.insert(chars[i..i + 2].iter().collect());
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// Markdown emphasis and escapes removed: `**--pid** *PID*` reads `--pid PID`.
fn plain(markdown: &str) -> String {
    markdown.replace(['*', '\\'], "")
}

/// The options the OPTIONS section of a page lists: those in the terms of its definition list
/// (a line followed by a `:   definition` line), subsections included.
fn man_options(page_text: &str) -> Option<BTreeSet<String>> {
    let lines: Vec<&str> = page_text.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == "# OPTIONS")?;
    let mut out = BTreeSet::new();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if line.starts_with("# ") {
            break;
        }
        let is_term = !line.trim().is_empty()
            && !line.starts_with([' ', '\t', ':', '#'])
            && lines.get(i + 1).is_some_and(|next| next.starts_with(':'));
        if is_term {
            out.extend(options_in(&plain(line)));
        }
    }
    Some(out)
}

/// `program --help`: exit 0, the text on stdout.
fn help_text(program: &str) -> String {
    let out = Invocation::new(bin(program)).arg("--help").run();
    out.expect_code(0);
    assert!(
        !out.stdout.trim().is_empty(),
        "{program} --help printed nothing on stdout\n{}",
        out.dump()
    );
    out.stdout.clone()
}

/// Compares `program --help` with `docs/man/<program>.1.md` in both directions and fails
/// with one line per option that only one side has.
fn help_and_page_agree(program: &str) {
    let page = man_dir().join(format!("{program}.1.md"));
    let page_text = fs::read_to_string(&page)
        .unwrap_or_else(|e| panic!("{program}: read its man page {}: {e}", page.display()));
    let page_name = format!("docs/man/{program}.1.md");
    let help = options_in(&help_text(program));
    assert!(
        help.contains("--help"),
        "{program}: found no options in `{program} --help` (not even --help): has its format \
         changed? This test reads option words (`--long`, `-x`) anywhere in the output"
    );
    let listed = man_options(&page_text)
        .unwrap_or_else(|| panic!("{program}: {page_name} has no `# OPTIONS` section"));
    assert!(
        !listed.is_empty(),
        "{program}: the OPTIONS section of {page_name} lists no options: each is a definition \
         list entry, `**--name** *ARG*` on one line and `:   what it does` on the next"
    );
    let anywhere = options_in(&plain(&page_text));
    let mut problems = Vec::new();
    for opt in help.difference(&listed) {
        let hint = if anywhere.contains(opt) {
            "it is mentioned in the page, but the OPTIONS section has no entry for it"
        } else {
            "the page does not mention it at all"
        };
        problems.push(format!(
            "{program}: {opt} is printed by `{program} --help` but missing from the OPTIONS \
             section of {page_name} ({hint})"
        ));
    }
    for opt in listed.difference(&help) {
        problems.push(format!(
            "{program}: {opt} is listed in the OPTIONS section of {page_name} but missing from \
             `{program} --help`"
        ));
    }
    assert!(
        problems.is_empty(),
        "{program}'s --help and man page disagree (STYLE.md rule 15: change both together):\n  \
         {}",
        problems.join("\n  ")
    );
}

#[test]
fn ns_exec_help_and_man_page_list_the_same_options() {
    help_and_page_agree("ns-exec");
}

#[test]
fn ns_init_help_and_man_page_list_the_same_options() {
    help_and_page_agree("ns-init");
}

#[test]
fn ns_cgroup_help_and_man_page_list_the_same_options() {
    help_and_page_agree("ns-cgroup");
}

#[test]
fn ns_veth_help_and_man_page_list_the_same_options() {
    help_and_page_agree("ns-veth");
}

#[test]
fn ns_pty_help_and_man_page_list_the_same_options() {
    help_and_page_agree("ns-pty");
}

/// Runs a documentation tool, failing with what to install when it is missing.
fn tool(program: &str, package: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        // Plain text on stdout, the same on every machine; no pager, no seccomp sandbox (which
        // some container runtimes refuse).
        .env("LC_ALL", "C.UTF-8")
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MAN_DISABLE_SECCOMP", "1");
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed: install it with `apt-get install {package}` (CI gets it \
             from .ci/run). The man page tests need it and fail rather than skip without it."
        ),
        Err(e) => panic!("run {program}: {e}"),
    }
}

/// Whitespace and the hyphens groff inserts at line breaks removed, for comparing text that
/// `man` may have filled and hyphenated.
fn squeeze(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{2010}' && *c != '\u{ad}')
        .collect()
}

/// groff's diagnostics, each followed by the roff line it names (`<standard input>:N:`), which
/// is easier to find in the Markdown than a line number of go-md2man's output.
fn with_roff_lines(stderr: &str, roff: &str) -> String {
    let roff_lines: Vec<&str> = roff.lines().collect();
    let mut out = Vec::new();
    for line in stderr.trim().lines() {
        out.push(line.to_string());
        let number = line
            .split_once("<standard input>:")
            .and_then(|(_, rest)| rest.split(':').next())
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(text) = number.and_then(|n| roff_lines.get(n.wrapping_sub(1))) {
            out.push(format!("  at: {text}"));
        }
    }
    out.join("\n")
}

/// The page's NAME line in the Markdown: the first non-empty line after `# NAME`.
fn name_line(page_text: &str) -> Option<String> {
    let mut lines = page_text.lines().skip_while(|l| l.trim_end() != "# NAME");
    lines.next()?;
    lines
        .find(|l| !l.trim().is_empty())
        .map(|l| plain(l).trim().to_string())
}

#[test]
fn every_page_renders_with_go_md2man_and_man() {
    let all = pages();
    let names: Vec<String> = all
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect();
    for wanted in PROGRAMS
        .iter()
        .map(|p| format!("{p}.1.md"))
        .chain(OTHER_PAGES.iter().map(|p| p.to_string()))
    {
        assert!(
            names.contains(&wanted),
            "docs/man/{wanted} is missing (found: {names:?})"
        );
    }
    let out_dir = TempDir::new("manpages");
    let mut problems = Vec::new();
    for page in &all {
        let file = page.file_name().unwrap_or_default().to_string_lossy();
        let (name, section) = name_and_section(page);
        let text = fs::read_to_string(page).unwrap_or_else(|e| panic!("read {file}: {e}"));

        let first = text.lines().next().unwrap_or_default();
        let title: Vec<&str> = first.split_whitespace().take(3).collect();
        if title != ["%", name.as_str(), section.as_str()] {
            problems.push(format!(
                "{file}: the first line must be `% {name} {section} \"\" \"ns-tools\" \"...\"` \
                 (go-md2man's title line), not `{first}`"
            ));
        }
        let Some(name_md) = name_line(&text) else {
            problems.push(format!(
                "{file}: no `# NAME` section with a `{name} - ...` line"
            ));
            continue;
        };
        if !name_md.starts_with(&format!("{name} - ")) {
            problems.push(format!(
                "{file}: the NAME line must read `{name} - what it is`, not `{name_md}` (whatis \
                 and apropos read it)"
            ));
        }

        let roff = out_dir.path().join(format!("{name}.{section}"));
        let md2man = tool(
            "go-md2man",
            "go-md2man",
            &[
                "-in".as_ref(),
                page.as_os_str(),
                "-out".as_ref(),
                roff.as_os_str(),
            ],
        );
        if !md2man.status.success() || !roff.is_file() {
            problems.push(format!(
                "{file}: go-md2man failed ({}): {}",
                md2man.status,
                String::from_utf8_lossy(&md2man.stderr).trim()
            ));
            continue;
        }
        let man = tool(
            "man",
            "man-db",
            &["--warnings".as_ref(), "-l".as_ref(), roff.as_os_str()],
        );
        let stdout = String::from_utf8_lossy(&man.stdout);
        let stderr = String::from_utf8_lossy(&man.stderr);
        if !man.status.success() {
            problems.push(format!(
                "{file}: `man -l` of its roff failed ({}): {}",
                man.status,
                stderr.trim()
            ));
            continue;
        }
        if !stderr.trim().is_empty() {
            let roff_text = fs::read_to_string(&roff).unwrap_or_default();
            problems.push(format!(
                "{file}: `man --warnings -l` of its roff printed diagnostics (`cannot adjust \
                 line`: a long unbreakable word, such as inline JSON, in a filled paragraph; put \
                 it in an indented block. `macro '..' not defined`: a line starting with a dot, \
                 such as `...`. `table wider than line width`: a Markdown table; the pages use \
                 definition lists):\n    {}",
                with_roff_lines(&stderr, &roff_text).replace('\n', "\n    ")
            ));
        }
        let header = format!("{name}({section})");
        if !stdout.lines().next().is_some_and(|l| l.contains(&header)) {
            problems.push(format!(
                "{file}: the rendered page does not start with its title {header}"
            ));
        }
        let rendered_name = stdout
            .split("\nNAME\n")
            .nth(1)
            .map(|rest| rest.split("\n\n").next().unwrap_or_default());
        match rendered_name {
            None => problems.push(format!("{file}: the rendered page has no NAME heading")),
            Some(got) if !squeeze(got).contains(&squeeze(&name_md)) => problems.push(format!(
                "{file}: the rendered NAME section is `{}`, expected `{name_md}`",
                got.trim()
            )),
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "man pages that do not render cleanly:\n  {}",
        problems.join("\n  ")
    );
}

/// `**name**(N)` references in `text`.
fn references(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("**(") {
        let before = &text[..i];
        let Some(open) = before.rfind("**") else {
            continue;
        };
        let name = &before[open + 2..];
        let section: String = text[i + 3..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        if !name.is_empty() && !name.contains(char::is_whitespace) && !section.is_empty() {
            out.push((name.to_string(), section));
        }
    }
    out
}

#[test]
fn pages_refer_to_pages_that_exist_and_to_ns_handoff() {
    let mut problems = Vec::new();
    for page in pages() {
        let file = page.file_name().unwrap_or_default().to_string_lossy();
        let text = fs::read_to_string(&page).unwrap_or_else(|e| panic!("read {file}: {e}"));
        for (name, section) in references(&text) {
            let ours = name.starts_with("ns-") || name == "container.json";
            if ours && !man_dir().join(format!("{name}.{section}.md")).is_file() {
                problems.push(format!(
                    "{file}: refers to {name}({section}), but docs/man/{name}.{section}.md does \
                     not exist"
                ));
            }
        }
        let (name, _) = name_and_section(&page);
        let see_also = text.split("\n# SEE ALSO").nth(1).unwrap_or_default();
        if name != "ns-handoff" && !see_also.contains("**ns-handoff**(7)") {
            problems.push(format!(
                "{file}: its SEE ALSO section does not name **ns-handoff**(7), the protocol page"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "man page cross-references:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_option_parser_reads_what_the_pages_and_help_write() {
    let found = options_in("  -h, --help   print (--pid PID | [--] CMD); 0-3,5 ns-exec -1 --x-");
    let want: BTreeSet<String> = ["-h", "--help", "--pid", "--x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
    let page = "# OPTIONS\n\n**-h**, **--help**\n:   Help.\n\n## add\n\n**--pid** *PID*\n:   \
                The pid; not **--other**.\n\n# EXIT STATUS\n\n**--late**\n:   x\n";
    let listed = man_options(page).unwrap();
    let want: BTreeSet<String> = ["-h", "--help", "--pid"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(listed, want);
    assert_eq!(
        references("see **ns-exec**(1), **pty**(7) and **bold** (x)"),
        [
            ("ns-exec".to_string(), "1".to_string()),
            ("pty".to_string(), "7".to_string())
        ]
    );
}
