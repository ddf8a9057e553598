#!/usr/bin/env bash
# Peak memory and throughput of `hct convert` on a synthetic bf16 checkpoint, next to `cp` of
# the same file in the same run. Usage: benches/convert-memory.sh [GiB] [workdir]
set -euo pipefail
gib=${1:-4}
work=${2:-$(mktemp -d)}
mkdir -p "$work"
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release -p hct-convert --locked --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
src="$work/synthetic-${gib}g.safetensors"
if [ ! -f "$src" ]; then
  # 8192x8192 bf16 tensors (128 MiB each), random bytes: the largest tensor is 128 MiB.
  python3 - "$src" "$gib" <<'PY'
import json, os, struct, sys
path, gib = sys.argv[1], int(sys.argv[2])
rows = cols = 8192
n = gib * 8
hdr, off = {}, 0
for i in range(n):
    size = rows * cols * 2
    hdr[f"model.layers.{i}.mlp.weight"] = {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [off, off + size]}
    off += size
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    block = os.urandom(1 << 24)
    for _ in range(off >> 24):
        f.write(block)
PY
fi
bytes=$(stat -c %s "$src")
cat "$src" > /dev/null   # same page-cache state for both commands
t0=$(date +%s.%N); cp "$src" "$work/copy.safetensors"; sync "$work/copy.safetensors"; t1=$(date +%s.%N)
/usr/bin/time -v "$hct" convert "$src" "$work/out.hct" 2> "$work/time.txt" >&2
t2=$(date +%s.%N)
rss_kb=$(grep "Maximum resident" "$work/time.txt" | awk '{print $NF}')
python3 - "$bytes" "$t0" "$t1" "$t2" "$rss_kb" <<'PY'
import json, sys
b, t0, t1, t2, rss = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5])
cp_s, hct_s = t1 - t0, t2 - t1
print(json.dumps({
  "input_bytes": b, "peak_rss_bytes": rss * 1024, "peak_rss_fraction_of_model": rss * 1024 / b,
  "cp_seconds": round(cp_s, 2), "hct_seconds": round(hct_s, 2),
  "cp_gb_per_s": round(b / cp_s / 1e9, 3), "hct_gb_per_s": round(b / hct_s / 1e9, 3),
  "hct_over_cp_throughput": round(cp_s / hct_s, 3)}, indent=1))
PY
rm -f "$work/copy.safetensors" "$work/out.hct"
