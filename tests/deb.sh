#!/bin/sh
# tests/deb.sh: the Debian package, end to end, as root: build it (scripts/package-deb), check
# it with lintian (no errors), install it with dpkg, run a busybox container with the installed
# programs only (PATH of the system, the installed example config and rootfs script), check the
# man page is found, purge it, and check that every file it installed is gone and nothing else
# under /usr or /etc changed. Refuses to run where ns-tools is already installed.
set -eu

cd "$(dirname "$0")/.."
die() {
	echo "deb.sh: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root"
if dpkg-query -W -f='${Status}' ns-tools 2>/dev/null | grep -q installed; then
	die "ns-tools is already installed on this machine; not touching it"
fi

deb=$(sh scripts/package-deb | tail -n 1)
lintian --fail-on error "$deb" 2>/dev/null || die "lintian reports errors: lintian $deb"

work=$(mktemp -d /tmp/ns-deb.XXXXXX)
installed=
cleanup() {
	if [ -n "$installed" ]; then dpkg --purge ns-tools >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

snapshot() { find /usr /etc -xdev \( -path /etc/ld.so.cache \) -prune -o -print | sort; }
snapshot >"$work/before"
dpkg -i "$deb" >/dev/null
installed=1
dpkg -L ns-tools >"$work/files"

(
	cd "$work"
	PATH=/usr/sbin:/usr/bin:/sbin:/bin
	export PATH
	sh /usr/share/doc/ns-tools/scripts/mkrootfs.sh rootfs
	cp /usr/share/doc/ns-tools/examples/container.json .
	out=$(env -i PATH="$PATH" ns-exec --root "$work/state" -- sh -c 'echo "hello from $(hostname)"')
	[ "$out" = "hello from koye" ] || die "the installed ns-exec printed: $out"
	man -w ns-exec >/dev/null || die "man ns-exec is not found"
	ns-exec --version | grep -q '^ns-exec ' || die "ns-exec --version"
)

dpkg --purge ns-tools >/dev/null
installed=
while read -r path; do
	[ -d "$path" ] && continue # shared directories like /usr/bin stay
	[ -e "$path" ] && die "$path is left after purge"
done <"$work/files"
snapshot >"$work/after"
# man-db's cache may be refreshed by the trigger; anything else is a leftover.
diff "$work/before" "$work/after" | grep -v '/var/cache/man' | grep '^[<>]' &&
	die "/usr or /etc differ after install and purge"
echo "deb: $(basename "$deb") built, lintian clean, installed, ran a container, purged, nothing left"
