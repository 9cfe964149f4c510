#!/usr/bin/env bash
# bench/run.sh [RUNS]: ns-tools against runc, crun and bubblewrap on this machine, side by side,
# and the floor (a bare fork+exec of /bin/true). Writes bench/RESULTS.md and prints it.
#
# Scenarios (bench/README.md says what each measures and why):
#   S1 start-to-exit of /bin/true in new mnt+pid+uts+ipc+net namespaces, with pivot_root,
#      /proc and /dev, one hyperfine invocation for all runtimes;
#   S2 S1 plus a memory and a pids limit (each runtime makes, fills and removes a cgroup);
#   S4 throughput: 200 launches, 2 and 8 at a time;
#   S5 resident memory of the waiting runtime process while a container runs `sleep`, and the
#      size of the programs.
# S3 (veth into a bridge) and S6 (the scripts/ pipeline) are not measured yet.
#
# Everything runs in a private mount namespace where /sys/fs/cgroup/unified is unmounted: crun
# refuses this machine's hybrid layout, and all runtimes get the same view. Needs root; installs
# hyperfine, runc, crun and bubblewrap from Debian when missing; leaves nothing behind.
set -eu

runs=${1:-200}
cd "$(dirname "$0")/.."
repo=$PWD
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }

if [ -z "${NS_BENCH_INNER:-}" ]; then
	missing=
	for cmd in hyperfine:hyperfine runc:runc crun:crun bwrap:bubblewrap; do
		command -v "${cmd%%:*}" >/dev/null 2>&1 || missing="$missing ${cmd#*:}"
	done
	if [ -n "$missing" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing </dev/null
	fi
	# Static release binaries (glibc's static libc): an exec of a dynamically linked program
	# costs its loader's work on every container start.
	RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
		cargo build --release --locked -q --target "$(uname -m)-unknown-linux-gnu" -p ns-exec -p ns-init
	# Re-run inside a private mount namespace (see above).
	exec unshare --mount --propagation private env NS_BENCH_INNER=1 bash "$0" "$@"
fi
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi

work=$(mktemp -d /tmp/ns-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
bin=$repo/target/static/$(uname -m)-unknown-linux-gnu/release
scripts/mkrootfs.sh "$work/rootfs" >/dev/null
mkdir -p "$work/bundle" "$work/state" "$work/runc" "$work/crun"

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

# S2's configs: the same, plus a 64 MiB memory limit and a pids limit of 64.
python3 - "$work" <<'EOF2'
import json, sys
work = sys.argv[1]
c = json.load(open(f"{work}/container.json"))
c["cgroups"] = {"memory": "64m", "pids_max": 64}
json.dump(c, open(f"{work}/limited.json", "w"))
import os
os.makedirs(f"{work}/bundle-limited", exist_ok=True)
spec = json.load(open(f"{work}/bundle/config.json"))
spec.setdefault("linux", {})["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}
json.dump(spec, open(f"{work}/bundle-limited/config.json", "w"), indent=1)
EOF2

ns_exec="$bin/ns-exec --config $work/container.json --root $work/state --name b --"
runc_run="runc --root $work/runc run --bundle $work/bundle b"
crun_run="crun --root $work/crun run --bundle $work/bundle b"
bwrap_run="bwrap --unshare-all --die-with-parent --bind $work/rootfs / --proc /proc --dev /dev --hostname bench"

hf() { # hf NAME COMMAND... : one hyperfine invocation, JSON to $work/NAME.json
	local name=$1
	shift
	hyperfine -N --warmup 10 --runs "$runs" --style none --export-json "$work/$name.json" "$@" >/dev/null
}

echo "S1: start-to-exit of /bin/true ($runs runs each)" >&2
hf s1 -n ns-exec "$ns_exec /bin/true" -n runc "$runc_run" -n crun "$crun_run" \
	-n bwrap "$bwrap_run /bin/true" -n "fork+exec (floor)" "/bin/true"

echo "S2: S1 with a memory and a pids limit ($runs runs each)" >&2
hf s2 -n ns-exec "$bin/ns-exec --config $work/limited.json --root $work/state --name b -- /bin/true" \
	-n runc "runc --root $work/runc run --bundle $work/bundle-limited b" \
	-n crun "crun --root $work/crun run --bundle $work/bundle-limited b"

echo "S4: 200 launches, 2 and 8 at a time" >&2
for p in 2 8; do
	hyperfine --warmup 1 --runs 5 --style none --export-json "$work/s4-$p.json" \
		-n ns-exec "seq 200 | xargs -P $p -I{} $bin/ns-exec --config $work/container.json --root $work/state --name b{} -- /bin/true" \
		-n runc "seq 200 | xargs -P $p -I{} runc --root $work/runc run --bundle $work/bundle b{}" \
		-n crun "seq 200 | xargs -P $p -I{} crun --root $work/crun run --bundle $work/bundle b{}" \
		-n bwrap "seq 200 | xargs -P $p -I{} $bwrap_run /bin/true" >/dev/null
done

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
python3 - "$work/bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["args"] = ["/bin/sleep", "2"]
json.dump(spec, open(path, "w"), indent=1)
EOF
rss_ns=$(rss $ns_exec /bin/sleep 2)
rss_runc=$(rss runc --root "$work/runc" run --bundle "$work/bundle" s5)
rss_crun=$(rss crun --root "$work/crun" run --bundle "$work/bundle" s5)
rss_bwrap=$(rss $bwrap_run /bin/sleep 2)
sizes=$(for f in "$bin/ns-exec" "$bin/ns-init" "$(command -v runc)" "$(command -v crun)" "$(command -v bwrap)"; do
	printf '%s %s\n' "$(basename "$f")" "$(stat -c %s "$f")"
done)

python3 - "$work" "$runs" "$rss_ns" "$rss_runc" "$rss_crun" "$rss_bwrap" "$sizes" >bench/RESULTS.md <<'EOF'
import json, os, platform, subprocess, sys
work, runs = sys.argv[1], sys.argv[2]
rss = dict(zip(["ns-exec", "runc", "crun", "bwrap"], sys.argv[3:7]))
sizes = [l.split() for l in sys.argv[7].splitlines()]

def table(path, unit_ms=True):
    res = json.load(open(path))["results"]
    peers = [r for r in res if "floor" not in r["command"]]
    best = min(r["median"] for r in peers)
    rows = ["| runtime | median | mean ± σ | ratio to the fastest runtime |", "|---|---|---|---|"]
    for r in res:
        scale, u = (1000, "ms") if unit_ms else (1, "s")
        rows.append(f"| {r['command']} | {r['median']*scale:.2f} {u} | {r['mean']*scale:.2f} ± "
                    f"{r['stddev']*scale:.2f} {u} | {r['median']/best:.2f}× |")
    return "\n".join(rows)

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
ver = lambda c: subprocess.run(c, capture_output=True, text=True).stdout.splitlines()[0]
print(f"""# Benchmark results

Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}; {ver(['runc', '--version'])},
{ver(['crun', '--version'])}, {ver(['bwrap', '--version'])}, {ver(['hyperfine', '--version'])}.
Produced by `bench/run.sh {runs}`; bench/README.md explains each scenario.

## S1: start-to-exit of /bin/true ({runs} runs each)

{table(f"{work}/s1.json")}

## S2: S1 with a 64 MiB memory limit and a pids limit of 64 ({runs} runs each)

bubblewrap makes no cgroups, so it is not in this one.

{table(f"{work}/s2.json")}

## S4: 200 launches, 2 at a time

{table(f"{work}/s4-2.json", unit_ms=False)}

## S4: 200 launches, 8 at a time

{table(f"{work}/s4-8.json", unit_ms=False)}

## S5: footprint

| runtime | RSS of the waiting runtime process |
|---|---|
""" + "\n".join(f"| {k} | {v} KiB |" for k, v in rss.items()) + """

| program | size |
|---|---|
""" + "\n".join(f"| {n} | {int(s)/1024:.0f} KiB |" for n, s in sizes))
EOF
cat bench/RESULTS.md
