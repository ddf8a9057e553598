use super::*;
use crate::codec::int4::sample::gaussian_like;

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| x as f64 * x as f64).sum();
    let nb: f64 = b.iter().map(|&x| x as f64 * x as f64).sum();
    dot / (na.sqrt() * nb.sqrt())
}

fn round_trip(codec: &SpectralCodec, x: &[f32]) -> Vec<f32> {
    let mut bytes = vec![0u8; codec.row_bytes(x.len() as u64).unwrap() as usize];
    codec.encode_row(x, &mut bytes).unwrap();
    codec.check_stored_row(&bytes, x.len() as u64).unwrap();
    let mut y = vec![0f32; x.len()];
    codec.decode_row(&bytes, &mut y).unwrap();
    y
}

#[test]
fn more_retention_never_loses_much_and_r98_is_close() {
    let x = gaussian_like(7, 576, 0.02);
    let mut last = 0.0;
    for c in &CODECS {
        let cos = cosine(&x, &round_trip(c, &x));
        assert!(cos > last - 1e-3, "{}: cosine {cos} after {last}", c.id);
        last = cos;
    }
    assert!(last > 0.98, "r98 cosine {last}");
}

#[test]
fn a_constant_tile_is_its_dc_coefficient() {
    let x = vec![0.5f32; 64];
    let c = forward(&x.clone().try_into().unwrap());
    assert!((c[0] - 4.0).abs() < 1e-5);
    assert!(c[1..].iter().all(|v| v.abs() < 1e-5));
    let y = round_trip(&CODECS[0], &x);
    assert!(y.iter().all(|v| (v - 0.5).abs() < 0.01), "{y:?}");
}

#[test]
fn zero_rows_and_partial_tiles() {
    for n in [1usize, 7, 63, 64, 65, 100] {
        let y = round_trip(&CODECS[3], &vec![0.0; n]);
        assert!(y.iter().all(|v| v.to_bits() == 0), "row of {n}");
        let x = gaussian_like(n as u64, n, 1.0);
        let y = round_trip(&CODECS[4], &x);
        assert!(cosine(&x, &y) > 0.95, "row of {n}");
    }
}

#[test]
fn non_finite_and_huge_inputs_are_refused_naming_the_tile() {
    let c = &CODECS[3];
    let mut x = gaussian_like(3, 128, 1.0);
    x[70] = f32::NAN;
    let mut out = vec![0u8; c.row_bytes(128).unwrap() as usize];
    let e = c.encode_row(&x, &mut out).unwrap_err().to_string();
    assert!(e.contains("tile 1") && e.contains("element 6"), "{e}");
    let x = vec![60000.0f32; 64];
    let e = c
        .encode_row(&x, &mut out[..tile_bytes(58)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("binary16"), "{e}");
}

#[test]
fn validate_refuses_a_wrong_bitmap_and_a_set_padding_nibble() {
    let c = &CODECS[2]; // K = 45, odd
    let x = gaussian_like(9, 64, 1.0);
    let mut bytes = vec![0u8; tile_bytes(45)];
    c.encode_row(&x, &mut bytes).unwrap();
    c.check_stored_row(&bytes, 64).unwrap();
    // Clear one kept position: 44 bits set where the id keeps 45.
    let bitmap = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let mut bad = bytes.clone();
    bad[..8].copy_from_slice(&(bitmap & (bitmap - 1)).to_le_bytes());
    let e = c.check_stored_row(&bad, 64).unwrap_err().to_string();
    assert!(e.contains("44 bits set"), "{e}");
    let mut bad = bytes;
    *bad.last_mut().unwrap() |= 0x30;
    let e = c.check_stored_row(&bad, 64).unwrap_err().to_string();
    assert!(e.contains("padding nibble"), "{e}");
}

/// Kernels add only the kept coefficients' rows; the reference sums all 64. The spec says
/// the two agree bit for bit (a `+0` coefficient adds `±0`, which never changes a sum that
/// starts at `+0`); this holds it on real-looking and adversarial tiles.
#[test]
fn summing_only_kept_positions_equals_the_full_sum() {
    let mut rows = vec![
        gaussian_like(11, 64 * 40, 0.02),
        gaussian_like(12, 64 * 8, 3.0),
    ];
    rows.push(
        (0..64 * 4)
            .map(|i| if i % 3 == 0 { 1e-30 } else { -1e-30 })
            .collect(),
    );
    for c in &CODECS {
        for x in &rows {
            let mut bytes = vec![0u8; c.row_bytes(x.len() as u64).unwrap() as usize];
            c.encode_row(x, &mut bytes).unwrap();
            for tile in bytes.chunks_exact(tile_bytes(c.kept)) {
                let mut full = [0f32; N];
                decode_tile(tile, c.kept, &mut full);
                let coeffs = dequantize_tile(tile, c.kept);
                let bitmap = u64::from_le_bytes(tile[..8].try_into().unwrap());
                let mut sparse = [0f32; N];
                for (n, o) in sparse.iter_mut().enumerate() {
                    let mut s = 0.0f32;
                    for k in (0..N).filter(|&k| bitmap >> k & 1 == 1) {
                        s += BASIS[k][n] * coeffs[k];
                    }
                    *o = s;
                }
                assert_eq!(full.map(f32::to_bits), sparse.map(f32::to_bits), "{}", c.id);
            }
        }
    }
}

#[test]
fn retention_names_the_id() {
    assert_eq!(for_retention(0.9).unwrap().id, "hct_v3_r90");
    assert_eq!(for_retention(0.25).unwrap().kept(), 16);
    assert!(for_retention(0.8).is_none());
    for c in &CODECS {
        assert_eq!(c.id, format!("hct_v3_r{}", c.retention_percent()));
    }
}

#[test]
fn kept_is_the_rounded_retention() {
    for c in &CODECS {
        assert_eq!(c.kept, (c.percent as usize * N + 50) / 100, "{}", c.id);
    }
}
