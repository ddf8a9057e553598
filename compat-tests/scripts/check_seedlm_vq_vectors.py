#!/usr/bin/env python3
"""Reproduce the SeedLM and vector-quantization golden vectors from SPEC.md §7.9 and §7.10 alone.

An independent implementation in numpy (not a port of the Rust code): for every case of
format-spec/tests/vectors/seedlm/<id>.json and format-spec/tests/vectors/vq/<id>.json it
encodes the input as the spec says, compares the bytes, decodes them and compares the f32
bits, and checks that the refused rows are refused. For vector quantization it first trains the
two codebooks by §7.10.1 and compares their SHA-256 with the file's.

  python check_seedlm_vq_vectors.py [VECTOR_DIR]     (numpy; the peers tools venv has it)

Prints one line per file and exits non-zero on the first mismatch.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
M64 = (1 << 64) - 1


def f32_from_bits(hexstr: str) -> np.ndarray:
    words = [int(hexstr[i:i + 8], 16) for i in range(0, len(hexstr), 8)]
    return np.array(words, dtype=np.uint32).view(np.float32)


def bits_of(x: np.ndarray) -> str:
    return "".join(f"{int(w):08x}" for w in np.asarray(x, dtype=np.float32).view(np.uint32))


# ---------------------------------------------------------------------------------------------
# SeedLM (§7.9)

def lfsr_basis(seed: int) -> np.ndarray:
    """U(seed): 8 x 3 signed bytes, row by row, one Galois LFSR step (mask 0xB400) per entry."""
    state = (seed * 40503) & 0xFFFF
    u = np.zeros((8, 3), dtype=np.int64)
    for i in range(8):
        for p in range(3):
            state = (state >> 1) ^ (0xB400 if state & 1 else 0)
            hi = state >> 8
            u[i, p] = hi - 256 if hi >= 128 else hi
    return u


class SeedTable:
    """Bases and H = adj(G)/det(G) of every seed 1 .. 2^K - 1, as arrays over seeds."""

    def __init__(self, k: int):
        n = (1 << k) - 1
        self.u = np.stack([lfsr_basis(s) for s in range(1, n + 1)])  # (n, 8, 3) int64
        g = np.einsum("nip,niq->npq", self.u, self.u)  # exact integers
        adj = np.zeros_like(g)
        for p in range(3):
            for q in range(3):
                # adj[p][q] = cofactor of g[q][p]
                rows = [r for r in range(3) if r != q]
                cols = [c for c in range(3) if c != p]
                minor = g[:, rows[0], cols[0]] * g[:, rows[1], cols[1]] - g[:, rows[0], cols[1]] * g[:, rows[1], cols[0]]
                adj[:, p, q] = minor if (p + q) % 2 == 0 else -minor
        det = g[:, 0, 0] * adj[:, 0, 0] + g[:, 0, 1] * adj[:, 1, 0] + g[:, 0, 2] * adj[:, 2, 0]
        self.valid = det != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            self.h = adj.astype(np.float64) / det.astype(np.float64)[:, None, None]
        self.uf = self.u.astype(np.float64)


def seedlm_decode_sub(u: np.ndarray, e: int, c) -> np.ndarray:
    s = u[:, 0] * c[0] + u[:, 1] * c[1] + u[:, 2] * c[2]
    scale = np.float32(2.0 ** -(e + 8))
    return (s.astype(np.float32) * scale).astype(np.float32)


def seedlm_encode_sub(x32: np.ndarray, table: SeedTable):
    x = x32.astype(np.float64)
    best = (1, 15, (0, 0, 0))
    best_err = 0.0
    for i in range(8):
        best_err = best_err + x[i] * x[i]
    # Every seed at once, each quantity in the order §7.9.1 states.
    b = np.zeros((len(table.uf), 3))
    for i in range(8):
        b = b + table.uf[:, i, :] * x[i]
    h = table.h
    t = np.stack([(h[:, p, 0] * b[:, 0] + h[:, p, 1] * b[:, 1]) + h[:, p, 2] * b[:, 2] for p in range(3)], axis=1)
    # Quantize: the largest e in 15..0 whose rounded codes all fit in -8..7.
    n = len(t)
    e_of = np.full(n, -1)
    q_of = np.zeros((n, 3))
    for e in range(15, -1, -1):
        q = np.rint(t * float(2 ** (e + 8)))  # numpy rint rounds half to even
        fits = np.all((q >= -8) & (q <= 7), axis=1) & (e_of < 0)
        e_of[fits] = e
        q_of[fits] = q[fits]
    none = e_of < 0
    e_of[none] = 0
    q_of[none] = np.clip(np.rint(t[none] * 256.0), -8, 7)
    q_of = q_of.astype(np.int64)
    # Decoded error per seed, index order.
    s_int = np.einsum("nip,np->ni", table.u, q_of)
    scale = np.array([np.float32(2.0 ** -(e + 8)) for e in range(16)], dtype=np.float32)[e_of]
    y = (s_int.astype(np.float32) * scale[:, None]).astype(np.float64)
    err = np.zeros(n)
    for i in range(8):
        d = x[i] - y[:, i]
        err = err + d * d
    candidate = table.valid & np.any(q_of != 0, axis=1)
    for idx in np.nonzero(candidate)[0]:
        if err[idx] < best_err:
            best_err = err[idx]
            best = (int(idx) + 1, int(e_of[idx]), tuple(int(v) for v in q_of[idx]))
    return best


def seedlm_pack(subs, k: int) -> bytes:
    bits, width = 0, k + 16
    for n, (seed, e, c) in enumerate(subs):
        v = seed | (e << k)
        for p in range(3):
            v |= (c[p] & 0xF) << (k + 4 + 4 * p)
        bits |= v << (n * width)
    return bits.to_bytes(16, "little")[: (4 * width) // 8]


def seedlm_unpack(block: bytes, k: int):
    bits, width = int.from_bytes(block, "little"), k + 16
    out = []
    for n in range(4):
        v = bits >> (n * width)
        c = []
        for p in range(3):
            raw = (v >> (k + 4 + 4 * p)) & 0xF
            c.append(raw - 16 if raw >= 8 else raw)
        out.append((v & ((1 << k) - 1), (v >> k) & 0xF, tuple(c)))
    return out


def seedlm_check(doc: dict, k: int) -> None:
    table = SeedTable(k)
    block_bytes = (4 * (k + 16)) // 8
    for case in doc["cases"]:
        x = f32_from_bits(case["input_f32_bits"])
        if np.any(~np.isfinite(x)):
            raise SystemExit(f"{doc['codec']} {case['name']}: input not finite")
        enc = b""
        for b0 in range(0, len(x), 32):
            subs = [seedlm_encode_sub(x[b0 + 8 * n: b0 + 8 * n + 8], table) for n in range(4)]
            enc += seedlm_pack(subs, k)
        if enc.hex() != case["encoded_hex"]:
            raise SystemExit(f"{doc['codec']} {case['name']}: encoded\n {enc.hex()}\nwant\n {case['encoded_hex']}")
        dec = []
        for b0 in range(0, len(enc), block_bytes):
            for seed, e, c in seedlm_unpack(enc[b0:b0 + block_bytes], k):
                dec.append(seedlm_decode_sub(lfsr_basis(seed) if seed else np.zeros((8, 3), np.int64), e, c))
        if bits_of(np.concatenate(dec)) != case["decoded_f32_bits"]:
            raise SystemExit(f"{doc['codec']} {case['name']}: decoded bits differ")
    for r in doc["refused"]:
        if np.all(np.isfinite(f32_from_bits(r["input_f32_bits"]))):
            raise SystemExit(f"{doc['codec']} refused row {r['name']} is finite: spec would encode it")


# ---------------------------------------------------------------------------------------------
# Vector quantization (§7.10)

def splitmix64(state: int):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def training_vectors() -> np.ndarray:
    state, vals = 0, []
    while len(vals) < 16384 * 8:
        state, r = splitmix64(state)
        for half in (r & 0xFFFFFFFF, r >> 32):
            s = sum((half >> (8 * j)) & 0xFF for j in range(4))
            vals.append((s - 510) // 4)
    return np.array(vals, dtype=np.int64).reshape(-1, 8)


def nearest(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    d = ((v[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)  # exact int64
    return d.argmin(axis=1)  # first index on a tie


def kmeans(v: np.ndarray) -> np.ndarray:
    c = v[:256].copy()
    for _ in range(12):
        a = nearest(v, c)
        for k in range(256):
            members = v[a == k]
            n = len(members)
            if n:
                c[k] = (2 * members.sum(axis=0) + n) // (2 * n)
    return c


def train():
    v = training_vectors()
    c1 = kmeans(v)
    c2 = kmeans(v - c1[nearest(v, c1)])
    return c1, c2


M_BITS = [0x3F800000, 0x3F8B95C2, 0x3F9837F0, 0x3FA5FED7, 0x3FB504F3, 0x3FC5672A, 0x3FD744FD, 0x3FEAC0C7]


def vq_scale(code: int) -> np.float32:
    if code == 0:
        return np.float32(0.0)
    m = np.array([M_BITS[code % 8]], dtype=np.uint32).view(np.float32)[0]
    return np.float32(m * np.float32(2.0 ** (code // 8 - 24)))


def vq_encode_group(x32: np.ndarray, c1: np.ndarray, c2: np.ndarray):
    x = x32.astype(np.float64)
    energy = 0.0
    for n in range(32):
        energy = energy + x[n] * x[n]
    best = (energy, 0, [(0, 0)] * 4)
    if energy == 0.0:
        return best[1], best[2]
    target = np.sqrt(energy / 32.0) / 37.0
    start = next((s for s in range(255, 0, -1) if float(vq_scale(s)) <= target), 1)
    c1f, sums = c1.astype(np.float32), (c1[:, None, :] + c2[None, :, :]).astype(np.float32)  # (256, 256, 8)
    for off in (0, 1, -1):
        code = start + off
        if not 1 <= code <= 255:
            continue
        d = vq_scale(code)
        a = (d * c1f).astype(np.float32)
        y_all = (d * sums).astype(np.float32).astype(np.float64)
        total, pairs, done = 0.0, [], True
        for v in range(4):
            xv = x[8 * v: 8 * v + 8]
            e1 = np.zeros(256)
            for k in range(8):
                diff = xv[k] - a[:, k].astype(np.float64)
                e1 = e1 + diff * diff
            beam = sorted(range(256), key=lambda i: (e1[i], i))[:2]
            best_pair = None
            for i in beam:
                e = np.zeros(256)
                for k in range(8):
                    diff = xv[k] - y_all[i, :, k]
                    e = e + diff * diff
                for j in range(256):
                    if best_pair is None or e[j] < best_pair[0] or (e[j] == best_pair[0] and (i, j) < best_pair[1:]):
                        best_pair = (e[j], i, j)
            pairs.append(best_pair[1:])
            total = total + best_pair[0]
            if total >= best[0]:
                done = False
                break
        if done and total < best[0]:
            best = (total, code, pairs)
    return best[1], best[2]


def vq_check(doc: dict) -> None:
    c1, c2 = train()
    if not (np.abs(c1).max() <= 128 and np.abs(c2).max() <= 128):
        raise SystemExit("codebook entries do not fit a signed byte")
    digest = hashlib.sha256(c1.astype(np.int8).tobytes() + c2.astype(np.int8).tobytes()).hexdigest()
    if digest != doc["codebooks_sha256"]:
        raise SystemExit(f"codebooks differ from the file's: {digest} vs {doc['codebooks_sha256']}")
    for case in doc["cases"]:
        x = f32_from_bits(case["input_f32_bits"])
        enc = b""
        for g in range(0, len(x), 32):
            code, pairs = vq_encode_group(x[g:g + 32], c1, c2)
            enc += bytes([code] + [b for p in pairs for b in p])
        if enc.hex() != case["encoded_hex"]:
            raise SystemExit(f"{doc['codec']} {case['name']}: encoded\n {enc.hex()}\nwant\n {case['encoded_hex']}")
        dec = []
        for g in range(0, len(enc), 9):
            d = vq_scale(enc[g])
            for v in range(4):
                i, j = enc[g + 1 + 2 * v], enc[g + 2 + 2 * v]
                dec.append((d * (c1[i] + c2[j]).astype(np.float32)).astype(np.float32))
        if bits_of(np.concatenate(dec)) != case["decoded_f32_bits"]:
            raise SystemExit(f"{doc['codec']} {case['name']}: decoded bits differ")
    for r in doc["refused"]:
        if np.all(np.isfinite(f32_from_bits(r["input_f32_bits"]))):
            raise SystemExit(f"{doc['codec']} refused row {r['name']} is finite: spec would encode it")


def main() -> int:
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "format-spec" / "tests" / "vectors"
    files = sorted((base / "seedlm").glob("*.json")) + sorted((base / "vq").glob("*.json"))
    if not files:
        raise SystemExit(f"no vector files under {base}")
    for f in files:
        doc = json.loads(f.read_text())
        if doc["codec"].startswith("seedlm_"):
            k = int(doc["codec"].split("_s")[1].split("_")[0])
            seedlm_check(doc, k)
        else:
            vq_check(doc)
        print(f"{f.name}: {len(doc['cases'])} cases and {len(doc['refused'])} refusals reproduced from SPEC.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
