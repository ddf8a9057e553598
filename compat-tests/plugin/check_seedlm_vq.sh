#!/usr/bin/env bash
# The plugin chain for the SeedLM and vector-quantization codecs (SPEC.md §7.9, §7.10), in the
# style of run.sh and with its tools: an HCT file -> plugin GGUF -> the patched llama.cpp with
# libhct, against the same HCT file decoded to F32 and run by stock llama.cpp.
#   - reference mode (libhct's to_float only, ggml's own F32 matmul) must give bit-identical
#     embeddings (MiniLM) and perplexity/KL results (SmolLM2) to the decoded F32 file;
#   - fast mode (libhct's vec_dot or multi-row entry against Q8_0 activations) must be called and stay close.
# Codecs are data: CODECS below (MiniLM), SMOL_CODECS (SmolLM2; the encoders are slow, so CI
# runs the cheapest). About 3 minutes on 2 idle cores. Prints one JSON object per check and
# exits non-zero if any fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PEERS_SH="${HCT_PEERS_SH:-$root/compat-tests/peers.sh}"
eval "$(bash "$PEERS_SH" env)"
peers_py="$(dirname "$PEERS_SH")/peers.py"
py="$HCT_PEERS_PYTHON"
check="$py $here/check_plugin.py"
CODECS=(${HCT_SEEDVQ_CODECS-seedlm_c8p3_s8_v1 seedlm_c8p3_s12_v1 vq8_r2x256_g32_v1})
SMOL_CODECS=(${HCT_SEEDVQ_SMOL_CODECS-seedlm_c8p3_s8_v1})

bash "$here/build_patched.sh" >&2
eval "$(bash "$here/build_patched.sh" env)"
cargo build --release --locked -p hct-convert -p hct-kernels --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
libhct="$root/target/release/libhct.so"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for mode in fast reference; do
    mkdir -p "$work/bin-$mode"
    for tool in llama-perplexity llama-embedding; do
        printf '#!/bin/sh\nLD_PRELOAD=%q HCT_PLUGIN_MODE=%s exec %q "$@"\n' \
            "$libhct" "$mode" "$HCT_LLAMA_PATCHED_BIN/$tool" >"$work/bin-$mode/$tool"
        chmod +x "$work/bin-$mode/$tool"
    done
done
failures=()
result() {  # NAME JSON PYTHON-CONDITION on r
    local out
    out=$($py -c '
import json, sys
doc = json.loads(sys.argv[2]); ok = bool(eval(" ".join(sys.argv[3].split()), {}, {"r": doc}))
print(json.dumps({"check": sys.argv[1], **doc, "ok": ok}))' "$1" "$2" "$3")
    echo "$out"
    [[ "$out" == *'"ok": true}' ]] || failures+=("$1")
}

for codec in "${CODECS[@]}"; do
    m="$work/minilm.$codec"
    "$hct" convert "$HCT_MINILM_F32" "$m.hct" --codec "$codec" --keep token_types.weight --keep position_embd.weight >&2
    "$hct" convert "$m.hct" "$m.plugin.gguf" --gguf-mode plugin >&2
    "$hct" convert "$m.hct" "$m.f32.gguf" --gguf-mode decoded --dtype f32 >&2
    bash "$PEERS_SH" embed "$m.f32.gguf" --vectors >"$work/e_f32.json"
    HCT_LLAMA_BIN="$work/bin-reference" "$py" "$peers_py" embed "$m.plugin.gguf" --vectors >"$work/e_ref.json"
    HCT_LLAMA_BIN="$work/bin-fast" HCT_PLUGIN_STATS="$work/stats.json" "$py" "$peers_py" embed "$m.plugin.gguf" --vectors >"$work/e_fast.json"
    doc=$($py -c '
import json, sys
print(json.dumps({"reference_vs_f32": json.loads(sys.argv[1]), "fast_vs_f32": json.loads(sys.argv[2]),
                  "fast_counts": json.load(open(sys.argv[3]))["codecs"][sys.argv[4]]}))' \
        "$($check embeddings "$work/e_f32.json" "$work/e_ref.json")" \
        "$($check embeddings "$work/e_f32.json" "$work/e_fast.json")" "$work/stats.json" "$codec")
    result "embeddings-minilm-$codec" "$doc" \
        'r["reference_vs_f32"]["identical"] and r["fast_vs_f32"]["min_cosine"] > 0.99 and r["fast_counts"]["vec_dot_calls"] + r["fast_counts"]["gemm_dots"] > 0'
    rm -f "$m".*
done

for codec in "${SMOL_CODECS[@]}"; do
    s="$work/smol.$codec"
    "$hct" convert "$HCT_SMOLLM2_F32" "$s.hct" --codec "$codec" --codec-for token_embd.weight=f32 >&2
    "$hct" convert "$s.hct" "$s.plugin.gguf" --gguf-mode plugin >&2
    "$hct" convert "$s.hct" "$s.f32.gguf" --gguf-mode decoded --dtype f32 >&2
    f32=$(bash "$PEERS_SH" ppl "$s.f32.gguf" --kl-base "$s.f32.gguf")
    ref=$(HCT_LLAMA_BIN="$work/bin-reference" "$py" "$peers_py" ppl "$s.plugin.gguf" --kl-base "$s.f32.gguf")
    fast=$(HCT_LLAMA_BIN="$work/bin-fast" HCT_PLUGIN_STATS="$work/stats.json" "$py" "$peers_py" ppl "$s.plugin.gguf" --kl-base "$s.f32.gguf")
    doc=$($py -c '
import json, sys
f32, ref, fast = (json.loads(a) for a in sys.argv[1:4])
keys = ("ppl", "kld_mean", "kld_max", "top1_agreement")
print(json.dumps({"decoded_f32_stock": {k: f32[k] for k in keys}, "plugin_reference": {k: ref[k] for k in keys},
                  "plugin_fast": {k: fast[k] for k in keys},
                  "fast_dots": (lambda c: c["vec_dot_calls"] + c["gemm_dots"])(json.load(open(sys.argv[4]))["codecs"][sys.argv[5]])}))' \
        "$f32" "$ref" "$fast" "$work/stats.json" "$codec")
    result "perplexity-smollm2-$codec" "$doc" \
        'r["plugin_reference"] == r["decoded_f32_stock"] and r["fast_dots"] > 0
         and abs(r["plugin_fast"]["ppl"] / r["decoded_f32_stock"]["ppl"] - 1) < 0.05'
    rm -f "$s".*
done

if ((${#failures[@]})); then
    echo "check_seedlm_vq.sh: FAILED: ${failures[*]}" >&2
    exit 1
fi
echo "check_seedlm_vq.sh: all checks passed" >&2
