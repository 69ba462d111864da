#!/usr/bin/env bash
# Build benchmark (issue 6): `hoist build` against BuildKit (`DOCKER_BUILDKIT=1 docker build
# --network host` on a dockerd 20.10 of this script's own) and `buildah bud --layers`, on workload
# W1 of ../shared/bench/mkworkload.sh (three stages on the 206 MB debian:bookworm from the local
# registry 127.0.0.1:5000, a 2,000-file COPY), in one run. Every tool's store and the contexts
# sit on one fresh ext4 (default options) on a loop device (see bench/lib.sh for why).
# Each of RUNS rounds (default 5) builds with every tool in turn, timed with `date +%s.%N`:
#   cold        empty stores, base pulled from 127.0.0.1:5000 during the build (hoist: a fresh
#               --root; BuildKit: dockerd restarted on an empty data root, so nothing is cached;
#               buildah: `buildah rmi -af` in its own storage);
#   warm        the same build again, nothing changed;
#   incremental one file of the COPYed tree rewritten with new content, then the build again.
# Prints a markdown table of medians and the ratios hoist/BuildKit and hoist/buildah, and the
# goals (hoist/BuildKit: cold <= 0.7x, warm <= 0.5x, incremental <= 0.5x).
# Usage: [RUNS=N] [HOIST=path/to/hoist] bench/build.sh
# Needs root, target/release/hoist (this script does not build it) and setup-peers.sh to have
# run (for the registry, docker.io and buildah).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "usage: [RUNS=N] [HOIST=path] $0" >&2; exit 2 ;;
esac
RUNS=${RUNS:-5}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive integer, got '$RUNS'" >&2; exit 2; }
H=${HOIST:-$PWD/target/release/hoist}
REG=127.0.0.1:5000
BASE=$REG/debian:bookworm
TAG=w1:bench
DOCKER=/usr/bin/docker
MK=../shared/bench/mkworkload.sh
SETUP=../shared/bench/setup-peers.sh
. bench/lib.sh

# Prerequisites: every one checked, each missing one named with what to do.
missing=()
[ "$(id -u)" = 0 ] || missing+=("root (hoist, dockerd and buildah builds need it)")
[ -x "$H" ] || missing+=("hoist binary $H: cargo build --release")
[ -x "$MK" ] || missing+=("$MK")
for t in python3 curl buildah mkfs.ext4; do command -v $t >/dev/null || missing+=("$t: run $SETUP"); done
for t in $DOCKER /usr/sbin/dockerd; do [ -x $t ] || missing+=("$t: run $SETUP"); done
curl -fsS http://$REG/v2/ >/dev/null 2>&1 || missing+=("registry at http://$REG/: run $SETUP")
curl -fsS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json' \
  http://$REG/v2/debian/manifests/bookworm 2>/dev/null || missing+=("$BASE in the registry: run $SETUP")
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/build.sh: missing prerequisites:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
if [ -d .git ] && [ "$(stat -c %Y "$H")" -lt "$(git log -1 --format=%ct)" ]; then
  echo "note: $H is older than the newest commit" >&2
fi

W=$(mktemp -d /tmp/hoist-bench-build.XXXX)
FS=$W/fs
B="buildah --root $FS/buildah --runroot $W/buildah-run --storage-driver overlay"
BENCH_DOCKER_DATA=$FS/docker
# Cleanup runs without errexit: a step that fails (nothing to remove) must not skip the rest.
cleanup() {
  set +e
  $B rm -a >/dev/null 2>&1
  $B rmi -af >/dev/null 2>&1
  bench_done
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bench_fs "$FS"
dockerd_start

# W1, with its FROM on the registry this script checked; one copy of the context per tool, so
# one tool's edits never reach another's builds.
REG=$REG bash "$MK" "$W/wl" >/dev/null
grep -qx "FROM $BASE AS base" "$W/wl/app/Dockerfile" || { echo "W1's Dockerfile does not start FROM $BASE:" >&2; head -1 "$W/wl/app/Dockerfile" >&2; exit 1; }
for t in hoist buildkit buildah; do cp -a "$W/wl/app" "$FS/ctx-$t"; done
EDIT=src/pkg17/mod/file025.txt
mkdir -p "$W/t"

build() {   # build TOOL: one build of TOOL's context, output in $W/out
  case $1 in
    hoist)    "$H" --root "$FS/hoist" build -q --network host -t $TAG "$FS/ctx-hoist" ;;
    buildkit) DOCKER_BUILDKIT=1 $DOCKER build -q --network host -t $TAG "$FS/ctx-buildkit" ;;
    buildah)  $B bud --layers -q --network host --tls-verify=false -t $TAG "$FS/ctx-buildah" ;;
  esac >"$W/out" 2>&1
}
reset() {   # reset TOOL: empty the tool's store before a cold build
  case $1 in
    hoist)    rm -rf "$FS/hoist" ;;
    buildkit) dockerd_reset >/dev/null ;;
    buildah)  $B rm -a >/dev/null 2>&1 || true; $B rmi -af >/dev/null 2>&1 || true ;;
  esac
  # The reset's deletions are flushed before the timed build starts, for every tool alike.
  sync
}
# timed TOOL PHASE ROUND: time one build; on failure print its output and drop the tool.
timed() {
  local s e
  s=$(date +%s.%N)
  if build "$1"; then
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f\n", e - s}' >>"$W/t/$1-$2"
    printf '  %-8s %-11s %8.3f s\n' "$1" "$2" "$(tail -1 "$W/t/$1-$2")" >&2
  else
    {
      echo "FAILED: $1 $2 build (round $3) of W1:"
      tail -40 "$W/out"
    } | tee "$W/t/$1-failed" >&2
    return 1
  fi
}

for i in $(seq "$RUNS"); do
  echo "round $i/$RUNS" >&2
  for t in hoist buildkit buildah; do
    [ ! -e "$W/t/$t-failed" ] || continue
    reset $t
    timed $t cold "$i" || continue
    timed $t warm "$i" || continue
    printf 'round %s of %s, %s\n' "$i" "$t" "$(date +%s.%N)" >"$FS/ctx-$t/$EDIT"
    timed $t incremental "$i" || continue
  done
done

python3 - "$W/t" "$RUNS" <<'PY'
import os, sys, statistics
d, runs = sys.argv[1], sys.argv[2]
tools = ("hoist", "buildkit", "buildah")
goals = {"cold": 0.7, "warm": 0.5, "incremental": 0.5}
def med(t, p):
    f = f"{d}/{t}-{p}"
    if os.path.exists(f"{d}/{t}-failed") or not os.path.exists(f):
        return None
    return statistics.median(float(x) for x in open(f).read().split())
fmt = lambda v: "failed" if v is None else f"{v:.3f} s"
ratio = lambda a, b: "-" if a is None or b is None else f"{a / b:.2f}x"
print(f"W1 build, medians of {runs} runs (hoist, BuildKit of dockerd 20.10, buildah bud --layers), stores on a fresh ext4\n")
print("| workload | hoist | BuildKit | buildah | hoist/BuildKit | hoist/buildah |")
print("|---|---:|---:|---:|---:|---:|")
m = {p: [med(t, p) for t in tools] for p in goals}
for p, (h, k, b) in m.items():
    print(f"| W1 {p} | {fmt(h)} | {fmt(k)} | {fmt(b)} | {ratio(h, k)} | {ratio(h, b)} |")
print()
for p, g in goals.items():
    h, k, _ = m[p]
    verdict = "unknown (a build failed)" if h is None or k is None else ("met" if h / k <= g else "not met")
    print(f"goal {p}: hoist <= {g}x BuildKit: {verdict}" + ("" if h is None or k is None else f" ({h / k:.2f}x)"))
PY
# A tool that failed makes the run fail, after the table (its error is above).
! ls "$W"/t/*-failed >/dev/null 2>&1
