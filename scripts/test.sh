#!/bin/sh
# test.sh [CARGO-TEST-ARGS...]: build the workspace, then run every test tier with `cargo test`.
#
# The integration tests in tests/ (crate ns-tests) run the built ns-tools binaries, which
# `cargo test` does not build for another package: hence the `cargo build --workspace` first, and
# NS_BIN_DIR pointing the harness at them. The root tier (tests/tests/privileged.rs) needs root
# and fails, not skips, without it; see tests/README.md. Extra arguments go to `cargo test`,
# e.g. `scripts/test.sh -p ns-tests --test privileged -- enter`.
set -eu

cd "$(dirname "$0")/.."

cargo build --workspace

target=${CARGO_TARGET_DIR:-target}
case $target in
/*) ;;
*) target=$(pwd)/$target ;;
esac
NS_BIN_DIR=$target/debug
export NS_BIN_DIR

cargo test --workspace --no-fail-fast "$@"

# The soak: broken and killed runs, then gc, and the host must be as before. Its self-test leaks
# a mount on purpose and must fail, proving the comparison can fail.
bash tests/soak.sh 100
if SOAK_SELFTEST=1 bash tests/soak.sh 5 >/dev/null 2>&1; then
	echo "test.sh: tests/soak.sh did not notice a leaked mount" >&2
	exit 1
fi
echo "soak self-test: a leaked mount was noticed"
