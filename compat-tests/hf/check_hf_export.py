"""A Hugging Face folder written by `hct convert model.gguf DIR --to hf`, judged by transformers.

    check_hf_export.py ORIGINAL_DIR EXPORTED_DIR TEXT      (convert venv's python)

ORIGINAL_DIR is the checkpoint the GGUF was made from (hct convert ORIGINAL_DIR model.gguf);
EXPORTED_DIR the folder made back from that GGUF. Checks, printing one JSON object:
  - model.safetensors: the same tensor names, dtypes, shapes and bytes (q/k rows back in Hugging
    Face's order);
  - the tokenizers (AutoTokenizer on each folder) give the same ids for TEXT, line by line, and
    for a chat rendered by each folder's chat template; where both folders have a
    tokenizer.model, the sentencepiece library encodes TEXT's lines the same with each;
  - transformers loads both (AutoModelForCausalLM, float32) and gives the same logits for a fixed
    prompt, compared exactly: same weights and same config values, same computation.
Exit status 1 when any check fails.
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer


def tensors(path):
    with safe_open(f"{path}/model.safetensors", "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def main():
    orig, ours, text = sys.argv[1], sys.argv[2], sys.argv[3]
    r = {}
    a, b = tensors(orig), tensors(ours)
    r["tensors"] = len(a)
    r["tensors_identical"] = sorted(a) == sorted(b) and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)

    ta, tb = AutoTokenizer.from_pretrained(orig), AutoTokenizer.from_pretrained(ours)
    lines = [l for l in open(text, encoding="utf-8").read().splitlines() if l.strip()]
    same = sum(ta(l)["input_ids"] == tb(l)["input_ids"] for l in lines)
    r["tokenizer_lines"] = len(lines)
    r["tokenizer_lines_identical"] = same
    whole_a, whole_b = ta(open(text, encoding="utf-8").read())["input_ids"], tb(open(text, encoding="utf-8").read())["input_ids"]
    r["tokenizer_whole_text_tokens"] = len(whole_a)
    r["tokenizer_whole_text_identical"] = whole_a == whole_b
    # A SentencePiece vocabulary: the exported tokenizer.model, rebuilt from the GGUF, must encode
    # like the original in the sentencepiece library itself (what llama.cpp's converter reads).
    if all(os.path.exists(f"{d}/tokenizer.model") for d in (orig, ours)):
        import sentencepiece as spm
        sa, sb = (spm.SentencePieceProcessor(model_file=f"{d}/tokenizer.model") for d in (orig, ours))
        r["sentencepiece_lines_identical"] = sum(sa.encode(l) == sb.encode(l) for l in lines)
        r["sentencepiece_pieces"] = [sa.get_piece_size(), sb.get_piece_size()]
    chat = [{"role": "user", "content": "What is a hacker?"}, {"role": "assistant", "content": "Someone who enjoys 42 things."}]
    if ta.chat_template:
        r["chat_template_identical"] = ta.apply_chat_template(chat, tokenize=True) == tb.apply_chat_template(chat, tokenize=True)

    ma = AutoModelForCausalLM.from_pretrained(orig, torch_dtype=torch.float32).eval()
    mb = AutoModelForCausalLM.from_pretrained(ours, torch_dtype=torch.float32).eval()
    prompt = "The hacker ethic holds that information sharing is a powerful positive good, and that"
    ids = ta(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        la, lb = ma(ids).logits, mb(ids).logits
    r["prompt_tokens"] = int(ids.shape[1])
    r["logits_max_abs_diff"] = float((la - lb).abs().max())
    r["logits_identical"] = bool(torch.equal(la, lb))
    with torch.no_grad():
        ga = ma.generate(ids, max_new_tokens=16, do_sample=False)
        gb = mb.generate(ids, max_new_tokens=16, do_sample=False)
    r["greedy_identical"] = bool(torch.equal(ga, gb))
    r["greedy_text"] = tb.decode(gb[0, ids.shape[1]:])
    ok = (r["tensors_identical"] and same == len(lines) and r["tokenizer_whole_text_identical"]
          and r.get("sentencepiece_lines_identical", len(lines)) == len(lines)
          and r.get("chat_template_identical", True) and r["logits_identical"] and r["greedy_identical"])
    r["ok"] = bool(ok)
    print(json.dumps(r))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
