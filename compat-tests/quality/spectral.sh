#!/usr/bin/env bash
# hct_v3 beside int4 and llama.cpp, with the founding claims: `compat-tests/quality/spectral.sh`.
# Needs the peers built (compat-tests/peers.sh build). The plot needs matplotlib, installed from
# PyPI into target/plot-venv on first use (as flagship.sh does).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
if [ ! -x "$root/target/plot-venv/bin/python" ]; then
  python3 -m venv "$root/target/plot-venv"
  "$root/target/plot-venv/bin/pip" install -q matplotlib==3.9.2 >&2
fi
eval "$(bash "$root/compat-tests/peers.sh" env)"
exec "$HCT_PEERS_PYTHON" "$root/compat-tests/quality/spectral.py" "$@"
