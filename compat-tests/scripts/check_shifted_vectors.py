#!/usr/bin/env python3
"""Independent check of the shifted non-uniform codecs' golden vectors against SPEC.md §7.7.

Reimplements, from the spec text with numpy's IEEE binary16/binary32 scalars and Python's
binary64 floats, the super-block layout, its decoder and its encoder, then checks every case of
format-spec/tests/vectors/shifted/<id>.json for every id of §7.7's table (nl4_sh64_v1,
nl5_sh64_v1, nl6_sh64_v1): the encoder must reproduce `encoded_hex` byte for byte, the decoder
`decoded_f32_bits` bit for bit, and every `refused` row must be refused. Each id's code width,
shift and grid are read from SPEC.md §7.7 itself (its table and its list of grids), so a grid
changed in the spec and not in the code, or the reverse, fails here. The per-block scale
search of step 1 is §7.5.3's, taken from this directory's check_searched_vectors.py (itself
written from §7.5). Nothing here is shared with the Rust reference. Usage:
  python3 compat-tests/scripts/check_shifted_vectors.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_searched_vectors import F16, F32, Refused, f32s, search  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "format-spec/SPEC.md"
VECTORS = ROOT / "format-spec/tests/vectors/shifted"


class Codec:
    """One id of SPEC.md §7.7's table: code width k, shift c, grids G_0 and G_1."""

    def __init__(self, cid: str, k: int, nbytes: int, c: int, code_bytes: int, grid: list[int]):
        assert len(grid) == 1 << k, f"{cid}: SPEC.md lists {len(grid)} grid values, not 2^{k}"
        assert grid == sorted(set(grid)), f"{cid}: grid not strictly ascending"
        assert nbytes == 4 + 2 * code_bytes, f"{cid}: {nbytes} bytes != 4 + 2*{code_bytes}"
        self.id, self.k, self.nbytes, self.code_bytes = cid, k, nbytes, code_bytes
        self.grids = [grid, [g + c for g in grid]]
        assert all(-127 <= g <= 127 for gr in self.grids for g in gr), f"{cid}: grid outside i8"


def codecs_from_spec() -> list[Codec]:
    text = SPEC.read_text()
    section = text[text.index("### 7.7 "):text.index("### 7.8 ")]
    rows = re.findall(r"^\| `(nl\d_sh64_v1)` \| (\d+) \| 64 \| (\d+) \| [\d.]+ \| (\d+) \| (\d+) \|$",
                      section, re.M)
    grids = dict(re.findall(r"^(nl\d_sh64_v1): (-?\d+(?: -?\d+)*)$", section, re.M))
    assert rows, "SPEC.md §7.7 lists no ids"
    assert set(grids) == {r[0] for r in rows}, f"SPEC.md §7.7: ids {sorted(grids)} vs table"
    return [Codec(cid, int(k), int(b), int(c), int(cb), [int(g) for g in grids[cid].split()])
            for cid, k, b, c, cb in rows]


def block_values(grid, dl):
    """binary32 products dl*G[j] widened to binary64."""
    return [float(F32(dl) * F32(g)) for g in grid]


def nearest(grid, dl, xs):
    n = len(grid)
    vals = block_values(grid, dl)
    order = list(range(n)) if dl > 0 else list(range(n - 1, -1, -1))
    s = [vals[j] for j in order]
    mids = np.array([(s[p] + s[p + 1]) / 2.0 for p in range(n - 1)])
    return [order[int(np.searchsorted(mids, x, side="left"))] for x in xs]


def pack_codes(k, codes) -> bytes:
    """§7.7.1: low nibbles of codes j and j + 16 in byte j, then the high bits."""
    out = bytearray(codes[j] & 15 | (codes[j + 16] & 15) << 4 for j in range(16))
    if k == 5:
        out += sum(((q >> 4) & 1) << i for i, q in enumerate(codes)).to_bytes(4, "little")
    elif k == 6:
        high = bytearray(8)
        for i, q in enumerate(codes):
            high[i % 8] |= ((q >> 4) & 3) << (2 * (i // 8))
        out += high
    return bytes(out)


def unpack_codes(k, qs: bytes) -> list[int]:
    codes = [v & 15 for v in qs[:16]] + [v >> 4 for v in qs[:16]]
    if k == 5:
        high = int.from_bytes(qs[16:20], "little")
        codes = [q | ((high >> i) & 1) << 4 for i, q in enumerate(codes)]
    elif k == 6:
        codes = [q | ((qs[16 + i % 8] >> (2 * (i // 8))) & 3) << 4 for i, q in enumerate(codes)]
    return codes


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


def encode_superblock(codec, x32s, ws, first_block):
    grids = codec.grids
    xs = [float(v) for v in x32s]
    sigma = []
    for b in range(2):
        xb, wb = x32s[32 * b:32 * b + 32], ws[32 * b:32 * b + 32]
        best = None
        for grid in grids:
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
        return bytes(codec.nbytes)
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
                    codes = nearest(grids[h], dl, xsb)
                    e = err(grids[h], dl, xsb, wb, codes)
                    if e < c[3]:
                        c = (s, h, codes, e)
            choices.append(c)
        total = choices[0][3] + choices[1][3]
        if best is None or total < best[0]:
            best = (total, d, choices)
    if best is None:
        return bytes(codec.nbytes)
    _, d, choices = best
    out = bytearray(np.array([d], dtype=F16).tobytes())
    out += bytes(((s & 0x7F) << 1) | h for s, h, _, _ in choices)
    for _, _, codes, _ in choices:
        out += pack_codes(codec.k, codes)
    assert len(out) == codec.nbytes
    return bytes(out)


def encode_row(codec, x, importance):
    if any(not np.isfinite(v) for v in x):
        raise Refused("non-finite element")
    out = b""
    for sb in range(0, len(x), 64):
        ws = [float(c) for c in importance[sb:sb + 64]] if importance is not None else [1.0] * 64
        out += encode_superblock(codec, x[sb:sb + 64], ws, sb // 32)
    return out


def decode_superblock(codec, block: bytes):
    d = F32(np.frombuffer(block[:2], dtype=F16)[0])
    out = []
    for b in range(2):
        hdr = block[2 + b]
        s = int(np.uint8(hdr).view(np.int8)) >> 1
        grid = codec.grids[hdr & 1]
        dl = d * F32(s)
        cb = codec.code_bytes
        codes = unpack_codes(codec.k, block[4 + cb * b:4 + cb * (b + 1)])
        out += [dl * F32(grid[q]) for q in codes]
    return out


def check_file(codec: Codec) -> tuple[int, int]:
    v = json.loads((VECTORS / f"{codec.id}.json").read_text())
    assert v["codec"] == codec.id, f"{codec.id}.json names codec {v['codec']}"
    failures = checked = 0
    n = codec.nbytes
    for case in v["cases"]:
        x = f32s(case["input_f32_bits"])
        imp = f32s(case["importance_f32_bits"]) if case.get("importance_f32_bits") else None
        got = encode_row(codec, x, imp)
        dec = [y for i in range(0, len(got), n) for y in decode_superblock(codec, got[i:i + n])]
        dec_hex = "".join(f"{int(np.float32(y).view(np.uint32)):08x}" for y in dec)
        # The decoder alone, on the file's own bytes.
        want = bytes.fromhex(case["encoded_hex"])
        dec_want = [y for i in range(0, len(want), n)
                    for y in decode_superblock(codec, want[i:i + n])]
        dec_want_hex = "".join(f"{int(np.float32(y).view(np.uint32)):08x}" for y in dec_want)
        checked += 1
        if got != want or dec_hex != case["decoded_f32_bits"] \
                or dec_want_hex != case["decoded_f32_bits"]:
            failures += 1
            print(f"FAIL {codec.id} {case['name']}", file=sys.stderr)
    for r in v["refused"]:
        try:
            encode_row(codec, f32s(r["input_f32_bits"]), None)
            failures += 1
            print(f"FAIL {codec.id} {r['name']}: not refused", file=sys.stderr)
        except Refused:
            checked += 1
    return checked, failures


def main() -> int:
    failures = checked = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for codec in codecs_from_spec():
            c, f = check_file(codec)
            print(f"{codec.id}: {c} checks, {f} failures")
            checked, failures = checked + c, failures + f
    print(f"{checked} checks, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
