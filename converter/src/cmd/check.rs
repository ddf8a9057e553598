//! `hct validate` (the file against SPEC.md) and `hct verify` (every checksum).

use crate::output;
use anyhow::Result;
use hct_format::HctFile;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// Check a container against SPEC.md: structure, limits, placement, header checksum,
/// codec ids known to this build, payload lengths, zero padding. Does not hash payloads.
#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The .hct file.
    file: PathBuf,
    /// Print a JSON result.
    #[arg(long)]
    json: bool,
}

/// Recompute the SHA-256 of the header and of every payload (in parallel) and compare
/// with the file's. Names the first damaged tensor; exit code 5 on mismatch.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The .hct file.
    file: PathBuf,
    /// Print a JSON result.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
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
            .num_threads(n)
            .build_global()?;
    }
    let start = Instant::now();
    let f = HctFile::open(&a.file)?;
    let report = f.verify()?;
    let secs = start.elapsed().as_secs_f64();
    let gbps = f.file_len() as f64 / secs / 1e9;
    if a.json {
        output::print_json(&json!({
            "file": a.file, "ok": true, "tensors": report.tensors,
            "payload_bytes": report.payload_bytes, "seconds": secs, "gb_per_s": gbps,
        }));
    } else {
        println!(
            "{}: ok, header and {} payloads ({}) match their SHA-256 ({:.2} s, {:.2} GB/s)",
            a.file.display(),
            report.tensors,
            output::bytes(report.payload_bytes),
            secs,
            gbps
        );
    }
    Ok(())
}
