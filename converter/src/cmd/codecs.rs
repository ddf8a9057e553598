//! `hct codecs`: the codec ids this build knows.

use crate::output;
use anyhow::Result;
use hct_format::codec;
use serde_json::json;

/// List the codec ids this build reads and writes. A file using any other id can be
/// inspected and verified, but its tensors cannot be decoded (exit code 6).
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn is_extension(id: &str) -> bool {
    hct_format::gguf::extension::extension_block_geometry(id).is_some()
}

pub fn run(a: Args) -> Result<()> {
    let all = codec::all();
    if a.json {
        let v: Vec<_> = all
            .iter()
            .map(|c| {
                let block = c.block_layout().map(|l| {
                    json!({
                        "elements": l.elements,
                        "bytes": l.bytes,
                        "partial_last_block": l.partial_last_block,
                        "same_bytes_as_ggml": l.same_bytes_as_ggml,
                    })
                });
                json!({
                    "id": c.id(),
                    "decode": c.can_decode(),
                    "encode": c.can_encode(),
                    "block": block,
                    "plugin_extension_type": is_extension(c.id()),
                    "summary": c.summary(),
                })
            })
            .collect();
        output::print_json(&json!(v));
        return Ok(());
    }
    println!(
        "{:<20} {:<7} {:<7} {:<7} summary",
        "codec", "decode", "encode", "plugin"
    );
    for c in all {
        let yn = |b: bool| if b { "yes" } else { "no" };
        println!(
            "{:<20} {:<7} {:<7} {:<7} {}",
            c.id(),
            yn(c.can_decode()),
            yn(c.can_encode()),
            yn(is_extension(c.id())),
            c.summary()
        );
    }
    println!("\nplugin: carried byte for byte as a GGUF extension type by --gguf-mode plugin (SPEC.md Annex A).");
    Ok(())
}
