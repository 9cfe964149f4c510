#!/bin/sh
# mkrootfs.sh DIR: build a minimal busybox root filesystem in DIR, for tests and examples.
#
# DIR gets the static /bin/busybox of Debian's busybox-static package, one symlink per applet in
# DIR/bin (`busybox --list`), the directories a container needs as mount points (proc sys dev
# tmp) and a root and a user home, and /etc/passwd and /etc/group with root, user (1000, in
# groups wheel and users) and nobody. DIR must not exist or be empty. Nothing else on the host is
# touched; removing DIR undoes everything.
#
# BUSYBOX=/path/to/static/busybox overrides the binary (it must be statically linked: the
# rootfs has no libc).
set -eu

die() {
	echo "mkrootfs.sh: $*" >&2
	exit 1
}

[ "$#" -eq 1 ] || die "usage: mkrootfs.sh DIR"
dir=$1
[ -n "$dir" ] || die "usage: mkrootfs.sh DIR"

busybox=${BUSYBOX:-/bin/busybox}
if [ -z "${BUSYBOX:-}" ] && command -v dpkg-query >/dev/null 2>&1; then
	# Debian's `busybox` package also installs /bin/busybox, but linked against the host's
	# libc, which the rootfs does not have: insist on the static build.
	status=$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null || true)
	case $status in
	*" installed") ;;
	*) die "the busybox-static package is not installed (run: apt-get install busybox-static)" ;;
	esac
fi
[ -x "$busybox" ] || die "$busybox not found (run: apt-get install busybox-static)"

if [ -e "$dir" ]; then
	[ -d "$dir" ] || die "$dir exists and is not a directory"
	[ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
fi

umask 022
mkdir -p "$dir/bin" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/etc" "$dir/tmp" "$dir/root" \
	"$dir/home/user"
chmod 1777 "$dir/tmp"
chmod 700 "$dir/root"
chown 1000:1000 "$dir/home/user" 2>/dev/null || true

cp "$busybox" "$dir/bin/busybox"
chmod 755 "$dir/bin/busybox"
# One fork of busybox for the list, then plain `ln` per applet.
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done

cat >"$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
PASSWD

cat >"$dir/etc/group" <<'GROUP'
root:x:0:
wheel:x:10:user
users:x:100:user
user:x:1000:
nogroup:x:65534:
GROUP
