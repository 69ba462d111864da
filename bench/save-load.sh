#!/usr/bin/env bash
# Save and load of debian:bookworm: hoist vs `docker save/load` (the private dockerd from
# ../shared/bench/setup-peers.sh) and `podman save/load`, in one run, medians of hyperfine runs.
# Prints a table and the ratios hoist/faster-peer. Needs root and setup-peers.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
IMG=localhost:5000/debian:bookworm
export DOCKER_HOST=unix:///tmp/hoist-peers/dockerd.sock
DOCKER=/usr/bin/docker
command -v hyperfine >/dev/null || { echo "hyperfine missing: run ../shared/bench/setup-peers.sh" >&2; exit 1; }
$DOCKER version >/dev/null 2>&1 || bash ../shared/bench/setup-peers.sh >/dev/null
cargo build --release --quiet
H=$PWD/target/release/hoist
W=$(mktemp -d /tmp/hoist-bench.XXXX)
trap 'rm -rf "$W"' EXIT
P="podman --root $W/podman --runroot $W/podman-run --storage-driver overlay"

# The same image in every tool: docker has it from the registry; hoist and podman load docker's copy.
$DOCKER pull -q $IMG >/dev/null
$DOCKER save -o "$W/seed.tar" $IMG
$H --root "$W/hoist" load -q -i "$W/seed.tar"
$P load -q -i "$W/seed.tar" >/dev/null
$H --root "$W/hoist" save -o "$W/hoist.tar" $IMG
$P save -q -o "$W/podman.tar" $IMG
echo "image: $IMG ($(du -m "$W/seed.tar" | cut -f1) MB archive)"

hf() { hyperfine -N --style none --runs "$RUNS" --warmup 1 --export-json "$W/$1.json" "${@:2}" >/dev/null 2>&1 || hyperfine --style none --runs "$RUNS" --warmup 1 --export-json "$W/$1.json" "${@:2}" >/dev/null; }
hf save-hoist  --prepare "rm -f $W/out-h.tar" "$H --root $W/hoist save -o $W/out-h.tar $IMG"
hf save-docker --prepare "rm -f $W/out-d.tar" "$DOCKER save -o $W/out-d.tar $IMG"
hf save-podman --prepare "rm -f $W/out-p.tar" "$P save -q -o $W/out-p.tar $IMG"
hf load-hoist  --prepare "rm -rf $W/hl" "$H --root $W/hl load -q -i $W/hoist.tar"
hf load-docker --prepare "$DOCKER rmi -f $IMG >/dev/null 2>&1 || true" "$DOCKER load -q -i $W/seed.tar"
hf load-podman --prepare "$P rmi -f $IMG >/dev/null 2>&1 || true" "$P load -q -i $W/podman.tar"
# hoist defers unpacking to first use; this is load plus unpacking every layer into snapshots.
hf load-unpack-hoist --prepare "rm -rf $W/hu" "sh -c '$H --root $W/hu load -q -i $W/hoist.tar && $H --root $W/hu export $IMG -o /dev/null'"
$DOCKER pull -q $IMG >/dev/null 2>&1 || $DOCKER load -q -i "$W/seed.tar" >/dev/null

python3 - "$W" <<'PY'
import json, sys, statistics
w = sys.argv[1]
med = lambda n: statistics.median(json.load(open(f"{w}/{n}.json"))["results"][0]["times"])
print(f"{'op':<6}{'hoist':>9}{'docker':>9}{'podman':>9}{'hoist/faster peer':>20}")
for op in ("save", "load"):
    h, d, p = med(f"{op}-hoist"), med(f"{op}-docker"), med(f"{op}-podman")
    print(f"{op:<6}{h:>8.3f}s{d:>8.3f}s{p:>8.3f}s{h/min(d,p):>19.2f}x")
print(f"load+unpack (hoist, first use): {med('load-unpack-hoist'):.3f}s")
PY
