#!/usr/bin/env bash
# The founding pipeline's stages, measured: `compat-tests/quality/founding.sh [ternary|entropy|all]`.
#   ternary: tq*_absmean_v1 beside llama.cpp's TQ1_0/TQ2_0/IQ2_XXS/IQ2_XS/Q4_0
#            → compat-tests/results/founding-ternary.{json,md}   (about 40 minutes on 2 cores)
#   entropy: zstd and LZMA over every codec's payload of SmolLM2 and MiniLM
#            → compat-tests/results/founding-entropy.{json,md}   (about 20 minutes)
# Needs the peers built (compat-tests/peers.sh build).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
what="${1:-all}"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
eval "$(bash "$root/compat-tests/peers.sh" env)"
if [ "$what" = ternary ] || [ "$what" = all ]; then
  "$HCT_PEERS_PYTHON" "$root/compat-tests/quality/founding.py"
fi
if [ "$what" = entropy ] || [ "$what" = all ]; then
  cargo build --release -p hct-format --example entropy_gain --locked --manifest-path "$root/Cargo.toml" >&2
  "$HCT_PEERS_PYTHON" "$root/compat-tests/quality/founding_entropy.py"
fi
