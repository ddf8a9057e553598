//! Inputs as one shape: a list of tensors (name, row-major shape, the HCT codec id that
//! carries their bytes unchanged, zero-copy bytes) and HCT metadata.

use anyhow::{Context, Result};
use hct_format::gguf::GgufFile;
use hct_format::safetensors_io::Checkpoint;
use hct_format::value::{Metadata, Value};
use hct_format::HctFile;
use std::path::Path;

/// One input tensor.
pub struct SrcTensor<'a> {
    pub name: String,
    pub shape: Vec<u64>,
    /// HCT codec id under which `data` is already a valid payload.
    pub codec: String,
    /// What the source called its type (`BF16`, `q4_K`, `int4_opt_v1`).
    pub source_dtype: String,
    pub codec_params: Metadata,
    pub data: &'a [u8],
}

/// An opened input file.
pub enum Source {
    Safetensors(Checkpoint),
    Gguf(GgufFile),
    Hct(HctFile),
}

impl Source {
    pub fn open(path: &Path, format: super::Format) -> Result<Source> {
        Ok(match format {
            super::Format::Safetensors => Source::Safetensors(Checkpoint::open(path)?),
            super::Format::Hct => {
                let f = HctFile::open(path)?;
                f.validate()?;
                Source::Hct(f)
            }
            super::Format::Gguf => Source::Gguf(GgufFile::open(path)?),
        })
    }

    pub fn tensors(&self) -> Vec<SrcTensor<'_>> {
        match self {
            Source::Safetensors(c) => c
                .tensors()
                .iter()
                .map(|t| SrcTensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    codec: t.codec_id().to_string(),
                    source_dtype: format!("{:?}", t.dtype),
                    codec_params: vec![],
                    data: c.data(t),
                })
                .collect(),
            Source::Gguf(g) => g
                .tensors()
                .iter()
                .enumerate()
                .map(|(i, t)| SrcTensor {
                    name: t.info.name.clone(),
                    // GGUF lists dimensions innermost first; HCT outermost first.
                    shape: t.info.dims.iter().rev().copied().collect(),
                    codec: t.info.tensor_type.hct_codec_id(),
                    source_dtype: t.info.tensor_type.name().to_string(),
                    codec_params: vec![],
                    data: g.tensor_data(i),
                })
                .collect(),
            Source::Hct(f) => f
                .tensors()
                .iter()
                .map(|t| SrcTensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    codec: t.codec.clone(),
                    source_dtype: t.source_dtype.clone(),
                    codec_params: t.codec_params.clone(),
                    data: f.payload(t).expect("bounds checked at open"),
                })
                .collect(),
        }
    }

    /// The input's metadata in HCT's model (SPEC.md §4.2; key names in README "Metadata").
    pub fn metadata(&self) -> Result<Metadata> {
        Ok(match self {
            Source::Safetensors(c) => {
                let mut m: Metadata =
                    vec![("hct.source.format".into(), Value::string("safetensors"))];
                for (k, v) in c.metadata() {
                    m.push((format!("{ST_META_PREFIX}{k}"), Value::string(v.clone())));
                }
                if let Some(idx) = c.index_metadata() {
                    m.push((ST_INDEX_META.into(), Value::string(idx)));
                }
                for (name, bytes) in c.side_files() {
                    m.push((
                        format!("{HF_FILE_PREFIX}{name}"),
                        Value::String(bytes.clone()),
                    ));
                }
                m
            }
            Source::Gguf(g) => {
                // The GGUF keys stay exactly as they were (order, types, values); what HCT
                // adds is under `hct.` and is removed again on export. A plugin GGUF's own
                // records and extension-type table describe that file's encoding, not the
                // model, so they are not carried.
                let mut m: Metadata = g
                    .metadata()
                    .iter()
                    .filter(|(k, _)| !k.starts_with("hct.") && k != hct_format::gguf::KEY_EXT_TYPES)
                    .cloned()
                    .collect();
                m.push(("hct.source.format".into(), Value::string("gguf")));
                m.push((GGUF_VERSION_KEY.into(), Value::U32(g.version())));
                m
            }
            Source::Hct(f) => f.metadata().clone(),
        })
    }

    /// Tell the OS a tensor's input pages can leave our resident set.
    pub fn release(&self, name: &str) {
        if let Source::Safetensors(c) = self {
            if let Some(t) = c.tensors().iter().find(|t| t.name == name) {
                c.release(t);
            }
        }
    }

    pub fn total_bytes(&self) -> u64 {
        match self {
            Source::Safetensors(c) => c.total_bytes(),
            Source::Gguf(g) => g.tensors().iter().map(|t| t.size).sum(),
            Source::Hct(f) => f.tensors().iter().map(|t| t.length).sum(),
        }
    }
}

/// Where a safetensors `__metadata__` entry lives in HCT metadata.
pub const ST_META_PREFIX: &str = "safetensors.metadata.";
/// A sharded checkpoint's index `metadata` object, as JSON text.
pub const ST_INDEX_META: &str = "safetensors.index_metadata";
/// The GGUF version of a GGUF source, so export writes the same version back.
pub const GGUF_VERSION_KEY: &str = "hct.source.gguf_version";
/// Files found beside a checkpoint (config.json, tokenizer.json, …), their bytes.
pub const HF_FILE_PREFIX: &str = "hf.file.";

/// Check the input exists before anything is created, so the error names it plainly.
pub fn check_exists(path: &Path) -> Result<()> {
    std::fs::metadata(path).with_context(|| format!("cannot read input {}", path.display()))?;
    Ok(())
}
