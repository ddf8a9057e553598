#!/usr/bin/env bash
# The plugin chain for the SeedLM and vector-quantization codecs (SPEC.md §7.9, §7.10), in the
# style of run.sh and with its tools: an HCT file -> plugin GGUF -> the patched llama.cpp with
# libhct, against the same HCT file decoded to F32 and run by stock llama.cpp.
#   - reference mode (libhct's to_float only, ggml's own F32 matmul) must give bit-identical
#     embeddings (MiniLM) and logits of 256 positions (SmolLM2) to the decoded F32 file;
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

# SmolLM2: raw logits of 256 positions from one batch (host_logits.c; cheaper than a perplexity
# run, which the slow portable SeedLM kernels would make the longest step of CI). The host
# registers libhct itself, and libhct's exit report counts the fast mode's dot products.
cc -O2 -std=c11 "$here/host_logits.c" -I"$HCT_GGML_INCLUDE" -L"$HCT_GGML_LIB" -lllama -lggml-base \
    -Wl,-rpath,"$HCT_GGML_LIB" -o "$work/host_stock"
cc -O2 -std=c11 -DHCT_HOST_REGISTER "$here/host_logits.c" -I"$HCT_LLAMA_PATCHED_INCLUDE" -I"$root/ggml-kernels/include" \
    -L"$HCT_LLAMA_PATCHED/lib" -lllama -lggml-base -L"$(dirname "$libhct")" -lhct \
    -Wl,-rpath,"$HCT_LLAMA_PATCHED/lib" -Wl,-rpath,"$(dirname "$libhct")" -o "$work/host_patched"
for codec in "${SMOL_CODECS[@]}"; do
    s="$work/smol.$codec"
    # The token embedding stays f32: it is also the tied output matrix, which would otherwise run
    # as a stock ggml type in the plugin file and as F32 in the decoded one.
    "$hct" convert "$HCT_SMOLLM2_F32" "$s.hct" --codec "$codec" --codec-for token_embd.weight=f32 >&2
    "$hct" convert "$s.hct" "$s.plugin.gguf" --gguf-mode plugin >&2
    "$hct" convert "$s.hct" "$s.f32.gguf" --gguf-mode decoded --dtype f32 >&2
    g_f32=$("$work/host_stock" "$s.f32.gguf" "$HCT_TEXT_SLICE" 256 "$work/l_f32.bin" 2)
    g_ref=$(HCT_GGML_AUTOREGISTER=0 HCT_PLUGIN_MODE=reference "$work/host_patched" "$s.plugin.gguf" "$HCT_TEXT_SLICE" 256 "$work/l_ref.bin" 2)
    g_fast=$(HCT_GGML_AUTOREGISTER=0 HCT_PLUGIN_MODE=fast HCT_PLUGIN_STATS="$work/stats.json" \
        "$work/host_patched" "$s.plugin.gguf" "$HCT_TEXT_SLICE" 256 "$work/l_fast.bin" 2)
    doc=$($py -c '
import json, sys
ref, fast, g_f32, g_ref = (json.loads(a) for a in sys.argv[1:5])
counts = json.load(open(sys.argv[5]))["codecs"][sys.argv[6]]
print(json.dumps({"reference_vs_f32": ref, "fast_vs_f32": fast, "tokens_f32": g_f32["generated"],
                  "tokens_reference": g_ref["generated"], "fast_dots": counts["vec_dot_calls"] + counts["gemm_dots"]}))' \
        "$($check logits "$work/l_f32.bin" "$work/l_ref.bin" 49152)" "$($check logits "$work/l_f32.bin" "$work/l_fast.bin" 49152)" \
        "$g_f32" "$g_ref" "$work/stats.json" "$codec")
    result "logits-smollm2-$codec" "$doc" \
        'r["reference_vs_f32"]["bit_identical"] and r["tokens_reference"] == r["tokens_f32"] and r["fast_dots"] > 0
         and r["fast_vs_f32"]["kl_mean"] < 0.1 and r["fast_vs_f32"]["top1_agreement"] > 0.8'
    rm -f "$s".* "$work"/l_*.bin
done

if ((${#failures[@]})); then
    echo "check_seedlm_vq.sh: FAILED: ${failures[*]}" >&2
    exit 1
fi
echo "check_seedlm_vq.sh: all checks passed" >&2
