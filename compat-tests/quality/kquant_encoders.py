#!/usr/bin/env python3
"""Searched super-block encoders (SPEC.md §7.5.5) beside llama-quantize, tensor by tensor.

For each (HCT codec, llama.cpp type) pair — iq4_xs_mse_v1 / IQ4_XS and q6_k_mse_v1 / Q6_K —
and each model (SmolLM2-135M's dithered f32 base, MiniLM-L6's f32 GGUF):
  HCT:       hct convert BASE X.hct --codec-for '<pattern>=<codec>' ; hct convert X.hct X.gguf
             (native GGUF: the codec's blocks are carried byte for byte as the ggml type)
  llama.cpp: llama-quantize --pure BASE Y.gguf <TYPE> 2   (no imatrix, every tensor that can
             be the type is; --pure so no tensor is bumped to another type)
then decodes both files' tensors with PyPI gguf's own dequantizers and prints, for every
tensor whose rows are whole 256-element super-blocks and which is of that type in both files,
the squared error Σ(x − y)² against the base (binary64 sums). Prints a Markdown table.

Run: compat-tests/quality/kquant_encoders.sh > compat-tests/results/kquant-encoders.md
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gguf import GGUFReader, quants

ROOT = Path(__file__).resolve().parents[2]
HCT = ROOT / "target" / "release" / "hct"
PAIRS = [("iq4_xs_mse_v1", "IQ4_XS"), ("q6_k_mse_v1", "Q6_K")]


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr[-4000:]}")
    return r


def tensors(path, names=None):
    """name -> (ggml type name, f32 array) for the file's tensors (only `names` if given)."""
    out = {}
    for t in GGUFReader(path).tensors:
        if names is not None and t.name not in names:
            continue
        ty = t.tensor_type.name
        if ty == "F32":
            y = np.asarray(t.data, dtype=np.float32).reshape(-1)
        else:
            y = quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(-1)
        out[t.name] = (ty, y)
    return out


def main() -> int:
    env = os.environ
    quantize = Path(env["HCT_LLAMA_BIN"]) / "llama-quantize"
    models = [("SmolLM2-135M (dithered f32 base)", env["HCT_SMOLLM2_DITHERED"]),
              ("all-MiniLM-L6-v2 (f32)", env["HCT_MINILM_F32"])]
    lines = []
    with tempfile.TemporaryDirectory(prefix="hct-kquant-") as tmp:
        work = Path(tmp)
        for label, base in models:
            # Tensors of whole super-blocks: weight matrices whose rows are a multiple of 256.
            base_t = {}
            for t in GGUFReader(base).tensors:
                if t.name.endswith(".weight") and len(t.shape) == 2 and int(t.shape[0]) % 256 == 0:
                    base_t[t.name] = (tuple(int(s) for s in t.shape),
                                      np.asarray(t.data, dtype=np.float32).reshape(-1).copy())
            for codec, ggml in PAIRS:
                hct, ours = work / "x.hct", work / "x.gguf"
                args = []
                for name in sorted(base_t):
                    args += ["--codec-for", f"{name}={codec}"]
                t0 = time.monotonic()
                run([HCT, "convert", base, hct, *args, "--threads", "2"])
                hct_s = time.monotonic() - t0
                run([HCT, "convert", hct, ours])
                hct.unlink()
                theirs = work / "y.gguf"
                t0 = time.monotonic()
                run([quantize, "--pure", "--allow-requantize", base, theirs, ggml, "2"])
                llama_s = time.monotonic() - t0
                a = tensors(ours, set(base_t))
                b = tensors(theirs, set(base_t))
                ours.unlink()
                theirs.unlink()
                lines.append(f"\n### {label}: `{codec}` vs llama-quantize {ggml}\n")
                lines.append(f"Whole-file conversion at 2 threads: hct {hct_s:.1f} s (only these tensors "
                             f"encoded), llama-quantize {llama_s:.1f} s (every tensor).\n")
                lines.append("| tensor | shape (ne0 × ne1) | HCT Σ(x−y)² | llama.cpp Σ(x−y)² | HCT / llama.cpp |")
                lines.append("|---|---|---:|---:|---:|")
                tot_a = tot_b = 0.0
                wins = n = 0
                for name in sorted(base_t, key=lambda s: (len(s), s)):
                    shape, x = base_t[name]
                    ta, ya = a[name]
                    tb, yb = b[name]
                    if ta != ggml or tb != ggml:
                        lines.append(f"| {name} | {shape[0]} × {shape[1]} | ({ta}) | ({tb}) | not compared |")
                        continue
                    x64 = x.astype(np.float64)
                    ea = float(np.sum((x64 - ya.astype(np.float64)) ** 2))
                    eb = float(np.sum((x64 - yb.astype(np.float64)) ** 2))
                    tot_a += ea
                    tot_b += eb
                    n += 1
                    wins += ea < eb
                    lines.append(f"| {name} | {shape[0]} × {shape[1]} | {ea:.6g} | {eb:.6g} | {ea / eb:.4f} |")
                if n:
                    lines.append(f"| **all {n} tensors** | | {tot_a:.6g} | {tot_b:.6g} | **{tot_a / tot_b:.4f}** |")
                lines.append(f"\nHCT has less squared error on {wins} of {n} tensors.")
                print(f"{label} {codec}: {wins}/{n}, total ratio {tot_a / max(tot_b, 1e-300):.4f}", file=sys.stderr)
    print("# Searched super-block encoders vs llama-quantize (per-tensor squared error)\n")
    print("Made by `compat-tests/quality/kquant_encoders.sh > compat-tests/results/kquant-encoders.md` "
          "(needs the peers: `bash compat-tests/peers.sh build`). Both sides are decoded by PyPI "
          "gguf's dequantizers; the error is the plain squared error against the f32 base, which is "
          "what the HCT encoders minimise (no importance matrix on either side; llama-quantize "
          "without one weights its own fit by x², so it optimises a different objective). "
          "Only tensors whose rows are whole 256-element super-blocks can be these types: "
          "SmolLM2's ffn_down (rows of 1536) and MiniLM's FFN-down (rows of 1536).")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
