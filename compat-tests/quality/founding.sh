#!/usr/bin/env bash
# The founding pipeline's ternary stage beside llama.cpp's low-bit types, in one run:
# `compat-tests/quality/founding.sh` writes compat-tests/results/founding-ternary.{json,md}.
# Needs the peers built (compat-tests/peers.sh build). About 40 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
eval "$(bash "$root/compat-tests/peers.sh" env)"
exec "$HCT_PEERS_PYTHON" "$root/compat-tests/quality/founding.py" "$@"
