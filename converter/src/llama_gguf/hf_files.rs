//! The checkpoint files a source carries as `hf.file.<name>` metadata, parsed on demand.
//!
//! A checkpoint folder puts them there when it is opened, and an HCT file made from one keeps
//! them, so the same code serves `folder → GGUF` and `folder → HCT → GGUF`.

use crate::convert::source::HF_FILE_PREFIX;
use anyhow::{bail, Context, Result};
use hct_format::value::{Metadata, Value};
use serde_json::Value as Json;

/// The side files of one source, by name (`config.json`, `1_Pooling/config.json`, …).
pub struct HfFiles<'a> {
    meta: &'a Metadata,
}

impl<'a> HfFiles<'a> {
    pub fn new(meta: &'a Metadata) -> HfFiles<'a> {
        HfFiles { meta }
    }

    pub fn has(&self, name: &str) -> bool {
        self.bytes(name).is_some()
    }

    pub fn bytes(&self, name: &str) -> Option<&'a [u8]> {
        let key = format!("{HF_FILE_PREFIX}{name}");
        self.meta
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| match v {
                Value::String(b) => Some(b.as_slice()),
                _ => None,
            })
    }

    /// `name` parsed as JSON, or `None` when the checkpoint did not have it.
    pub fn json(&self, name: &str) -> Result<Option<Json>> {
        let Some(bytes) = self.bytes(name) else {
            return Ok(None);
        };
        let v = serde_json::from_slice(bytes).with_context(|| {
            format!("{name} (metadata key {HF_FILE_PREFIX}{name}) is not valid JSON")
        })?;
        Ok(Some(v))
    }

    /// `name` as UTF-8 text, or `None` when the checkpoint did not have it.
    pub fn text(&self, name: &str) -> Result<Option<String>> {
        let Some(bytes) = self.bytes(name) else {
            return Ok(None);
        };
        let s = std::str::from_utf8(bytes).with_context(|| {
            format!("{name} (metadata key {HF_FILE_PREFIX}{name}) is not UTF-8 text")
        })?;
        Ok(Some(s.to_string()))
    }

    /// Like `json`, for a file the conversion cannot do without.
    pub fn require_json(&self, name: &str, why: &str) -> Result<Json> {
        match self.json(name)? {
            Some(v) => Ok(v),
            None => bail!(
                "the checkpoint has no {name} (metadata key {HF_FILE_PREFIX}{name}), which {why}"
            ),
        }
    }
}

/// Typed reads of `config.json`-style objects, with errors that name the file and the key.
pub struct JsonObject<'a> {
    pub file: &'a str,
    pub value: &'a Json,
}

impl<'a> JsonObject<'a> {
    pub fn new(file: &'a str, value: &'a Json) -> Result<JsonObject<'a>> {
        if !value.is_object() {
            bail!("{file}: expected a JSON object at the top level");
        }
        Ok(JsonObject { file, value })
    }

    pub fn get(&self, key: &str) -> Option<&'a Json> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    /// A non-negative integer that fits the u32 GGUF stores it as.
    pub fn u32(&self, key: &str) -> Result<Option<u32>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .with_context(|| {
                format!(
                    "{}: {key} is {v}, expected an integer in 0..2^32",
                    self.file
                )
            })?;
        Ok(Some(n))
    }

    pub fn require_u32(&self, key: &str) -> Result<u32> {
        self.u32(key)?
            .with_context(|| format!("{}: missing {key}", self.file))
    }

    pub fn f64(&self, key: &str) -> Result<Option<f64>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let x = v
            .as_f64()
            .with_context(|| format!("{}: {key} is {v}, expected a number", self.file))?;
        Ok(Some(x))
    }

    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Json::as_str)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Json::as_bool)
    }
}
