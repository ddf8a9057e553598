//! `rope_scaling` from `config.json` → llama.cpp's `<arch>.rope.scaling.*` keys, as llama.cpp's
//! converter maps them: `linear` (a factor) and `yarn` (a factor, the original context length
//! and the optional YaRN parameters). `default` means none. Other types are refused: `llama3`
//! needs a generated `rope_freqs` tensor this build does not write, and a model converted
//! without its scaling loads and then drifts on long contexts.

use anyhow::{bail, Result};
use hct_format::value::{Metadata, Value};
use serde_json::Value as Json;

pub fn scaling_entries(file: &str, scaling: &Json, arch: &str, m: &mut Metadata) -> Result<()> {
    let key = |k: &str| format!("{arch}.rope.scaling.{k}");
    let num = |k: &str| -> Result<Option<f32>> {
        match scaling.get(k).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) => Ok(Some(x as f32)),
                None => bail!("{file}: rope_scaling.{k} is {v}, expected a number"),
            },
        }
    };
    let kind = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(Json::as_str);
    let Some(kind) = kind else {
        if scaling.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(());
        }
        bail!("{file}: rope_scaling has no rope_type or type");
    };
    match (kind, num("factor")?) {
        ("default", _) => {}
        ("linear", Some(f)) => {
            m.push((key("type"), Value::string("linear")));
            m.push((key("factor"), Value::F32(f)));
        }
        ("yarn", Some(f)) => {
            let orig = scaling
                .get("original_max_position_embeddings")
                .and_then(Json::as_u64)
                .and_then(|n| u32::try_from(n).ok());
            let Some(orig) = orig else {
                bail!("{file}: rope_scaling of type yarn without an integer original_max_position_embeddings");
            };
            m.push((key("type"), Value::string("yarn")));
            m.push((key("factor"), Value::F32(f)));
            m.push((key("original_context_length"), Value::U32(orig)));
            if let Some(x) = num("extrapolation_factor")? {
                m.push((key("yarn_ext_factor"), Value::F32(x)));
            }
            let attn = match num("attention_factor")? {
                Some(x) => Some(x),
                None => num("attn_factor")?,
            };
            if let Some(x) = attn {
                m.push((key("yarn_attn_factor"), Value::F32(x)));
            }
            if let Some(x) = num("beta_fast")? {
                m.push((key("yarn_beta_fast"), Value::F32(x)));
            }
            if let Some(x) = num("beta_slow")? {
                m.push((key("yarn_beta_slow"), Value::F32(x)));
            }
        }
        (k @ ("linear" | "yarn"), None) => {
            // llama.cpp's converter writes nothing then, and the model runs unscaled.
            bail!("{file}: rope_scaling of type {k} without a factor")
        }
        (k, _) => {
            return Err(super::unsupported(format!(
                "{file}: rope_scaling of type {k:?} is not supported (linear and yarn are; llama3 \
                 would need a generated rope_freqs tensor, which this build does not write)"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: Json) -> Result<Vec<(String, Value)>> {
        let mut m = vec![];
        scaling_entries("config.json", &v, "llama", &mut m)?;
        Ok(m)
    }

    #[test]
    fn linear_and_yarn_keys() {
        let m = keys(serde_json::json!({"rope_type": "linear", "factor": 2.0})).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, "llama.rope.scaling.type");
        let m = keys(serde_json::json!({"type": "yarn", "factor": 4.0,
            "original_max_position_embeddings": 4096, "beta_fast": 32.0}))
        .unwrap();
        let names: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "llama.rope.scaling.type",
                "llama.rope.scaling.factor",
                "llama.rope.scaling.original_context_length",
                "llama.rope.scaling.yarn_beta_fast"
            ]
        );
        assert!(keys(serde_json::json!({"rope_type": "default"}))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn refuses_what_it_cannot_write() {
        let e = keys(serde_json::json!({"rope_type": "llama3", "factor": 8.0})).unwrap_err();
        assert!(e.to_string().contains("llama3"), "{e}");
        assert!(keys(serde_json::json!({"rope_type": "yarn", "factor": 4.0})).is_err());
        assert!(keys(serde_json::json!({"rope_type": "linear"})).is_err());
        assert!(keys(serde_json::json!({"factor": 2.0})).is_err());
    }
}
