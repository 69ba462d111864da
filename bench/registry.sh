#!/usr/bin/env bash
# Pull and push of debian:bookworm and of the W1 image (../shared/bench/mkworkload.sh built by
# hoist, in a registry of this script's own): hoist vs `docker pull/push` (a dockerd 20.10 of
# this script's own), `podman pull` and `skopeo copy`, in one run. Every store (and the
# registries') sits on one fresh ext4 on a loop device (see bench/lib.sh for why).
#   cold pull: RUNS rounds, each tool in turn from an empty store (hoist: a fresh --root; docker:
#              dockerd restarted on an empty data root; podman: `rmi -af`), medians;
#   push:      to an empty registry (its storage wiped before each run), hyperfine medians;
#   re-push:   hoist pushing an unchanged image again.
# Prints a table per image and the ratios hoist/faster peer. Needs root and setup-peers.sh (the registry
# at 127.0.0.1:5000 with debian:bookworm).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
SRC=127.0.0.1:5000/debian:bookworm
DOCKER=/usr/bin/docker
. bench/lib.sh
command -v hyperfine >/dev/null || { echo "hyperfine missing: run ../shared/bench/setup-peers.sh" >&2; exit 1; }
curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1 || bash ../shared/bench/setup-peers.sh >/dev/null
cargo build --release --quiet
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hoist
W=$(mktemp -d /tmp/hoist-bench.XXXX)
FS=$W/fs
BENCH_DOCKER_DATA=$FS/docker
PORT=5055
SRCPORT=5056
P="podman --root $FS/podman --runroot $W/podman-run --storage-driver overlay"
REGPIDS=()
# Cleanup runs without errexit: a step that fails (nothing to unmount) must not skip the rest.
cleanup() {
  set +e
  for p in "${REGPIDS[@]}"; do kill "$p" 2>/dev/null; done
  $P system reset -f >/dev/null 2>&1
  bench_done
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bench_fs "$FS"
mkdir -p "$W/t"
registry() {   # registry PORT DIR: a docker-registry on 127.0.0.1:PORT storing in DIR
  mkdir -p "$W/reg-$1"
  cat > "$W/reg-$1/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$1
YML
  docker-registry serve "$W/reg-$1/config.yml" >"$W/reg-$1/log" 2>&1 &
  REGPIDS+=($!)
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$1/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
}
registry $PORT "$FS/reg"
registry $SRCPORT "$FS/srcreg"
dockerd_start

# timed NAME CMD...: one timed run of CMD, appended to $W/t/NAME.
timed() {
  local name=$1 s e
  shift
  s=$(date +%s.%N)
  "$@" >"$W/out" 2>&1 || { echo "FAILED: $name:" >&2; tail -20 "$W/out" >&2; exit 1; }
  e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f\n", e - s}' >>"$W/t/$name"
  printf '  %-12s %8.3f s\n' "$name" "$(tail -1 "$W/t/$name")" >&2
}
# W1, built by hoist and pushed to the source registry.
REG=127.0.0.1:5000 bash ../shared/bench/mkworkload.sh "$W/wl" >/dev/null
"$H" --root "$FS/wb" build -q --network host -t 127.0.0.1:$SRCPORT/w1:bench "$W/wl/app" >/dev/null
"$H" --root "$FS/wb" push -q 127.0.0.1:$SRCPORT/w1:bench >/dev/null
rm -rf "$FS/wb"

# image NAME SRC: cold pulls in rounds, then pushes to the empty target registry and a re-push.
image() {
  local name=$1 src=$2 dst=127.0.0.1:$PORT/bench/$1:bench
  for i in $(seq "$RUNS"); do
    echo "$name pull round $i/$RUNS" >&2
    rm -rf "$FS/hp"; sync
    timed "pull-hoist-$name" "$H" --root "$FS/hp" pull -q "$src"
    dockerd_reset >/dev/null; sync
    timed "pull-docker-$name" $DOCKER pull -q "$src"
    $P rmi -af >/dev/null 2>&1 || true; sync
    timed "pull-podman-$name" $P pull -q --tls-verify=false "$src"
  done
  # Push: every tool has the image already; the target registry is emptied before each run.
  $DOCKER tag "$src" "$dst"
  local wipe="rm -rf $FS/reg/docker"
  hf "push-hoist-$name"  --prepare "$wipe" "$H --root $FS/hp push -q $src $dst"
  hf "push-docker-$name" --prepare "$wipe" "$DOCKER push -q $dst"
  hf "push-skopeo-$name" --prepare "$wipe" "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$src docker://$dst"
  "$H" --root "$FS/hp" push -q "$src" "$dst" >/dev/null
  hf "repush-hoist-$name" "$H --root $FS/hp push -q $src $dst"
}
hf() { hyperfine -N --style none --runs "$RUNS" --warmup 1 --export-json "$W/$1.json" "${@:2}" >/dev/null 2>&1 || hyperfine --style none --runs "$RUNS" --warmup 1 --export-json "$W/$1.json" "${@:2}" >/dev/null; }
image debian $SRC
image w1 127.0.0.1:$SRCPORT/w1:bench

python3 - "$W" <<'PY'
import json, sys, statistics
w = sys.argv[1]
def med(n):
    try:
        return statistics.median(json.load(open(f"{w}/{n}.json"))["results"][0]["times"])
    except FileNotFoundError:
        return statistics.median(float(x) for x in open(f"{w}/t/{n}").read().split())
print(f"{'op':<14}{'hoist':>9}{'peer A':>16}{'peer B':>16}{'hoist/faster peer':>20}")
for name in ("debian", "w1"):
    h, d, p = med(f"pull-hoist-{name}"), med(f"pull-docker-{name}"), med(f"pull-podman-{name}")
    print(f"{'pull ' + name:<14}{h:>8.3f}s{d:>9.3f}s dock{p:>9.3f}s podm{h/min(d,p):>19.2f}x")
    h, d, s = med(f"push-hoist-{name}"), med(f"push-docker-{name}"), med(f"push-skopeo-{name}")
    print(f"{'push ' + name:<14}{h:>8.3f}s{d:>9.3f}s dock{s:>9.3f}s skop{h/min(d,s):>19.2f}x")
    print(f"{'re-push ' + name:<14}{med(f'repush-hoist-{name}'):>8.3f}s")
print("goals: pull <= 0.6x, push <= 0.8x the faster peer; re-push <= 0.1 s")
PY
