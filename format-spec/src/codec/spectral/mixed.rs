//! `hct_v3m`: mixed-precision spectral tiles (SPEC.md §7.6.6). Same transform, retention and
//! inverse as `hct_v3` (§7.6.2–7.6.4), but the `H` largest kept coefficients of each tile are
//! stored as binary16 values with their positions, and only the other `K − H` are 4-bit codes,
//! on a scale set by the largest of *those*. The few largest coefficients, which fix a plain
//! `hct_v3` tile's scale, no longer coarsen the step of all the others.
//!
//! The bytes differ from `hct_v3`'s, so each (`K`, `H`) is its own id (SPEC.md §7.1).

use half::f16;

use super::basis::{BASIS, N};
use super::{encode_tiles, forward, params, select, TILE_HEADER_BYTES};
use crate::codec::{check_len, BlockLayout, Codec, CodecError};

/// Bytes of one tile keeping `kept` coefficients, `high` of them in binary16: bitmap and
/// scale, `high` position bytes, `high` binary16 values, `ceil((kept − high)/2)` code bytes.
pub const fn tile_bytes(kept: usize, high: usize) -> usize {
    TILE_HEADER_BYTES + 3 * high + (kept - high).div_ceil(2)
}

/// The block geometry of an `hct_v3m` id: one tile per block, partial last tile allowed.
pub const fn block_layout(kept: usize, high: usize) -> BlockLayout {
    BlockLayout {
        elements: N as u32,
        bytes: tile_bytes(kept, high) as u32,
        partial_last_block: true,
        same_bytes_as_ggml: None,
    }
}

/// One `hct_v3m` id.
#[derive(Debug)]
pub struct MixedSpectralCodec {
    id: &'static str,
    summary: &'static str,
    /// The nominal retention in percent (`kept = round(p·64/100)`, as for `hct_v3`).
    percent: u32,
    kept: usize,
    /// Kept coefficients stored in binary16 (`H`).
    high: usize,
}

impl MixedSpectralCodec {
    /// Coefficients kept per tile (`K`).
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// Kept coefficients stored in binary16 per tile (`H`).
    pub fn high(&self) -> usize {
        self.high
    }

    /// The nominal retention in percent.
    pub fn retention_percent(&self) -> u32 {
        self.percent
    }

    fn tile_bytes(&self) -> usize {
        tile_bytes(self.kept, self.high)
    }
}

/// Every `hct_v3m` id.
pub static CODECS: [MixedSpectralCodec; 2] = [
    MixedSpectralCodec {
        id: "hct_v3m_r70_h4_v1",
        summary: "1x64 DCT-II tiles, top 45 of 64 coefficients, the 4 largest fp16, the rest 4-bit (5.375 bpw)",
        percent: 70,
        kept: 45,
        high: 4,
    },
    MixedSpectralCodec {
        id: "hct_v3m_r90_h4_v1",
        summary: "1x64 DCT-II tiles, top 58 of 64 coefficients, the 4 largest fp16, the rest 4-bit (6.125 bpw)",
        percent: 90,
        kept: 58,
        high: 4,
    },
];

/// Every `hct_v3m` codec of this build.
pub fn all() -> Vec<&'static dyn Codec> {
    CODECS.iter().map(|c| c as &'static dyn Codec).collect()
}

/// The `hct_v3m` codec with `id`.
pub fn find(id: &str) -> Option<&'static MixedSpectralCodec> {
    CODECS.iter().find(|c| c.id == id)
}

/// Byte offsets inside a tile: positions, binary16 values, codes.
const fn offsets(high: usize) -> (usize, usize, usize) {
    let pos = TILE_HEADER_BYTES;
    let val = pos + high;
    (pos, val, val + 2 * high)
}

/// Encodes one tile of `1 ..= 64` elements (zero-padded to 64), SPEC.md §7.6.6.
pub fn encode_tile(x: &[f32], kept: usize, high: usize, out: &mut [u8]) -> Result<(), String> {
    debug_assert!(high < kept && !x.is_empty() && x.len() <= N);
    debug_assert_eq!(out.len(), tile_bytes(kept, high));
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(format!("element {i} is {}", x[i]));
    }
    let mut tile = [0f32; N];
    tile[..x.len()].copy_from_slice(x);
    let c = forward(&tile);
    if let Some(k) = c.iter().position(|v| !v.is_finite()) {
        return Err(format!("DCT coefficient {k} overflows binary32 ({})", c[k]));
    }
    // Magnitude order, the smaller position first among ties: the first `high` go to
    // binary16, the next `kept − high` to 4-bit codes.
    let chosen = select(&c, kept);
    let mut fp16_positions: Vec<usize> = chosen[..high].to_vec();
    fp16_positions.sort_unstable();
    let amax = c[chosen[high]].abs();
    let d = f16::from_f32(amax / 7.0);
    if d.is_infinite() {
        return Err(format!(
            "largest 4-bit DCT coefficient {amax:e} needs a scale beyond binary16"
        ));
    }
    let (pos_at, val_at, code_at) = offsets(high);
    out.fill(0);
    let mut bitmap = 0u64;
    for &k in &chosen {
        bitmap |= 1u64 << k;
    }
    out[..8].copy_from_slice(&bitmap.to_le_bytes());
    out[8..10].copy_from_slice(&d.to_bits().to_le_bytes());
    for (j, &k) in fp16_positions.iter().enumerate() {
        let v = f16::from_f32(c[k]);
        if v.is_infinite() {
            return Err(format!(
                "DCT coefficient {k} ({:e}) is beyond binary16",
                c[k]
            ));
        }
        out[pos_at + j] = k as u8;
        out[val_at + 2 * j..val_at + 2 * j + 2].copy_from_slice(&v.to_bits().to_le_bytes());
    }
    let scale = d.to_f32();
    let mut i = 0;
    for k in 0..N {
        if bitmap >> k & 1 == 0 || fp16_positions.contains(&k) {
            continue;
        }
        let q = if scale == 0.0 {
            0
        } else {
            (c[k] / scale).round_ties_even().clamp(-8.0, 7.0) as i32
        };
        let nibble = (q + 8) as u8;
        out[code_at + i / 2] |= if i % 2 == 0 { nibble } else { nibble << 4 };
        i += 1;
    }
    Ok(())
}

/// The dequantized coefficients of one stored tile (SPEC.md §7.6.6, decoder steps 1–3). Any
/// bytes decode: positions ≥ 64 are ignored, a later binary16 value wins a repeated position.
pub fn dequantize_tile(tile: &[u8], kept: usize, high: usize) -> [f32; N] {
    let (pos_at, val_at, code_at) = offsets(high);
    let bitmap = u64::from_le_bytes(tile[..8].try_into().expect("8 bytes"));
    let scale = f16::from_bits(u16::from_le_bytes([tile[8], tile[9]])).to_f32();
    let mut listed = 0u64;
    for &p in &tile[pos_at..pos_at + high] {
        if (p as usize) < N {
            listed |= 1u64 << p;
        }
    }
    let mut c = [0f32; N];
    let mut i = 0;
    for (k, ck) in c.iter_mut().enumerate() {
        if i == kept - high {
            break;
        }
        if bitmap >> k & 1 == 1 && listed >> k & 1 == 0 {
            let byte = tile[code_at + i / 2];
            let nibble = if i % 2 == 0 { byte & 0x0F } else { byte >> 4 };
            *ck = (nibble as i32 - 8) as f32 * scale;
            i += 1;
        }
    }
    for j in 0..high {
        let p = tile[pos_at + j] as usize;
        if p < N {
            let bits = u16::from_le_bytes([tile[val_at + 2 * j], tile[val_at + 2 * j + 1]]);
            c[p] = f16::from_bits(bits).to_f32();
        }
    }
    c
}

/// Decodes one stored tile into `out` (`1 ..= 64` elements): the inverse transform of
/// SPEC.md §7.6.3 over all 64 positions, `k` ascending from `+0.0`.
pub fn decode_tile(tile: &[u8], kept: usize, high: usize, out: &mut [f32]) {
    let c = dequantize_tile(tile, kept, high);
    for (n, o) in out.iter_mut().enumerate() {
        let mut s = 0.0f32;
        for (k, &ck) in c.iter().enumerate() {
            s += BASIS[k][n] * ck;
        }
        *o = s;
    }
}

impl MixedSpectralCodec {
    /// The first rule tile `t` breaks (SPEC.md §7.6.6, validation), if any.
    fn tile_problem(&self, tile: &[u8]) -> Option<String> {
        let (pos_at, _, code_at) = offsets(self.high);
        let bitmap = u64::from_le_bytes(tile[..8].try_into().expect("8 bytes"));
        if bitmap.count_ones() as usize != self.kept {
            return Some(format!(
                "position bitmap has {} bits set, the id keeps {}",
                bitmap.count_ones(),
                self.kept
            ));
        }
        let mut last: Option<u8> = None;
        for (j, &p) in tile[pos_at..pos_at + self.high].iter().enumerate() {
            if p as usize >= N || bitmap >> p & 1 == 0 {
                return Some(format!(
                    "binary16 coefficient {j} names position {p}, not a kept position"
                ));
            }
            if last.is_some_and(|l| l >= p) {
                return Some(format!(
                    "binary16 positions not strictly ascending ({} then {p})",
                    last.unwrap_or(0)
                ));
            }
            last = Some(p);
        }
        if (self.kept - self.high) % 2 == 1 && tile[code_at + (self.kept - self.high) / 2] >> 4 != 0
        {
            return Some("padding nibble is not 0".into());
        }
        None
    }
}

impl Codec for MixedSpectralCodec {
    fn id(&self) -> &'static str {
        self.id
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError> {
        row_len
            .div_ceil(N as u64)
            .checked_mul(self.tile_bytes() as u64)
            .ok_or_else(|| CodecError::RowLength {
                codec: self.id,
                row_len,
                reason: "row size overflows u64".into(),
            })
    }

    fn block_layout(&self) -> Option<BlockLayout> {
        Some(block_layout(self.kept, self.high))
    }

    fn has_stored_row_rules(&self, _row_len: u64) -> bool {
        true
    }

    /// SPEC.md §7.6.6: `K` bits set; binary16 positions kept, below 64, strictly ascending;
    /// padding nibble 0.
    fn check_stored_row(&self, row: &[u8], row_len: u64) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(row_len)?, row.len())?;
        let tb = self.tile_bytes();
        for (t, tile) in row.chunks_exact(tb).enumerate() {
            if let Some(why) = self.tile_problem(tile) {
                return Err(CodecError::OutOfRange {
                    codec: self.id,
                    detail: format!("tile {t} (row byte {}): {why}", t * tb),
                });
            }
        }
        Ok(())
    }

    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(dst.len() as u64)?, src.len())?;
        for (tile, out) in src.chunks_exact(self.tile_bytes()).zip(dst.chunks_mut(N)) {
            decode_tile(tile, self.kept, self.high, out);
        }
        Ok(())
    }

    fn encode_row(&self, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(src.len() as u64)?, dst.len())?;
        encode_tiles(self.id, src, dst, self.tile_bytes(), |x, out| {
            encode_tile(x, self.kept, self.high, out)
        })
    }

    fn can_encode(&self) -> bool {
        true
    }

    /// SPEC.md §7.6.6: as `hct_v3`'s, plus `hct.fp16_per_tile`.
    fn encoder_params(&self) -> Vec<(String, crate::Value)> {
        params(self.percent, self.kept, Some(self.high))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::int4::sample::gaussian_like;

    fn sq_err(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum()
    }

    fn round_trip(codec: &dyn Codec, x: &[f32]) -> Vec<f32> {
        let mut bytes = vec![0u8; codec.row_bytes(x.len() as u64).unwrap() as usize];
        codec.encode_row(x, &mut bytes).unwrap();
        codec.check_stored_row(&bytes, x.len() as u64).unwrap();
        let mut y = vec![0f32; x.len()];
        codec.decode_row(&bytes, &mut y).unwrap();
        y
    }

    #[test]
    fn beats_plain_hct_v3_at_the_same_retention() {
        let x = gaussian_like(21, 64 * 64, 0.02);
        for m in &CODECS {
            let plain = super::super::find(&format!("hct_v3_r{}", m.percent)).unwrap();
            let e_plain = sq_err(&x, &round_trip(plain, &x));
            let e_mixed = sq_err(&x, &round_trip(m, &x));
            assert!(e_mixed < e_plain, "{}: {e_mixed} vs {e_plain}", m.id);
        }
    }

    #[test]
    fn geometry_and_partial_tiles() {
        assert_eq!(tile_bytes(58, 4), 49);
        assert_eq!(tile_bytes(45, 4), 43);
        for m in &CODECS {
            for n in [1usize, 63, 64, 65, 100] {
                let y = round_trip(m, &vec![0.0; n]);
                assert!(y.iter().all(|v| v.to_bits() == 0), "{} zeros of {n}", m.id);
                let x = gaussian_like(n as u64, n, 1.0);
                assert_eq!(round_trip(m, &x).len(), n);
            }
        }
    }

    #[test]
    fn the_largest_coefficients_survive_in_binary16() {
        // One strong frequency plus noise: its coefficient is stored to binary16 precision.
        let x: Vec<f32> = gaussian_like(5, 64, 0.01)
            .iter()
            .enumerate()
            .map(|(n, v)| {
                v + (std::f64::consts::PI * (2 * n + 1) as f64 * 9.0 / 128.0).cos() as f32
            })
            .collect();
        let c = forward(&x.clone().try_into().unwrap());
        let m = &CODECS[1];
        let mut tile = vec![0u8; m.tile_bytes()];
        encode_tile(&x, m.kept, m.high, &mut tile).unwrap();
        assert!(tile[10..14].contains(&9));
        let d = dequantize_tile(&tile, m.kept, m.high);
        assert_eq!(d[9], f16::from_f32(c[9]).to_f32());
    }

    #[test]
    fn validation_names_the_tile_and_the_rule() {
        let m = &CODECS[0]; // K − H = 41, odd: a padding nibble
        let x = gaussian_like(9, 128, 1.0);
        let mut bytes = vec![0u8; m.row_bytes(128).unwrap() as usize];
        m.encode_row(&x, &mut bytes).unwrap();
        let tb = m.tile_bytes();
        let bad = |f: &dyn Fn(&mut [u8])| {
            let mut b = bytes.clone();
            f(&mut b[tb..]);
            m.check_stored_row(&b, 128).unwrap_err().to_string()
        };
        let e = bad(&|t| t[0] ^= 1 << (t[0].trailing_zeros().min(7)));
        assert!(e.contains("tile 1") && e.contains("bits set"), "{e}");
        let e = bad(&|t| t.swap(10, 11));
        assert!(e.contains("ascending"), "{e}");
        let e = bad(&|t| t[10] = 64);
        assert!(e.contains("not a kept position"), "{e}");
        let e = bad(&|t| t[tb - 1] |= 0x10);
        assert!(e.contains("padding"), "{e}");
    }

    /// SPEC.md §7.6.6's decoder on bytes no encoder writes: a position of 64 or more is
    /// ignored (its code slot goes to a bitmap position), a repeated position takes the later
    /// value, and codes stop after `K − H`.
    #[test]
    fn the_decoder_defines_every_tile() {
        let (kept, high) = (5, 4); // one 4-bit code
        let mut tile = vec![0u8; tile_bytes(kept, high)];
        let bitmap: u64 = (1 << 1) | (1 << 2) | (1 << 7) | (1 << 9);
        tile[..8].copy_from_slice(&bitmap.to_le_bytes());
        tile[8..10].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        tile[10..14].copy_from_slice(&[2, 2, 200, 9]);
        for (j, v) in [1.0f32, 2.0, 3.0, 4.0].iter().enumerate() {
            tile[14 + 2 * j..16 + 2 * j]
                .copy_from_slice(&f16::from_f32(*v).to_bits().to_le_bytes());
        }
        tile[22] = 0x8B; // code 11 (+3 × 0.5) for the first unlisted bitmap position
        let c = dequantize_tile(&tile, kept, high);
        let mut want = [0f32; N];
        want[1] = 1.5; // bitmap position 1: the one code (K − H = 1); position 7 gets none
        want[2] = 2.0; // listed twice: the later value
        want[9] = 4.0;
        assert_eq!(c.map(f32::to_bits), want.map(f32::to_bits));
    }

    #[test]
    fn refusals_name_the_tile() {
        let m = &CODECS[1];
        let mut x = gaussian_like(3, 128, 1.0);
        x[70] = f32::INFINITY;
        let mut out = vec![0u8; m.row_bytes(128).unwrap() as usize];
        let e = m.encode_row(&x, &mut out).unwrap_err().to_string();
        assert!(e.contains("tile 1") && e.contains("element 6"), "{e}");
        // DC = 8 × 10000 = 80000: beyond binary16's 65504.
        let e = m
            .encode_row(&[10000.0; 64], &mut out[..m.tile_bytes()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("beyond binary16"), "{e}");
    }
}
