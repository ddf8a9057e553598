//! Logging and human-readable formatting shared by the subcommands.

use tracing_subscriber::EnvFilter;

/// Logs go to stderr through `tracing`; `RUST_LOG` wins over `-v`.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `1.5 GiB`, `312 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `[576, 1536]`
pub fn shape(s: &[u64]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    );
}

/// A JSON array written element by element from an iterator, so that a listing of a
/// million metadata entries never exists as one in-memory tree (serde_json's `Value` costs
/// about a hundred times the bytes the entry takes in the file).
pub struct StreamedArray<I>(std::cell::Cell<Option<I>>);

impl<I> StreamedArray<I> {
    pub fn new(items: I) -> Self {
        StreamedArray(std::cell::Cell::new(Some(items)))
    }
}

impl<I: Iterator<Item = T>, T: serde::Serialize> serde::Serialize for StreamedArray<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let items = self
            .0
            .take()
            .ok_or_else(|| S::Error::custom("a streamed array is written once"))?;
        let mut seq = s.serialize_seq(None)?;
        for v in items {
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

/// A JSON document whose small fields are `head` and whose two long lists are streamed.
#[derive(serde::Serialize)]
pub struct Listing<M, T> {
    #[serde(flatten)]
    pub head: serde_json::Map<String, serde_json::Value>,
    pub metadata: M,
    pub tensors: T,
}

/// Pretty-print `doc` to stdout without building it in memory first.
pub fn print_json_streamed(doc: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, doc)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// One metadata entry of `inspect --json`.
#[derive(serde::Serialize)]
pub struct MetaEntry<'a> {
    pub key: &'a str,
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub value: hct_format::value::JsonView<'a>,
}

impl<'a> MetaEntry<'a> {
    pub fn new(key: &'a str, value: &'a hct_format::Value, max_items: usize) -> Self {
        MetaEntry {
            key,
            ty: value.value_type().name(),
            value: hct_format::value::JsonView { value, max_items },
        }
    }
}
