#!/usr/bin/env bash
# Encoder throughput, whole process, same machine, same run: `hct convert --codec X` of the
# F32 SmolLM2 GGUF against `llama-quantize` of the same file to Q4_1 and Q4_K_M, at 1 and 2
# threads. Prints JSON lines (elements/s over all weights). Needs the peers built.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="${HCT_PEERS_SH:-$root/compat-tests/peers.sh}"
eval "$(bash "$peers" env)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
src="$HCT_SMOLLM2_F32"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
elements=$("$hct" inspect "$src" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['elements'])")
cat "$src" > /dev/null
timeit() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); python3 -c "print($t1-$t0)"; }
report() { python3 -c "import json; print(json.dumps({'tool': '$1', 'target': '$2', 'threads': $3, 'seconds': round($4, 2), 'elements_per_s': round($elements/$4)}))"; }
echo "{\"load_average\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"elements\": $elements}"
for threads in 1 2; do
  for codec in int4_g8_fp16_v1 int4_g16_fp16_v1 int4_g32_fp16_v1 int4_opt_v1; do
    s=$(timeit "$hct" convert "$src" "$work/o.hct" --codec "$codec" --codec-for token_embd.weight=ggml_q8_0 --threads "$threads")
    report hct "$codec" "$threads" "$s"
  done
  for t in Q4_1 Q4_K_M; do
    s=$(timeit "$HCT_LLAMA_BIN/llama-quantize" "$src" "$work/o.gguf" "$t" "$threads")
    report llama-quantize "$t" "$threads" "$s"
  done
done
