#!/bin/sh
# cgroup-pid.sh [LIMITS...] NAME PID
# cgroup-pid.sh --remove NAME [PID]
#
# Shows one stage alone, in hook mode: ns-cgroup puts a process that already runs (any process,
# no container needed) into a new cgroup with limits, and takes it out again.
#
#   ns-cgroup create NAME LIMITS...     NAME below the caller's own cgroup, limits written first
#   ns-cgroup join NAME --pid PID       PID moved in (its later children start inside)
#   ns-cgroup stats NAME                the limits and usage, as one JSON document (printed)
#
# --remove takes PID (if given) back out, into the cgroup NAME was made below (the caller's
# own, in every hierarchy ns-cgroup joined: the paths come from `ns-cgroup join --plan`), then
# runs `ns-cgroup remove NAME`, which waits for the processes still inside to end. Without PID,
# whatever is still inside must end by itself within --timeout (or use --kill to end it).
#
# LIMITS are ns-cgroup's limit flags (--memory 64m, --pids-max 20, --cpu-shares 512, ...; see
# ns-cgroup --help). Exit status: 0 done; 125 a stage failed (its one line is on stderr), or a
# usage error. A failed join removes the cgroup it just made.
set -eu

prog=cgroup-pid.sh

usage() {
	cat <<'EOF'
Usage: cgroup-pid.sh [LIMITS...] NAME PID
       cgroup-pid.sh --remove [--kill] [--timeout SECS] NAME [PID]

Put the running process PID into a new cgroup NAME (below this script's own cgroup) with
LIMITS, and print its stats as JSON; with --remove, take PID back out (into this script's
cgroup) and remove NAME.

Options:
  LIMITS            ns-cgroup's limit flags: --memory BYTES, --pids-max N, --cpu-shares N, ...
  --remove          take PID out and remove the cgroup NAME
  --kill            with --remove: SIGKILL what is still inside first
  --timeout SECS    with --remove: wait at most SECS for the processes inside to end
  -h, --help        print this help

Environment: NS_BIN_DIR, the directory of the ns-tools programs (default: this
checkout's target/release, else PATH).

Exit status: 0 done; 125 a stage failed or a usage error.
EOF
}

. "$(dirname "$0")/lib/stages.sh"

is_pid() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
	[ "$1" -gt 0 ]
}

remove=
kill_first=
timeout=
# The limit flags go to ns-cgroup create as they are, each with its value.
limits_file=$(mktemp "${TMPDIR:-/tmp}/cgroup-pid.XXXXXX")
trap 'rm -f "$limits_file"' EXIT
while [ "$#" -gt 0 ]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--remove)
		remove=1
		shift
		;;
	--kill)
		kill_first=1
		shift
		;;
	--timeout)
		[ "$#" -ge 2 ] || usage_error "--timeout needs a value"
		timeout=$2
		shift 2
		;;
	--allow-all-devices)
		printf '%s\n' "$1" >>"$limits_file"
		shift
		;;
	--memory | --memory-reservation | --memory-swap | --cpu-shares | --cpu-quota | \
		--cpu-period | --cpuset-cpus | --cpuset-mems | --pids-max | --allow-device)
		[ "$#" -ge 2 ] || usage_error "$1 needs a value"
		printf '%s\n%s\n' "$1" "$2" >>"$limits_file"
		shift 2
		;;
	--)
		shift
		break
		;;
	-*)
		usage_error "unknown option $1"
		;;
	*)
		break
		;;
	esac
done

ns_cgroup=$(find_prog ns-cgroup)

if [ -n "$remove" ]; then
	if [ -s "$limits_file" ]; then
		usage_error "--remove takes no limits"
	fi
	[ "$#" -ge 1 ] && [ "$#" -le 2 ] || usage_error "--remove needs NAME and optionally PID"
	name=$1
	pid=${2:-}
	[ -z "$pid" ] || is_pid "$pid" || usage_error "PID $pid: not a pid"
	if [ -n "$pid" ]; then
		command -v jq >/dev/null 2>&1 || die "jq: not found on PATH (it reads ns-cgroup's plan)"
		# NAME's cgroup.procs in each hierarchy, from ns-cgroup's own plan for a join; the
		# directory above NAME is the one NAME was made below.
		plan=$("$ns_cgroup" join "$name" --pid "$pid" --plan) || exit 125
		for procs in $(printf '%s\n' "$plan" | jq -r '.actions[] | select(.step == "join") | .path'); do
			dir=${procs%/cgroup.procs}
			[ -d "$dir" ] || die "cgroup $dir does not exist"
			# Only where PID is: a process may have left, or never been in, some hierarchy.
			grep -qx "$pid" "$procs" 2>/dev/null || continue
			echo "$pid" >"${dir%/*}/cgroup.procs" || die "move $pid back to ${dir%/*}"
		done
	fi
	[ -z "$kill_first" ] || "$ns_cgroup" kill "$name" || exit 125
	"$ns_cgroup" remove "$name" ${timeout:+--timeout "$timeout"} >/dev/null || exit 125
	exit 0
fi

[ -z "$kill_first" ] || usage_error "--kill goes with --remove"
[ -z "$timeout" ] || usage_error "--timeout goes with --remove"
[ "$#" -eq 2 ] || usage_error "expected NAME and PID"
name=$1
pid=$2
is_pid "$pid" || usage_error "PID $pid: not a pid"
[ -d "/proc/$pid" ] || die "process $pid does not exist"

# The limits as arguments, one per line of the file (values hold no newlines).
old_ifs=$IFS
IFS='
'
set -f
# shellcheck disable=SC2046 # one argument per line
set -- $(cat "$limits_file")
set +f
IFS=$old_ifs

"$ns_cgroup" create "$name" "$@" >/dev/null || exit 125
if ! "$ns_cgroup" join "$name" --pid "$pid" >/dev/null; then
	"$ns_cgroup" remove "$name" --timeout 1 >/dev/null 2>&1 || :
	exit 125
fi
"$ns_cgroup" stats "$name" || exit 125
