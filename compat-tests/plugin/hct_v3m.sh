#!/usr/bin/env bash
# hct_v3m (mixed-precision spectral tiles, SPEC.md §7.6.6) through the plugin chain: SmolLM2 F32
# -> HCT (every weight matrix, the tied token embedding included, in hct_v3m_r90_h4_v1) -> plugin
# GGUF, run by the patched llama.cpp with libhct in reference mode (ggml decodes with libhct's
# to_float and multiplies in F32), against the same HCT file decoded to F32 and run by stock
# llama.cpp: the logits of 256 positions must be bit-identical. About 2 minutes warm.
#
#   compat-tests/plugin/hct_v3m.sh
#
# Prints one JSON object; exits non-zero if the check fails. Needs the peers cache and builds the
# patched llama.cpp like run.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
eval "$(bash "$root/compat-tests/peers.sh" env)"
py="$HCT_PEERS_PYTHON"
codec=hct_v3m_r90_h4_v1
bash "$here/build_patched.sh" >&2
eval "$(bash "$here/build_patched.sh" env)"
cargo build --release --locked -p hct-convert -p hct-kernels --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
libhct="$root/target/release/libhct.so"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

s="$work/smol"
$hct convert "$HCT_SMOLLM2_F32" "$s.hct" --codec "$codec" --codec-for "token_embd.weight=$codec" >&2
$hct convert "$s.hct" "$s.plugin.gguf" --gguf-mode plugin >&2
$hct convert "$s.hct" "$s.f32.gguf" --gguf-mode decoded --dtype f32 >&2

cc -O2 -std=c11 "$here/host_logits.c" -I"$HCT_GGML_INCLUDE" -L"$HCT_GGML_LIB" -lllama -lggml-base \
    -Wl,-rpath,"$HCT_GGML_LIB" -o "$work/host_stock"
cc -O2 -std=c11 -DHCT_HOST_REGISTER "$here/host_logits.c" -I"$HCT_LLAMA_PATCHED_INCLUDE" -I"$root/ggml-kernels/include" \
    -L"$HCT_LLAMA_PATCHED/lib" -lllama -lggml-base -L"$(dirname "$libhct")" -lhct \
    -Wl,-rpath,"$HCT_LLAMA_PATCHED/lib" -Wl,-rpath,"$(dirname "$libhct")" -o "$work/host_patched"
g_f32=$("$work/host_stock" "$s.f32.gguf" "$HCT_TEXT_SLICE" 256 "$work/l_f32.bin" 2)
g_ref=$(HCT_GGML_AUTOREGISTER=0 HCT_PLUGIN_MODE=reference \
    "$work/host_patched" "$s.plugin.gguf" "$HCT_TEXT_SLICE" 256 "$work/l_ref.bin" 2)
cmp=$($py "$here/check_plugin.py" logits "$work/l_f32.bin" "$work/l_ref.bin" 49152)
# The plugin GGUF's weight matrices are extension types only libhct decodes, so logits at all
# mean its to_float ran; equal bits mean it decoded as the reference decoder did.
$py - "$g_f32" "$g_ref" "$cmp" "$codec" <<'EOF'
import json, sys
a, b, c = (json.loads(x) for x in sys.argv[1:4])
ok = c["bit_identical"] and a["generated"] == b["generated"] and b["registered"] > 0
print(json.dumps({"check": f"logits-{sys.argv[4]}-reference-bit-identical", "ok": ok,
                  "result": {"reference_vs_f32": c, "host_registered": b["registered"]}}))
sys.exit(0 if ok else 1)
EOF
