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

pub fn run(a: Args) -> Result<()> {
    let all = codec::all();
    if a.json {
        let v: Vec<_> = all
            .iter()
            .map(|c| json!({"id": c.id(), "decode": c.can_decode(), "encode": c.can_encode(), "summary": c.summary()}))
            .collect();
        output::print_json(&json!(v));
        return Ok(());
    }
    println!("{:<20} {:<7} {:<7} summary", "codec", "decode", "encode");
    for c in all {
        let yn = |b: bool| if b { "yes" } else { "no" };
        println!(
            "{:<20} {:<7} {:<7} {}",
            c.id(),
            yn(c.can_decode()),
            yn(c.can_encode()),
            c.summary()
        );
    }
    Ok(())
}
