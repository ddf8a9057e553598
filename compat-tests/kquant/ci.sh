#!/usr/bin/env bash
# Peer checks of the searched super-block encoders (SPEC.md §7.5.5), about a minute warm:
#  1. the numpy reimplementation reproduces their golden vectors and PyPI gguf decodes them;
#  2. SmolLM2's ffn_down matrices (rows of 1536) of layers 0–1 encoded as iq4_xs_mse_v1 and of
#     layers 2–3 as q6_k_mse_v1 (four matrices keep the encoding under half a minute) export to
#     a native GGUF as IQ4_XS / Q6_K, gguf-py's dequantizers give exactly what HCT decodes, and
#     stock llama-perplexity runs the file with a perplexity within 2% of the f32 base on the
#     same text (4 chunks of 256 tokens).
# Needs the peers built (compat-tests/peers.sh build). Exits non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
eval "$(bash "$root/compat-tests/peers.sh" env)"
py="$HCT_PEERS_PYTHON"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
say() { printf '\n== %s\n' "$*" >&2; }

say "searched super-block golden vectors: numpy from SPEC.md, decoded by gguf"
"$py" "$root/compat-tests/scripts/check_searched_super_vectors.py"

say "SmolLM2 ffn_down 0–1 as iq4_xs_mse_v1, 2–3 as q6_k_mse_v1 → native GGUF → stock llama.cpp"
base="$HCT_SMOLLM2_DITHERED"
$hct convert "$base" "$work/k.hct" --threads 2 \
  --codec-for 'blk.0.ffn_down.weight=iq4_xs_mse_v1' --codec-for 'blk.1.ffn_down.weight=iq4_xs_mse_v1' \
  --codec-for 'blk.2.ffn_down.weight=q6_k_mse_v1' --codec-for 'blk.3.ffn_down.weight=q6_k_mse_v1' >&2
$hct convert "$work/k.hct" "$work/k.gguf" >&2
"$py" - "$work/k.gguf" <<'PY'
import json, sys
from gguf import GGUFReader
types = {}
for t in GGUFReader(sys.argv[1]).tensors:
    if t.name.endswith("ffn_down.weight"):
        layer = int(t.name.split(".")[1])
        want = "IQ4_XS" if layer < 2 else "Q6_K" if layer < 4 else "F32"
        if t.tensor_type.name != want:
            sys.exit(f"{t.name}: GGUF type {t.tensor_type.name}, expected {want}")
        types[want] = types.get(want, 0) + 1
if types != {"IQ4_XS": 2, "Q6_K": 2, "F32": 26}:
    sys.exit(f"ffn_down types {types}, expected 2 IQ4_XS, 2 Q6_K, 26 F32")
print(json.dumps({"ffn_down_types": types}))
PY
$hct convert "$work/k.hct" "$work/k.safetensors" --dtype f32 >&2
rm -f "$work/k.hct"
"$py" "$root/compat-tests/convert/check_conversions.py" st-vs-gguf-dequant "$work/k.safetensors" "$work/k.gguf"
rm -f "$work/k.safetensors"
ppl() {
  "$HCT_LLAMA_BIN/llama-perplexity" -m "$1" -f "$HCT_TEXT_SLICE" -c 256 --chunks 4 -t 2 2>&1 \
    | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p'
}
a=$(ppl "$base")
b=$(ppl "$work/k.gguf")
"$py" - "$a" "$b" <<'PY'
import json, sys
a, b = float(sys.argv[1]), float(sys.argv[2])
ok = b < 1.02 * a
print(json.dumps({"ppl_f32_base_4_chunks": a, "ppl_ffn_down_iq4_xs_q6_k": b, "within_2_percent": ok}))
sys.exit(0 if ok else 1)
PY
echo "searched super-block checks: all passed" >&2
