#!/usr/bin/env bash
# Pull and push of debian:bookworm: hoist vs `docker pull/push` (the private dockerd from
# ../shared/bench/setup-peers.sh), `podman pull` and `skopeo copy`, in one run, medians of
# hyperfine runs. Cold pull = empty store (docker: image removed and pruned first); push = to an
# empty registry (its storage wiped before each run); re-push = hoist pushing an unchanged image
# again. Prints a table and the ratios hoist/faster peer. Needs root and setup-peers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
SRC=localhost:5000/debian:bookworm
export DOCKER_HOST=unix:///tmp/hoist-peers/dockerd.sock
DOCKER=/usr/bin/docker
command -v hyperfine >/dev/null || { echo "hyperfine missing: run ../shared/bench/setup-peers.sh" >&2; exit 1; }
$DOCKER version >/dev/null 2>&1 || bash ../shared/bench/setup-peers.sh >/dev/null
cargo build --release --quiet
H=${CARGO_TARGET_DIR:-$PWD/target}/release/hoist
W=$(mktemp -d /tmp/hoist-bench.XXXX)
PORT=5055
mkdir -p "$W/reg"
cat > "$W/reg/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/reg/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
REGPID=$!
# Cleanup runs without errexit: a step that fails (nothing to unmount) must not skip the rest.
cleanup() {
  set +e
  kill $REGPID 2>/dev/null
  $P system reset -f >/dev/null 2>&1
  umount -R "$W/podman/overlay" 2>/dev/null
  rm -rf "$W"
  return 0
}
trap cleanup EXIT
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
DST=127.0.0.1:$PORT/bench/debian:bookworm
P="podman --root $W/podman --runroot $W/podman-run --storage-driver overlay"

hf() { hyperfine -N --style none --runs "$RUNS" --warmup 1 --export-json "$W/$1.json" "${@:2}" >/dev/null 2>&1 || hyperfine --style none --runs "$RUNS" --warmup 1 --export-json "$W/$1.json" "${@:2}" >/dev/null; }
hf pull-hoist  --prepare "rm -rf $W/hp" "$H --root $W/hp pull -q $SRC"
hf pull-docker --prepare "sh -c '$DOCKER rmi -f $SRC >/dev/null 2>&1; $DOCKER image prune -af >/dev/null 2>&1; true'" "$DOCKER pull -q $SRC"
hf pull-podman --prepare "sh -c '$P rmi -af >/dev/null 2>&1; true'" "$P pull -q --tls-verify=false $SRC"

# Push: every tool has the image already; the registry is emptied before each run.
$H --root "$W/hs" pull -q $SRC >/dev/null
$DOCKER pull -q $SRC >/dev/null
$DOCKER tag $SRC $DST
WIPE="rm -rf $W/reg/data/docker"
hf push-hoist  --prepare "$WIPE" "$H --root $W/hs push -q $SRC $DST"
hf push-docker --prepare "$WIPE" "$DOCKER push -q $DST"
hf push-skopeo --prepare "$WIPE" "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$SRC docker://$DST"
$H --root "$W/hs" push -q $SRC $DST >/dev/null
hf repush-hoist "$H --root $W/hs push -q $SRC $DST"

python3 - "$W" <<'PY'
import json, sys, statistics
w = sys.argv[1]
med = lambda n: statistics.median(json.load(open(f"{w}/{n}.json"))["results"][0]["times"])
h, d, p = med("pull-hoist"), med("pull-docker"), med("pull-podman")
print(f"{'op':<8}{'hoist':>9}{'peer A':>16}{'peer B':>16}{'hoist/faster peer':>20}")
print(f"{'pull':<8}{h:>8.3f}s{d:>9.3f}s dock{p:>9.3f}s podm{h/min(d,p):>19.2f}x")
h, d, s = med("push-hoist"), med("push-docker"), med("push-skopeo")
print(f"{'push':<8}{h:>8.3f}s{d:>9.3f}s dock{s:>9.3f}s skop{h/min(d,s):>19.2f}x")
print(f"re-push (hoist, unchanged image): {med('repush-hoist'):.3f}s")
PY
