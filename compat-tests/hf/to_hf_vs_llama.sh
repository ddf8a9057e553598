#!/usr/bin/env bash
# The reverse direction judged against llama.cpp itself: SmolLM2's Hugging Face folder
# (smollm2_hf.sh) -> `hct convert` -> F32 GGUF (the GGUF of run.sh's "Same GGUF" table, equal to
# convert_hf_to_gguf.py's but for the name keys) -> `hct convert GGUF DIR --to hf`; then
#   - stock llama.cpp (compat-tests/plugin/host_logits.c, built here against the peers' libllama)
#     evaluates the first 128 tokens of the Jargon slice of that GGUF in one batch, writes every
#     position's logits and its 16 greedy tokens, twice: as llama.cpp runs by default (f16 KV
#     cache) and with attention in float32 (HCT_HOST_F32_ATTENTION=1);
#   - transformers (convert venv, float32, eager attention) runs the exported folder on the same
#     ids; check_hf_vs_llama.py compares (max abs difference, relative L2, cosine, top-1, KL of the
#     softmaxes, greedy tokens) and fails outside the tolerances below.
# Prints one JSON object. Warm (folder and peers built): about 40 s on a quiet 2-core machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/compat-tests/hf"
eval "$(bash "$root/compat-tests/peers.sh" env)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
n_tokens=128
n_generate=16

smol_hf="$(bash "$here/smollm2_hf.sh")"
"$hct" convert "$smol_hf" "$work/smollm2.gguf" >/dev/null
"$hct" convert "$work/smollm2.gguf" "$work/back" --to hf >/dev/null

cc -O2 -std=c11 "$root/compat-tests/plugin/host_logits.c" -I"$HCT_GGML_INCLUDE" -L"$HCT_GGML_LIB" \
    -lllama -lggml-base -Wl,-rpath,"$HCT_GGML_LIB" -o "$work/host_stock"
"$work/host_stock" "$work/smollm2.gguf" "$HCT_TEXT_SLICE" $n_tokens "$work/default.bin" $n_generate >"$work/default.json"
HCT_HOST_F32_ATTENTION=1 "$work/host_stock" "$work/smollm2.gguf" "$HCT_TEXT_SLICE" $n_tokens "$work/f32.bin" \
    $n_generate >"$work/f32.json"

# Tolerances, about 20x the measured worst case on x86-64 (compat-tests/results/hf-to-gguf.md):
# the default run's KL is dominated by the f16 KV cache; with attention in float32 only the
# order of float32 sums differs.
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice "$HCT_CONVERT_PYTHON" "$here/check_hf_vs_llama.py" \
    "$work/back" "$HCT_TEXT_SLICE" \
    --run llama_default "$work/default.json" "$work/default.bin" 0.99 1e-4 \
    --run llama_f32_attention "$work/f32.json" "$work/f32.bin" 0.99 2e-9 2>"$work/check.log" ||
    { tail -20 "$work/check.log" >&2; exit 1; }
