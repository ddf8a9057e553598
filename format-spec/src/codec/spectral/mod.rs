//! `hct_v3`: the spectral codecs (SPEC.md §7.6). Each row is cut into tiles of 64
//! consecutive elements; a tile is stored as the `K` largest of its 64 DCT-II coefficients
//! (a 64-bit bitmap of their positions), quantized to 4 bits with one binary16 scale.
//!
//! One id per retention `K/64`: `K` fixes the tile's byte size, and an id pins its layout
//! (SPEC.md §7.1), so `hct_v3_r90` is `K = 58`. The tile runs along the row, not over 8 rows
//! × 8 columns as in the founding design: HCT rows are decoded independently (SPEC.md §5.2),
//! and so are ggml's rows in `to_float`/`vec_dot`; SPEC.md §7.6 gives the measured reason
//! this costs nothing (2-D tiles compact real weights no better than 1-D ones).

pub mod basis;
pub mod mixed;

use half::f16;

use super::{check_len, BlockLayout, Codec, CodecError};
use basis::{BASIS, N};

/// Bytes of a tile's position bitmap and scale.
pub const TILE_HEADER_BYTES: usize = 10;

/// Bytes of one tile keeping `kept` coefficients: bitmap, scale, `ceil(kept/2)` nibbles.
pub const fn tile_bytes(kept: usize) -> usize {
    TILE_HEADER_BYTES + kept.div_ceil(2)
}

/// The block geometry of an `hct_v3` id: one tile per block, partial last tile allowed.
pub const fn block_layout(kept: usize) -> BlockLayout {
    BlockLayout {
        elements: N as u32,
        bytes: tile_bytes(kept) as u32,
        partial_last_block: true,
        same_bytes_as_ggml: None,
    }
}

/// One `hct_v3` id.
#[derive(Debug)]
pub struct SpectralCodec {
    id: &'static str,
    summary: &'static str,
    /// The nominal retention `p` in percent; `kept = round(p·64/100)`.
    percent: u32,
    kept: usize,
}

impl SpectralCodec {
    /// Coefficients kept per tile (`K`).
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// The nominal retention in percent named by the id (the stored fraction is `K/64`).
    pub fn retention_percent(&self) -> u32 {
        self.percent
    }
}

/// Every `hct_v3` id: retentions 25, 50, 70, 90 and 98 % (`K = round(p·64)`).
pub static CODECS: [SpectralCodec; 5] = [
    SpectralCodec {
        id: "hct_v3_r25",
        summary:
            "1x64 DCT-II tiles, top 16 of 64 coefficients (bitmap), 4-bit, fp16 scale (2.25 bpw)",
        percent: 25,
        kept: 16,
    },
    SpectralCodec {
        id: "hct_v3_r50",
        summary:
            "1x64 DCT-II tiles, top 32 of 64 coefficients (bitmap), 4-bit, fp16 scale (3.25 bpw)",
        percent: 50,
        kept: 32,
    },
    SpectralCodec {
        id: "hct_v3_r70",
        summary:
            "1x64 DCT-II tiles, top 45 of 64 coefficients (bitmap), 4-bit, fp16 scale (4.125 bpw)",
        percent: 70,
        kept: 45,
    },
    SpectralCodec {
        id: "hct_v3_r90",
        summary:
            "1x64 DCT-II tiles, top 58 of 64 coefficients (bitmap), 4-bit, fp16 scale (4.875 bpw)",
        percent: 90,
        kept: 58,
    },
    SpectralCodec {
        id: "hct_v3_r98",
        summary:
            "1x64 DCT-II tiles, top 63 of 64 coefficients (bitmap), 4-bit, fp16 scale (5.25 bpw)",
        percent: 98,
        kept: 63,
    },
];

/// Every `hct_v3` codec of this build.
pub fn all() -> Vec<&'static dyn Codec> {
    CODECS.iter().map(|c| c as &'static dyn Codec).collect()
}

/// The `hct_v3` codec with `id`.
pub fn find(id: &str) -> Option<&'static SpectralCodec> {
    CODECS.iter().find(|c| c.id == id)
}

/// The id for a retention given as a fraction (`0.9` → `hct_v3_r90`), for the converter's
/// `--codec hct_v3 --codec-param retention=…`.
pub fn for_retention(retention: f64) -> Option<&'static SpectralCodec> {
    CODECS
        .iter()
        .find(|c| (c.retention_percent() as f64 - retention * 100.0).abs() < 1e-9)
}

/// Forward transform of one tile (SPEC.md §7.6.3): `c[k] = Σ_n C[k][n]·x[n]`, binary32,
/// `n` ascending from `+0.0`, a rounding after each multiply and each add.
pub fn forward(x: &[f32; N]) -> [f32; N] {
    let mut c = [0f32; N];
    for (k, ck) in c.iter_mut().enumerate() {
        let mut s = 0.0f32;
        for (n, &xn) in x.iter().enumerate() {
            s += BASIS[k][n] * xn;
        }
        *ck = s;
    }
    c
}

/// The `kept` coefficient positions of largest magnitude, larger first, the smaller
/// position first among equal magnitudes (SPEC.md §7.6.4).
pub fn select(c: &[f32; N], kept: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..N).collect();
    // Finite coefficients only (checked by the caller), so `total_cmp` of magnitudes is the
    // numeric order, and -0 and +0 have equal magnitude after `abs`.
    order.sort_by(|&a, &b| c[b].abs().total_cmp(&c[a].abs()).then(a.cmp(&b)));
    order.truncate(kept);
    order
}

/// Encodes one tile of `1 ..= 64` elements (zero-padded to 64) keeping `kept` coefficients.
pub fn encode_tile(x: &[f32], kept: usize, out: &mut [u8]) -> Result<(), String> {
    debug_assert!(!x.is_empty() && x.len() <= N && out.len() == tile_bytes(kept));
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(format!("element {i} is {}", x[i]));
    }
    let mut tile = [0f32; N];
    tile[..x.len()].copy_from_slice(x);
    let c = forward(&tile);
    if let Some(k) = c.iter().position(|v| !v.is_finite()) {
        return Err(format!("DCT coefficient {k} overflows binary32 ({})", c[k]));
    }
    let chosen = select(&c, kept);
    let amax = c[chosen[0]].abs();
    let d = f16::from_f32(amax / 7.0);
    if d.is_infinite() {
        return Err(format!(
            "largest DCT coefficient {amax:e} needs a scale beyond binary16"
        ));
    }
    let scale = d.to_f32();
    let mut bitmap = 0u64;
    for &k in &chosen {
        bitmap |= 1u64 << k;
    }
    out.fill(0);
    out[..8].copy_from_slice(&bitmap.to_le_bytes());
    out[8..10].copy_from_slice(&d.to_bits().to_le_bytes());
    // Codes in ascending position order, as the decoder walks the bitmap.
    let mut i = 0;
    for k in 0..N {
        if bitmap >> k & 1 == 0 {
            continue;
        }
        let q = if scale == 0.0 {
            0
        } else {
            (c[k] / scale).round_ties_even().clamp(-8.0, 7.0) as i32
        };
        let nibble = (q + 8) as u8;
        out[TILE_HEADER_BYTES + i / 2] |= if i % 2 == 0 { nibble } else { nibble << 4 };
        i += 1;
    }
    Ok(())
}

/// The dequantized coefficients of one stored tile (SPEC.md §7.6.5): the `i`-th set bit of
/// the bitmap (ascending, `i < kept`) gets `(nibble_i − 8)·D`; every other position `+0`.
pub fn dequantize_tile(tile: &[u8], kept: usize) -> [f32; N] {
    let bitmap = u64::from_le_bytes(tile[..8].try_into().expect("8 bytes"));
    let scale = f16::from_bits(u16::from_le_bytes([tile[8], tile[9]])).to_f32();
    let mut c = [0f32; N];
    let mut i = 0;
    for (k, ck) in c.iter_mut().enumerate() {
        if i == kept {
            break;
        }
        if bitmap >> k & 1 == 1 {
            let byte = tile[TILE_HEADER_BYTES + i / 2];
            let nibble = if i % 2 == 0 { byte & 0x0F } else { byte >> 4 };
            *ck = (nibble as i32 - 8) as f32 * scale;
            i += 1;
        }
    }
    c
}

/// Decodes one stored tile into `out` (`1 ..= 64` elements): `x'[n] = Σ_k C[k][n]·ĉ[k]`,
/// binary32, `k` ascending from `+0.0` over all 64 positions.
pub fn decode_tile(tile: &[u8], kept: usize, out: &mut [f32]) {
    let c = dequantize_tile(tile, kept);
    for (n, o) in out.iter_mut().enumerate() {
        let mut s = 0.0f32;
        for (k, &ck) in c.iter().enumerate() {
            s += BASIS[k][n] * ck;
        }
        *o = s;
    }
}

impl Codec for SpectralCodec {
    fn id(&self) -> &'static str {
        self.id
    }

    fn summary(&self) -> &'static str {
        self.summary
    }

    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError> {
        row_len
            .div_ceil(N as u64)
            .checked_mul(tile_bytes(self.kept) as u64)
            .ok_or_else(|| CodecError::RowLength {
                codec: self.id,
                row_len,
                reason: "row size overflows u64".into(),
            })
    }

    fn block_layout(&self) -> Option<BlockLayout> {
        Some(block_layout(self.kept))
    }

    fn has_stored_row_rules(&self, _row_len: u64) -> bool {
        true
    }

    /// SPEC.md §7.6.1: each tile's bitmap has exactly `K` bits set, and when `K` is odd the
    /// high nibble of the last code byte is 0.
    fn check_stored_row(&self, row: &[u8], row_len: u64) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(row_len)?, row.len())?;
        let tb = tile_bytes(self.kept);
        for (t, tile) in row.chunks_exact(tb).enumerate() {
            let bitmap = u64::from_le_bytes(tile[..8].try_into().expect("8 bytes"));
            if bitmap.count_ones() as usize != self.kept {
                return Err(CodecError::OutOfRange {
                    codec: self.id,
                    detail: format!(
                        "tile {t} (row byte {}): position bitmap has {} bits set, the id keeps {}",
                        t * tb,
                        bitmap.count_ones(),
                        self.kept
                    ),
                });
            }
            if self.kept % 2 == 1 && tile[tb - 1] >> 4 != 0 {
                return Err(CodecError::OutOfRange {
                    codec: self.id,
                    detail: format!(
                        "tile {t} (row byte {}): padding nibble holds {}, an encoder stores 0",
                        t * tb + tb - 1,
                        tile[tb - 1] >> 4
                    ),
                });
            }
        }
        Ok(())
    }

    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(dst.len() as u64)?, src.len())?;
        let tb = tile_bytes(self.kept);
        for (tile, out) in src.chunks_exact(tb).zip(dst.chunks_mut(N)) {
            decode_tile(tile, self.kept, out);
        }
        Ok(())
    }

    fn encode_row(&self, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
        check_len(self.id, self.row_bytes(src.len() as u64)?, dst.len())?;
        encode_tiles(self.id, src, dst, tile_bytes(self.kept), |x, out| {
            encode_tile(x, self.kept, out)
        })
    }

    fn can_encode(&self) -> bool {
        true
    }

    /// SPEC.md §7.6: `hct.retention`, `hct.kept_per_tile`, `hct.tile`.
    fn encoder_params(&self) -> Vec<(String, crate::Value)> {
        params(self.percent, self.kept, None)
    }
}

/// Encode a row tile by tile (both spectral families); a tile's error is given its place.
pub(crate) fn encode_tiles(
    id: &'static str,
    src: &[f32],
    dst: &mut [u8],
    tile_bytes: usize,
    encode: impl Fn(&[f32], &mut [u8]) -> Result<(), String>,
) -> Result<(), CodecError> {
    for (t, (x, out)) in src
        .chunks(N)
        .zip(dst.chunks_exact_mut(tile_bytes))
        .enumerate()
    {
        encode(x, out).map_err(|why| CodecError::OutOfRange {
            codec: id,
            detail: format!("tile {t} (row elements {} ..): {why}", t * N),
        })?;
    }
    Ok(())
}

/// The informative parameters of a spectral id (SPEC.md §7.6; §7.6.6 adds
/// `hct.fp16_per_tile`), in the order writers record them.
pub(crate) fn params(
    percent: u32,
    kept: usize,
    fp16_per_tile: Option<usize>,
) -> Vec<(String, crate::Value)> {
    let mut p = vec![
        (
            "hct.retention".into(),
            crate::Value::F32(percent as f32 / 100.0),
        ),
        ("hct.kept_per_tile".into(), crate::Value::U32(kept as u32)),
    ];
    if let Some(h) = fp16_per_tile {
        p.push(("hct.fp16_per_tile".into(), crate::Value::U32(h as u32)));
    }
    p.push(("hct.tile".into(), crate::Value::string("1x64")));
    p
}

#[cfg(test)]
mod tests;
