#!/usr/bin/env python3
"""Independent check of nl4_sh64_v1's golden vectors against SPEC.md §7.7.

Reimplements, from the spec text with numpy's IEEE binary16/binary32 scalars and Python's
binary64 floats, the super-block layout, its decoder and its encoder, then checks every case of
format-spec/tests/vectors/shifted/nl4_sh64_v1.json: the encoder must reproduce `encoded_hex`
byte for byte, the decoder `decoded_f32_bits` bit for bit, and every `refused` row must be
refused. The per-block scale search of step 1 is §7.5.3's, taken from this directory's
check_searched_vectors.py (itself written from §7.5). Nothing here is shared with the Rust
reference. Usage:
  python3 compat-tests/scripts/check_shifted_vectors.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_searched_vectors import F16, F32, IQ4, Refused, f32s, search  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VECTOR = ROOT / "format-spec/tests/vectors/shifted/nl4_sh64_v1.json"
GRIDS = [IQ4, [g + 4 for g in IQ4]]


def block_values(grid, dl):
    """binary32 products dl*G[j] widened to binary64."""
    return [float(F32(dl) * F32(g)) for g in grid]


def nearest(grid, dl, xs):
    vals = block_values(grid, dl)
    order = list(range(16)) if dl > 0 else list(range(15, -1, -1))
    s = [vals[j] for j in order]
    mids = np.array([(s[p] + s[p + 1]) / 2.0 for p in range(15)])
    return [order[int(np.searchsorted(mids, x, side="left"))] for x in xs]


def err(grid, dl, xs, ws, codes):
    vals = block_values(grid, dl)
    e = 0.0
    for x, w, q in zip(xs, ws, codes):
        diff = x - vals[q]
        e += w * (diff * diff)
    return e


def zero_err(xs, ws):
    e = 0.0
    for x, w in zip(xs, ws):
        e += w * (x * x)
    return e


def encode_superblock(x32s, ws, first_block):
    xs = [float(v) for v in x32s]
    sigma = []
    for b in range(2):
        xb, wb = x32s[32 * b:32 * b + 32], ws[32 * b:32 * b + 32]
        best = None
        for grid in GRIDS:
            try:
                d, codes = search(grid, xb, wb)
            except Refused:
                raise Refused(f"block {first_block + b}")
            xsb = xs[32 * b:32 * b + 32]
            e = zero_err(xsb, wb) if float(d) == 0.0 else err(grid, F32(d), xsb, wb, codes)
            if best is None or e < best[1]:
                best = (float(F32(d)), e)
        sigma.append(best[0])
    m = max(abs(sigma[0]), abs(sigma[1]))
    if m == 0.0:
        return bytes(36)
    best = None
    for t in range(4):
        d = F16(F32(m / float(63 - t)))
        if not np.isfinite(d) or float(d) == 0.0:
            continue
        df = F32(d)
        choices = []
        for b in range(2):
            xsb, wb = xs[32 * b:32 * b + 32], ws[32 * b:32 * b + 32]
            c = (0, 0, [0] * 32, zero_err(xsb, wb))
            q = sigma[b] / float(df)
            s0 = int(np.floor(abs(q) + 0.5)) * (1 if q >= 0 else -1)  # half away from zero
            s0 = max(-64, min(63, s0))
            for s in range(s0 - 1, s0 + 2):
                if s < -64 or s > 63 or s == 0:
                    continue
                dl = df * F32(s)
                for h in (0, 1):
                    codes = nearest(GRIDS[h], dl, xsb)
                    e = err(GRIDS[h], dl, xsb, wb, codes)
                    if e < c[3]:
                        c = (s, h, codes, e)
            choices.append(c)
        total = choices[0][3] + choices[1][3]
        if best is None or total < best[0]:
            best = (total, d, choices)
    if best is None:
        return bytes(36)
    _, d, choices = best
    out = bytearray(np.array([d], dtype=F16).tobytes())
    out += bytes(((s & 0x7F) << 1) | h for s, h, _, _ in choices)
    for _, _, codes, _ in choices:
        out += bytes(codes[j] | (codes[j + 16] << 4) for j in range(16))
    return bytes(out)


def encode_row(x, importance):
    if any(not np.isfinite(v) for v in x):
        raise Refused("non-finite element")
    out = b""
    for sb in range(0, len(x), 64):
        ws = [float(c) for c in importance[sb:sb + 64]] if importance is not None else [1.0] * 64
        out += encode_superblock(x[sb:sb + 64], ws, sb // 32)
    return out


def decode_superblock(block: bytes):
    d = F32(np.frombuffer(block[:2], dtype=F16)[0])
    out = []
    for b in range(2):
        hdr = block[2 + b]
        s = int(np.uint8(hdr).view(np.int8)) >> 1
        grid = GRIDS[hdr & 1]
        dl = d * F32(s)
        qs = block[4 + 16 * b:20 + 16 * b]
        codes = [v & 15 for v in qs] + [v >> 4 for v in qs]
        out += [dl * F32(grid[q]) for q in codes]
    return out


def main() -> int:
    v = json.loads(VECTOR.read_text())
    failures = checked = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for case in v["cases"]:
            x = f32s(case["input_f32_bits"])
            imp = f32s(case["importance_f32_bits"]) if case.get("importance_f32_bits") else None
            got = encode_row(x, imp)
            dec = [y for i in range(0, len(got), 36) for y in decode_superblock(got[i:i + 36])]
            dec_hex = "".join(f"{int(np.float32(y).view(np.uint32)):08x}" for y in dec)
            checked += 1
            if got.hex() != case["encoded_hex"] or dec_hex != case["decoded_f32_bits"]:
                failures += 1
                print(f"FAIL {v['codec']} {case['name']}", file=sys.stderr)
        for r in v["refused"]:
            try:
                encode_row(f32s(r["input_f32_bits"]), None)
                failures += 1
                print(f"FAIL {v['codec']} {r['name']}: not refused", file=sys.stderr)
            except Refused:
                checked += 1
    print(f"{checked} checks, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
