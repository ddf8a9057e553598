#!/usr/bin/env bash
# Issue 5's quality table: `compat-tests/quality/run.sh [--codecs ...]`. Needs the peers built.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
eval "$(bash "$root/compat-tests/peers.sh" env)"
exec "$HCT_PEERS_PYTHON" "$root/compat-tests/quality/run.py" "$@"
