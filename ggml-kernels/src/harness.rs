//! The one test harness every backend's test module calls ([`check_backend`]), plus the
//! check of the reference itself against plain f64 math on decoded rows.
//!
//! Why the inputs look the way they do:
//! - Row lengths: for `vec_dot`, 1..=5, 7, 8, 9, 15..17, 23..25, 31, 33, 64 and 100 blocks of
//!   32, so the number of units (blocks, or g16/g8 groups) hits every residue mod 8 the
//!   format allows, below, at and above the 8-unit vector step. For `to_float`, every int4
//!   length 0..=2N+1 (every partial-group size) and a few long ones.
//! - Rows sit at odd byte offsets inside larger buffers (no alignment assumption), followed
//!   by junk (only the row's own bytes may be read), and int4 pad nibbles are junk (pads
//!   are never decoded).
//! - Scales are mostly sane fp16 values, then zero, −0, subnormals (smallest, largest,
//!   negative), ±65504, ±1; rows "with specials" also get ±inf and quiet/signalling NaNs.
//! - Nibbles and quants are random, or all-max, all-zero, alternating; activations include
//!   −128 (which ggml's sign trick mishandles; exactness here must not depend on it) and
//!   rows from the reference quantizer.
//!
//! Comparison is bit for bit, except that any NaN equals any NaN: which NaN payload an
//! operation propagates depends on operand order, which the compiler may commute.

use crate::fp16::{f16_bits_to_f32, f32_to_f16_bits};
use crate::layout::{ActivationFormat, WeightFormat, QK};
use crate::platform::{Backend, Isa};
use crate::quantize;

/// Deterministic generator (SplitMix64): no dependency, same stream on every machine.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    fn f32_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

const FINITE_EDGE_SCALES: [u16; 11] = [
    0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00, 0x3555,
];
const SPECIAL_SCALES: [u16; 5] = [0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE00];

const DOT_BLOCK_COUNTS: [usize; 21] = [
    1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 33, 64, 100, 6, 10, 12,
];

/// Runs every check of `backend` against the reference. Panics with the first difference.
pub(crate) fn check_backend(backend: Backend) {
    let scalar = Backend::scalar();
    let mut rng = Rng::new(0x4843_545F_4B45_524E ^ backend.isa() as u64);
    let mut compared = 0usize;

    for &format in WeightFormat::ALL {
        for len in to_float_lengths(format) {
            for specials in [false, true] {
                for _ in 0..3 {
                    let row = random_weight_row(&mut rng, format, len, specials);
                    let (buffer, offset) = embed(&mut rng, &row);
                    let x = &buffer[offset..];
                    let mut expect = vec![0.0f32; len];
                    let mut got = vec![f32::from_bits(0x7FC0_DEAD); len];
                    scalar.to_float(format, x, &mut expect).unwrap();
                    backend.to_float(format, x, &mut got).unwrap();
                    for (i, (e, g)) in expect.iter().zip(&got).enumerate() {
                        assert!(
                            same(*e, *g),
                            "{:?} to_float {} len {len} elem {i}: scalar {e:e} ({:#010x}) vs {g:e} ({:#010x})\nrow {row:02x?}",
                            backend.isa(),
                            format.name(),
                            e.to_bits(),
                            g.to_bits()
                        );
                    }
                    compared += 1;
                }
            }
        }

        for blocks in std::iter::once(0).chain(DOT_BLOCK_COUNTS) {
            let n = blocks * QK;
            if format.row_bytes(n).is_err() {
                continue; // layouts of 64-element super-blocks hold even block counts only
            }
            for (round, specials) in [false, false, false, false, true, true]
                .into_iter()
                .enumerate()
            {
                let x_row = random_weight_row(&mut rng, format, n, specials);
                let y_row = if round == 1 {
                    quantized_activation_row(&mut rng, format.activation(), n)
                } else {
                    random_activation_row(&mut rng, format.activation(), n, specials)
                };
                let (xb, xo) = embed(&mut rng, &x_row);
                let (yb, yo) = embed(&mut rng, &y_row);
                let expect = scalar.vec_dot(format, n, &xb[xo..], &yb[yo..]).unwrap();
                let got = backend.vec_dot(format, n, &xb[xo..], &yb[yo..]).unwrap();
                assert!(
                    same(expect, got),
                    "{:?} vec_dot {} n {n}: scalar {expect:e} ({:#010x}) vs {got:e} ({:#010x})",
                    backend.isa(),
                    format.name(),
                    expect.to_bits(),
                    got.to_bits()
                );
                compared += 1;
            }
        }

        check_refusals(backend, format);
    }
    eprintln!("{:?}: {compared} rows compared bit for bit", backend.isa());
}

/// A test for an ISA this machine lacks: skipped, unless `HCT_TEST_REQUIRE_ISA` names it
/// (CI sets it so a detection failure cannot pass as a skip).
pub(crate) fn skip_or_fail(isa: Isa) {
    let required = std::env::var("HCT_TEST_REQUIRE_ISA").unwrap_or_default();
    if required.split(',').any(|r| Isa::parse(r) == Some(isa)) {
        panic!(
            "HCT_TEST_REQUIRE_ISA asks for {} but this CPU does not support it",
            isa.name()
        );
    }
    eprintln!("skipping {}: not supported here", isa.name());
}

/// The reference `vec_dot` against the f64 dot of the decoded rows (the weights through
/// the reference `to_float`, activations as q·d), within a bound derived from f32 rounding.
pub(crate) fn check_reference_against_decoded_math() {
    let scalar = Backend::scalar();
    let mut rng = Rng::new(0x5EED);
    for &format in WeightFormat::ALL {
        for blocks in DOT_BLOCK_COUNTS {
            for _ in 0..4 {
                let n = blocks * QK;
                if format.row_bytes(n).is_err() {
                    continue;
                }
                let x = random_weight_row(&mut rng, format, n, false);
                let y = quantized_activation_row(&mut rng, format.activation(), n);
                let got = scalar.vec_dot(format, n, &x, &y).unwrap() as f64;

                let mut decoded = vec![0.0f32; n];
                scalar.to_float(format, &x, &mut decoded).unwrap();
                let (activations, s_correction, magnitude) = decode_activations(format, &x, &y, n);
                let mut reference = s_correction;
                let mut abs_sum = magnitude;
                for (w, a) in decoded.iter().zip(&activations) {
                    reference += *w as f64 * a;
                    abs_sum += (*w as f64 * a).abs();
                }
                // Decoding rounds each weight twice and the dot rounds each term about four
                // times plus n/256 chained lane additions: a few f32 epsilons of the
                // magnitude, with room to spare.
                let units = n / format.block_len();
                let bound = abs_sum * f32::EPSILON as f64 * (8.0 + units as f64 / 8.0);
                assert!(
                    (got - reference).abs() <= bound,
                    "{} n {n}: dot {got:e} vs decoded math {reference:e}, bound {bound:e}",
                    format.name()
                );
            }
        }
    }
}

/// Activations as f64 (q·dy), plus, for Q4_1·Q8_1, the exact effect of using the stored
/// `s` instead of dy·Σq (ggml's definition of that dot), and the magnitude that term adds.
fn decode_activations(format: WeightFormat, x: &[u8], y: &[u8], n: usize) -> (Vec<f64>, f64, f64) {
    let act = format.activation();
    let bytes = act.block_bytes();
    let quants = bytes - QK;
    let mut values = Vec::with_capacity(n);
    let (mut correction, mut magnitude) = (0.0f64, 0.0f64);
    for b in 0..n / QK {
        let block = &y[b * bytes..(b + 1) * bytes];
        let dy = f16_bits_to_f32(u16::from_le_bytes([block[0], block[1]])) as f64;
        let qs: Vec<i32> = block[quants..].iter().map(|&q| q as i8 as i32).collect();
        values.extend(qs.iter().map(|&q| q as f64 * dy));
        if format == WeightFormat::Q4_1 {
            let xb = &x[b * 20..(b + 1) * 20];
            let mx = f16_bits_to_f32(u16::from_le_bytes([xb[2], xb[3]])) as f64;
            let sy = f16_bits_to_f32(u16::from_le_bytes([block[2], block[3]])) as f64;
            let sum: i32 = qs.iter().sum();
            correction += mx * (sy - dy * sum as f64);
            magnitude += (mx * sy).abs();
        }
    }
    (values, correction, magnitude)
}

fn to_float_lengths(format: WeightFormat) -> Vec<usize> {
    let n = format.block_len();
    if format.allows_partial_block() {
        let mut lens: Vec<usize> = (0..=2 * n + 1).collect();
        lens.extend([
            8 * n - 1,
            8 * n,
            8 * n + 1,
            8 * n + n / 2,
            13 * n + 3,
            101 * n - 1,
        ]);
        lens
    } else {
        std::iter::once(0)
            .chain(DOT_BLOCK_COUNTS)
            .map(|b| b * n)
            .collect()
    }
}

/// Calls each backend must refuse exactly as the reference does.
fn check_refusals(backend: Backend, format: WeightFormat) {
    let scalar = Backend::scalar();
    let n = 3 * QK.max(format.block_len());
    let x = vec![0u8; format.row_bytes(n).unwrap()];
    let y = vec![0u8; format.activation().row_bytes(n).unwrap()];
    let cases: [(usize, &[u8], &[u8]); 4] = [
        (n + 1, &x, &y),
        (n - 8, &x, &y),
        (n, &x[..x.len() - 1], &y),
        (n, &x, &y[..y.len() - 1]),
    ];
    for (len, xs, ys) in cases {
        let expect = scalar.vec_dot(format, len, xs, ys);
        assert!(expect.is_err(), "{} n {len}", format.name());
        assert_eq!(
            backend.vec_dot(format, len, xs, ys),
            expect,
            "{}",
            format.name()
        );
    }
    let mut out = vec![0.0f32; n];
    let expect = scalar.to_float(format, &x[..x.len() - 1], &mut out);
    assert!(expect.is_err());
    assert_eq!(
        backend.to_float(format, &x[..x.len() - 1], &mut out),
        expect
    );
    if !format.allows_partial_block() {
        let expect = scalar.to_float(format, &x, &mut out[..n - 1]);
        assert!(expect.is_err());
        assert_eq!(backend.to_float(format, &x, &mut out[..n - 1]), expect);
    }
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Places `row` at a random small offset in a buffer with junk before and after.
fn embed(rng: &mut Rng, row: &[u8]) -> (Vec<u8>, usize) {
    let offset = 1 + rng.below(7) as usize;
    let mut buffer: Vec<u8> = (0..offset).map(|_| rng.byte()).collect();
    buffer.extend_from_slice(row);
    buffer.extend((0..37).map(|_| rng.byte()));
    (buffer, offset)
}

fn random_scale(rng: &mut Rng, specials: bool) -> u16 {
    let roll = rng.below(100);
    if specials && roll < 4 {
        return SPECIAL_SCALES[rng.below(SPECIAL_SCALES.len() as u64) as usize];
    }
    if roll < 20 {
        return FINITE_EDGE_SCALES[rng.below(FINITE_EDGE_SCALES.len() as u64) as usize];
    }
    // Sane: |scale| in [2^-10, 2), random sign and mantissa.
    let sign = (rng.below(2) as u16) << 15;
    let exponent = 5 + rng.below(11) as u16;
    sign | (exponent << 10) | rng.below(1 << 10) as u16
}

fn fill_pattern(rng: &mut Rng, out: &mut [u8]) {
    match rng.below(10) {
        0 => out.fill(0xFF),
        1 => out.fill(0x00),
        2 => out
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = if i % 2 == 0 { 0x0F } else { 0xF0 }),
        _ => out.iter_mut().for_each(|b| *b = rng.byte()),
    }
}

/// One row of `len` elements of `format` with random scales and quants. Pad nibbles of a
/// partial int4 group are junk on purpose: decoders must not read them.
pub(crate) fn random_weight_row(
    rng: &mut Rng,
    format: WeightFormat,
    len: usize,
    specials: bool,
) -> Vec<u8> {
    let bytes = format.block_bytes();
    let mut row = vec![0u8; format.row_bytes(len).unwrap()];
    for block in row.chunks_exact_mut(bytes) {
        if format.name().starts_with("hct_v3") {
            // A u64 position bitmap (any popcount: decoders take at most K set bits), then
            // the binary16 scale at byte 8, then codes.
            fill_pattern(rng, block);
            block[8..10].copy_from_slice(&random_scale(rng, specials).to_le_bytes());
            // hct_v3m: H position bytes (any value), then H binary16 coefficients, drawn
            // like scales so that only `specials` rows hold NaN or infinity.
            if let Some(h) = crate::kernels::hct_v3m::fp16_per_tile(format) {
                for v in block[10 + h..10 + 3 * h].chunks_exact_mut(2) {
                    v.copy_from_slice(&random_scale(rng, specials).to_le_bytes());
                }
            }
            continue;
        }
        let scale_bytes = 2 * format.spec().f16_fields;
        for s in block[..scale_bytes].chunks_exact_mut(2) {
            s.copy_from_slice(&random_scale(rng, specials).to_le_bytes());
        }
        fill_pattern(rng, &mut block[scale_bytes..]);
    }
    row
}

/// One activation row of `n` elements with random scales and quants (−128 included). For
/// Q8_1, `s` is usually the fp16 of d·Σq, as ggml stores it, and sometimes arbitrary.
pub(crate) fn random_activation_row(
    rng: &mut Rng,
    format: ActivationFormat,
    n: usize,
    specials: bool,
) -> Vec<u8> {
    let bytes = format.block_bytes();
    let mut row = vec![0u8; format.row_bytes(n).unwrap()];
    for block in row.chunks_exact_mut(bytes) {
        let d = random_scale(rng, specials);
        block[..2].copy_from_slice(&d.to_le_bytes());
        let quants = bytes - QK;
        match rng.below(10) {
            0 => block[quants..].fill(0x80),
            1 => block[quants..].fill(0x7F),
            2 => block[quants..]
                .iter_mut()
                .enumerate()
                .for_each(|(i, q)| *q = if i % 2 == 0 { 0x80 } else { 0x7F }),
            _ => block[quants..].iter_mut().for_each(|q| *q = rng.byte()),
        }
        if format == ActivationFormat::Q8_1 {
            let sum: i32 = block[4..].iter().map(|&q| q as i8 as i32).sum();
            let s = if rng.below(4) == 0 {
                random_scale(rng, specials)
            } else {
                f32_to_f16_bits(f16_bits_to_f32(d) * sum as f32)
            };
            block[2..4].copy_from_slice(&s.to_le_bytes());
        }
    }
    row
}

/// An activation row as ggml's reference quantizer makes it from random floats.
fn quantized_activation_row(rng: &mut Rng, format: ActivationFormat, n: usize) -> Vec<u8> {
    let range = [1e-3f32, 0.1, 1.0, 30.0][rng.below(4) as usize];
    let x: Vec<f32> = (0..n).map(|_| rng.f32_in(-range, range)).collect();
    let mut y = vec![0u8; format.row_bytes(n).unwrap()];
    match format {
        ActivationFormat::Q8_0 => quantize::quantize_row_q8_0(&x, &mut y),
        ActivationFormat::Q8_1 => quantize::quantize_row_q8_1(&x, &mut y),
    }
    .unwrap();
    y
}
