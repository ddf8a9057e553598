#!/usr/bin/env bash
# The entropy stage's gain on every weight codec family (SPEC.md §6.3), on SmolLM2-135M:
# whole-file bytes without and with `--entropy zstd:3` and `zstd:19`, encode time of the
# entropy pass, and decode throughput through the reader (one thread, best of 5).
#
#   bash compat-tests/entropy/run.sh [WORKDIR]     # then: python3 compat-tests/entropy/report.py WORKDIR
#   HCT_ENTROPY_SOURCE=$HCT_SMOLLM2_DITHERED bash compat-tests/entropy/run.sh WORKDIR2
#
# Writes WORKDIR/rows.jsonl (one line per codec and level). Not part of CI: the codec
# conversions take tens of minutes on 2 cores.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$repo/target/entropy-run}
mkdir -p "$work"
eval "$(bash "$repo/compat-tests/peers.sh" env)"
cargo build --release --offline -q -p hct-convert --manifest-path "$repo/Cargo.toml"
cargo build --release --offline -q -p hct-format --example entropy_decode --manifest-path "$repo/Cargo.toml"
hct=$repo/target/release/hct
bench=$repo/target/release/examples/entropy_decode
src=${HCT_ENTROPY_SOURCE:-$HCT_SMOLLM2_F32}
# codec id, extra flags. tq2_0 needs rows of whole 256-element blocks; SmolLM2's 576-wide
# rows are not, so those matrices take q8_0.
codecs=(
  "f32|" "f16|" "bf16|" "ggml_q8_0|" "int4_g32_fp16_v1|" "iq4_nl_mse_v1|" "nl4_sh64_v1|"
  "tq2_0_absmean_v1|--fallback-codec ggml_q8_0" "int4_opt_v1|" "hct_v3_r90|"
  "vq8_r2x256_g32_v1|" "seedlm_c8p3_s8_v1|"
)
# HCT_ENTROPY_CODECS="f32 ggml_q8_0 ..." and HCT_ENTROPY_LEVELS="3 19" narrow the run.
if [ -n "${HCT_ENTROPY_CODECS:-}" ]; then
  wanted=()
  for entry in "${codecs[@]}"; do
    for c in $HCT_ENTROPY_CODECS; do [ "${entry%%|*}" = "$c" ] && wanted+=("$entry"); done
  done
  codecs=("${wanted[@]}")
fi
rows=$work/rows.jsonl
# HCT_ENTROPY_RESUME=1 keeps the rows already measured (and the converted bases).
[ "${HCT_ENTROPY_RESUME:-0}" = 1 ] || : > "$rows"
touch "$rows"
measure() {  # codec, extra flags, level
  local codec=$1 extra=$2 level=$3
  local base=$work/$codec.hct
  if grep -q "\"codec\":\"$codec\",\"level\":$level," "$rows"; then return; fi
  if [ ! -s "$base" ]; then
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    nice "$hct" convert "$src" "$base" --codec "$codec" $extra > "$work/$codec.convert.log" 2>&1
    t1=$(date +%s.%N)
    echo "$codec: converted in $(echo "$t1 - $t0" | bc) s" >&2
  fi
  local out=$work/$codec.zstd$level.hct
  t0=$(date +%s.%N)
  nice "$hct" convert "$base" "$out" --entropy "zstd:$level" --threads 1 > /dev/null 2>&1
  t1=$(date +%s.%N)
  "$hct" validate "$out" > /dev/null
  # The entropy pass must be lossless: converting back gives the base file byte for byte.
  "$hct" convert "$out" "$work/$codec.back.hct" > /dev/null 2>&1
  cmp -s "$work/$codec.back.hct" "$base" || { echo "$codec zstd:$level: round trip differs" >&2; exit 1; }
  dec=$(nice "$bench" "$out" 5)
  printf '{"codec":"%s","level":%d,"base_bytes":%d,"encode_seconds":%s,"decode":%s}\n' \
    "$codec" "$level" "$(stat -c %s "$base")" "$(echo "$t1 - $t0" | bc | sed "s/^\./0./")" "$dec" >> "$rows"
  echo "$codec zstd:$level: $(stat -c %s "$base") -> $(stat -c %s "$out") bytes" >&2
  rm -f "$out" "$work/$codec.back.hct"
}
# Every codec at level 3 first (cheap), then level 19 (slow: about 2 MB/s on one core).
for level in ${HCT_ENTROPY_LEVELS:-3 19}; do
  for entry in "${codecs[@]}"; do
    measure "${entry%%|*}" "${entry#*|}" "$level"
  done
done
echo "rows in $rows" >&2
