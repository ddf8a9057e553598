//! `rope_scaling` from `config.json` → llama.cpp's `<arch>.rope.scaling.*` keys, as llama.cpp's
//! converter maps them: `linear` (a factor) and `yarn` (a factor, the original context length
//! and the optional YaRN parameters). `default` means none. `llama3` (Llama 3.1 and later)
//! writes no keys but a `rope_freqs` tensor of per-frequency divisors (`llama3_rope_factors`),
//! for the llama family only. Other types are refused: a model converted without its scaling
//! loads and then drifts on long contexts.

use anyhow::{bail, Result};
use hct_format::value::{Metadata, Value};
use serde_json::Value as Json;

/// Llama 3's frequency-dependent scaling, as `config.json` gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_context: f64,
}

/// The keys for `scaling`; `Some` for `llama3` scaling, which needs a `rope_freqs` tensor
/// instead (refused unless `llama3_ok`).
pub fn scaling_entries(
    file: &str,
    scaling: &Json,
    arch: &str,
    m: &mut Metadata,
    llama3_ok: bool,
) -> Result<Option<Llama3Scaling>> {
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
            return Ok(None);
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
        ("llama3", f) if llama3_ok => {
            let get =
                |k: &str, default: f64| -> Result<f64> { Ok(num(k)?.map_or(default, f64::from)) };
            // The defaults llama.cpp's converter assumes; the f32 reads above are exact for
            // the values configs hold (8, 1, 4, 8192).
            let s = Llama3Scaling {
                factor: f.map_or(8.0, f64::from),
                low_freq_factor: get("low_freq_factor", 1.0)?,
                high_freq_factor: get("high_freq_factor", 4.0)?,
                original_context: get("original_max_position_embeddings", 8192.0)?,
            };
            if s.low_freq_factor == s.high_freq_factor {
                bail!("{file}: rope_scaling llama3 with low_freq_factor equal to high_freq_factor");
            }
            return Ok(Some(s));
        }
        (k, _) => {
            return Err(super::unsupported(format!(
                "{file}: rope_scaling of type {k:?} is not supported for {arch} (linear and yarn \
                 are, and llama3 for the llama family)"
            )))
        }
    }
    Ok(None)
}

/// The `rope_freqs` tensor of Llama 3 scaling: for each of the `head_dim / 2` rotary
/// frequencies, the divisor llama.cpp applies to it. Computed in f32, operation by operation,
/// as llama.cpp's converter computes it with torch: high frequencies keep 1, low ones get the
/// factor, those between a smooth blend.
pub fn llama3_rope_factors(s: &Llama3Scaling, base: f64, head_dim: u32) -> Vec<f32> {
    let dim = head_dim as f32;
    let base = base as f32;
    let low_wavelen = (s.original_context / s.low_freq_factor) as f32;
    let high_wavelen = (s.original_context / s.high_freq_factor) as f32;
    let two_pi = (2.0 * std::f64::consts::PI) as f32;
    let (factor, low, span) = (
        s.factor as f32,
        s.low_freq_factor as f32,
        (s.high_freq_factor - s.low_freq_factor) as f32,
    );
    let old_context = s.original_context as f32;
    (0..head_dim / 2)
        .map(|i| {
            let freq = 1.0f32 / base.powf((2 * i) as f32 / dim);
            let wavelen = two_pi / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (old_context / wavelen - low) / span;
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: Json) -> Result<Vec<(String, Value)>> {
        let mut m = vec![];
        scaling_entries("config.json", &v, "llama", &mut m, false)?;
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
    fn llama3_factors_match_llama_cpps_converter() {
        let mut m = vec![];
        let s = scaling_entries(
            "config.json",
            &serde_json::json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
            "llama",
            &mut m,
            true,
        )
        .unwrap()
        .unwrap();
        assert!(m.is_empty(), "llama3 scaling writes no keys");
        let f = llama3_rope_factors(&s, 500000.0, 64);
        assert_eq!(f.len(), 32);
        assert!(f[..15].iter().all(|&x| x == 1.0) && f[18..].iter().all(|&x| x == 8.0));
        // The blended three, as convert_hf_to_gguf.py (torch 2.11, f32) wrote them for this
        // configuration (compat-tests/hf/run.sh, llama2-rope-llama3).
        assert_eq!(f[15], 1.553_414_6);
        assert_eq!(f[16], 2.694_53);
        assert_eq!(f[17], 5.257_327);
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
