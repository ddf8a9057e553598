//! What a zstd layer over codec payloads would save, measured on real converted models.
//!
//! usage: entropy_gain FILE.hct...   (one JSON line per file and codec on stdout)
//!
//! For every codec in each file, the payloads of its tensors with at least two dimensions
//! (the weight matrices; norms and biases are a rounding error of the size) are compressed
//! one tensor at a time, as a per-tensor entropy stage would: zstd at level 3 (its default)
//! and at level 19 (its strongest standard level; level 9 for codecs with more than 150 MiB
//! of payload, where 19 would take minutes), single-threaded. Reported: bytes before, after,
//! the ratio, compression seconds, and decompression throughput (decompressed bytes per
//! second, best of three passes over all of that codec's frames, one thread).

use hct_format::HctFile;
use std::collections::BTreeMap;
use std::time::Instant;

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: entropy_gain FILE.hct...");
        std::process::exit(2);
    }
    for path in files {
        let f = match HctFile::open(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("entropy_gain: {path}: {e}");
                std::process::exit(3);
            }
        };
        let mut by_codec: BTreeMap<String, Vec<&[u8]>> = BTreeMap::new();
        for t in f.tensors() {
            if t.shape.len() < 2 {
                continue;
            }
            let payload = f.payload(t).unwrap_or_else(|e| {
                eprintln!("entropy_gain: {path}: {e}");
                std::process::exit(4)
            });
            by_codec.entry(t.codec.clone()).or_default().push(payload);
        }
        for (codec, payloads) in by_codec {
            let before: usize = payloads.iter().map(|p| p.len()).sum();
            let strong = if before > 150 << 20 { 9 } else { 19 };
            let mut row = serde_json::json!({
                "file": path, "codec": codec, "tensors": payloads.len(), "bytes": before,
            });
            for level in [3, strong] {
                let t0 = Instant::now();
                let frames: Vec<Vec<u8>> = payloads
                    .iter()
                    .map(|p| zstd::bulk::compress(p, level).expect("zstd compresses any input"))
                    .collect();
                let secs = t0.elapsed().as_secs_f64();
                let after: usize = frames.iter().map(|c| c.len()).sum();
                let mut best = f64::INFINITY;
                for _ in 0..3 {
                    let t0 = Instant::now();
                    for (frame, p) in frames.iter().zip(&payloads) {
                        let out = zstd::bulk::decompress(frame, p.len()).expect("own frame");
                        assert_eq!(out.len(), p.len());
                    }
                    best = best.min(t0.elapsed().as_secs_f64());
                }
                row[format!("zstd{level}")] = serde_json::json!({
                    "bytes": after,
                    "ratio": before as f64 / after as f64,
                    "compress_seconds": secs,
                    "decompress_gb_per_s": before as f64 / best / 1e9,
                });
            }
            println!("{row}");
        }
    }
}
