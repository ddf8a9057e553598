#!/usr/bin/env bash
# `hct convert --imatrix` against real llama-imatrix files: compat-tests/quality/imatrix_check.sh
#
# Makes an importance matrix of SmolLM2-135M (dithered F32 base) with the pinned llama.cpp's
# llama-imatrix, in both of its formats (GGUF and legacy .dat), on calibration text disjoint from
# the evaluation slice (the last 32 KiB of the Jargon File; the slice is 64 KiB from chapter 1),
# then converts with a searched codec and nl4_sh64_v1 with each file and checks: both formats load,
# every weighted tensor records the file's SHA-256 in its codec parameters (`hct.imatrix`), the
# importance changes the bytes (against a calibration-free conversion). Prints one JSON line;
# exits non-zero on a failed check.
# Needs the peers built (compat-tests/peers.sh build). About 3 minutes on 2 idle cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
eval "$(bash "$root/compat-tests/peers.sh" env)"
cargo build --release --locked -p hct-convert --manifest-path "$root/Cargo.toml" >&2
hct="$root/target/release/hct"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tail -c 32768 "$HCT_JARGON_TXT" >"$work/calib.txt"
for fmt in gguf dat; do
    "$HCT_LLAMA_BIN/llama-imatrix" -m "$HCT_SMOLLM2_DITHERED" -f "$work/calib.txt" -c 256 --chunks 16 \
        -t 2 --output-format "$fmt" -o "$work/imatrix.$fmt" >"$work/imatrix-$fmt.log" 2>&1
done
# Only block 0's seven matrices are re-encoded (the rest kept): enough to check, and fast.
keep=(--keep token_embd.weight)
for d in 1 2 3 4 5 6 7 8 9; do keep+=(--keep "blk.$d*"); done
for codec in iq4_nl_mse_v1 nl4_sh64_v1; do
    "$hct" convert "$HCT_SMOLLM2_DITHERED" "$work/plain-$codec.hct" --codec "$codec" "${keep[@]}" \
        --threads 2 >/dev/null
    for fmt in gguf dat; do
        "$hct" convert "$HCT_SMOLLM2_DITHERED" "$work/$fmt-$codec.hct" --codec "$codec" "${keep[@]}" \
            --imatrix "$work/imatrix.$fmt" --threads 2 >/dev/null
        "$hct" inspect "$work/$fmt-$codec.hct" --json --max-items 0 >"$work/$fmt-$codec.json"
    done
done
"$HCT_PEERS_PYTHON" - "$work" <<'PY'
import hashlib, json, sys
from pathlib import Path
w = Path(sys.argv[1])
out, ok = {}, True
for codec in ("iq4_nl_mse_v1", "nl4_sh64_v1"):
    plain = (w / f"plain-{codec}.hct").read_bytes()
    for fmt in ("gguf", "dat"):
        digest = "sha256:" + hashlib.sha256((w / f"imatrix.{fmt}").read_bytes()).hexdigest()
        tensors = json.loads((w / f"{fmt}-{codec}.json").read_text())["tensors"]
        coded = [t for t in tensors if t["codec"] == codec]
        weighted = [t for t in coded if t.get("codec_params", {}).get("hct.imatrix", "").startswith(digest)]
        out[f"{codec}/{fmt}"] = {"coded": len(coded), "weighted": len(weighted),
                                 "bytes_differ_from_plain": (w / f"{fmt}-{codec}.hct").read_bytes() != plain}
        ok &= len(coded) == 7 and len(weighted) == 7 and out[f"{codec}/{fmt}"]["bytes_differ_from_plain"]
print(json.dumps({"check": "imatrix", **out, "ok": bool(ok)}))
sys.exit(0 if ok else 1)
PY
