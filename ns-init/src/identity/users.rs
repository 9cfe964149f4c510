//! Resolving a user spec against the texts of `/etc/passwd` and `/etc/group`, with no I/O.
//!
//! The rules (nsinit-2014.md §12, hardened as in security-and-hygiene.md §1.5):
//! - the spec is `user[:group]`; each part is a name or an all-digit id;
//! - an all-digit part is an id and is never looked up as a name (CVE-2016-3697), and it is
//!   parsed strictly: digits only, no sign or space, no overflow, and never `u32::MAX`, which
//!   the `setres*id` calls read as "leave unchanged";
//! - a numeric uid need not be in passwd; when it is, the first entry with that uid gives the
//!   primary gid, home and the name used for group membership;
//! - a name must be in the file, first match wins, as `getpwnam(3)` does;
//! - an explicit group sets the gid and no supplementary groups are collected (2014 rule);
//!   otherwise the supplementary groups are the groups whose member list names the user, in
//!   file order without repeats. The primary gid is not added to them (as in 2014 nsinit and
//!   runc): the kernel already grants it through the process's gid, and adding it would make the
//!   command's group list differ from what the image's `/etc/group` says;
//! - no spec means uid 0, resolved like the spec `"0"` (so root gets its home and memberships,
//!   as under Docker);
//! - blank lines, `#` comments, NIS `+`/`-` lines and lines with too few fields or a bad id are
//!   skipped, so one broken line does not make every lookup fail.

use common::{Error, Result};

use super::Identity;

/// One usable line of `/etc/passwd` (`name:password:uid:gid:gecos:home:shell`).
#[derive(Debug, Clone, Copy)]
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

/// One usable line of `/etc/group` (`name:password:gid:member,member`).
#[derive(Debug, Clone, Copy)]
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

impl GroupEntry<'_> {
    fn has_member(&self, user: &str) -> bool {
        self.members.split(',').any(|m| m == user)
    }
}

/// The user side of a resolved spec.
struct User<'a> {
    uid: u32,
    /// The passwd entry the uid came from or was found in, if any.
    entry: Option<PasswdEntry<'a>>,
}

/// Resolves a user spec `name|uid[:group|gid]` (`None` = root) against the texts of the
/// container's `/etc/passwd` and `/etc/group` (`None` = the file does not exist).
pub fn resolve(spec: Option<&str>, passwd: Option<&str>, group: Option<&str>) -> Result<Identity> {
    let spec = spec.unwrap_or("0");
    let (user_part, group_part) = split_spec(spec)?;
    let user = find_user(user_part, passwd.unwrap_or(""))?;
    let home = user
        .entry
        .map(|e| e.home)
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    let (gid, groups) = match group_part {
        Some(part) => (find_group(part, group.unwrap_or(""))?, Vec::new()),
        None => match user.entry {
            Some(entry) => (entry.gid, memberships(entry.name, group.unwrap_or(""))),
            None => (0, Vec::new()),
        },
    };
    Ok(Identity {
        uid: user.uid,
        gid,
        groups,
        home,
    })
}

/// Splits `user[:group]`; neither part may be empty.
fn split_spec(spec: &str) -> Result<(&str, Option<&str>)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err(Error::msg(
            format!("user {spec:?}"),
            "expected name|uid[:group|gid] with non-empty parts",
        ));
    }
    Ok((user, group))
}

/// Whether `part` is an id rather than a name: non-empty and ASCII digits only.
fn is_numeric(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

/// Parses an id strictly: ASCII digits only (`u32::from_str` alone would accept `+5`), within
/// `u32`, and not `u32::MAX` (-1, "unchanged" to the kernel).
pub(super) fn parse_id(text: &str) -> Option<u32> {
    if !is_numeric(text) {
        return None;
    }
    text.parse::<u32>().ok().filter(|&id| id != u32::MAX)
}

/// Parses the numeric part of a spec; overflow is an error, never a fall-back to a name.
fn spec_id(part: &str, what: &str) -> Result<u32> {
    parse_id(part).ok_or_else(|| {
        Error::msg(
            format!("{what} {part:?}"),
            format!("not a valid {what} id (0 to {})", u32::MAX - 1),
        )
    })
}

fn find_user<'a>(part: &str, passwd: &'a str) -> Result<User<'a>> {
    if is_numeric(part) {
        let uid = spec_id(part, "user")?;
        let entry = passwd_entries(passwd).find(|e| e.uid == uid);
        return Ok(User { uid, entry });
    }
    match passwd_entries(passwd).find(|e| e.name == part) {
        Some(entry) => Ok(User {
            uid: entry.uid,
            entry: Some(entry),
        }),
        None => Err(Error::msg(
            format!("user {part:?}"),
            "no such user in the container's /etc/passwd",
        )),
    }
}

fn find_group(part: &str, group: &str) -> Result<u32> {
    if is_numeric(part) {
        return spec_id(part, "group");
    }
    match group_entries(group).find(|g| g.name == part) {
        Some(entry) => Ok(entry.gid),
        None => Err(Error::msg(
            format!("group {part:?}"),
            "no such group in the container's /etc/group",
        )),
    }
}

/// The gids of every group whose member list names `user`, in file order, without repeats.
fn memberships(user: &str, group: &str) -> Vec<u32> {
    let mut gids = Vec::new();
    for entry in group_entries(group).filter(|g| g.has_member(user)) {
        if !gids.contains(&entry.gid) {
            gids.push(entry.gid);
        }
    }
    gids
}

/// The lines of a colon-separated database that can hold an entry: not blank, not a comment.
fn records(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|line| {
        let line = line.trim_start();
        !line.is_empty() && !line.starts_with('#')
    })
}

/// Whether a name field can be an entry: not empty, and not a NIS compat line (`+name`,
/// `-name`), which refers to a directory service we do not consult.
fn usable_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with(['+', '-'])
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    records(text).filter_map(parse_passwd_line)
}

/// One passwd line, or `None` when it is unusable. The fields up to the gid are required; gecos,
/// home and shell may be missing (a missing home means none).
fn parse_passwd_line(line: &str) -> Option<PasswdEntry<'_>> {
    let mut fields = line.splitn(7, ':');
    let name = fields.next().filter(|n| usable_name(n))?;
    let _password = fields.next()?;
    let uid = parse_id(fields.next()?)?;
    let gid = parse_id(fields.next()?)?;
    let _gecos = fields.next();
    let home = fields.next().unwrap_or("");
    Some(PasswdEntry {
        name,
        uid,
        gid,
        home,
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    records(text).filter_map(parse_group_line)
}

/// One group line, or `None` when it is unusable. The member list may be missing (no members).
fn parse_group_line(line: &str) -> Option<GroupEntry<'_>> {
    let mut fields = line.splitn(4, ':');
    let name = fields.next().filter(|n| usable_name(n))?;
    let _password = fields.next()?;
    let gid = parse_id(fields.next()?)?;
    let members = fields.next().unwrap_or("");
    Some(GroupEntry { name, gid, members })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bob:x:1000:1000:Bob:/home/bob:/bin/sh
alice:x:1001:1001::/home/alice:/bin/sh
";

    const GROUP: &str = "\
root:x:0:
wheel:x:10:root,bob
audio:x:29:bob,alice
bob:x:1000:
alice:x:1001:
staff:x:50:
";

    fn id(uid: u32, gid: u32, groups: &[u32], home: Option<&str>) -> Identity {
        Identity {
            uid,
            gid,
            groups: groups.to_vec(),
            home: home.map(str::to_string),
        }
    }

    fn ok(spec: Option<&str>, passwd: Option<&str>, group: Option<&str>) -> Identity {
        match resolve(spec, passwd, group) {
            Ok(i) => i,
            Err(e) => panic!("{spec:?}: {e}"),
        }
    }

    fn err(spec: Option<&str>, passwd: Option<&str>, group: Option<&str>) -> String {
        match resolve(spec, passwd, group) {
            Ok(i) => panic!("{spec:?} resolved to {i:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn no_spec_is_root_with_its_entry() {
        assert_eq!(
            ok(None, Some(PASSWD), Some(GROUP)),
            id(0, 0, &[10], Some("/root"))
        );
    }

    #[test]
    fn no_spec_and_no_files_is_bare_root() {
        assert_eq!(ok(None, None, None), id(0, 0, &[], None));
    }

    #[test]
    fn name_gives_gid_home_and_memberships() {
        assert_eq!(
            ok(Some("bob"), Some(PASSWD), Some(GROUP)),
            id(1000, 1000, &[10, 29], Some("/home/bob"))
        );
    }

    #[test]
    fn unknown_name_is_an_error() {
        assert_eq!(
            err(Some("carol"), Some(PASSWD), Some(GROUP)),
            "user \"carol\": no such user in the container's /etc/passwd"
        );
        assert_eq!(
            err(Some("bob"), None, Some(GROUP)),
            "user \"bob\": no such user in the container's /etc/passwd"
        );
    }

    #[test]
    fn numeric_spec_is_never_a_name() {
        // CVE-2016-3697: a user literally named 1000 with uid 0.
        let passwd = "1000:x:0:0:evil:/root:/bin/sh\n";
        assert_eq!(ok(Some("1000"), Some(passwd), None), id(1000, 0, &[], None));
        let group = "0:x:0:\n";
        assert_eq!(ok(Some("1000:0"), Some(passwd), Some(group)).gid, 0);
        let group = "1000:x:0:\n";
        assert_eq!(ok(Some("5:1000"), Some(passwd), Some(group)).gid, 1000);
    }

    #[test]
    fn numeric_uid_found_in_passwd_takes_its_entry() {
        assert_eq!(
            ok(Some("1000"), Some(PASSWD), Some(GROUP)),
            id(1000, 1000, &[10, 29], Some("/home/bob"))
        );
        // Leading zeros are still the same number.
        assert_eq!(ok(Some("01000"), Some(PASSWD), Some(GROUP)).uid, 1000);
    }

    #[test]
    fn numeric_uid_missing_from_passwd_is_accepted() {
        assert_eq!(
            ok(Some("4242"), Some(PASSWD), Some(GROUP)),
            id(4242, 0, &[], None)
        );
        assert_eq!(ok(Some("4242"), None, None), id(4242, 0, &[], None));
        assert_eq!(ok(Some("4242:77"), None, None), id(4242, 77, &[], None));
    }

    #[test]
    fn explicit_group_sets_gid_and_no_supplementary_groups() {
        assert_eq!(
            ok(Some("bob:staff"), Some(PASSWD), Some(GROUP)),
            id(1000, 50, &[], Some("/home/bob"))
        );
        assert_eq!(
            ok(Some("bob:4000"), Some(PASSWD), Some(GROUP)),
            id(1000, 4000, &[], Some("/home/bob"))
        );
        assert!(
            ok(Some("1000:10"), Some(PASSWD), Some(GROUP))
                .groups
                .is_empty()
        );
    }

    #[test]
    fn unknown_group_name_is_an_error() {
        assert_eq!(
            err(Some("bob:games"), Some(PASSWD), Some(GROUP)),
            "group \"games\": no such group in the container's /etc/group"
        );
        assert_eq!(
            err(Some("bob:staff"), Some(PASSWD), None),
            "group \"staff\": no such group in the container's /etc/group"
        );
    }

    #[test]
    fn ids_are_parsed_strictly() {
        for bad in ["4294967295", "4294967296", "99999999999999999999"] {
            assert!(
                err(Some(bad), Some(PASSWD), None).contains("not a valid user id"),
                "{bad}"
            );
            let spec = format!("bob:{bad}");
            assert!(err(Some(&spec), Some(PASSWD), None).contains("not a valid group id"));
        }
        assert_eq!(ok(Some("4294967294"), None, None).uid, 4294967294);
        // Signs and spaces make a name, which then must exist.
        for name in ["+1000", "-1", " 1000", "1000 ", "0x10"] {
            assert!(
                err(Some(name), Some(PASSWD), None).contains("no such user"),
                "{name:?}"
            );
        }
        assert_eq!(parse_id("+5"), None);
        assert_eq!(parse_id(""), None);
        assert_eq!(parse_id("12"), Some(12));
    }

    #[test]
    fn empty_parts_are_errors() {
        for spec in ["", ":", "bob:", ":10"] {
            assert!(
                err(Some(spec), Some(PASSWD), Some(GROUP)).contains("non-empty"),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn first_matching_entry_wins() {
        let passwd = "bob:x:1000:1000::/home/bob:\nbob:x:0:0::/root:\nbobby:x:1000:5::/b:\n";
        assert_eq!(ok(Some("bob"), Some(passwd), None).uid, 1000);
        assert_eq!(
            ok(Some("1000"), Some(passwd), None).home.as_deref(),
            Some("/home/bob")
        );
        let group = "g:x:70:\ng:x:71:\n";
        assert_eq!(ok(Some("bob:g"), Some(passwd), Some(group)).gid, 70);
    }

    #[test]
    fn bad_lines_are_skipped_not_fatal() {
        let passwd = "\
# a comment
   # an indented comment

short:x:1
badid:x:12a:0::/x:/bin/sh
signed:x:+7:0::/x:/bin/sh
spaced:x: 7:0::/x:/bin/sh
huge:x:99999999999:0::/x:/bin/sh
minus1:x:4294967295:0::/x:/bin/sh
+nis::::::
-excluded::::::
:x:5:5::/nameless:/bin/sh
bob:x:1000:1000:Bob:/home/bob:/bin/sh
";
        let group = "\
#c
bad:x:notanumber:bob
:x:9:bob
+:::
wheel:x:10:bob
";
        assert_eq!(
            ok(Some("bob"), Some(passwd), Some(group)),
            id(1000, 1000, &[10], Some("/home/bob"))
        );
        for skipped in [
            "short", "badid", "signed", "spaced", "huge", "minus1", "+nis",
        ] {
            assert!(
                err(Some(skipped), Some(passwd), None).contains("no such user"),
                "{skipped}"
            );
        }
        assert!(err(Some("bob:bad"), Some(passwd), Some(group)).contains("no such group"));
        // The nameless line does not match uid 5 either.
        assert_eq!(ok(Some("5"), Some(passwd), None), id(5, 0, &[], None));
    }

    #[test]
    fn short_but_complete_lines_are_usable() {
        // Trailing fields may be missing: no home, no member list.
        let passwd = "bob:x:1000:1000\ncrlf:x:7:7::/home/crlf:/bin/sh\r\n";
        let group = "wheel:x:10\nops:x:20:bob\n";
        assert_eq!(
            ok(Some("bob"), Some(passwd), Some(group)),
            id(1000, 1000, &[20], None)
        );
        assert_eq!(
            ok(Some("crlf"), Some(passwd), None).home.as_deref(),
            Some("/home/crlf")
        );
    }

    #[test]
    fn memberships_match_whole_names_without_repeats() {
        let group = "\
a:x:10:bobby,xbob
b:x:11:alice,bob
c:x:11:bob
d:x:12: bob
e:x:13:bob,carol
";
        assert_eq!(memberships("bob", group), [11, 13]);
    }

    #[test]
    fn primary_group_is_not_added_to_the_supplementary_list() {
        let group = "bob:x:1000:\nwheel:x:10:bob\n";
        assert_eq!(ok(Some("bob"), Some(PASSWD), Some(group)).groups, [10]);
        // ... but a group file listing the user in its own primary group is followed as written.
        let group = "bob:x:1000:bob\n";
        assert_eq!(ok(Some("bob"), Some(PASSWD), Some(group)).groups, [1000]);
    }

    #[test]
    fn numeric_uid_membership_uses_the_entry_name() {
        // uid 1001 is alice; she is in audio (29) only.
        assert_eq!(ok(Some("1001"), Some(PASSWD), Some(GROUP)).groups, [29]);
    }
}
