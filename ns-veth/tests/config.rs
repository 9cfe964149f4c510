//! The config checks that protect ns-veth's work: what a container.json may ask of the network
//! before anything is made (common::config::validate's `check_networks`). No privileges needed.

use common::config::Config;

fn check(json: &str) -> Result<(), String> {
    let mut c = Config::parse(json.as_bytes()).map_err(|e| e.to_string())?;
    c.validate_fields().map_err(|e| e.to_string())
}

/// Names and prefixes follow the kernel's rules, and a prefix leaves room for the suffix.
#[test]
fn names_and_prefixes_are_checked() {
    let veth = |ctx: &str| format!(r#"{{"networks": [{{"type": "veth", "context": {ctx}}}]}}"#);
    check(&veth(
        r#"{"bridge": "br0", "prefix": "veth", "name": "net0"}"#,
    ))
    .unwrap();
    check(&veth(r#"{"bridge": "br0", "prefix": "12345678"}"#)).unwrap();
    let e = check(&veth(r#"{"bridge": "br0", "prefix": "123456789"}"#)).unwrap_err();
    assert!(
        e.starts_with("config: networks[0].context.prefix: \"123456789\""),
        "{e}"
    );
    let e = check(&veth(r#"{"bridge": "br%d", "prefix": "v"}"#)).unwrap_err();
    assert!(e.starts_with("config: networks[0].context.bridge:"), "{e}");
    let e = check(&veth(r#"{"bridge": "br0", "prefix": "v", "name": "a b"}"#)).unwrap_err();
    assert!(e.starts_with("config: networks[0].context.name:"), "{e}");
}

/// A veth, a loopback or routes without a network namespace of the container's own would
/// change the host's network, so they are refused; after a `netns` network they are fine.
#[test]
fn host_network_changes_are_refused_without_newnet() {
    let no_net = r#""namespaces": ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID"]"#;
    let e = check(&format!(
        r#"{{{no_net}, "networks": [{{"type": "loopback"}}]}}"#
    ))
    .unwrap_err();
    assert!(
        e.contains("networks[0].type: needs the NEWNET namespace"),
        "{e}"
    );
    let e = check(&format!(
        r#"{{{no_net}, "routes": [{{"destination": "198.18.0.0/15", "interface_name": "eth0"}}]}}"#
    ))
    .unwrap_err();
    assert!(e.starts_with("config: routes: need the NEWNET"), "{e}");
    check(&format!(
        r#"{{{no_net}, "networks": [{{"type": "netns", "context": {{"nspath": "/run/netns/x"}}}},
            {{"type": "loopback"}}],
            "routes": [{{"destination": "198.18.0.0/15", "interface_name": "lo"}}]}}"#
    ))
    .unwrap();
}
