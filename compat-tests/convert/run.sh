#!/usr/bin/env bash
# Issue 4's peer checks: conversions judged by llama.cpp's gguf-py, PyPI safetensors and
# stock llama.cpp, on the real models of the peers cache. Needs `compat-tests/peers.sh
# fetch build` first (ci.sh does it). Exits non-zero on any difference.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
eval "$(bash "$root/compat-tests/peers.sh" env)"
py="$HCT_PEERS_PYTHON"
check="$py $root/compat-tests/convert/check_conversions.py"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
work="${HCT_CONVERT_WORK:-$(mktemp -d)}"
trap '[ -n "${HCT_CONVERT_WORK:-}" ] || rm -rf "$work"' EXIT
say() { printf '\n== %s\n' "$*" >&2; }

say "SmolLM2 Q4_1 GGUF → HCT (1 and 2 threads) → GGUF"
$hct convert "$HCT_SMOLLM2_Q4_1" "$work/smol.t1.hct" --threads 1 >&2
$hct convert "$HCT_SMOLLM2_Q4_1" "$work/smol.t2.hct" --threads 2 >&2
cmp "$work/smol.t1.hct" "$work/smol.t2.hct"
$hct verify "$work/smol.t1.hct" >&2
$hct convert "$work/smol.t1.hct" "$work/smol-rt.gguf" >&2
$check gguf-same "$HCT_SMOLLM2_Q4_1" "$work/smol-rt.gguf"
if cmp -s "$HCT_SMOLLM2_Q4_1" "$work/smol-rt.gguf"; then echo '{"gguf_round_trip_byte_identical": true}'; fi

say "stock llama-perplexity on the original and on the round-tripped GGUF"
a=$(bash "$root/compat-tests/peers.sh" ppl "$HCT_SMOLLM2_Q4_1")
b=$(bash "$root/compat-tests/peers.sh" ppl "$work/smol-rt.gguf")
$py - "$a" "$b" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"ppl_original": a["ppl"], "ppl_round_trip": b["ppl"], "equal": a["ppl"] == b["ppl"]}))
sys.exit(0 if a["ppl"] == b["ppl"] else 1)
PY

say "SmolLM2 HCT → safetensors --dtype f32 vs gguf-py's dequantization"
$hct convert "$work/smol.t1.hct" "$work/smol-f32.safetensors" --dtype f32 >&2
$check st-vs-gguf-dequant "$work/smol-f32.safetensors" "$HCT_SMOLLM2_Q4_1"

say "MiniLM F32 safetensors → HCT → safetensors"
$hct convert "$HCT_MINILM_HF" "$work/minilm.hct" >&2
$hct convert "$work/minilm.hct" "$work/minilm-rt.safetensors" >&2
$check st-same "$HCT_MINILM_HF/model.safetensors" "$work/minilm-rt.safetensors"
say "int4 codecs: 1 and 2 encoder threads give byte-identical files (MiniLM; SmolLM2 in quality/run.py)"
for codec in int4_g8_fp16_v1 int4_g16_fp16_v1 int4_g32_fp16_v1 int4_opt_v1; do
  $hct convert "$work/minilm.hct" "$work/minilm.$codec.t1.hct" --codec "$codec" --threads 1 >/dev/null
  $hct convert "$work/minilm.hct" "$work/minilm.$codec.t2.hct" --codec "$codec" --threads 2 >/dev/null
  cmp "$work/minilm.$codec.t1.hct" "$work/minilm.$codec.t2.hct"
  echo "{\"codec\": \"$codec\", \"threads_1_vs_2_identical\": true, \"sha256\": \"$(sha256sum "$work/minilm.$codec.t1.hct" | cut -c1-16)\"}"
  rm -f "$work/minilm.$codec.t1.hct" "$work/minilm.$codec.t2.hct"
done
echo "convert checks: all passed" >&2
