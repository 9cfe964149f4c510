#!/bin/sh
# compose.sh [--name NAME] [--pid-file FILE] CONFIG -- CMD [ARG...]
#
# Shows that ns-exec is only one composition of the stages: this script builds the container
# ns-exec builds for CONFIG from the stage programs alone, and takes ns-exec's place on the host
# side (docs/architecture.md, "Composing the stages by hand"; docs/handoff.md §5.1):
#
#   ns-cgroup create NAME --config CONFIG          the cgroup and its limits (if "cgroups")
#   [ns-pty --] ns-cgroup join NAME -- unshare FLAGS --fork --kill-child \
#       ns-init --config CONFIG --sync-fd 7 --ready-fd 8 -- CMD     in the background
#       (with util-linux before 2.40: unshare FLAGS -- sh -c '... & wait' with
#       setpriv --pdeathsig KILL -- ns-init ..., see below)
#   read {"v":1,"type":"ready"} on fd 8             ns-init runs in its namespaces
#   ns-veth add --pid PID --config CONFIG --context-fd 9    contexts into ns-init's sync FIFO
#   {"v":1,"type":"go"} on the sync FIFO           ns-init sets up and execs CMD
#   wait; ns-cgroup remove NAME                    (veths die with the network namespace)
#
# The namespaces, the unshare flags and tty come from the canonical config in ns-exec's plan
# (`ns-exec --plan`), read with jq, so this script never parses the config's many shapes.
# The cgroup is joined in chain form before unshare runs, so unshare, ns-init and everything
# the command forks start inside it; the cgroup namespace (NEWCGROUP) is unshared by ns-init
# after go, never by unshare, so its root is that cgroup.
#
# Exit status: CMD's own; 128+N if signal N killed it; 125 if a stage failed (nothing of CMD ran),
# or for a usage error; 126/127 if CMD could not be executed / was not found. Signals HUP, INT,
# QUIT, TERM, USR1 and USR2 are forwarded to the container once it runs; before that they abort
# the start. Every path (success, error, signal) removes the cgroup, the pid file and the FIFOs.
# A SIGKILLed script cannot clean up; the container still goes with it (the chain has a
# parent-death signal, as ns-exec's child has), and the empty cgroup and the pid file stay.
#
# Programs are taken from $NS_BIN_DIR when it is set, else from this checkout's target/release,
# else from PATH; util-linux unshare and jq are needed as well.
set -eu

prog=compose.sh

usage() {
	cat <<'EOF'
Usage: compose.sh [--name NAME] [--pid-file FILE] CONFIG -- CMD [ARG...]

Build the container ns-exec builds for CONFIG from the stage programs (ns-cgroup, unshare,
ns-init, ns-veth, ns-pty), run CMD in it, wait, and clean up.

Options:
  --name NAME       the container's name, and the cgroup's when the config names none
                    (default: the config's cgroups.name, else its hostname, else compose-PID)
  --pid-file FILE   write the container's first process's pid (on the host) to FILE while
                    it runs
  -h, --help        print this help

Environment: NS_BIN_DIR, the directory of the ns-tools programs (default: this
checkout's target/release, else PATH).

Exit status: CMD's own; 128+N if signal N killed it; 125 if a stage failed;
126 if CMD could not be executed; 127 if CMD was not found.
EOF
}

. "$(dirname "$0")/lib/stages.sh"

# child_of PID: the one child of PID (its first, if it has more).
child_of() {
	_c=
	if [ -r "/proc/$1/task/$1/children" ]; then
		read -r _c _ <"/proc/$1/task/$1/children" || :
	fi
	[ -n "$_c" ] || return 1
	printf '%s\n' "$_c"
}

# unshare_reports_sigkill: whether this unshare (util-linux 2.40 or later) exits by SIGKILL
# when its child was killed by SIGKILL.
unshare_reports_sigkill() {
	_v=$(unshare --version 2>/dev/null) || return 1
	_v=${_v##* }
	_major=${_v%%.*}
	_minor=${_v#*.}
	_minor=${_minor%%[!0-9]*}
	case $_major$_minor in '' | *[!0-9]*) return 1 ;; esac
	[ -n "$_minor" ] || return 1
	[ "$_major" -gt 2 ] || { [ "$_major" -eq 2 ] && [ "$_minor" -ge 40 ]; }
}

name=
pid_file=
while [ "$#" -gt 0 ]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--name)
		[ "$#" -ge 2 ] || usage_error "--name needs a value"
		name=$2
		shift 2
		;;
	--name=*)
		name=${1#--name=}
		shift
		;;
	--pid-file)
		[ "$#" -ge 2 ] || usage_error "--pid-file needs a value"
		pid_file=$2
		shift 2
		;;
	--pid-file=*)
		pid_file=${1#--pid-file=}
		shift
		;;
	--)
		usage_error "CONFIG is required before --"
		;;
	-*)
		usage_error "unknown option $1"
		;;
	*)
		break
		;;
	esac
done
[ "$#" -ge 1 ] || usage_error "CONFIG is required"
config=$1
shift
[ "$#" -ge 1 ] && [ "$1" = -- ] || usage_error "expected -- after CONFIG"
shift
[ "$#" -ge 1 ] || usage_error "CMD is required after --"
case $name in
*/* | . | ..) usage_error "--name $name: not a valid name" ;;
esac

need_cmd jq "it reads ns-exec's plan"
need_cmd unshare "util-linux makes the namespaces"
need_cmd setpriv "util-linux hands ns-init a parent-death signal"
need_cmd mkfifo "the sync and ready FIFOs"
ns_exec=$(find_prog ns-exec)
ns_init=$(find_prog ns-init)
ns_cgroup=$(find_prog ns-cgroup)
ns_veth=$(find_prog ns-veth)

[ -f "$config" ] || die "config $config: no such file"
case $config in
/*) ;;
*) config=$(pwd)/$config ;;
esac
case $pid_file in
'' | /*) ;;
*) pid_file=$(pwd)/$pid_file ;;
esac

# The canonical config, as ns-exec reads it: its errors (a bad config, a missing bridge) are
# ns-exec's own lines on stderr, and 125.
plan=$("$ns_exec" --plan --config "$config" -- "$@") || exit 125
# One jq for every fact the script needs (jq takes tens of milliseconds to start): the unshare
# flags, tty, whether there is a cgroup, how many networks, the cgroup's and the host's names.
facts=$(printf '%s\n' "$plan" | jq -re '
	(.actions[] | select(.step == "config") | .config) as $c
	| (.actions[] | select(.step == "clone") | .unshare | join(" ")) as $u
	| $u, ($c.tty | tostring), ($c.cgroups != null | tostring), ($c.networks | length),
	  ($c.cgroups.name // ""), ($c.hostname // "")') ||
	die "ns-exec's plan has no config or clone step"
{
	read -r unshare_flags
	read -r tty
	read -r has_cgroups
	read -r networks
	read -r cgroup_name
	read -r hostname
} <<FACTS
$facts
FACTS
if [ -z "$name" ]; then
	name=${cgroup_name:-$hostname}
	case $name in
	'' | */* | . | .. | *[!A-Za-z0-9_.-]*) name=compose-$$ ;;
	esac
fi
cgroup=${cgroup_name:-$name}

# State of the run, for cleanup: every path ends in cleanup (the EXIT trap).
tmp=
job=
stage_pid=
unshare_pid=
init_pid=
cgroup_made=
pid_file_written=
phase=setup
caught=

cleanup() {
	rc=$?
	trap - EXIT HUP INT QUIT TERM USR1 USR2
	set +e
	# Closing our end of the sync FIFO before go makes ns-init read EOF and abort (125).
	exec 9>&- 6<&-
	if [ -n "$stage_pid" ]; then
		kill -KILL "$stage_pid" 2>/dev/null
		wait "$stage_pid" 2>/dev/null
	fi
	if [ -n "$job" ] && kill -0 "$job" 2>/dev/null; then
		# An error or a signal ended the script while the container still ran: end it. The job
		# is our unreaped child; unshare (--kill-child) takes ns-init, and so the container's
		# pid namespace, with it.
		# With a terminal the job is ns-pty: first its child (unreaped while ns-pty lives, so
		# the pid is still that process).
		if [ -n "$unshare_pid" ] && [ "$unshare_pid" != "$job" ]; then
			kill -KILL "$unshare_pid" 2>/dev/null
		fi
		kill -KILL "$job" 2>/dev/null
		wait "$job" 2>/dev/null
	fi
	if [ -n "$cgroup_made" ]; then
		# Anything still in the cgroup is the container's (the pid namespace may be gone before
		# all its processes are reaped); remove waits for them.
		"$ns_cgroup" kill "$cgroup" --config "$config" 2>/dev/null
		# A failed removal is the run's failure only when nothing else failed.
		if ! "$ns_cgroup" remove "$cgroup" --config "$config" >/dev/null && [ "$rc" -eq 0 ]; then
			rc=125
		fi
	fi
	if [ -n "$pid_file_written" ]; then
		rm -f "$pid_file"
	fi
	if [ -n "$tmp" ]; then
		rm -rf "$tmp"
	fi
	exit "$rc"
}

# run_stage CMD...: a host-side stage against the waiting container, run in the background
# and waited for, because a shell runs its traps only once its foreground command has ended:
# a signal must abort the start even while a stage hangs (cleanup then kills the stage).
run_stage() {
	"$@" &
	stage_pid=$!
	_rc=0
	wait "$stage_pid" || _rc=$?
	stage_pid=
	return "$_rc"
}

# on_signal NAME NUMBER: forward to the container once it runs; abort the start before that.
on_signal() {
	if [ "$phase" = running ] && [ -n "$init_pid" ]; then
		caught=$1
		kill -s "$1" "$init_pid" 2>/dev/null || :
	else
		exit $((128 + $2))
	fi
}

trap cleanup EXIT
trap 'on_signal HUP 1' HUP
trap 'on_signal INT 2' INT
trap 'on_signal QUIT 3' QUIT
trap 'on_signal TERM 15' TERM
trap 'on_signal USR1 10' USR1
trap 'on_signal USR2 12' USR2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compose.XXXXXX")
sync=$tmp/sync
ready=$tmp/ready
mkfifo -m 600 "$sync" "$ready"

if [ "$has_cgroups" = true ]; then
	"$ns_cgroup" create "$cgroup" --config "$config" >/dev/null || exit 125
	cgroup_made=1
fi

# Our end of the sync FIFO, opened read-write so that neither side's open blocks; ns-init's
# read end sees EOF once this fd (and nothing else: the job closes its copy) is closed.
exec 9<>"$sync"

# The chain. unshare makes the namespaces; a new pid namespace applies to children only, so
# ns-init is forked by `unshare --fork --kill-child`. util-linux before 2.40 turns a child
# killed by SIGKILL into `unshare: sigprocmask unblock failed` and status 1
# (util-linux/util-linux#2614), which would hide a 137: there a shell forks ns-init instead,
# with setpriv's --pdeathsig for --kill-child, and passes its status on (128+N for signal N;
# wait's stderr goes to /dev/null only to drop the shell's "Killed" job notice).
set -- "$ns_init" --config "$config" --sync-fd 7 --ready-fd 8 -- "$@"
if unshare_reports_sigkill; then
	# shellcheck disable=SC2086 # one word per flag
	set -- unshare $unshare_flags --fork --kill-child "$@"
else
	# shellcheck disable=SC2016,SC2086 # expanded by the inner shell; one word per flag
	set -- unshare $unshare_flags -- sh -c \
		'exec 4<&0; "$@" <&4 4<&- & exec 4<&-; wait "$!" 2>/dev/null' \
		sh setpriv --pdeathsig KILL -- "$@"
fi
if [ "$has_cgroups" = true ]; then
	# Joined in chain form: unshare, and so ns-init and all it forks, start in the cgroup.
	set -- "$ns_cgroup" join "$cgroup" --config "$config" -- "$@"
fi
# The job gets SIGKILL if this script dies without its traps (SIGKILL), as ns-exec's child
# does: the container then goes down with it, and only the empty cgroup stays behind.
# A job started with & gets /dev/null as stdin unless told otherwise: hand it the caller's
# stdin through fd 5. ns-pty marks inherited fds close-on-exec (only the console goes on), so
# with a terminal the FIFOs are opened again by a shell after ns-pty; ns-pty's own copy of the
# ready FIFO still ends in EOF for us if ns-pty fails before that shell runs.
exec 5<&0
if [ "$tty" = true ]; then
	ns_pty=$(find_prog ns-pty)
	# shellcheck disable=SC2016 # expanded by the inner shell
	setpriv --pdeathsig KILL -- "$ns_pty" -- sh -c 'r=$1; shift; exec "$@" 7<"$0" 8>"$r"' \
		"$sync" "$ready" "$@" 8>"$ready" <&5 5<&- 9>&- &
else
	setpriv --pdeathsig KILL -- "$@" 7<"$sync" 8>"$ready" <&5 5<&- 9>&- &
fi
job=$!
exec 5<&-

# ns-init's ready line: it runs in its namespaces and has read its config. EOF instead means
# a stage failed before (its message is on stderr).
exec 6<"$ready"
line=
if ! IFS= read -r line <&6 ||
	case $line in *'"type":"ready"'*) false ;; *) true ;; esac then
	exec 9>&- 6<&-
	wait "$job" 2>/dev/null || :
	job=
	exit 125
fi
exec 6<&-

# The first process of the container is the child of unshare (or of its shell): that is the
# job itself, or the child of ns-pty.
if [ "$tty" = true ]; then
	unshare_pid=$(child_of "$job") || die "cannot find unshare below ns-pty ($job)"
else
	unshare_pid=$job
fi
init_pid=$(child_of "$unshare_pid") || die "cannot find ns-init below unshare ($unshare_pid)"

if [ -n "$pid_file" ]; then
	printf '%s\n' "$init_pid" >"$pid_file.tmp.$$"
	mv -f "$pid_file.tmp.$$" "$pid_file"
	pid_file_written=1
fi

# The host side of every network, into ns-init's sync FIFO, then go. ns-veth undoes what it
# made when it fails; the pair it made lives in the container's netns and dies with it.
if [ "$networks" -gt 0 ]; then
	run_stage "$ns_veth" add --pid "$init_pid" --config "$config" --context-fd 9 || exit 125
fi
echo '{"v":1,"type":"go"}' >&9
phase=running
exec 9>&-

# Wait for the container. A trapped signal interrupts wait (and is forwarded by on_signal), so
# wait again until the job itself has ended.
while :; do
	caught=
	status=0
	wait "$job" || status=$?
	if [ -z "$caught" ] || ! kill -0 "$job" 2>/dev/null; then
		break
	fi
done
job=
exit "$status"
