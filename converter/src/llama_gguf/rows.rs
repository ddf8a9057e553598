//! Reordering the rows of a tensor without decoding it.
//!
//! Every HCT codec stores a matrix row by row, each row a whole number of bytes
//! (`Codec::row_bytes`), so moving rows moves bytes: the reordered tensor is bit for bit what
//! the codec would give for the reordered matrix, whatever the codec.

use anyhow::{bail, Context, Result};
use hct_format::codec;
use std::borrow::Cow;

/// A reordering of the first dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOrder {
    /// Within each of `heads` equal blocks of rows, the two halves are interleaved: output
    /// rows 2i and 2i+1 of a head are its input rows i and i + half. This turns Hugging
    /// Face's rotary layout (element i paired with i + half) into llama.cpp's (i with i + 1).
    RopePairs { heads: u32 },
    /// The inverse of `RopePairs`: llama.cpp's rotary layout back to Hugging Face's.
    RopeHalves { heads: u32 },
}

impl RowOrder {
    pub fn rope_pairs(heads: u32) -> RowOrder {
        RowOrder::RopePairs { heads }
    }

    /// The input row that lands at output row `out` of `rows`.
    fn source_row(self, out: u64, rows: u64) -> u64 {
        match self {
            RowOrder::RopePairs { heads } => {
                let per_head = rows / heads as u64;
                let half = per_head / 2;
                let (head, within) = (out / per_head, out % per_head);
                let (i, j) = (within / 2, within % 2);
                head * per_head + j * half + i
            }
            RowOrder::RopeHalves { heads } => {
                let per_head = rows / heads as u64;
                let half = per_head / 2;
                let (head, within) = (out / per_head, out % per_head);
                let (j, i) = (within / half, within % half);
                head * per_head + 2 * i + j
            }
        }
    }

    /// Whether a tensor of `rows` rows can be reordered so.
    pub fn check(self, rows: u64) -> Result<()> {
        match self {
            RowOrder::RopePairs { heads } | RowOrder::RopeHalves { heads } => {
                if heads == 0 || !rows.is_multiple_of(2 * heads as u64) {
                    bail!(
                        "{rows} rows cannot be split into {heads} heads of an even number of rows"
                    );
                }
            }
        }
        Ok(())
    }
}

/// `data`, a payload of `shape` under `codec_id`, with its rows in `order` (`None`: as is).
/// A matrix's rows are its first dimension; a vector (a bias) counts each element as a row,
/// which only plain element codecs allow. Copies only the tensors that are reordered.
pub fn arrange<'a>(
    data: &'a [u8],
    shape: &[u64],
    codec_id: &str,
    order: Option<RowOrder>,
) -> Result<Cow<'a, [u8]>> {
    let Some(order) = order else {
        return Ok(Cow::Borrowed(data));
    };
    let c = codec::find(codec_id).with_context(|| format!("unknown codec {codec_id}"))?;
    let (rows, row_len) = match shape {
        [n] => (*n, 1),
        [rows, cols] => (*rows, *cols),
        _ => {
            bail!("rows can be reordered in a matrix or a vector, not a tensor of shape {shape:?}")
        }
    };
    let row_bytes = c
        .row_bytes(row_len)
        .with_context(|| format!("codec {codec_id} with rows of {row_len}"))?;
    if rows.checked_mul(row_bytes) != Some(data.len() as u64) {
        bail!(
            "payload is {} bytes, where {rows} rows of {row_bytes} bytes under {codec_id} were expected{}",
            data.len(),
            if shape.len() == 1 { " (a vector reorders element by element)" } else { "" }
        );
    }
    order.check(rows)?;
    let rb = row_bytes as usize;
    let mut out = Vec::with_capacity(data.len());
    for r in 0..rows {
        let s = order.source_row(r, rows) as usize;
        out.extend_from_slice(&data[s * rb..(s + 1) * rb]);
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: reshape (heads, 2, half, cols), swap axes 1 and 2, flatten.
    fn reference(rows: usize, heads: usize) -> Vec<usize> {
        let half = rows / heads / 2;
        let mut out = vec![];
        for h in 0..heads {
            for i in 0..half {
                for j in 0..2 {
                    out.push(h * 2 * half + j * half + i);
                }
            }
        }
        out
    }

    #[test]
    fn rope_pairs_matches_the_axis_swap() {
        for (rows, heads) in [(8, 1), (8, 2), (12, 3), (64, 4)] {
            let data: Vec<u8> = (0..rows as u8).collect();
            let got = arrange(&data, &[rows, 1], "i8", Some(RowOrder::rope_pairs(heads))).unwrap();
            let want: Vec<u8> = reference(rows as usize, heads as usize)
                .into_iter()
                .map(|r| r as u8)
                .collect();
            assert_eq!(&*got, &want[..], "rows {rows}, heads {heads}");
        }
    }

    #[test]
    fn rope_halves_undoes_rope_pairs() {
        for (rows, heads) in [(8u64, 1u32), (12, 3), (64, 4)] {
            let data: Vec<u8> = (0..rows as u8).collect();
            let there =
                arrange(&data, &[rows, 1], "i8", Some(RowOrder::rope_pairs(heads))).unwrap();
            let back = arrange(
                &there,
                &[rows, 1],
                "i8",
                Some(RowOrder::RopeHalves { heads }),
            )
            .unwrap();
            assert_eq!(&*back, &data[..], "rows {rows}, heads {heads}");
        }
    }

    #[test]
    fn whole_rows_move_under_a_block_codec() {
        // Rows of 64 elements are two 32-element groups; each row must move whole.
        let row = codec::find("int4_g32_fp16_v1")
            .unwrap()
            .row_bytes(64)
            .unwrap() as usize;
        let data: Vec<u8> = (0..4 * row).map(|i| (i / row) as u8).collect();
        let got = arrange(
            &data,
            &[4, 64],
            "int4_g32_fp16_v1",
            Some(RowOrder::rope_pairs(1)),
        )
        .unwrap();
        let firsts: Vec<u8> = got.chunks(row).map(|r| r[0]).collect();
        assert_eq!(firsts, [0, 2, 1, 3]);
        assert!(got.chunks(row).all(|r| r.iter().all(|&b| b == r[0])));
    }

    #[test]
    fn refuses_odd_heads_and_short_payloads() {
        let data = [0u8; 6];
        assert!(arrange(&data, &[6, 1], "i8", Some(RowOrder::rope_pairs(2))).is_err());
        assert!(arrange(&data, &[8, 1], "i8", Some(RowOrder::rope_pairs(2))).is_err());
        assert!(arrange(&data, &[2, 3, 1], "i8", Some(RowOrder::rope_pairs(1))).is_err());
    }
}
