//! `hct inspect`: what is inside a container, for people and (with --json) for scripts.

use crate::convert::source::Source;
use crate::convert::Format;
use crate::output;
use anyhow::Result;
use hct_format::value::value_to_json;
use hct_format::{codec, HctFile};
use serde_json::json;
use std::path::PathBuf;

/// Show a file's metadata and tensor table: HCT, GGUF or safetensors (by file name).
///
/// For HCT, opening checks the structure and the header checksum (not the payload
/// checksums: use `hct verify`); tensors whose codec this build does not know are listed
/// and marked. GGUF and safetensors tensors are shown under the HCT codec id that carries
/// their bytes (`ggml_q4_k`, `bf16`, …), with shapes outermost first.
#[derive(clap::Args)]
pub struct Args {
    /// The .hct file.
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Show at most this many items of each metadata array (0 = all).
    #[arg(long, default_value_t = 8)]
    max_items: usize,
}

pub fn run(a: Args) -> Result<()> {
    let format = crate::convert::detect(&a.file).unwrap_or(Format::Hct);
    if format != Format::Hct {
        return run_foreign(&a, format);
    }
    let f = HctFile::open(&a.file)?;
    let max_items = if a.max_items == 0 {
        usize::MAX
    } else {
        a.max_items
    };
    let elements: u64 = f.tensors().iter().map(|t| t.element_count()).sum();
    let bits = f.file_len() as f64 * 8.0;
    let bpw = if elements > 0 {
        bits / elements as f64
    } else {
        0.0
    };
    if a.json {
        let tensors = f.tensors().iter().map(|t| {
            json!({
                "name": t.name,
                "shape": t.shape,
                "codec": t.codec,
                "codec_known": codec::find(&t.codec).is_some(),
                "source_dtype": t.source_dtype,
                "codec_params": t.codec_params.iter().map(|(k, v)| (k.clone(), value_to_json(v, max_items))).collect::<serde_json::Map<_, _>>(),
                "offset": t.offset,
                "length": t.length,
                // The codec's bytes; differs from `length` (the stored bytes) only for an
                // entropy-coded tensor (SPEC.md §6.3). Null when the codec is unknown.
                "decoded_length": f.decoded_len(t).ok(),
                "entropy_coded": hct_format::container::is_entropy_coded(t),
                "elements": t.element_count(),
                "bits_per_weight": if t.element_count() > 0 { t.length as f64 * 8.0 / t.element_count() as f64 } else { 0.0 },
                "sha256": hex::encode(t.sha256),
            })
        });
        let p = f.preamble();
        let head = json!({
            "file": a.file,
            "format": "hct",
            "spec_version": format!("{}.{}", p.major, p.minor),
            "file_bytes": f.file_len(),
            "header": { "offset": p.header_offset, "length": p.header_len, "sha256": hex::encode(p.header_sha256) },
            "elements": elements,
            "bits_per_weight_whole_file": bpw,
        });
        let metadata = f
            .metadata()
            .iter()
            .map(|(k, v)| output::MetaEntry::new(k, v, max_items));
        return output::print_json_streamed(&output::Listing {
            head: head.as_object().cloned().unwrap_or_default(),
            metadata: output::StreamedArray::new(metadata),
            tensors: output::StreamedArray::new(tensors),
        });
    }
    let p = f.preamble();
    println!(
        "{}: HCT {}.{}, {}, {} tensors, {} elements, {:.3} bits per weight over the whole file",
        a.file.display(),
        p.major,
        p.minor,
        output::bytes(f.file_len()),
        f.tensors().len(),
        elements,
        bpw
    );
    println!(
        "header: {} at offset {}, sha256 {}",
        output::bytes(p.header_len),
        p.header_offset,
        hex::encode(p.header_sha256)
    );
    println!("\nmetadata ({} keys):", f.metadata().len());
    for (k, v) in f.metadata() {
        println!("  {k} ({}) = {v}", v.value_type());
    }
    println!("\ntensors:");
    let w = f
        .tensors()
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "  {:w$}  {:>18}  {:<18} {:<12} {:>10}  {:>6}",
        "name", "shape", "codec", "source", "bytes", "bpw"
    );
    for t in f.tensors() {
        let known = if codec::find(&t.codec).is_some() {
            ""
        } else {
            "  (codec unknown to this build)"
        };
        let bpw = if t.element_count() > 0 {
            t.length as f64 * 8.0 / t.element_count() as f64
        } else {
            0.0
        };
        // Codec parameters (e.g. an hct_v3 tensor's retention), beyond the encoder's name.
        let params: String = t
            .codec_params
            .iter()
            .filter(|(k, _)| k != "hct.encoder")
            .map(|(k, v)| format!(" {k}={v}"))
            .collect();
        let params = match f.decoded_len(t) {
            Ok(d) if hct_format::container::is_entropy_coded(t) => format!(
                "{params} (stored {} of {d} decoded bytes, {:.3}x)",
                t.length,
                d as f64 / t.length.max(1) as f64
            ),
            _ => params,
        };
        println!(
            "  {:w$}  {:>18}  {:<18} {:<12} {:>10}  {:>6.3}{known}{params}",
            t.name,
            output::shape(&t.shape),
            t.codec,
            t.source_dtype,
            t.length,
            bpw
        );
    }
    Ok(())
}

/// GGUF and safetensors files, through the converter's view of them.
fn run_foreign(a: &Args, format: Format) -> Result<()> {
    let src = Source::open(&a.file, format)?;
    let max_items = if a.max_items == 0 {
        usize::MAX
    } else {
        a.max_items
    };
    // The converter's own bookkeeping keys are not in the file: do not show them.
    let meta: Vec<_> = src
        .metadata()?
        .into_iter()
        .filter(|(k, _)| !k.starts_with("hct."))
        .collect();
    let tensors = src.tensors();
    let file_bytes = std::fs::metadata(&a.file).map(|m| m.len()).unwrap_or(0);
    let elements: u64 = tensors
        .iter()
        .map(|t| t.shape.iter().product::<u64>())
        .sum();
    let bpw = if elements > 0 {
        (src.total_bytes() as f64) * 8.0 / elements as f64
    } else {
        0.0
    };
    if a.json {
        let head = json!({
            "file": a.file, "format": format, "file_bytes": file_bytes, "elements": elements,
            "bits_per_weight_tensor_data": bpw,
        });
        let metadata = meta
            .iter()
            .map(|(k, v)| output::MetaEntry::new(k, v, max_items));
        let listed = tensors.iter().map(|t| {
            json!({
                "name": t.name, "shape": t.shape, "codec": t.codec, "source_dtype": t.source_dtype, "length": t.data.len(),
            })
        });
        return output::print_json_streamed(&output::Listing {
            head: head.as_object().cloned().unwrap_or_default(),
            metadata: output::StreamedArray::new(metadata),
            tensors: output::StreamedArray::new(listed),
        });
    }
    println!(
        "{}: {}, {}, {} tensors, {} elements, {:.3} bits per weight over the tensor data",
        a.file.display(),
        serde_json::to_value(format)?.as_str().unwrap_or("?"),
        output::bytes(file_bytes),
        tensors.len(),
        elements,
        bpw
    );
    println!("\nmetadata ({} keys):", meta.len());
    for (k, v) in &meta {
        println!("  {k} ({}) = {v}", v.value_type());
    }
    println!("\ntensors:");
    let w = tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "  {:w$}  {:>18}  {:<18} {:<12} {:>10}",
        "name", "shape", "codec", "source", "bytes"
    );
    for t in &tensors {
        println!(
            "  {:w$}  {:>18}  {:<18} {:<12} {:>10}",
            t.name,
            output::shape(&t.shape),
            t.codec,
            t.source_dtype,
            t.data.len()
        );
    }
    Ok(())
}
