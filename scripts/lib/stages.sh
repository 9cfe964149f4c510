# scripts/lib/stages.sh: what the scripts in scripts/ share; sourced, never run.
#
# The including script sets `prog` (its name, for messages) and defines `usage`. Errors are one
# line `PROG: message` on stderr and status 125, as from every ns-tools stage.

# die MESSAGE...: the error line, and 125.
die() {
	echo "$prog: $*" >&2
	exit 125
}

# usage_error MESSAGE...: the error line, the usage, and 125.
usage_error() {
	echo "$prog: $*" >&2
	usage >&2
	exit 125
}

# find_prog NAME: the path of an ns-tools program: from $NS_BIN_DIR when it is set, else from
# this checkout's release build (the README's build command makes target/release), else from
# PATH (an installation).
find_prog() {
	if [ -n "${NS_BIN_DIR:-}" ]; then
		[ -x "$NS_BIN_DIR/$1" ] || die "$NS_BIN_DIR/$1: not found (NS_BIN_DIR is set)"
		printf '%s\n' "$NS_BIN_DIR/$1"
	elif [ -x "$stages_checkout/target/release/$1" ]; then
		printf '%s\n' "$stages_checkout/target/release/$1"
	else
		command -v "$1" ||
			die "$1: not found in $stages_checkout/target/release or on PATH (build with cargo build --release, or set NS_BIN_DIR)"
	fi
}

# need_cmd NAME WHY: fails unless the command NAME exists.
need_cmd() {
	command -v "$1" >/dev/null 2>&1 || die "$1: not found on PATH ($2)"
}

# The checkout the including script lives in (scripts/..).
stages_checkout=$(cd "$(dirname "$0")/.." && pwd)
