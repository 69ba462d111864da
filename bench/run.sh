#!/usr/bin/env bash
# `hoist run --rm busybox true` against `runc run` on a ready bundle of the same rootfs,
# `docker run --rm --network host` (the private dockerd of ../shared/bench/setup-peers.sh) and
# `podman run --rm` of the same image, in one run; medians of RUNS (default 30) runs each.
# Needs root and setup-peers.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
IMG=localhost:5000/busybox:latest
export DOCKER_HOST=unix:///tmp/hoist-peers/dockerd.sock
DOCKER=/usr/bin/docker
command -v hyperfine >/dev/null || { echo "hyperfine missing: run ../shared/bench/setup-peers.sh" >&2; exit 1; }
$DOCKER version >/dev/null 2>&1 || bash ../shared/bench/setup-peers.sh >/dev/null
cargo build --release --quiet
H="$PWD/target/release/hoist"
W=$(mktemp -d /tmp/hoist-bench-run.XXXX)
trap 'rm -rf "$W"' EXIT
P="podman --root $W/podman --runroot $W/podman-run --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"

# The same image everywhere: docker's copy, saved and loaded into hoist and podman.
$DOCKER pull -q $IMG >/dev/null
$DOCKER save -o "$W/bb.tar" $IMG
$H --root "$W/hoist" load -q -i "$W/bb.tar"
$H --root "$W/hoist" run --rm $IMG true   # unpacks the snapshot once
$P load -q -i "$W/bb.tar" >/dev/null
# runc: a ready bundle of the same rootfs.
mkdir -p "$W/bundle/rootfs"
$H --root "$W/hoist" export $IMG -o "$W/rootfs.tar"
tar -C "$W/bundle/rootfs" -xf "$W/rootfs.tar"
(cd "$W/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)

hf() { hyperfine -N --style none --runs "$RUNS" --warmup 3 --export-json "$W/$1.json" "${@:2}" >/dev/null; }
hf hoist "$H --root $W/hoist run --rm $IMG true"
hf runc "runc --root $W/runc-state run --bundle $W/bundle bench-$$"
hf docker "$DOCKER run --rm --network host $IMG true"
# podman needs lower rlimits than its defaults on a machine without CAP_SYS_RESOURCE.
hf podman "$P run --rm --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 $IMG true"

python3 - "$W" <<'PY'
import json, sys, statistics
w = sys.argv[1]
med = {n: statistics.median(json.load(open(f"{w}/{n}.json"))["results"][0]["times"]) * 1000 for n in ("hoist", "runc", "docker", "podman")}
for n, v in med.items():
    print(f"{n:<7}{v:8.1f} ms")
print(f"hoist/runc {med['hoist']/med['runc']:.2f}x, hoist/docker {med['hoist']/med['docker']:.2f}x, hoist/podman {med['hoist']/med['podman']:.2f}x")
PY
