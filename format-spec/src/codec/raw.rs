//! Plain element codecs (SPEC.md §7.2): `f32`, `f16`, `bf16`, which encode from f32 by
//! round-to-nearest-even, and the carry-through element types of safetensors and GGUF
//! (`f64`, integers, `bool`, 8-bit floats), stored as they are and decodable to f32 but
//! not produced from f32: quantizing a weight to int32 is not a codec anyone asked for.

use super::{check_len, Codec, CodecError};
use half::{bf16, f16, slice::HalfFloatSliceExt};

/// One plain element type. Conversions are per row, so the per-element work is a tight,
/// inlined loop behind one indirect call per row.
pub struct Raw {
    id: &'static str,
    bytes: usize,
    summary: &'static str,
    decode: RowDecoder,
    /// `None` for the carried-through types.
    encode: Option<RowEncoder>,
}

type RowDecoder = fn(&[u8], &mut [f32]);
type RowEncoder = fn(&[f32], &mut [u8]);

/// Registry order: the three float codecs, then the carried-through types.
pub static CODECS: [Raw; 16] = [
    Raw {
        id: "f32",
        bytes: 4,
        summary: "IEEE binary32, little-endian, stored unchanged",
        decode: |src, dst| decode_each(src, dst, f32::from_le_bytes),
        encode: Some(|src, dst| encode_each(src, dst, f32::to_le_bytes)),
    },
    Raw {
        id: "f16",
        bytes: 2,
        summary: "IEEE binary16, little-endian; from f32 by round-to-nearest-even",
        decode: decode_f16,
        encode: Some(|src, dst| encode_each(src, dst, |x| f16::from_f32(x).to_le_bytes())),
    },
    Raw {
        id: "bf16",
        bytes: 2,
        summary: "bfloat16, little-endian; from f32 by round-to-nearest-even",
        decode: |src, dst| decode_each(src, dst, |b| bf16::from_le_bytes(b).to_f32()),
        encode: Some(|src, dst| encode_each(src, dst, |x| bf16::from_f32(x).to_le_bytes())),
    },
    Raw {
        id: "f64",
        bytes: 8,
        summary: "IEEE binary64, little-endian, carried through",
        decode: |src, dst| decode_each(src, dst, |b| f64::from_le_bytes(b) as f32),
        encode: None,
    },
    Raw {
        id: "i8",
        bytes: 1,
        summary: "signed 8-bit integer, carried through",
        decode: |src, dst| decode_each(src, dst, |b| i8::from_le_bytes(b) as f32),
        encode: None,
    },
    Raw {
        id: "u8",
        bytes: 1,
        summary: "unsigned 8-bit integer, carried through",
        decode: |src, dst| decode_each(src, dst, |b| u8::from_le_bytes(b) as f32),
        encode: None,
    },
    Raw {
        id: "i16",
        bytes: 2,
        summary: "signed 16-bit integer, LE, carried through",
        decode: |src, dst| decode_each(src, dst, |b| i16::from_le_bytes(b) as f32),
        encode: None,
    },
    Raw {
        id: "u16",
        bytes: 2,
        summary: "unsigned 16-bit integer, LE, carried through",
        decode: |src, dst| decode_each(src, dst, |b| u16::from_le_bytes(b) as f32),
        encode: None,
    },
    Raw {
        id: "i32",
        bytes: 4,
        summary: "signed 32-bit integer, LE, carried through",
        decode: |src, dst| decode_each(src, dst, |b| i32::from_le_bytes(b) as f32),
        encode: None,
    },
    Raw {
        id: "u32",
        bytes: 4,
        summary: "unsigned 32-bit integer, LE, carried through",
        decode: |src, dst| decode_each(src, dst, |b| u32::from_le_bytes(b) as f32),
        encode: None,
    },
    Raw {
        id: "i64",
        bytes: 8,
        summary: "signed 64-bit integer, LE, carried through",
        decode: |src, dst| decode_each(src, dst, |b| i64::from_le_bytes(b) as f32),
        encode: None,
    },
    Raw {
        id: "u64",
        bytes: 8,
        summary: "unsigned 64-bit integer, LE, carried through",
        decode: |src, dst| decode_each(src, dst, |b| u64::from_le_bytes(b) as f32),
        encode: None,
    },
    Raw {
        id: "bool",
        bytes: 1,
        summary: "boolean byte (0 false, else true), carried through",
        decode: |src, dst| decode_each(src, dst, |[b]: [u8; 1]| (b != 0) as u8 as f32),
        encode: None,
    },
    Raw {
        id: "f8_e4m3",
        bytes: 1,
        summary: "OCP FP8 E4M3 (finite, S.1111.111 is NaN), carried through",
        decode: |src, dst| decode_each(src, dst, |[b]| f8_e4m3_to_f32(b)),
        encode: None,
    },
    Raw {
        id: "f8_e5m2",
        bytes: 1,
        summary: "OCP FP8 E5M2 (IEEE-style inf/NaN), carried through",
        decode: |src, dst| decode_each(src, dst, |[b]| f8_e5m2_to_f32(b)),
        encode: None,
    },
    Raw {
        id: "f8_e8m0",
        bytes: 1,
        summary: "OCP E8M0 scale (2^(e-127), 0xff is NaN), carried through",
        decode: |src, dst| decode_each(src, dst, |[b]| f8_e8m0_to_f32(b)),
        encode: None,
    },
];

impl Codec for Raw {
    fn id(&self) -> &'static str {
        self.id
    }
    fn summary(&self) -> &'static str {
        self.summary
    }
    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError> {
        row_len
            .checked_mul(self.bytes as u64)
            .ok_or_else(|| CodecError::RowLength {
                codec: self.id,
                row_len,
                reason: "row size overflows u64".into(),
            })
    }
    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(dst.len() as u64)?, src.len())?;
        (self.decode)(src, dst);
        Ok(())
    }
    fn encode_row(&self, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
        let encode = self.encode.ok_or(CodecError::Unsupported {
            codec: self.id,
            operation: "encoding",
        })?;
        check_len(self.id, self.row_bytes(src.len() as u64)?, dst.len())?;
        encode(src, dst);
        Ok(())
    }
    fn can_encode(&self) -> bool {
        self.encode.is_some()
    }
}

/// `dst[i] = to_f32(element i)`, the element as its `B` little-endian bytes. Generic so each
/// type's conversion inlines into its own loop. Lengths are checked by the caller.
#[inline(always)]
fn decode_each<const B: usize>(src: &[u8], dst: &mut [f32], to_f32: impl Fn([u8; B]) -> f32) {
    for (y, bytes) in dst.iter_mut().zip(src.as_chunks::<B>().0) {
        *y = to_f32(*bytes);
    }
}

#[inline(always)]
fn encode_each<const B: usize>(src: &[f32], dst: &mut [u8], from_f32: impl Fn(f32) -> [u8; B]) {
    for (bytes, &x) in dst.as_chunks_mut::<B>().0.iter_mut().zip(src) {
        *bytes = from_f32(x);
    }
}

/// binary16 through `half`'s slice conversion, which converts eight at a time with F16C
/// (x86) or FCVT (aarch64) where the CPU has them. It picks the same instruction family,
/// or the same software fallback, as per-element `f16::to_f32`, so results are identical
/// bit for bit, NaN payloads included (a test checks all 65536 patterns). The source bytes
/// need not be 2-aligned, so they are gathered into an aligned stack buffer first.
fn decode_f16(src: &[u8], dst: &mut [f32]) {
    const CHUNK: usize = 256;
    let mut halves = [f16::ZERO; CHUNK];
    for (bytes, out) in src
        .as_chunks::<2>()
        .0
        .chunks(CHUNK)
        .zip(dst.chunks_mut(CHUNK))
    {
        let halves = &mut halves[..out.len()];
        for (h, &b) in halves.iter_mut().zip(bytes) {
            *h = f16::from_le_bytes(b);
        }
        halves.convert_to_f32_slice(out);
    }
}

/// E4M3 "FN": bias 7, no infinities, only S.1111.111 is NaN; subnormals 2^-6 · m/8.
fn f8_e4m3_to_f32(b: u8) -> f32 {
    let (sign, exp, man) = (b >> 7, (b >> 3) & 0x0f, b & 0x07);
    let mag = if exp == 0x0f && man == 0x07 {
        f32::NAN
    } else if exp == 0 {
        man as f32 / 8.0 * (2f32).powi(-6)
    } else {
        (1.0 + man as f32 / 8.0) * (2f32).powi(exp as i32 - 7)
    };
    if sign == 1 {
        -mag
    } else {
        mag
    }
}

/// E5M2: the top byte of an IEEE binary16, so widen it and convert exactly.
fn f8_e5m2_to_f32(b: u8) -> f32 {
    f16::from_bits((b as u16) << 8).to_f32()
}

fn f8_e8m0_to_f32(b: u8) -> f32 {
    if b == 0xff {
        f32::NAN
    } else {
        (2f32).powi(b as i32 - 127)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn carried_element_types_decode() {
        let c = crate::codec::find("i16").unwrap();
        let mut out = [0f32; 2];
        c.decode_row(&[0xff, 0xff, 0x10, 0x00], &mut out).unwrap();
        assert_eq!(out, [-1.0, 16.0]);
        assert!(!c.can_encode());
        assert_eq!(super::f8_e4m3_to_f32(0x7e), 448.0, "largest finite E4M3");
        assert!(super::f8_e4m3_to_f32(0x7f).is_nan());
        assert_eq!(
            super::f8_e4m3_to_f32(0x01),
            2f32.powi(-9),
            "smallest subnormal"
        );
        assert_eq!(super::f8_e5m2_to_f32(0x7b), 57344.0, "largest finite E5M2");
        assert_eq!(super::f8_e8m0_to_f32(127), 1.0);
    }

    use crate::codec::find;

    #[test]
    fn float_codecs_round_trip_representable_values() {
        let xs = [
            0.0f32,
            -0.0,
            1.0,
            -2.5,
            65504.0,
            0.000061035156,
            f32::INFINITY,
        ];
        for id in ["f32", "f16", "bf16"] {
            let c = find(id).unwrap();
            let mut bytes = vec![0u8; c.row_bytes(xs.len() as u64).unwrap() as usize];
            c.encode_row(&xs, &mut bytes).unwrap();
            let mut back = vec![0f32; xs.len()];
            c.decode_row(&bytes, &mut back).unwrap();
            for (a, b) in xs.iter().zip(&back) {
                if id == "bf16" && *a == 65504.0 {
                    continue; // not representable in bf16
                }
                assert_eq!(a.to_bits(), b.to_bits(), "{id}: {a}");
            }
        }
    }

    #[test]
    fn half_rows_decode_every_pattern_like_the_scalar_conversion() {
        // All 65536 patterns (NaN payloads, signalling NaNs, subnormals, ±0, ±inf) in one
        // row that is not a multiple of the f16 chunk, read from an odd address.
        // The 13 extra NaNs make a last chunk of 8 + 4 + 1 elements.
        let patterns: Vec<u16> = (0..=u16::MAX).chain(0x7c01..0x7c0e).collect();
        let mut bytes = vec![0u8; 1 + 2 * patterns.len()];
        for (b, p) in bytes[1..].chunks_exact_mut(2).zip(&patterns) {
            b.copy_from_slice(&p.to_le_bytes());
        }
        let src = &bytes[1..];
        let mut got = vec![0f32; patterns.len()];
        for (id, scalar) in [
            (
                "f16",
                (|p| half::f16::from_bits(p).to_f32()) as fn(u16) -> f32,
            ),
            ("bf16", |p| half::bf16::from_bits(p).to_f32()),
        ] {
            find(id).unwrap().decode_row(src, &mut got).unwrap();
            for (&p, y) in patterns.iter().zip(&got) {
                assert_eq!(y.to_bits(), scalar(p).to_bits(), "{id} {p:04x}");
            }
        }
    }

    #[test]
    fn carried_types_refuse_encoding() {
        let c = find("u8").unwrap();
        assert!(!c.can_encode());
        assert!(matches!(
            c.encode_row(&[1.0], &mut [0u8]),
            Err(crate::codec::CodecError::Unsupported { .. })
        ));
    }

    #[test]
    fn wrong_buffer_size_is_an_error_not_a_panic() {
        let c = find("f16").unwrap();
        let mut out = [0f32; 4];
        assert!(c.decode_row(&[0u8; 7], &mut out).is_err());
    }
}
