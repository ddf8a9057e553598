//! Which codec each tensor gets: `--codec` for weight matrices, source precision for
//! everything else, and explicit per-pattern overrides (`--keep`, `--codec-for`).

use anyhow::{bail, Result};
use hct_format::codec;

/// The user's codec choices.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// Codec for weight matrices (tensors with at least 2 dimensions and a float source).
    pub codec: Option<String>,
    /// Tensors matching any of these keep their source codec.
    pub keep: Vec<glob::Pattern>,
    /// First match wins: tensors matching the pattern get the codec.
    pub codec_for: Vec<(glob::Pattern, String)>,
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

    /// The codec for one tensor whose bytes are currently under `source_codec`.
    pub fn codec_for(&self, name: &str, shape: &[u64], source_codec: &str) -> String {
        if let Some((_, c)) = self.codec_for.iter().find(|(p, _)| p.matches(name)) {
            return c.clone();
        }
        if self.keep.iter().any(|p| p.matches(name)) {
            return source_codec.to_string();
        }
        match &self.codec {
            // Vectors (norms, biases) stay at source precision: they are a rounding error
            // of the file's size and quantizing them costs quality for nothing.
            Some(c) if shape.len() >= 2 && is_float_source(source_codec) => c.clone(),
            _ => source_codec.to_string(),
        }
    }
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
        assert_eq!(p.codec_for("blk.0.attn_q.weight", &[64, 64], "f32"), "f16");
        assert_eq!(p.codec_for("blk.0.attn_norm.weight", &[64], "f32"), "f32");
        assert_eq!(p.codec_for("token_embd.weight", &[100, 64], "f32"), "f32");
        assert_eq!(p.codec_for("output.weight", &[100, 64], "f32"), "bf16");
        assert_eq!(p.codec_for("position_ids", &[1, 512], "i64"), "i64");
        assert!(Plan::new(Some("int9".into()), &[], &[]).is_err());
        assert!(Plan::new(None, &[], &["noequals".into()]).is_err());
    }
}
