//! One traits record per codec id: what a ggml-style runtime copies into its type-traits
//! tables (`type_traits[]`: block size, bytes, `to_float`; `type_traits_cpu[]`: `vec_dot`,
//! `vec_dot_type`, `nrows`, and the activation quantizer it pairs with).
//!
//! The function pointers have ggml's exact C signatures. The ISA is fixed per process
//! ([`crate::platform::active`], `HCT_ISA` included), so each ISA has its own table of entry
//! points, generated from the registry ([`crate::registry`]) with each kernel fixed at compile
//! time, and [`all_traits`] hands out the active one: a runtime calls straight into the
//! ISA's kernel, with no dispatch and no slice bookkeeping per call (`vec_dot` is called once
//! per weight row and activation row, ~10^9 times in one perplexity run of a small model).
//!
//! # Contract of the `extern "C"` entry points
//! As in ggml: `to_float(x, y, k)` reads one row of `k` elements from `x` (the codec's row
//! size, see [`WeightFormat::row_bytes`]) and writes `k` floats to `y`. For the HCT int4
//! codecs `k` need not be a multiple of the group: a trailing partial group is decoded as
//! the spec says, so call it once per row when rows have partial groups (ggml itself cannot
//! hold such rows). `vec_dot(n, s, bs, x, bx, y, by, nrc)` writes one float to `*s`; `nrc`
//! must be 1 (the traits say `nrows = 1`, so ggml passes 1 and zero strides, which are
//! ignored); `n` must be a multiple of 32.
//!
//! They never unwind into C. Arguments they can see are wrong are refused without reading
//! the inputs: `to_float` fills its `k` outputs with NaN (a ggml type with `k % 32 != 0`, a
//! null `x`) or, when it cannot write safely (negative `k`, null or misaligned `y`), does
//! nothing; `vec_dot` writes NaN to `*s` (bad `n`, `nrc != 1`, a null input) or does nothing
//! if `s` itself is null or misaligned; the activation quantizers write nothing on a bad
//! `k`. NaN rather than silence, because a skipped output would be garbage no one notices.
//! Pointers to too little memory cannot be detected: that is the caller's contract.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::kernels::{self, IsaKernels};
use crate::layout::{ActivationFormat, KernelError, WeightFormat, QK};
use crate::platform::{active, Backend, Isa};
use crate::quantize;
use crate::registry::{self, N_CODECS};

/// ggml's `ggml_to_float_t`.
pub type ToFloatFn = unsafe extern "C" fn(x: *const c_void, y: *mut f32, k: i64);
/// ggml's `ggml_vec_dot_t`.
pub type VecDotFn = unsafe extern "C" fn(
    n: c_int,
    s: *mut f32,
    bs: usize,
    x: *const c_void,
    bx: usize,
    y: *const c_void,
    by: usize,
    nrc: c_int,
);
/// ggml's `ggml_from_float_t`.
pub type FromFloatFn = unsafe extern "C" fn(x: *const f32, y: *mut c_void, k: i64);

/// Everything a runtime needs to run one codec's tensors.
#[derive(Debug)]
pub struct CodecTraits {
    /// The HCT codec id (`int4_g16_fp16_v1`, `ggml_q4_1`, …).
    pub codec_id: &'static str,
    pub format: WeightFormat,
    /// Elements per block (per group for the int4 codecs): ggml's `blck_size`.
    pub block_size: u32,
    /// Bytes per block: ggml's `type_size`.
    pub type_size: u32,
    /// ggml type id of the activation blocks `vec_dot` consumes (8 = Q8_0, 9 = Q8_1).
    pub vec_dot_type: u32,
    /// ggml's name of that type ("q8_0", "q8_1").
    pub vec_dot_type_name: &'static str,
    /// Rows per `vec_dot` call: always 1.
    pub nrows: u32,
    pub to_float: ToFloatFn,
    pub vec_dot: VecDotFn,
    /// Blocks of `vec_dot`s in one call, each output equal to its `vec_dot` ([`crate::gemm`]).
    pub gemm: crate::gemm::GemmFn,
    /// f32 → `vec_dot_type` blocks with ggml's reference rounding ([`crate::quantize`]).
    pub from_float_activation: FromFloatFn,
}

/// The traits of `codec_id`, or `None` if this library has no kernels for it.
pub fn traits_for(codec_id: &str) -> Option<&'static CodecTraits> {
    all_traits().iter().find(|t| t.codec_id == codec_id)
}

/// Every codec with kernels, in registry order ([`crate::registry`]), with the entry points
/// of the active backend.
pub fn all_traits() -> &'static [CodecTraits] {
    all_traits_of(active())
}

/// Every codec with kernels, in the order of [`all_traits`], with the entry points of
/// `backend`'s ISA (holding a [`Backend`] proves the CPU runs them).
pub fn all_traits_of(backend: Backend) -> &'static [CodecTraits] {
    match backend.isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => &AVX2_TRAITS,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => &NEON_TRAITS,
        // Scalar, and (unreachable: Backend::new refuses them) other architectures' ISAs.
        _ => &SCALAR_TRAITS,
    }
}

static SCALAR_TRAITS: [CodecTraits; N_CODECS] = traits_table::<kernels::Scalar>();
#[cfg(target_arch = "x86_64")]
static AVX2_TRAITS: [CodecTraits; N_CODECS] = traits_table::<kernels::Avx2>();
#[cfg(target_arch = "aarch64")]
static NEON_TRAITS: [CodecTraits; N_CODECS] = traits_table::<kernels::Neon>();

/// One ISA's records, one per registry entry, each with entry points whose kernel is fixed
/// at compile time.
const fn traits_table<I: IsaKernels>() -> [CodecTraits; N_CODECS] {
    macro_rules! records {
        ($isa:ty; $($id:ident => $format:ident,)*) => {
            [$(traits_record::<$isa, { WeightFormat::$format as usize }>(stringify!($id)),)*]
        };
    }
    registry::for_each_codec!(records!(I))
}

/// The record of one codec with layout `F` (a [`WeightFormat`] index) on ISA `I`.
pub(crate) const fn traits_record<I: IsaKernels, const F: usize>(
    codec_id: &'static str,
) -> CodecTraits {
    let format = WeightFormat::ALL[F];
    let activation = format.activation();
    CodecTraits {
        codec_id,
        format,
        block_size: format.block_len() as u32,
        type_size: format.block_bytes() as u32,
        vec_dot_type: activation.ggml_type_id(),
        vec_dot_type_name: activation.name(),
        nrows: 1,
        to_float: to_float_c::<I, F>,
        vec_dot: vec_dot_c::<I, F>,
        gemm: crate::gemm::gemm_c::<I, F>,
        from_float_activation: match activation {
            ActivationFormat::Q8_0 => from_float_q8_0,
            ActivationFormat::Q8_1 => from_float_q8_1,
        },
    }
}

/// ggml's `to_float` for layout `F` on ISA `I`.
///
/// # Safety
/// See the module documentation: ggml's `to_float` contract; the CPU runs `I`.
unsafe extern "C" fn to_float_c<I: IsaKernels, const F: usize>(
    x: *const c_void,
    y: *mut f32,
    k: i64,
) {
    let kernel = const { I::TABLE.get(WeightFormat::ALL[F]).to_float };
    // SAFETY: the caller holds ggml's to_float contract, which to_float_entry needs; the
    // table of I is handed out only for a backend of I.
    unsafe { to_float_entry(WeightFormat::ALL[F], x, y, k, kernel) }
}

/// ggml's `vec_dot` for layout `F` on ISA `I`.
///
/// # Safety
/// See the module documentation: ggml's `vec_dot` contract; the CPU runs `I`.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn vec_dot_c<I: IsaKernels, const F: usize>(
    n: c_int,
    s: *mut f32,
    _bs: usize,
    x: *const c_void,
    _bx: usize,
    y: *const c_void,
    _by: usize,
    nrc: c_int,
) {
    // SAFETY: as above, for ggml's vec_dot contract.
    unsafe { vec_dot_entry(n, s, x, y, nrc, raw_dot::<I, F>) }
}

/// The dot kernel of layout `F` on ISA `I` after the entry's checks: the ISA's unchecked
/// kernel where it has one, otherwise its slice kernel on the rows' exact sizes.
///
/// # Safety
/// The CPU runs `I`; `xp` and `yp` point at whole rows of `n` elements (`n % 32 == 0`).
#[inline(always)]
pub(crate) unsafe fn raw_dot<I: IsaKernels, const F: usize>(
    n: usize,
    xp: *const u8,
    yp: *const u8,
) -> f32 {
    if let Some(kernel) = const { I::TABLE.get(WeightFormat::ALL[F]).raw_dot } {
        // SAFETY: forwarded caller contract.
        return unsafe { kernel(n, xp, yp) };
    }
    let format = WeightFormat::ALL[F];
    let sizes = (format.row_bytes(n), format.activation().row_bytes(n));
    let (Ok(x_bytes), Ok(y_bytes)) = sizes else {
        return f32::NAN;
    };
    if x_bytes.max(y_bytes) > isize::MAX as usize {
        return f32::NAN;
    }
    // SAFETY: non-null (the entry checked), and (caller contract) the rows' bytes are readable.
    let (x, y) = unsafe {
        (
            std::slice::from_raw_parts(xp, x_bytes),
            std::slice::from_raw_parts(yp, y_bytes),
        )
    };
    let kernel = const { I::TABLE.get(WeightFormat::ALL[F]).vec_dot };
    // SAFETY: the CPU runs I (caller contract).
    unsafe { kernel(n, x, y) }.unwrap_or(f32::NAN)
}

/// `to_float` of one row through `kernel`.
///
/// # Safety
/// `x` must point at `format.row_bytes(k)` readable bytes and `y` at `k` writable floats; the
/// CPU must run `kernel`'s ISA.
#[inline(always)]
unsafe fn to_float_entry(
    format: WeightFormat,
    x: *const c_void,
    y: *mut f32,
    k: i64,
    kernel: unsafe fn(&[u8], &mut [f32]) -> Result<(), KernelError>,
) {
    let Ok(k) = usize::try_from(k) else { return };
    if k == 0 || y.is_null() || !y.is_aligned() || k > isize::MAX as usize / 4 {
        return;
    }
    // SAFETY: y is non-null, aligned, and (caller contract) holds k writable floats.
    let out = unsafe { std::slice::from_raw_parts_mut(y, k) };
    let bytes = match format.row_bytes(k) {
        Ok(bytes) if !x.is_null() && bytes <= isize::MAX as usize => bytes,
        _ => return out.fill(f32::NAN),
    };
    // SAFETY: x is non-null and (caller contract) holds the row's bytes.
    let row = unsafe { std::slice::from_raw_parts(x.cast::<u8>(), bytes) };
    // SAFETY: the CPU runs the kernel's ISA (caller contract).
    let decoded = catch_unwind(AssertUnwindSafe(|| unsafe { kernel(row, out) }));
    if !matches!(decoded, Ok(Ok(()))) {
        // Unreachable after the checks above; kept so a kernel bug shows as NaN, not as a
        // process abort inside the host.
        out.fill(f32::NAN);
    }
}

/// `vec_dot` of one row pair through `kernel`, which gets `n` (a multiple of 32) and the two
/// non-null row pointers.
///
/// # Safety
/// `s` must point at one writable float; `x` and `y` at the weight and activation rows of
/// `n` elements; the CPU must run `kernel`'s ISA.
#[inline(always)]
unsafe fn vec_dot_entry(
    n: c_int,
    s: *mut f32,
    x: *const c_void,
    y: *const c_void,
    nrc: c_int,
    kernel: unsafe fn(usize, *const u8, *const u8) -> f32,
) {
    if s.is_null() || !s.is_aligned() {
        return;
    }
    let result = match usize::try_from(n) {
        Ok(n) if n % QK == 0 && nrc == 1 && !x.is_null() && !y.is_null() => {
            // SAFETY: the checks above, and (caller contract) the rows and the ISA.
            catch_unwind(|| unsafe { kernel(n, x.cast(), y.cast()) }).unwrap_or(f32::NAN)
        }
        _ => f32::NAN,
    };
    // SAFETY: s is non-null, aligned, and (caller contract) writable.
    unsafe { s.write(result) };
}

/// # Safety
/// `x` must point at `k` readable floats and `y` at the Q8_0 row size of `k` bytes.
unsafe extern "C" fn from_float_q8_0(x: *const f32, y: *mut c_void, k: i64) {
    // SAFETY: forwarded caller contract.
    unsafe { from_float_ffi(ActivationFormat::Q8_0, x, y, k) }
}

/// # Safety
/// `x` must point at `k` readable floats and `y` at the Q8_1 row size of `k` bytes.
unsafe extern "C" fn from_float_q8_1(x: *const f32, y: *mut c_void, k: i64) {
    // SAFETY: forwarded caller contract.
    unsafe { from_float_ffi(ActivationFormat::Q8_1, x, y, k) }
}

/// # Safety
/// `x` must point at `k` readable floats and `y` at `format.row_bytes(k)` writable bytes.
unsafe fn from_float_ffi(format: ActivationFormat, x: *const f32, y: *mut c_void, k: i64) {
    let Ok(k) = usize::try_from(k) else { return };
    let Ok(bytes) = format.row_bytes(k) else {
        return;
    };
    if k == 0 || x.is_null() || !x.is_aligned() || y.is_null() || k > isize::MAX as usize / 4 {
        return;
    }
    // SAFETY: non-null, x aligned, and (caller contract) k floats readable and the row's
    // bytes writable.
    let (x, y) = unsafe {
        (
            std::slice::from_raw_parts(x, k),
            std::slice::from_raw_parts_mut(y.cast::<u8>(), bytes),
        )
    };
    let _ = catch_unwind(AssertUnwindSafe(|| match format {
        ActivationFormat::Q8_0 => quantize::quantize_row_q8_0(x, y),
        ActivationFormat::Q8_1 => quantize::quantize_row_q8_1(x, y),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{random_activation_row, random_weight_row, Rng};
    use crate::platform::Backend;

    #[test]
    fn every_codec_id_has_its_layout() {
        let expect = [
            ("ggml_q4_0", 32, 18, 8, "q8_0"),
            ("ggml_q4_1", 32, 20, 9, "q8_1"),
            ("ggml_q8_0", 32, 34, 8, "q8_0"),
            ("int4_g8_fp16_v1", 8, 8, 8, "q8_0"),
            ("int4_g16_fp16_v1", 16, 12, 8, "q8_0"),
            ("int4_g32_fp16_v1", 32, 20, 8, "q8_0"),
            ("int4_opt_v1", 16, 12, 8, "q8_0"),
        ];
        // Every registry entry resolves by its id to a record of its own layout, with the
        // geometry that layout declares (a table built in another order would fail here).
        for &(id, format) in registry::CODECS {
            let t = traits_for(id).unwrap_or_else(|| panic!("{id} has no traits record"));
            assert_eq!(t.format, format, "{id}");
            assert_eq!(t.block_size as usize, format.block_len(), "{id}");
            assert_eq!(t.type_size as usize, format.block_bytes(), "{id}");
        }
        // Spot checks of facts runtimes rely on.
        for (id, block, bytes, dot_type, dot_name) in expect {
            let t = traits_for(id).unwrap_or_else(|| panic!("{id} has traits"));
            assert_eq!(
                (
                    t.block_size,
                    t.type_size,
                    t.vec_dot_type,
                    t.vec_dot_type_name,
                    t.nrows
                ),
                (block, bytes, dot_type, dot_name, 1),
                "{id}"
            );
        }
        assert_eq!(
            traits_for("int4_opt_v1").unwrap().format,
            WeightFormat::Int4G16
        );
        assert!(traits_for("int4_g64_fp16_v1").is_none());
        assert!(traits_for("").is_none());
    }

    #[test]
    fn entry_points_of_every_backend_match_it_and_the_reference() {
        let mut rng = Rng::new(7);
        let tables = Backend::available()
            .into_iter()
            .flat_map(|backend| all_traits_of(backend).iter().map(move |t| (backend, t)));
        for (backend, t) in tables {
            // Every length the layout holds (super-blocks of 64 skip 32 and 96).
            for n in [32usize, 96, 192, 576]
                .into_iter()
                .filter(|&n| t.format.row_bytes(n).is_ok())
            {
                let x = random_weight_row(&mut rng, t.format, n, false);
                let y = random_activation_row(&mut rng, t.format.activation(), n, false);
                let mut via_c = vec![0.0f32; n];
                // SAFETY: x holds the row of n elements, via_c n floats.
                unsafe { (t.to_float)(x.as_ptr().cast(), via_c.as_mut_ptr(), n as i64) };
                let mut direct = vec![0.0f32; n];
                backend.to_float(t.format, &x, &mut direct).unwrap();
                assert_eq!(bits(&via_c), bits(&direct), "{} to_float", t.codec_id);

                let mut s = 0.0f32;
                // SAFETY: rows of n elements; s is one float; ggml's nrc = 1, zero strides.
                unsafe {
                    (t.vec_dot)(
                        n as c_int,
                        &mut s,
                        0,
                        x.as_ptr().cast(),
                        0,
                        y.as_ptr().cast(),
                        0,
                        1,
                    )
                };
                let direct = backend.vec_dot(t.format, n, &x, &y).unwrap();
                assert_eq!(s.to_bits(), direct.to_bits(), "{} vec_dot", t.codec_id);
                let scalar = Backend::scalar().vec_dot(t.format, n, &x, &y).unwrap();
                assert_eq!(
                    s.to_bits(),
                    scalar.to_bits(),
                    "{} vec_dot vs scalar",
                    t.codec_id
                );
            }
        }
    }

    #[test]
    fn partial_int4_rows_decode_through_the_c_entry_point() {
        let mut rng = Rng::new(11);
        let t = traits_for("int4_g16_fp16_v1").unwrap();
        let k = 16 * 3 + 5;
        let x = random_weight_row(&mut rng, t.format, k, false);
        assert_eq!(x.len(), 4 * 12);
        let mut y = vec![f32::NAN; k + 1];
        // SAFETY: x holds the row's 4 blocks; y has room for k floats (and a sentinel).
        unsafe { (t.to_float)(x.as_ptr().cast(), y.as_mut_ptr(), k as i64) };
        let mut expect = vec![0.0f32; k];
        Backend::scalar()
            .to_float(t.format, &x, &mut expect)
            .unwrap();
        assert_eq!(bits(&y[..k]), bits(&expect));
        assert!(y[k].is_nan(), "exactly k floats are written");
    }

    #[test]
    fn bad_arguments_give_nan_or_nothing_never_a_crash() {
        for backend in Backend::available() {
            bad_arguments_give_nan_or_nothing(&all_traits_of(backend)[0]);
        }
    }

    fn bad_arguments_give_nan_or_nothing(q4_0: &CodecTraits) {
        assert_eq!(q4_0.codec_id, "ggml_q4_0");
        let x = [0u8; 18 * 2];
        let y = [0u8; 34 * 2];

        // to_float of a ggml type with k not a multiple of 32: NaN.
        let mut out = [1.0f32; 40];
        // SAFETY: x holds more than the bytes a 40-element row would need; out 40 floats.
        unsafe { (q4_0.to_float)(x.as_ptr().cast(), out.as_mut_ptr(), 40) };
        assert!(out.iter().all(|v| v.is_nan()));
        // Null input: NaN; negative k and null output: untouched.
        let mut out = [1.0f32; 32];
        // SAFETY: the entry point refuses the null x before reading.
        unsafe { (q4_0.to_float)(std::ptr::null(), out.as_mut_ptr(), 32) };
        assert!(out.iter().all(|v| v.is_nan()));
        let mut out = [1.0f32; 32];
        // SAFETY: a negative k is refused before anything is touched.
        unsafe { (q4_0.to_float)(x.as_ptr().cast(), out.as_mut_ptr(), -32) };
        assert!(out.iter().all(|&v| v == 1.0));
        // SAFETY: a null y is refused before anything is touched.
        unsafe { (q4_0.to_float)(x.as_ptr().cast(), std::ptr::null_mut(), 32) };

        let dot = |n: c_int, nrc: c_int, xp: *const c_void, yp: *const c_void| {
            let mut s = 1.0f32;
            // SAFETY: x and y hold two blocks each, enough for any n accepted.
            unsafe { (q4_0.vec_dot)(n, &mut s, 0, xp, 0, yp, 0, nrc) };
            s
        };
        let (xp, yp) = (x.as_ptr().cast(), y.as_ptr().cast());
        assert_eq!(dot(64, 1, xp, yp), 0.0);
        assert!(dot(48, 1, xp, yp).is_nan(), "n % 32 != 0");
        assert!(dot(-32, 1, xp, yp).is_nan(), "negative n");
        assert!(dot(64, 2, xp, yp).is_nan(), "nrc = 2 is not offered");
        assert!(dot(64, 1, std::ptr::null(), yp).is_nan());
        assert!(dot(64, 1, xp, std::ptr::null()).is_nan());
        // SAFETY: a null s is refused before anything is touched.
        unsafe { (q4_0.vec_dot)(64, std::ptr::null_mut(), 0, xp, 0, yp, 0, 1) };
        assert_eq!(dot(0, 1, xp, yp), 0.0, "an empty row is a zero sum");
    }

    #[test]
    fn activation_quantizers_match_the_rust_api() {
        let x: Vec<f32> = (0..96).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        for (id, format) in [
            ("ggml_q4_1", ActivationFormat::Q8_1),
            ("ggml_q8_0", ActivationFormat::Q8_0),
        ] {
            let t = traits_for(id).unwrap();
            let mut via_c = vec![0u8; format.row_bytes(96).unwrap()];
            // SAFETY: x holds 96 floats, via_c the row size.
            unsafe { (t.from_float_activation)(x.as_ptr(), via_c.as_mut_ptr().cast(), 96) };
            let mut direct = vec![0u8; via_c.len()];
            match format {
                ActivationFormat::Q8_0 => quantize::quantize_row_q8_0(&x, &mut direct),
                ActivationFormat::Q8_1 => quantize::quantize_row_q8_1(&x, &mut direct),
            }
            .unwrap();
            assert_eq!(via_c, direct, "{id}");
            // A partial block is refused without writing.
            let mut untouched = vec![0xEEu8; via_c.len()];
            // SAFETY: refused before anything is read or written.
            unsafe { (t.from_float_activation)(x.as_ptr(), untouched.as_mut_ptr().cast(), 95) };
            assert!(untouched.iter().all(|&b| b == 0xEE));
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }
}
