"""Small random-weight Hugging Face checkpoints with a real SentencePiece tokenizer, made by peers.

    make_sp_checkpoint.py KIND TEXT OUT_DIR        (convert venv's python)

KIND is gemma2, gemma3 or llama2. No registry ships a Gemma or Llama 2 checkpoint the tests may
fetch, so the material is made by the tools those checkpoints come from:

- the tokenizer: the `sentencepiece` trainer (PyPI) learns a byte-fallback BPE model of 2,000
  pieces from TEXT, with the special-token ids and options of the family (Gemma: pad 0, eos 1,
  bos 2, unk 3, no dummy prefix; Llama 2: unk 0, bos 1, eos 2, dummy prefix), then transformers'
  own GemmaTokenizerFast / LlamaTokenizerFast turns it into tokenizer.json and
  tokenizer_config.json (save_pretrained also keeps tokenizer.model);
- the model: the transformers config class of the family with small dimensions, weights drawn
  from a seeded generator (norm weights too, so that Gemma's "1 + weight" norms are exercised),
  saved as float32 safetensors.

Single-threaded trainer, fixed seeds: the outputs are pinned by sha256 (compat-tests/pins.txt).
"""
import json
import os
import shutil
import sys
from pathlib import Path

import sentencepiece as spm
import torch

VOCAB = 2000


def train_tokenizer(kind: str, text: Path, work: Path) -> Path:
    # The model records its trainer's input and output names: relative ones, so that its bytes
    # do not depend on where the cache lives.
    shutil.copyfile(text, work / "train.txt")
    os.chdir(work)
    gemma = kind.startswith("gemma")
    spm.SentencePieceTrainer.train(
        input="train.txt",
        model_prefix="sp",
        model_type="bpe",
        vocab_size=VOCAB,
        byte_fallback=True,
        split_digits=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=not gemma,
        allow_whitespace_only_pieces=True,
        num_threads=1,
        shuffle_input_sentence=False,
        input_sentence_size=0,
        max_sentence_length=8192,
        # Gemma: pad 0, eos 1, bos 2, unk 3, and turn markers as user-defined pieces.
        pad_id=0 if gemma else -1,
        eos_id=1 if gemma else 2,
        bos_id=2 if gemma else 1,
        unk_id=3 if gemma else 0,
        pad_piece="<pad>",
        eos_piece="<eos>" if gemma else "</s>",
        bos_piece="<bos>" if gemma else "<s>",
        unk_piece="<unk>",
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"] if gemma else [],
        minloglevel=2,
    )
    (work / "train.txt").unlink()
    return work / "sp.model"


# A chat template of our own, in the shape of the family's (turn markers around each message).
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' "
    "else m['role'] }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
LLAMA2_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token }}[INST] {{ m['content'] }} [/INST]"
    "{% else %} {{ m['content'] }} {{ eos_token }}{% endif %}{% endfor %}"
)


def make_tokenizer(kind: str, sp_model: Path, out: Path):
    if kind.startswith("gemma"):
        from transformers import GemmaTokenizerFast
        tok = GemmaTokenizerFast(vocab_file=str(sp_model))
        tok.chat_template = GEMMA_TEMPLATE
    else:
        from transformers import LlamaTokenizerFast
        tok = LlamaTokenizerFast(vocab_file=str(sp_model), legacy=False, add_prefix_space=None)
        tok.chat_template = LLAMA2_TEMPLATE
    tok.save_pretrained(str(out))
    return tok


def make_model(kind: str, n_vocab: int, tok):
    common = dict(
        hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2,
        head_dim=64, max_position_embeddings=2048, rms_norm_eps=1e-6,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    if kind == "gemma2":
        from transformers import Gemma2Config, Gemma2ForCausalLM
        cfg = Gemma2Config(vocab_size=n_vocab, num_hidden_layers=4, sliding_window=128,
                           query_pre_attn_scalar=64, attn_logit_softcapping=50.0,
                           final_logit_softcapping=30.0, rope_theta=10000.0, **common)
        cls = Gemma2ForCausalLM
    elif kind == "gemma3":
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig
        # 64 more embedding rows than the tokenizer has pieces, as Gemma 3's checkpoints have.
        cfg = Gemma3TextConfig(vocab_size=n_vocab + 64, num_hidden_layers=6, sliding_window=128,
                               query_pre_attn_scalar=64, rope_theta=1000000.0,
                               rope_local_base_freq=10000.0, **common)
        cls = Gemma3ForCausalLM
    else:
        from transformers import LlamaConfig, LlamaForCausalLM
        cfg = LlamaConfig(vocab_size=n_vocab, num_hidden_layers=4, rope_theta=10000.0,
                          tie_word_embeddings=False, **common)
        cls = LlamaForCausalLM
    torch.manual_seed(0)
    model = cls(cfg).to(torch.float32)
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            # Large enough weights that the model is far from uniform (greedy tokens mean
            # something); norm weights around 0 for Gemma (1 + w), around 1 for Llama.
            std = 0.3 if "norm" in name else 1.0 / p.shape[-1] ** 0.5
            p.copy_(torch.randn(p.shape, generator=gen) * std + (1.0 if "norm" in name and kind == "llama2" else 0.0))
    return model


def main():
    kind, text, out = sys.argv[1], Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve()
    if kind not in ("gemma2", "gemma3", "llama2"):
        sys.exit(f"unknown kind {kind!r} (gemma2, gemma3, llama2)")
    out.mkdir(parents=True, exist_ok=True)
    work = out / "spm-training"
    work.mkdir(exist_ok=True)
    sp_model = train_tokenizer(kind, text, work)
    tok = make_tokenizer(kind, sp_model, out)
    model = make_model(kind, len(tok), tok)
    model.save_pretrained(str(out), safe_serialization=True)
    print(json.dumps({"kind": kind, "tokens": len(tok), "params": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
