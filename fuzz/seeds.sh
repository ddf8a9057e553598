#!/usr/bin/env bash
# Seed inputs for each fuzz target from real files in the repository: the golden HCT file,
# the gguf-py fixtures, and safetensors/HCT/GGUF files the hct binary converts from them.
# Written to target/seeds/<target> (not checked in; the minimized corpus is).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/target/seeds"
rm -rf "$out"
mkdir -p "$out"/{hct_read,gguf_read,safetensors_read,convert,capi_open}
cp "$root"/format-spec/tests/golden/*.hct "$out/hct_read/"
cp "$root"/format-spec/tests/golden/*.hct "$out/capi_open/"
for g in "$root"/format-spec/tests/data/gguf/*.gguf; do
    [ "$(stat -c %s "$g")" -le 65536 ] && cp "$g" "$out/gguf_read/"
done
# Small real conversions made by the hct binary itself.
hct="$root/target/debug/hct"
[ -x "$hct" ] || (cd "$root" && cargo build -q -p hct-convert)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/w.safetensors" <<'PY'
import json, struct, sys
vals = [((i * 37) % 101) / 50.0 - 1.0 for i in range(2 * 64)]
data = struct.pack("<%df" % len(vals), *vals) + struct.pack("<4f", 1, 2, 3, 4)
hdr = {"w": {"dtype": "F32", "shape": [2, 64], "data_offsets": [0, 512]},
       "b": {"dtype": "F32", "shape": [4], "data_offsets": [512, 528]},
       "__metadata__": {"format": "pt"}}
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
PY
cp "$tmp/w.safetensors" "$out/safetensors_read/"
"$hct" convert "$tmp/w.safetensors" "$tmp/w.hct" >/dev/null
"$hct" convert "$tmp/w.safetensors" "$tmp/q.hct" --codec int4_opt_v1 >/dev/null
"$hct" convert "$tmp/w.hct" "$tmp/w.gguf" >/dev/null
"$hct" convert "$tmp/q.hct" "$tmp/p.gguf" --gguf-mode plugin >/dev/null
# An entropy-coded tensor (SPEC.md §6.3): index, frames and the feature bit to mutate.
"$hct" convert "$tmp/w.safetensors" "$tmp/z.hct" --entropy zstd >/dev/null
cp "$tmp/w.hct" "$tmp/q.hct" "$tmp/z.hct" "$out/hct_read/"
cp "$tmp/w.hct" "$tmp/q.hct" "$tmp/z.hct" "$out/capi_open/"
cp "$tmp/w.gguf" "$tmp/p.gguf" "$out/gguf_read/"
# convert: byte 0 = input format (0 hct, 1 gguf, 2 safetensors), byte 1 = output choice.
n=0
for pair in "0:w.hct" "0:q.hct" "0:z.hct" "1:w.gguf" "1:p.gguf" "2:w.safetensors"; do
    from=${pair%%:*}
    f=${pair#*:}
    for to in 0 1 3 4 6 7; do
        printf "\\x$(printf %02x "$from")\\x$(printf %02x "$to")" | cat - "$tmp/$f" >"$out/convert/seed-$n"
        n=$((n + 1))
    done
done
ls "$out"/* | wc -l
