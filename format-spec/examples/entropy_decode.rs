//! Decode throughput of entropy-coded payloads (SPEC.md §6.3), through the reader's own
//! path: `decoded_payload` on every tensor, one thread, best of N passes.
//!
//! usage: entropy_decode FILE.hct [PASSES]   (one JSON line on stdout)
//!
//! Reported: the file's size, how many tensors are entropy-coded, their stored and decoded
//! bytes, and decoded bytes per second over those tensors (plain tensors are zero-copy
//! slices and cost nothing to "decode"; they are not counted).

use hct_format::container::is_entropy_coded;
use hct_format::HctFile;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: entropy_decode FILE.hct [PASSES]");
        std::process::exit(2);
    };
    let passes: usize = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(5);
    let f = HctFile::open(path).unwrap_or_else(|e| {
        eprintln!("entropy_decode: {e}");
        std::process::exit(3);
    });
    let coded: Vec<_> = f.tensors().iter().filter(|t| is_entropy_coded(t)).collect();
    let stored: u64 = coded.iter().map(|t| t.length).sum();
    let mut decoded = 0u64;
    let mut best = f64::INFINITY;
    for _ in 0..passes {
        let start = Instant::now();
        decoded = 0;
        for t in &coded {
            let d = f.decoded_payload(t).unwrap_or_else(|e| {
                eprintln!("entropy_decode: {e}");
                std::process::exit(4);
            });
            decoded += d.len() as u64;
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let gbps = if best > 0.0 && decoded > 0 {
        decoded as f64 / best / 1e9
    } else {
        0.0
    };
    println!(
        "{{\"file\":{:?},\"file_bytes\":{},\"tensors\":{},\"coded_tensors\":{},\"coded_stored_bytes\":{stored},\"coded_decoded_bytes\":{decoded},\"best_seconds\":{best:.6},\"passes\":{passes},\"decode_gb_per_s\":{gbps:.3}}}",
        path,
        f.file_len(),
        f.tensors().len(),
        coded.len()
    );
}
