//! HCT (or any source) → safetensors. Tensors whose bytes are a safetensors dtype are
//! copied; others are decoded and written as `--dtype`. Written through the `safetensors`
//! crate with lazy views (one tensor's bytes in memory at a time), to a temporary file that
//! is renamed into place when complete.

use super::source::{Source, SrcTensor, HF_FILE_PREFIX, ST_META_PREFIX};
use super::TensorReport;
use anyhow::{anyhow, bail, Context, Result};
use hct_format::codec;
use hct_format::safetensors_io::dtype_for_codec;
use safetensors::{Dtype, View};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

struct Lazy<'a> {
    t: SrcTensor<'a>,
    dtype: Dtype,
    shape: Vec<usize>,
    /// `Some(codec)` when the bytes must be decoded and re-encoded as `dtype`.
    convert: Option<(&'static dyn codec::Codec, &'static dyn codec::Codec)>,
    len: usize,
    failure: &'a RefCell<Option<anyhow::Error>>,
    progress: &'a indicatif::ProgressBar,
}

impl View for &Lazy<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        self.progress.inc(self.t.data.len() as u64);
        let Some((from, to)) = self.convert else {
            return Cow::Borrowed(self.t.data);
        };
        let mut out = Vec::with_capacity(self.len);
        let r = super::transcode::encode_chunks(from, to, &self.t.shape, self.t.data, |b| {
            out.extend_from_slice(b);
            Ok(())
        });
        if let Err(e) = r {
            // View::data cannot fail; remember the error, write zeros, and discard the file.
            self.failure
                .borrow_mut()
                .get_or_insert(e.context(format!("tensor {:?}", self.t.name)));
            out.resize(self.len, 0);
        }
        Cow::Owned(out)
    }
    fn data_len(&self) -> usize {
        self.len
    }
}

pub fn write_safetensors(
    src: &Source,
    out: &Path,
    dtype: Option<&str>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<TensorReport>> {
    let failure = RefCell::new(None);
    let mut lazies = Vec::new();
    let mut reports = Vec::new();
    for t in src.tensors() {
        let carried = dtype_for_codec(&t.codec);
        let (target, convert) = match (dtype, carried) {
            (None, Some(d)) => (d, None),
            (Some(want), Some(d)) if want == t.codec => (d, None),
            (Some(want), _) => {
                let from = codec::find(&t.codec).filter(|c| c.can_decode()).ok_or_else(|| {
                    anyhow!("tensor {:?}: this build cannot decode codec {}", t.name, t.codec)
                })?;
                let to = codec::find(want).ok_or_else(|| anyhow!("unknown --dtype {want}"))?;
                (dtype_for_codec(want).ok_or_else(|| anyhow!("--dtype {want} is not a safetensors dtype"))?, Some((from, to)))
            }
            (None, None) => bail!(
                "tensor {:?} uses codec {}, which safetensors cannot hold; pass --dtype f32, f16 or bf16 to decode it",
                t.name,
                t.codec
            ),
        };
        let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
        let elements: u64 = t.shape.iter().product();
        let len = match convert {
            Some((_, to)) => codec::payload_len(to, &t.shape)? as usize,
            None => t.data.len(),
        };
        reports.push(TensorReport {
            name: t.name.clone(),
            shape: t.shape.clone(),
            source_codec: t.codec.clone(),
            codec: format!("{target:?}").to_lowercase(),
            bytes_in: t.data.len() as u64,
            bytes_out: len as u64,
            elements,
            quality: None,
            kept_because: None,
        });
        lazies.push(Lazy {
            t,
            dtype: target,
            shape,
            convert,
            len,
            failure: &failure,
            progress,
        });
    }
    let mut meta: HashMap<String, String> = HashMap::new();
    for (k, v) in src.metadata()? {
        if let Some(key) = k.strip_prefix(ST_META_PREFIX) {
            meta.insert(
                key.to_string(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".hct-convert.").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let data = lazies.iter().map(|l| (l.t.name.clone(), l));
    safetensors::serialize_to_file(
        data,
        if meta.is_empty() { None } else { Some(meta) },
        tmp.path(),
    )
    .map_err(|e| anyhow!("writing {}: {e}", out.display()))?;
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    tmp.as_file().sync_all().context("fsync the output")?;
    tmp.persist(out)
        .map_err(|e| anyhow!("cannot rename into {}: {}", out.display(), e.error))?;
    Ok(reports)
}

/// Write the side files recorded from a Hugging Face checkpoint (config.json, tokenizer…)
/// into `dir`, so the converted checkpoint is a usable model folder again.
pub fn restore_side_files(src: &Source, dir: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for (k, v) in src.metadata()? {
        let (Some(name), hct_format::Value::String(bytes)) = (k.strip_prefix(HF_FILE_PREFIX), &v)
        else {
            continue;
        };
        if name.split('/').any(|c| c == ".." || c.is_empty()) {
            bail!("metadata key {k:?} names a path outside the output folder");
        }
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        written.push(name.to_string());
    }
    Ok(written)
}
