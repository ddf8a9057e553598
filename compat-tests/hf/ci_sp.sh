#!/usr/bin/env bash
# CI's share of the SentencePiece checks (compat-tests/hf/run.sh does the full ones, with
# perplexity, logits and timings): for the Gemma 2, Gemma 3 and Llama 2 checkpoints of
# sp_checkpoints.sh, `hct convert FOLDER` must give the GGUF llama.cpp's convert_hf_to_gguf.py
# gives (same keys and values but general.name, same tensors byte for byte), and stock
# llama.cpp must load hct's and generate from it. The reference GGUFs are made once per
# llama.cpp build and cached beside the checkpoints. Warm: about 15 s.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/compat-tests/hf"
eval "$(bash "$root/compat-tests/peers.sh" env)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
sp="$(bash "$here/sp_checkpoints.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for m in gemma2 gemma3 llama2; do
    ref="$sp/$m.convert_hf_to_gguf-$HCT_PEERS_BUILD_KEY.gguf"
    if [[ ! -f "$ref" ]]; then
        HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice "$HCT_CONVERT_PYTHON" "$HCT_LLAMA_SRC/convert_hf_to_gguf.py" \
            "$sp/$m" --outtype f32 --outfile "$ref.tmp" >"$work/$m.py.log" 2>&1 || { tail -20 "$work/$m.py.log" >&2; exit 1; }
        mv "$ref.tmp" "$ref"
    fi
    "$hct" convert "$sp/$m" "$work/$m.gguf" >/dev/null
    "$HCT_PEERS_PYTHON" "$here/compare_gguf.py" "$ref" "$work/$m.gguf" --allow-key-prefix general.name >"$work/$m.json" ||
        { cat "$work/$m.json" >&2; echo "$m: hct's GGUF differs from convert_hf_to_gguf.py's" >&2; exit 1; }
    "$HCT_LLAMA_BIN/llama-simple" -m "$work/$m.gguf" -n 8 "The hacker said" >"$work/$m.txt" 2>"$work/$m.log" ||
        { tail -20 "$work/$m.log" >&2; exit 1; }
    "$HCT_PEERS_PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({"model": sys.argv[2], "keys_equal": r["keys_equal"], "tensors_identical": r["tensors_identical"], "llama_simple": open(sys.argv[3], errors="replace").read()[:60]}))' \
        "$work/$m.json" "$m" "$work/$m.txt"
done
