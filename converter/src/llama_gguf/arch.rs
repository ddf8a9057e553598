//! Per architecture: which `config.json` describes it, the hyperparameter keys llama.cpp reads
//! for it, and the llama.cpp name of each checkpoint tensor.

use super::fix::TensorFix;
use super::hf_files::{HfFiles, JsonObject};
use super::rows::RowOrder;
use anyhow::{bail, Context, Result};
use hct_format::value::{Metadata, Value};

/// An architecture this converter can describe to llama.cpp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Llama 2/3, Mistral, SmolLM2: llama.cpp's `llama` architecture.
    Llama,
    /// BERT encoders (all-MiniLM and friends): llama.cpp's `bert` architecture.
    Bert,
    /// Qwen2 and Qwen2.5: llama's layout with q/k/v biases and no row reordering (llama.cpp
    /// runs them with NeoX-style rotary embedding, which pairs elements as Hugging Face does).
    Qwen2,
    /// Gemma 2 (text): llama.cpp's `gemma2`. RMS norms stored as `w` for `1 + w`, logit
    /// soft-capping, sliding-window attention on alternate layers.
    Gemma2,
    /// Gemma 3 (text): llama.cpp's `gemma3`. Gemma 2's layout with q/k norms, no attention
    /// soft-capping, a second rotary base for the sliding-window layers.
    Gemma3,
}

/// `config.json` `architectures` values accepted, and their family.
pub const SUPPORTED: &[(&str, Family)] = &[
    ("LlamaForCausalLM", Family::Llama),
    ("LlamaModel", Family::Llama),
    ("MistralForCausalLM", Family::Llama),
    ("BertModel", Family::Bert),
    ("BertForMaskedLM", Family::Bert),
    ("Qwen2ForCausalLM", Family::Qwen2),
    ("Qwen2Model", Family::Qwen2),
    ("Gemma2ForCausalLM", Family::Gemma2),
    ("Gemma3ForCausalLM", Family::Gemma3),
];

impl Family {
    /// llama.cpp's `general.architecture` value, also the prefix of its keys.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Bert => "bert",
            Family::Qwen2 => "qwen2",
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3",
        }
    }
}

/// The checkpoint's architecture, from `config.json` `architectures[0]`.
pub fn family_of(config: &JsonObject) -> Result<(Family, String)> {
    let arch = config
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(|a| a.as_str())
        .with_context(|| {
            format!(
                "{}: no \"architectures\" entry, so the llama.cpp architecture is unknown",
                config.file
            )
        })?;
    match SUPPORTED.iter().find(|(name, _)| *name == arch) {
        Some((_, family)) => Ok((*family, arch.to_string())),
        None => Err(super::unsupported(format!(
            "{}: architecture {arch:?} has no llama.cpp mapping in this build; supported: {}",
            config.file,
            SUPPORTED
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The hyperparameters of one model, read once from `config.json`.
pub struct Hparams {
    pub family: Family,
    pub hf_arch: String,
    pub n_layer: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub vocab_size: Option<u32>,
    /// The embedding rows llama.cpp keeps (Gemma 3: as many as the vocabulary has tokens).
    pub embd_rows: Option<u64>,
    /// Llama 3 rope scaling's `rope_freqs` tensor, which the checkpoint does not have.
    pub rope_freqs: Option<Vec<f32>>,
}

/// The `<arch>.*` keys and the `general.architecture` key, in the order llama.cpp's own
/// converter writes them (order does not matter to readers; it makes dumps comparable).
pub fn hparam_entries(
    family: Family,
    hf_arch: String,
    config: &JsonObject,
    files: &HfFiles,
) -> Result<(Hparams, Metadata)> {
    let a = family.gguf_name();
    let key = |k: &str| format!("{a}.{k}");
    let mut m: Metadata = vec![];
    let n_layer = config.require_u32("num_hidden_layers")?;
    let n_embd = config.require_u32("hidden_size")?;
    let n_head = config.require_u32("num_attention_heads")?;
    if n_head == 0 {
        bail!("{}: num_attention_heads is 0", config.file);
    }
    m.push((key("block_count"), Value::U32(n_layer)));
    if let Some(n_ctx) = config.u32("max_position_embeddings")? {
        m.push((key("context_length"), Value::U32(n_ctx)));
    }
    m.push((key("embedding_length"), Value::U32(n_embd)));
    if let Some(n_ff) = config.u32("intermediate_size")? {
        m.push((key("feed_forward_length"), Value::U32(n_ff)));
    }
    m.push((key("attention.head_count"), Value::U32(n_head)));
    let mut n_head_kv = n_head;
    let mut rope_freqs = None;
    match family {
        Family::Llama | Family::Qwen2 => {
            // transformers fills these defaults in when a config omits them; so do we.
            n_head_kv = config.u32("num_key_value_heads")?.unwrap_or(n_head);
            m.push((key("attention.head_count_kv"), Value::U32(n_head_kv)));
            let theta = config.f64("rope_theta")?.unwrap_or(10000.0);
            if let Some(scaling) = config.get("rope_scaling") {
                let llama3 = super::rope::scaling_entries(
                    config.file,
                    scaling,
                    a,
                    &mut m,
                    family == Family::Llama,
                )?;
                if let Some(s) = llama3 {
                    let head_dim = match config.u32("head_dim")? {
                        Some(d) => d,
                        None => n_embd / n_head,
                    };
                    rope_freqs = Some(super::rope::llama3_rope_factors(&s, theta, head_dim));
                }
            }
            m.push((key("rope.freq_base"), Value::F32(theta as f32)));
            let eps = config.f64("rms_norm_eps")?.unwrap_or(1e-6);
            m.push((
                key("attention.layer_norm_rms_epsilon"),
                Value::F32(eps as f32),
            ));
            // transformers' Llama config always has a head_dim; Qwen2's only when the file does.
            let head_dim = match (config.u32("head_dim")?, family) {
                (Some(d), _) => Some(d),
                (None, Family::Llama) => Some(n_embd / n_head),
                (None, _) => None,
            };
            if let Some(d) = head_dim {
                m.push((key("attention.key_length"), Value::U32(d)));
                m.push((key("attention.value_length"), Value::U32(d)));
            }
        }
        Family::Gemma2 | Family::Gemma3 => {
            n_head_kv = gemma_entries(family, config, &mut m)?;
        }
        Family::Bert => {
            let eps = config.f64("layer_norm_eps")?.unwrap_or(1e-12);
            m.push((key("attention.layer_norm_epsilon"), Value::F32(eps as f32)));
        }
    }
    let vocab_size = config.u32("vocab_size")?;
    match family {
        Family::Llama => {
            let vocab =
                vocab_size.with_context(|| format!("{}: missing vocab_size", config.file))?;
            m.push((key("vocab_size"), Value::U32(vocab)));
            let rope_dim = match config.u32("head_dim")? {
                Some(d) => d,
                None => n_embd / n_head,
            };
            m.push((key("rope.dimension_count"), Value::U32(rope_dim)));
        }
        Family::Bert => {
            m.push((key("attention.causal"), Value::Bool(false)));
            if let Some(p) = pooling_type(files)? {
                m.push((key("pooling_type"), Value::U32(p)));
            }
        }
        Family::Qwen2 => {
            // Qwen2-based embedding models ship a sentence-transformers pooling module.
            if let Some(p) = pooling_type(files)? {
                m.push((key("pooling_type"), Value::U32(p)));
            }
        }
        Family::Gemma2 | Family::Gemma3 => {}
    }
    let hp = Hparams {
        family,
        hf_arch,
        n_layer,
        n_head,
        n_head_kv,
        vocab_size,
        embd_rows: None,
        rope_freqs,
    };
    Ok((hp, m))
}

/// Gemma 2 and 3's keys after the common ones, as llama.cpp's converter writes them; the
/// number of key/value heads. Where transformers' config class has a default and the file
/// has no value, the default is used, as the converter (which reads the config through
/// transformers) does.
fn gemma_entries(family: Family, config: &JsonObject, m: &mut Metadata) -> Result<u32> {
    let a = family.gguf_name();
    let key = |k: &str| format!("{a}.{k}");
    let n_head = config.require_u32("num_attention_heads")?;
    let n_head_kv = match family {
        Family::Gemma2 => config.u32("num_key_value_heads")?.unwrap_or(n_head),
        _ => config.u32("num_key_value_heads")?.unwrap_or(4),
    };
    m.push((key("attention.head_count_kv"), Value::U32(n_head_kv)));
    if family == Family::Gemma3 {
        if let Some(scaling) = config.get("rope_scaling") {
            super::rope::scaling_entries(config.file, scaling, a, m, false)?;
        }
        let theta = config.f64("rope_theta")?.unwrap_or(1_000_000.0);
        m.push((key("rope.freq_base"), Value::F32(theta as f32)));
        if let Some(local) = config.f64("rope_local_base_freq")? {
            m.push((key("rope.freq_base_swa"), Value::F32(local as f32)));
        }
    }
    let eps = config.f64("rms_norm_eps")?.unwrap_or(1e-6);
    m.push((
        key("attention.layer_norm_rms_epsilon"),
        Value::F32(eps as f32),
    ));
    let head_dim = match family {
        Family::Gemma2 => config.require_u32("head_dim")?,
        _ => config.u32("head_dim")?.unwrap_or(256),
    };
    m.push((key("attention.key_length"), Value::U32(head_dim)));
    m.push((key("attention.value_length"), Value::U32(head_dim)));
    let f32_of = |k: &str| -> Result<Option<f32>> { Ok(config.f64(k)?.map(|x| x as f32)) };
    if family == Family::Gemma2 {
        let attn = f32_of("attn_logit_softcapping")?
            .with_context(|| format!("{}: missing attn_logit_softcapping", config.file))?;
        m.push((key("attn_logit_softcapping"), Value::F32(attn)));
        let fin = f32_of("final_logit_softcapping")?
            .with_context(|| format!("{}: missing final_logit_softcapping", config.file))?;
        m.push((key("final_logit_softcapping"), Value::F32(fin)));
        let window = config.require_u32("sliding_window")?;
        m.push((key("attention.sliding_window"), Value::U32(window)));
    } else {
        if config.get("attn_logit_softcapping").is_some() {
            bail!(
                "{}: attn_logit_softcapping is set, which Gemma 3 does not have (llama.cpp would ignore it)",
                config.file
            );
        }
        // A soft-cap of 0 means none, as for llama.cpp's converter.
        if let Some(fin) = f32_of("final_logit_softcapping")?.filter(|&f| f != 0.0) {
            m.push((key("final_logit_softcapping"), Value::F32(fin)));
        }
        if config.u32("sliding_window_pattern")? != Some(1) {
            let window = config.require_u32("sliding_window")?;
            m.push((key("attention.sliding_window"), Value::U32(window)));
        }
    }
    Ok(n_head_kv)
}

/// llama.cpp's pooling type for a sentence-transformers model (1 mean, 2 CLS, 3 last token),
/// from `modules.json` and its pooling module's `config.json`; `None` without them.
fn pooling_type(files: &HfFiles) -> Result<Option<u32>> {
    let Some(modules) = files.json("modules.json")? else {
        return Ok(None);
    };
    let path = modules.as_array().and_then(|mods| {
        mods.iter().find_map(|m| {
            let ty = m.get("type")?.as_str()?;
            ty.ends_with("Pooling").then(|| m.get("path")?.as_str())?
        })
    });
    let Some(path) = path else {
        return Ok(None);
    };
    let name = format!("{path}/config.json");
    let cfg = files.json(&name)?.with_context(|| {
        format!(
            "modules.json names a pooling module at {path:?}, but the checkpoint carries no {name}"
        )
    })?;
    let flag = |k: &str| cfg.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    let mode = cfg.get("pooling_mode").and_then(|v| v.as_str());
    Ok(Some(
        if flag("pooling_mode_mean_tokens") || mode == Some("mean") {
            1
        } else if flag("pooling_mode_cls_token") || mode == Some("cls") {
            2
        } else if flag("pooling_mode_lasttoken") || mode == Some("lasttoken") {
            3
        } else {
            bail!(
                "{name}: pooling mode is none of mean, CLS or last token, which llama.cpp supports"
            )
        },
    ))
}

/// What happens to one checkpoint tensor.
pub enum TensorFate {
    /// Not needed by llama.cpp (position ids, pooler, cached rotary frequencies).
    Skip,
    Keep {
        name: String,
        fix: Option<TensorFix>,
    },
}

/// The llama.cpp name of checkpoint tensor `hf_name`, or an error naming it.
pub fn tensor_fate(hp: &Hparams, hf_name: &str, shape: &[u64]) -> Result<TensorFate> {
    let mapped = match hp.family {
        Family::Llama | Family::Qwen2 => llama_tensor(hp, hf_name),
        Family::Bert => bert_tensor(hp, hf_name),
        Family::Gemma2 | Family::Gemma3 => gemma_tensor(hp, hf_name, shape),
    };
    mapped.with_context(|| {
        format!(
            "tensor {hf_name:?} of this {} checkpoint has no llama.cpp name",
            hp.hf_arch
        )
    })
}

/// `prefix.N.rest` → `(N, rest)`, with N a layer index below `n_layer`.
fn layer_of<'n>(name: &'n str, prefix: &str, n_layer: u32) -> Option<(u32, &'n str)> {
    let rest = name.strip_prefix(prefix)?;
    let (idx, rest) = rest.split_once('.')?;
    let idx: u32 = idx.parse().ok()?;
    (idx < n_layer).then_some((idx, rest))
}

/// Splits `.weight` / `.bias` off a name.
fn split_suffix(name: &str) -> Option<(&str, &str)> {
    ["weight", "bias"]
        .into_iter()
        .find_map(|s| Some((name.strip_suffix(s)?.strip_suffix('.')?, s)))
}

fn llama_tensor(hp: &Hparams, hf_name: &str) -> Option<TensorFate> {
    // `LlamaModel` checkpoints (no LM head) name tensors without the `model.` prefix.
    let owned;
    let headless = matches!(hp.hf_arch.as_str(), "LlamaModel" | "Qwen2Model");
    let name = if headless && !hf_name.starts_with("model.") {
        owned = format!("model.{hf_name}");
        owned.as_str()
    } else {
        hf_name
    };
    if name.ends_with(".rotary_emb.inv_freq") {
        // Recomputed by llama.cpp from rope.freq_base.
        return Some(TensorFate::Skip);
    }
    let (stem, suffix) = split_suffix(name)?;
    let keep = |n: String, rows: Option<RowOrder>| {
        Some(TensorFate::Keep {
            name: format!("{n}.{suffix}"),
            fix: rows.map(TensorFix::Rows),
        })
    };
    match stem {
        "model.embed_tokens" => return keep("token_embd".into(), None),
        "model.norm" => return keep("output_norm".into(), None),
        "lm_head" => return keep("output".into(), None),
        _ => {}
    }
    let (layer, rest) = layer_of(stem, "model.layers.", hp.n_layer)?;
    // llama.cpp's llama rotary embedding pairs element i of a head with element i + 1, where
    // Hugging Face pairs i with i + head_dim/2: q and k rows are reordered to match. Qwen2
    // runs NeoX-style in llama.cpp, the Hugging Face pairing: nothing moves.
    let rope = |heads| (hp.family == Family::Llama).then(|| RowOrder::rope_pairs(heads));
    let (short, rows) = match rest {
        "input_layernorm" => ("attn_norm", None),
        "self_attn.q_proj" => ("attn_q", rope(hp.n_head)),
        "self_attn.k_proj" => ("attn_k", rope(hp.n_head_kv)),
        "self_attn.v_proj" => ("attn_v", None),
        "self_attn.o_proj" => ("attn_output", None),
        "post_attention_layernorm" => ("ffn_norm", None),
        "mlp.gate_proj" => ("ffn_gate", None),
        "mlp.up_proj" => ("ffn_up", None),
        "mlp.down_proj" => ("ffn_down", None),
        _ => return None,
    };
    keep(format!("blk.{layer}.{short}"), rows)
}

fn bert_tensor(hp: &Hparams, hf_name: &str) -> Option<TensorFate> {
    let name = hf_name.strip_prefix("bert.").unwrap_or(hf_name);
    // Older checkpoints call LayerNorm parameters gamma and beta.
    let renamed;
    let name = if let Some(s) = name.strip_suffix(".gamma") {
        renamed = format!("{s}.weight");
        renamed.as_str()
    } else if let Some(s) = name.strip_suffix(".beta") {
        renamed = format!("{s}.bias");
        renamed.as_str()
    } else {
        name
    };
    // llama.cpp computes embeddings only: no pooler, no masked-LM or next-sentence heads;
    // position ids are implicit.
    if name == "embeddings.position_ids"
        || name.starts_with("pooler.")
        || name.starts_with("cls.predictions")
        || name.starts_with("cls.seq_relationship")
    {
        return Some(TensorFate::Skip);
    }
    let (stem, suffix) = split_suffix(name)?;
    let short = match stem {
        "embeddings.word_embeddings" => Some("token_embd"),
        "embeddings.position_embeddings" => Some("position_embd"),
        "embeddings.token_type_embeddings" => Some("token_types"),
        "embeddings.LayerNorm" => Some("token_embd_norm"),
        _ => None,
    };
    let gguf = match short {
        Some(s) => s.to_string(),
        None => {
            let (layer, rest) = layer_of(stem, "encoder.layer.", hp.n_layer)?;
            let s = match rest {
                "attention.self.query" => "attn_q",
                "attention.self.key" => "attn_k",
                "attention.self.value" => "attn_v",
                "attention.output.dense" => "attn_output",
                "attention.output.LayerNorm" => "attn_output_norm",
                "intermediate.dense" => "ffn_up",
                "output.dense" => "ffn_down",
                "output.LayerNorm" => "layer_output_norm",
                _ => return None,
            };
            format!("blk.{layer}.{s}")
        }
    };
    Some(TensorFate::Keep {
        name: format!("{gguf}.{suffix}"),
        fix: None,
    })
}

fn gemma_tensor(hp: &Hparams, hf_name: &str, shape: &[u64]) -> Option<TensorFate> {
    // The output projection is the token embedding (tied); llama.cpp's converter leaves out
    // an lm_head a checkpoint carries anyway.
    if hf_name == "lm_head.weight" || hf_name.ends_with(".rotary_emb.inv_freq") {
        return Some(TensorFate::Skip);
    }
    let (stem, suffix) = split_suffix(hf_name)?;
    // Hugging Face's Gemma norms compute x * (1 + w); llama.cpp's compute x * w.
    let mut fix = (hf_name.ends_with("norm.weight")).then_some(TensorFix::PlusOne);
    let gguf = match stem {
        "model.embed_tokens" => {
            // Gemma 3 checkpoints have more embedding rows than tokens; llama.cpp wants one
            // per token.
            if let (Family::Gemma3, Some(n), Some(&rows)) = (hp.family, hp.embd_rows, shape.first())
            {
                if rows > n {
                    fix = Some(TensorFix::FirstRows(n));
                }
            }
            "token_embd".to_string()
        }
        "model.norm" => "output_norm".to_string(),
        _ => {
            let (layer, rest) = layer_of(stem, "model.layers.", hp.n_layer)?;
            let short = match rest {
                "input_layernorm" => "attn_norm",
                "self_attn.q_proj" => "attn_q",
                "self_attn.k_proj" => "attn_k",
                "self_attn.v_proj" => "attn_v",
                "self_attn.o_proj" => "attn_output",
                "self_attn.q_norm" if hp.family == Family::Gemma3 => "attn_q_norm",
                "self_attn.k_norm" if hp.family == Family::Gemma3 => "attn_k_norm",
                "post_attention_layernorm" => "post_attention_norm",
                "pre_feedforward_layernorm" => "ffn_norm",
                "post_feedforward_layernorm" => "post_ffw_norm",
                "mlp.gate_proj" => "ffn_gate",
                "mlp.up_proj" => "ffn_up",
                "mlp.down_proj" => "ffn_down",
                _ => return None,
            };
            format!("blk.{layer}.{short}")
        }
    };
    Some(TensorFate::Keep {
        name: format!("{gguf}.{suffix}"),
        fix,
    })
}
