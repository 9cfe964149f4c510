#!/bin/sh
# veth-netns.sh add NETNS --bridge BR [--address CIDR] [--gateway IP] [--mtu N] [--name IF]
#                   [--prefix P]
# veth-netns.sh del NETNS [--name IF]
#
# Shows one stage alone: ns-veth gives an existing network namespace (no container needed; a
# path such as /run/netns/X from `ip netns add X`, /proc/PID/ns/net, or just the name X) a
# veth pair whose host end is on the bridge BR of the caller's network namespace, and the
# script does the inside by hand from the JSON context ns-veth writes, as ns-init would after
# `go` (docs/handoff.md §5):
#
#   ns-veth add --netns NETNS --bridge BR ... --context-fd 3    the pair, peer born in NETNS
#   {"v":1,"type":"veth","host":...,"peer":...,"name":"eth0","address":...,"gateway":...}
#   nsenter --net=NETNS ip link set PEER name IF; mtu; addr add; up; lo up; default route
#
# The context line is printed on stdout. If an inside step fails, the pair is deleted again
# (ns-veth del on the host end) and the status is 125, so nothing is left half-made.
# `del` deletes the veth IF inside NETNS with `ns-veth del` run there: deleting one end of a
# pair deletes both, and like ns-veth del it succeeds when there is nothing to delete. Nothing
# else is needed to tear down: the pair also goes away by itself when NETNS is deleted.
#
# Exit status: 0 done; 125 a stage failed (one line on stderr) or a usage error.
set -eu

prog=veth-netns.sh

usage() {
	cat <<'EOF'
Usage: veth-netns.sh add NETNS --bridge BR [--address CIDR] [--gateway IP] [--mtu N]
                         [--name IF] [--prefix P]
       veth-netns.sh del NETNS [--name IF]

add  Create a veth pair: the host end on bridge BR (in this network namespace), the peer in
     NETNS, renamed IF (default eth0), with the address, MTU and default route set inside;
     print ns-veth's JSON context.
del  Delete the veth IF (default eth0) inside NETNS, and so its host end; nothing to delete
     is no error.

NETNS is a network namespace file (/run/netns/X, /proc/PID/ns/net) or a name in /run/netns.

Environment: NS_BIN_DIR, the directory of the ns-tools programs (default: this
checkout's target/release, else PATH).

Exit status: 0 done; 125 a stage failed or a usage error.
EOF
}

. "$(dirname "$0")/lib/stages.sh"

[ "$#" -ge 1 ] || usage_error "a verb is required"
case $1 in
-h | --help)
	usage
	exit 0
	;;
add | del) verb=$1 ;;
*) usage_error "unknown verb $1" ;;
esac
shift
[ "$#" -ge 1 ] || usage_error "$verb: NETNS is required"
netns=$1
shift
case $netns in
-*) usage_error "$verb: NETNS is required before the options" ;;
*/*) ;;
*) netns=/run/netns/$netns ;;
esac

bridge=
address=
gateway=
mtu=
ifname=eth0
prefix=
while [ "$#" -gt 0 ]; do
	[ "$#" -ge 2 ] || usage_error "$1 needs a value"
	case $1 in
	--bridge) bridge=$2 ;;
	--address) address=$2 ;;
	--gateway) gateway=$2 ;;
	--mtu) mtu=$2 ;;
	--name) ifname=$2 ;;
	--prefix) prefix=$2 ;;
	*) usage_error "unknown option $1" ;;
	esac
	[ "$verb" = add ] || [ "$1" = --name ] || usage_error "del takes only --name"
	shift 2
done

need_cmd nsenter "util-linux enters the network namespace"
need_cmd ip "iproute2 configures the inside"
ns_veth=$(find_prog ns-veth)
[ -e "$netns" ] || die "network namespace $netns does not exist"

# A command inside NETNS (only its network namespace: the files stay the caller's).
inside() {
	nsenter --net="$netns" -- "$@"
}

if [ "$verb" = del ]; then
	inside "$ns_veth" del "$ifname" || exit 125
	exit 0
fi

need_cmd jq "it reads ns-veth's context"
[ -n "$bridge" ] || usage_error "add: --bridge is required"

# ns-veth checks everything before it makes anything, and undoes its own half-made pair.
ctx=$("$ns_veth" add --netns "$netns" --bridge "$bridge" ${prefix:+--prefix "$prefix"} \
	--name "$ifname" ${mtu:+--mtu "$mtu"} ${address:+--address "$address"} \
	${gateway:+--gateway "$gateway"} --context-fd 3 3>&1 >/dev/null) || exit 125

field() {
	printf '%s\n' "$ctx" | jq -r --arg k "$1" '.[$k] // empty'
}
host=$(field host)
peer=$(field peer)
name=$(field name)
c_mtu=$(field mtu)
c_address=$(field address)
c_gateway=$(field gateway)
[ -n "$host" ] && [ -n "$peer" ] && [ -n "$name" ] || {
	"$ns_veth" del "$host" >/dev/null 2>&1 || :
	die "ns-veth's context lacks host, peer or name: $ctx"
}

# The inside, in ns-init's order: rename, MTU, address, up, lo up, default route. On any
# failure the pair goes (deleting the host end deletes the peer).
configure() {
	inside ip link set dev "$peer" name "$name" &&
		{ [ -z "$c_mtu" ] || inside ip link set dev "$name" mtu "$c_mtu"; } &&
		{ [ -z "$c_address" ] || inside ip addr add "$c_address" dev "$name"; } &&
		inside ip link set dev "$name" up &&
		inside ip link set dev lo up &&
		{ [ -z "$c_gateway" ] || inside ip route add default via "$c_gateway" dev "$name"; }
}
if ! configure; then
	"$ns_veth" del "$host" >/dev/null || :
	die "configuring $name inside $netns failed; the pair was deleted"
fi
printf '%s\n' "$ctx"
