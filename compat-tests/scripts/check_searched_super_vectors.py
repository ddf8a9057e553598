#!/usr/bin/env python3
"""Independent check of the searched super-block codecs' golden vectors (SPEC.md §7.5.5).

Reimplements in numpy, from the spec text, the encoders `iq4_xs_mse_v1` and `q6_k_mse_v1`:
each sub-block's scale by §7.5.3's search (taken from check_searched_vectors.py, itself written
from §7.5 alone), the super-scale candidates, the ±1 sub-scale re-decision with codes nearest
for the stored `d·s`, and the packing of ggml's IQ4_XS and Q6_K blocks; then checks every case
of format-spec/tests/vectors/searched_super/<id>.json: the encoder must reproduce
`encoded_hex` byte for byte, and every `refused` row must be refused. The encoded rows are
decoded by PyPI `gguf.quants.dequantize` (ggml's own dequantizers, reimplemented by gguf)
and must give `decoded_f32_bits` bit for bit: the claim that these codecs write ggml's blocks.

This file shares no code with the Rust reference. Usage (gguf required):
  "$HCT_PEERS_PYTHON" compat-tests/scripts/check_searched_super_vectors.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_searched_vectors as sv  # noqa: E402  (the §7.5.3 search and §7.5.2 rule)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "format-spec/tests/vectors/searched_super"
F16, F32 = np.float16, np.float32
Refused = sv.Refused

# layout: (grid, sub-block elements, sub-scale min, max, super-block bytes)
LAYOUTS = {
    "ggml_iq4_xs": (sv.IQ4, 32, -32, 31, 136),
    "ggml_q6_k": (list(range(-32, 32)), 16, -128, 127, 210),
}


def nearest_for(grid, dl: np.float32, xs, ws):
    """§7.5.2's rule with the binary32 block scale dl = D·s (exact)."""
    vals = [float(dl * F32(g)) for g in grid]
    order = list(range(len(grid))) if dl > 0 else list(range(len(grid) - 1, -1, -1))
    sv_ = [vals[j] for j in order]
    mids = np.array([(sv_[p] + sv_[p + 1]) / 2.0 for p in range(len(grid) - 1)])
    codes = [order[int(np.searchsorted(mids, x, side="left"))] for x in xs]
    e = 0.0
    for x, w, q in zip(xs, ws, codes):
        diff = x - vals[q]
        e += w * (diff * diff)
    return codes, e


def round_half_away(v: float) -> float:
    a = abs(v)
    r = math.floor(a)
    if a - r >= 0.5:  # exact in binary64
        r += 1
    return math.copysign(r, v)


def encode_superblock(layout, x32, ws):
    grid, n, smin, smax, _ = LAYOUTS[layout]
    nb = 256 // n
    xs = [float(v) for v in x32]
    sigma = []
    for b in range(nb):
        try:
            d, _ = sv.search(grid, x32[b * n:(b + 1) * n], ws[b * n:(b + 1) * n])
        except Refused:
            raise Refused(f"sub-block {b}")
        sigma.append(float(F32(d)))
    k = max(range(nb), key=lambda b: (abs(sigma[b]), -b))
    m = sigma[k]
    if m == 0.0:
        return None
    best = None
    for t in range(4):
        for divisor in (smin + t, smax - t):
            d = sv.to_f16(m / float(divisor))
            if not np.isfinite(d) or float(d) == 0.0:
                continue
            df = F32(d)
            total, subs, codes_all = 0.0, [], []
            for b in range(nb):
                xb, wb = xs[b * n:(b + 1) * n], ws[b * n:(b + 1) * n]
                be = 0.0
                for x, w in zip(xb, wb):
                    be += w * (x * x)
                bs, bc = 0, [0] * n
                s0 = int(min(max(round_half_away(sigma[b] / float(df)), smin), smax))
                for s in (s0 - 1, s0, s0 + 1):
                    if s < smin or s > smax or s == 0:
                        continue
                    codes, e = nearest_for(grid, df * F32(s), xb, wb)
                    if e < be:
                        be, bs, bc = e, s, codes
                total += be
                subs.append(bs)
                codes_all += bc
            if best is None or total < best[0]:
                best = (total, d, subs, codes_all)
    if best is None:
        return None
    return best[1:]


def pack(layout, choice) -> bytes:
    _, _, _, _, nbytes = LAYOUTS[layout]
    out = bytearray(nbytes)
    if choice is None:
        return bytes(out)
    d, subs, codes = choice
    dbytes = np.array([d], dtype=F16).tobytes()
    if layout == "ggml_iq4_xs":
        out[0:2] = dbytes
        high = 0
        for b in range(8):
            ls = subs[b] + 32
            high |= (ls >> 4) << (2 * b)
            out[4 + b // 2] |= (ls & 15) << (4 * (b % 2))
            for j in range(16):
                out[8 + 16 * b + j] = codes[32 * b + j] | (codes[32 * b + 16 + j] << 4)
        out[2:4] = high.to_bytes(2, "little")
    else:
        # ggml's block_q6_K: element 128h + 32q + l has its low nibble in ql[64h + l + 32(q&1)]
        # (high nibble when q >= 2) and its top two bits in qh[32h + l] at bit 2q.
        for e, c in enumerate(codes):
            h, r = divmod(e, 128)
            q, l = divmod(r, 32)
            out[64 * h + l + 32 * (q & 1)] |= (c & 15) << (4 * (q >> 1))
            out[128 + 32 * h + l] |= (c >> 4) << (2 * q)
        for b in range(16):
            out[192 + b] = subs[b] & 0xFF
        out[208:210] = dbytes
    return bytes(out)


def encode_row(layout, x, importance):
    if any(not np.isfinite(v) for v in x):
        raise Refused("non-finite element")
    out = b""
    for s in range(0, len(x), 256):
        xb = x[s:s + 256]
        ws = [float(c) for c in importance[s:s + 256]] if importance is not None else [1.0] * 256
        out += pack(layout, encode_superblock(layout, xb, ws))
    return out


def main() -> int:
    from gguf import quants, GGMLQuantizationType  # type: ignore

    failures = checked = 0
    for path in sorted(VECTORS.glob("*.json")):
        v = json.loads(path.read_text())
        codec, layout = v["codec"], v["layout"]
        for case in v["cases"]:
            x = sv.f32s(case["input_f32_bits"])
            imp = sv.f32s(case["importance_f32_bits"]) if case.get("importance_f32_bits") else None
            got = encode_row(layout, x, imp)
            t = getattr(GGMLQuantizationType, layout.removeprefix("ggml_").upper())
            ref = quants.dequantize(np.frombuffer(got, dtype=np.uint8), t).astype(np.float32)
            dec_hex = "".join(f"{int(u):08x}" for u in ref.reshape(-1).view(np.uint32))
            ok = got.hex() == case["encoded_hex"] and dec_hex == case["decoded_f32_bits"]
            checked += 1
            if not ok:
                failures += 1
                print(f"FAIL {codec} {case['name']}: bytes {got.hex() == case['encoded_hex']}, "
                      f"gguf decode {dec_hex == case['decoded_f32_bits']}", file=sys.stderr)
        for r in v["refused"]:
            try:
                encode_row(layout, sv.f32s(r["input_f32_bits"]), None)
                failures += 1
                print(f"FAIL {codec} {r['name']}: not refused", file=sys.stderr)
            except Refused:
                checked += 1
    print(f"{checked} checks, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
