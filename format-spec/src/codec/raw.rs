//! Plain element codecs: `f32`, `f16`, `bf16` (SPEC.md §7.2). Little-endian IEEE values,
//! stored as they are; encoding from f32 rounds to nearest, ties to even.

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

#[cfg(test)]
mod tests {
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
