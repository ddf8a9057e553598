#!/usr/bin/env bash
# The founding pipeline's stages, measured: `compat-tests/quality/founding.sh [rows|entropy|all] [ARGS]`.
#   rows:    ternary tq*_absmean_v1, llama.cpp TQ1_0/TQ2_0/Q4_0 and IQ2_XXS/IQ2_XS (importance matrix
#            on a calibration text disjoint from the evaluation text), MiniLM rows, llama-bench
#            pp64/tg32 of SeedLM/VQ through the plugin beside the stock types, ternary encoder speed
#            → compat-tests/results/founding-rows.json and the generated section of founding.md
#            (67 minutes in all, parts run one after another, at load average 13–17 on 2 cores;
#            the bench part, 45 of them, includes converting SmolLM2 to VQ). ARGS go to founding.py, e.g.
#            `--parts iq2,bench --rounds 3` to redo some parts only.
#   entropy: zstd and LZMA over every codec's payload of SmolLM2 and MiniLM
#            → compat-tests/results/founding-entropy.{json,md}   (about 20 minutes)
# `all` runs both with default arguments. Needs the peers built (compat-tests/peers.sh build); the
# patched llama.cpp is built here if missing (compat-tests/plugin/build_patched.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
what="${1:-all}"
[ $# -gt 0 ] && shift
eval "$(bash "$root/compat-tests/peers.sh" env)"
if [ "$what" = rows ] || [ "$what" = ternary ] || [ "$what" = all ]; then
  cargo build --release -p hct-convert -p hct-kernels --locked --manifest-path "$root/Cargo.toml" >&2
  bash "$root/compat-tests/plugin/build_patched.sh" >&2
  eval "$(bash "$root/compat-tests/plugin/build_patched.sh" env)"
  "$HCT_PEERS_PYTHON" "$root/compat-tests/quality/founding.py" "$@"
fi
if [ "$what" = entropy ] || [ "$what" = all ]; then
  cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
  cargo build --release -p hct-format --example entropy_gain --locked --manifest-path "$root/Cargo.toml" >&2
  "$HCT_PEERS_PYTHON" "$root/compat-tests/quality/founding_entropy.py"
fi
