//! The container's /etc/passwd and /etc/group parsers and the user-spec resolver: hostile file
//! contents and specs give an identity or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{0}');
    let spec = parts.next().filter(|s| !s.is_empty());
    let passwd = parts.next();
    let group = parts.next();
    let _ = ns_init::identity::resolve(spec, passwd, group);
});
