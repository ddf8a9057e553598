//! HCT's int4 codecs (SPEC.md §7.4): `int4_g8_fp16_v1`, `int4_g16_fp16_v1`,
//! `int4_g32_fp16_v1` and `int4_opt_v1`.
//!
//! Each row is cut into groups of `n` consecutive elements (the last one possibly partial);
//! each group becomes one block of fp16 scale `d`, fp16 minimum `m` and `n/2` nibble bytes,
//! decoded as `q·d + m`. `int4_g32_fp16_v1` blocks are byte for byte ggml `Q4_1` blocks.
//! `int4_opt_v1` is the g16 layout with a least-squares refining encoder.
//!
//! The per-group functions ([`encode_group_minmax`], [`encode_group_opt_v1`],
//! [`decode_block`]) are public so kernels and benchmarks call the reference itself.

mod group;
pub mod sample;

pub use group::{
    block_bytes, decode_block, dequantize, encode_group_minmax, encode_group_opt_v1, quantize,
    squared_error, Int4Error, GROUP_SIZES, OPT_V1_ITERATIONS,
};

use super::{check_len, Codec, CodecError};

/// The block geometry of the int4 layout with groups of `group` elements (SPEC.md §7.4.2):
/// fp16 `d`, fp16 `m`, `group/2` nibble bytes; a row may end in a partial group. The g32
/// block is byte for byte ggml's Q4_1 block (SPEC.md §7.4.8).
pub const fn block_layout(group: usize) -> super::BlockLayout {
    super::BlockLayout {
        elements: group as u32,
        bytes: block_bytes(group) as u32,
        partial_last_block: true,
        same_bytes_as_ggml: if group == 32 { Some("q4_1") } else { None },
    }
}

/// Every int4 codec of this build.
pub fn all() -> Vec<&'static dyn Codec> {
    CODECS.iter().map(|c| c as &'static dyn Codec).collect()
}

/// How a codec chooses each group's `(d, m)` and codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    /// `d = (max - min)/15`, `m = min` (SPEC.md §7.4.5).
    MinMax,
    /// Least-squares refinement of the min/max start (SPEC.md §7.4.6); g16 only.
    OptV1,
}

/// One int4 codec: a group size and an encoder over the shared block layout and decoder.
#[derive(Debug)]
pub struct Int4Codec {
    id: &'static str,
    summary: &'static str,
    group: usize,
    encoder: Encoder,
}

static CODECS: [Int4Codec; 4] = [
    Int4Codec {
        id: "int4_g8_fp16_v1",
        summary: "groups of 8 × 4-bit, fp16 scale and min, q·d+m; min/max encoder (8.0 bpw)",
        group: 8,
        encoder: Encoder::MinMax,
    },
    Int4Codec {
        id: "int4_g16_fp16_v1",
        summary: "groups of 16 × 4-bit, fp16 scale and min, q·d+m; min/max encoder (6.0 bpw)",
        group: 16,
        encoder: Encoder::MinMax,
    },
    Int4Codec {
        id: "int4_g32_fp16_v1",
        summary: "groups of 32 × 4-bit, fp16 scale and min, q·d+m (ggml Q4_1 blocks); min/max encoder (5.0 bpw)",
        group: 32,
        encoder: Encoder::MinMax,
    },
    Int4Codec {
        id: "int4_opt_v1",
        summary: "int4_g16_fp16_v1 layout; least-squares refined scale and min, 3 iterations (6.0 bpw)",
        group: 16,
        encoder: Encoder::OptV1,
    },
];

impl Int4Codec {
    /// Elements per group (8, 16 or 32).
    pub fn group_size(&self) -> usize {
        self.group
    }

    pub fn encoder(&self) -> Encoder {
        self.encoder
    }

    /// Encodes one group of `1..=group_size()` elements into one block.
    pub fn encode_group(&self, x: &[f32], block: &mut [u8]) -> Result<(), Int4Error> {
        match self.encoder {
            Encoder::MinMax => encode_group_minmax(x, block, self.group),
            Encoder::OptV1 => encode_group_opt_v1(x, block),
        }
    }
}

/// The int4 codec with `id`, with its group geometry (for callers that need more than
/// the `Codec` trait).
pub fn find(id: &str) -> Option<&'static Int4Codec> {
    CODECS.iter().find(|c| c.id == id)
}

impl Codec for Int4Codec {
    fn id(&self) -> &'static str {
        self.id
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    /// `ceil(row_len / n)` blocks: a partial last group still takes a whole block.
    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError> {
        row_len
            .div_ceil(self.group as u64)
            .checked_mul(block_bytes(self.group) as u64)
            .ok_or_else(|| CodecError::RowLength {
                codec: self.id,
                row_len,
                reason: "row size overflows u64".into(),
            })
    }

    fn block_layout(&self) -> Option<super::BlockLayout> {
        Some(block_layout(self.group))
    }

    fn has_stored_row_rules(&self, row_len: u64) -> bool {
        row_len % self.group as u64 != 0
    }

    /// SPEC.md §7.4.1: the padding positions `r … n−1` of a partial last group hold code 0.
    fn check_stored_row(&self, row: &[u8], row_len: u64) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(row_len)?, row.len())?;
        let n = self.group;
        let real = (row_len % n as u64) as usize;
        if real == 0 {
            return Ok(());
        }
        let block_start = row.len() - block_bytes(n);
        let half = n / 2;
        for j in real..n {
            let byte = block_start + 4 + j % half;
            let code = if j < half {
                row[byte] & 0x0f
            } else {
                row[byte] >> 4
            };
            if code != 0 {
                return Err(CodecError::NonZeroPaddingCode {
                    codec: self.id,
                    position: row_len - real as u64 + j as u64,
                    byte: byte as u64,
                    code,
                });
            }
        }
        Ok(())
    }

    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(dst.len() as u64)?, src.len())?;
        // One monomorphised loop per group size (HALF = n/2).
        match self.group {
            8 => group::decode_row_blocks::<4>(src, dst),
            16 => group::decode_row_blocks::<8>(src, dst),
            32 => group::decode_row_blocks::<16>(src, dst),
            n => Err(Int4Error::Geometry {
                group: n,
                elements: dst.len(),
                block_bytes: src.len(),
            }),
        }
        .map_err(|e| self.internal(e))
    }

    fn encode_row(&self, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(src.len() as u64)?, dst.len())?;
        let blocks = dst.chunks_exact_mut(block_bytes(self.group));
        for (g, (x, block)) in src.chunks(self.group).zip(blocks).enumerate() {
            self.encode_group(x, block).map_err(|e| {
                let start = g * self.group;
                let what = match e {
                    Int4Error::NonFinite { index, .. } => format!("row element {}", start + index),
                    _ => format!("row elements {}..{}", start, start + x.len()),
                };
                CodecError::OutOfRange {
                    codec: self.id,
                    detail: format!("{what} (group {g}): {e}"),
                }
            })?;
        }
        Ok(())
    }

    fn can_encode(&self) -> bool {
        true
    }
}

impl Int4Codec {
    /// A geometry error inside a row whose length was already checked: a bug here, but
    /// reported as a value, never a panic.
    fn internal(&self, e: Int4Error) -> CodecError {
        CodecError::OutOfRange {
            codec: self.id,
            detail: format!("internal geometry error: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn four_codecs_registered_and_encodable() {
        let ids: Vec<&str> = all().iter().map(|c| c.id()).collect();
        assert_eq!(
            ids,
            [
                "int4_g8_fp16_v1",
                "int4_g16_fp16_v1",
                "int4_g32_fp16_v1",
                "int4_opt_v1"
            ]
        );
        for id in ids {
            let c = codec::find(id).expect("registered");
            assert!(c.can_encode() && c.can_decode(), "{id}");
        }
    }

    #[test]
    fn row_bytes_counts_partial_groups_as_whole_blocks() {
        let g8 = codec::find("int4_g8_fp16_v1").unwrap();
        let g16 = codec::find("int4_g16_fp16_v1").unwrap();
        let g32 = codec::find("int4_g32_fp16_v1").unwrap();
        let opt = codec::find("int4_opt_v1").unwrap();
        for (len, b8, b16, b32) in [
            (0u64, 0u64, 0u64, 0u64),
            (1, 8, 12, 20),
            (8, 8, 12, 20),
            (9, 16, 12, 20),
            (33, 40, 36, 40),
            (100, 104, 84, 80),
            (4096, 4096, 3072, 2560),
        ] {
            assert_eq!(g8.row_bytes(len), Ok(b8), "g8 {len}");
            assert_eq!(g16.row_bytes(len), Ok(b16), "g16 {len}");
            assert_eq!(opt.row_bytes(len), Ok(b16), "opt {len}");
            assert_eq!(g32.row_bytes(len), Ok(b32), "g32 {len}");
        }
        assert!(matches!(
            g8.row_bytes(u64::MAX),
            Err(CodecError::RowLength { reason, .. }) if reason.contains("overflow")
        ));
        // Fewer bytes than elements per block: the largest rows still fit.
        assert_eq!(g32.row_bytes(u64::MAX), Ok((1u64 << 59) * 20));
        assert_eq!(opt.row_bytes(u64::MAX), Ok((1u64 << 60) * 12));
    }

    #[test]
    fn refusal_names_the_row_element() {
        let c = codec::find("int4_g16_fp16_v1").unwrap();
        let mut x = vec![0.5f32; 40];
        x[37] = f32::INFINITY;
        let mut out = vec![0u8; 36];
        let err = c.encode_row(&x, &mut out).unwrap_err();
        assert!(
            matches!(&err, CodecError::OutOfRange { codec, detail }
                if *codec == "int4_g16_fp16_v1" && detail.contains("row element 37 (group 2)")),
            "{err}"
        );
        x[37] = 0.0;
        x[3] = 2e6;
        let err = c.encode_row(&x, &mut out).unwrap_err();
        assert!(
            err.to_string().contains("row elements 0..16 (group 0)"),
            "{err}"
        );
        assert!(err.to_string().contains("scale"), "{err}");
    }

    #[test]
    fn wrong_buffer_sizes_are_errors() {
        for c in all() {
            let mut bytes = vec![0u8; 100];
            assert!(matches!(
                c.encode_row(&[1.0; 20], &mut bytes),
                Err(CodecError::BufferSize { .. })
            ));
            let mut out = vec![0f32; 20];
            assert!(matches!(
                c.decode_row(&bytes, &mut out),
                Err(CodecError::BufferSize { .. })
            ));
        }
    }
}
