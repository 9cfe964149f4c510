//! Parsing and validation of `container.json`: every shape the 2014 schema had, and every
//! error path with the JSON path it names.

use super::*;
use crate::caps;

fn parse(text: &str) -> Result<Config> {
    let mut c = Config::parse(text.as_bytes())?;
    c.validate_fields()?;
    Ok(c)
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error for {text}, got {c:?}"),
        Err(e) => {
            assert_eq!(e.code, 125);
            e.to_string()
        }
    }
}

/// The END-era sample (953f6da), with its network list, routes and device nodes.
const SAMPLE_2014: &str = r#"{
  "hostname": "koye",
  "tty": true,
  "environment": ["HOME=/", "PATH=PATH=$PATH:/bin:/usr/bin:/sbin:/usr/sbin",
                  "container=docker", "TERM=xterm-256color"],
  "namespaces": {"NEWIPC": true, "NEWNET": true, "NEWNS": true, "NEWPID": true, "NEWUTS": true},
  "capabilities": ["MKNOD"],
  "networks": [
    {"type": "loopback", "address": "127.0.0.1/0", "gateway": "localhost", "mtu": 1500},
    {"type": "veth", "context": {"bridge": "docker0", "prefix": "veth"},
     "address": "172.17.42.2/16", "gateway": "172.17.42.1", "mtu": 1500}
  ],
  "routes": [
    {"gateway": "172.17.42.1", "interface_name": "eth0"},
    {"destination": "192.168.0.0/24", "interface_name": "eth0"}
  ],
  "cgroups": {"name": "docker-koye", "parent": "docker"},
  "mounts": [{"type": "devtmpfs"}],
  "device_nodes": [
    {"type": 99, "path": "/dev/null", "major_number": 1, "minor_number": 3,
     "cgroup_permissions": "rwm", "file_mode": 438}
  ]
}"#;

#[test]
fn the_2014_sample_loads_except_its_loopback_gateway() {
    // The sample's loopback gateway "localhost" was ignored in 2014; we refuse it.
    assert!(err(SAMPLE_2014).contains("networks[0].gateway"));
    let fixed = SAMPLE_2014.replace(r#""gateway": "localhost", "#, "");
    let c = parse(&fixed).unwrap();
    assert_eq!(c.hostname.as_deref(), Some("koye"));
    assert_eq!(c.namespaces.len(), 5);
    assert_eq!(c.capabilities.names(), ["MKNOD"]);
    assert_eq!(c.networks.len(), 2);
    assert_eq!(c.networks[1].context["bridge"], "docker0");
    assert_eq!(c.routes[1].destination.as_deref(), Some("192.168.0.0/24"));
    assert_eq!(c.device_nodes[0].kind, DeviceType::Char);
    assert_eq!(c.default_name(), Some("docker-koye"));
    assert!(c.restrictions, "masks are on by default");
}

#[test]
fn defaults_are_the_five_namespaces_and_dockers_keep_list() {
    let c = parse("{}").unwrap();
    assert_eq!(
        c.namespaces,
        [
            Namespace::Mount,
            Namespace::Uts,
            Namespace::Ipc,
            Namespace::Pid,
            Namespace::Net
        ]
    );
    assert_eq!(c.capabilities, caps::CapSet::default_keep());
    assert!(!c.readonly_fs && !c.tty && !c.no_new_privileges);
}

#[test]
fn namespaces_come_as_list_map_or_objects() {
    let list = parse(r#"{"namespaces": ["NEWNS", "NEWPID"]}"#).unwrap();
    let map = parse(r#"{"namespaces": {"NEWNS": true, "NEWPID": true, "NEWNET": false}}"#).unwrap();
    let objects = parse(
        r#"{"namespaces": [{"key": "NEWNS", "value": 131072, "file": "mnt", "enabled": true},
                           {"type": "pid"}, {"type": "network", "enabled": false}]}"#,
    )
    .unwrap();
    assert_eq!(list.namespaces, [Namespace::Mount, Namespace::Pid]);
    assert_eq!(map.namespaces, list.namespaces);
    assert_eq!(objects.namespaces, list.namespaces);
}

#[test]
fn namespace_errors_name_the_entry() {
    assert_eq!(
        err(r#"{"namespaces": ["NEWNS", "NEWFOO"]}"#),
        r#"config: namespaces[1]: unknown namespace "NEWFOO""#
    );
    assert!(err(r#"{"namespaces": ["NEWNS", "NEWNS"]}"#).contains("listed twice"));
    assert!(err(r#"{"namespaces": ["NEWPID"]}"#).contains("NEWNS is required"));
    assert!(err(r#"{"namespaces": "NEWNS"}"#).starts_with("config: namespaces: invalid type"));
}

#[test]
fn capabilities_come_as_list_map_or_all() {
    let c = parse(r#"{"capabilities": ["CAP_CHOWN", "kill"]}"#).unwrap();
    assert_eq!(c.capabilities.names(), ["CHOWN", "KILL"]);
    let c = parse(r#"{"capabilities": {"CHOWN": true, "SYS_ADMIN": false}}"#).unwrap();
    assert_eq!(c.capabilities.names(), ["CHOWN"]);
    let c = parse(r#"{"capabilities": ["ALL"]}"#).unwrap();
    assert_eq!(c.capabilities, caps::CapSet::all());
    let c = parse(r#"{"capabilities": []}"#).unwrap();
    assert_eq!(c.capabilities, caps::CapSet(0));
}

#[test]
fn an_unknown_capability_is_an_error_not_cap_zero() {
    // The 2014 seed mapped an unknown name to cap 0 and so dropped CHOWN.
    assert_eq!(
        err(r#"{"capabilities": ["CHOWN", "CAP_FOO"]}"#),
        r#"config: capabilities[1]: unknown capability "CAP_FOO""#
    );
}

#[test]
fn unknown_keys_are_refused_with_their_place() {
    assert_eq!(
        err(r#"{"hostnmae": "x"}"#),
        "config: unknown field `hostnmae`"
    );
    assert!(err(r#"{"cgroups": {"memroy": 1}}"#).starts_with("config: cgroups: unknown field"));
    assert!(
        err(r#"{"mounts": [{"type": "bind", "source": "/a", "destination": "/b", "x": 1}]}"#)
            .starts_with("config: mounts[0]: unknown field `x`")
    );
}

#[test]
fn sizes_are_numbers_or_units() {
    let c =
        parse(r#"{"cgroups": {"memory": "64m", "memory_swap": -1, "memory_reservation": 4096}}"#)
            .unwrap();
    let cg = c.cgroups.unwrap();
    assert_eq!(cg.memory, Some(Bytes(64 << 20)));
    assert_eq!(cg.memory_swap, Some(Bytes(-1)));
    assert_eq!(cg.memory_reservation, Some(Bytes(4096)));
    assert_eq!(Bytes::parse("1G"), Some(Bytes(1 << 30)));
    assert_eq!(Bytes::parse("2kb"), Some(Bytes(2048)));
    assert_eq!(Bytes::parse("k"), None);
    assert_eq!(Bytes::parse("-5"), None);
    assert_eq!(Bytes::parse("99999999999999t"), None);
}

#[test]
fn bad_sizes_name_the_field() {
    assert_eq!(
        err(r#"{"cgroups": {"memory": "5x"}}"#),
        r#"config: cgroups.memory: expected bytes, got "5x""#
    );
    assert!(err(r#"{"cgroups": {"memory": -5}}"#).contains("expected bytes, got -5"));
    assert!(err(r#"{"cgroups": {"memory": -1}}"#).contains("cgroups.memory: must not be negative"));
    assert!(err(r#"{"cgroups": {"memory": 18446744073709551615}}"#).contains("too large"));
    assert!(err(r#"{"cgroups": {"memory": 1.5}}"#).contains("cgroups.memory"));
    assert!(
        err(r#"{"cgroups": {"memory": 100, "memory_swap": 50}}"#).contains("cgroups.memory_swap")
    );
    assert!(err(r#"{"cgroups": {"cpu_shares": 1}}"#).contains("cgroups.cpu_shares"));
    assert!(err(r#"{"cgroups": {"pids_max": 0}}"#).contains("cgroups.pids_max"));
    assert!(err(r#"{"cgroups": {"name": "../x"}}"#).contains("cgroups.name"));
    assert!(err(r#"{"cgroups": {"freezer": "COLD"}}"#).contains("cgroups.freezer"));
}

#[test]
fn environment_entries_must_be_key_value_once() {
    assert_eq!(
        err(r#"{"environment": ["A=1", "B"]}"#),
        r#"config: environment[1]: "B" is not KEY=VALUE"#
    );
    assert!(err(r#"{"environment": ["=x"]}"#).contains("environment[0]: \"=x\" has an empty name"));
    assert!(err(r#"{"environment": ["A=1", "A=2"]}"#).contains("environment[1]: A is set twice"));
    assert!(err(r#"{"environment": ["A=\u0000"]}"#).contains("environment[0]: contains a NUL"));
    let c = parse(r#"{"environment": ["A=b=c", "E="]}"#).unwrap();
    // The value is everything after the first '=', and may be empty.
    assert_eq!(c.environment, ["A=b=c", "E="]);
}

#[test]
fn hostname_rules() {
    assert!(err(&format!(r#"{{"hostname": "{}"}}"#, "h".repeat(65))).contains("hostname"));
    assert!(err(r#"{"hostname": "a\u0000b"}"#).contains("NUL"));
    assert!(err(r#"{"hostname": "x", "namespaces": ["NEWNS"]}"#).contains("NEWUTS"));
    assert!(parse(r#"{"hostname": "", "namespaces": ["NEWNS"]}"#).is_ok());
    assert!(parse(&format!(r#"{{"hostname": "{}"}}"#, "h".repeat(64))).is_ok());
}

#[test]
fn user_specs() {
    for good in ["root", "1000", "1000:1000", "user:wheel", "www-data", "0:0"] {
        parse(&format!(r#"{{"user": "{good}"}}"#)).unwrap();
    }
    for bad in [
        "",
        ":",
        "1000:",
        ":1",
        "a b",
        " 1000",
        "-1",
        "+5",
        "4294967296",
        "4294967295",
        "a:b:c",
    ] {
        let e = err(&format!(r#"{{"user": "{bad}"}}"#));
        assert!(e.starts_with("config: user: "), "{bad:?}: {e}");
    }
}

#[test]
fn paths_inside_the_container() {
    let c = parse(r#"{"working_dir": "/a//b/./c/"}"#).unwrap();
    assert_eq!(c.working_dir.as_deref(), Some("/a/b/c"));
    assert!(err(r#"{"working_dir": "rel"}"#).contains("working_dir: \"rel\" is not an absolute"));
    assert!(err(r#"{"working_dir": "/a/../../etc"}"#).contains("\"..\""));
    let m = |dest: &str| {
        format!(r#"{{"mounts": [{{"type": "bind", "source": "/srv", "destination": "{dest}"}}]}}"#)
    };
    assert!(parse(&m("/data")).is_ok());
    for bad in [
        "data",
        "/",
        "/../etc",
        "/proc/sys",
        "/proc",
        "/sys/fs/cgroup",
    ] {
        assert!(
            err(&m(bad)).starts_with("config: mounts[0].destination: "),
            "{bad}"
        );
    }
    assert!(err(r#"{"mounts": [{"type": "bind", "destination": "/d"}]}"#).contains("source"));
    assert!(
        err(r#"{"mounts": [{"type": "bind", "source": "s", "destination": "/d"}]}"#)
            .contains("mounts[0].source")
    );
    assert!(
        err(r#"{"mounts": [{"type": "nfs", "destination": "/d"}]}"#).contains("mounts[0].type")
    );
    let c = parse(r#"{"mounts": [{"type": "tmpfs", "destination": "/t", "size": "1m"}]}"#).unwrap();
    assert_eq!(c.mounts[0].size, Some(Bytes(1 << 20)));
}

#[test]
fn device_nodes() {
    let d = |body: &str| format!(r#"{{"device_nodes": [{body}]}}"#);
    let c = parse(&d(
        r#"{"type": "c", "path": "/dev//fuse", "major_number": 10, "minor_number": 229}"#,
    ))
    .unwrap();
    assert_eq!(c.device_nodes[0].path.as_deref(), Some("/dev/fuse"));
    assert!(
        err(&d(
            r#"{"type": "x", "path": "/dev/a", "major_number": 1, "minor_number": 1}"#
        ))
        .contains("device_nodes[0].type")
    );
    assert!(
        err(&d(
            r#"{"type": "c", "path": "/etc/a", "major_number": 1, "minor_number": 1}"#
        ))
        .contains("under /dev")
    );
    assert!(
        err(&d(
            r#"{"type": "c", "path": "/dev/a", "major_number": -1, "minor_number": 1}"#
        ))
        .contains("out of range")
    );
}

#[test]
fn networks_and_routes() {
    assert!(
        err(r#"{"network": {"type": "loopback"}, "networks": [{"type": "loopback"}]}"#)
            .contains("not both")
    );
    let c = parse(r#"{"network": {"type": "veth", "context": {"bridge": "br0", "prefix": "v"}}}"#)
        .unwrap();
    assert_eq!(
        c.networks.len(),
        1,
        "the single network is folded into networks"
    );
    assert!(c.network.is_none());
    assert!(
        err(r#"{"networks": [{"type": "veth", "context": {"bridge": "br0"}}]}"#)
            .contains("needs \"prefix\"")
    );
    assert!(err(r#"{"networks": [{"type": "loopback", "mtu": 0}]}"#).contains("networks[0].mtu"));
    assert!(err(r#"{"networks": [{"type": "loopback", "address": "10.0.0.1"}]}"#).contains("CIDR"));
    assert!(
        err(r#"{"networks": [{"type": "loopback", "address": "10.0.0.1/33"}]}"#).contains("CIDR")
    );
    assert!(err(r#"{"networks": [{"type": "netns"}]}"#).contains("nspath"));
    assert!(err(r#"{"routes": [{"interface_name": "eth0"}]}"#).contains("at least one"));
    assert!(err(r#"{"routes": [{"destination": "::/0", "gateway": "10.0.0.1", "interface_name": "eth0"}]}"#)
        .contains("mixes"));
}

#[test]
fn malformed_documents() {
    assert!(err("").starts_with("config: EOF while parsing"));
    assert!(err("{} x").contains("trailing characters"));
    assert!(err("\u{feff}{}").starts_with("config"));
    assert!(err(r#"{"hostname": "\ud800"}"#).starts_with("config: hostname:"));
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(err(&format!(r#"{{"mounts": {deep}}}"#)).starts_with("config: mounts[0]"));
    // The 2014 "value" field is skipped; serde_json skips without recursing, so depth cannot
    // overflow the stack there either.
    let ignored = format!(r#"{{"namespaces": [{{"type": "NEWNS", "value": {deep}}}]}}"#);
    assert!(parse(&ignored).is_ok());
    assert!(err(r#"{"tty": "yes"}"#).starts_with("config: tty: invalid type"));
    assert!(err(r#"{"hostname": "a", "hostname": "b"}"#).contains("duplicate field"));
}

#[test]
fn canonical_form_round_trips() {
    let fixed = SAMPLE_2014.replace(r#""gateway": "localhost", "#, "");
    let c = parse(&fixed).unwrap();
    let again = parse(std::str::from_utf8(&c.to_json()).unwrap()).unwrap();
    assert_eq!(c, again);
}

#[test]
fn rootfs_is_resolved_against_the_config_folder() {
    let base = std::env::temp_dir().join(format!("ns-tools-config-test-{}", std::process::id()));
    std::fs::create_dir_all(base.join("root")).unwrap();
    let mut c = Config::parse(br#"{"rootfs": "root"}"#).unwrap();
    c.validate(&base).unwrap();
    assert_eq!(
        c.rootfs,
        Some(std::fs::canonicalize(base.join("root")).unwrap())
    );
    let mut c = Config::parse(br#"{"rootfs": "missing"}"#).unwrap();
    let e = c.validate(&base).unwrap_err().to_string();
    assert!(
        e.contains("config: rootfs:") && e.contains("No such file"),
        "{e}"
    );
    let mut c = Config::parse(br#"{"rootfs": "/"}"#).unwrap();
    assert!(
        c.validate(&base)
            .unwrap_err()
            .to_string()
            .contains("host's \"/\"")
    );
    std::fs::write(base.join("file"), "").unwrap();
    let mut c = Config::parse(br#"{"rootfs": "file"}"#).unwrap();
    assert!(
        c.validate(&base)
            .unwrap_err()
            .to_string()
            .contains("not a directory")
    );
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn the_shipped_example_config_is_valid() {
    let c = parse(include_str!("../../../docs/examples/container.json")).unwrap();
    assert_eq!(c.hostname.as_deref(), Some("koye"));
    assert!(c.no_new_privileges);
}
