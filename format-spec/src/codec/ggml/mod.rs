//! ggml-native codecs (`ggml_q4_0`, `ggml_q4_k`, …): ggml's block layouts carried byte for
//! byte, with scalar reference dequantization following ggml's (SPEC.md §7.3).
//!
//! Every live ggml type except the three float types (which are HCT's own `f32`, `f16`,
//! `bf16` codecs) has exactly one codec here, so any GGUF tensor can pass through HCT
//! unchanged. Where this build has a decoder, it reproduces ggml's reference
//! `dequantize_row_*` bit for bit: the same f32 operations in the same order, never fused.
//! The few encoders reproduce ggml's `quantize_row_*_ref` bit for bit.
//!
//! One file per family: `legacy` (one scale per 32-, 64- or 128-element block),
//! `kquants` (256-element super-blocks with packed sub-block scales), `iquants`
//! (non-uniform codebooks), `ternary` and `fp4` (microscaled 4-bit floats). ggml's plain element types (I8…I64,
//! F64) are HCT's shared element codecs (`i8`, …, `f64`), not ggml codecs.

mod fp4;
mod iquants;
mod kquants;
mod legacy;
mod ternary;

pub use iquants::IQ4_CODEBOOK;
pub use legacy::quantize_block_q8_0;

use super::{check_len, Codec, CodecError};
use crate::ggml_type::{GgmlType, GGML_TYPES};

/// Every ggml-native codec of this build, in ggml type-id order.
pub fn all() -> Vec<&'static dyn Codec> {
    CODECS.iter().map(|c| c as &'static dyn Codec).collect()
}

/// Decodes one block: `block.len() == type_size`, `out.len() == block_size`.
type BlockDecoder = fn(block: &[u8], out: &mut [f32]);

/// Encodes one block: `src.len() == block_size`, `block.len() == type_size`.
type BlockEncoder = fn(src: &[f32], block: &mut [u8]);

/// A ggml type carried as an HCT codec.
pub struct GgmlCodec {
    ty: GgmlType,
    id: &'static str,
    summary: &'static str,
    decode_block: Option<BlockDecoder>,
    encode_block: Option<BlockEncoder>,
}

/// The codec table. Ids are spelled out (they are frozen strings, SPEC.md §7.1); a test
/// checks each equals `GgmlType::hct_codec_id()` of its type.
static CODECS: [GgmlCodec; 27] = [
    codec(
        2,
        "ggml_q4_0",
        "ggml Q4_0: 32 × 4-bit, fp16 scale, (q-8)·d",
        Some(legacy::decode_q4_0),
        Some(legacy::encode_q4_0),
    ),
    codec(
        3,
        "ggml_q4_1",
        "ggml Q4_1: 32 × 4-bit, fp16 scale and min, q·d+m",
        Some(legacy::decode_q4_1),
        Some(legacy::encode_q4_1),
    ),
    codec(
        6,
        "ggml_q5_0",
        "ggml Q5_0: 32 × 5-bit, fp16 scale, (q-16)·d",
        Some(legacy::decode_q5_0),
        None,
    ),
    codec(
        7,
        "ggml_q5_1",
        "ggml Q5_1: 32 × 5-bit, fp16 scale and min, q·d+m",
        Some(legacy::decode_q5_1),
        None,
    ),
    codec(
        8,
        "ggml_q8_0",
        "ggml Q8_0: 32 × int8, fp16 scale, q·d",
        Some(legacy::decode_q8_0),
        Some(legacy::encode_q8_0),
    ),
    // ggml itself has no dequantizer for Q8_1 (it is a dot-product operand, never a
    // weight), so there is no reference to be bit-exact with: passthrough only.
    codec(
        9,
        "ggml_q8_1",
        "ggml Q8_1: 32 × int8, fp16 scale and fp16 d·Σq (passthrough only)",
        None,
        None,
    ),
    codec(
        10,
        "ggml_q2_k",
        "ggml Q2_K: 256 × 2-bit, 4-bit sub-block scales and mins",
        Some(kquants::decode_q2_k),
        None,
    ),
    codec(
        11,
        "ggml_q3_k",
        "ggml Q3_K: 256 × 3-bit, 6-bit signed sub-block scales",
        Some(kquants::decode_q3_k),
        None,
    ),
    codec(
        12,
        "ggml_q4_k",
        "ggml Q4_K: 256 × 4-bit, 6-bit sub-block scales and mins",
        Some(kquants::decode_q4_k),
        None,
    ),
    codec(
        13,
        "ggml_q5_k",
        "ggml Q5_K: 256 × 5-bit, 6-bit sub-block scales and mins",
        Some(kquants::decode_q5_k),
        None,
    ),
    codec(
        14,
        "ggml_q6_k",
        "ggml Q6_K: 256 × 6-bit, int8 sub-block scales",
        Some(kquants::decode_q6_k),
        None,
    ),
    codec(
        15,
        "ggml_q8_k",
        "ggml Q8_K: 256 × int8, f32 scale, 16 partial sums",
        Some(kquants::decode_q8_k),
        None,
    ),
    codec(
        16,
        "ggml_iq2_xxs",
        "ggml IQ2_XXS: 256 weights on an 8-D lattice codebook, 2.06 bpw (passthrough only)",
        None,
        None,
    ),
    codec(
        17,
        "ggml_iq2_xs",
        "ggml IQ2_XS: 256 weights on an 8-D lattice codebook, 2.31 bpw (passthrough only)",
        None,
        None,
    ),
    codec(
        18,
        "ggml_iq3_xxs",
        "ggml IQ3_XXS: 256 weights on a 4-D lattice codebook, 3.06 bpw (passthrough only)",
        None,
        None,
    ),
    codec(
        19,
        "ggml_iq1_s",
        "ggml IQ1_S: 256 weights on a ternary 8-D codebook, 1.56 bpw (passthrough only)",
        None,
        None,
    ),
    codec(
        20,
        "ggml_iq4_nl",
        "ggml IQ4_NL: 32 × 4-bit indices into a fixed non-uniform grid, fp16 scale",
        Some(iquants::decode_iq4_nl),
        None,
    ),
    codec(
        21,
        "ggml_iq3_s",
        "ggml IQ3_S: 256 weights on a 4-D lattice codebook, 3.44 bpw (passthrough only)",
        None,
        None,
    ),
    codec(
        22,
        "ggml_iq2_s",
        "ggml IQ2_S: 256 weights on an 8-D lattice codebook, 2.5 bpw (passthrough only)",
        None,
        None,
    ),
    codec(
        23,
        "ggml_iq4_xs",
        "ggml IQ4_XS: 256 × 4-bit non-uniform grid indices, 6-bit sub-block scales",
        Some(iquants::decode_iq4_xs),
        None,
    ),
    codec(
        29,
        "ggml_iq1_m",
        "ggml IQ1_M: 256 weights on a ternary 8-D codebook, 1.75 bpw (passthrough only)",
        None,
        None,
    ),
    codec(
        34,
        "ggml_tq1_0",
        "ggml TQ1_0: 256 ternary weights packed 5 per byte in base 3, fp16 scale",
        Some(ternary::decode_tq1_0),
        None,
    ),
    codec(
        35,
        "ggml_tq2_0",
        "ggml TQ2_0: 256 ternary weights in 2-bit fields, fp16 scale",
        Some(ternary::decode_tq2_0),
        None,
    ),
    codec(
        39,
        "ggml_mxfp4",
        "ggml MXFP4: 32 × FP4 E2M1, one E8M0 power-of-two scale",
        Some(fp4::decode_mxfp4),
        None,
    ),
    codec(
        40,
        "ggml_nvfp4",
        "ggml NVFP4: 64 × FP4 E2M1, one unsigned E4M3 scale per 16",
        Some(fp4::decode_nvfp4),
        None,
    ),
    codec(
        41,
        "ggml_q1_0",
        "ggml Q1_0: 128 × sign bit, fp16 scale, ±d",
        Some(legacy::decode_q1_0),
        None,
    ),
    codec(
        42,
        "ggml_q2_0",
        "ggml Q2_0: 64 × 2-bit, fp16 scale, (q-1)·d",
        Some(legacy::decode_q2_0),
        None,
    ),
];

impl Codec for GgmlCodec {
    fn id(&self) -> &'static str {
        self.id
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError> {
        self.ty
            .row_bytes(row_len)
            .ok_or_else(|| CodecError::RowLength {
                codec: self.id,
                row_len,
                reason: if row_len % self.ty.block_size as u64 != 0 {
                    format!(
                        "not a whole number of {}-element blocks",
                        self.ty.block_size
                    )
                } else {
                    "row size overflows u64".into()
                },
            })
    }

    fn block_layout(&self) -> Option<super::BlockLayout> {
        Some(block_layout(self.ty))
    }

    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
        let decode_block = self.decode_block.ok_or(CodecError::Unsupported {
            codec: self.id,
            operation: "decoding",
        })?;
        check_len(self.id, self.row_bytes(dst.len() as u64)?, src.len())?;
        let blocks = src.chunks_exact(self.ty.type_size as usize);
        let outs = dst.chunks_exact_mut(self.ty.block_size as usize);
        for (block, out) in blocks.zip(outs) {
            decode_block(block, out);
        }
        Ok(())
    }

    fn encode_row(&self, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
        let encode_block = self.encode_block.ok_or(CodecError::Unsupported {
            codec: self.id,
            operation: "encoding",
        })?;
        check_len(self.id, self.row_bytes(src.len() as u64)?, dst.len())?;
        let groups = src.chunks_exact(self.ty.block_size as usize);
        let blocks = dst.chunks_exact_mut(self.ty.type_size as usize);
        for (group, block) in groups.zip(blocks) {
            encode_block(group, block);
        }
        Ok(())
    }

    fn can_encode(&self) -> bool {
        self.encode_block.is_some()
    }

    fn can_decode(&self) -> bool {
        self.decode_block.is_some()
    }
}

const fn codec(
    ggml_id: u32,
    id: &'static str,
    summary: &'static str,
    decode_block: Option<BlockDecoder>,
    encode_block: Option<BlockEncoder>,
) -> GgmlCodec {
    GgmlCodec {
        ty: live_type(ggml_id),
        id,
        summary,
        decode_block,
        encode_block,
    }
}

/// The block geometry of ggml type `ty`: whole blocks only, its own bytes.
pub const fn block_layout(ty: GgmlType) -> super::BlockLayout {
    super::BlockLayout {
        elements: ty.block_size,
        bytes: ty.type_size,
        partial_last_block: false,
        same_bytes_as_ggml: Some(ty.name),
    }
}

/// The live type with `id`; an id missing from the table fails the build.
pub const fn live_type(id: u32) -> GgmlType {
    let mut i = 0;
    while i < GGML_TYPES.len() {
        if GGML_TYPES[i].id == id {
            return GGML_TYPES[i];
        }
        i += 1;
    }
    panic!("ggml codec table names a type id that is not live")
}

/// ggml's `ggml_half`: an IEEE binary16, little-endian, at `at`. Widening to f32 is exact.
fn f16_at(bytes: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// f32 → ggml_half, rounding to nearest, ties to even, as `GGML_FP32_TO_FP16` does.
fn f16_bytes(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::find;

    #[test]
    fn one_codec_per_live_block_type_with_its_id() {
        let expected: Vec<GgmlType> = GGML_TYPES
            .iter()
            .copied()
            .filter(|t| t.plain_element_codec().is_none())
            .collect();
        let got: Vec<GgmlType> = CODECS.iter().map(|c| c.ty).collect();
        assert_eq!(got, expected);
        for c in &CODECS {
            assert_eq!(c.id, c.ty.hct_codec_id(), "{}", c.ty.name);
            assert_eq!(find(c.id).map(|f| f.id()), Some(c.id));
        }
        assert_eq!(all().len(), expected.len());
        for f in ["f32", "f16", "bf16", "i8", "i16", "i32", "i64", "f64"] {
            assert!(all().iter().all(|c| c.id() != format!("ggml_{f}")));
            assert!(find(f).is_some(), "element codec {f} is registered");
        }
    }

    #[test]
    fn row_bytes_refuses_partial_blocks() {
        for c in &CODECS {
            let bs = c.ty.block_size as u64;
            assert_eq!(c.row_bytes(0), Ok(0));
            assert_eq!(c.row_bytes(3 * bs), Ok(3 * c.ty.type_size as u64));
            if bs > 1 {
                let err = c.row_bytes(bs + 1).unwrap_err();
                assert!(
                    matches!(err, CodecError::RowLength { codec, row_len, .. }
                        if codec == c.id && row_len == bs + 1),
                    "{err}"
                );
                assert!(err.to_string().contains("whole number"), "{err}");
            }
            let huge = u64::MAX - u64::MAX % bs;
            match (huge / bs).checked_mul(c.ty.type_size as u64) {
                Some(bytes) => assert_eq!(c.row_bytes(huge), Ok(bytes)),
                None => assert!(matches!(
                    c.row_bytes(huge),
                    Err(CodecError::RowLength { reason, .. }) if reason.contains("overflow")
                )),
            }
        }
    }

    #[test]
    fn wrong_sized_buffers_are_errors_not_panics() {
        for c in &CODECS {
            let bs = c.ty.block_size as usize;
            let ts = c.ty.type_size as usize;
            let mut out = vec![0f32; 2 * bs];
            for len in [0, ts, 2 * ts - 1, 2 * ts + 1, 3 * ts] {
                let err = c.decode_row(&vec![0u8; len], &mut out).unwrap_err();
                if c.can_decode() {
                    assert!(matches!(err, CodecError::BufferSize { .. }), "{err}");
                } else {
                    assert!(matches!(err, CodecError::Unsupported { .. }), "{err}");
                }
            }
            if bs > 1 && c.can_decode() {
                let mut partial = vec![0f32; bs + 1];
                let err = c.decode_row(&vec![0u8; 2 * ts], &mut partial).unwrap_err();
                assert!(matches!(err, CodecError::RowLength { .. }), "{err}");
            }
            if c.can_encode() {
                let src = vec![0f32; 2 * bs];
                let err = c.encode_row(&src, &mut vec![0u8; 2 * ts + 1]).unwrap_err();
                assert!(matches!(err, CodecError::BufferSize { .. }), "{err}");
            }
        }
    }

    #[test]
    fn types_without_a_decoder_say_so_by_name_and_still_pass_through() {
        let c = find("ggml_q8_1").unwrap();
        assert!(!c.can_decode());
        let err = c.decode_row(&[0u8; 72], &mut [0f32; 64]).unwrap_err();
        assert_eq!(
            err,
            CodecError::Unsupported {
                codec: "ggml_q8_1",
                operation: "decoding"
            }
        );
        assert!(err.to_string().contains("ggml_q8_1"), "{err}");
        assert_eq!(c.row_bytes(64), Ok(72));
    }

    #[test]
    fn decoders_and_encoders_of_this_build() {
        let decodable: Vec<&str> = CODECS
            .iter()
            .filter(|c| c.can_decode())
            .map(|c| c.ty.name)
            .collect();
        for name in [
            "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K",
            "iq4_nl", "iq4_xs", "tq1_0", "tq2_0",
        ] {
            assert!(decodable.contains(&name), "{name} must decode");
        }
        let encodable: Vec<&str> = CODECS
            .iter()
            .filter(|c| c.can_encode())
            .map(|c| c.ty.name)
            .collect();
        assert_eq!(encodable, ["q4_0", "q4_1", "q8_0"]);
    }
}
