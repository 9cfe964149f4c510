#!/bin/sh
# veth-run.sh NETNS ADDRESS GATEWAY CMD [ARG...]: the `ip` commands a user scripts around
# `runc run` or `crun run` to put the container on bridge br0, then CMD, then the cleanup.
#
# S3 of bench/run.sh times this whole script, so the peers pay for their network setup as
# ns-exec does (ns-exec makes the same veth with netlink, in-process). The bundle's config.json
# names /run/netns/NETNS in linux.namespaces; the steps mirror ns-exec's own for a "veth"
# network (host side: link_add with the peer in the netns, set_master, set_up; inside: lo up,
# address, eth0 up, default route via the gateway). Run it in the network namespace holding br0.
# Deleting the netns afterwards takes the veth pair with it.
set -eu

[ "$#" -ge 4 ] || {
	echo "veth-run.sh: usage: veth-run.sh NETNS ADDRESS GATEWAY CMD [ARG...]" >&2
	exit 100
}
ns=$1 address=$2 gateway=$3
shift 3
host=bv$$

ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip link add "$host" type veth peer name eth0 netns "$ns"
ip link set "$host" master br0 up
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$address" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" route add default via "$gateway"
"$@"
