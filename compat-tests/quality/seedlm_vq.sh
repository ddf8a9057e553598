#!/usr/bin/env bash
# SeedLM and vector quantization beside llama.cpp's types: `compat-tests/quality/seedlm_vq.sh`.
# Needs the peers built (compat-tests/peers.sh build) and the patched llama.cpp
# (compat-tests/plugin/build_patched.sh). Not part of CI: the encoders are slow by design (an
# exhaustive seed search, a codebook search) and the whole run takes about an hour on 2 cores.
# Writes compat-tests/results/seedlm_vq.{json,md}; options: see seedlm_vq.py.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cargo build --release --locked -p hct-convert -p hct-kernels --manifest-path "$root/Cargo.toml" >&2
eval "$(bash "$root/compat-tests/peers.sh" env)"
bash "$root/compat-tests/plugin/build_patched.sh" bench >&2  # llama-bench too
eval "$(bash "$root/compat-tests/plugin/build_patched.sh" env)"
exec "$HCT_PEERS_PYTHON" "$root/compat-tests/quality/seedlm_vq.py" "$@"
