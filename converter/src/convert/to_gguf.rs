//! Any source → GGUF for stock llama.cpp. Tensors whose codec is a ggml layout are carried
//! byte for byte (`int4_g32_fp16_v1` is Q4_1's layout, so it is carried as Q4_1 when its
//! rows are whole 32-blocks); every other tensor is decoded and written as `--dtype`, so
//! llama.cpp evaluates exactly what HCT decodes. `--decode-all` decodes ggml block types too
//! (plain element types such as f32 norms are always carried: llama.cpp expects them so). HCT's own `hct.*` keys are dropped; the
//! source's keys are written back unchanged, in order.

use super::source::{Source, GGUF_VERSION_KEY};
use super::transcode::encode_chunks;
use super::TensorReport;
use anyhow::{anyhow, bail, Context, Result};
use hct_format::codec;
use hct_format::ggml_type::GgmlType;
use hct_format::gguf::{GgufTensorInfo, GgufWriter, GGML_MAX_DIMS, GGUF_VERSION};
use hct_format::value::Value;
use std::io::Write;
use std::path::Path;

/// How one tensor reaches the GGUF.
enum Route {
    Copy,
    Decode {
        from: &'static dyn codec::Codec,
        to: &'static dyn codec::Codec,
    },
}

/// HCT codecs whose bytes are a ggml layout other than their own ggml id.
fn ggml_layout_of(codec: &str, row_len: u64) -> Option<GgmlType> {
    if let Some(t) = GgmlType::from_hct_codec_id(codec) {
        return Some(t);
    }
    match codec {
        // SPEC.md §7.4: the g32 block is byte-identical to ggml's Q4_1 block.
        "int4_g32_fp16_v1" if row_len % 32 == 0 => GgmlType::from_name("q4_1"),
        _ => None,
    }
}

pub fn write_gguf(
    src: &Source,
    out: &Path,
    dtype: Option<&str>,
    decode_all: bool,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<TensorReport>> {
    let tensors = src.tensors();
    let mut infos = Vec::with_capacity(tensors.len());
    let mut routes = Vec::with_capacity(tensors.len());
    for t in &tensors {
        if t.shape.len() > GGML_MAX_DIMS {
            bail!(
                "tensor {:?} has {} dimensions; GGUF allows at most {GGML_MAX_DIMS}",
                t.name,
                t.shape.len()
            );
        }
        let row_len = t.shape.last().copied().unwrap_or(1);
        let carried = ggml_layout_of(&t.codec, row_len)
            .filter(|ty| !decode_all || ty.plain_element_codec().is_some());
        let (ty, route) = match (carried, dtype) {
            (Some(ty), _) => (ty, Route::Copy),
            (None, Some(want)) => {
                let from = codec::find(&t.codec)
                    .filter(|c| c.can_decode())
                    .ok_or_else(|| anyhow!("tensor {:?}: this build cannot decode codec {}", t.name, t.codec))?;
                let to = codec::find(want).ok_or_else(|| anyhow!("unknown --dtype {want}"))?;
                let ty = GgmlType::from_hct_codec_id(want).ok_or_else(|| anyhow!("--dtype {want} has no ggml type"))?;
                (ty, Route::Decode { from, to })
            }
            (None, None) => bail!(
                "tensor {:?} uses codec {}, which has no ggml layout{}; pass --dtype f32, f16 or bf16 to decode it",
                t.name,
                t.codec,
                if decode_all { " kept by --decode-all" } else { "" }
            ),
        };
        infos.push(GgufTensorInfo {
            name: t.name.clone(),
            dims: t.shape.iter().rev().copied().collect(),
            ggml_type: ty,
        });
        routes.push(route);
    }
    let meta = src.metadata()?;
    let version = match hct_format::value::lookup(&meta, GGUF_VERSION_KEY) {
        Some(Value::U32(v)) => *v,
        _ => GGUF_VERSION,
    };
    let meta: Vec<(String, Value)> = meta
        .into_iter()
        .filter(|(k, _)| !k.starts_with("hct."))
        .collect();
    let mut w = GgufWriter::create(out, version, &meta, &infos)?;
    let mut reports = Vec::with_capacity(tensors.len());
    for (i, (t, route)) in tensors.iter().zip(&routes).enumerate() {
        let mut sink = w.tensor_writer(i)?;
        let mut written = 0u64;
        match route {
            Route::Copy => {
                sink.write_all(t.data)
                    .with_context(|| format!("writing tensor {:?}", t.name))?;
                written = t.data.len() as u64;
            }
            Route::Decode { from, to } => {
                encode_chunks(*from, *to, &t.shape, t.data, |b| {
                    written += b.len() as u64;
                    sink.write_all(b).map_err(anyhow::Error::from)
                })
                .with_context(|| format!("tensor {:?}: {} → {}", t.name, t.codec, to.id()))?;
            }
        }
        sink.finish()?;
        src.release(&t.name);
        progress.inc(t.data.len() as u64);
        reports.push(TensorReport {
            name: t.name.clone(),
            shape: t.shape.clone(),
            source_codec: t.codec.clone(),
            codec: format!("ggml_{}", infos[i].ggml_type.name),
            bytes_in: t.data.len() as u64,
            bytes_out: written,
            elements: t.shape.iter().product(),
            quality: None,
        });
    }
    w.finish()?;
    Ok(reports)
}
