# Shared by the benchmark scripts (source it): a clean filesystem for every tool's store, and a
# dockerd of the benchmark's own that can be reset to truly empty.
#
# Why: this VM's root filesystem is ext4 mounted with `discard`, so the gigabytes one round
# writes and deletes slow the next round's writes (hoist's cold build grew from 2.8 s to 11 s
# over four rounds), and `docker builder prune -af` leaves the base's blobs in dockerd's content
# store, so only BuildKit's first "cold" build downloaded anything. Here every tool's store sits
# on one fresh ext4 with default options on a loop device, and a cold BuildKit or docker run
# starts a dockerd on an empty data root.

# bench_fs DIR [SIZE]: mounts a fresh ext4 (default options) of SIZE (default 16G, sparse) at DIR.
bench_fs() {
  local dir=$1 size=${2:-16G}
  mkdir -p "$dir"
  truncate -s "$size" "$dir.img"
  # Inode tables and journal initialised now, not by a background thread during the runs.
  mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$dir.img"
  mount -o loop "$dir.img" "$dir"
}

# bench_fs_done DIR: unmounts what bench_fs mounted (and anything below it) and deletes it.
bench_fs_done() {
  local dir=$1
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  umount -l "$dir" 2>/dev/null
  rm -f "$dir.img"
}

# bench_done: the end of a benchmark's cleanup: stops the private dockerd, unmounts and deletes
# the filesystem at $FS and the work dir $W.
bench_done() {
  dockerd_stop
  bench_fs_done "$FS"
  rm -rf "$W"
}

# The private dockerd: its socket and runtime state under $BENCH_DOCKER_RUN (a short path: unix
# socket paths are limited to 107 bytes), its data root at $BENCH_DOCKER_DATA.
BENCH_DOCKER_RUN=${BENCH_DOCKER_RUN:-/tmp/hoist-bench-dockerd}
BENCH_DOCKER_DATA=${BENCH_DOCKER_DATA:-}

# dockerd_start: starts the private dockerd on $BENCH_DOCKER_DATA (created empty when missing)
# and points DOCKER_HOST at it.
dockerd_start() {
  mkdir -p "$BENCH_DOCKER_RUN" "$BENCH_DOCKER_DATA"
  /usr/sbin/dockerd --host "unix://$BENCH_DOCKER_RUN/d.sock" --data-root "$BENCH_DOCKER_DATA" \
    --exec-root "$BENCH_DOCKER_RUN/exec" --pidfile "$BENCH_DOCKER_RUN/d.pid" \
    --bridge=none --iptables=false --ip-masq=false >>"$BENCH_DOCKER_RUN/dockerd.log" 2>&1 &
  export DOCKER_HOST=unix://$BENCH_DOCKER_RUN/d.sock
  for _ in $(seq 150); do
    /usr/bin/docker version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the benchmark's dockerd did not start; its log:" >&2
  tail -20 "$BENCH_DOCKER_RUN/dockerd.log" >&2
  return 1
}

# dockerd_stop: stops the private dockerd (and its containerd) and waits for them.
dockerd_stop() {
  local pid cpid
  pid=$(cat "$BENCH_DOCKER_RUN/d.pid" 2>/dev/null) || return 0
  cpid=$(cat "$BENCH_DOCKER_RUN/exec/containerd/containerd.pid" 2>/dev/null || true)
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    if kill -0 "$pid" 2>/dev/null || { [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; }; then
      sleep 0.1
    else
      break
    fi
  done
  awk -v d="$BENCH_DOCKER_RUN/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -f "$BENCH_DOCKER_RUN/d.pid"
}

# dockerd_reset: the private dockerd restarted on an empty data root (nothing cached anywhere).
dockerd_reset() {
  dockerd_stop
  awk -v d="$BENCH_DOCKER_DATA/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$BENCH_DOCKER_DATA"
  dockerd_start
}
