//! Inputs as one shape: a list of tensors (name, row-major shape, the HCT codec id that
//! carries their bytes unchanged, zero-copy bytes) and HCT metadata.

use anyhow::{Context, Result};
use hct_format::container::ErrorKind;
use hct_format::gguf::GgufFile;
use hct_format::safetensors_io::Checkpoint;
use hct_format::value::{Metadata, Value};
use hct_format::HctFile;
use sha2::{Digest, Sha256};
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
    /// Position in the source's tensor list.
    pub index: usize,
    /// The SHA-256 the source recorded for `data` (an HCT payload checksum, a plugin GGUF's
    /// record) and the file that recorded it. A conversion hashes the bytes as it reads them
    /// and refuses to finish when they differ, so damage is never passed on re-hashed.
    pub recorded_sha256: Option<([u8; 32], &'a Path)>,
}

impl SrcTensor<'_> {
    /// A hasher to feed this tensor's bytes through, in order, as they are read.
    pub fn check(&self) -> SourceCheck<'_> {
        SourceCheck {
            tensor: self,
            hasher: self.recorded_sha256.map(|_| Sha256::new()),
        }
    }

    /// Compare the SHA-256 of all of `data`, computed elsewhere on the way, with the record.
    pub fn verify_digest(&self, actual: [u8; 32]) -> Result<()> {
        let Some((expected, path)) = self.recorded_sha256 else {
            return Ok(());
        };
        if actual == expected {
            return Ok(());
        }
        Err(hct_format::Error::new(
            path,
            ErrorKind::PayloadChecksumMismatch {
                tensor: self.name.clone(),
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            },
        ))
        .context("the input is damaged; nothing was written")
    }
}

/// Hashes one source tensor's bytes while a conversion streams them (no separate pass) and
/// checks them against the source's record at the end. A no-op for sources that record no
/// checksums (safetensors, ordinary GGUF).
pub struct SourceCheck<'t> {
    tensor: &'t SrcTensor<'t>,
    hasher: Option<Sha256>,
}

impl SourceCheck<'_> {
    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.update(bytes);
        }
    }

    pub fn finish(self) -> Result<()> {
        match self.hasher {
            Some(h) => self.tensor.verify_digest(h.finalize().into()),
            None => Ok(()),
        }
    }
}

/// Refuses a shape whose non-zero dimensions multiply beyond u64. ggml (and so a GGUF
/// reader) accepts `[0, 2^40, 2^40]` as an empty tensor because it multiplies innermost
/// first; HCT lists dimensions outermost first and SPEC.md §4.3 requires the running product
/// to stay within u64, so such a tensor has no HCT form, and the converter's element counts
/// (taken in HCT order) would overflow. Bounding the non-zero product bounds every partial
/// product, in any order.
fn check_element_count(path: &Path, tensor: &str, shape: &[u64]) -> Result<()> {
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1u64, |acc, &d| acc.checked_mul(d));
    match nonzero {
        Some(_) => Ok(()),
        None => Err(crate::exit::invalid(format!(
            "{}: tensor {tensor:?} has shape {shape:?}, whose non-zero dimensions multiply \
             beyond 2^64; HCT cannot represent it (SPEC.md §4.3)",
            path.display()
        ))),
    }
}

/// An HCT input with entropy-coded tensors (SPEC.md §6.3), decoded tensor by tensor into
/// a plain HCT file in the temporary directory, which is mapped and then unlinked (the
/// mapping keeps it alive until the conversion ends). Errors keep naming the input. The
/// rest of the converter then sees zero-copy codec bytes as from any other HCT file, and
/// memory stays near one tensor.
fn decode_entropy(f: &HctFile) -> Result<HctFile> {
    use hct_format::container::entropy::PARAM_KEY;
    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
    let tmp = dir.path().join("decoded.hct");
    let mut w = hct_format::Writer::create(&tmp)?;
    for t in f.tensors() {
        let decoded = f.decoded_payload(t)?;
        let mut params = t.codec_params.clone();
        params.retain(|(k, _)| k != PARAM_KEY);
        w.add_tensor(
            hct_format::TensorDesc {
                name: t.name.clone(),
                shape: t.shape.clone(),
                source_dtype: t.source_dtype.clone(),
                codec: t.codec.clone(),
                codec_params: params,
            },
            &decoded,
        )?;
        f.release(t);
    }
    w.finish(f.metadata().clone())?;
    let decoded = HctFile::open_as(&tmp, f.path())?;
    // The mapping keeps the unlinked file's data until the conversion ends.
    drop(dir);
    Ok(decoded)
}

fn is_entropy_coded(t: &hct_format::TensorInfo) -> bool {
    hct_format::container::is_entropy_coded(t)
}

/// An opened input file.
pub enum Source {
    Safetensors(Checkpoint),
    /// With each tensor's recorded SHA-256 when the file is a plugin GGUF.
    Gguf(GgufFile, Option<Vec<[u8; 32]>>),
    Hct(HctFile),
}

impl Source {
    pub fn open(path: &Path, format: super::Format) -> Result<Source> {
        let source = Self::open_unchecked(path, format)?;
        for t in source.tensors() {
            check_element_count(path, &t.name, &t.shape)?;
        }
        Ok(source)
    }

    fn open_unchecked(path: &Path, format: super::Format) -> Result<Source> {
        Ok(match format {
            // A Hugging Face folder is read as the checkpoint it is.
            super::Format::Safetensors | super::Format::Hf => {
                Source::Safetensors(Checkpoint::open(path)?)
            }
            super::Format::Hct => {
                let f = HctFile::open(path)?;
                if f.tensors().iter().any(is_entropy_coded) {
                    // Stored bytes first, so a flipped byte is reported as damage (exit 5)
                    // rather than as whatever the damaged frame then decodes to.
                    f.verify()?;
                    f.validate()?;
                    Source::Hct(decode_entropy(&f)?)
                } else {
                    f.validate()?;
                    Source::Hct(f)
                }
            }
            super::Format::Gguf => {
                let g = GgufFile::open(path)?;
                let records = crate::plugin_gguf::records_if_plugin(&g)?;
                Source::Gguf(g, records)
            }
        })
    }

    pub fn tensors(&self) -> Vec<SrcTensor<'_>> {
        match self {
            Source::Safetensors(c) => c
                .tensors()
                .iter()
                .enumerate()
                .map(|(index, t)| SrcTensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    codec: t.codec_id().to_string(),
                    source_dtype: format!("{:?}", t.dtype),
                    codec_params: vec![],
                    data: c.data(t),
                    index,
                    recorded_sha256: None,
                })
                .collect(),
            Source::Gguf(g, records) => g
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
                    index: i,
                    recorded_sha256: records.as_ref().map(|r| (r[i], g.path())),
                })
                .collect(),
            Source::Hct(f) => f
                .tensors()
                .iter()
                .enumerate()
                .map(|(index, t)| SrcTensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    codec: t.codec.clone(),
                    source_dtype: t.source_dtype.clone(),
                    codec_params: t.codec_params.clone(),
                    // `open` checked every payload against the file's bounds.
                    data: f.payload(t).unwrap_or_default(),
                    index,
                    recorded_sha256: Some((t.sha256, f.path())),
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
            Source::Gguf(g, _) => {
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

    /// Tell the OS a tensor's input pages can leave our resident set (they stay in the page
    /// cache), so a conversion's resident memory stays near one tensor whatever the format.
    pub fn release(&self, t: &SrcTensor<'_>) {
        match self {
            Source::Safetensors(c) => {
                if let Some(st) = c.tensors().get(t.index) {
                    c.release(st);
                }
            }
            Source::Gguf(g, _) => g.release_tensor(t.index),
            Source::Hct(f) => {
                if let Some(ti) = f.tensors().get(t.index) {
                    f.release(ti);
                }
            }
        }
    }

    /// The input's path (the folder or index for a sharded checkpoint: its first shard).
    pub fn path(&self) -> &Path {
        match self {
            Source::Safetensors(c) => c
                .tensors()
                .first()
                .map_or(Path::new("the checkpoint"), |t| c.shard_path(t)),
            Source::Gguf(g, _) => g.path(),
            Source::Hct(f) => f.path(),
        }
    }

    pub fn total_bytes(&self) -> u64 {
        match self {
            Source::Safetensors(c) => c.total_bytes(),
            Source::Gguf(g, _) => g.tensors().iter().map(|t| t.size).sum(),
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
