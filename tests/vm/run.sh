#!/bin/sh
# run.sh [MODE]: build the cgroup tests and run them in a cgroup v2 only VM (run-in-vm --cgroup
# v2; MODE v1 or hybrid boots those layouts instead), as root on the host. The host runs the same tests on its own layout through scripts/test.sh;
# this covers v2, which most distributions run today.
#
# RUN_IN_VM overrides the path of run-in-vm (default: ../shared/vm/run-in-vm beside the
# repository). CARGO_TARGET_DIR is honoured. Exit status: the tests' (run-in-vm's on failure).
set -eu

mode=${1:-v2}
cd "$(dirname "$0")/../.."

run_in_vm=${RUN_IN_VM:-../shared/vm/run-in-vm}
[ -x "$run_in_vm" ] || {
	echo "tests/vm/run.sh: $run_in_vm not found (set RUN_IN_VM)" >&2
	exit 1
}

cargo build --workspace
target=${CARGO_TARGET_DIR:-target}
case $target in
/*) ;;
*) target=$(pwd)/$target ;;
esac
# The test executable's path, from cargo's JSON messages.
tests=$(cargo test -p ns-tests --test cgroup --no-run --message-format=json |
	sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$tests" ] || {
	echo "tests/vm/run.sh: could not find the cgroup test executable" >&2
	exit 1
}

ws=$(pwd)
exec "$run_in_vm" --cgroup "$mode" --mem 1G --timeout 900 \
	--file "$target/debug/ns-exec:/usr/local/bin/" \
	--file "$target/debug/ns-init:/usr/local/bin/" \
	--file "$target/debug/ns-dmz:/usr/local/bin/" \
	--file "$target/debug/ns-cgroup:/usr/local/bin/" \
	--file "$tests:/usr/local/bin/cgroup-tests" \
	--file "$ws/scripts/mkrootfs.sh:$ws/scripts/mkrootfs.sh" \
	--file "$ws/tests/vm/cgroup-v2.sh:/cgroup-v2.sh" \
	-- sh /cgroup-v2.sh "$mode"
