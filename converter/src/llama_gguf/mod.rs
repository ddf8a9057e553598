//! What llama.cpp needs to load a Hugging Face checkpoint: the GGUF metadata keys
//! (`general.architecture`, the hyperparameters, the tokenizer) and llama.cpp's tensor names,
//! derived from the checkpoint's `config.json`, `tokenizer.json` and `tokenizer_config.json`
//! (carried by the source as `hf.file.*` metadata, from a folder or from an HCT file made
//! from one), and the row order of the attention projections where llama.cpp's rotary
//! embedding wants another (the llama family).
//!
//! This lives in the converter, not in `hct-format`: it is llama.cpp's naming policy, not part
//! of the container format. Tensors are only renamed and, for q/k, have whole rows moved, so
//! it works under every codec and keeps the conversion streaming.

mod arch;
pub mod fix;
mod hf_files;
mod rope;
pub mod rows;
pub(crate) mod sentencepiece;
mod special;
mod spm_vocab;
mod vocab;

use crate::convert::source::SrcTensor;
use anyhow::{Context, Result};
use arch::TensorFate;
use fix::TensorFix;
use hct_format::gguf::TensorType;
use hct_format::value::{lookup, Metadata, Value};
use hf_files::{HfFiles, JsonObject};
pub(crate) use vocab::{LLAMA3_SPLIT, QWEN2_SPLIT};

/// One tensor of the GGUF: which source tensor, its llama.cpp name, what it needs first.
pub struct MappedTensor {
    pub source: usize,
    pub name: String,
    pub fix: Option<TensorFix>,
}

/// The llama.cpp view of a checkpoint.
pub struct Layout {
    /// Every key of the GGUF except `general.file_type`, which depends on the tensor types
    /// (see `file_type_entry`).
    pub metadata: Metadata,
    /// The tensors llama.cpp uses, in source order; the others are left out.
    pub tensors: Vec<MappedTensor>,
    /// Tensors llama.cpp needs that the checkpoint does not have (`rope_freqs.weight` of
    /// Llama 3 rope scaling): name and f32 values.
    pub generated: Vec<(String, Vec<f32>)>,
    pub architecture: &'static str,
}

/// The llama.cpp layout of `tensors` when the source is a Hugging Face checkpoint (it has a
/// `config.json` and no `general.architecture` of its own), else `None`: GGUF sources keep
/// their keys and names. An architecture without a mapping is an error naming it.
pub fn layout_for(meta: &Metadata, tensors: &[SrcTensor<'_>]) -> Result<Option<Layout>> {
    let files = HfFiles::new(meta);
    if lookup(meta, "general.architecture").is_some() || !files.has("config.json") {
        return Ok(None);
    }
    let config_json = files.require_json("config.json", "describes the model")?;
    let config = JsonObject::new("config.json", &config_json)?;
    let (family, hf_arch) = arch::family_of(&config)?;
    let (mut hp, hparams) = arch::hparam_entries(family, hf_arch, &config, &files)?;
    let (vocab, n_tokens) = vocab::vocab_entries(&files, &hp, &config).context("tokenizer")?;
    hp.embd_rows = n_tokens.map(u64::from);

    let mut mapped = Vec::with_capacity(tensors.len());
    let mut params: u64 = 0;
    for (i, t) in tensors.iter().enumerate() {
        match arch::tensor_fate(&hp, &t.name, &t.shape)? {
            TensorFate::Skip => tracing::debug!(tensor = %t.name, "not used by llama.cpp"),
            TensorFate::Keep { name, fix } => {
                let mut elements: u64 = t.shape.iter().product();
                match fix {
                    // Checked here too, so the error names the checkpoint's tensor.
                    Some(TensorFix::Rows(order)) => order
                        .check(t.shape.first().copied().unwrap_or(0))
                        .with_context(|| format!("tensor {:?} (llama.cpp {name:?})", t.name))?,
                    Some(TensorFix::FirstRows(n)) => {
                        elements = n.saturating_mul(t.shape.iter().skip(1).product());
                    }
                    Some(TensorFix::PlusOne) | None => {}
                }
                params = params.saturating_add(elements);
                mapped.push(MappedTensor {
                    source: i,
                    name,
                    fix,
                });
            }
        }
    }
    if let Some(dup) = first_duplicate(&mapped) {
        anyhow::bail!("two checkpoint tensors map to the llama.cpp name {dup:?}");
    }

    let mut m: Metadata = vec![
        (
            "general.architecture".into(),
            Value::string(family.gguf_name()),
        ),
        ("general.type".into(), Value::string("model")),
    ];
    if let Some(name) = config.str("_name_or_path").filter(|n| !n.is_empty()) {
        m.push(("general.name".into(), Value::string(name)));
    }
    m.push((
        "general.size_label".into(),
        Value::string(size_label(params)),
    ));
    m.extend(hparams);
    m.push((
        "general.quantization_version".into(),
        Value::U32(GGML_QUANT_VERSION),
    ));
    m.extend(vocab);
    let generated: Vec<(String, Vec<f32>)> = hp
        .rope_freqs
        .take()
        .map(|f| ("rope_freqs.weight".to_string(), f))
        .into_iter()
        .collect();
    Ok(Some(Layout {
        metadata: m,
        tensors: mapped,
        generated,
        architecture: family.gguf_name(),
    }))
}

/// An error for a well-formed checkpoint this build cannot describe to llama.cpp (exit code 6).
pub(crate) fn unsupported(message: String) -> anyhow::Error {
    crate::CliError {
        code: crate::exit::UNSUPPORTED,
        message,
    }
    .into()
}

/// ggml's quantization format version, which llama.cpp's converter records.
const GGML_QUANT_VERSION: u32 = 2;

fn first_duplicate(mapped: &[MappedTensor]) -> Option<&str> {
    let mut names: Vec<&str> = mapped.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// A parameter count as llama.cpp's converter labels it: three significant figures at
/// most, at least two digits, in K, M, B or T (`134515008` → `135M`).
fn size_label(n: u64) -> String {
    let x = n as f64;
    let (scaled, suffix) = if x > 1e12 {
        (x * 1e-12, "T")
    } else if x > 1e9 {
        (x * 1e-9, "B")
    } else if x > 1e6 {
        (x * 1e-6, "M")
    } else {
        (x * 1e-3, "K")
    };
    let digits = format!("{}", scaled.round() as u64);
    let digits = digits.trim_start_matches('0').len();
    let decimals = 2usize.saturating_sub(digits);
    format!("{scaled:.decimals$}{suffix}")
}

/// `general.file_type` (llama.cpp's `llama_ftype`) from the types of the 2-D weights: the
/// most common one names the file, as llama-quantize would have. Extension types and ggml
/// types without a `llama_ftype` give none; llama.cpp only displays this key.
pub fn file_type_entry(types: &[(&TensorType, usize)]) -> Option<(String, Value)> {
    let mut counts: Vec<(String, u64)> = vec![];
    for (t, dims) in types {
        if *dims < 2 {
            continue;
        }
        let name = match t {
            TensorType::Ggml(g) => g.name.to_ascii_lowercase(),
            TensorType::Extension(e) => e.codec.clone(),
        };
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some(c) => c.1 += 1,
            None => counts.push((name, 1)),
        }
    }
    // Ties go to the type seen first, so the result depends on nothing but tensor order.
    let mut best: Option<&(String, u64)> = None;
    for c in &counts {
        if best.is_none_or(|b| c.1 > b.1) {
            best = Some(c);
        }
    }
    let ftype = match best?.0.as_str() {
        "f32" => 0,
        "f16" => 1,
        "q4_0" => 2,
        "q4_1" => 3,
        "q8_0" => 7,
        "q5_0" => 8,
        "q5_1" => 9,
        "q2_k" => 10,
        "q3_k" => 12,
        "q4_k" => 15,
        "q5_k" => 17,
        "q6_k" => 18,
        "bf16" => 32,
        _ => return None,
    };
    Some(("general.file_type".into(), Value::U32(ftype)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_labels_like_llama_cpp() {
        assert_eq!(size_label(134_515_008), "135M");
        assert_eq!(size_label(22_713_216), "23M");
        assert_eq!(size_label(1_235_814_400), "1.2B");
        assert_eq!(size_label(8_030_261_248), "8.0B");
        assert_eq!(size_label(500_000), "500K");
    }
}
