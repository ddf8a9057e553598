//! Any source → GGUF, in one of three modes (`--gguf-mode`):
//!
//! - `native` (default), for stock llama.cpp: tensors whose codec is a ggml layout are carried
//!   byte for byte (`int4_g32_fp16_v1` is Q4_1's layout, so it is carried as Q4_1 when its
//!   rows are whole 32-blocks); every other tensor is decoded and written as `--dtype`, so
//!   llama.cpp evaluates exactly what HCT decodes.
//! - `decoded`: every tensor decoded to `--dtype`, ggml block types too (plain element types
//!   such as f32 norms are always carried: llama.cpp expects them so).
//! - `plugin`, for llama.cpp patched with `compat-tests/plugin/ggml-ext-types.patch` and
//!   libhct registered: HCT codecs with a block layout are carried byte for byte as GGUF
//!   extension types (named by codec id in `general.ggml_ext_types`, see
//!   `hct_format::gguf::extension`), ggml layouts as their ggml type; only rows that are not
//!   whole blocks are decoded to `--dtype`. The file records the HCT spec version and every
//!   tensor's codec and SHA-256 (`crate::plugin_gguf`), which `hct verify` checks.
//!
//! HCT's own `hct.*` keys and any old extension-type table are dropped; the source's other
//! keys are written back unchanged, in order.

use super::source::{Source, SrcTensor, GGUF_VERSION_KEY};
use super::transcode::encode_chunks;
use super::TensorReport;
use crate::llama_gguf::{self, fix::TensorFix};
use crate::plugin_gguf::{self, TensorRecord};
use anyhow::{anyhow, bail, Context, Result};
use hct_format::codec;
use hct_format::ggml_type::GgmlType;
use hct_format::gguf::extension::{extension_block_geometry, extension_table_entry};
use hct_format::gguf::{
    ExtensionType, GgufTensorInfo, GgufWriter, TensorType, GGML_MAX_DIMS, GGUF_VERSION,
    KEY_EXT_TYPES,
};
use hct_format::value::Value;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// Which llama.cpp the GGUF is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GgufMode {
    /// Stock llama.cpp: ggml layouts carried, other codecs decoded to --dtype.
    Native,
    /// llama.cpp with the HCT plugin patch and libhct: HCT codecs kept byte for byte.
    Plugin,
    /// Everything decoded to --dtype except plain element types.
    Decoded,
}

/// How one tensor reaches the GGUF.
enum Route {
    Copy,
    Decode {
        from: &'static dyn codec::Codec,
        to: &'static dyn codec::Codec,
    },
}

/// The ggml type a tensor of `codec` is carried as in a native GGUF: its own ggml id, or the
/// ggml type whose blocks its layout declares to be byte-identical (SPEC.md §7, e.g.
/// `int4_g32_fp16_v1` as Q4_1) when its rows are whole blocks.
fn ggml_layout_of(codec: &str, row_len: u64) -> Option<GgmlType> {
    if let Some(t) = GgmlType::from_hct_codec_id(codec) {
        return Some(t);
    }
    codec::find(codec)?
        .block_layout()?
        .ggml_type_for_row(row_len)
}

/// The type a tensor keeps in `mode` without decoding, if any. Extension codecs get the
/// next index of `ext_table` on first use.
fn carried_type(
    mode: GgufMode,
    codec: &str,
    row_len: u64,
    ext_table: &mut Vec<&'static str>,
) -> Option<TensorType> {
    match mode {
        GgufMode::Native => ggml_layout_of(codec, row_len).map(TensorType::Ggml),
        GgufMode::Decoded => GgmlType::from_hct_codec_id(codec)
            .filter(|t| t.plain_element_codec().is_some())
            .map(TensorType::Ggml),
        GgufMode::Plugin => {
            // ggml layouts (whatever encoder wrote them) keep their ggml type and kernels.
            if let Some(t) = GgmlType::from_hct_codec_id(codec) {
                return Some(TensorType::Ggml(t));
            }
            let layout = codec::find(codec)?.block_layout()?;
            if layout.is_ggml_layout() {
                return layout.ggml_type_for_row(row_len).map(TensorType::Ggml);
            }
            let (block, _) = extension_block_geometry(codec)?;
            if row_len % block as u64 != 0 {
                return None;
            }
            let codec: &'static str =
                hct_format::gguf::extension::extension_codecs().find(|&c| c == codec)?;
            let index = match ext_table.iter().position(|&c| c == codec) {
                Some(i) => i,
                None => {
                    ext_table.push(codec);
                    ext_table.len() - 1
                }
            };
            ExtensionType::new(index as u32, codec).map(TensorType::Extension)
        }
    }
}

pub fn write_gguf(
    src: &Source,
    out: &Path,
    mode: GgufMode,
    dtype: Option<&str>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<TensorReport>> {
    let src_meta = src.metadata()?;
    let (tensors, orders, llama_meta) = llama_view(src.tensors(), &src_meta)?;
    let mut infos = Vec::with_capacity(tensors.len());
    let mut routes = Vec::with_capacity(tensors.len());
    let mut ext_table: Vec<&'static str> = Vec::new();
    for t in &tensors {
        if t.shape.len() > GGML_MAX_DIMS {
            bail!(
                "tensor {:?} has {} dimensions; GGUF allows at most {GGML_MAX_DIMS}",
                t.name,
                t.shape.len()
            );
        }
        let row_len = t.shape.last().copied().unwrap_or(1);
        let (ty, route) = match (carried_type(mode, &t.codec, row_len, &mut ext_table), dtype) {
            (Some(ty), _) => (ty, Route::Copy),
            (None, Some(want)) => {
                let from = codec::find(&t.codec)
                    .filter(|c| c.can_decode())
                    .ok_or_else(|| {
                        crate::exit::unsupported(format!(
                            "tensor {:?}: this build cannot decode codec {}",
                            t.name, t.codec
                        ))
                    })?;
                let to = codec::find(want).ok_or_else(|| anyhow!("unknown --dtype {want}"))?;
                let ty = GgmlType::from_hct_codec_id(want)
                    .ok_or_else(|| anyhow!("--dtype {want} has no ggml type"))?;
                (TensorType::Ggml(ty), Route::Decode { from, to })
            }
            (None, None) => {
                return Err(crate::exit::usage(format!(
                "tensor {:?} uses codec {}, which {}; pass --dtype f32, f16 or bf16 to decode it",
                t.name,
                t.codec,
                match mode {
                    GgufMode::Native => "has no ggml layout",
                    GgufMode::Decoded => "--gguf-mode decoded decodes",
                    GgufMode::Plugin =>
                        "is not a whole number of blocks of a type the plugin carries",
                }
            )))
            }
        };
        infos.push(GgufTensorInfo {
            name: t.name.clone(),
            dims: t.shape.iter().rev().copied().collect(),
            tensor_type: ty,
        });
        routes.push(route);
    }
    let version = match hct_format::value::lookup(&src_meta, GGUF_VERSION_KEY) {
        Some(Value::U32(v)) => *v,
        _ => GGUF_VERSION,
    };
    let mut meta: Vec<(String, Value)> = match llama_meta {
        // A Hugging Face checkpoint: llama.cpp's keys replace the checkpoint's own.
        Some(mut m) => {
            let types: Vec<_> = infos
                .iter()
                .map(|i| (&i.tensor_type, i.dims.len()))
                .collect();
            m.extend(llama_gguf::file_type_entry(&types));
            m
        }
        // The extension table describes one file's type ids: it is written afresh, never copied.
        None => src_meta
            .into_iter()
            .filter(|(k, _)| !k.starts_with("hct.") && k != KEY_EXT_TYPES)
            .collect(),
    };
    if !ext_table.is_empty() {
        meta.push(extension_table_entry(&ext_table));
    }
    if mode == GgufMode::Plugin {
        let records = records_of(&tensors, &orders, &infos, &routes)?;
        meta.extend(plugin_gguf::metadata_entries(&records));
        let digest = plugin_gguf::header_digest_entry(out, version, &meta, &infos)?;
        meta.push(digest);
    }

    let mut w = GgufWriter::create(out, version, &meta, &infos)?;
    let mut reports = Vec::with_capacity(tensors.len());
    for (i, (t, route)) in tensors.iter().zip(&routes).enumerate() {
        let data = arranged(t, orders[i])?;
        let mut sink = w.tensor_writer(i)?;
        let mut written = 0u64;
        // Source bytes are hashed as they are written, checked before the tensor is done.
        let mut check = t.check();
        match route {
            Route::Copy => {
                // The source's bytes are verified as they are read; the GGUF gets them as
                // llama.cpp wants them (the same bytes unless rows move or values change).
                let unchanged = std::ptr::eq(data.as_ref(), t.data);
                if !unchanged {
                    check.update(t.data);
                }
                let pieces = t
                    .data
                    .chunks(8 << 20)
                    .map(Some)
                    .chain(std::iter::repeat(None));
                for (src_piece, piece) in pieces.zip(data.chunks(8 << 20)) {
                    if let (true, Some(p)) = (unchanged, src_piece) {
                        check.update(p);
                    }
                    sink.write_all(piece)
                        .with_context(|| format!("writing tensor {:?}", t.name))?;
                }
                written = data.len() as u64;
            }
            Route::Decode { from, to } => {
                // Changed bytes (moved rows, a kept prefix, changed values): verify the source
                // itself first (one extra pass over those few tensors); otherwise verify the
                // chunks as they are decoded.
                let reordered = !std::ptr::eq(data.as_ref(), t.data);
                if reordered {
                    check.update(t.data);
                }
                encode_chunks(
                    *from,
                    *to,
                    &t.shape,
                    &data,
                    |b| {
                        if !reordered {
                            check.update(b)
                        }
                    },
                    |b| {
                        written += b.len() as u64;
                        sink.write_all(b).map_err(anyhow::Error::from)
                    },
                )
                .with_context(|| format!("tensor {:?}: {} → {}", t.name, t.codec, to.id()))?;
            }
        }
        check.finish()?;
        sink.finish()?;
        drop(data);
        src.release(t);
        progress.inc(t.data.len() as u64);
        reports.push(TensorReport {
            name: t.name.clone(),
            shape: t.shape.clone(),
            source_codec: t.codec.clone(),
            codec: match &infos[i].tensor_type {
                TensorType::Ggml(g) => format!("ggml_{}", g.name),
                TensorType::Extension(e) => e.codec.clone(),
            },
            bytes_in: t.data.len() as u64,
            bytes_out: written,
            elements: t.shape.iter().product(),
            quality: None,
            kept_because: None,
            fallback_because: None,
        });
    }
    w.finish()?;
    Ok(reports)
}

/// Each tensor's codec and the SHA-256 of the bytes it will have in the file. The header
/// comes first in a GGUF, so decoded tensors are decoded once here to hash them and again
/// when written; carried tensors (all of them, unless rows are partial) are hashed in place.
fn records_of(
    tensors: &[SrcTensor<'_>],
    orders: &[Option<TensorFix>],
    infos: &[GgufTensorInfo],
    routes: &[Route],
) -> Result<Vec<TensorRecord>> {
    tensors
        .par_iter()
        .zip(orders)
        .zip(infos)
        .zip(routes)
        .map(|(((t, order), info), route)| {
            let data = arranged(t, *order)?;
            let sha256: [u8; 32] = match route {
                Route::Copy => Sha256::digest(&data).into(),
                Route::Decode { from, to } => {
                    let mut h = Sha256::new();
                    encode_chunks(
                        *from,
                        *to,
                        &t.shape,
                        &data,
                        |_| {},
                        |b| {
                            h.update(b);
                            Ok(())
                        },
                    )
                    .with_context(|| format!("tensor {:?}: {} → {}", t.name, t.codec, to.id()))?;
                    h.finalize().into()
                }
            };
            Ok(TensorRecord {
                name: t.name.clone(),
                codec: info.tensor_type.hct_codec_id(),
                sha256,
            })
        })
        .collect()
}

/// The tensors as the GGUF has them. A Hugging Face checkpoint (see `crate::llama_gguf`) gets
/// llama.cpp's names, loses the tensors llama.cpp does not use, has its q/k rows reordered
/// where llama.cpp's rotary embedding needs it, and llama.cpp's metadata; any other source
/// is unchanged. A renamed tensor keeps its source index, by which its pages are released.
#[allow(clippy::type_complexity)]
fn llama_view<'a>(
    all: Vec<SrcTensor<'a>>,
    meta: &hct_format::value::Metadata,
) -> Result<(
    Vec<SrcTensor<'a>>,
    Vec<Option<TensorFix>>,
    Option<hct_format::value::Metadata>,
)> {
    let Some(layout) = llama_gguf::layout_for(meta, &all)? else {
        let orders = vec![None; all.len()];
        return Ok((all, orders, None));
    };
    tracing::info!(
        architecture = layout.architecture,
        "llama.cpp layout from the checkpoint's config.json"
    );
    let mut slots: Vec<Option<SrcTensor<'a>>> = all.into_iter().map(Some).collect();
    let mut tensors = Vec::with_capacity(layout.tensors.len());
    let mut orders = Vec::with_capacity(layout.tensors.len());
    for m in layout.tensors {
        let mut t = slots
            .get_mut(m.source)
            .and_then(Option::take)
            .ok_or_else(|| anyhow!("internal: tensor {} mapped twice", m.source))?;
        t.name = m.name;
        if let Some(TensorFix::FirstRows(n)) = m.fix {
            if let Some(rows) = t.shape.first_mut() {
                *rows = n;
            }
        }
        tensors.push(t);
        orders.push(m.fix);
    }
    for (name, values) in layout.generated {
        // A few hundred bytes per conversion, alive until the process ends: leaked, so that
        // the generated tensor borrows like every source tensor.
        let data: &'static [u8] = Box::leak(
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into_boxed_slice(),
        );
        tensors.push(SrcTensor {
            name,
            shape: vec![values.len() as u64],
            codec: "f32".into(),
            source_dtype: "F32".into(),
            codec_params: vec![],
            data,
            // No source position: releasing its pages is a no-op.
            index: usize::MAX,
            recorded_sha256: None,
        });
        orders.push(None);
    }
    Ok((tensors, orders, Some(layout.metadata)))
}

/// A tensor's bytes as the GGUF stores them (a copy only when rows move or values change).
fn arranged<'a>(
    t: &'a SrcTensor<'_>,
    fix: Option<TensorFix>,
) -> Result<std::borrow::Cow<'a, [u8]>> {
    crate::llama_gguf::fix::apply(t.data, &t.shape, &t.codec, fix)
        .with_context(|| format!("tensor {:?}: {fix:?} for llama.cpp", t.name))
}
