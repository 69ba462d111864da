#!/usr/bin/env bash
# Passes all of hoist's tests on a fresh machine: installs the Debian packages the tests use
# (peer tools and busybox-static) when missing, checks formatting and lints, and runs every test
# in the workspace, the conformance corpora included. Tests that need root or a peer tool skip
# when run by hand without them, and fail under CI=true.
set -euo pipefail
# No stdin: cargo's compiler probes read it, and tests drive terminals of their own.
exec </dev/null
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace -- --test-threads=2
