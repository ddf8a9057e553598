#!/usr/bin/env python3
"""Comparisons for compat-tests/plugin/run.sh (JSON on stdout). Run with the peers tools venv
(numpy, and gguf-py from the pinned llama.cpp tree).

  logits A.bin B.bin N_VOCAB            raw float32 logits of two runs: bit identity, max |diff|,
                                        top-1 agreement, mean KL(A||B) per position
  expected-calls MODEL.gguf CTX CHUNKS  libhct vec_dot calls llama-perplexity must make on a llama-
                                        architecture model whose weight matrices are all extension types
  embeddings A.json B.json              two `peers.sh embed --vectors` results: bit identity,
                                        max |diff|, cosines
"""
from __future__ import annotations

import json
import sys

import numpy as np


def logits(a_path: str, b_path: str, n_vocab: str) -> dict:
    n = int(n_vocab)
    a_raw, b_raw = open(a_path, "rb").read(), open(b_path, "rb").read()
    a = np.frombuffer(a_raw, dtype="<f4").reshape(-1, n).astype(np.float64)
    b = np.frombuffer(b_raw, dtype="<f4").reshape(-1, n).astype(np.float64)
    if a.shape != b.shape:
        raise SystemExit(f"logit shapes differ: {a.shape} vs {b.shape}")

    def log_softmax(x: np.ndarray) -> np.ndarray:
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    la, lb = log_softmax(a), log_softmax(b)
    kl = (np.exp(la) * (la - lb)).sum(axis=1)
    return {
        "positions": int(a.shape[0]),
        "bit_identical": a_raw == b_raw,
        "max_abs_diff": float(np.abs(a - b).max()),
        "mean_abs_diff": float(np.abs(a - b).mean()),
        "top1_agreement": float((a.argmax(axis=1) == b.argmax(axis=1)).mean()),
        "kl_mean": float(kl.mean()),
        "kl_max": float(kl.max()),
    }


def expected_calls(model: str, ctx: str, chunks: str) -> dict:
    """vec_dot calls of `llama-perplexity -c CTX --chunks CHUNKS` on a llama model.

    Every weight matrix multiplies each token's activation row by each of its rows once: one
    vec_dot per (row, token). llama-perplexity evaluates CTX tokens per chunk and asks for logits
    of the second half only; llama.cpp then drops the other positions after the last layer's
    attention, so the last layer's feed-forward and the output matrix see only those. Before the
    first chunk, the warm-up evaluates 2 tokens (BOS, EOS) with one output.
    """
    from gguf import GGUFReader

    r = GGUFReader(model)
    rows = {t.name: int(t.shape[1]) for t in r.tensors if len(t.shape) == 2}
    n_layer = 1 + max(int(name.split(".")[1]) for name in rows if name.startswith("blk."))
    attn = ["attn_q", "attn_k", "attn_v", "attn_output"]
    ffn = ["ffn_gate", "ffn_up", "ffn_down"]
    per_layer_attn = sum(rows[f"blk.0.{m}.weight"] for m in attn)
    per_layer_ffn = sum(rows[f"blk.0.{m}.weight"] for m in ffn)
    for il in range(n_layer):
        for m in attn + ffn:
            assert rows[f"blk.{il}.{m}.weight"] == rows[f"blk.0.{m}.weight"], (il, m)
    vocab_rows = rows.get("output.weight", rows["token_embd.weight"])

    def pass_calls(tokens: int, outputs: int) -> int:
        return ((n_layer - 1) * tokens * (per_layer_attn + per_layer_ffn)
                + tokens * per_layer_attn + outputs * per_layer_ffn + outputs * vocab_rows)

    n_ctx, n_chunks = int(ctx), int(chunks)
    per_chunk = pass_calls(n_ctx, n_ctx - n_ctx // 2)
    warmup = pass_calls(2, 1)
    return {"per_chunk": per_chunk, "warmup": warmup, "total": n_chunks * per_chunk + warmup,
            "layers": n_layer, "rows_per_layer": per_layer_attn + per_layer_ffn, "vocab_rows": vocab_rows}


def embeddings(a_path: str, b_path: str) -> dict:
    a = np.array(json.load(open(a_path))["vectors"], dtype=np.float64)
    b = np.array(json.load(open(b_path))["vectors"], dtype=np.float64)
    if a.shape != b.shape:
        raise SystemExit(f"embedding shapes differ: {a.shape} vs {b.shape}")
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"sentences": int(a.shape[0]), "dims": int(a.shape[1]), "identical": bool((a == b).all()),
            "max_abs_diff": float(np.abs(a - b).max()), "min_cosine": float(cos.min()),
            "mean_cosine": float(cos.mean())}


def main(argv: list[str]) -> int:
    commands = {"logits": logits, "expected-calls": expected_calls, "embeddings": embeddings}
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(commands[argv[0]](*argv[1:]), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
