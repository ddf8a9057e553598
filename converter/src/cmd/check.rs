//! `hct validate` (the file against SPEC.md) and `hct verify` (every checksum).

use crate::output;
use anyhow::Result;
use hct_format::HctFile;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// Check a container against SPEC.md: structure, limits, placement, header checksum,
/// codec ids known to this build, payload lengths, zero padding; entropy-coded payloads
/// (SPEC.md §6.3) are decoded and every frame checked. Does not hash payloads.
#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The .hct file.
    file: PathBuf,
    /// Print a JSON result.
    #[arg(long)]
    json: bool,
}

/// Recompute the SHA-256 of the header and of every payload (in parallel) and compare
/// with the file's. Names every damaged tensor (with --json, under "damaged"); exit code
/// 5 on any mismatch.
///
/// A plugin GGUF (`hct convert --gguf-mode plugin`) is verified against the codec ids and
/// SHA-256 digests it records for every tensor.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The .hct file, or a plugin GGUF.
    file: PathBuf,
    /// Print a JSON result.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
}

pub fn validate(a: ValidateArgs) -> Result<()> {
    let f = HctFile::open(&a.file)?;
    f.validate()?;
    if a.json {
        output::print_json(&json!({"file": a.file, "valid": true, "tensors": f.tensors().len()}));
    } else {
        println!(
            "{}: valid (HCT {}.{}, {} tensors)",
            a.file.display(),
            f.preamble().major,
            f.preamble().minor,
            f.tensors().len()
        );
    }
    Ok(())
}

pub fn verify(a: VerifyArgs) -> Result<()> {
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {n} worker threads: {e}"))?;
    }
    let start = Instant::now();
    if is_gguf(&a.file)? {
        return verify_plugin_gguf(&a, start);
    }
    let f = HctFile::open(&a.file)?;
    let report = f.verify_all();
    let secs = start.elapsed().as_secs_f64();
    let gbps = f.file_len() as f64 / secs / 1e9;
    let ok = report.damaged.is_empty();
    if a.json {
        output::print_json(&json!({
            "file": a.file, "ok": ok, "tensors": report.tensors,
            "payload_bytes": report.payload_bytes, "damaged": report.damaged,
            "seconds": secs, "gb_per_s": gbps,
        }));
    } else if ok {
        println!(
            "{}: ok, header and {} payloads ({}) match their SHA-256 ({:.2} s, {:.2} GB/s)",
            a.file.display(),
            report.tensors,
            output::bytes(report.payload_bytes),
            secs,
            gbps
        );
    }
    if ok {
        return Ok(());
    }
    let mut message = format!(
        "{}: {} of {} payloads do not match their SHA-256 (damaged after writing):",
        a.file.display(),
        report.damaged.len(),
        report.tensors
    );
    for d in &report.damaged {
        message.push_str(&format!(
            "\n  tensor {:?}: header says {}, payload hashes to {}",
            d.tensor, d.expected, d.actual
        ));
    }
    Err(crate::CliError {
        code: crate::exit::CHECKSUM,
        message,
    }
    .into())
}

/// GGUF files start with "GGUF"; HCT files with their own 8-byte magic (SPEC.md §3.1).
fn is_gguf(path: &std::path::Path) -> Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path)
        .map_err(|e| anyhow::Error::from(e).context(format!("cannot open {}", path.display())))?;
    let n = f.read(&mut magic).unwrap_or(0);
    Ok(n == 4 && &magic == hct_format::gguf::GGUF_MAGIC)
}

fn verify_plugin_gguf(a: &VerifyArgs, start: Instant) -> Result<()> {
    let f = hct_format::gguf::GgufFile::open(&a.file)?;
    let report = crate::plugin_gguf::verify(&f)?;
    let secs = start.elapsed().as_secs_f64();
    if a.json {
        output::print_json(&json!({
            "file": a.file, "ok": true, "format": "gguf", "hct_spec_version": report.spec_version,
            "tensors": report.tensors, "payload_bytes": report.bytes, "seconds": secs,
        }));
    } else {
        println!(
            "{}: ok, plugin GGUF (HCT {}): {} tensors ({}) match their recorded codecs and SHA-256 ({:.2} s)",
            a.file.display(),
            report.spec_version,
            report.tensors,
            output::bytes(report.bytes),
            secs
        );
    }
    Ok(())
}
