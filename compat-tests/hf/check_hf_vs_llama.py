"""transformers on a folder written by `hct convert model.gguf DIR --to hf`, against llama.cpp's own
logits on that GGUF.

    check_hf_vs_llama.py EXPORTED_DIR TEXT --run NAME HOST_JSON LOGITS_BIN MIN_TOP1 MAX_KLD [--run ...]
                                                                 (convert venv's python)

Each --run is what compat-tests/plugin/host_logits.c printed (HOST_JSON) and wrote (LOGITS_BIN)
for the GGUF: the N token ids llama.cpp's tokenizer made of the start of TEXT, the float32 logits
of every position (N x n_vocab) from one batch, and the greedy continuation. transformers
(AutoModelForCausalLM, float32, eager attention) runs once on the same ids; for every run, per
position: max abs difference, relative L2 distance, cosine, top-1 agreement and
KL(llama.cpp || transformers) of the softmaxes (float64); then the greedy continuations, the same
length, compared token for token. Also reported: whether transformers' tokenizer (AutoTokenizer
on EXPORTED_DIR) gives llama.cpp's ids for TEXT.

Two implementations do not agree bit for bit (summation order of the matrix products, the rotary
and softmax code, and by default llama.cpp's f16 KV cache), so each run has a tolerance: exit 1
when top-1 agreement is below MIN_TOP1, the largest per-position KL divergence above MAX_KLD, the
ids differ between runs or from transformers' tokenizer (unless --tokenizers-may-differ), or a
greedy continuation differs.
"""
import argparse
import json
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def compare(ll, th):
    """Per-position agreement of llama.cpp's logits `ll` with transformers' `th` (float64, N x V)."""
    r = {}
    r["max_abs_diff"] = float((ll - th).abs().max())
    rel_l2 = (ll - th).norm(dim=1) / th.norm(dim=1)
    r["rel_l2_max"] = float(rel_l2.max())
    r["rel_l2_mean"] = float(rel_l2.mean())
    r["cosine_min"] = float(torch.nn.functional.cosine_similarity(ll, th, dim=1).min())
    r["top1_agreement"] = float((ll.argmax(1) == th.argmax(1)).double().mean())
    p_log, q_log = torch.log_softmax(ll, 1), torch.log_softmax(th, 1)
    kld = (p_log.exp() * (p_log - q_log)).sum(1)
    r["kld_max"] = float(kld.max())
    r["kld_mean"] = float(kld.mean())
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("exported")
    ap.add_argument("text")
    ap.add_argument("--run", nargs=5, action="append", required=True,
                    metavar=("NAME", "HOST_JSON", "LOGITS_BIN", "MIN_TOP1", "MAX_KLD"))
    ap.add_argument("--tokenizers-may-differ", action="store_true",
                    help="report, but do not fail on, transformers' tokenizer giving other ids than llama.cpp's")
    a = ap.parse_args()

    runs = []
    for name, host_json, logits_bin, min_top1, max_kld in a.run:
        host = json.load(open(host_json))
        n, n_vocab = len(host["tokens"]), host["n_vocab"]
        raw = np.fromfile(logits_bin, dtype="<f4")
        if raw.size != n * n_vocab:
            sys.exit(f"{logits_bin}: {raw.size} floats, expected {n} positions x {n_vocab} vocabulary")
        runs.append((name, host, torch.from_numpy(raw.reshape(n, n_vocab).astype(np.float64)),
                     float(min_top1), float(max_kld)))
    ids, n_vocab, n_gen = runs[0][1]["tokens"], runs[0][1]["n_vocab"], len(runs[0][1]["generated"])
    if any(h["tokens"] != ids or len(h["generated"]) != n_gen for _, h, _, _, _ in runs):
        sys.exit("the llama.cpp runs evaluated different token ids or generated different lengths")

    r = {"positions": len(ids), "n_vocab": n_vocab}
    tok = AutoTokenizer.from_pretrained(a.exported)
    hf_ids = tok(open(a.text, encoding="utf-8").read())["input_ids"][:len(ids)]
    r["transformers_tokenizer_same_ids"] = hf_ids == ids
    if hf_ids != ids:
        at = next(i for i, (x, y) in enumerate(zip(hf_ids + [None] * len(ids), ids)) if x != y)
        r["tokenizers_first_difference"] = {"position": at, "llama_cpp": tok.convert_ids_to_tokens(ids[at:at + 3]),
                                            "transformers": tok.convert_ids_to_tokens(hf_ids[at:at + 3])}

    model = AutoModelForCausalLM.from_pretrained(a.exported, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    if model.config.vocab_size != n_vocab:
        sys.exit(f"{a.exported}: vocab_size {model.config.vocab_size}, llama.cpp has {n_vocab}")
    x = torch.tensor([ids])
    with torch.no_grad():
        th = model(x).logits[0].double()
    r["max_abs_logit"] = float(th.abs().max())
    # Greedy like the host: argmax of the last position, no stop token, one token at a time
    # through the KV cache.
    gen_hf = []
    with torch.no_grad():
        out = model(x, use_cache=True, logits_to_keep=1)
        for _ in range(n_gen):
            nxt = int(out.logits[0, -1].argmax())
            gen_hf.append(nxt)
            out = model(torch.tensor([[nxt]]), past_key_values=out.past_key_values, use_cache=True)
    r["greedy_tokens"] = n_gen
    r["greedy_text_transformers"] = tok.decode(gen_hf)

    ok = r["transformers_tokenizer_same_ids"] or a.tokenizers_may_differ
    for name, host, ll, min_top1, max_kld in runs:
        c = compare(ll, th)
        c["greedy_identical"] = host["generated"] == gen_hf
        c["greedy_text_llama"] = tok.decode(host["generated"])
        c["thresholds"] = {"min_top1": min_top1, "max_kld": max_kld}
        c["ok"] = c["top1_agreement"] >= min_top1 and c["kld_max"] <= max_kld and c["greedy_identical"]
        ok = ok and c["ok"]
        r[name] = c
    r["ok"] = bool(ok)
    print(json.dumps(r))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
