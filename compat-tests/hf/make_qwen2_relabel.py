"""A Qwen2 checkpoint for the Qwen2 mapping's checks, from the SmolLM2 folder: the same weights under
Qwen2's architecture name, with all-zero q/k/v biases (Qwen2 has them, Llama has not).

    make_qwen2_relabel.py SMOLLM2_HF_DIR OUT_DIR        (convert venv's python)

Hugging Face's Llama and Qwen2 compute the same function for these weights (same rotary layout,
zero biases), so llama.cpp running this model as `qwen2` (NeoX rotary, rows as Hugging Face stores
them) must give SmolLM2's perplexity, up to float rounding, while running the `llama` GGUF needs
hct's q/k row reordering: a real check of both mappings against each other.
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def main():
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((src / "config.json").read_text())
    config["architectures"] = ["Qwen2ForCausalLM"]
    config["model_type"] = "qwen2"
    (out / "config.json").write_text(json.dumps(config, indent=2))
    tensors = load_file(src / "model.safetensors")
    for i in range(config["num_hidden_layers"]):
        for proj in ("q_proj", "k_proj", "v_proj"):
            w = tensors[f"model.layers.{i}.self_attn.{proj}.weight"]
            tensors[f"model.layers.{i}.self_attn.{proj}.bias"] = torch.zeros(w.shape[0], dtype=w.dtype)
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                 "generation_config.json"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)


if __name__ == "__main__":
    main()
