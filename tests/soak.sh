#!/usr/bin/env bash
# tests/soak.sh [RUNS] [SEED]: start RUNS containers (default 100), breaking many of them on
# purpose, and prove the host ends as it began.
#
# Each run picks one of: a good run; a failure injected at a named step (NS_FAULT ...:fail); a
# stage killing itself at a named step (NS_FAULT ...:kill); ns-exec SIGKILLed after a random
# delay; ns-exec SIGKILLed while ns-init is paused at a step. Every run must end with a status
# its case allows (0, 125, 137), within a bounded time. Then `ns-exec gc` removes what the
# killed runs left, and snapshots taken before and after are compared: the caller's mount table,
# the state directory, pid files, processes whose root is in the test rootfs, and this shell's
# open fds. Any difference fails, and the diff is printed. Needs root; leaves nothing behind.
#
# NS_BIN_DIR selects the binaries (default: target/debug). SEED makes a run repeatable.
# SOAK_SELFTEST=1 leaks a tmpfs mount on purpose after the runs: the soak must then fail, which
# proves the check can fail (scripts/test.sh runs it both ways).
set -eu

runs=${1:-100}
seed=${2:-$$}
cd "$(dirname "$0")/.."
bin=${NS_BIN_DIR:-$PWD/target/debug}
RANDOM=$seed

# fd 3 is the real stderr: during the runs, bash's own "Killed" notices for the ns-exec
# processes this script kills on purpose go to /dev/null instead.
exec 3>&2
die() {
	echo "soak: $*" >&3
	exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root"
[ -x "$bin/ns-exec" ] || die "no $bin/ns-exec: build first (cargo build)"

work=$(mktemp -d /tmp/ns-soak.XXXXXX)
cleanup() {
	# Only what this script made: the self-test's mount, then the work dir, after its
	# containers are gone.
	if [ -n "${SOAK_SELFTEST:-}" ]; then umount "$work/leak" 2>/dev/null || true; fi
	"$bin/ns-exec" gc --root "$work/state" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

scripts/mkrootfs.sh "$work/rootfs" >/dev/null
mkdir -m 0700 "$work/state"
cat >"$work/container.json" <<'EOF'
{"rootfs": "rootfs", "hostname": "soak",
 "environment": ["PATH=/bin", "HOME=/"],
 "readonly_fs": true}
EOF

snapshot() {
	echo "## mounts"
	awk '{print $5, $9}' /proc/self/mountinfo | sort
	echo "## state"
	ls -a "$work/state" 2>/dev/null | sort
	echo "## pid files"
	ls "$work"/*.pid 2>/dev/null | sort
	echo "## processes rooted in the test rootfs"
	for root in /proc/[0-9]*/root; do
		case $(readlink "$root" 2>/dev/null) in
		"$work"/rootfs*) echo "${root%/root}" ;;
		esac
	done | sort
	echo "## fds of this shell"
	ls /proc/$$/fd | sort -n
}

steps_exec="before-go"
steps_init="after-go after-rootfs before-exec"
pick() { # pick WORD...: one of the words at random
	local words=("$@")
	echo "${words[RANDOM % ${#words[@]}]}"
}

before=$(snapshot)
counts=()
exec 2>/dev/null
for i in $(seq "$runs"); do
	name=soak-$i
	pidfile=$work/$name.pid
	case=$((RANDOM % 6))
	fault=
	case $case in
	0 | 1) ;; # good run
	2) fault=$(pick "ns-exec:$(pick $steps_exec)" "ns-init:$(pick $steps_init)"):fail ;;
	3) fault=$(pick "ns-exec:$(pick $steps_exec)" "ns-init:$(pick $steps_init)"):kill ;;
	4) ;; # SIGKILL ns-exec after a random delay
	5) fault=ns-init:$(pick $steps_init):pause ;;
	esac
	NS_FAULT=$fault "$bin/ns-exec" --config "$work/container.json" --root "$work/state" \
		--name "$name" --pid-file "$pidfile" -- sh -c 'echo ok; sleep 0.02' \
		>"$work/out" 2>"$work/err" &
	pid=$!
	case $case in
	4) sleep "0.0$((RANDOM % 10))" && { kill -9 "$pid" 2>/dev/null || true; } ;;
	5)
		# Wait (bounded) for the pid file, then kill ns-exec while ns-init is paused.
		for _ in $(seq 200); do [ -s "$pidfile" ] && break; sleep 0.01; done
		kill -9 "$pid" 2>/dev/null || true
		;;
	esac
	# Bounded wait: a run that hangs fails the soak.
	for _ in $(seq 2000); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid"
		die "run $i (case $case, NS_FAULT=$fault) hung"
	fi
	status=0
	# (bash reports killed jobs on stderr when it reaps them: that is expected here)
	wait "$pid" 2>/dev/null || status=$?
	case "$case:$status" in
	[01]:0 | 2:125 | 3:125 | 3:137 | 4:0 | 4:137 | 5:137) ;;
	*)
		cat "$work/err" >&3
		die "run $i (case $case, NS_FAULT=$fault): unexpected status $status"
		;;
	esac
	counts[case]=$((${counts[case]:-0} + 1))
done

exec 2>&3
# Containers die with a killed ns-exec (parent-death signal); give the kernel a moment to reap
# them, bounded, before judging.
for _ in $(seq 500); do
	left=$(snapshot | sed -n '/^## processes/,/^## fds/p' | grep -c '^/proc' || true)
	[ "$left" -eq 0 ] && break
	sleep 0.01
done
"$bin/ns-exec" gc --root "$work/state" >"$work/gc.out"
if [ -n "${SOAK_SELFTEST:-}" ]; then
	mkdir "$work/leak" && mount -t tmpfs soak-selftest "$work/leak"
fi
after=$(snapshot)
if [ "$before" != "$after" ]; then
	diff <(echo "$before") <(echo "$after") >&2 || true
	die "the host differs after $runs runs (seed $seed)"
fi
echo "soak: $runs runs (good ${counts[0]:-0}+${counts[1]:-0}, fail ${counts[2]:-0}, self-kill ${counts[3]:-0}, killed ${counts[4]:-0}, killed paused ${counts[5]:-0}), gc removed $(wc -l <"$work/gc.out"), no difference (seed $seed)"
