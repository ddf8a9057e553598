//! Vector-quantization codec `vq8_r2x256_g32_v1` (SPEC.md §7.10): every 8 weights are one
//! vector, stored as two 8-bit indices into two 256-entry codebooks (a stage and its
//! residual stage, as VPTQ's residual codebooks); each group of 32 weights has a one-byte
//! logarithmic scale code `s` (`d = 0` for `s = 0`, else `M[s mod 8] · 2^(⌊s/8⌋ − 24)` with
//! `M[m]` the f32 nearest `2^(m/8)`). Element `k` of a vector decodes to
//! `d · (C1[i][k] + C2[j][k])` in f32. 32 weights take 1 + 4·2 = 9 bytes: 2.25 bits per weight.
//!
//! The codebooks are integer k-means codebooks trained once, by the procedure of SPEC.md
//! §7.10.1 (a fixed generator, fixed initialization, fixed iteration count, exact integer
//! arithmetic), on pseudo-random gaussian-like vectors: calibration-free and the same for
//! every tensor. They live in the layout, not in each tensor, because ggml's kernels see only
//! a block pointer: a codebook stored once per tensor could not reach them. The tables below
//! are the procedure's output, checked by a test that reruns it.
//!
//! The encoder (SPEC.md §7.10.2) tries three scale codes per group; for each vector it keeps
//! the 2 best first-stage entries and then the best (first, residual) pair among them.

use super::{check_len, BlockLayout, Codec, CodecError};

pub const ID: &str = "vq8_r2x256_g32_v1";
/// Weights per vector.
pub const DIM: usize = 8;
/// Entries per codebook.
pub const ENTRIES: usize = 256;
/// Weights per group (one scale code).
pub const GROUP: usize = 32;
/// Vectors per group.
pub const VECTORS: usize = GROUP / DIM;
/// Bytes per group: the scale code, then for each vector its first-stage then residual index.
pub const GROUP_BYTES: usize = 1 + 2 * VECTORS;
/// First-stage entries kept per vector before the residual search.
pub const BEAM: usize = 2;
/// The codebook reproduction's typical magnitude: a group of RMS `σ` starts from `d ≈ σ/37`.
pub const REFERENCE_RMS: f64 = 37.0;
/// Scale codes tried, as offsets from the starting code, in the order tried.
pub const SCALE_OFFSETS: [i32; 3] = [0, 1, -1];
/// `M[m]`: the f32 nearest `2^(m/8)`, by bit pattern.
pub const SCALE_MANTISSA_BITS: [u32; 8] = [
    0x3f80_0000,
    0x3f8b_95c2,
    0x3f98_37f0,
    0x3fa5_fed7,
    0x3fb5_04f3,
    0x3fc5_672a,
    0x3fd7_44fd,
    0x3fea_c0c7,
];

/// The scale of code `s`: 0 for `s = 0`, else `M[s mod 8] · 2^(⌊s/8⌋ − 24)` (exact: a power of
/// two times a normal f32, in the normal range).
#[inline(always)]
pub const fn scale(s: u8) -> f32 {
    if s == 0 {
        return 0.0;
    }
    let m = f32::from_bits(SCALE_MANTISSA_BITS[(s & 7) as usize]);
    let p = f32::from_bits((((s >> 3) as u32) + 127 - 24) << 23);
    m * p
}

/// The codebook training procedure's constants (SPEC.md §7.10.1).
pub mod training {
    /// Training vectors per stage.
    pub const SAMPLES: usize = 16384;
    /// Lloyd iterations per stage.
    pub const ITERATIONS: usize = 12;
    /// The splitmix64 generator's starting state.
    pub const SEED: u64 = 0;
}

mod tables;
pub use tables::{CODEBOOK_1, CODEBOOK_2};

/// The codec (one id).
#[derive(Debug)]
pub struct VqCodec;

pub static CODEC: VqCodec = VqCodec;

/// splitmix64: the generator of the training vectors.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The training vectors: each value `⌊(b0 + b1 + b2 + b3 − 510) / 4⌋` from the four bytes
/// of a 32-bit half of a generator output (low half first), in −128..=127.
pub fn training_vectors() -> Vec<[i64; DIM]> {
    let mut state = training::SEED;
    let mut values = Vec::with_capacity(training::SAMPLES * DIM);
    while values.len() < training::SAMPLES * DIM {
        let r = splitmix64(&mut state);
        for half in [r as u32, (r >> 32) as u32] {
            let sum: i64 = half.to_le_bytes().iter().map(|&b| b as i64).sum();
            values.push((sum - 510).div_euclid(4));
        }
    }
    values
        .chunks_exact(DIM)
        .map(|c| std::array::from_fn(|k| c[k]))
        .collect()
}

/// Index of the nearest centroid (squared euclidean, exact), the smallest index on a tie.
fn nearest(v: &[i64; DIM], centroids: &[[i64; DIM]]) -> usize {
    let mut best = (i64::MAX, 0);
    for (i, c) in centroids.iter().enumerate() {
        let d: i64 = (0..DIM).map(|k| (v[k] - c[k]) * (v[k] - c[k])).sum();
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}

/// Integer k-means (Lloyd): initial centroids are the first `ENTRIES` vectors; each
/// iteration assigns every vector to its nearest centroid, then moves each centroid that has
/// members to the rounded mean `⌊(2·Σ + n) / 2n⌋` of its members.
pub fn kmeans(vectors: &[[i64; DIM]]) -> Vec<[i64; DIM]> {
    let mut centroids: Vec<[i64; DIM]> = vectors[..ENTRIES].to_vec();
    for _ in 0..training::ITERATIONS {
        let mut sums = vec![[0i64; DIM]; ENTRIES];
        let mut counts = vec![0i64; ENTRIES];
        for v in vectors {
            let a = nearest(v, &centroids);
            counts[a] += 1;
            for k in 0..DIM {
                sums[a][k] += v[k];
            }
        }
        for ((c, s), &n) in centroids.iter_mut().zip(&sums).zip(&counts) {
            if n > 0 {
                for k in 0..DIM {
                    c[k] = (2 * s[k] + n).div_euclid(2 * n);
                }
            }
        }
    }
    centroids
}

/// Runs the whole training procedure: stage 1 on the training vectors, stage 2 on their
/// residuals from their nearest stage-1 centroid.
pub fn train_codebooks() -> (Vec<[i64; DIM]>, Vec<[i64; DIM]>) {
    let vectors = training_vectors();
    let c1 = kmeans(&vectors);
    let residuals: Vec<[i64; DIM]> = vectors
        .iter()
        .map(|v| {
            let c = &c1[nearest(v, &c1)];
            std::array::from_fn(|k| v[k] - c[k])
        })
        .collect();
    let c2 = kmeans(&residuals);
    (c1, c2)
}

/// The decoded value of element `k` of vector `(i, j)` under scale `d`, as the decoder
/// computes it: the integer sum, then one f32 multiply.
#[inline(always)]
pub fn element(d: f32, i: usize, j: usize, k: usize) -> f32 {
    d * (CODEBOOK_1[i][k] as i32 + CODEBOOK_2[j][k] as i32) as f32
}

/// One vector's best (first, residual) pair under scale `d` and its squared error.
fn encode_vector(x: &[f64; DIM], d: f32, stage1: &[[f32; DIM]; ENTRIES]) -> (u8, u8, f64) {
    // The BEAM first-stage entries of least error, ordered by (error, index).
    let mut beam: [(f64, usize); BEAM] = [(f64::INFINITY, usize::MAX); BEAM];
    for (i, c) in stage1.iter().enumerate() {
        let mut e = 0.0f64;
        for k in 0..DIM {
            let diff = x[k] - c[k] as f64;
            e += diff * diff;
        }
        if e < beam[BEAM - 1].0 {
            let mut pos = BEAM - 1;
            while pos > 0 && e < beam[pos - 1].0 {
                beam[pos] = beam[pos - 1];
                pos -= 1;
            }
            beam[pos] = (e, i);
        }
    }
    let mut best = (f64::INFINITY, 0usize, 0usize);
    for &(_, i) in &beam {
        for j in 0..ENTRIES {
            let mut e = 0.0f64;
            for k in 0..DIM {
                let diff = x[k] - element(d, i, j, k) as f64;
                e += diff * diff;
            }
            if e < best.0 || (e == best.0 && (i, j) < (best.1, best.2)) {
                best = (e, i, j);
            }
        }
    }
    (best.1 as u8, best.2 as u8, best.0)
}

/// The encoder of SPEC.md §7.10.2 for one group of finite values: `(s, indices)`.
pub fn encode_group(x: &[f32]) -> (u8, [(u8, u8); VECTORS]) {
    let xs: [f64; GROUP] = std::array::from_fn(|n| x[n] as f64);
    let energy = xs.iter().fold(0.0f64, |acc, v| acc + v * v);
    // Code 0 (d = 0) reconstructs zeros, with error Σx².
    let mut best = (energy, 0u8, [(0u8, 0u8); VECTORS]);
    if energy == 0.0 {
        return (best.1, best.2);
    }
    let target = (energy / GROUP as f64).sqrt() / REFERENCE_RMS;
    // The starting code: the largest s ≥ 1 with scale(s) ≤ target, or 1.
    let start = (1..=255u8)
        .rev()
        .find(|&s| scale(s) as f64 <= target)
        .unwrap_or(1) as i32;
    for offset in SCALE_OFFSETS {
        let code = start + offset;
        if !(1..=255).contains(&code) {
            continue;
        }
        let df = scale(code as u8);
        let mut stage1 = [[0f32; DIM]; ENTRIES];
        for (s, c) in stage1.iter_mut().zip(&CODEBOOK_1) {
            for k in 0..DIM {
                s[k] = df * c[k] as f32;
            }
        }
        let mut total = 0.0f64;
        let mut indices = [(0u8, 0u8); VECTORS];
        for (v, idx) in indices.iter_mut().enumerate() {
            let xv: [f64; DIM] = std::array::from_fn(|k| xs[v * DIM + k]);
            let (i, j, e) = encode_vector(&xv, df, &stage1);
            *idx = (i, j);
            total += e;
            if total >= best.0 {
                break; // this scale cannot win: the other vectors only add
            }
        }
        if total < best.0 {
            best = (total, code as u8, indices);
        }
    }
    (best.1, best.2)
}

impl Codec for VqCodec {
    fn id(&self) -> &'static str {
        ID
    }

    fn summary(&self) -> &'static str {
        "vectors of 8 weights as two indices into fixed k-means codebooks of 256, 8-bit log scale per 32 (2.25 bpw)"
    }

    fn block_layout(&self) -> Option<BlockLayout> {
        Some(BlockLayout {
            elements: GROUP as u32,
            bytes: GROUP_BYTES as u32,
            partial_last_block: false,
            same_bytes_as_ggml: None,
        })
    }

    fn row_bytes(&self, row_len: u64) -> Result<u64, CodecError> {
        if row_len % GROUP as u64 != 0 {
            return Err(CodecError::RowLength {
                codec: ID,
                row_len,
                reason: format!("rows must be whole groups of {GROUP} elements"),
            });
        }
        (row_len / GROUP as u64)
            .checked_mul(GROUP_BYTES as u64)
            .ok_or_else(|| CodecError::RowLength {
                codec: ID,
                row_len,
                reason: "row size overflows u64".into(),
            })
    }

    fn decode_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), CodecError> {
        check_len(ID, self.row_bytes(dst.len() as u64)?, src.len())?;
        for (block, out) in src
            .chunks_exact(GROUP_BYTES)
            .zip(dst.chunks_exact_mut(GROUP))
        {
            let d = scale(block[0]);
            for (v, o) in out.chunks_exact_mut(DIM).enumerate() {
                let (i, j) = (block[1 + 2 * v] as usize, block[2 + 2 * v] as usize);
                for (k, ok) in o.iter_mut().enumerate() {
                    *ok = element(d, i, j, k);
                }
            }
        }
        Ok(())
    }

    fn encode_row(&self, src: &[f32], dst: &mut [u8]) -> Result<(), CodecError> {
        check_len(ID, self.row_bytes(src.len() as u64)?, dst.len())?;
        if let Some(i) = src.iter().position(|v| !v.is_finite()) {
            return Err(CodecError::OutOfRange {
                codec: ID,
                detail: format!("element {i} of the row is {}", src[i]),
            });
        }
        for (x, block) in src
            .chunks_exact(GROUP)
            .zip(dst.chunks_exact_mut(GROUP_BYTES))
        {
            let (code, indices) = encode_group(x);
            block[0] = code;
            for (v, (i, j)) in indices.iter().enumerate() {
                block[1 + 2 * v] = *i;
                block[2 + 2 * v] = *j;
            }
        }
        Ok(())
    }

    fn can_encode(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::find;
    use crate::codec::int4::sample::gaussian_like;

    /// The tables are the training procedure's output (set HCT_BLESS=1 to print them).
    #[test]
    fn codebooks_are_the_training_output() {
        let (c1, c2) = train_codebooks();
        if std::env::var_os("HCT_BLESS").is_some() {
            println!("{}", tables_source(&c1, &c2));
        }
        for (name, trained, table) in [("1", &c1, &CODEBOOK_1), ("2", &c2, &CODEBOOK_2)] {
            for (i, (t, s)) in trained.iter().zip(table.iter()).enumerate() {
                let s: [i64; DIM] = s.map(|v| v as i64);
                assert_eq!(*t, s, "codebook {name} entry {i}");
            }
        }
    }

    fn tables_source(c1: &[[i64; DIM]], c2: &[[i64; DIM]]) -> String {
        let table = |name: &str, c: &[[i64; DIM]]| {
            let mut s = format!("pub const {name}: [[i8; DIM]; ENTRIES] = [\n");
            for e in c {
                let v: Vec<String> = e
                    .iter()
                    .map(|x| {
                        assert!((-128..=127).contains(x));
                        x.to_string()
                    })
                    .collect();
                s += &format!("    [{}],\n", v.join(", "));
            }
            s + "];\n"
        };
        table("CODEBOOK_1", c1) + &table("CODEBOOK_2", c2)
    }

    #[test]
    fn geometry() {
        let c = find(ID).unwrap();
        assert_eq!(c.row_bytes(32), Ok(9));
        assert_eq!(c.row_bytes(576), Ok(18 * 9));
        assert!(c.row_bytes(48).is_err());
        for m in 0..8u8 {
            let exact = 2f64.powf(m as f64 / 8.0);
            let got = f32::from_bits(SCALE_MANTISSA_BITS[m as usize]) as f64;
            assert!(
                (got - exact).abs() <= f32::EPSILON as f64 / 2.0 * exact,
                "M[{m}]"
            );
        }
        assert_eq!(scale(0), 0.0);
        assert_eq!(scale(8 * 24), 1.0);
        assert_eq!(
            scale(1) as f64,
            f32::from_bits(SCALE_MANTISSA_BITS[1]) as f64 * 2f64.powi(-24)
        );
        assert!(scale(255) > 234.0 && scale(255) < 235.0);
    }

    #[test]
    fn gaussian_rows_and_refusals() {
        let c = &CODEC;
        let x = gaussian_like(5, 128, 0.02);
        let mut bytes = vec![0u8; 36];
        c.encode_row(&x, &mut bytes).unwrap();
        assert!(bytes.chunks(9).all(|g| g[0] > 0));
        let mut y = vec![0f32; 128];
        c.decode_row(&bytes, &mut y).unwrap();
        let energy: f64 = x.iter().map(|v| (*v as f64).powi(2)).sum();
        let err: f64 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum();
        // About 2 bits per weight on gaussian data: well below the zero reconstruction.
        assert!(err < 0.25 * energy, "relative error {}", err / energy);

        let mut bytes = vec![0xAAu8; 9];
        c.encode_row(&[0.0; 32], &mut bytes).unwrap();
        assert_eq!(bytes[0], 0);
        let mut y = [1f32; 32];
        c.decode_row(&bytes, &mut y).unwrap();
        assert!(y.iter().all(|&v| v == 0.0));
        let mut x = [0.01f32; 32];
        x[9] = f32::NAN;
        let err = c.encode_row(&x, &mut bytes).unwrap_err();
        assert!(err.to_string().contains("element 9"), "{err}");
        // Beyond the largest scale the group saturates rather than failing.
        let mut x = [0.01f32; 32];
        x[3] = 1.0e6;
        c.encode_row(&x, &mut bytes).unwrap();
        assert_eq!(bytes[0], 255);
    }
}
