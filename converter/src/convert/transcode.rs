//! Decode under one codec and encode under another, in row chunks encoded in parallel and
//! handed on in order: the output never depends on the thread count, and memory stays near
//! a few chunks per worker.

use super::quality::ErrorSums;
use anyhow::{anyhow, Result};
use hct_format::codec::{self, Codec};
use rayon::prelude::*;

/// Elements per encoding chunk: 4 MiB of f32, small enough to keep a few per worker in
/// flight, large enough that per-chunk overhead vanishes.
const CHUNK_ELEMENTS: u64 = 1 << 20;

/// Decode `data` (under `from`) and encode it under `to`, row chunk by row chunk; hand
/// each encoded chunk to `write` in order. Returns the reconstruction error sums.
pub fn encode_chunks(
    from: &dyn Codec,
    to: &dyn Codec,
    shape: &[u64],
    data: &[u8],
    mut write: impl FnMut(&[u8]) -> Result<()>,
) -> Result<ErrorSums> {
    let (rows, row_len) =
        codec::rows_of(shape).ok_or_else(|| anyhow!("element count overflows"))?;
    let mut total = ErrorSums::default();
    if rows == 0 || row_len == 0 {
        return Ok(total);
    }
    let in_row = from.row_bytes(row_len)? as usize;
    let out_row = to.row_bytes(row_len)? as usize;
    let rows_per_chunk = (CHUNK_ELEMENTS / row_len).max(1);
    let chunks: Vec<(u64, u64)> = (0..rows)
        .step_by(rows_per_chunk as usize)
        .map(|r| (r, rows_per_chunk.min(rows - r)))
        .collect();
    let batch = rayon::current_num_threads() * 2;
    for group in chunks.chunks(batch) {
        let encoded: Vec<Result<(Vec<u8>, ErrorSums)>> = group
            .par_iter()
            .map(|&(first, n)| {
                let n = n as usize;
                let src = &data[first as usize * in_row..][..n * in_row];
                let mut x = vec![0f32; n * row_len as usize];
                let mut out = vec![0u8; n * out_row];
                let mut y = vec![0f32; row_len as usize];
                let mut sums = ErrorSums::default();
                for r in 0..n {
                    let xr = &mut x[r * row_len as usize..][..row_len as usize];
                    from.decode_row(&src[r * in_row..][..in_row], xr)?;
                    let or = &mut out[r * out_row..][..out_row];
                    to.encode_row(xr, or)?;
                    if to.can_decode() {
                        to.decode_row(or, &mut y)?;
                        sums.add(&ErrorSums::of(xr, &y));
                    }
                }
                Ok((out, sums))
            })
            .collect();
        for e in encoded {
            let (bytes, sums) = e?;
            write(&bytes)?;
            total.add(&sums);
        }
    }
    Ok(total)
}
