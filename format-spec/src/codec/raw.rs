//! Plain element codecs (SPEC.md §7.2): `f32`, `f16`, `bf16`, which encode from f32 by
//! round-to-nearest-even, and the carry-through element types of safetensors and GGUF
//! (`f64`, integers, `bool`, 8-bit floats), stored as they are and decodable to f32 but
//! not produced from f32: quantizing a weight to int32 is not a codec anyone asked for.

use super::{check_len, Codec, CodecError};
use half::{bf16, f16};

pub struct Float {
    id: &'static str,
    bytes: usize,
    summary: &'static str,
    to_f32: fn(&[u8]) -> f32,
    from_f32: fn(f32, &mut [u8]),
}

pub static CODECS: [Float; 3] = [
    Float {
        id: "f32",
        bytes: 4,
        summary: "IEEE binary32, little-endian, stored unchanged",
        to_f32: |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        from_f32: |x, out| out.copy_from_slice(&x.to_le_bytes()),
    },
    Float {
        id: "f16",
        bytes: 2,
        summary: "IEEE binary16, little-endian; from f32 by round-to-nearest-even",
        to_f32: |b| f16::from_le_bytes([b[0], b[1]]).to_f32(),
        from_f32: |x, out| out.copy_from_slice(&f16::from_f32(x).to_le_bytes()),
    },
    Float {
        id: "bf16",
        bytes: 2,
        summary: "bfloat16, little-endian; from f32 by round-to-nearest-even",
        to_f32: |b| bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        from_f32: |x, out| out.copy_from_slice(&bf16::from_f32(x).to_le_bytes()),
    },
];

impl Codec for Float {
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
        for (out, chunk) in dst.iter_mut().zip(src.chunks_exact(self.bytes)) {
            *out = (self.to_f32)(chunk);
        }
        Ok(())
    }
    fn encode_row(&self, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(src.len() as u64)?, dst.len())?;
        for (x, chunk) in src.iter().zip(dst.chunks_exact_mut(self.bytes)) {
            (self.from_f32)(*x, chunk);
        }
        Ok(())
    }
    fn can_encode(&self) -> bool {
        true
    }
}

/// A little-endian element type that is carried through unchanged.
pub struct Element {
    id: &'static str,
    bytes: usize,
    summary: &'static str,
    to_f32: fn(&[u8]) -> f32,
}

pub static ELEMENTS: [Element; 13] = [
    Element {
        id: "f64",
        bytes: 8,
        summary: "IEEE binary64, little-endian, carried through",
        to_f32: |b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
    },
    Element {
        id: "i8",
        bytes: 1,
        summary: "signed 8-bit integer, carried through",
        to_f32: |b| b[0] as i8 as f32,
    },
    Element {
        id: "u8",
        bytes: 1,
        summary: "unsigned 8-bit integer, carried through",
        to_f32: |b| b[0] as f32,
    },
    Element {
        id: "i16",
        bytes: 2,
        summary: "signed 16-bit integer, LE, carried through",
        to_f32: |b| i16::from_le_bytes([b[0], b[1]]) as f32,
    },
    Element {
        id: "u16",
        bytes: 2,
        summary: "unsigned 16-bit integer, LE, carried through",
        to_f32: |b| u16::from_le_bytes([b[0], b[1]]) as f32,
    },
    Element {
        id: "i32",
        bytes: 4,
        summary: "signed 32-bit integer, LE, carried through",
        to_f32: |b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as f32,
    },
    Element {
        id: "u32",
        bytes: 4,
        summary: "unsigned 32-bit integer, LE, carried through",
        to_f32: |b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as f32,
    },
    Element {
        id: "i64",
        bytes: 8,
        summary: "signed 64-bit integer, LE, carried through",
        to_f32: |b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
    },
    Element {
        id: "u64",
        bytes: 8,
        summary: "unsigned 64-bit integer, LE, carried through",
        to_f32: |b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
    },
    Element {
        id: "bool",
        bytes: 1,
        summary: "boolean byte (0 false, else true), carried through",
        to_f32: |b| (b[0] != 0) as u8 as f32,
    },
    Element {
        id: "f8_e4m3",
        bytes: 1,
        summary: "OCP FP8 E4M3 (finite, S.1111.111 is NaN), carried through",
        to_f32: f8_e4m3_to_f32,
    },
    Element {
        id: "f8_e5m2",
        bytes: 1,
        summary: "OCP FP8 E5M2 (IEEE-style inf/NaN), carried through",
        to_f32: f8_e5m2_to_f32,
    },
    Element {
        id: "f8_e8m0",
        bytes: 1,
        summary: "OCP E8M0 scale (2^(e-127), 0xff is NaN), carried through",
        to_f32: f8_e8m0_to_f32,
    },
];

impl Codec for Element {
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
        for (out, chunk) in dst.iter_mut().zip(src.chunks_exact(self.bytes)) {
            *out = (self.to_f32)(chunk);
        }
        Ok(())
    }
}

/// E4M3 "FN": bias 7, no infinities, only S.1111.111 is NaN; subnormals 2^-6 · m/8.
fn f8_e4m3_to_f32(b: &[u8]) -> f32 {
    let (sign, exp, man) = (b[0] >> 7, (b[0] >> 3) & 0x0f, b[0] & 0x07);
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
fn f8_e5m2_to_f32(b: &[u8]) -> f32 {
    half::f16::from_bits((b[0] as u16) << 8).to_f32()
}

fn f8_e8m0_to_f32(b: &[u8]) -> f32 {
    if b[0] == 0xff {
        f32::NAN
    } else {
        (2f32).powi(b[0] as i32 - 127)
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
        assert_eq!(super::f8_e4m3_to_f32(&[0x7e]), 448.0, "largest finite E4M3");
        assert!(super::f8_e4m3_to_f32(&[0x7f]).is_nan());
        assert_eq!(
            super::f8_e4m3_to_f32(&[0x01]),
            2f32.powi(-9),
            "smallest subnormal"
        );
        assert_eq!(
            super::f8_e5m2_to_f32(&[0x7b]),
            57344.0,
            "largest finite E5M2"
        );
        assert_eq!(super::f8_e8m0_to_f32(&[127]), 1.0);
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
    fn wrong_buffer_size_is_an_error_not_a_panic() {
        let c = find("f16").unwrap();
        let mut out = [0f32; 4];
        assert!(c.decode_row(&[0u8; 7], &mut out).is_err());
    }
}
