#!/usr/bin/env python3
"""Independent check of the hct_v3 spectral codecs' golden vectors against SPEC.md §7.6
(and of the mixed-precision hct_v3m ids against §7.6.6, whose K and H come from its table).

Reimplements, from the spec text with numpy's IEEE binary16/binary32 arithmetic, the
64-point DCT-II basis (from the 65 constants T[j] and the folding rule, and checks those
constants against numpy's own cosine), the forward transform, the retention rule with its
tie-break, the 4-bit quantizer, the tile layout and the decoder; then checks every case of
format-spec/tests/vectors/spectral/<id>.json: the encoder must reproduce `encoded_hex` byte
for byte, the decoder `decoded_f32_bits` bit for bit, and every `refused` row must be refused.

This file shares no code with the Rust reference. Usage:
  "$HCT_PEERS_PYTHON" compat-tests/scripts/check_hct_v3_vectors.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "format-spec/tests/vectors/spectral"
SPEC = ROOT / "format-spec/SPEC.md"
F16, F32 = np.float16, np.float32
N = 64


def spec_table() -> list[int]:
    """The 65 bit patterns of T[j], read from the SPEC.md section itself."""
    text = SPEC.read_text()
    section = text[text.index("#### 7.6.2 The basis"):text.index("#### 7.6.3")]
    rows = re.findall(r"^j\s*[\d\- ]+:\s*((?:[0-9a-f]{8}\s*)+)$", section, re.M)
    bits = [int(h, 16) for row in rows for h in row.split()]
    assert len(bits) == 65, f"SPEC.md §7.6.2 lists {len(bits)} constants, not 65"
    return bits


def basis() -> np.ndarray:
    t_bits = spec_table()
    t = np.array(t_bits, dtype=np.uint32).view(F32)
    # The constants are the binary32 values of sqrt(2)/8*cos(pi*j/128); T[64] is +0.
    own = (np.sqrt(2.0) / 8 * np.cos(np.pi * np.arange(65) / 128)).astype(F32)
    own[64] = F32(0.0)
    assert (own.view(np.uint32) == t.view(np.uint32)).all(), "T[j] is not the rounded cosine"
    c = np.zeros((N, N), dtype=F32)
    c[0, :] = F32(0.125)
    for k in range(1, N):
        for n in range(N):
            m = ((2 * n + 1) * k) % 256
            if m <= 64:
                v = t[m]
            elif m <= 128:
                v = -t[128 - m]
            elif m <= 192:
                v = -t[m - 128]
            else:
                v = t[256 - m]
            c[k, n] = F32(0.0) if v == 0 else v  # T[64] stays +0
    return c


C = basis()


class Refused(Exception):
    pass


def kept_of(codec: str) -> int:
    p = int(codec.rsplit("_r", 1)[1])
    return (p * N + 50) // 100


def encode_tile(x: np.ndarray, k_keep: int) -> bytes:
    if not np.isfinite(x).all():
        raise Refused("non-finite element")
    tile = np.zeros(N, dtype=F32)
    tile[: len(x)] = x
    # c[k] = sum_n C[k][n]*x[n], n ascending from +0, binary32 rounding after each op:
    # vectorized over k, sequential over n.
    s = np.zeros(N, dtype=F32)
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(N):
            s = (s + (C[:, n] * tile[n]).astype(F32)).astype(F32)
    if not np.isfinite(s).all():
        raise Refused("coefficient overflow")
    order = sorted(range(N), key=lambda k: (-abs(float(s[k])), k))
    chosen = order[:k_keep]
    a = F32(abs(s[chosen[0]]))
    with np.errstate(over="ignore"):
        d = F16(F32(a / F32(7.0)))
    if not np.isfinite(d):
        raise Refused("scale overflow")
    dd = F32(d)
    bitmap = 0
    for k in chosen:
        bitmap |= 1 << k
    codes = []
    for k in range(N):
        if bitmap >> k & 1:
            if dd == 0:
                q = 0
            else:
                q = int(np.clip(np.round(F32(s[k] / dd)), -8, 7))  # np.round: ties to even
            codes.append(q + 8)
    out = bytearray(10 + (k_keep + 1) // 2)
    out[0:8] = bitmap.to_bytes(8, "little")
    out[8:10] = d.view(np.uint16).tobytes()
    for i, code in enumerate(codes):
        out[10 + i // 2] |= code if i % 2 == 0 else code << 4
    return bytes(out)


def decode_tile(tile: bytes, k_keep: int, r: int) -> np.ndarray:
    bitmap = int.from_bytes(tile[0:8], "little")
    dd = F32(np.frombuffer(tile[8:10], dtype=np.uint16).view(F16)[0])
    coeff = np.zeros(N, dtype=F32)
    i = 0
    for k in range(N):
        if i == k_keep:
            break
        if bitmap >> k & 1:
            byte = tile[10 + i // 2]
            code = byte & 15 if i % 2 == 0 else byte >> 4
            coeff[k] = F32(F32(code - 8) * dd)
            i += 1
    s = np.zeros(N, dtype=F32)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(N):  # k ascending from +0, all 64 terms
            s = (s + (C[k, :] * coeff[k]).astype(F32)).astype(F32)
    return s[:r]


def f32s(hexstr: str) -> np.ndarray:
    return np.array([int(hexstr[i:i + 8], 16) for i in range(0, len(hexstr), 8)],
                    dtype=np.uint32).view(F32)


def mixed_table() -> dict[str, tuple[int, int, int]]:
    """id -> (K, H, tile bytes), read from SPEC.md §7.6.6's table."""
    text = SPEC.read_text()
    section = text[text.index("#### 7.6.6"):text.index("### 7.7")]
    rows = re.findall(r"^\| `(hct_v3m_\w+)` \| (\d+) \| (\d+) \| (\d+) \|", section, re.M)
    assert rows, "SPEC.md §7.6.6 lists no hct_v3m ids"
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def forward(tile: np.ndarray) -> np.ndarray:
    s = np.zeros(N, dtype=F32)
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(N):
            s = (s + (C[:, n] * tile[n]).astype(F32)).astype(F32)
    return s


def inverse(coeff: np.ndarray, r: int) -> np.ndarray:
    s = np.zeros(N, dtype=F32)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(N):
            s = (s + (C[k, :] * coeff[k]).astype(F32)).astype(F32)
    return s[:r]


def encode_tile_mixed(x: np.ndarray, k_keep: int, high: int) -> bytes:
    """SPEC.md §7.6.6 encoder."""
    if not np.isfinite(x).all():
        raise Refused("non-finite element")
    tile = np.zeros(N, dtype=F32)
    tile[: len(x)] = x
    s = forward(tile)
    if not np.isfinite(s).all():
        raise Refused("coefficient overflow")
    order = sorted(range(N), key=lambda k: (-abs(float(s[k])), k))[:k_keep]
    pos = sorted(order[:high])
    with np.errstate(over="ignore"):
        vals = [F16(s[p]) for p in pos]
        d = F16(F32(F32(abs(s[order[high]])) / F32(7.0)))
    if not all(np.isfinite(v) for v in vals) or not np.isfinite(d):
        raise Refused("beyond binary16")
    dd = F32(d)
    bitmap = sum(1 << k for k in order)
    codes = []
    for k in range(N):
        if bitmap >> k & 1 and k not in pos:
            q = 0 if dd == 0 else int(np.clip(np.round(F32(s[k] / dd)), -8, 7))
            codes.append(q + 8)
    out = bytearray(10 + 3 * high + (k_keep - high + 1) // 2)
    out[0:8] = bitmap.to_bytes(8, "little")
    out[8:10] = d.view(np.uint16).tobytes()
    for j, (p, v) in enumerate(zip(pos, vals)):
        out[10 + j] = p
        out[10 + high + 2 * j:10 + high + 2 * j + 2] = v.view(np.uint16).tobytes()
    for i, code in enumerate(codes):
        out[10 + 3 * high + i // 2] |= code if i % 2 == 0 else code << 4
    return bytes(out)


def decode_tile_mixed(tile: bytes, k_keep: int, high: int, r: int) -> np.ndarray:
    """SPEC.md §7.6.6 decoder, steps 1-4."""
    bitmap = int.from_bytes(tile[0:8], "little")
    dd = F32(np.frombuffer(tile[8:10], dtype=np.uint16).view(F16)[0])
    pos = list(tile[10:10 + high])
    listed = {p for p in pos if p < N}
    coeff = np.zeros(N, dtype=F32)
    i = 0
    for k in range(N):
        if i == k_keep - high:
            break
        if bitmap >> k & 1 and k not in listed:
            byte = tile[10 + 3 * high + i // 2]
            code = byte & 15 if i % 2 == 0 else byte >> 4
            coeff[k] = F32(F32(code - 8) * dd)
            i += 1
    for j, p in enumerate(pos):
        if p < N:
            coeff[p] = F32(np.frombuffer(tile[10 + high + 2 * j:12 + high + 2 * j], dtype=np.uint16).view(F16)[0])
    return inverse(coeff, r)


def encode_row(x: np.ndarray, k_keep: int, high: int | None = None) -> bytes:
    if high is not None:
        return b"".join(encode_tile_mixed(x[t:t + N], k_keep, high) for t in range(0, len(x), N))
    return b"".join(encode_tile(x[t:t + N], k_keep) for t in range(0, len(x), N))


def check(path: Path) -> int:
    doc = json.loads(path.read_text())
    high = None
    if doc["codec"].startswith("hct_v3m_"):
        k_keep, high, tb = mixed_table()[doc["codec"]]
        assert tb == 10 + 3 * high + (k_keep - high + 1) // 2, f"{path.name}: tile bytes"
        assert doc["fp16_per_tile"] == high, f"{path.name}: H {doc['fp16_per_tile']} != {high}"
        decode_tile = lambda t, k, r: decode_tile_mixed(t, k, high, r)  # noqa: E731
    else:
        k_keep = kept_of(doc["codec"])
        tb = 10 + (k_keep + 1) // 2
        decode_tile = globals()["decode_tile"]
    assert doc["kept_per_tile"] == k_keep, f"{path.name}: K {doc['kept_per_tile']} != {k_keep}"
    bad = 0
    for case in doc["cases"]:
        x = f32s(case["input_f32_bits"])
        assert len(x) == case["row_len"]
        enc = encode_row(x, k_keep, high)
        if enc.hex() != case["encoded_hex"]:
            print(f"FAIL {doc['codec']} {case['name']}: encoded bytes differ")
            bad += 1
        stored = bytes.fromhex(case["encoded_hex"])
        y = np.concatenate([decode_tile(stored[t * tb:(t + 1) * tb], k_keep, min(N, len(x) - t * N))
                            for t in range((len(x) + N - 1) // N)])
        if y.view(np.uint32).tobytes() != f32s(case["decoded_f32_bits"]).view(np.uint32).tobytes():
            print(f"FAIL {doc['codec']} {case['name']}: decoded bits differ")
            bad += 1
    for ref in doc["refused"]:
        try:
            encode_row(f32s(ref["input_f32_bits"]), k_keep, high)
            print(f"FAIL {doc['codec']} {ref['name']}: not refused")
            bad += 1
        except Refused:
            pass
    print(f"{doc['codec']}: {len(doc['cases'])} cases, {len(doc['refused'])} refusals, "
          f"{'ok' if bad == 0 else f'{bad} failures'}")
    return bad


def main() -> int:
    files = sorted(VECTORS.glob("hct_v3_*.json")) + sorted(VECTORS.glob("hct_v3m_*.json"))
    if sorted(p.stem for p in VECTORS.glob("hct_v3m_*.json")) != sorted(mixed_table()):
        print("vector files and SPEC.md §7.6.6's ids differ", file=sys.stderr)
        return 1
    if not files:
        print(f"no vectors under {VECTORS}", file=sys.stderr)
        return 1
    return 1 if sum(check(p) for p in files) else 0


if __name__ == "__main__":
    sys.exit(main())
