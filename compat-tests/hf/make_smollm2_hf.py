"""A Hugging Face checkpoint of SmolLM2-135M-Instruct made by real peers from the pinned Q4_1 GGUF.

    make_smollm2_hf.py GGUF_DIR GGUF_NAME OUT_DIR      (convert venv's python, with accelerate)

Weights and config: `transformers` loads the GGUF (dequantizing to float32 and undoing llama.cpp's
q/k row order) and `save_pretrained` writes config.json and model.safetensors.

Tokenizer: transformers 4.57 turns this GGUF's byte-level BPE vocabulary into a SentencePiece-style
Llama tokenizer (byte_fallback, no digit splitting, eos = <|im_start|>, and a tokenizer.model that
sentencepiece cannot parse, on which llama.cpp's convert_hf_to_gguf.py fails). So the tokenizer
is rebuilt with the `tokenizers` library from the GGUF's own vocabulary, merges, special tokens and
chat template, with the pre-tokenizer the GGUF names (`smollm`: digits one by one, then GPT-2's
byte-level split), as SmolLM2's published tokenizer.json has it. convert_hf_to_gguf.py then checks it
independently: it tokenizes its fixed text and must recognise the hash as `smollm`.
"""
import sys
from pathlib import Path

import torch
from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast


def field(r, key):
    f = r.fields[key]
    if f.types[0].name == "ARRAY":
        parts = [f.parts[i] for i in f.data]
        if f.types[-1].name == "STRING":
            return [bytes(p).decode("utf-8") for p in parts]
        return [p.tolist()[0] for p in parts]
    p = f.parts[f.data[0]]
    return bytes(p).decode("utf-8") if f.types[0].name == "STRING" else p.tolist()[0]


def main():
    src_dir, gguf_name, out = sys.argv[1:4]
    model = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=gguf_name, torch_dtype=torch.float32)
    model.save_pretrained(out, safe_serialization=True)

    r = GGUFReader(str(Path(src_dir) / gguf_name))
    assert field(r, "tokenizer.ggml.model") == "gpt2" and field(r, "tokenizer.ggml.pre") == "smollm"
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ")) for m in field(r, "tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    control = 3  # llama.cpp's CONTROL token type
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == control])
    ids = {k: field(r, f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "unknown", "padding")}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=tokens[ids["bos"]], eos_token=tokens[ids["eos"]],
        unk_token=tokens[ids["unknown"]], pad_token=tokens[ids["padding"]], add_prefix_space=False,
        clean_up_tokenization_spaces=False)
    fast.chat_template = field(r, "tokenizer.chat_template")
    fast.save_pretrained(out)


if __name__ == "__main__":
    main()
