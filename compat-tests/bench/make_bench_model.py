#!/usr/bin/env python3
"""Write a memory-bound benchmark model: a llama-architecture GGUF of about 1.07 billion
parameters with random weights and SmolLM2's tokenizer (its vocabulary, merges and special
tokens copied from a SmolLM2 GGUF). Token speed does not depend on weight values, so random
weights measure what a real model of this shape would; the text it generates is noise.

Shape (SmolLM2's family, scaled to ~1B; every width a multiple of 256, so llama.cpp's K-quants
apply to every matrix):
  n_embd 2048, n_layer 16, n_head 32, n_head_kv 8 (head 64), n_ff 8192, vocab 49152,
  token embedding tied to the output (as SmolLM2), RMS norm eps 1e-5, rope base 100000.
  Matrices per layer: attn_q/attn_output 2048x2048, attn_k/attn_v 512x2048,
  ffn_gate/ffn_up 8192x2048, ffn_down 2048x8192. 1,073,745,920 parameters in all.
Weights are F16, drawn from N(0, 0.02^2) with a fixed seed (the file is the same on every run);
norms are F32 ones.

  make_bench_model.py SMOLLM2.gguf OUT.gguf    (run with the peers tools venv: numpy + gguf)
The output appears only when complete (temporary file + rename).
"""
from __future__ import annotations

import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter

N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, N_FF, N_VOCAB = 2048, 16, 32, 8, 8192, 49152
HEAD = N_EMBD // N_HEAD


def tensors():
    """(name, ggml shape [ne0, ne1], kind) in the order llama.cpp's converter writes them."""
    yield "token_embd.weight", (N_EMBD, N_VOCAB), "w"
    for i in range(N_LAYER):
        b = f"blk.{i}"
        yield f"{b}.attn_norm.weight", (N_EMBD,), "norm"
        yield f"{b}.attn_q.weight", (N_EMBD, N_EMBD), "w"
        yield f"{b}.attn_k.weight", (N_EMBD, N_HEAD_KV * HEAD), "w"
        yield f"{b}.attn_v.weight", (N_EMBD, N_HEAD_KV * HEAD), "w"
        yield f"{b}.attn_output.weight", (N_EMBD, N_EMBD), "w"
        yield f"{b}.ffn_norm.weight", (N_EMBD,), "norm"
        yield f"{b}.ffn_gate.weight", (N_EMBD, N_FF), "w"
        yield f"{b}.ffn_up.weight", (N_EMBD, N_FF), "w"
        yield f"{b}.ffn_down.weight", (N_FF, N_EMBD), "w"
    yield "output_norm.weight", (N_EMBD,), "norm"


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    source, out = sys.argv[1], sys.argv[2]
    reader = GGUFReader(source)
    tmp = f"{out}.{os.getpid()}.tmp"
    w = GGUFWriter(tmp, "llama")
    w.add_name("hct-bench-llama-1b-random")
    w.add_block_count(N_LAYER)
    w.add_context_length(8192)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(HEAD)
    w.add_rope_freq_base(100000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(N_VOCAB)
    w.add_file_type(1)  # mostly F16
    copied = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(key, field.contents(), vtype, sub)
        copied += 1
    if copied == 0:
        raise SystemExit(f"{source}: no tokenizer.* keys to copy")

    params = 0
    for name, shape, kind in tensors():
        numel = int(np.prod(shape))
        dtype = np.float32 if kind == "norm" else np.float16
        # numpy shape is the reverse of ggml's ne
        w.add_tensor_info(name, tuple(reversed(shape)), np.dtype(dtype), numel * np.dtype(dtype).itemsize)
        params += numel
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(20261125)
    for name, shape, kind in tensors():
        if kind == "norm":
            data = np.ones(tuple(reversed(shape)), dtype=np.float32)
        else:
            data = (rng.standard_normal(tuple(reversed(shape)), dtype=np.float32) * 0.02).astype(np.float16)
        w.write_tensor_data(data)
    w.close()
    os.replace(tmp, out)
    print(f'{{"path": "{out}", "parameters": {params}, "tokenizer_keys": {copied}}}')


if __name__ == "__main__":
    main()
