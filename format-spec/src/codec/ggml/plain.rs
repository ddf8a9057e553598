//! ggml's plain element types I8, I16, I32, I64 and F64, little-endian. ggml has no
//! conversion of these to f32, so HCT defines it: the nearest f32, ties to even (exact for
//! I8 and I16; I32 and I64 beyond 2^24 and F64 round; F64 beyond f32's range becomes ±∞).

pub(super) fn decode_i8(block: &[u8], out: &mut [f32]) {
    out[0] = block[0] as i8 as f32;
}

pub(super) fn decode_i16(block: &[u8], out: &mut [f32]) {
    out[0] = i16::from_le_bytes([block[0], block[1]]) as f32;
}

pub(super) fn decode_i32(block: &[u8], out: &mut [f32]) {
    out[0] = i32::from_le_bytes([block[0], block[1], block[2], block[3]]) as f32;
}

pub(super) fn decode_i64(block: &[u8], out: &mut [f32]) {
    out[0] = i64::from_le_bytes(eight(block)) as f32;
}

pub(super) fn decode_f64(block: &[u8], out: &mut [f32]) {
    out[0] = f64::from_le_bytes(eight(block)) as f32;
}

fn eight(block: &[u8]) -> [u8; 8] {
    [
        block[0], block[1], block[2], block[3], block[4], block[5], block[6], block[7],
    ]
}
