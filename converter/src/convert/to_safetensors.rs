//! HCT (or any source) → safetensors. Tensors whose bytes are a safetensors dtype are
//! copied; others are decoded and written as `--dtype`. The header comes from the
//! `safetensors` crate; tensors are streamed one at a time (lazy views) to a temporary file
//! that is renamed into place when complete.

use super::source::{Source, SrcTensor, HF_FILE_PREFIX, ST_META_PREFIX};
use super::TensorReport;
use crate::llama_gguf::rows::RowOrder;
use anyhow::{anyhow, Context, Result};
use hct_format::codec;
use hct_format::safetensors_io::{dtype_for_codec, SIDE_FILES};
use safetensors::{Dtype, View};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

struct Lazy<'a> {
    t: SrcTensor<'a>,
    dtype: Dtype,
    shape: Vec<usize>,
    /// `Some(codec)` when the bytes must be decoded and re-encoded as `dtype`.
    convert: Option<(&'static dyn codec::Codec, &'static dyn codec::Codec)>,
    len: usize,
    /// Rows to move on the way out (a GGUF's q/k back to Hugging Face's rotary order).
    rows: Option<RowOrder>,
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
        let bytes = self.bytes();
        let Some(order) = self.rows else {
            return bytes;
        };
        let codec = match self.convert {
            Some((_, to)) => to.id(),
            None => self.t.codec.as_str(),
        };
        match crate::llama_gguf::rows::arrange(&bytes, &self.t.shape, codec, Some(order)) {
            Ok(b) => Cow::Owned(b.into_owned()),
            Err(e) => {
                self.failure
                    .borrow_mut()
                    .get_or_insert(e.context(format!("tensor {:?}: moving rows", self.t.name)));
                bytes
            }
        }
    }
    fn data_len(&self) -> usize {
        self.len
    }
}

impl Lazy<'_> {
    /// The tensor's bytes as `dtype`, in the source's row order.
    fn bytes(&self) -> Cow<'_, [u8]> {
        self.progress.inc(self.t.data.len() as u64);
        let mut check = self.t.check();
        let Some((from, to)) = self.convert else {
            // The serializer writes these bytes next; hashing them now reads them once
            // more, but while they are hot.
            check.update(self.t.data);
            if let Err(e) = check.finish() {
                self.failure.borrow_mut().get_or_insert(e);
            }
            return Cow::Borrowed(self.t.data);
        };
        let mut out = Vec::with_capacity(self.len);
        let r = super::transcode::encode_chunks(
            from,
            to,
            &self.t.shape,
            self.t.data,
            |b| check.update(b),
            |b| {
                out.extend_from_slice(b);
                Ok(())
            },
        )
        .and_then(|()| check.finish());
        if let Err(e) = r {
            // View::data cannot fail; remember the error, write zeros, and discard the file.
            self.failure
                .borrow_mut()
                .get_or_insert(e.context(format!("tensor {:?}", self.t.name)));
            out.resize(self.len, 0);
        }
        Cow::Owned(out)
    }
}

pub fn write_safetensors(
    src: &Source,
    out: &Path,
    dtype: Option<&str>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<TensorReport>> {
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
    let tensors = src.tensors().into_iter().map(|t| (t, None)).collect();
    write_tensors(src, tensors, meta, out, dtype, progress)
}

/// `tensors` (renamed as the caller likes, rows moved where it says) as a safetensors file
/// with `meta` as its metadata.
pub fn write_tensors(
    src: &Source,
    tensors: Vec<(SrcTensor<'_>, Option<RowOrder>)>,
    meta: HashMap<String, String>,
    out: &Path,
    dtype: Option<&str>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<TensorReport>> {
    let failure = RefCell::new(None);
    let mut lazies = Vec::new();
    let mut reports = Vec::new();
    for (t, rows) in tensors {
        if t.name == "__metadata__" {
            return Err(crate::CliError {
                code: crate::exit::UNSUPPORTED,
                message: format!(
                    "{}: a tensor is named \"__metadata__\", the key safetensors reserves for the \
                     file's metadata; a safetensors file cannot hold it (rename the tensor or \
                     convert to .hct or .gguf)",
                    src_path(src)
                ),
            }
            .into());
        }
        let carried = dtype_for_codec(&t.codec);
        let (target, convert) = match (dtype, carried) {
            (None, Some(d)) => (d, None),
            (Some(want), Some(d)) if want == t.codec => (d, None),
            (Some(want), _) => {
                let from = codec::find(&t.codec).filter(|c| c.can_decode()).ok_or_else(|| {
                    crate::exit::unsupported(format!("tensor {:?}: this build cannot decode codec {}", t.name, t.codec))
                })?;
                let to = codec::find(want).ok_or_else(|| anyhow!("unknown --dtype {want}"))?;
                (dtype_for_codec(want).ok_or_else(|| anyhow!("--dtype {want} is not a safetensors dtype"))?, Some((from, to)))
            }
            (None, None) => return Err(crate::exit::usage(format!(
                "tensor {:?} uses codec {}, which safetensors cannot hold; pass --dtype f32, f16 or bf16 to decode it",
                t.name,
                t.codec
            ))),
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
            fallback_because: None,
        });
        lazies.push(Lazy {
            t,
            dtype: target,
            shape,
            convert,
            len,
            rows,
            failure: &failure,
            progress,
        });
    }
    write_streaming(src, &lazies, meta, out)?;
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    Ok(reports)
}

/// Write the file ourselves rather than through `safetensors::serialize_to_file`, which
/// makes its own 0600 temporary file that a killed process leaves behind under a name
/// nothing cleans. The header is the crate's own `Metadata` serialization, and tensors go
/// in the crate's order (larger dtypes first, then by name), so the bytes are the same.
fn write_streaming(
    src: &Source,
    lazies: &[Lazy<'_>],
    meta: HashMap<String, String>,
    out: &Path,
) -> Result<()> {
    let io = |what: &str, e: std::io::Error| {
        anyhow::Error::new(e).context(format!("cannot {what} {}", out.display()))
    };
    let mut order: Vec<&Lazy<'_>> = lazies.iter().collect();
    order.sort_by(|l, r| r.dtype.cmp(&l.dtype).then(l.t.name.cmp(&r.t.name)));
    let mut infos = Vec::with_capacity(order.len());
    let mut offset = 0usize;
    for l in &order {
        let end = offset.checked_add(l.len).ok_or_else(|| {
            anyhow!(
                "tensor {:?}: the file would exceed the address space",
                l.t.name
            )
        })?;
        infos.push((
            l.t.name.clone(),
            safetensors::tensor::TensorInfo {
                dtype: l.dtype,
                shape: l.shape.clone(),
                data_offsets: (offset, end),
            },
        ));
        offset = end;
    }
    let header = safetensors::tensor::Metadata::new((!meta.is_empty()).then_some(meta), infos)
        .map_err(|e| {
            anyhow!(
                "{}: cannot write a valid safetensors header: {e}",
                out.display()
            )
        })?;
    let mut header = serde_json::to_vec(&header)?;
    // Data starts 8-byte aligned, as every safetensors writer pads it.
    header.resize(header.len().next_multiple_of(8), b' ');
    let tmp = hct_format::output_file::create_temp(out).map_err(|e| io("create", e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    let write = |w: &mut std::io::BufWriter<&std::fs::File>, b: &[u8]| {
        w.write_all(b).map_err(|e| io("write", e))
    };
    write(&mut w, &(header.len() as u64).to_le_bytes())?;
    write(&mut w, &header)?;
    for l in order {
        write(&mut w, &l.data())?;
        src.release(&l.t);
    }
    w.flush().map_err(|e| io("write", e))?;
    drop(w);
    if lazies.first().is_some_and(|l| l.failure.borrow().is_some()) {
        return Ok(()); // the caller reports the failure; the temporary file goes away
    }
    tmp.as_file().sync_all().map_err(|e| io("fsync", e))?;
    hct_format::output_file::persist(tmp, out)
        .map_err(|e| io("rename the temporary file over", e))?;
    Ok(())
}

/// Write the side files recorded from a Hugging Face checkpoint (config.json, tokenizer…)
/// into `dir`, so the converted checkpoint is a usable model folder again. Only the files
/// the reader records (`SIDE_FILES`) are written, each atomically (temporary file and
/// rename) and never over anything but a regular file; any other `hf.file.` key is
/// reported and skipped.
pub fn restore_side_files(src: &Source, dir: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for (k, v) in src.metadata()? {
        let Some(name) = k.strip_prefix(HF_FILE_PREFIX) else {
            continue;
        };
        let hct_format::Value::String(bytes) = &v else {
            tracing::warn!(key = %k, "side file entry is not a string; skipped");
            continue;
        };
        if !SIDE_FILES.contains(&name) {
            tracing::warn!(key = %k, "not a known checkpoint file; skipped");
            continue;
        }
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            // Only `1_Pooling/config.json` has a folder, and it is a fixed name.
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let write = || -> std::io::Result<()> {
            let mut tmp = hct_format::output_file::create_temp(&p)?;
            tmp.write_all(bytes)?;
            tmp.as_file().sync_all()?;
            hct_format::output_file::persist(tmp, &p)
        };
        write().with_context(|| format!("cannot write {}", p.display()))?;
        written.push(name.to_string());
    }
    Ok(written)
}

fn src_path(src: &Source) -> String {
    src.path().display().to_string()
}
