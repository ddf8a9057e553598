//! Which codec each tensor gets: `--codec` for weight matrices, source precision for
//! everything else (vectors, integer tensors, and matrices a runtime adds to activations
//! instead of multiplying them), and explicit per-pattern overrides (`--keep`, `--codec-for`).

use anyhow::{bail, Result};
use hct_format::codec;
use std::collections::HashMap;

/// Stands for "the size budget decides" in a budget plan's default codec (`--target-bpw`,
/// `--max-size`); never a codec id (ids have no spaces).
pub const BUDGET_MARK: &str = "(size budget)";

/// The user's codec choices.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// Codec for weight matrices (tensors with at least 2 dimensions and a float source).
    pub codec: Option<String>,
    /// Tensors matching any of these keep their source codec.
    pub keep: Vec<glob::Pattern>,
    /// First match wins: tensors matching the pattern get the codec.
    pub codec_for: Vec<(glob::Pattern, String)>,
    /// The size budget's choices by exact tensor name; they come after `--codec-for` and
    /// `--keep`, which the budget already respected.
    pub decided: HashMap<String, String>,
    /// `--fallback-codec`: the codec for weight matrices whose rows `codec` cannot store
    /// (ternary codecs need rows of whole 256-element blocks).
    pub fallback: Option<String>,
    /// Extra codec parameters by exact tensor name, recording why a policy chose the codec
    /// (`hct.policy`, …); written after the codec's own parameters.
    pub provenance: HashMap<String, hct_format::value::Metadata>,
}

impl Plan {
    pub fn new(codec: Option<String>, keep: &[String], codec_for: &[String]) -> Result<Plan> {
        let pattern =
            |p: &str| glob::Pattern::new(p).map_err(|e| anyhow::anyhow!("bad pattern {p:?}: {e}"));
        let mut plan = Plan {
            codec: codec.clone(),
            ..Default::default()
        };
        if let Some(c) = &codec {
            check_encodable(c)?;
        }
        for k in keep {
            plan.keep.push(pattern(k)?);
        }
        for spec in codec_for {
            let Some((p, c)) = spec.rsplit_once('=') else {
                bail!("--codec-for takes PATTERN=CODEC, got {spec:?}");
            };
            check_encodable(c)?;
            plan.codec_for.push((pattern(p)?, c.to_string()));
        }
        Ok(plan)
    }

    /// Adds `--fallback-codec`: weight matrices whose rows `--codec` cannot store get
    /// `fallback` instead of failing the conversion, each listed with the reason.
    pub fn with_fallback(mut self, fallback: Option<String>) -> Result<Plan> {
        if let Some(c) = &fallback {
            check_encodable(c)?;
            if self.codec.is_none() {
                bail!("--fallback-codec only applies together with --codec");
            }
        }
        self.fallback = fallback;
        Ok(self)
    }

    /// A plan whose weight matrices the size budget decides (`--keep` and `--codec-for`
    /// still apply first).
    pub fn for_budget(keep: &[String], codec_for: &[String]) -> Result<Plan> {
        let mut plan = Plan::new(None, keep, codec_for)?;
        plan.codec = Some(BUDGET_MARK.to_string());
        Ok(plan)
    }

    /// The codec for one tensor whose bytes are currently under `source_codec`.
    pub fn codec_for(&self, name: &str, shape: &[u64], source_codec: &str) -> Choice {
        let choice = self.codec_for_undecided(name, shape, source_codec);
        if choice.codec != BUDGET_MARK {
            return choice;
        }
        match self.decided.get(name) {
            Some(c) => Choice {
                codec: c.clone(),
                kept_because: None,
                fallback_because: None,
            },
            None if self.decided.is_empty() => choice,
            None => Choice {
                codec: source_codec.to_string(),
                kept_because: Some(NO_BUDGET_CODEC),
                fallback_because: None,
            },
        }
    }

    fn codec_for_undecided(&self, name: &str, shape: &[u64], source_codec: &str) -> Choice {
        let keep = |kept_because| Choice {
            codec: source_codec.to_string(),
            kept_because,
            fallback_because: None,
        };
        if let Some((_, c)) = self.codec_for.iter().find(|(p, _)| p.matches(name)) {
            return Choice {
                codec: c.clone(),
                kept_because: None,
                fallback_because: None,
            };
        }
        if self.keep.iter().any(|p| p.matches(name)) {
            return keep(None);
        }
        match &self.codec {
            // Vectors (norms, biases) stay at source precision: they are a rounding error
            // of the file's size and quantizing them costs quality for nothing.
            Some(c) if shape.len() >= 2 && is_float_source(source_codec) => {
                if is_added_to_activations(name) {
                    keep(Some(ADDED_TO_ACTIVATIONS))
                } else if let Some(fallback) = self.fallback_for(c, shape) {
                    Choice {
                        codec: fallback.to_string(),
                        kept_because: None,
                        fallback_because: Some(ROWS_NOT_WHOLE_BLOCKS),
                    }
                } else {
                    Choice {
                        codec: c.clone(),
                        kept_because: None,
                        fallback_because: None,
                    }
                }
            }
            _ => keep(None),
        }
    }
}

impl Plan {
    /// The fallback codec, when there is one and `codec` cannot store rows of this shape.
    fn fallback_for(&self, codec: &str, shape: &[u64]) -> Option<&str> {
        let fallback = self.fallback.as_deref()?;
        let row_len = *shape.last()?;
        let storable = codec::find(codec).is_some_and(|c| c.row_bytes(row_len).is_ok());
        (!storable).then_some(fallback)
    }
}

/// Why a weight matrix took `--fallback-codec` instead of `--codec`.
pub const ROWS_NOT_WHOLE_BLOCKS: &str =
    "its rows are not a whole number of --codec's blocks, so it took --fallback-codec";

/// What the plan decided for one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub codec: String,
    /// Set when `--codec` would have applied by shape but the default policy kept the
    /// tensor at source precision; says why, for the summary.
    pub kept_because: Option<&'static str>,
    /// Set when `--codec` cannot store the tensor's rows and `--fallback-codec` applied.
    pub fallback_because: Option<&'static str>,
}

/// Why a weight matrix kept its source codec under a size budget.
pub const NO_BUDGET_CODEC: &str =
    "row length is not a multiple of 32, which every budget codec needs";

/// Why learned position and token-type embeddings keep their source precision.
pub const ADDED_TO_ACTIVATIONS: &str = "added to activations, not multiplied; ggml cannot add \
     a quantized tensor, so llama.cpp could not run a quantized copy (force with --codec-for)";

/// Learned position and token-type embeddings (BERT, GPT-2, ViT-style vision towers): a
/// runtime looks up their rows and adds them to the hidden state. ggml's add takes only
/// plain float operands, and llama-quantize leaves these tensors unquantized for that
/// reason, so a native GGUF export of a quantized copy would abort at inference time.
/// Matched on the name's last two components, in both GGUF and Hugging Face naming.
fn is_added_to_activations(name: &str) -> bool {
    const ADDED: [&str; 6] = [
        "position_embd",         // GGUF (llama.cpp LLM_TENSOR_POS_EMBD)
        "token_types",           // GGUF (llama.cpp LLM_TENSOR_TOKEN_TYPES)
        "position_embeddings",   // Hugging Face BERT, RoBERTa, …
        "token_type_embeddings", // Hugging Face BERT
        "position_embedding",    // Hugging Face CLIP and SigLIP vision towers
        "wpe",                   // Hugging Face GPT-2
    ];
    let mut parts = name.rsplit('.');
    parts.next() == Some("weight") && parts.next().is_some_and(|p| ADDED.contains(&p))
}

/// Weights that are floats (or ggml-quantized floats) can be re-encoded; integer tensors
/// (token type ids, position ids) never are.
fn is_float_source(codec_id: &str) -> bool {
    !matches!(
        codec_id,
        "i8" | "u8" | "i16" | "u16" | "i32" | "u32" | "i64" | "u64" | "bool"
    )
}

fn check_encodable(id: &str) -> Result<()> {
    match codec::find(id) {
        None => bail!("unknown codec {id:?}: `hct codecs` lists the codecs of this build"),
        Some(c) if !c.can_encode() => {
            bail!("codec {id:?} can be carried through but not encoded by this build")
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_matrices_get_the_codec_vectors_and_keeps_do_not() {
        let p = Plan::new(
            Some("f16".into()),
            &["*embd*".into()],
            &["output.weight=bf16".into()],
        )
        .unwrap();
        let codec = |name, shape: &[u64], src| p.codec_for(name, shape, src).codec;
        assert_eq!(codec("blk.0.attn_q.weight", &[64, 64], "f32"), "f16");
        assert_eq!(codec("blk.0.attn_norm.weight", &[64], "f32"), "f32");
        assert_eq!(codec("token_embd.weight", &[100, 64], "f32"), "f32");
        assert_eq!(codec("output.weight", &[100, 64], "f32"), "bf16");
        assert_eq!(codec("position_ids", &[1, 512], "i64"), "i64");
        assert!(Plan::new(Some("int9".into()), &[], &[]).is_err());
        assert!(Plan::new(None, &[], &["noequals".into()]).is_err());
    }

    #[test]
    fn rows_the_codec_cannot_store_take_the_fallback_and_say_so() {
        let p = Plan::new(Some("tq2_0_absmean_v1".into()), &[], &[])
            .unwrap()
            .with_fallback(Some("ggml_q4_0".into()))
            .unwrap();
        let down = p.codec_for("blk.0.ffn_down.weight", &[576, 1536], "f32");
        assert_eq!(down.codec, "tq2_0_absmean_v1");
        assert_eq!(down.fallback_because, None);
        let q = p.codec_for("blk.0.attn_q.weight", &[576, 576], "f32");
        assert_eq!(q.codec, "ggml_q4_0");
        assert_eq!(q.fallback_because, Some(ROWS_NOT_WHOLE_BLOCKS));
        // Vectors keep source precision as always; explicit --codec-for is never overridden.
        assert_eq!(
            p.codec_for("blk.0.attn_norm.weight", &[576], "f32").codec,
            "f32"
        );
        let without = Plan::new(Some("tq2_0_absmean_v1".into()), &[], &[]).unwrap();
        assert_eq!(
            without
                .codec_for("blk.0.attn_q.weight", &[576, 576], "f32")
                .codec,
            "tq2_0_absmean_v1"
        );
        assert!(Plan::new(None, &[], &[])
            .unwrap()
            .with_fallback(Some("ggml_q4_0".into()))
            .is_err());
        assert!(Plan::new(Some("f16".into()), &[], &[])
            .unwrap()
            .with_fallback(Some("nope".into()))
            .is_err());
    }

    #[test]
    fn embeddings_added_to_activations_keep_source_precision_unless_forced() {
        let p = Plan::new(Some("int4_g32_fp16_v1".into()), &[], &[]).unwrap();
        for name in [
            "embeddings.position_embeddings.weight",
            "embeddings.token_type_embeddings.weight",
            "bert.embeddings.position_embeddings.weight",
            "position_embd.weight",
            "token_types.weight",
            "v.position_embd.weight",
            "vision_model.embeddings.position_embedding.weight",
            "transformer.wpe.weight",
        ] {
            let c = p.codec_for(name, &[512, 384], "f32");
            assert_eq!(c.codec, "f32", "{name}");
            assert_eq!(c.kept_because, Some(ADDED_TO_ACTIVATIONS), "{name}");
        }
        // Multiplied embeddings and look-alike names are weight matrices like any other.
        for name in [
            "embeddings.word_embeddings.weight",
            "token_embd.weight",
            "blk.0.position_embd_proj.weight",
            "embeddings.position_embeddings.bias",
        ] {
            let c = p.codec_for(name, &[512, 384], "f32");
            assert_eq!(c.codec, "int4_g32_fp16_v1", "{name}");
            assert_eq!(c.kept_because, None, "{name}");
        }
        // Vectors are kept by shape, which is not worth a note.
        assert_eq!(
            p.codec_for("token_types.weight", &[384], "f32")
                .kept_because,
            None
        );
        let forced = Plan::new(
            Some("int4_g32_fp16_v1".into()),
            &[],
            &["*position_embeddings*=f16".into()],
        )
        .unwrap();
        let c = forced.codec_for("embeddings.position_embeddings.weight", &[512, 384], "f32");
        assert_eq!(c.codec, "f16");
        assert_eq!(c.kept_because, None);
    }
}
