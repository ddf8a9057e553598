//! `hct profiles`: the device profiles `hct convert --profile NAME` accepts.

use crate::{output, profiles};
use anyhow::Result;
use serde_json::json;

/// List the device profiles: a memory budget for a model's weights plus its KV cache at a
/// stated context length. `hct convert IN OUT.hct --profile NAME` subtracts the model's KV
/// cache (layers × context × KV heads × (key + value head dims) × bytes per element) and
/// picks each weight matrix's codec to fit the rest, or fails naming the shortfall.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let all = profiles::all()?;
    if a.json {
        output::print_json(&json!(all));
        return Ok(());
    }
    println!(
        "{:<16} {:>14} {:>9} {:<5} description",
        "profile", "memory bytes", "context", "KV"
    );
    for p in all {
        println!(
            "{:<16} {:>14} {:>9} {:<5} {}",
            p.name, p.memory_bytes, p.context_tokens, p.kv_cache_type, p.description
        );
    }
    Ok(())
}
