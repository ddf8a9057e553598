//! Device profiles: a memory budget for a model's weights plus its KV cache at a stated
//! context length. The table is data (`converter/profiles/devices.json`, compiled in so the
//! binary stands alone); `hct profiles` lists it and `hct convert --profile NAME` turns a
//! profile into a size budget for the weights (the `--max-size` machinery).
//!
//! KV cache bytes, as llama.cpp allocates them for a decoder with grouped-query attention:
//!
//! ```text
//! kv = layers × context × (heads_kv × head_dim_k + heads_kv × head_dim_v) × bytes/element
//! ```
//!
//! where `head_dim_k` is `{arch}.attention.key_length` (else `embedding_length /
//! head_count`), `head_dim_v` likewise from `value_length`, `heads_kv` is
//! `{arch}.attention.head_count_kv` (else `head_count`), and bytes/element is the cache
//! type's (f16: 2; q8_0: 34 per 32). The weights then get `memory − kv` bytes, the whole
//! output file (a runtime maps it).

use anyhow::{anyhow, bail, Context, Result};
use hct_format::ggml_type::GgmlType;
use hct_format::value::{lookup, Metadata, Value};
use serde::{Deserialize, Serialize};

/// The table, as shipped.
const TABLE: &str = include_str!("../profiles/devices.json");

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Bytes the model may occupy: weights plus KV cache.
    pub memory_bytes: u64,
    pub context_tokens: u64,
    /// A ggml type name: f32, f16, bf16, q8_0, q4_0, …
    pub kv_cache_type: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[allow(dead_code)]
    about: String,
    profiles: Vec<Profile>,
}

/// Every profile of the table, in table order.
pub fn all() -> Result<Vec<Profile>> {
    let t: Table = serde_json::from_str(TABLE).context("profiles/devices.json")?;
    for p in &t.profiles {
        cache_type(&p.kv_cache_type).with_context(|| format!("profile {}", p.name))?;
    }
    Ok(t.profiles)
}

/// The profile called `name`, or an error listing the names there are.
pub fn find(name: &str) -> Result<Profile> {
    let all = all()?;
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    let list = names.join(", ");
    all.iter()
        .find(|p| p.name == name)
        .cloned()
        .ok_or_else(|| anyhow!("unknown profile {name:?}: `hct profiles` lists {list}"))
}

fn cache_type(name: &str) -> Result<GgmlType> {
    GgmlType::from_name(name).ok_or_else(|| anyhow!("KV cache type {name:?} is not a ggml type"))
}

/// The attention geometry the KV cache depends on, read from GGUF-style metadata.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct KvGeometry {
    pub layers: u64,
    pub heads_kv: u64,
    pub head_dim_k: u64,
    pub head_dim_v: u64,
}

impl KvGeometry {
    /// From a model's metadata: `general.architecture` names the key prefix.
    pub fn from_metadata(meta: &Metadata) -> Result<KvGeometry> {
        let arch = lookup(meta, "general.architecture")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                anyhow!(
                    "a device profile needs the model's attention geometry, and this input has no \
                     general.architecture metadata (convert from a GGUF or HCT file made from one)"
                )
            })?;
        let get = |key: &str| -> Option<u64> {
            lookup(meta, &format!("{arch}.{key}"))
                .and_then(Value::as_i128)
                .and_then(|v| u64::try_from(v).ok())
        };
        let need = |key: &str| -> Result<u64> {
            match get(key) {
                Some(v) if v > 0 => Ok(v),
                Some(_) => bail!("metadata {arch}.{key} is 0"),
                None => {
                    bail!("the model's metadata lacks {arch}.{key}, which the KV cache size needs")
                }
            }
        };
        let layers = need("block_count")?;
        let heads = need("attention.head_count")?;
        let heads_kv = get("attention.head_count_kv").unwrap_or(heads);
        let width = need("embedding_length")?;
        let head_dim_k = match get("attention.key_length") {
            Some(v) => v,
            None if width % heads == 0 => width / heads,
            None => {
                bail!("{arch}.embedding_length {width} is not a multiple of head_count {heads}")
            }
        };
        let head_dim_v = get("attention.value_length").unwrap_or(head_dim_k);
        Ok(KvGeometry {
            layers,
            heads_kv,
            head_dim_k,
            head_dim_v,
        })
    }

    /// KV cache bytes for `context` tokens of cache type `ty` (module docs' formula).
    pub fn cache_bytes(&self, context: u64, ty: &str) -> Result<u64> {
        let t = cache_type(ty)?;
        let row = |dim: u64| -> Result<u64> {
            let elements = self.heads_kv.checked_mul(dim).ok_or_else(overflow)?;
            t.row_bytes(elements).ok_or_else(|| {
                anyhow!(
                    "a KV row of {elements} elements is not a whole number of {ty} blocks ({})",
                    t.block_size
                )
            })
        };
        let per_token = row(self.head_dim_k)?
            .checked_add(row(self.head_dim_v)?)
            .ok_or_else(overflow)?;
        self.layers
            .checked_mul(context)
            .and_then(|v| v.checked_mul(per_token))
            .ok_or_else(overflow)
    }
}

fn overflow() -> anyhow::Error {
    anyhow!("KV cache size overflows u64")
}

/// A profile applied to a model: what the KV cache takes and what is left for the weights.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    pub profile: Profile,
    pub geometry: KvGeometry,
    pub kv_cache_bytes: u64,
    pub weights_budget_bytes: u64,
}

/// Apply `profile` to a model with this metadata; fails naming the shortfall when the KV
/// cache alone does not fit.
pub fn fit(profile: &Profile, meta: &Metadata) -> Result<Fit> {
    let geometry = KvGeometry::from_metadata(meta)?;
    let kv = geometry.cache_bytes(profile.context_tokens, &profile.kv_cache_type)?;
    if kv >= profile.memory_bytes {
        bail!(
            "profile {}: the KV cache alone ({kv} bytes for {} tokens of {}: {} layers × {} KV heads × \
             ({} + {}) head dims) needs {} bytes more than the profile's {} bytes, leaving nothing for \
             the weights",
            profile.name,
            profile.context_tokens,
            profile.kv_cache_type,
            geometry.layers,
            geometry.heads_kv,
            geometry.head_dim_k,
            geometry.head_dim_v,
            kv - profile.memory_bytes,
            profile.memory_bytes
        );
    }
    Ok(Fit {
        profile: profile.clone(),
        geometry,
        kv_cache_bytes: kv,
        weights_budget_bytes: profile.memory_bytes - kv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm2() -> Metadata {
        vec![
            ("general.architecture".into(), Value::string("llama")),
            ("llama.block_count".into(), Value::U32(30)),
            ("llama.embedding_length".into(), Value::U32(576)),
            ("llama.attention.head_count".into(), Value::U32(9)),
            ("llama.attention.head_count_kv".into(), Value::U32(3)),
        ]
    }

    #[test]
    fn the_table_parses_and_names_are_unique() {
        let all = all().unwrap();
        assert!(all.len() >= 3);
        let mut names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for n in ["phone-low-end", "phone-high-end"] {
            assert!(find(n).is_ok(), "{n}");
        }
        let err = find("watch").unwrap_err().to_string();
        assert!(
            err.contains("watch") && err.contains("phone-low-end"),
            "{err}"
        );
    }

    #[test]
    fn kv_cache_of_smollm2_by_the_formula() {
        let g = KvGeometry::from_metadata(&smollm2()).unwrap();
        assert_eq!(
            g,
            KvGeometry {
                layers: 30,
                heads_kv: 3,
                head_dim_k: 64,
                head_dim_v: 64
            }
        );
        // 30 layers × 2048 tokens × (192 + 192) elements × 2 bytes.
        assert_eq!(g.cache_bytes(2048, "f16").unwrap(), 47_185_920);
        // q8_0: 34 bytes per 32 elements.
        assert_eq!(
            g.cache_bytes(2048, "q8_0").unwrap(),
            30 * 2048 * (2 * 6 * 34)
        );
        assert!(g.cache_bytes(u64::MAX, "f16").is_err());
    }

    #[test]
    fn a_kv_cache_larger_than_the_profile_fails_naming_the_shortfall() {
        let p = Profile {
            name: "small".into(),
            description: String::new(),
            memory_bytes: 40_000_000,
            context_tokens: 2048,
            kv_cache_type: "f16".into(),
        };
        let err = fit(&p, &smollm2()).unwrap_err().to_string();
        assert!(err.contains("7185920 bytes more"), "{err}");
        let ok = fit(
            &Profile {
                memory_bytes: 160_000_000,
                ..p
            },
            &smollm2(),
        )
        .unwrap();
        assert_eq!(ok.weights_budget_bytes, 160_000_000 - 47_185_920);
    }

    #[test]
    fn missing_geometry_is_named() {
        let mut m = smollm2();
        m.retain(|(k, _)| k != "llama.block_count");
        let err = KvGeometry::from_metadata(&m).unwrap_err().to_string();
        assert!(err.contains("llama.block_count"), "{err}");
        let err = KvGeometry::from_metadata(&vec![]).unwrap_err().to_string();
        assert!(err.contains("general.architecture"), "{err}");
    }
}
