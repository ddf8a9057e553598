#!/usr/bin/env bash
# Whole-model A/B of the searched super-block encoders on SmolLM2-135M (dithered f32 base):
# every weight matrix Q8_0 (ggml's reference quantizer on both sides, byte-identical), the 30
# ffn_down matrices either llama-quantize's IQ4_XS / Q6_K or HCT's iq4_xs_mse_v1 / q6_k_mse_v1
# carried as IQ4_XS / Q6_K in a native GGUF. Checks that only the ffn_down tensors differ, then
# prints stock llama-perplexity's PPL, KL divergence and top-1 agreement against the base
# (peers.sh ppl: 16 chunks of 256 tokens) for each file, one JSON line each.
# Usage: compat-tests/quality/kquant_ppl.sh   (needs the peers built; about 15 min on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
eval "$(bash "$root/compat-tests/peers.sh" env)"
hct="$root/target/release/hct"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
base="$HCT_SMOLLM2_DITHERED"
for pair in iq4_xs:iq4_xs_mse_v1 q6_k:q6_k_mse_v1; do
  t=${pair%%:*} c=${pair##*:}
  nice "$HCT_LLAMA_BIN/llama-quantize" --allow-requantize --pure --tensor-type "ffn_down=$t" \
    "$base" "$work/llama-$t.gguf" Q8_0 2 >&2
  nice "$hct" convert "$base" "$work/hct-$t.hct" --codec ggml_q8_0 \
    --codec-for "blk.*.ffn_down.weight=$c" --threads 2 >&2
  "$hct" convert "$work/hct-$t.hct" "$work/hct-$t.gguf" >&2
  rm -f "$work/hct-$t.hct"
  "$HCT_PEERS_PYTHON" - "$work/llama-$t.gguf" "$work/hct-$t.gguf" <<'PY'
import json, sys
from gguf import GGUFReader
a = {t.name: (t.tensor_type.name, bytes(t.data.tobytes())) for t in GGUFReader(sys.argv[1]).tensors}
b = {t.name: (t.tensor_type.name, bytes(t.data.tobytes())) for t in GGUFReader(sys.argv[2]).tensors}
diff = sorted(n for n in a if a[n] != b.get(n))
other = [n for n in diff if "ffn_down" not in n]
print(json.dumps({"tensors": len(a), "differing": len(diff), "differing_not_ffn_down": other}))
sys.exit(1 if other or set(a) != set(b) else 0)
PY
  for side in llama hct; do
    r=$(nice bash "$root/compat-tests/peers.sh" ppl "$work/$side-$t.gguf" --kl-base "$base")
    "$HCT_PEERS_PYTHON" -c 'import json,sys; r=json.loads(sys.argv[3]); print(json.dumps({"ffn_down": sys.argv[1], "by": sys.argv[2], **{k: r.get(k) for k in ("ppl", "kld_mean", "kld_p99", "top1_agreement")}}))' "$t" "$side" "$r"
  done
  rm -f "$work/llama-$t.gguf" "$work/hct-$t.gguf"
done
