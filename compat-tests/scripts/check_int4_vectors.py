#!/usr/bin/env python3
"""Independent check of HCT's int4 golden vectors against SPEC.md §7.4.

Reimplements, from the spec text and with numpy's IEEE binary16/binary32 scalars, the
int4 decoder, the min/max encoder and the int4_opt_v1 encoder, then checks every case of
format-spec/tests/vectors/int4/<id>.json: the encoder must reproduce `encoded_hex` byte
for byte, the decoder `decoded_f32_bits` bit for bit, and every `refused` row must be
refused. It also regenerates the Gaussian-like inputs from the spec'd generator
(SplitMix64 + Irwin-Hall) to show they are reproducible outside Rust.

If PyPI `gguf` is importable, every int4_g32_fp16_v1 row whose length is a multiple of 32
is also decoded by `gguf.quants.dequantize(..., Q4_1)` and must match bit for bit: the
§7.4.8 claim that g32 blocks are ggml Q4_1 blocks.

This file shares no code with the Rust reference. Usage:
  python3 compat-tests/scripts/check_int4_vectors.py            # numpy only
  "$HCT_PEERS_PYTHON" compat-tests/scripts/check_int4_vectors.py   # + gguf (tools venv)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "format-spec/tests/vectors/int4"
CODECS = {
    "int4_g8_fp16_v1": (8, "minmax"),
    "int4_g16_fp16_v1": (16, "minmax"),
    "int4_g32_fp16_v1": (32, "minmax"),
    "int4_opt_v1": (16, "opt_v1"),
}
F32, F16 = np.float32, np.float16


class Refused(Exception):
    pass


def fp16(v: np.float32) -> np.float16:
    """binary32 -> binary16, nearest, ties to even (numpy's conversion is IEEE)."""
    with np.errstate(over="ignore"):
        return F16(F32(v))


def quantize(x: list[np.float32], d: np.float16, m: np.float16) -> list[int]:
    dd, mm = F32(d), F32(m)
    if dd == 0:
        return [0] * len(x)
    out = []
    with np.errstate(over="ignore"):
        for xi in x:
            v = np.rint((xi - mm) / dd)  # f32 subtract, f32 divide, round half to even
            out.append(int(min(max(v, F32(0)), F32(15))))
    return out


def decode_value(q: int, d: np.float16, m: np.float16) -> np.float32:
    return F32(q) * F32(d) + F32(m)  # two binary32 roundings


def err(x, d, m, q) -> float:
    total = 0.0  # Python floats are binary64
    for xi, qi in zip(x, q):
        diff = float(xi) - float(decode_value(qi, d, m))
        total += diff * diff
    return total


def minmax_params(x):
    for xi in x:
        if not np.isfinite(xi):
            raise Refused("non-finite element")
    lo = hi = x[0]
    for xi in x[1:]:
        if xi < lo:
            lo = xi
        if xi > hi:
            hi = xi
    d = fp16((hi - lo) / F32(15))
    if not np.isfinite(d):
        raise Refused("scale overflows binary16")
    m = fp16(lo)
    if not np.isfinite(m):
        raise Refused("minimum overflows binary16")
    return d, m


def encode_minmax(x):
    d, m = minmax_params(x)
    return d, m, quantize(x, d, m)


def encode_opt_v1(x):
    d, m = minmax_params(x)
    q = quantize(x, d, m)
    best, best_err = (d, m, q), err(x, d, m, q)
    for _ in range(3):
        n = float(len(x))
        sq = sqq = sx = sqx = 0.0
        for xi, qi in zip(x, q):
            sq += float(qi)
            sqq += float(qi) * float(qi)
            sx += float(xi)
            sqx += float(qi) * float(xi)
        det = n * sqq - sq * sq
        if det == 0.0:
            break
        d_fit = (n * sqx - sq * sx) / det
        m_fit = (sx - d_fit * sq) / n
        if not d_fit > 0 or not np.isfinite(d_fit) or not np.isfinite(m_fit):
            break
        with np.errstate(over="ignore"):
            d, m = fp16(F32(d_fit)), fp16(F32(m_fit))  # f64 -> f32 -> f16
        if not (np.isfinite(d) and np.isfinite(m)):
            break
        q = quantize(x, d, m)
        e = err(x, d, m, q)
        if e < best_err:
            best, best_err = (d, m, q), e
    return best


def pack(d, m, q, n) -> bytes:
    q = q + [0] * (n - len(q))
    half = n // 2
    codes = bytes(q[j] | (q[j + half] << 4) for j in range(half))
    return d.tobytes() + m.tobytes() + codes  # numpy scalars are little-endian here


def encode_row(x, n, encoder) -> bytes:
    enc = encode_minmax if encoder == "minmax" else encode_opt_v1
    out = b""
    for g in range(0, len(x), n):
        group = x[g : g + n]
        d, m, q = enc(group)
        out += pack(d, m, q, n)
    return out


def decode_row(data: bytes, length: int, n: int) -> list[np.float32]:
    bb = 4 + n // 2
    out = []
    for g in range(0, length, n):
        block = data[(g // n) * bb : (g // n + 1) * bb]
        d = np.frombuffer(block[0:2], dtype="<f2")[0]
        m = np.frombuffer(block[2:4], dtype="<f2")[0]
        for i in range(min(n, length - g)):
            byte = block[4 + i % (n // 2)]
            q = byte & 0x0F if i < n // 2 else byte >> 4
            out.append(decode_value(q, d, m))
    return out


def parse_bits(hex_str: str) -> list[np.float32]:
    return [np.uint32(int(hex_str[i : i + 8], 16)).view(F32) for i in range(0, len(hex_str), 8)]


def bits_of(x) -> str:
    return "".join(f"{int(F32(v).view(np.uint32)):08x}" for v in x)


def splitmix64(seed: int):
    mask = (1 << 64) - 1
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        yield z ^ (z >> 31)


def gaussian_like(seed: int, length: int, sigma: float) -> list[np.float32]:
    rng = splitmix64(seed)
    out = []
    for _ in range(length):
        s = 0.0
        for _ in range(12):
            s += (next(rng) >> 11) * (1.0 / 9007199254740992.0)
        out.append(F32((s - 6.0) * sigma))
    return out


# The Gaussian-like cases and their documented (seed, sigma) construction.
GAUSSIAN_CASES = {
    "gaussian_weights": (1, 0.02),
    "gaussian_unit": (2, 1.0),
    "row_len_1": (11, 0.02),
    "row_len_7": (12, 0.02),
    "row_len_16": (13, 0.02),
    "row_len_33": (14, 0.02),
    "row_len_100": (15, 0.02),
}


def main() -> int:
    try:
        import gguf  # noqa: F401
        from gguf.quants import dequantize as gguf_dequantize

        have_gguf = True
    except ImportError:
        have_gguf = False

    failures = 0
    checked = 0
    # Every vector file the reference crate wrote, so a codec added there without an
    # implementation here fails instead of going unchecked.
    for path in sorted(VECTORS.glob("*.json")):
        codec = path.stem
        if codec not in CODECS:
            print(f"FAIL {path.name}: no independent implementation of {codec} here")
            failures += 1
            continue
        n, encoder = CODECS[codec]
        doc = json.loads(path.read_text())
        assert doc["group_size"] == n and doc["block_bytes"] == 4 + n // 2, codec
        for case in doc["cases"]:
            name = case["name"]
            x = parse_bits(case["input_f32_bits"])
            assert len(x) == case["row_len"], (codec, name)
            if name in GAUSSIAN_CASES:
                seed, sigma = GAUSSIAN_CASES[name]
                if bits_of(gaussian_like(seed, len(x), sigma)) != case["input_f32_bits"]:
                    print(f"FAIL {codec} {name}: generator does not reproduce the input")
                    failures += 1
            got = encode_row(x, n, encoder).hex()
            if got != case["encoded_hex"]:
                print(f"FAIL {codec} {name}: encoded\n  got  {got}\n  want {case['encoded_hex']}")
                failures += 1
            data = bytes.fromhex(case["encoded_hex"])
            decoded = bits_of(decode_row(data, len(x), n))
            if decoded != case["decoded_f32_bits"]:
                print(f"FAIL {codec} {name}: decoded bits differ")
                failures += 1
            if have_gguf and codec == "int4_g32_fp16_v1" and len(x) % 32 == 0:
                peer = gguf_dequantize(np.frombuffer(data, dtype=np.uint8), gguf.GGMLQuantizationType.Q4_1)
                if bits_of(peer.astype(np.float32).ravel()) != case["decoded_f32_bits"]:
                    print(f"FAIL {codec} {name}: gguf Q4_1 dequantize differs")
                    failures += 1
            checked += 1
        for case in doc["refused"]:
            x = parse_bits(case["input_f32_bits"])
            try:
                encode_row(x, n, encoder)
                print(f"FAIL {codec} {case['name']}: accepted, must be refused")
                failures += 1
            except Refused:
                pass
            checked += 1
    missing = [c for c in CODECS if not (VECTORS / f"{c}.json").exists()]
    for codec in missing:
        print(f"FAIL {codec}: implemented here but has no vector file")
        failures += 1
    peer = "numpy + gguf Q4_1 peer" if have_gguf else "numpy only (gguf not installed)"
    print(f"{checked} int4 vector cases checked ({peer}), {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
