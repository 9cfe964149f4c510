#!/bin/sh
# scripts/fuzz.sh [SECONDS]: fuzz every parser that reads untrusted bytes, SECONDS per target
# (default 600), with cargo-fuzz (libFuzzer) on the nightly toolchain.
#
# Targets (fuzz/fuzz_targets/): `config` (container.json: no panic; a config that validates
# round-trips through its canonical form), `sync_message` (the sync socket's decoder), and
# `user_lookup` (the container's /etc/passwd and /etc/group parsers and the user-spec
# resolver). Seeds come from fuzz/seeds/; the growing corpus and any crash land in fuzz/corpus
# and fuzz/artifacts (both ignored by git). Prints one line per target with the number of
# executions, and exits non-zero on the first crash (fix it and add a regression test).
set -eu

seconds=${1:-600}
cd "$(dirname "$0")/../fuzz"

rustup toolchain list | grep -q '^nightly' ||
	{ echo "fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

cargo +nightly fuzz build -O
for target in config sync_message user_lookup; do
	mkdir -p "corpus/$target"
	log=$(mktemp)
	if ! cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
		-max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		rm -f "$log"
		echo "fuzz.sh: $target crashed; the input is in fuzz/artifacts/$target" >&2
		exit 1
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rm -f "$log"
	echo "fuzz: $target: $runs executions in $seconds s, no crash"
done
