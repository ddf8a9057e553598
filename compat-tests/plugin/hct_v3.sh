#!/usr/bin/env bash
# The spectral codecs through the plugin chain: SmolLM2 F32 -> HCT (every weight matrix including
# the tied token embedding, once in hct_v3 at retention 0.9 and once in the mixed-precision
# hct_v3m_r90_h4_v1 of SPEC.md §7.6.6) -> plugin GGUF, run by the patched llama.cpp with libhct in
# reference mode (ggml decodes with libhct's to_float and multiplies in F32), against the same
# HCT file decoded to F32 and run by stock llama.cpp: the logits of 256 positions must be
# bit-identical. Also MiniLM embeddings (hct_v3_r90, reference mode, identical).
#
#   compat-tests/plugin/hct_v3.sh            the checks (CI calls this; about 3 minutes warm)
#   compat-tests/plugin/hct_v3.sh --speed    also times generation in fast mode (libhct's vec_dot,
#                                            which decodes each tile for every dot), not a check
#
# Prints one JSON object per check; exits non-zero if any fails. Needs the peers cache and builds
# the patched llama.cpp like run.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PEERS_SH="${HCT_PEERS_SH:-$root/compat-tests/peers.sh}"
eval "$(bash "$PEERS_SH" env)"
peers_py="$(dirname "$PEERS_SH")/peers.py"
py="$HCT_PEERS_PYTHON"
check="$py $here/check_plugin.py"
bash "$here/build_patched.sh" >&2
eval "$(bash "$here/build_patched.sh" env)"
cargo build --release --locked -p hct-convert -p hct-kernels --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
libhct="$root/target/release/libhct.so"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
say() { printf '\n== %s\n' "$*" >&2; }
fail=0
verdict() { # NAME JSON PYTHON-CONDITION
    local ok
    ok=$($py -c 'import json,sys; r=json.loads(sys.argv[1]); print(bool(eval(" ".join(sys.argv[2].split()), {}, {"r": r})))' "$2" "$3")
    printf '{"check": "%s", "result": %s, "ok": %s}\n' "$1" "$2" "$( [ "$ok" = True ] && echo true || echo false)"
    [ "$ok" = True ] || fail=1
}

say "host programs: stock libllama on decoded F32; patched libllama + libhct (reference mode) on the plugin GGUF"
cc -O2 -std=c11 "$here/host_logits.c" -I"$HCT_GGML_INCLUDE" -L"$HCT_GGML_LIB" -lllama -lggml-base \
    -Wl,-rpath,"$HCT_GGML_LIB" -o "$work/host_stock"
cc -O2 -std=c11 -DHCT_HOST_REGISTER "$here/host_logits.c" -I"$HCT_LLAMA_PATCHED_INCLUDE" -I"$root/ggml-kernels/include" \
    -L"$HCT_LLAMA_PATCHED/lib" -lllama -lggml-base -L"$(dirname "$libhct")" -lhct \
    -Wl,-rpath,"$HCT_LLAMA_PATCHED/lib" -Wl,-rpath,"$(dirname "$libhct")" -o "$work/host_patched"

# smol_reference_logits CODEC HCT-CONVERT-ARGS...: SmolLM2 in CODEC, reference mode against
# decoded F32; libhct's exit report proves its to_float decoded the codec's tensors.
smol_reference_logits() {
    local codec="$1" s="$work/smol.$1"
    shift
    say "SmolLM2 F32 -> HCT ($*) -> plugin GGUF and decoded F32 GGUF"
    $hct convert "$HCT_SMOLLM2_F32" "$s.hct" "$@" >&2
    $hct convert "$s.hct" "$s.plugin.gguf" --gguf-mode plugin >&2
    $hct convert "$s.hct" "$s.f32.gguf" --gguf-mode decoded --dtype f32 >&2
    if [ "$codec" = hct_v3_r90 ]; then
        params=$($hct inspect "$s.hct" --json | $py -c '
import json, sys
t = next(t for t in json.load(sys.stdin)["tensors"] if t["name"] == "blk.0.attn_q.weight")
print(json.dumps({"codec": t["codec"], "codec_params": t["codec_params"]}))')
        verdict "inspect-shows-hct_v3-params" "$params" \
            'r["codec"] == "hct_v3_r90" and r["codec_params"]["hct.kept_per_tile"] == 58 and r["codec_params"]["hct.tile"] == "1x64"'
    fi
    g_f32=$("$work/host_stock" "$s.f32.gguf" "$HCT_TEXT_SLICE" 256 "$work/l_f32.bin" 2)
    g_ref=$(HCT_GGML_AUTOREGISTER=0 HCT_PLUGIN_MODE=reference HCT_PLUGIN_STATS="$work/stats.json" \
        "$work/host_patched" "$s.plugin.gguf" "$HCT_TEXT_SLICE" 256 "$work/l_ref.bin" 2)
    cmp=$($check logits "$work/l_f32.bin" "$work/l_ref.bin" 49152)
    doc=$($py -c '
import json, sys
a, b, c = (json.loads(x) for x in sys.argv[1:4])
print(json.dumps({"reference_vs_f32": c, "tokens_f32": a["generated"], "tokens_reference": b["generated"],
                  "host_registered": b["registered"],
                  "to_float_elements": json.load(open(sys.argv[4]))["codecs"][sys.argv[5]]["to_float_elements"]}))' \
        "$g_f32" "$g_ref" "$cmp" "$work/stats.json" "$codec")
    verdict "logits-$codec-reference-bit-identical" "$doc" \
        'r["reference_vs_f32"]["bit_identical"] and r["tokens_reference"] == r["tokens_f32"] and r["to_float_elements"] > 0'
    rm -f "$work"/l_*.bin "$s.hct"
}
smol_reference_logits hct_v3_r90 --codec hct_v3 --codec-param retention=0.9 --codec-for 'token_embd.weight=hct_v3_r90'
smol_reference_logits hct_v3m_r90_h4_v1 --codec hct_v3m_r90_h4_v1 --codec-for 'token_embd.weight=hct_v3m_r90_h4_v1'

say "MiniLM F32 -> HCT (hct_v3_r90; token_types kept) -> embeddings, reference mode"
m="$work/minilm"
$hct convert "$HCT_MINILM_F32" "$m.hct" --codec hct_v3_r90 --keep token_types.weight --keep position_embd.weight >&2
$hct convert "$m.hct" "$m.plugin.gguf" --gguf-mode plugin >&2
$hct convert "$m.hct" "$m.f32.gguf" --gguf-mode decoded --dtype f32 >&2
printf '#!/bin/sh\nLD_PRELOAD=%q HCT_PLUGIN_MODE=reference exec %q "$@"\n' "$libhct" "$HCT_LLAMA_PATCHED_BIN/llama-embedding" >"$work/llama-embedding"
chmod +x "$work/llama-embedding"
bash "$PEERS_SH" embed "$m.f32.gguf" --vectors >"$work/e_f32.json"
HCT_LLAMA_BIN="$work" "$py" "$peers_py" embed "$m.plugin.gguf" --vectors >"$work/e_ref.json"
verdict "embeddings-minilm-hct_v3_r90-reference-identical" "$($check embeddings "$work/e_f32.json" "$work/e_ref.json")" \
    'r["identical"]'

if [ "${1:-}" = "--speed" ]; then
    s="$work/smol.hct_v3_r90"
    say "speed (not a check): llama-simple, 16 tokens, fast mode (vec_dot) and reference mode (to_float)"
    for mode in fast reference; do
        t0=$(date +%s.%N)
        LD_PRELOAD="$libhct" HCT_PLUGIN_MODE=$mode "$HCT_LLAMA_PATCHED_BIN/llama-simple" -m "$s.plugin.gguf" -n 16 \
            "The Jargon File is a glossary of hacker slang." >"$work/simple-$mode.txt" 2>"$work/simple-$mode.log" || true
        t1=$(date +%s.%N)
        printf '{"speed": "llama-simple-%s", "seconds": %s, "eval_line": %s}\n' "$mode" "$(echo "$t1 - $t0" | bc)" \
            "$($py -c 'import json,sys; print(json.dumps(next((l.strip() for l in open(sys.argv[1]) if "decoded" in l), None)))' "$work/simple-$mode.log")"
    done
    t0=$(date +%s.%N)
    "$HCT_LLAMA_BIN/llama-simple" -m "$s.f32.gguf" -n 16 "The Jargon File is a glossary of hacker slang." >/dev/null 2>"$work/simple-f32.log" || true
    t1=$(date +%s.%N)
    printf '{"speed": "llama-simple-stock-f32", "seconds": %s, "eval_line": %s}\n' "$(echo "$t1 - $t0" | bc)" \
        "$($py -c 'import json,sys; print(json.dumps(next((l.strip() for l in open(sys.argv[1]) if "decoded" in l), None)))' "$work/simple-f32.log")"
fi
exit $fail
