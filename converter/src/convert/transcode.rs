//! Decode under one codec and encode under another, a row chunk at a time: chunks are
//! independent, so they can be encoded in parallel and handed on in order, and the output
//! never depends on the thread count.

use super::quality::ErrorSums;
use anyhow::{anyhow, bail, Result};
use hct_format::codec::{self, Codec};
use rayon::prelude::*;

/// Elements per encoding chunk: 4 MiB of f32, small enough to keep a few per worker in
/// flight, large enough that per-chunk overhead vanishes. Quality sums are added per chunk,
/// so this also fixes their summation order.
const CHUNK_ELEMENTS: u64 = 1 << 20;

/// One tensor's re-encoding: its geometry, and the chunks it splits into.
pub struct Transcode<'a> {
    from: &'a dyn Codec,
    to: &'a dyn Codec,
    data: &'a [u8],
    rows: u64,
    row_len: usize,
    in_row: usize,
    out_row: usize,
    rows_per_chunk: u64,
    /// Column importance (`--imatrix`), for encoders that weight their error by it.
    importance: Option<&'a [f32]>,
}

/// One encoded chunk and, when measured, its reconstruction error sums.
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub sums: ErrorSums,
}

impl<'a> Transcode<'a> {
    /// `data` is a payload under `from` for `shape`; it must be exactly that long.
    pub fn new(
        from: &'a dyn Codec,
        to: &'a dyn Codec,
        shape: &[u64],
        data: &'a [u8],
    ) -> Result<Transcode<'a>> {
        let (rows, row_len) =
            codec::rows_of(shape).ok_or_else(|| anyhow!("element count overflows"))?;
        let row_len_usize =
            usize::try_from(row_len).map_err(|_| anyhow!("row too long for this machine"))?;
        let in_row = usize::try_from(from.row_bytes(row_len)?)?;
        let out_row = usize::try_from(to.row_bytes(row_len)?)?;
        let expected = rows.checked_mul(in_row as u64);
        if expected != Some(data.len() as u64) {
            bail!(
                "payload is {} bytes, but {} with shape {shape:?} needs {}",
                data.len(),
                from.id(),
                expected.map_or("more than u64 can count".into(), |n| n.to_string())
            );
        }
        Ok(Transcode {
            from,
            to,
            data,
            rows: if row_len == 0 { 0 } else { rows },
            row_len: row_len_usize,
            in_row,
            out_row,
            rows_per_chunk: (CHUNK_ELEMENTS / row_len.max(1)).max(1),
            importance: None,
        })
    }

    /// Weight each column's error by `c` (one value per row element) in encoders that take
    /// importance; others ignore it.
    pub fn with_importance(mut self, c: Option<&'a [f32]>) -> Self {
        self.importance = c;
        self
    }

    /// `(first_row, rows)` of every chunk, in order.
    pub fn chunks(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        (0..self.rows)
            .step_by(self.rows_per_chunk as usize)
            .map(|r| (r, self.rows_per_chunk.min(self.rows - r)))
    }

    /// The source bytes of rows `[first, first + n)`.
    pub fn input(&self, first: u64, n: u64) -> &'a [u8] {
        &self.data[first as usize * self.in_row..][..n as usize * self.in_row]
    }

    /// Encode rows `[first, first + n)`. With `measure`, also decode each encoded row back
    /// (when the target codec can) and sum its error against the source row.
    pub fn encode_chunk(&self, first: u64, n: u64, measure: bool) -> Result<Encoded> {
        let n = n as usize;
        let src = &self.data[first as usize * self.in_row..][..n * self.in_row];
        let mut bytes = vec![0u8; n * self.out_row];
        let mut x = vec![0f32; self.row_len];
        let mut y = vec![0f32; if measure { self.row_len } else { 0 }];
        let measure = measure && self.to.can_decode();
        let mut sums = ErrorSums::default();
        let f32_rows = borrow_f32_rows(self.from, src);
        for (r, out) in bytes.chunks_exact_mut(self.out_row).enumerate() {
            let xr: &[f32] = match f32_rows {
                Some(all) => &all[r * self.row_len..][..self.row_len],
                None => {
                    self.from
                        .decode_row(&src[r * self.in_row..][..self.in_row], &mut x)?;
                    &x
                }
            };
            encode_weighted(self.to, xr, self.importance, out)?;
            if measure {
                self.to.decode_row(out, &mut y)?;
                sums.add(&ErrorSums::of(xr, &y));
            }
        }
        Ok(Encoded { bytes, sums })
    }
}

/// Decode `data` (under `from`) and encode it under `to`, chunks in parallel; hand each
/// encoded chunk to `write` in order, and `data` itself, piece by piece in order as it is
/// consumed, to `read` (which hashes it for the source's checksum). For exports, which do
/// not report quality.
pub fn encode_chunks(
    from: &dyn Codec,
    to: &dyn Codec,
    shape: &[u64],
    data: &[u8],
    mut read: impl FnMut(&[u8]),
    mut write: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let tc = Transcode::new(from, to, shape, data)?;
    let chunks: Vec<(u64, u64)> = tc.chunks().collect();
    let batch = rayon::current_num_threads() * 2;
    for group in chunks.chunks(batch) {
        let encoded: Vec<Result<Encoded>> = group
            .par_iter()
            .map(|&(first, n)| tc.encode_chunk(first, n, false))
            .collect();
        for (e, &(first, n)) in encoded.into_iter().zip(group) {
            read(tc.input(first, n));
            write(&e?.bytes)?;
        }
    }
    Ok(())
}

/// Whether `to`'s encoder takes column importance.
pub fn takes_importance(to: &dyn Codec) -> bool {
    codec::searched::find_searched(to.id()).is_some()
        || codec::searched_super::find_searched_super(to.id()).is_some()
        || codec::shifted::find_shifted(to.id()).is_some()
}

/// Encode one row, weighting by column importance in the encoders that take it.
pub fn encode_weighted(
    to: &dyn Codec,
    x: &[f32],
    importance: Option<&[f32]>,
    bytes: &mut [u8],
) -> Result<(), codec::CodecError> {
    if let Some(c) = codec::searched::find_searched(to.id()) {
        return c.encode_row_weighted(x, importance, bytes);
    }
    if let Some(c) = codec::shifted::find_shifted(to.id()) {
        return c.encode_row_weighted(x, importance, bytes);
    }
    if let Some(c) = codec::searched_super::find_searched_super(to.id()) {
        return c.encode_row_weighted(x, importance, bytes);
    }
    to.encode_row(x, bytes)
}

/// An f32 payload already is the rows' values on a little-endian machine: borrow it from
/// the input mapping instead of decoding a copy, when it is 4-byte aligned (GGUF aligns
/// tensor data to 32 bytes; safetensors offsets are usually multiples of 4 but need not be).
fn borrow_f32_rows<'d>(from: &dyn Codec, src: &'d [u8]) -> Option<&'d [f32]> {
    if from.id() != "f32" || cfg!(target_endian = "big") {
        return None;
    }
    // SAFETY: every bit pattern is a valid f32, and `align_to` hands out only the part of
    // the slice that is correctly aligned for it.
    let (head, values, tail) = unsafe { src.align_to::<f32>() };
    (head.is_empty() && tail.is_empty()).then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_payload(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| ((i % 251) as f32 / 125.0 - 1.0).to_le_bytes())
            .collect()
    }

    #[test]
    fn borrowed_and_decoded_f32_rows_encode_alike() {
        let f32c = codec::find("f32").unwrap();
        let to = codec::find("int4_g32_fp16_v1").unwrap();
        let shape = [3u64, 96];
        let payload = f32_payload(3 * 96);
        // The same bytes one byte into a buffer: misaligned, so decoded, not borrowed.
        let mut shifted = vec![0u8; payload.len() + 4];
        let misaligned = if shifted.as_ptr() as usize % 4 == 0 {
            &mut shifted[1..][..payload.len()]
        } else {
            &mut shifted[..payload.len()]
        };
        misaligned.copy_from_slice(&payload);
        let misaligned = &*misaligned;
        assert!(borrow_f32_rows(f32c, misaligned).is_none());
        assert!(borrow_f32_rows(f32c, &payload).is_some());
        let a = Transcode::new(f32c, to, &shape, &payload).unwrap();
        let b = Transcode::new(f32c, to, &shape, misaligned).unwrap();
        let (ea, eb) = (
            a.encode_chunk(0, 3, true).unwrap(),
            b.encode_chunk(0, 3, true).unwrap(),
        );
        assert_eq!(ea.bytes, eb.bytes);
        assert_eq!(ea.sums.n, 3 * 96);
        assert_eq!(ea.sums.dd.to_bits(), eb.sums.dd.to_bits());
    }

    #[test]
    fn payload_of_the_wrong_length_is_an_error() {
        let f32c = codec::find("f32").unwrap();
        let to = codec::find("f16").unwrap();
        let err = Transcode::new(f32c, to, &[4, 4], &[0u8; 60]).err().unwrap();
        assert!(err.to_string().contains("needs 64"), "{err}");
        assert!(Transcode::new(f32c, to, &[4, 4], &[0u8; 64]).is_ok());
    }

    #[test]
    fn chunks_cover_every_row_once() {
        let f32c = codec::find("f32").unwrap();
        let rows = 2 * (CHUNK_ELEMENTS / 64) + 3;
        let payload = vec![0u8; (rows * 64 * 4) as usize];
        let tc = Transcode::new(f32c, f32c, &[rows, 64], &payload).unwrap();
        let chunks: Vec<_> = tc.chunks().collect();
        assert_eq!(chunks.len(), 3);
        let mut next = 0;
        for (first, n) in chunks {
            assert_eq!(first, next);
            next += n;
        }
        assert_eq!(next, rows);
        let empty = Transcode::new(f32c, f32c, &[5, 0], &[]).unwrap();
        assert_eq!(empty.chunks().count(), 0);
    }
}
