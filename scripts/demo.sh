#!/usr/bin/env bash
# The main job on a fresh machine, offline, on the default local store (/var/lib/hoist as root):
# build hoist, import a busybox base, build the sample image from testdata/sample/app (two
# stages, a heredoc RUN, COPY --from), list it, show its history, save it as a docker archive,
# load it back, export its root filesystem, and run it in the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v busybox >/dev/null 2>&1 || bash scripts/deps.sh
cargo build --release --quiet
hoist=target/release/hoist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash testdata/sample/make-rootfs.sh "$work/rootfs.tar"
$hoist import "$work/rootfs.tar" hoist-sample-base:latest --change 'ENV PATH=/bin'
$hoist build --progress plain -t hoist-sample:latest testdata/sample/app
$hoist images hoist-sample
$hoist history hoist-sample
$hoist save -o "$work/hoist-sample.tar" hoist-sample:latest
$hoist load -i "$work/hoist-sample.tar"
$hoist export hoist-sample -o "$work/rootfs-export.tar"
$hoist run --rm hoist-sample:latest
$hoist run --rm --memory 64m --pids-limit 64 hoist-sample /bin/sh -c 'echo "PID $$ in $(hostname), $(ls /proc | grep -c "^[0-9]") process(es) visible"'
echo "exported rootfs: $(tar -tf "$work/rootfs-export.tar" | wc -l) entries"
