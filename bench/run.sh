#!/usr/bin/env bash
# bench/run.sh [-o FILE] [RUNS]: ns-tools against runc, crun and bubblewrap on this machine, side
# by side, and two floors (a bare fork+exec of /bin/true, and bench/floor.c, a minimal C launcher
# doing clone into the five namespaces + pivot_root + /proc). Writes bench/RESULTS.md (or FILE, or
# $NS_BENCH_OUT) and prints it. RUNS (default 200) is the number of timed runs per contender
# in S1, S2, S3 and S6.
#
# Scenarios (bench/README.md says what each measures and why):
#   S1 start-to-exit of /bin/true in new mnt+pid+uts+ipc+net namespaces, with pivot_root,
#      /proc and /dev, one hyperfine invocation for all runtimes and both floors; then the
#      ratios to the C launcher and to bubblewrap again, paired round by round (bench/pair.c);
#   S2 S1 plus a memory and a pids limit (each runtime makes, fills and removes a cgroup);
#   S3 S2 plus a veth into bridge br0, in a network namespace made here: ns-exec's "veth"
#      network, runc and crun inside bench/veth-run.sh (the `ip` commands a user scripts);
#   S4 throughput: 200 launches, 2 and 8 at a time;
#   S5 resident memory of the waiting runtime process while a container runs `sleep`, the size
#      of the programs, and the smallest memory limit under which /bin/true still starts;
#   S6 S3's container made by scripts/compose.sh (the stage programs composed by a script).
# NS_BENCH_ONLY="S1 S3" runs only those (for trying changes out).
#
# Everything runs in a private mount namespace where /sys/fs/cgroup/unified is unmounted (crun
# refuses this machine's hybrid layout, and all runtimes get the same view) and where each v1
# hierarchy shows this process's own cgroup as its root, so every runtime's cgroups land below
# the caller's cgroup (crun would otherwise use the hierarchy's root). Needs root; installs
# hyperfine, runc, crun, bubblewrap and jq from Debian when missing; leaves nothing behind.
# The static binaries are built into $CARGO_TARGET_DIR/static (default target/static); S1 builds
# bench/floor.c (with -static) and bench/pair.c with gcc into the run's temporary directory.
set -eu

usage() {
	echo "usage: bench/run.sh [-o FILE] [RUNS]" >&2
	exit 100
}
out=${NS_BENCH_OUT:-}
runs=200
while [ "$#" -gt 0 ]; do
	case $1 in
	-o) [ "$#" -ge 2 ] || usage; out=$2; shift 2 ;;
	-o*) out=${1#-o}; shift ;;
	-h | --help) usage ;;
	*[!0-9]* | '') usage ;;
	*) runs=$1; shift ;;
	esac
done
case $out in
'') out=$(cd "$(dirname "$0")" && pwd)/RESULTS.md ;;
/*) ;;
*) out=$PWD/$out ;;
esac
cd "$(dirname "$0")/.."
repo=$PWD
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-target}/static
case $target in /*) ;; *) target=$repo/$target ;; esac
bin=$target/$(uname -m)-unknown-linux-gnu/release

if [ -z "${NS_BENCH_INNER:-}" ]; then
	missing=
	for cmd in hyperfine:hyperfine runc:runc crun:crun bwrap:bubblewrap jq:jq; do
		command -v "${cmd%%:*}" >/dev/null 2>&1 || missing="$missing ${cmd#*:}"
	done
	if [ -n "$missing" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing </dev/null
	fi
	# Static release binaries (glibc's static libc): an exec of a dynamically linked program
	# costs its loader's work on every container start. All five stages: S6 runs them all.
	RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=$target \
		cargo build --release --locked -q --target "$(uname -m)-unknown-linux-gnu" \
		-p ns-exec -p ns-init -p ns-dmz -p ns-cgroup -p ns-veth -p ns-pty
	# Re-run inside a private mount namespace (see above).
	exec unshare --mount --propagation private env NS_BENCH_INNER=1 bash "$repo/bench/run.sh" -o "$out" "$runs"
fi
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
# Each v1 hierarchy's root here is our own cgroup in it (in this namespace only, the hierarchy's
# mount is replaced by a bind mount of our cgroup, not stacked, so each is mounted once): runc and
# ns-exec place cgroups relative to their own cgroup and read the mount's root from mountinfo,
# crun places them relative to the mount point; now all three land below ours.
while IFS=: read -r _ controllers path; do
	[ -n "$controllers" ] && [ "$path" != / ] || continue
	mnt=$(awk -v want="$controllers" '$3 == "cgroup" {
		n = split(want, w, ","); split($4, o, ","); ok = 1
		for (i = 1; i <= n; i++) { found = 0; for (j in o) if (o[j] == w[i]) found = 1; if (!found) ok = 0 }
		if (ok) { print $2; exit } }' /proc/self/mounts)
	if [ -n "$mnt" ] && [ -d "$mnt$path" ]; then
		own=$(mktemp -d /tmp/ns-bench-cgroup.XXXXXX)
		mount --bind "$mnt$path" "$own"
		umount "$mnt"
		mount --move "$own" "$mnt"
		rmdir "$own"
	fi
done </proc/self/cgroup

want() { case " ${NS_BENCH_ONLY:-S1 S2 S3 S4 S5 S6} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

work=$(mktemp -d /tmp/ns-bench.XXXXXX)
benchns=nsbench-$$   # holds br0; S3 and S6 run in it
netns=$benchns-c     # the runc/crun container's netns, made and deleted by bench/veth-run.sh
cleanup() {
	set +e
	for ns in "$netns" "$benchns"; do
		[ -e "/run/netns/$ns" ] && ip netns del "$ns"
	done
	mountpoint -q "$work/run" && umount "$work/run"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Every runtime's state directory (--root) on a tmpfs, as /run is on every distribution. This
# VM's /run lies on its ext4 root disk, where the few files a start creates and removes cost
# the runtimes more than a tenth of a millisecond each time (ext4's inode allocation).
mkdir "$work/run"
mount -t tmpfs -o mode=0700 ns-bench-run "$work/run"
scripts/mkrootfs.sh "$work/rootfs" >/dev/null
mkdir -p "$work/bundle" "$work/run/state" "$work/run/runc" "$work/run/crun"

# ns-tools: the five namespaces, pivot_root, /proc, /dev (and its masks, as Docker's defaults).
cat >"$work/container.json" <<'EOF'
{"rootfs": "rootfs", "hostname": "bench",
 "namespaces": ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"],
 "environment": ["PATH=/bin"]}
EOF
# runc and crun: `runc spec` (the same five namespaces, /proc, /dev, masks), running /bin/true.
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["/bin/true"]
# runc refuses a symlinked root: point it at the shared rootfs by absolute path.
spec["root"] = {"path": path.rsplit("/bundle/", 1)[0] + "/rootfs", "readonly": False}
spec["hostname"] = "bench"
json.dump(spec, open(path, "w"), indent=1)
EOF

# S2's configs: the same, plus a 64 MiB memory limit and a pids limit of 64. S3's: S2's plus a
# veth into br0 (ns-exec's "veth" network; for runc and crun the network namespace that
# bench/veth-run.sh makes). S5's: runc and crun running `sleep 2`.
python3 - "$work" "$netns" <<'EOF2'
import json, os, sys
work, netns = sys.argv[1], sys.argv[2]
def bundle(name, spec):
    os.makedirs(f"{work}/{name}", exist_ok=True)
    json.dump(spec, open(f"{work}/{name}/config.json", "w"), indent=1)
c = json.load(open(f"{work}/container.json"))
c["cgroups"] = {"memory": "64m", "pids_max": 64}
json.dump(c, open(f"{work}/limited.json", "w"))
c["networks"] = [{"type": "veth", "context": {"bridge": "br0", "prefix": "bn"},
                  "address": "198.18.3.2/24", "gateway": "198.18.3.1"}]
json.dump(c, open(f"{work}/net.json", "w"))
spec = json.load(open(f"{work}/bundle/config.json"))
spec.setdefault("linux", {})["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}
bundle("bundle-limited", spec)
spec["linux"]["namespaces"] = [
    dict(ns, path=f"/run/netns/{netns}") if ns["type"] == "network" else ns
    for ns in spec["linux"]["namespaces"]]
bundle("bundle-net", spec)
spec = json.load(open(f"{work}/bundle/config.json"))
spec["process"]["args"] = ["/bin/sleep", "2"]
bundle("bundle-sleep", spec)
EOF2

# The network namespace of S3 and S6: bridge br0 with 198.18.3.1/24. Nothing of it is in the
# machine's own network namespace; hyperfine runs inside it through nsenter (not `ip netns
# exec`, which remounts /sys and so would hide the cgroup mounts).
ip netns add "$benchns"
ip -n "$benchns" link set lo up
ip -n "$benchns" link add br0 type bridge
ip -n "$benchns" addr add 198.18.3.1/24 dev br0
ip -n "$benchns" link set br0 up
innet() { nsenter --net="/run/netns/$benchns" "$@"; }

ns_exec="$bin/ns-exec --config $work/container.json --root $work/run/state --name b --"
runc_run="runc --root $work/run/runc run --bundle $work/bundle b"
crun_run="crun --root $work/run/crun run --bundle $work/bundle b"
bwrap_run="bwrap --unshare-all --die-with-parent --bind $work/rootfs / --proc /proc --dev /dev --hostname bench"
veth_run="$repo/bench/veth-run.sh $netns 198.18.3.2/24 198.18.3.1"

hf() { # hf NAME COMMAND... : one hyperfine invocation, JSON to $work/NAME.json
	local name=$1
	shift
	hyperfine -N --warmup 10 --runs "$runs" --style none --export-json "$work/$name.json" "$@" >/dev/null
}

if want S1; then
	echo "S1: start-to-exit of /bin/true ($runs runs each)" >&2
	# The C launcher floor: clone into the five namespaces, bind the rootfs, /proc, pivot_root,
	# execv (bench/floor.c). Static, as the ns-tools binaries are.
	gcc -O2 -static -o "$work/floor" bench/floor.c
	hf s1 -n ns-exec "$ns_exec /bin/true" -n runc "$runc_run" -n crun "$crun_run" \
		-n bwrap "$bwrap_run /bin/true" -n "C launcher (floor)" "$work/floor $work/rootfs /bin/true" \
		-n "fork+exec (floor)" "/bin/true"
	# The same ratios paired: hyperfine times each command in a block of its own, and this
	# VM's speed drifts between blocks by more than the ratios' margins. bench/pair.c runs
	# ns-exec, bubblewrap and the floor once per round, in rotating order.
	echo "S1 paired: ns-exec, bwrap and the C launcher round-robin ($runs rounds)" >&2
	gcc -O2 -o "$work/pair" bench/pair.c
	printf 'ns-exec\t%s\nbwrap\t%s\nC launcher (floor)\t%s\n' "$ns_exec /bin/true" \
		"$bwrap_run /bin/true" "$work/floor $work/rootfs /bin/true" >"$work/pair.txt"
	"$work/pair" "$runs" "$work/pair.txt" >"$work/s1-pair.json"
fi

if want S2; then
	echo "S2: S1 with a memory and a pids limit ($runs runs each)" >&2
	hf s2 -n ns-exec "$bin/ns-exec --config $work/limited.json --root $work/run/state --name b -- /bin/true" \
		-n runc "runc --root $work/run/runc run --bundle $work/bundle-limited b" \
		-n crun "crun --root $work/run/crun run --bundle $work/bundle-limited b"
fi

if want S3; then
	echo "S3: S2 with a veth into a bridge ($runs runs each)" >&2
	innet hyperfine -N --warmup 10 --runs "$runs" --style none --export-json "$work/s3.json" \
		-n ns-exec "$bin/ns-exec --config $work/net.json --root $work/run/state --name b -- /bin/true" \
		-n "runc + veth-run.sh" "$veth_run runc --root $work/run/runc run --bundle $work/bundle-net b" \
		-n "crun + veth-run.sh" "$veth_run crun --root $work/run/crun run --bundle $work/bundle-net b" \
		-n "veth-run.sh alone (floor of the ip peers)" "$veth_run /bin/true" >/dev/null
fi

if want S4; then
	echo "S4: 200 launches, 2 and 8 at a time" >&2
	for p in 2 8; do
		hyperfine --warmup 1 --runs 5 --style none --export-json "$work/s4-$p.json" \
			-n ns-exec "seq 200 | xargs -P $p -I{} $bin/ns-exec --config $work/container.json --root $work/run/state --name b{} -- /bin/true" \
			-n runc "seq 200 | xargs -P $p -I{} runc --root $work/run/runc run --bundle $work/bundle b{}" \
			-n crun "seq 200 | xargs -P $p -I{} crun --root $work/run/crun run --bundle $work/bundle b{}" \
			-n bwrap "seq 200 | xargs -P $p -I{} $bwrap_run /bin/true" >/dev/null
	done
fi

if want S5; then
	echo "S5: resident memory while a container sleeps" >&2
	rss() { # rss COMMAND...: VmRSS (KiB) of the runtime process while its container sleeps
		"$@" &
		local pid=$! kib=
		sleep 0.5
		kib=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo "?")
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "$kib"
	}
	{
		echo "ns-exec $(rss $ns_exec /bin/sleep 2)"
		echo "runc $(rss runc --root "$work/run/runc" run --bundle "$work/bundle-sleep" s5)"
		echo "crun $(rss crun --root "$work/run/crun" run --bundle "$work/bundle-sleep" s5)"
		echo "bwrap $(rss $bwrap_run /bin/sleep 2)"
	} >"$work/s5-rss.txt"
	for f in "$bin/ns-exec" "$bin/ns-init" "$bin/ns-dmz" "$(command -v runc)" "$(command -v crun)" "$(command -v bwrap)"; do
		printf '%s %s\n' "$(basename "$f")" "$(stat -c %s "$f")"
	done >"$work/s5-sizes.txt"

	echo "S5: the smallest memory limit under which /bin/true starts" >&2
	# try_ns KIB TRY / try_oci RUNTIME KIB TRY: one start of /bin/true under a KIB KiB limit
	# (and the pids limit of S2), each try with a name of its own.
	try_ns() {
		jq -c --argjson m $(($1 * 1024)) '.cgroups.memory = $m' "$work/limited.json" >"$work/mem.json"
		"$bin/ns-exec" --config "$work/mem.json" --root "$work/run/state" --name "m$1-$2" -- /bin/true
	}
	try_oci() {
		mkdir -p "$work/bundle-mem"
		jq --argjson m $(($2 * 1024)) '.linux.resources.memory.limit = $m' \
			"$work/bundle-limited/config.json" >"$work/bundle-mem/config.json"
		"$1" --root "$work/run/$1" run --bundle "$work/bundle-mem" "m$2-$3" && return 0
		"$1" --root "$work/run/$1" delete --force "m$2-$3" 2>/dev/null || true
		return 1
	}
	fits() { # fits KIB TRY-COMMAND...: /bin/true exits 0 in 3 tries out of 3
		local kib=$1 i
		shift
		for i in 1 2 3; do "$@" "$kib" "$i" </dev/null >/dev/null 2>&1 || return 1; done
	}
	smallest() { # smallest TRY-COMMAND...: bisect 128 KiB..64 MiB in 4 KiB (page) steps
		local lo=128 hi=65536 mid
		fits $hi "$@" || { echo "none up to 64 MiB"; return; }
		fits $lo "$@" && { echo "128 KiB or less"; return; }
		while [ $((hi - lo)) -gt 4 ]; do # lo fails, hi fits
			mid=$(((lo + hi) / 8 * 4))
			if fits $mid "$@"; then hi=$mid; else lo=$mid; fi
		done
		echo "$hi KiB"
	}
	ok() { if fits "$@"; then echo yes; else echo no; fi; }
	{
		echo "ns-exec|$(smallest try_ns)|$(ok 512 try_ns)"
		echo "runc|$(smallest try_oci runc)|$(ok 512 try_oci runc)"
		echo "crun|$(smallest try_oci crun)|$(ok 512 try_oci crun)"
	} >"$work/s5-mem.txt"
fi

if want S6; then
	# S3's container, made by the stage programs composed in scripts/compose.sh.
	compose="$repo/scripts/compose.sh --name s6 $work/net.json -- /bin/true"
	if [ ! -x scripts/compose.sh ]; then
		echo "scripts/compose.sh is missing (or not executable), so S6 was not run." >"$work/s6-skip.txt"
	elif ! err=$(NS_BIN_DIR=$bin innet $compose 2>&1 </dev/null); then
		printf 'scripts/compose.sh failed its trial run, so S6 was not run: `%s`\n' \
			"$(printf '%s' "$err" | tr '\n' ' ')" >"$work/s6-skip.txt"
	else
		echo "S6: S3's container composed by scripts/compose.sh ($runs runs each)" >&2
		NS_BIN_DIR=$bin innet hyperfine -N --warmup 10 --runs "$runs" --style none \
			--export-json "$work/s6.json" \
			-n ns-exec "$bin/ns-exec --config $work/net.json --root $work/run/state --name b -- /bin/true" \
			-n scripts/compose.sh "$compose" \
			-n "crun + veth-run.sh" "$veth_run crun --root $work/run/crun run --bundle $work/bundle-net b" >/dev/null
	fi
	[ ! -e "$work/s6-skip.txt" ] || cat "$work/s6-skip.txt" >&2
fi

python3 - "$work" "$runs" >"$out" <<'EOF'
import json, os, platform, subprocess, sys
work, runs = sys.argv[1], sys.argv[2]

def table(name, unit_ms=True):
    res = json.load(open(f"{work}/{name}.json"))["results"]
    peers = [r for r in res if "floor" not in r["command"]]
    best = min(r["median"] for r in peers)
    rows = ["| runtime | median | mean ± σ | ratio to the fastest runtime |", "|---|---|---|---|"]
    for r in res:
        scale, u = (1000, "ms") if unit_ms else (1, "s")
        rows.append(f"| {r['command']} | {r['median']*scale:.2f} {u} | {r['mean']*scale:.2f} ± "
                    f"{r['stddev']*scale:.2f} {u} | {r['median']/best:.2f}× |")
    return "\n".join(rows)

def have(name):
    return os.path.exists(f"{work}/{name}")

def lines(name, sep=None):
    return [l.split(sep) for l in open(f"{work}/{name}").read().splitlines()]

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
ver = lambda c: subprocess.run(c, capture_output=True, text=True).stdout.splitlines()[0]
out = [f"""# Benchmark results

Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}; {ver(['runc', '--version'])},
{ver(['crun', '--version'])}, {ver(['bwrap', '--version'])}, {ver(['hyperfine', '--version'])}.
Produced by `bench/run.sh {runs}`; bench/README.md explains each scenario."""]
if have("s1.json"):
    med = {r["command"]: r["median"] for r in json.load(open(f"{work}/s1.json"))["results"]}
    out.append(f"""## S1: start-to-exit of /bin/true ({runs} runs each)

The C launcher (floor) is bench/floor.c: clone into the five namespaces, / made private, the
rootfs bound onto itself, /proc, pivot_root, execv; no /dev, hostname or cgroups.
ns-exec's median is {med['ns-exec'] / med['C launcher (floor)']:.2f}× the C launcher's (target ≤ 1.5×) \
and {med['ns-exec'] / med['bwrap']:.2f}× bubblewrap's (target ≤ 1×).

{table('s1')}""")
if have("s1-pair.json"):
    pair = json.load(open(f"{work}/s1-pair.json"))
    col = {n: i for i, n in enumerate(pair["names"])}
    def paired(a, b):
        r = sorted(row[col[a]] / row[col[b]] for row in pair["seconds"])
        n = len(r)
        return f"{r[n // 2]:.2f}× (quartiles {r[n // 4]:.2f}–{r[3 * n // 4]:.2f})"
    out.append(f"""Paired: bench/pair.c ran ns-exec, bubblewrap and the C launcher once per round, in rotating
order, for {len(pair["seconds"])} rounds; each round's ratio sees the same machine on both sides, where the
hyperfine blocks above are a minute apart on a machine whose speed drifts. Median of the
rounds' ratios: ns-exec to the C launcher {paired('ns-exec', 'C launcher (floor)')} (target ≤ 1.5×),
ns-exec to bubblewrap {paired('ns-exec', 'bwrap')} (target ≤ 1×).""")
if have("s2.json"):
    out.append(f"""## S2: S1 with a 64 MiB memory limit and a pids limit of 64 ({runs} runs each)

bubblewrap makes no cgroups, so it is not in this one.

{table('s2')}""")
if have("s3.json"):
    out.append(f"""## S3: S2 with a veth into a bridge ({runs} runs each)

In a network namespace holding bridge br0 (198.18.3.1/24); the container gets 198.18.3.2/24 and a
default route. ns-exec makes the veth itself (a "veth" network in its config); runc and crun run
inside bench/veth-run.sh, the `ip` commands a user scripts around them (`ip netns add`, the
veth pair into it, master br0, address, route, `ip netns del`), whose cost alone is the floor
row. bubblewrap makes no cgroups (see S2), so it is not in this one.

{table('s3')}""")
for p in (2, 8):
    if have(f"s4-{p}.json"):
        out.append(f"## S4: 200 launches, {p} at a time\n\n{table(f's4-{p}', unit_ms=False)}")
if have("s5-rss.txt"):
    out.append("## S5: footprint\n\n| runtime | RSS of the waiting runtime process |\n|---|---|\n"
               + "\n".join(f"| {k} | {v} KiB |" for k, v in lines("s5-rss.txt"))
               + "\n\n| program | size |\n|---|---|\n"
               + "\n".join(f"| {n} | {int(s)/1024:.0f} KiB |" for n, s in lines("s5-sizes.txt")))
if have("s5-mem.txt"):
    out.append("""## S5: the smallest memory limit under which /bin/true starts

S2's container with a lower memory limit (ns-exec's `cgroups.memory`, runc's and crun's
`linux.resources.memory.limit`), bisected between 128 KiB and 64 MiB in 4 KiB steps; a limit
counts when /bin/true exits 0 three times out of three.

| runtime | smallest limit | 512 KiB works |
|---|---|---|
""" + "\n".join(f"| {n} | {v} | {ok} |" for n, v, ok in lines("s5-mem.txt", "|")))
if have("s6.json"):
    out.append(f"""## S6: S3's container made by scripts/compose.sh ({runs} runs each)

The stage programs (ns-cgroup, unshare, ns-init, ns-veth) composed by a shell script instead of
ns-exec, in S3's network namespace, next to ns-exec and crun + veth-run.sh on the same container.

{table('s6')}""")
elif have("s6-skip.txt"):
    out.append("## S6: S3's container made by scripts/compose.sh\n\n" + open(f"{work}/s6-skip.txt").read().strip())
print("\n\n".join(out))
EOF
cat "$out"
