#!/usr/bin/env bash
# The reverse direction judged against llama.cpp itself, for MODEL... (default: smollm2 llama2):
#   smollm2: SmolLM2's Hugging Face folder (smollm2_hf.sh; byte-level BPE);
#   llama2:  sp_checkpoints.sh's Llama 2 checkpoint (SentencePiece vocabulary, random weights).
# The folder -> `hct convert` -> F32 GGUF (the GGUF of run.sh's "Same GGUF" table, equal to
# convert_hf_to_gguf.py's but for the name keys) -> `hct convert GGUF DIR --to hf` -> `hct convert`
# again, which must give the same GGUF byte for byte; then
#   - stock llama.cpp (compat-tests/plugin/host_logits.c, built here against the peers' libllama)
#     evaluates the first 128 tokens of the Jargon slice of that GGUF in one batch, writes every
#     position's logits and its 16 greedy tokens, twice: as llama.cpp runs by default (f16 KV
#     cache) and with attention in float32 (HCT_HOST_F32_ATTENTION=1);
#   - transformers (convert venv, float32, eager attention) runs the exported folder on the same
#     ids; check_hf_vs_llama.py compares (max abs difference, relative L2, cosine, top-1, KL of the
#     softmaxes, greedy tokens) and fails outside the tolerances below.
# Prints one JSON object per model.
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
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(smollm2 llama2)

cc -O2 -std=c11 "$root/compat-tests/plugin/host_logits.c" -I"$HCT_GGML_INCLUDE" -L"$HCT_GGML_LIB" \
    -lllama -lggml-base -Wl,-rpath,"$HCT_GGML_LIB" -o "$work/host_stock"

for m in "${models[@]}"; do
    extra=()
    case "$m" in
        smollm2) folder="$(bash "$here/smollm2_hf.sh")" ;;
        # transformers' fast Llama tokenizer as saved for this checkpoint (legacy=false) adds no
        # dummy prefix before the first word, llama.cpp does: the original folder's tokenizer
        # gives the same ids as the exported one (check_hf_export.py), so this is reported, not
        # failed on; the logits are compared on llama.cpp's ids either way.
        llama2) folder="$(bash "$here/sp_checkpoints.sh")/llama2"; extra=(--tokenizers-may-differ) ;;
        *) echo "unknown model $m (smollm2, llama2)" >&2; exit 2 ;;
    esac
    "$hct" convert "$folder" "$work/$m.gguf" >/dev/null
    "$hct" convert "$work/$m.gguf" "$work/$m-back" --to hf >/dev/null
    "$hct" convert "$work/$m-back" "$work/$m-again.gguf" >/dev/null
    cmp "$work/$m.gguf" "$work/$m-again.gguf" ||
        { echo "$m: the exported folder does not convert back to the same GGUF" >&2; exit 1; }

    "$work/host_stock" "$work/$m.gguf" "$HCT_TEXT_SLICE" $n_tokens "$work/$m.default.bin" $n_generate >"$work/$m.default.json"
    HCT_HOST_F32_ATTENTION=1 "$work/host_stock" "$work/$m.gguf" "$HCT_TEXT_SLICE" $n_tokens "$work/$m.f32.bin" \
        $n_generate >"$work/$m.f32.json"

    # Tolerances, about 20x the measured worst case on x86-64 (compat-tests/results/hf-to-gguf.md):
    # the default run's KL is dominated by the f16 KV cache; with attention in float32 only the
    # order of float32 sums differs.
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice "$HCT_CONVERT_PYTHON" "$here/check_hf_vs_llama.py" \
        "$work/$m-back" "$HCT_TEXT_SLICE" "${extra[@]}" \
        --run llama_default "$work/$m.default.json" "$work/$m.default.bin" 0.99 1e-4 \
        --run llama_f32_attention "$work/$m.f32.json" "$work/$m.f32.bin" 0.99 2e-9 2>"$work/$m.check.log" \
        >"$work/$m.check.json" || { cat "$work/$m.check.json" >&2; tail -20 "$work/$m.check.log" >&2; exit 1; }
    "$HCT_PEERS_PYTHON" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(json.dumps({"model": sys.argv[2], "gguf_of_exported_folder_identical": True, **r}))' \
        "$work/$m.check.json" "$m"
    rm -rf "$work/$m"*
done
