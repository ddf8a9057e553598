#!/usr/bin/env bash
# Builds libhct.a (release) and compat-tests/c/hct_vs_ggml.c against it and the real ggml of
# the pinned llama.cpp build, converts the SmolLM2 Q4_1 GGUF to .hct with `hct convert`, and runs
# the comparison twice: under HCT_ISA=scalar and under the detected ISA. Fails on any mismatch,
# and if the two runs' libhct results (the hct_digest line) differ.
#
# ggml comes from $HCT_GGML_INCLUDE and $HCT_GGML_LIB, else from `compat-tests/peers.sh env`
# (build it with `compat-tests/peers.sh fetch build`). Without ggml or SmolLM2 the script
# fails under CI=true and otherwise says SKIPPED (exit 0, nothing checked for the missing part).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

if { [ -z "${HCT_GGML_INCLUDE:-}" ] || [ -z "${HCT_GGML_LIB:-}" ]; } && [ -f compat-tests/peers.sh ]; then
    eval "$(bash compat-tests/peers.sh env)"
fi
if [ ! -f "${HCT_GGML_INCLUDE:-/nonexistent}/ggml-cpu.h" ] || [ ! -e "${HCT_GGML_LIB:-/nonexistent}/libggml-cpu.so" ]; then
    echo "run_hct_vs_ggml: SKIPPED: no ggml build (HCT_GGML_INCLUDE='${HCT_GGML_INCLUDE:-}'," \
        "HCT_GGML_LIB='${HCT_GGML_LIB:-}'); run compat-tests/peers.sh fetch build" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --release --locked -p hct-kernels -p hct-convert
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"

# -ffp-contract=off: the exact reference sums in the program must not be fused.
cc -std=c11 -O2 -Wall -Wextra -Werror -ffp-contract=off \
    -I ggml-kernels/include -I "$HCT_GGML_INCLUDE" \
    compat-tests/c/hct_vs_ggml.c -o "$work/hct_vs_ggml" \
    "$target_dir/release/libhct.a" \
    -L "$HCT_GGML_LIB" -lggml-cpu -lggml-base -Wl,-rpath,"$HCT_GGML_LIB" \
    -lpthread -ldl -lm -lrt -lgcc_s -lc

args=(format-spec/tests/golden/minimal-v1.0.hct)
if [ -f "${HCT_SMOLLM2_Q4_1:-/nonexistent}" ]; then
    "$target_dir/release/hct" convert "$HCT_SMOLLM2_Q4_1" "$work/smollm2-q4_1.hct" >/dev/null
    args+=("$work/smollm2-q4_1.hct" "$HCT_SMOLLM2_Q4_1")
else
    echo "run_hct_vs_ggml: SKIPPED the real-model part: no SmolLM2 GGUF (HCT_SMOLLM2_Q4_1)" >&2
    [ "${CI:-}" = "true" ] && exit 1
fi

echo "== HCT_ISA=scalar"
HCT_ISA=scalar "$work/hct_vs_ggml" "${args[@]}" | tee "$work/scalar.out"
echo "== HCT_ISA=auto"
HCT_ISA=auto "$work/hct_vs_ggml" "${args[@]}" | tee "$work/auto.out"

scalar_digest="$(grep '^hct_digest ' "$work/scalar.out")"
auto_digest="$(grep '^hct_digest ' "$work/auto.out")"
if [ "$scalar_digest" != "$auto_digest" ]; then
    echo "run_hct_vs_ggml: FAILED: libhct results differ between ISAs ($scalar_digest vs $auto_digest)" >&2
    exit 1
fi
echo "run_hct_vs_ggml: passed; libhct results identical under scalar and $(grep -o 'isa [a-z0-9]*' "$work/auto.out" | head -1)"
