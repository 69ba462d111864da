#!/usr/bin/env bash
# Pull and push of debian:bookworm: hoist vs `docker pull/push` (a dockerd 20.10 of this script's
# own), `podman pull` and `skopeo copy`, in one run. Every store (and the target registry's) sits
# on one fresh ext4 on a loop device (see bench/lib.sh for why).
#   cold pull: RUNS rounds, each tool in turn from an empty store (hoist: a fresh --root; docker:
#              dockerd restarted on an empty data root; podman: `rmi -af`), medians;
#   push:      to an empty registry (its storage wiped before each run), hyperfine medians;
#   re-push:   hoist pushing an unchanged image again.
# Prints a table and the ratios hoist/faster peer. Needs root and setup-peers.sh (the registry
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
P="podman --root $FS/podman --runroot $W/podman-run --storage-driver overlay"
# Cleanup runs without errexit: a step that fails (nothing to unmount) must not skip the rest.
cleanup() {
  set +e
  [ -z "${REGPID:-}" ] || kill "$REGPID" 2>/dev/null
  $P system reset -f >/dev/null 2>&1
  dockerd_stop
  bench_fs_done "$FS"
  rm -rf "$W"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bench_fs "$FS"
mkdir -p "$W/reg" "$W/t"
cat > "$W/reg/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $FS/reg
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
REGPID=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
dockerd_start
DST=127.0.0.1:$PORT/bench/debian:bookworm

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
for i in $(seq "$RUNS"); do
  echo "pull round $i/$RUNS" >&2
  rm -rf "$FS/hp"; sync
  timed pull-hoist "$H" --root "$FS/hp" pull -q $SRC
  dockerd_reset >/dev/null; sync
  timed pull-docker $DOCKER pull -q $SRC
  $P rmi -af >/dev/null 2>&1 || true; sync
  timed pull-podman $P pull -q --tls-verify=false $SRC
done

# Push: every tool has the image already; the registry is emptied before each run.
hf() { hyperfine -N --style none --runs "$RUNS" --warmup 1 --export-json "$W/$1.json" "${@:2}" >/dev/null 2>&1 || hyperfine --style none --runs "$RUNS" --warmup 1 --export-json "$W/$1.json" "${@:2}" >/dev/null; }
$DOCKER tag $SRC $DST
WIPE="rm -rf $FS/reg/docker"
hf push-hoist  --prepare "$WIPE" "$H --root $FS/hp push -q $SRC $DST"
hf push-docker --prepare "$WIPE" "$DOCKER push -q $DST"
hf push-skopeo --prepare "$WIPE" "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$SRC docker://$DST"
"$H" --root "$FS/hp" push -q $SRC $DST >/dev/null
hf repush-hoist "$H --root $FS/hp push -q $SRC $DST"

python3 - "$W" <<'PY'
import json, sys, statistics
w = sys.argv[1]
def med(n):
    try:
        return statistics.median(json.load(open(f"{w}/{n}.json"))["results"][0]["times"])
    except FileNotFoundError:
        return statistics.median(float(x) for x in open(f"{w}/t/{n}").read().split())
h, d, p = med("pull-hoist"), med("pull-docker"), med("pull-podman")
print(f"{'op':<8}{'hoist':>9}{'peer A':>16}{'peer B':>16}{'hoist/faster peer':>20}")
print(f"{'pull':<8}{h:>8.3f}s{d:>9.3f}s dock{p:>9.3f}s podm{h/min(d,p):>19.2f}x")
h, d, s = med("push-hoist"), med("push-docker"), med("push-skopeo")
print(f"{'push':<8}{h:>8.3f}s{d:>9.3f}s dock{s:>9.3f}s skop{h/min(d,s):>19.2f}x")
print(f"re-push (hoist, unchanged image): {med('repush-hoist'):.3f}s")
PY
