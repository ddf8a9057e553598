//! One traits record per codec id: what a ggml-style runtime copies into its type-traits
//! tables (`type_traits[]`: block size, bytes, `to_float`; `type_traits_cpu[]`: `vec_dot`,
//! `vec_dot_type`, `nrows`, and the activation quantizer it pairs with).
//!
//! The function pointers have ggml's exact C signatures. The ISA is fixed per process
//! ([`crate::platform::active`], `HCT_ISA` included), so each ISA has its own table of entry
//! points and [`all_traits`] hands out the active one: a runtime calls straight into the
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

use crate::layout::{ActivationFormat, KernelError, WeightFormat, QK};
use crate::platform::{active, Backend, Isa};
use crate::quantize;

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
    /// f32 → `vec_dot_type` blocks with ggml's reference rounding ([`crate::quantize`]).
    pub from_float_activation: FromFloatFn,
}

/// The traits of `codec_id`, or `None` if this library has no kernels for it.
pub fn traits_for(codec_id: &str) -> Option<&'static CodecTraits> {
    all_traits().iter().find(|t| t.codec_id == codec_id)
}

/// Every codec with kernels, in a stable order, with the entry points of the active backend.
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

/// One table of records per ISA; `$entries` is the module holding that ISA's entry points.
macro_rules! traits_table {
    ($name:ident, $entries:ident) => {
        static $name: [CodecTraits; 7] = [
            record(
                "ggml_q4_0",
                WeightFormat::Q4_0,
                $entries::to_float_q4_0,
                $entries::vec_dot_q4_0,
            ),
            record(
                "ggml_q4_1",
                WeightFormat::Q4_1,
                $entries::to_float_q4_1,
                $entries::vec_dot_q4_1,
            ),
            record(
                "ggml_q8_0",
                WeightFormat::Q8_0,
                $entries::to_float_q8_0,
                $entries::vec_dot_q8_0,
            ),
            record(
                "int4_g8_fp16_v1",
                WeightFormat::Int4G8,
                $entries::to_float_g8,
                $entries::vec_dot_g8,
            ),
            record(
                "int4_g16_fp16_v1",
                WeightFormat::Int4G16,
                $entries::to_float_g16,
                $entries::vec_dot_g16,
            ),
            record(
                "int4_g32_fp16_v1",
                WeightFormat::Int4G32,
                $entries::to_float_g32,
                $entries::vec_dot_g32,
            ),
            // Same layout as g16; only the encoder differs (CODECS.md).
            record(
                "int4_opt_v1",
                WeightFormat::Int4G16,
                $entries::to_float_g16,
                $entries::vec_dot_g16,
            ),
        ];
    };
}

traits_table!(SCALAR_TRAITS, scalar_entries);
#[cfg(target_arch = "x86_64")]
traits_table!(AVX2_TRAITS, avx2_entries);
#[cfg(target_arch = "aarch64")]
traits_table!(NEON_TRAITS, neon_entries);

const fn record(
    codec_id: &'static str,
    format: WeightFormat,
    to_float: ToFloatFn,
    vec_dot: VecDotFn,
) -> CodecTraits {
    let activation = format.activation();
    CodecTraits {
        codec_id,
        format,
        block_size: format.block_len() as u32,
        type_size: format.block_bytes() as u32,
        vec_dot_type: activation.ggml_type_id(),
        vec_dot_type_name: activation.name(),
        nrows: 1,
        to_float,
        vec_dot,
        from_float_activation: match activation {
            ActivationFormat::Q8_0 => from_float_q8_0,
            ActivationFormat::Q8_1 => from_float_q8_1,
        },
    }
}

/// Entry points of one ISA, each forwarding to [`to_float_entry`] or [`vec_dot_entry`] with
/// its format and kernel. `$dot_kernel` takes `(n, x, y)` after the entry's checks.
macro_rules! entry_points {
    ($($format:ident => $to_float:ident($to_float_kernel:path), $vec_dot:ident($dot_kernel:path);)*) => {$(
        /// # Safety
        /// See the module documentation: ggml's `to_float` contract.
        pub(crate) unsafe extern "C" fn $to_float(x: *const c_void, y: *mut f32, k: i64) {
            // SAFETY: the caller holds ggml's to_float contract, which to_float_entry needs;
            // this module's ISA is the one its table is handed out for.
            unsafe { to_float_entry(WeightFormat::$format, x, y, k, $to_float_kernel) }
        }

        /// # Safety
        /// See the module documentation: ggml's `vec_dot` contract.
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe extern "C" fn $vec_dot(
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
            unsafe { vec_dot_entry(n, s, x, y, nrc, $dot_kernel) }
        }
    )*};
}

/// The reference's entry points, and those of any ISA whose kernels take row slices: the
/// rows' sizes are computed once, here, and the kernel checks the slices against them.
macro_rules! slice_entry_points {
    ($kernels:path; $($format:ident => $to_float:ident($to_float_kernel:ident), $vec_dot:ident($dot_kernel:ident);)*) => {
        use super::*;
        use $kernels as kernels;
        $(
            /// `vec_dot` on row slices of `n` elements (`n` already checked by the entry).
            ///
            /// # Safety
            /// The CPU runs this module's ISA; `xp` and `yp` point at the rows.
            unsafe fn $dot_kernel(n: usize, xp: *const u8, yp: *const u8) -> f32 {
                let format = WeightFormat::$format;
                let sizes = (format.row_bytes(n), format.activation().row_bytes(n));
                let (Ok(x_bytes), Ok(y_bytes)) = sizes else {
                    return f32::NAN;
                };
                if x_bytes.max(y_bytes) > isize::MAX as usize {
                    return f32::NAN;
                }
                // SAFETY: non-null (the entry checked), and (caller contract) the rows'
                // bytes are readable.
                let (x, y) = unsafe {
                    (
                        std::slice::from_raw_parts(xp, x_bytes),
                        std::slice::from_raw_parts(yp, y_bytes),
                    )
                };
                // SAFETY: the CPU runs this ISA (caller contract).
                #[allow(unused_unsafe)]
                unsafe { kernels::$dot_kernel(n, x, y) }.unwrap_or(f32::NAN)
            }
        )*
        entry_points! {
            $($format => $to_float(kernels::$to_float_kernel), $vec_dot($dot_kernel);)*
        }
    };
}

mod scalar_entries {
    slice_entry_points! {
        crate::kernels::portable;
        Q4_0 => to_float_q4_0(to_float_q4_0), vec_dot_q4_0(vec_dot_q4_0_q8_0);
        Q4_1 => to_float_q4_1(to_float_q4_1), vec_dot_q4_1(vec_dot_q4_1_q8_1);
        Q8_0 => to_float_q8_0(to_float_q8_0), vec_dot_q8_0(vec_dot_q8_0_q8_0);
        Int4G8 => to_float_g8(to_float_int4_g8), vec_dot_g8(vec_dot_int4_g8_q8_0);
        Int4G16 => to_float_g16(to_float_int4_g16), vec_dot_g16(vec_dot_int4_g16_q8_0);
        Int4G32 => to_float_g32(to_float_int4_g32), vec_dot_g32(vec_dot_int4_g32_q8_0);
    }
}

#[cfg(target_arch = "aarch64")]
mod neon_entries {
    slice_entry_points! {
        crate::kernels::neon;
        Q4_0 => to_float_q4_0(to_float_q4_0), vec_dot_q4_0(vec_dot_q4_0_q8_0);
        Q4_1 => to_float_q4_1(to_float_q4_1), vec_dot_q4_1(vec_dot_q4_1_q8_1);
        Q8_0 => to_float_q8_0(to_float_q8_0), vec_dot_q8_0(vec_dot_q8_0_q8_0);
        Int4G8 => to_float_g8(to_float_int4_g8), vec_dot_g8(vec_dot_int4_g8_q8_0);
        Int4G16 => to_float_g16(to_float_int4_g16), vec_dot_g16(vec_dot_int4_g16_q8_0);
        Int4G32 => to_float_g32(to_float_int4_g32), vec_dot_g32(vec_dot_int4_g32_q8_0);
    }
}

/// AVX2 `vec_dot` entries call the unchecked kernels: the entry's checks (`n` a multiple of
/// 32, non-null rows) are all those kernels need, and no row size is computed at all.
#[cfg(target_arch = "x86_64")]
mod avx2_entries {
    use super::*;
    use crate::kernels::avx2;

    entry_points! {
        Q4_0 => to_float_q4_0(avx2::to_float_q4_0), vec_dot_q4_0(avx2::dot_q4_0_q8_0);
        Q4_1 => to_float_q4_1(avx2::to_float_q4_1), vec_dot_q4_1(avx2::dot_q4_1_q8_1);
        Q8_0 => to_float_q8_0(avx2::to_float_q8_0), vec_dot_q8_0(avx2::dot_q8_0_q8_0);
        Int4G8 => to_float_g8(avx2::to_float_int4_g8), vec_dot_g8(avx2::dot_int4_g8_q8_0);
        Int4G16 => to_float_g16(avx2::to_float_int4_g16), vec_dot_g16(avx2::dot_int4_g16_q8_0);
        Int4G32 => to_float_g32(avx2::to_float_int4_g32), vec_dot_g32(avx2::dot_int4_g32_q8_0);
    }
}

/// The active backend's entry points, for callers that name one codec's entry statically
/// ([`crate::ggml_ext`]'s counting wrappers). Each looks up the active table: a cached load.
pub(crate) mod dispatched {
    use super::*;

    macro_rules! dispatched {
        ($($index:literal => $to_float:ident, $vec_dot:ident;)*) => {$(
            /// # Safety
            /// ggml's `to_float` contract (see the module documentation).
            pub(crate) unsafe extern "C" fn $to_float(x: *const c_void, y: *mut f32, k: i64) {
                // SAFETY: forwarded caller contract.
                unsafe { (all_traits()[$index].to_float)(x, y, k) }
            }

            /// # Safety
            /// ggml's `vec_dot` contract (see the module documentation).
            #[allow(clippy::too_many_arguments)]
            pub(crate) unsafe extern "C" fn $vec_dot(
                n: c_int,
                s: *mut f32,
                bs: usize,
                x: *const c_void,
                bx: usize,
                y: *const c_void,
                by: usize,
                nrc: c_int,
            ) {
                // SAFETY: forwarded caller contract.
                unsafe { (all_traits()[$index].vec_dot)(n, s, bs, x, bx, y, by, nrc) }
            }
        )*};
    }

    // Indices into the tables of `traits_table!`.
    dispatched! {
        3 => to_float_g8, vec_dot_g8;
        4 => to_float_g16, vec_dot_g16;
        5 => to_float_g32, vec_dot_g32;
    }
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
        assert_eq!(all_traits().len(), expect.len());
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
            for n in [32usize, 96, 576] {
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
    fn dispatched_entries_are_the_active_tables_int4_codecs() {
        let t = all_traits();
        assert_eq!(
            [t[3].codec_id, t[4].codec_id, t[5].codec_id],
            ["int4_g8_fp16_v1", "int4_g16_fp16_v1", "int4_g32_fp16_v1"]
        );
        let mut rng = Rng::new(5);
        let entries: [(VecDotFn, &CodecTraits); 3] = [
            (dispatched::vec_dot_g8, &t[3]),
            (dispatched::vec_dot_g16, &t[4]),
            (dispatched::vec_dot_g32, &t[5]),
        ];
        for (entry, t) in entries {
            let x = random_weight_row(&mut rng, t.format, 64, false);
            let y = random_activation_row(&mut rng, t.format.activation(), 64, false);
            let (mut a, mut b) = (0.0f32, 1.0f32);
            // SAFETY: rows of 64 elements; one float each.
            unsafe {
                entry(64, &mut a, 0, x.as_ptr().cast(), 0, y.as_ptr().cast(), 0, 1);
                (t.vec_dot)(64, &mut b, 0, x.as_ptr().cast(), 0, y.as_ptr().cast(), 0, 1);
            }
            assert_eq!(a.to_bits(), b.to_bits(), "{}", t.codec_id);
        }
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
