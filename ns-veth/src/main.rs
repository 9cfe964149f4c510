//! ns-veth: give a network namespace a veth pair attached to a bridge.
//!
//! Not written yet: only `--help` and `--version` work, and every other invocation fails with
//! status 125, so nothing can mistake it for a working stage.

const USAGE: &str = "\
Usage: ns-veth add (--pid PID | --netns PATH) --bridge BR [--prefix P] [--mtu N]
                   [--address CIDR] [--gateway IP] [--context-fd FD]
       ns-veth del NAME
       ns-veth check NAME

Create a veth pair with its peer inside the target network namespace, attach the host end
to a bridge, and write the network context (interface names, address, gateway, MTU) as one
JSON object to FD for ns-init, which configures the container side.

NOT IMPLEMENTED YET: this version only prints this help; every other use exits 125.
";

fn main() {
    common::cli::planned_stage("ns-veth", env!("CARGO_PKG_VERSION"), USAGE)
}
