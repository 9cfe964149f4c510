#!/bin/sh
# cgroup-v2.sh [MODE]: runs inside a `run-in-vm --cgroup MODE` guest (see run.sh, which copies
# everything in): the same root-tier cgroup tests the host runs on its own layout
# (tests/tests/cgroup.rs), here on a cgroup v2 only system (MODE v2, the default; v1 and hybrid
# are accepted for checking the legacy layouts). The guest is busybox; the ns-tools binaries are in
# /usr/local/bin, the test executable at /usr/local/bin/cgroup-tests, and scripts/mkrootfs.sh at
# the workspace path the test executable was built with. Exit status: the tests'.
set -eu

mode=${1:-v2}
if [ "$mode" = v2 ]; then
	grep -q " /sys/fs/cgroup cgroup2 " /proc/mounts || {
		echo "cgroup-v2.sh: /sys/fs/cgroup is not cgroup2: boot with run-in-vm --cgroup v2" >&2
		exit 1
	}
	echo "cgroup-v2.sh: $(uname -r), controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
else
	echo "cgroup-v2.sh: $(uname -r), layout $mode: $(grep -c ' cgroup ' /proc/mounts) v1 hierarchies"
fi

export NS_BIN_DIR=/usr/local/bin
export RUST_BACKTRACE=1
# Two threads: the guest is slow (software emulation), and the harness's timeouts are per wait.
/usr/local/bin/cgroup-tests --test-threads=2

# ns-exec doctor must name this layout and find a default container possible.
/usr/local/bin/ns-exec doctor --json >/tmp/doctor.json || {
	cat /tmp/doctor.json
	echo "cgroup-v2.sh: ns-exec doctor says a default container cannot run" >&2
	exit 1
}
grep -q "\"name\":\"cgroup layout\",\"ok\":true,\"required\":false,\"detail\":\"$mode" /tmp/doctor.json || {
	cat /tmp/doctor.json
	echo "cgroup-v2.sh: ns-exec doctor does not report the $mode layout" >&2
	exit 1
}
echo "cgroup-v2.sh: ns-exec doctor reports the $mode layout"
