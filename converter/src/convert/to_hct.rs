//! Any source → HCT, streaming: one tensor at a time, re-encoded tensors in row chunks
//! encoded in parallel and written in order, so the output does not depend on the thread
//! count and memory stays near a few chunks per worker.

use super::plan::Plan;
use super::source::Source;
use super::transcode::encode_chunks;
use super::TensorReport;
use anyhow::{anyhow, Context, Result};
use hct_format::codec::{self, Codec};
use hct_format::value::{Metadata, Value};
use hct_format::{TensorDesc, Writer};
use indicatif::ProgressBar;
use std::path::Path;

/// Bytes per write of a carried-through payload.
const COPY_PIECE: usize = 8 << 20;

pub fn write_hct(
    src: &Source,
    out: &Path,
    plan: &Plan,
    extra_meta: Metadata,
    progress: &ProgressBar,
) -> Result<Vec<TensorReport>> {
    let mut w = Writer::create(out)?;
    // Tensors from another HCT file may use codecs this build cannot decode; they are
    // still carried through byte for byte.
    w.allow_unknown_codecs(true);
    let mut reports = Vec::new();
    for t in src.tensors() {
        let choice = plan.codec_for(&t.name, &t.shape, &t.codec);
        let target = choice.codec;
        let re_encode = target != t.codec;
        let codec_params = if re_encode {
            vec![(
                "hct.encoder".to_string(),
                Value::string(concat!("hct ", env!("CARGO_PKG_VERSION"))),
            )]
        } else {
            t.codec_params.clone()
        };
        let desc = TensorDesc {
            name: t.name.clone(),
            shape: t.shape.clone(),
            source_dtype: t.source_dtype.clone(),
            codec: target.clone(),
            codec_params,
        };
        let mut sink = w.begin_tensor(desc)?;
        let mut sums = None;
        if re_encode {
            let from = decoder(&t.codec, &t.name)?;
            let to = codec::find(&target).ok_or_else(|| anyhow!("unknown codec {target}"))?;
            let s = encode_chunks(from, to, &t.shape, t.data, |bytes| {
                progress.inc(0);
                sink.write(bytes).map_err(anyhow::Error::from)
            })
            .with_context(|| format!("tensor {:?}: {} → {}", t.name, t.codec, target))?;
            progress.inc(t.data.len() as u64);
            sums = Some(s);
        } else {
            for piece in t.data.chunks(COPY_PIECE) {
                sink.write(piece)?;
                progress.inc(piece.len() as u64);
            }
        }
        sink.finish()?;
        src.release(&t.name);
        let written = w_len_of_last(&w);
        reports.push(TensorReport {
            name: t.name.clone(),
            shape: t.shape.clone(),
            source_codec: t.codec.clone(),
            codec: target,
            bytes_in: t.data.len() as u64,
            bytes_out: written,
            elements: t.shape.iter().product(),
            quality: sums.map(|s| s.report()),
            kept_because: choice.kept_because,
        });
        tracing::debug!(tensor = %t.name, "written");
    }
    let mut meta = src.metadata()?;
    meta.retain(|(k, _)| k != "hct.writer");
    meta.extend(extra_meta);
    meta.push((
        "hct.writer".into(),
        Value::string(concat!("hct ", env!("CARGO_PKG_VERSION"))),
    ));
    w.finish(meta)?;
    Ok(reports)
}

fn w_len_of_last(w: &Writer) -> u64 {
    w.last_tensor_len().unwrap_or(0)
}

pub fn decoder(id: &str, tensor: &str) -> Result<&'static dyn Codec> {
    let c = codec::find(id).ok_or_else(|| {
        anyhow!(
            "tensor {tensor:?}: codec {id:?} is unknown to this build, so it cannot be re-encoded"
        )
    })?;
    if !c.can_decode() {
        return Err(anyhow!("tensor {tensor:?}: this build cannot decode {id}, so it cannot be re-encoded (keep it with --keep)"));
    }
    Ok(c)
}
