#!/usr/bin/env python3
"""Independent check of the ternary codecs' golden vectors against SPEC.md §7.8.

Reimplements, from the spec text with numpy's IEEE binary16/binary32 scalars and Python's
binary64 floats, the absmean ternary encoder and the TQ1_0 / TQ2_0 block packing and
decoders, then checks every case of format-spec/tests/vectors/ternary/<id>.json: the encoder
must reproduce `encoded_hex` byte for byte, the decoder `decoded_f32_bits` bit for bit, the
`lossless` flag must say whether the decoded row equals the input, and every `refused` row
must be refused. If PyPI `gguf` is importable (the peers' tools venv), every encoded row is
also decoded by `gguf.quants.dequantize` under the layout's ggml type and must match bit for
bit: the claim that these codecs write ggml's own blocks.

This file shares no code with the Rust reference. Usage:
  python3 compat-tests/scripts/check_ternary_vectors.py
  "$HCT_PEERS_PYTHON" compat-tests/scripts/check_ternary_vectors.py     # + gguf
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "format-spec/tests/vectors/ternary"
F16, F32 = np.float16, np.float32
BLOCK = 256
BLOCK_BYTES = {"ggml_tq1_0": 54, "ggml_tq2_0": 66}


class Refused(Exception):
    pass


def f32s(hexstr: str) -> list[np.float32]:
    return [np.uint32(int(hexstr[i:i + 8], 16)).view(F32) for i in range(0, len(hexstr), 8)]


def bits(values) -> str:
    return "".join(f"{int(np.float32(y).view(np.uint32)):08x}" for y in values)


def encode_block(x32):
    """§7.8.2: absmean codes, then the least-squares scale; returns (binary16 d, codes)."""
    xs = [float(v) for v in x32]
    total = 0.0
    for v in xs:
        total += abs(v)
    gamma = max(total / 256.0, 1e-5)
    codes, kept_sum, kept = [], 0.0, 0
    for v in xs:
        if 2.0 * abs(v) > gamma:
            codes.append(1 if v > 0 else -1)
            kept_sum += abs(v)
            kept += 1
        else:
            codes.append(0)
    if kept == 0:
        return F16(0.0), [0] * BLOCK
    with np.errstate(over="ignore"):
        d = F16(F32(kept_sum / kept))
    if not np.isfinite(d):
        raise Refused("scale overflows binary16")
    if float(d) == 0.0:
        return F16(0.0), [0] * BLOCK
    return d, codes


def base3(digits) -> int:
    v = 0
    for t in digits:
        v = v * 3 + t
    return -(-(v * 256) // 243)  # ceiling


def pack(layout, d, codes) -> bytes:
    t = [q + 1 for q in codes]
    scale = np.array([d], dtype=F16).tobytes()
    if layout == "ggml_tq2_0":
        qs = bytearray(64)
        for half in range(2):
            for m in range(32):
                qs[32 * half + m] = sum(t[128 * half + 32 * f + m] << (2 * f) for f in range(4))
        return bytes(qs) + scale
    qs = [base3(t[32 * n + m] for n in range(5)) for m in range(32)]
    qs += [base3(t[160 + 16 * n + m] for n in range(5)) for m in range(16)]
    qs += [base3([t[240 + 4 * n + m] for n in range(4)] + [0]) for m in range(4)]
    return bytes(qs) + scale


def decode(layout, block: bytes) -> list[np.float32]:
    if layout == "ggml_tq2_0":
        d = F32(np.frombuffer(block[64:66], dtype=F16)[0])
        out = [F32(0)] * BLOCK
        for half in range(2):
            for f in range(4):
                for m in range(32):
                    q = (block[32 * half + m] >> (2 * f)) & 3
                    out[128 * half + 32 * f + m] = F32(q - 1) * d
        return out
    d = F32(np.frombuffer(block[52:54], dtype=F16)[0])
    out = []
    for lo, hi, digits in ((0, 32, 5), (32, 48, 5), (48, 52, 4)):
        for n in range(digits):
            for byte in block[lo:hi]:
                shifted = (byte * 3 ** n) & 0xFF
                out.append(F32(((shifted * 3) >> 8) - 1) * d)
    return out


def encode_row(layout, x) -> bytes:
    if any(not np.isfinite(v) for v in x):
        raise Refused("non-finite element")
    if len(x) % BLOCK:
        raise Refused("row not a whole number of 256-element blocks")
    out = b""
    for b in range(0, len(x), BLOCK):
        d, codes = encode_block(x[b:b + BLOCK])
        out += pack(layout, d, codes)
    return out


def main() -> int:
    try:
        from gguf import quants, GGMLQuantizationType  # type: ignore
    except ImportError:
        quants = None
    failures = checked = 0
    files = sorted(VECTORS.glob("*.json"))
    if not files:
        print(f"no vectors under {VECTORS}", file=sys.stderr)
        return 1
    for path in files:
        v = json.loads(path.read_text())
        codec, layout = v["codec"], v["layout"]
        bb = BLOCK_BYTES[layout]
        for case in v["cases"]:
            x = f32s(case["input_f32_bits"])
            got = encode_row(layout, x)
            dec = [y for i in range(0, len(got), bb) for y in decode(layout, got[i:i + bb])]
            dec_hex = bits(dec)
            ok = got.hex() == case["encoded_hex"] and dec_hex == case["decoded_f32_bits"]
            ok &= (dec_hex == case["input_f32_bits"]) == case["lossless"]
            if quants is not None:
                t = getattr(GGMLQuantizationType, layout.removeprefix("ggml_").upper())
                ref = quants.dequantize(np.frombuffer(got, dtype=np.uint8), t).astype(np.float32)
                ok &= bits(ref.ravel()) == dec_hex
            checked += 1
            if not ok:
                failures += 1
                print(f"FAIL {codec} {case['name']}", file=sys.stderr)
        for r in v["refused"]:
            try:
                encode_row(layout, f32s(r["input_f32_bits"]))
                failures += 1
                print(f"FAIL {codec} {r['name']}: not refused", file=sys.stderr)
            except Refused:
                checked += 1
    print(f"{checked} checks, {failures} failures" + ("" if quants else " (gguf not importable: ggml decode check skipped)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
