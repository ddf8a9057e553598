#!/usr/bin/env python3
"""Independent check of the searched-scale codecs' golden vectors against SPEC.md §7.5.

Reimplements, from the spec text with numpy's IEEE binary16/binary32 scalars and Python's
binary64 floats, the scale search, the nearest-grid-point rule, the block packing of ggml's
IQ4_NL, Q4_0, Q5_0 and Q8_0 layouts and their decoders, then checks every case of
format-spec/tests/vectors/searched/<id>.json: the encoder must reproduce `encoded_hex` byte
for byte, the decoder `decoded_f32_bits` bit for bit, and every `refused` row must be
refused. If PyPI `gguf` is importable (the peers' tools venv), every encoded row is also
decoded by `gguf.quants.dequantize` under the layout's ggml type and must match bit for bit:
the claim that these codecs write ggml's own blocks.

This file shares no code with the Rust reference. Usage:
  python3 compat-tests/scripts/check_searched_vectors.py
  "$HCT_PEERS_PYTHON" compat-tests/scripts/check_searched_vectors.py     # + gguf
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "format-spec/tests/vectors/searched"
F16, F32 = np.float16, np.float32
IQ4 = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
LAYOUTS = {  # layout: (grid, block bytes)
    "ggml_iq4_nl": (IQ4, 18),
    "ggml_q4_0": (list(range(-8, 8)), 18),
    "ggml_q5_0": (list(range(-16, 16)), 22),
    "ggml_q8_0": (list(range(-128, 128)), 34),
}
WEIGHTING = {"iq4_nl_mse_v1": "mse", "iq4_nl_x2_v1": "x2", "q4_0_mse_v1": "mse",
             "q5_0_mse_v1": "mse", "q8_0_mse_v1": "mse"}
SPREAD = 8


class Refused(Exception):
    pass


def f32s(hexstr: str) -> list[np.float32]:
    return [np.uint32(int(hexstr[i:i + 8], 16)).view(F32) for i in range(0, len(hexstr), 8)]


def to_f16(v: float) -> np.float16:
    """binary64 -> binary32 -> binary16, each nearest-even."""
    with np.errstate(over="ignore"):
        return F16(F32(v))


def decoded_values(grid, d):
    """Grid values times d as binary32 products, and the grid indices in ascending value order."""
    df = F32(d)
    with np.errstate(over="ignore"):
        vals = [float(df * F32(g)) for g in grid]
    order = list(range(len(grid))) if df > 0 else list(range(len(grid) - 1, -1, -1))
    return vals, order


def nearest(grid, d, xs):
    vals, order = decoded_values(grid, d)
    sorted_vals = [vals[j] for j in order]
    mids = np.array([(sorted_vals[p] + sorted_vals[p + 1]) / 2.0 for p in range(len(grid) - 1)])
    # sorted position = number of midpoints strictly below x (ties go to the smaller value)
    return [order[int(np.searchsorted(mids, x, side="left"))] for x in xs]


def error(grid, d, xs, ws, codes):
    vals, _ = decoded_values(grid, d)
    e = 0.0
    for x, w, q in zip(xs, ws, codes):
        diff = x - vals[q]
        e += w * (diff * diff)
    return e


def search(grid, x32, ws):
    xs = [float(v) for v in x32]
    zero_code = 128 if len(grid) == 256 else 0
    best = (F16(0.0), [zero_code] * 32)
    best_err = 0.0
    for x, w in zip(xs, ws):
        best_err += w * (x * x)
    k = int(np.argmax(np.abs(np.array(x32, dtype=F32))))  # first of equal magnitudes
    m = xs[k]
    if m == 0.0:
        return best
    any_finite = False

    def consider(d):
        nonlocal best, best_err
        if not np.isfinite(d) or float(d) == 0.0:
            return None
        codes = nearest(grid, d, xs)
        e = error(grid, d, xs, ws, codes)
        if e < best_err:
            best_err, best = e, (d, codes)
        return codes

    for t in range(-SPREAD, SPREAD + 1):
        for base in (grid[0], grid[-1]):
            f = float(base) * float(32 + t) / 32.0
            d = to_f16(m / f)
            any_finite |= bool(np.isfinite(d))
            codes = consider(d)
            if codes is None:
                continue
            num = den = 0.0
            for x, w, q in zip(xs, ws, codes):
                g = float(grid[q])
                num += w * x * g
                den += w * (g * g)
            if den > 0.0:
                consider(to_f16(num / den))
    if not any_finite:
        raise Refused("every candidate scale overflows binary16")
    return best


def pack(layout, grid, d, codes) -> bytes:
    out = bytearray(np.array([d], dtype=F16).tobytes())
    if layout in ("ggml_iq4_nl", "ggml_q4_0"):
        out += bytes(codes[j] | (codes[j + 16] << 4) for j in range(16))
    elif layout == "ggml_q5_0":
        high = 0
        for i, q in enumerate(codes):
            high |= ((q >> 4) & 1) << i
        out += high.to_bytes(4, "little")
        out += bytes((codes[j] & 15) | ((codes[j + 16] & 15) << 4) for j in range(16))
    else:
        out += bytes(grid[q] & 0xFF for q in codes)
    return bytes(out)


def decode(layout, block: bytes) -> list[np.float32]:
    d = F32(np.frombuffer(block[:2], dtype=F16)[0])
    if layout in ("ggml_iq4_nl", "ggml_q4_0"):
        grid = LAYOUTS[layout][0]
        qs = block[2:18]
        codes = [b & 15 for b in qs] + [b >> 4 for b in qs]
        return [F32(grid[q]) * d for q in codes]
    if layout == "ggml_q5_0":
        high = int.from_bytes(block[2:6], "little")
        qs = block[6:22]
        codes = [(b & 15) | (((high >> j) & 1) << 4) for j, b in enumerate(qs)] + \
                [(b >> 4) | (((high >> (j + 16)) & 1) << 4) for j, b in enumerate(qs)]
        return [F32(q - 16) * d for q in codes]
    return [F32(np.int8(np.uint8(b).view(np.int8))) * d for b in block[2:34]]


def encode_row(codec, layout, x, importance):
    grid, bb = LAYOUTS[layout]
    if any(not np.isfinite(v) for v in x):
        raise Refused("non-finite element")
    out = b""
    for b in range(0, len(x), 32):
        xb = x[b:b + 32]
        cb = importance[b:b + 32] if importance is not None else [F32(1.0)] * 32
        ws = []
        for xv, cv in zip(xb, cb):
            c, xf = float(cv), float(xv)
            ws.append(c if WEIGHTING[codec] == "mse" else c * (xf * xf))
        d, codes = search(grid, xb, ws)
        out += pack(layout, grid, d, codes)
    return out


def main() -> int:
    try:
        from gguf import quants, GGMLQuantizationType  # type: ignore
    except ImportError:
        quants = None
    failures = checked = 0
    for path in sorted(VECTORS.glob("*.json")):
        v = json.loads(path.read_text())
        codec, layout = v["codec"], v["layout"]
        bb = LAYOUTS[layout][1]
        for case in v["cases"]:
            x = f32s(case["input_f32_bits"])
            imp = f32s(case["importance_f32_bits"]) if case.get("importance_f32_bits") else None
            got = encode_row(codec, layout, x, imp)
            dec = [y for i in range(0, len(got), bb) for y in decode(layout, got[i:i + bb])]
            dec_hex = "".join(f"{int(np.float32(y).view(np.uint32)):08x}" for y in dec)
            ok = got.hex() == case["encoded_hex"] and dec_hex == case["decoded_f32_bits"]
            if quants is not None:
                t = getattr(GGMLQuantizationType, layout.removeprefix("ggml_").upper())
                ref = quants.dequantize(np.frombuffer(got, dtype=np.uint8), t).astype(np.float32)
                ok &= "".join(f"{int(u):08x}" for u in ref.view(np.uint32)) == dec_hex
            checked += 1
            if not ok:
                failures += 1
                print(f"FAIL {codec} {case['name']}", file=sys.stderr)
        for r in v["refused"]:
            try:
                encode_row(codec, layout, f32s(r["input_f32_bits"]), None)
                failures += 1
                print(f"FAIL {codec} {r['name']}: not refused", file=sys.stderr)
            except Refused:
                checked += 1
    print(f"{checked} checks, {failures} failures" + ("" if quants else " (gguf not importable: ggml decode check skipped)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
