#!/usr/bin/env bash
# The memory-bound benchmark model (make_bench_model.py: llama architecture, ~1.07 B parameters,
# random F16 weights, SmolLM2's tokenizer) and the variants plugin/bench.sh runs, made once and
# cached outside the repository in ${HCT_BENCH_CACHE:-~/.cache/hct-bench}/<sha of the script>/:
#   f16.gguf                      the model as written
#   Q4_1.gguf, Q4_K_M.gguf        stock llama-quantize of f16.gguf
#   <codec>.plugin.gguf           hct convert --codec <codec>, then --gguf-mode plugin
#                                 (int4_g32_fp16_v1, int4_opt_v1)
#
#   bench_model.sh            make what is missing; print the directory
# About 6.5 GB of disk; several minutes on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PEERS_SH="${HCT_PEERS_SH:-$root/compat-tests/peers.sh}"
eval "$(bash "$PEERS_SH" env)"
key="$(sha256sum <"$here/make_bench_model.py" | cut -c1-16)"
dir="${HCT_BENCH_CACHE:-$HOME/.cache/hct-bench}/llama-1b-random-$key"
mkdir -p "$dir"
log() { printf '[bench_model %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
hct="$root/target/release/hct"
[[ -x "$hct" ]] || cargo build --release --locked -p hct-convert --manifest-path "$root/Cargo.toml" >&2

if [[ ! -s "$dir/f16.gguf" ]]; then
    log "writing the F16 model"
    "$HCT_PEERS_PYTHON" "$here/make_bench_model.py" "$HCT_SMOLLM2_F32" "$dir/f16.gguf" >&2
fi
for t in Q4_1 Q4_K_M; do
    if [[ ! -s "$dir/$t.gguf" ]]; then
        log "llama-quantize $t"
        "$HCT_LLAMA_BIN/llama-quantize" "$dir/f16.gguf" "$dir/$t.gguf.tmp" "$t" 2 >"$dir/$t.log" 2>&1 ||
            { tail -20 "$dir/$t.log" >&2; exit 1; }
        mv "$dir/$t.gguf.tmp" "$dir/$t.gguf"
    fi
done
for codec in int4_g32_fp16_v1 int4_opt_v1; do
    if [[ ! -s "$dir/$codec.plugin.gguf" ]]; then
        log "hct convert --codec $codec, then the plugin GGUF"
        "$hct" convert "$dir/f16.gguf" "$dir/$codec.hct" --codec "$codec" --threads 2 >"$dir/$codec.log" 2>&1 ||
            { tail -20 "$dir/$codec.log" >&2; exit 1; }
        "$hct" convert "$dir/$codec.hct" "$dir/$codec.plugin.gguf" --gguf-mode plugin >>"$dir/$codec.log" 2>&1 ||
            { tail -20 "$dir/$codec.log" >&2; exit 1; }
        rm -f "$dir/$codec.hct"
    fi
done
echo "$dir"
