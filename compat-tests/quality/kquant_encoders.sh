#!/usr/bin/env bash
# Searched super-block encoders (iq4_xs_mse_v1, q6_k_mse_v1) beside llama-quantize's IQ4_XS and
# Q6_K, squared error per tensor. Needs the peers built (compat-tests/peers.sh build).
# Usage: compat-tests/quality/kquant_encoders.sh > compat-tests/results/kquant-encoders.md
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
eval "$(bash "$root/compat-tests/peers.sh" env)"
exec nice "$HCT_PEERS_PYTHON" "$root/compat-tests/quality/kquant_encoders.py" "$@"
