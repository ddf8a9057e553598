"""A Hugging Face checkpoint of SmolLM2-135M-Instruct made by a real peer: `transformers` loads the
pinned Q4_1 GGUF (dequantizing it to float32 and undoing llama.cpp's q/k row order) and
`save_pretrained` writes the folder (config.json, model.safetensors, tokenizer files).

    make_smollm2_hf.py GGUF_DIR GGUF_NAME OUT_DIR      (run with the convert venv's python)
"""
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    src_dir, gguf_name, out = sys.argv[1:4]
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=gguf_name)
    model = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=gguf_name, torch_dtype=torch.float32)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


if __name__ == "__main__":
    main()
