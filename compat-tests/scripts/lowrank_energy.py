#!/usr/bin/env python3
"""Could a low-rank (SVD) codec beat hct_v3 on attention projections? An upper bound.

For every attention projection (q, k, v, output) of SmolLM2-135M (the dithered F32 base the
quality runs use) and all-MiniLM-L6-v2 (F32), and for i.i.d. Gaussian noise of the same shape
and RMS (seed 0): the cosine between the matrix and its best rank-r approximation (truncated
SVD, binary64 LAPACK: cos = ‖W_r‖/‖W‖), at the rank whose factors fit the bits per weight of
hct_v3_r90 (4.875) and of hct_v3_r98 (5.25) when stored as binary16 (r·(m+n)·16 bits for an
m×n matrix), and the bits per weight such factors need to reach cosine 0.994 (hct_v3_r90's
measured mean tensor cosine on these models, compat-tests/results/spectral.md).
Exact factors, no rounding: a real codec can only do worse, so a shortfall here is final.

  "$HCT_PEERS_PYTHON" compat-tests/scripts/lowrank_energy.py > compat-tests/results/lowrank-energy.md
"""
import os

import numpy as np
from gguf import GGUFReader

ATTN = ("attn_q.", "attn_k.", "attn_v.", "attn_output.")
BUDGETS = [("hct_v3_r90", 4.875), ("hct_v3_r98", 5.25)]
TARGET = 0.994


def matrices(path):
    for t in GGUFReader(path).tensors:
        if any(a in t.name for a in ATTN) and t.name.endswith(".weight") and len(t.shape) == 2:
            yield t.name, np.asarray(t.data, dtype=np.float64)


def profile(w):
    """Cosines at the budget ranks and the bits per weight needed for TARGET."""
    m, n = w.shape
    s = np.linalg.svd(w, compute_uv=False)
    cum = np.sqrt(np.cumsum(s * s) / np.sum(s * s))
    out = []
    for _, bpw in BUDGETS:
        r = min(int(bpw * m * n // (16 * (m + n))), len(s))
        out.append(float(cum[r - 1]) if r > 0 else 0.0)
    need = int(np.searchsorted(cum, TARGET)) + 1
    out.append(need * (m + n) * 16 / (m * n))
    return out


def main():
    models = [("SmolLM2-135M (dithered F32)", os.environ["HCT_SMOLLM2_DITHERED"]),
              ("all-MiniLM-L6-v2 (F32)", os.environ["HCT_MINILM_F32"])]
    rng = np.random.default_rng(0)
    print("# Low-rank (SVD) bound for attention projections\n")
    print("Made by `\"$HCT_PEERS_PYTHON\" compat-tests/scripts/lowrank_energy.py > "
          "compat-tests/results/lowrank-energy.md` (after `eval \"$(bash compat-tests/peers.sh env)\"`).")
    print("Cosine of each matrix with its best rank-r approximation (exact truncated SVD), r the largest "
          "rank whose binary16 factors (r·(m+n)·16 bits) fit the bits per weight of the hct_v3 id named; "
          f"`bpw for {TARGET}`: what such factors need to reach cosine {TARGET} (hct_v3_r90's mean tensor "
          "cosine). Noise: i.i.d. Gaussian, same shape and RMS (seed 0). Mean over the model's matrices of "
          "each kind. Exact factors: a codec can only do worse.\n")
    for label, path in models:
        print(f"## {label}\n")
        head = " | ".join(f"cos at {b} bpw ({c}) | noise" for c, b in BUDGETS)
        print(f"| kind | matrices | shape | {head} | bpw for {TARGET} | noise |")
        print("|---|---:|---|" + "---:|---:|" * len(BUDGETS) + "---:|---:|")
        by_kind = {}
        for name, w in matrices(path):
            noise = rng.standard_normal(w.shape) * float(np.sqrt(np.mean(w * w)))
            kind = next(a for a in ATTN if a in name).rstrip(".")
            by_kind.setdefault(kind, []).append((w.shape, profile(w), profile(noise)))
        for kind, rows in by_kind.items():
            shape = "x".join(map(str, rows[0][0]))
            mean = lambda i, j: np.mean([r[i][j] for r in rows])
            cells = " | ".join(f"{mean(1, j):.4f} | {mean(2, j):.4f}" for j in range(len(BUDGETS)))
            k = len(BUDGETS)
            print(f"| {kind} | {len(rows)} | {shape} | {cells} | {mean(1, k):.2f} | {mean(2, k):.2f} |")
        print()


if __name__ == "__main__":
    main()
