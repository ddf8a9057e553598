//! A llama.cpp GGUF → a Hugging Face checkpoint folder (`--to hf`): `config.json`,
//! `generation_config.json`, `tokenizer.json`, `tokenizer_config.json` and `model.safetensors`,
//! so a llama.cpp model can go back to the Python tools.
//!
//! For the llama family with a byte-level BPE vocabulary (`tokenizer.ggml.model` = `gpt2`, a
//! pre-tokenizer llama.cpp names `gpt-2`, `smollm`, `llama-bpe` or `qwen2`) or a SentencePiece one
//! (`llama`: Llama 2, Mistral v0.1; a `tokenizer.model` besides `tokenizer.json`, see
//! `crate::hf_export_spm`): the inverse of `crate::llama_gguf`. Tensors get Hugging Face's names
//! and the q/k rows go back to its rotary order (whole rows move). Float tensors keep their type; others are decoded to `--dtype`
//! (required then). The folder appears only when complete: everything is written into a
//! temporary folder beside it, which is renamed into place at the end.

use crate::convert::source::{Source, SrcTensor};
use crate::convert::TensorReport;
use crate::llama_gguf::rows::RowOrder;
use anyhow::{anyhow, bail, Context, Result};
use hct_format::value::{lookup, Array, Metadata, Value};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::path::Path;

/// llama.cpp's token types.
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// The pre-tokenizers this export can write, by llama.cpp's name.
const PRE_TOKENIZERS: &[&str] = &["gpt-2", "smollm", "llama-bpe", "qwen2"];

pub fn write_hf_folder(
    src: &Source,
    out: &Path,
    dtype: Option<&str>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<TensorReport>> {
    let meta = src.metadata()?;
    let arch = lookup(&meta, "general.architecture")
        .and_then(Value::as_str)
        .context("the source has no general.architecture: not a llama.cpp GGUF, so there is no Hugging Face layout to restore")?;
    if arch != "llama" {
        return Err(crate::exit::unsupported(format!(
            "architecture {arch:?} cannot be exported to a Hugging Face folder by this build; supported: llama"
        )));
    }
    let g = Gguf { meta: &meta };
    let config = llama_config(&g)?;
    let n_head = g.u32("llama.attention.head_count")?;
    let n_head_kv = g
        .opt_u32("llama.attention.head_count_kv")?
        .unwrap_or(n_head);
    let n_layer = g.u32("llama.block_count")?;
    let tokenizer = Tokenizer::from_gguf(&g)?;

    let mut tensors: Vec<(SrcTensor<'_>, Option<RowOrder>)> = vec![];
    for mut t in src.tensors() {
        let (name, rows) = hf_name(&t.name, n_layer, n_head, n_head_kv)?;
        t.name = name;
        tensors.push((t, rows));
    }
    let tied = !tensors.iter().any(|(t, _)| t.name == "lm_head.weight");
    let mut config = config;
    config["tie_word_embeddings"] = json!(tied);

    if std::fs::symlink_metadata(out).is_ok() {
        return Err(crate::exit::usage(format!(
            "{} exists; a Hugging Face folder is written only where nothing is",
            out.display()
        )));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let leaf = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "hf".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{leaf}."))
        .suffix(".tmp")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a temporary folder in {}", parent.display()))?;
    let write_json = |name: &str, v: &Json| -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(v)?;
        bytes.push(b'\n');
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        std::fs::File::open(&p)?.sync_all()?;
        Ok(())
    };
    write_json("config.json", &config)?;
    let mut gen = Map::new();
    for k in ["bos_token_id", "eos_token_id", "pad_token_id"] {
        if let Some(v) = config.get(k) {
            gen.insert(k.into(), v.clone());
        }
    }
    write_json("generation_config.json", &Json::Object(gen))?;
    if tokenizer.sentencepiece {
        let p = tmp.path().join("tokenizer.model");
        std::fs::write(&p, tokenizer.spm().model_proto()?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        std::fs::File::open(&p)?.sync_all()?;
        write_json(
            "tokenizer.json",
            &tokenizer.spm().tokenizer_json(tokenizer.add_bos)?,
        )?;
    } else {
        write_json("tokenizer.json", &tokenizer.tokenizer_json())?;
    }
    write_json("tokenizer_config.json", &tokenizer.tokenizer_config())?;
    let st_meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let reports = crate::convert::to_safetensors::write_tensors(
        src,
        tensors,
        st_meta,
        &tmp.path().join("model.safetensors"),
        dtype,
        progress,
    )?;
    let dir = tmp.keep();
    if let Err(e) = std::fs::rename(&dir, out) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(anyhow!(e).context(format!(
            "cannot rename the finished folder to {}",
            out.display()
        )));
    }
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(reports)
}

/// Typed reads of the GGUF's keys, with errors naming the key.
struct Gguf<'a> {
    meta: &'a Metadata,
}

impl Gguf<'_> {
    fn get(&self, k: &str) -> Option<&Value> {
        lookup(self.meta, k)
    }
    fn opt_u32(&self, k: &str) -> Result<Option<u32>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::U32(v)) => Ok(Some(*v)),
            Some(v) => bail!("GGUF key {k} is {v:?}, expected a u32"),
        }
    }
    fn u32(&self, k: &str) -> Result<u32> {
        self.opt_u32(k)?
            .with_context(|| format!("the GGUF has no {k}"))
    }
    fn opt_f32(&self, k: &str) -> Result<Option<f32>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::F32(v)) => Ok(Some(*v)),
            Some(v) => bail!("GGUF key {k} is {v:?}, expected an f32"),
        }
    }
    fn opt_str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(Value::as_str)
    }
    fn opt_bool(&self, k: &str) -> Option<bool> {
        match self.get(k) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}

/// A float as `config.json` has it after a GGUF round trip: the f32 value, exactly.
fn num(x: f32) -> Json {
    json!(x as f64)
}

fn llama_config(g: &Gguf) -> Result<Json> {
    let n_embd = g.u32("llama.embedding_length")?;
    let n_head = g.u32("llama.attention.head_count")?;
    let mut c = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "attention_bias": false,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "mlp_bias": false,
        "hidden_size": n_embd,
        "intermediate_size": g.u32("llama.feed_forward_length")?,
        "num_hidden_layers": g.u32("llama.block_count")?,
        "num_attention_heads": n_head,
        "num_key_value_heads": g.opt_u32("llama.attention.head_count_kv")?.unwrap_or(n_head),
        "head_dim": g.opt_u32("llama.attention.key_length")?.unwrap_or(n_embd / n_head.max(1)),
        "max_position_embeddings": g.opt_u32("llama.context_length")?.unwrap_or(2048),
        "rms_norm_eps": num(g.opt_f32("llama.attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6)),
        "rope_theta": num(g.opt_f32("llama.rope.freq_base")?.unwrap_or(10000.0)),
        "torch_dtype": "float32",
        "use_cache": true,
    });
    if let Some(v) = g.opt_u32("llama.vocab_size")? {
        c["vocab_size"] = json!(v);
    } else if let Some(Value::Array(Array::String(t))) = g.get("tokenizer.ggml.tokens") {
        c["vocab_size"] = json!(t.len());
    }
    if let Some(d) = g.opt_u32("llama.rope.dimension_count")? {
        if d != c["head_dim"].as_u64().unwrap_or(0) as u32 {
            bail!("llama.rope.dimension_count {d} differs from the head size: partial rotary embedding has no Llama config field");
        }
    }
    match g.opt_str("llama.rope.scaling.type") {
        None | Some("none") => {}
        Some("linear") => {
            let f = g
                .opt_f32("llama.rope.scaling.factor")?
                .context("linear rope scaling without llama.rope.scaling.factor")?;
            c["rope_scaling"] = json!({"rope_type": "linear", "factor": num(f)});
        }
        Some(t) => {
            return Err(crate::exit::unsupported(format!(
            "rope scaling {t:?} is not exported to a Hugging Face config by this build (linear is)"
        )))
        }
    }
    for (key, field) in [
        ("bos_token_id", "bos_token_id"),
        ("eos_token_id", "eos_token_id"),
        ("padding_token_id", "pad_token_id"),
        ("unknown_token_id", "unk_token_id"),
    ] {
        if let Some(v) = g.opt_u32(&format!("tokenizer.ggml.{key}"))? {
            c[field] = json!(v);
        }
    }
    if let Some(name) = g.opt_str("general.name") {
        c["_name_or_path"] = json!(name);
    }
    Ok(c)
}

/// The Hugging Face name of a llama.cpp tensor, and the row order to restore.
fn hf_name(
    name: &str,
    n_layer: u32,
    n_head: u32,
    n_head_kv: u32,
) -> Result<(String, Option<RowOrder>)> {
    let unknown = || {
        anyhow!("tensor {name:?} has no Hugging Face Llama name (this export knows llama.cpp's llama tensors; rope_freqs, from llama3 rope scaling, is not exported)")
    };
    let (stem, suffix) = name.rsplit_once('.').ok_or_else(unknown)?;
    let plain = match stem {
        "token_embd" => Some("model.embed_tokens"),
        "output_norm" => Some("model.norm"),
        "output" => Some("lm_head"),
        _ => None,
    };
    if let Some(p) = plain {
        return Ok((format!("{p}.{suffix}"), None));
    }
    let rest = stem.strip_prefix("blk.").ok_or_else(unknown)?;
    let (layer, short) = rest.split_once('.').ok_or_else(unknown)?;
    let layer: u32 = layer.parse().map_err(|_| unknown())?;
    if layer >= n_layer {
        bail!("tensor {name:?}: layer {layer}, but llama.block_count is {n_layer}");
    }
    let (hf, rows) = match short {
        "attn_norm" => ("input_layernorm", None),
        "attn_q" => (
            "self_attn.q_proj",
            Some(RowOrder::RopeHalves { heads: n_head }),
        ),
        "attn_k" => (
            "self_attn.k_proj",
            Some(RowOrder::RopeHalves { heads: n_head_kv }),
        ),
        "attn_v" => ("self_attn.v_proj", None),
        "attn_output" => ("self_attn.o_proj", None),
        "ffn_norm" => ("post_attention_layernorm", None),
        "ffn_gate" => ("mlp.gate_proj", None),
        "ffn_up" => ("mlp.up_proj", None),
        "ffn_down" => ("mlp.down_proj", None),
        _ => return Err(unknown()),
    };
    Ok((format!("model.layers.{layer}.{hf}.{suffix}"), rows))
}

/// The byte-level BPE or SentencePiece vocabulary of a GGUF.
struct Tokenizer {
    /// `tokenizer.ggml.model` = `llama`: pieces with scores, no merges.
    sentencepiece: bool,
    tokens: Vec<String>,
    types: Vec<i32>,
    scores: Vec<f32>,
    merges: Vec<String>,
    pre: String,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    /// `tokenizer.ggml.add_space_prefix`, which llama.cpp's converter takes from
    /// `add_prefix_space`.
    add_space_prefix: Option<bool>,
    chat_template: Option<String>,
}

impl Tokenizer {
    fn from_gguf(g: &Gguf) -> Result<Tokenizer> {
        let model = g.opt_str("tokenizer.ggml.model").unwrap_or("?");
        let sentencepiece = match model {
            "gpt2" => false,
            "llama" => true,
            _ => {
                return Err(crate::exit::unsupported(format!(
                    "tokenizer.ggml.model {model:?}: this build exports byte-level BPE (gpt2) and SentencePiece (llama) vocabularies only"
                )))
            }
        };
        let pre = g.opt_str("tokenizer.ggml.pre").unwrap_or("default");
        if !sentencepiece && !PRE_TOKENIZERS.contains(&pre) {
            return Err(crate::exit::unsupported(format!(
                "tokenizer.ggml.pre {pre:?} has no tokenizer.json pre-tokenizer in this build; supported: {}",
                PRE_TOKENIZERS.join(", ")
            )));
        }
        let strings = |k: &str| -> Result<Vec<String>> {
            match g.get(k) {
                Some(Value::Array(Array::String(v))) => v
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        String::from_utf8(b.clone())
                            .map_err(|_| anyhow!("GGUF key {k}[{i}] is not UTF-8"))
                    })
                    .collect(),
                _ => bail!("the GGUF has no string array {k}"),
            }
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let (merges, scores) = if sentencepiece {
            let scores = match g.get("tokenizer.ggml.scores") {
                Some(Value::Array(Array::F32(v))) if v.len() == tokens.len() => v.clone(),
                _ => bail!("the GGUF has no tokenizer.ggml.scores with one f32 per token, which a SentencePiece vocabulary needs"),
            };
            (vec![], scores)
        } else {
            (strings("tokenizer.ggml.merges")?, vec![])
        };
        let types = match g.get("tokenizer.ggml.token_type") {
            Some(Value::Array(Array::I32(v))) if v.len() == tokens.len() => v.clone(),
            _ => bail!("the GGUF has no tokenizer.ggml.token_type with one type per token"),
        };
        let id = |k: &str| -> Result<Option<u32>> {
            let v = g.opt_u32(&format!("tokenizer.ggml.{k}"))?;
            if let Some(i) = v {
                if i as usize >= tokens.len() {
                    bail!(
                        "tokenizer.ggml.{k} = {i}, beyond the {} tokens",
                        tokens.len()
                    );
                }
            }
            Ok(v)
        };
        Ok(Tokenizer {
            bos: id("bos_token_id")?,
            eos: id("eos_token_id")?,
            unk: id("unknown_token_id")?,
            pad: id("padding_token_id")?,
            add_bos: g.opt_bool("tokenizer.ggml.add_bos_token").unwrap_or(false),
            add_eos: g.opt_bool("tokenizer.ggml.add_eos_token").unwrap_or(false),
            add_space_prefix: g.opt_bool("tokenizer.ggml.add_space_prefix"),
            chat_template: g.opt_str("tokenizer.chat_template").map(str::to_string),
            pre: pre.to_string(),
            sentencepiece,
            tokens,
            types,
            scores,
            merges,
        })
    }

    fn spm(&self) -> crate::hf_export_spm::SpmVocab<'_> {
        crate::hf_export_spm::SpmVocab {
            tokens: &self.tokens,
            scores: &self.scores,
            types: &self.types,
            unk: self.unk,
            bos: self.bos,
            eos: self.eos,
            pad: self.pad,
            // llama.cpp adds the dummy prefix unless the GGUF says not to.
            add_dummy_prefix: self.add_space_prefix.unwrap_or(true),
        }
    }

    fn tokenizer_json(&self) -> Json {
        let byte_level = |regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex});
        let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
        let pre = match self.pre.as_str() {
            "gpt-2" => byte_level(true),
            "smollm" => json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            "llama-bpe" => json!({"type": "Sequence", "pretokenizers": [
                split(crate::llama_gguf::LLAMA3_SPLIT), byte_level(false)]}),
            _ => json!({"type": "Sequence", "pretokenizers": [
                split(crate::llama_gguf::QWEN2_SPLIT), byte_level(false)]}),
        };
        let added: Vec<Json> = self
            .types
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(**t, CONTROL | USER_DEFINED))
            .map(|(i, t)| {
                json!({"id": i, "content": self.tokens[i], "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": *t != CONTROL, "special": *t == CONTROL})
            })
            .collect();
        let vocab: Map<String, Json> = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        let merges: Vec<Json> = self
            .merges
            .iter()
            .map(|m| match m.split_once(' ') {
                Some((a, b)) => json!([a, b]),
                None => json!(m),
            })
            .collect();
        let post = match (self.add_bos, self.bos) {
            (true, Some(b)) => {
                let bos = &self.tokens[b as usize];
                json!({"type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                             {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                    "special_tokens": {bos.clone(): {"id": bos, "ids": [b], "tokens": [bos]}}})
            }
            _ => {
                json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true})
            }
        };
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre,
            "post_processor": post,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                      "ignore_merges": false, "vocab": vocab, "merges": merges},
        })
    }

    fn tokenizer_config(&self) -> Json {
        let class = if self.sentencepiece {
            "LlamaTokenizer"
        } else {
            "PreTrainedTokenizerFast"
        };
        let mut c = json!({
            "tokenizer_class": class,
            "add_bos_token": self.add_bos,
            "add_eos_token": self.add_eos,
            "clean_up_tokenization_spaces": false,
            "model_max_length": 1_000_000_000_000_000_000u64,
        });
        for (field, id) in [
            ("bos_token", self.bos),
            ("eos_token", self.eos),
            ("unk_token", self.unk),
            ("pad_token", self.pad),
        ] {
            if let Some(i) = id {
                c[field] = json!(self.tokens[i as usize]);
            }
        }
        if let Some(p) = self.add_space_prefix {
            c["add_prefix_space"] = json!(p);
        }
        if let Some(t) = &self.chat_template {
            c["chat_template"] = json!(t);
        }
        if self.sentencepiece {
            // transformers' current behaviour (no extra space after special tokens), as
            // Llama 2 checkpoints saved by it say.
            c["legacy"] = json!(false);
            c["added_tokens_decoder"] = self.spm().added_tokens_decoder();
        }
        c
    }
}
