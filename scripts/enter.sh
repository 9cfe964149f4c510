#!/bin/sh
# enter.sh [--root DIR] NAME [--] CMD [ARG...]
#
# Shows what `ns-exec enter NAME -- CMD` does, by hand with util-linux and libcap tools:
#
#   1. read pid, start_time, config and cgroup from <root>/<name>/state.json, and refuse a pid
#      whose start time (field 22 of /proc/PID/stat) is not the recorded one: that pid now
#      names another process (docs/handoff.md §8);
#   2. the identity ns-init would take (uid, gid, groups, capabilities, cwd, no_new_privs) and
#      the environment, from `ns-init --plan` on the container's config, so the user is looked
#      up in the container's /etc/passwd by ns-init's own code;
#   3. `ns-cgroup join NAME -- ...` (chain form): the cgroup first, before a cgroup namespace
#      is entered, so the command counts against the container's limits;
#   4. `nsenter --target PID` with every namespace of /proc/PID/ns that differs from ours;
#   5. capsh: the root switch into the container (chroot to /proc/PID/root), the bounding set,
#      groups, gid, uid and no_new_privs in one process, then the exec of CMD.
#
# Why capsh and not setpriv: once the container's mount namespace is entered, the host's
# binaries are gone (the container's root replaced the host's), and util-linux setpriv cannot
# chroot. nsenter is given the host's root (--root=/) so that capsh, a host binary, still runs
# in the container's mount namespace; capsh then switches to the container's root itself and
# changes the identity after that, in the same process. What ns-exec enter does differently:
# it runs ns-init's identity code in its own forked child, so no host binary runs inside at
# all; it opens a pidfd, so the pid cannot be reused between the check and the setns (here
# the start time is checked twice, before and after the cgroup join, which narrows but cannot
# close that window); and CMD's argv[0] stays as given (capsh passes the resolved path).
# capsh changes to / after the root switch; a working_dir other than / is entered by the
# container's own /bin/sh (`cd`), which therefore must exist.
#
# Exit status: CMD's own (128+N for signal N); 125 if entering failed; 127 if CMD is not found.
# Run it from the cgroup ns-exec ran in: ns-cgroup finds the container's cgroup below the
# caller's own, as it made it.
set -eu

prog=enter.sh

usage() {
	cat <<'EOF'
Usage: enter.sh [--root DIR] NAME [--] CMD [ARG...]

Run CMD inside the running container NAME made by ns-exec: its namespaces, its cgroup, and
the user, groups, capabilities, working directory and environment of its config.

Options:
  --root DIR   ns-exec's state directory (default: /run/ns-tools)
  -h, --help   print this help

Environment: NS_BIN_DIR, the directory of the ns-tools programs (default: this
checkout's target/release, else PATH).

Exit status: CMD's own; 128+N if signal N killed it; 125 if entering failed;
127 if CMD was not found.
EOF
}

. "$(dirname "$0")/lib/stages.sh"

# start_time PID: field 22 of /proc/PID/stat (fields counted after the last ')', since the
# command name may hold spaces and parentheses); fails for a zombie or a missing process.
start_time() {
	_stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	_rest=${_stat##*) }
	set -f
	# shellcheck disable=SC2086 # split into fields on purpose
	set -- $_rest
	set +f
	case $1 in Z | X | x) return 1 ;; esac
	[ "$#" -ge 20 ] || return 1
	shift 19
	printf '%s\n' "$1"
}

# check_running: the recorded pid still runs with the recorded start time.
check_running() {
	_now=$(start_time "$pid") || die "container $name is not running: pid $pid is gone (stale state)"
	[ "$_now" = "$start" ] ||
		die "container $name is not running: pid $pid now belongs to another process (started at $_now, not $start)"
}

root_dir=/run/ns-tools
name=
while [ "$#" -gt 0 ]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--root)
		[ "$#" -ge 2 ] || usage_error "--root needs a value"
		root_dir=$2
		shift 2
		;;
	--root=*)
		root_dir=${1#--root=}
		shift
		;;
	--)
		shift
		break
		;;
	-*)
		usage_error "unknown option $1"
		;;
	*)
		if [ -z "$name" ]; then
			name=$1
			shift
		else
			break
		fi
		;;
	esac
done
[ -n "$name" ] || usage_error "NAME is required"
[ "$#" -ge 1 ] || usage_error "CMD is required"
case $name in
*/* | . | ..) usage_error "NAME $name: not a container name" ;;
esac

need_cmd jq "it reads state.json and ns-init's plan"
need_cmd nsenter "util-linux enters the namespaces"
need_cmd capsh "libcap2-bin switches the root and the identity"
ns_init=$(find_prog ns-init)
ns_cgroup=$(find_prog ns-cgroup)
# Absolute paths: from env -i on, PATH is the container's.
nsenter=$(command -v nsenter)
capsh=$(command -v capsh)
env=$(command -v env)

state=$root_dir/$name/state.json
[ -f "$state" ] || die "no container $name in $root_dir"
pid=$(jq -er '.pid' "$state") || die "$state: no pid"
start=$(jq -er '.start_time' "$state") || die "$state: no start_time"
cgroup=$(jq -r '.cgroup.name // empty' "$state")
cgroup_parent=$(jq -r '.cgroup.parent // empty' "$state")
check_running

# The identity and environment, as ns-init plans them for this config.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/enter.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
jq '.config' "$state" >"$tmp/config.json"
"$ns_init" --plan --config "$tmp/config.json" -- "$@" >"$tmp/plan.json" || exit 125
identity=$(jq -ce '.actions[] | select(.step == "identity")' "$tmp/plan.json") ||
	die "ns-init's plan has no identity step"
uid=$(printf '%s\n' "$identity" | jq -r '.uid')
gid=$(printf '%s\n' "$identity" | jq -r '.gid')
groups=$(printf '%s\n' "$identity" | jq -r '.groups | map(tostring) | join(",")')
cwd=$(printf '%s\n' "$identity" | jq -r '.cwd // "/"')
nnp=$(printf '%s\n' "$identity" | jq -r '.no_new_privileges')
keep=$(printf '%s\n' "$identity" | jq -r '.capabilities | map(ascii_downcase | ltrimstr("cap_")) | join(" ")')

# The bounding set keeps exactly the config's capabilities: drop every other one the kernel
# knows. capsh names all of them, in bit order, from one mask.
last_cap=$(cat /proc/sys/kernel/cap_last_cap)
all_caps=$("$capsh" --decode="$(printf '0x%x' $(((1 << (last_cap + 1)) - 1)))")
all_caps=${all_caps#*=}
drop=
IFS_save=$IFS
IFS=,
for cap_name in $all_caps; do
	case " $keep " in
	*" ${cap_name#cap_} "*) ;;
	*) drop=${drop:+$drop,}$cap_name ;;
	esac
done
IFS=$IFS_save

# The environment: as ns-init plans it (the config's entries, and HOME from the user's
# passwd entry in the container when the config sets none).
croot=/proc/$pid/root
env_args=$(jq -r '.actions[] | select(.step == "exec") | .env[]' "$tmp/plan.json")
path=$(jq -r '.config.environment | map(select(startswith("PATH="))) | .[0] // "" | ltrimstr("PATH=")' "$state")
[ -n "$path" ] || path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# CMD's path inside the container, found along the container's PATH (capsh execs a path).
cmd=$1
shift
case $cmd in
*/*) cmd_path=$cmd ;;
*)
	cmd_path=
	IFS_save=$IFS
	IFS=:
	for dir in $path; do
		if [ -f "$croot$dir/$cmd" ] && [ -x "$croot$dir/$cmd" ]; then
			cmd_path=$dir/$cmd
			break
		fi
	done
	IFS=$IFS_save
	if [ -z "$cmd_path" ]; then
		echo "$prog: $cmd: not found in the container's PATH ($path)" >&2
		exit 127
	fi
	;;
esac

# Every namespace of the container that is not ours. The *_for_children links name what
# children get; the process's own are the others.
ns_flags=
for link in "/proc/$pid/ns/"*; do
	kind=${link##*/}
	case $kind in *_for_children) continue ;; esac
	theirs=$(readlink "$link") || die "read $link"
	ours=$(readlink "/proc/$$/ns/$kind") || die "read /proc/$$/ns/$kind"
	[ "$theirs" != "$ours" ] || continue
	case $kind in
	mnt) ns_flags="$ns_flags --mount" ;;
	uts) ns_flags="$ns_flags --uts" ;;
	ipc) ns_flags="$ns_flags --ipc" ;;
	net) ns_flags="$ns_flags --net" ;;
	pid) ns_flags="$ns_flags --pid" ;;
	cgroup) ns_flags="$ns_flags --cgroup" ;;
	time) ns_flags="$ns_flags --time" ;;
	user) ns_flags="$ns_flags --user" ;;
	*) die "namespace $kind: enter.sh does not know how to enter it" ;;
	esac
done

# Build the chain back to front: capsh, nsenter, env, ns-cgroup.
if [ "$cwd" = / ]; then
	set -- --shell="$cmd_path" -- "$@"
else
	# shellcheck disable=SC2016 # expanded by the container's shell
	set -- --shell=/bin/sh -- -c 'cd -- "$0" && exec "$@"' "$cwd" "$cmd_path" "$@"
fi
[ "$nnp" != true ] || set -- --no-new-privs "$@"
# Order matters: the root switch and the bounding set while still root with every capability,
# then groups, gid and uid; capsh's --uid clears the permitted set of a non-root user, as the
# kernel does, and the exec gives root exactly the bounding set.
set -- "$capsh" --chroot="$croot" ${drop:+"--drop=$drop"} --inh= --noamb \
	--groups="$groups" --gid="$gid" --uid="$uid" "$@"
# shellcheck disable=SC2086 # one word per flag
set -- "$nsenter" --target "$pid" $ns_flags --root=/ -- "$@"
# One KEY=VALUE per line of the config's environment (values may hold spaces).
IFS_save=$IFS
IFS='
'
set -f
# shellcheck disable=SC2086 # split on newlines only
set -- "$env" -i $env_args "$@"
set +f
IFS=$IFS_save
if [ -n "$cgroup" ]; then
	set -- "$ns_cgroup" join "$cgroup" ${cgroup_parent:+--parent "$cgroup_parent"} -- "$@"
fi

check_running
rm -rf "$tmp"
trap - EXIT
exec "$@"
