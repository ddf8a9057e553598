//! Blocks of dot products: the multi-row entry point a runtime calls once for a whole tile
//! of a matrix product (the patched ggml hands it each thread's chunk of `mul_mat`).
//!
//! `gemm(n, s, bs, x, bx, y, by, nr, nc)` writes `s[j·bs/4 + i]` = `vec_dot(n, x + i·bx,
//! y + j·by)` for the `nr` weight rows `i` and `nc` activation rows `j`: **every output is the
//! codec's `vec_dot` of its row pair, bit for bit**, so the accumulation order of a product is
//! the one [`crate::kernels::portable`] fixes for a single dot, whatever the tiling, the ISA or
//! the thread that computes it. A kernel may share work between pairs (unpacked weights,
//! per-block activation sums, converted scales), never change a pair's arithmetic.
//!
//! Every codec in the registry gets this entry: a layout whose ISA table has a `gemm` kernel
//! ([`crate::kernels::KernelTable::with_gemm`]) runs it; any other runs its row-pair kernel
//! in a tiled loop here, which is already cheaper than one C call per pair (the checks and
//! the entry happen once per block, not per pair).
//!
//! Like the other entry points it never unwinds into C, and refuses arguments it can see are
//! wrong by writing NaN to every output (a bad `n`, a null row pointer, a column stride that
//! is not whole floats), or nothing when the outputs themselves cannot be written safely.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::kernels::{GemmArgs, IsaKernels};
use crate::layout::{WeightFormat, QK};
use crate::traits::raw_dot;

/// The multi-row entry point's C signature (the patch's `ggml_ext_gemm_t`).
pub type GemmFn = unsafe extern "C" fn(
    n: c_int,
    s: *mut f32,
    bs: usize,
    x: *const c_void,
    bx: usize,
    y: *const c_void,
    by: usize,
    nr: i64,
    nc: i64,
);

/// Activation rows per tile of the generic loop: each weight row is read once per tile of
/// this many activation rows, which stay in the L1 cache.
const TILE_COLUMNS: usize = 4;

/// The `extern "C"` multi-row entry of layout `F` on ISA `I`.
///
/// # Safety
/// The CPU runs `I`; `x` holds `nr` weight rows of `n` elements `bx` bytes apart, `y` holds
/// `nc` activation rows `by` bytes apart, and `s` has room for outputs `j·bs/4 + i`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe extern "C" fn gemm_c<I: IsaKernels, const F: usize>(
    n: c_int,
    s: *mut f32,
    bs: usize,
    x: *const c_void,
    bx: usize,
    y: *const c_void,
    by: usize,
    nr: i64,
    nc: i64,
) {
    let (Ok(nr), Ok(nc)) = (usize::try_from(nr), usize::try_from(nc)) else {
        return;
    };
    if nr == 0 || nc == 0 || s.is_null() || !s.is_aligned() || bs % 4 != 0 {
        return;
    }
    let bs = bs / 4;
    // The last output's offset must exist; past that, the caller's contract.
    if (nc - 1)
        .checked_mul(bs)
        .and_then(|o| o.checked_add(nr))
        .is_none()
    {
        return;
    }
    let args = GemmArgs {
        n: usize::try_from(n).unwrap_or(usize::MAX),
        x: x.cast(),
        bx,
        y: y.cast(),
        by,
        s,
        bs,
        nr,
        nc,
    };
    let valid = n >= 0 && args.n % QK == 0 && !x.is_null() && !y.is_null();
    let done = valid
        && catch_unwind(AssertUnwindSafe(|| {
            match const { I::TABLE.get(WeightFormat::ALL[F]).gemm } {
                // SAFETY: the checks above and the caller's contract are GemmArgs' contract.
                Some(kernel) => unsafe { kernel(&args) },
                // SAFETY: as above.
                None => unsafe { gemm_by_pairs::<I, F>(&args) },
            }
        }))
        .is_ok();
    if !done {
        // SAFETY: every output offset was checked to exist above (caller's contract).
        unsafe { fill(&args, f32::NAN) };
    }
}

/// Every layout's fallback: the row-pair kernel on each pair, tiled so that a weight row is
/// read once per [`TILE_COLUMNS`] activation rows.
///
/// # Safety
/// [`GemmArgs`]' contract; the CPU runs `I`.
#[inline(always)]
pub(crate) unsafe fn gemm_by_pairs<I: IsaKernels, const F: usize>(a: &GemmArgs) {
    for j0 in (0..a.nc).step_by(TILE_COLUMNS) {
        let j1 = (j0 + TILE_COLUMNS).min(a.nc);
        for i in 0..a.nr {
            // SAFETY: row i, rows j and output (i, j) exist (caller contract).
            unsafe {
                let row = a.x.add(i * a.bx);
                for j in j0..j1 {
                    *a.s.add(j * a.bs + i) = raw_dot::<I, F>(a.n, row, a.y.add(j * a.by));
                }
            }
        }
    }
}

/// Writes `v` to every output.
///
/// # Safety
/// The outputs of [`GemmArgs`] must be writable.
unsafe fn fill(a: &GemmArgs, v: f32) {
    for j in 0..a.nc {
        for i in 0..a.nr {
            // SAFETY: caller contract.
            unsafe { *a.s.add(j * a.bs + i) = v };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{random_activation_row, random_weight_row, Rng};
    use crate::platform::Backend;
    use crate::traits::all_traits_of;

    /// Rows laid out as ggml lays a tile out: `count` rows `stride` bytes apart.
    fn rows(make: impl FnMut() -> Vec<u8>, count: usize, pad: usize) -> (Vec<u8>, usize) {
        let mut make = make;
        let parts: Vec<Vec<u8>> = (0..count).map(|_| make()).collect();
        let stride = parts[0].len() + pad;
        let mut all = vec![0xA5u8; stride * count];
        for (k, p) in parts.iter().enumerate() {
            all[k * stride..k * stride + p.len()].copy_from_slice(p);
        }
        (all, stride)
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// Every output of every backend's multi-row entry, hand-written kernel or tiled loop,
    /// equals the reference `vec_dot` of its pair bit for bit: every registered codec, row
    /// lengths with whole and partial steps of eight units, rows past the hand-written
    /// kernels' limit (the fallback inside them), tiles of every column count, padded
    /// strides, special scales and −128 activations.
    #[test]
    fn every_output_is_the_reference_vec_dot_of_its_pair() {
        let mut rng = Rng::new(0x6e_3d);
        let scalar = Backend::scalar();
        let mut compared = 0usize;
        for backend in Backend::available() {
            for t in all_traits_of(backend) {
                for (n, nr, nc) in [
                    (32, 1, 1),
                    (64, 3, 5),
                    (96, 17, 9),
                    (224, 5, 1),
                    (576, 16, 16),
                    (2048, 4, 7),
                    (8224, 2, 3),
                    (16416, 1, 2),
                ] {
                    // A layout whose rows are whole blocks of 64 cannot hold 32 or 96.
                    if t.format.row_bytes(n).is_err() {
                        continue;
                    }
                    for specials in [false, true] {
                        let (x, bx) =
                            rows(|| random_weight_row(&mut rng, t.format, n, specials), nr, 8);
                        let act = t.format.activation();
                        let (y, by) =
                            rows(|| random_activation_row(&mut rng, act, n, specials), nc, 4);
                        let bs = nr + 3;
                        let mut s = vec![f32::from_bits(0x7fc0_1234); bs * nc];
                        // SAFETY: nr rows at x, nc rows at y, outputs j·bs + i < s.len().
                        unsafe {
                            (t.gemm)(
                                n as c_int,
                                s.as_mut_ptr(),
                                bs * 4,
                                x.as_ptr().cast(),
                                bx,
                                y.as_ptr().cast(),
                                by,
                                nr as i64,
                                nc as i64,
                            )
                        };
                        for j in 0..nc {
                            for i in 0..nr {
                                let reference = scalar
                                    .vec_dot(
                                        t.format,
                                        n,
                                        &x[i * bx..(i + 1) * bx],
                                        &y[j * by..(j + 1) * by],
                                    )
                                    .unwrap();
                                let got = s[j * bs + i];
                                assert!(
                                    same(got, reference),
                                    "{:?} {}: n {n}, tile {nr}x{nc}, pair ({i}, {j}): gemm {got:e}, reference {reference:e}",
                                    backend.isa(),
                                    t.codec_id
                                );
                                compared += 1;
                            }
                            for i in nr..bs {
                                assert_eq!(
                                    s[j * bs + i].to_bits(),
                                    0x7fc0_1234,
                                    "gap between columns untouched"
                                );
                            }
                        }
                    }
                }
            }
        }
        eprintln!("{compared} gemm outputs compared bit for bit");
    }

    #[test]
    fn refused_arguments_give_nan_or_touch_nothing() {
        let t = crate::traits::traits_for("int4_g32_fp16_v1").unwrap();
        let x = vec![0u8; 64 * 2];
        let y = vec![0u8; 68 * 2];
        let run = |n: c_int, bs: usize, xp: *const c_void, nr: i64, nc: i64| {
            let mut s = [1.0f32; 8];
            // SAFETY: two rows of 64 elements each; outputs within s for the shapes used.
            unsafe { (t.gemm)(n, s.as_mut_ptr(), bs, xp, 40, y.as_ptr().cast(), 68, nr, nc) };
            s
        };
        let xp = x.as_ptr().cast();
        assert_eq!(run(64, 8, xp, 2, 2)[..4], [0.0, 0.0, 0.0, 0.0]);
        assert!(
            run(48, 8, xp, 2, 2)[..4].iter().all(|v| v.is_nan()),
            "n % 32 != 0"
        );
        assert!(
            run(-32, 8, xp, 2, 2)[..4].iter().all(|v| v.is_nan()),
            "negative n"
        );
        assert!(run(64, 8, std::ptr::null(), 2, 2)[..4]
            .iter()
            .all(|v| v.is_nan()));
        assert_eq!(
            run(64, 6, xp, 2, 2),
            [1.0; 8],
            "a column stride of 1.5 floats"
        );
        assert_eq!(run(64, 8, xp, 0, 2), [1.0; 8], "no rows");
        assert_eq!(run(64, 8, xp, 2, -1), [1.0; 8], "negative count");
        // SAFETY: a null s is refused before anything is touched.
        unsafe {
            (t.gemm)(
                64,
                std::ptr::null_mut(),
                8,
                xp,
                40,
                y.as_ptr().cast(),
                68,
                2,
                2,
            )
        };
    }
}
