#!/bin/sh
# scripts/install.sh: build the release binaries and install ns-tools, make-style.
#
#   PREFIX=/usr/local (default)  DESTDIR=/staging/root (default: none)  NO_BUILD=1 (skip cargo)
#
# The layout (README "Install"): user-facing programs in $PREFIX/bin; ns-dmz and ns-init,
# which ns-exec and scripts run rather than people, in $PREFIX/libexec/ns-tools (ns-exec finds
# them there relative to itself);
# man pages rendered from docs/man/*.md with go-md2man into $PREFIX/share/man/man1, man5
# and man7 (the section is the page's file name suffix: ns-handoff.7.md goes to man7);
# docs, the example config and the scripts in $PREFIX/share/doc/ns-tools. Prints each file it
# installs.
set -eu

cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}
root=${DESTDIR:-}
target=${CARGO_TARGET_DIR:-target}

command -v go-md2man >/dev/null 2>&1 ||
	{ echo "install.sh: go-md2man is missing (apt-get install go-md2man)" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then
	cargo build --release --locked --bins -p ns-exec -p ns-init -p ns-dmz -p ns-cgroup -p ns-veth \
		-p ns-pty
fi

put() { # put MODE SOURCE DEST
	install -D -m "$1" "$2" "$root$3"
	echo "$3"
}
for tool in ns-exec ns-cgroup ns-veth ns-pty; do
	put 0755 "$target/release/$tool" "$prefix/bin/$tool"
done
put 0755 "$target/release/ns-init" "$prefix/libexec/ns-tools/ns-init"
put 0755 "$target/release/ns-dmz" "$prefix/libexec/ns-tools/ns-dmz"

man=$(mktemp -d)
trap 'rm -rf "$man"' EXIT
for page in docs/man/*.md; do
	name=$(basename "$page" .md)
	section=${name##*.}
	go-md2man -in "$page" -out "$man/$name"
	gzip -9n "$man/$name"
	put 0644 "$man/$name.gz" "$prefix/share/man/man$section/$name.gz"
done

doc=$prefix/share/doc/ns-tools
for file in README.md docs/architecture.md docs/handoff.md; do
	put 0644 "$file" "$doc/$(basename "$file")"
done
put 0644 docs/examples/container.json "$doc/examples/container.json"
put 0755 scripts/mkrootfs.sh "$doc/scripts/mkrootfs.sh"
