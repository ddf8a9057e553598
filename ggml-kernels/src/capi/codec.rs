//! The per-codec traits records for C: what a ggml-style runtime copies into its
//! `type_traits[]` (`blck_size`, `type_size`, `to_float`) and `type_traits_cpu[]`
//! (`vec_dot`, `vec_dot_type`, `nrows`) tables, looked up by codec id string.
//!
//! The function pointers are those of [`crate::traits`], whose documentation states their
//! contract (ggml's, plus refusals that write NaN instead of aborting).

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::OnceLock;

use super::{c_str_arg, set_error, Failure, HCT_ERR_INVALID_ARGUMENT, HCT_ERR_NOT_FOUND};
use crate::traits::{all_traits, CodecTraits};

/// ggml's `ggml_to_float_t`: decode one row of `k` elements from `x` into `y`.
#[allow(non_camel_case_types)]
pub type hct_to_float_t = unsafe extern "C" fn(x: *const c_void, y: *mut f32, k: i64);

/// ggml's `ggml_vec_dot_t`: `*s` = dot product of a weight row `x` and an activation row `y`
/// (blocks of `vec_dot_type`) of `n` elements; `nrc` must be 1 (the strides are ignored).
#[allow(non_camel_case_types)]
pub type hct_vec_dot_t = unsafe extern "C" fn(
    n: c_int,
    s: *mut f32,
    bs: usize,
    x: *const c_void,
    bx: usize,
    y: *const c_void,
    by: usize,
    nrc: c_int,
);

/// ggml's `ggml_from_float_t`: quantize `k` floats (a multiple of 32) into `y`.
#[allow(non_camel_case_types)]
pub type hct_from_float_t = unsafe extern "C" fn(x: *const f32, y: *mut c_void, k: i64);

/// One codec's kernels and layout, with ggml's field names and types. Static: valid for the
/// life of the process.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct hct_codec_traits {
    /// The HCT codec id, e.g. "int4_opt_v1" or "ggml_q4_1" (NUL-terminated).
    pub codec_id: *const c_char,
    /// Elements per block (per group for the int4 codecs).
    pub blck_size: i64,
    /// Bytes per block. A row of `k` elements takes `ceil(k / blck_size) * type_size` bytes:
    /// HCT int4 rows may end in a partial group, stored as a whole block, which `to_float`
    /// decodes when called once per row (ggml itself never makes such rows).
    pub type_size: usize,
    pub to_float: hct_to_float_t,
    pub vec_dot: hct_vec_dot_t,
    /// ggml's `enum ggml_type` value of the activation blocks `vec_dot` takes: 8 (Q8_0) or
    /// 9 (Q8_1). A ggml runtime quantizes activations with its own quantizer for that type.
    pub vec_dot_type: c_int,
    /// ggml's name of that type: "q8_0" or "q8_1".
    pub vec_dot_type_name: *const c_char,
    /// Rows per `vec_dot` call: 1.
    pub nrows: i64,
    /// f32 → `vec_dot_type` blocks with ggml's reference rounding, for runtimes without a
    /// quantizer of their own.
    pub from_float: hct_from_float_t,
}

/// The traits of `codec_id`, or NULL (with `HCT_ERR_NOT_FOUND` or, for a NULL argument,
/// `HCT_ERR_INVALID_ARGUMENT` as the last error) when this library has no kernels for it.
///
/// # Safety
/// A non-NULL `codec_id` must point at a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn hct_codec_traits_find(codec_id: *const c_char) -> *const hct_codec_traits {
    // SAFETY: forwarded caller contract.
    match unsafe { c_str_arg(codec_id, "codec_id") } {
        Ok(id) => match find(id) {
            Some(t) => t,
            None => {
                set_error(
                    HCT_ERR_NOT_FOUND,
                    format!(
                        "hct_codec_traits_find: no kernels for codec \"{}\"; libhct has kernels for {}",
                        String::from_utf8_lossy(id),
                        all_traits()
                            .iter()
                            .map(|t| t.codec_id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                std::ptr::null()
            }
        },
        Err(Failure { status, message }) => {
            set_error(status, format!("hct_codec_traits_find: {message}"));
            std::ptr::null()
        }
    }
}

/// How many codecs have kernels; `hct_codec_traits_at(0 .. count-1)` lists them.
#[no_mangle]
pub extern "C" fn hct_codec_traits_count() -> usize {
    table().records.len()
}

/// The `index`-th codec with kernels, or NULL (with `HCT_ERR_INVALID_ARGUMENT`) past the end.
#[no_mangle]
pub extern "C" fn hct_codec_traits_at(index: usize) -> *const hct_codec_traits {
    match table().records.get(index) {
        Some(t) => t,
        None => {
            set_error(
                HCT_ERR_INVALID_ARGUMENT,
                format!(
                    "hct_codec_traits_at: index {index} is past the last of {} codecs",
                    table().records.len()
                ),
            );
            std::ptr::null()
        }
    }
}

/// The record of `codec_id`, for the container functions.
pub(crate) fn find(codec_id: &[u8]) -> Option<&'static hct_codec_traits> {
    let table = table();
    table
        .rust
        .iter()
        .position(|t| t.codec_id.as_bytes() == codec_id)
        .map(|i| &table.records[i])
}

struct Table {
    /// Same order as `rust`.
    records: Vec<hct_codec_traits>,
    rust: &'static [CodecTraits],
}

// SAFETY: the raw pointers in the records point at leaked, never-mutated C strings and at
// functions; sharing them between threads is sharing immutable static data.
unsafe impl Sync for Table {}
unsafe impl Send for Table {}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let rust = all_traits();
        let leak = |s: &str| -> *const c_char {
            let c = CString::new(s).expect("codec ids have no NUL");
            Box::leak(c.into_boxed_c_str()).as_ptr()
        };
        let records = rust
            .iter()
            .map(|t| hct_codec_traits {
                codec_id: leak(t.codec_id),
                blck_size: i64::from(t.block_size),
                type_size: t.type_size as usize,
                to_float: t.to_float,
                vec_dot: t.vec_dot,
                vec_dot_type: t.vec_dot_type as c_int,
                vec_dot_type_name: leak(t.vec_dot_type_name),
                nrows: i64::from(t.nrows),
                from_float: t.from_float_activation,
            })
            .collect();
        Table { records, rust }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::hct_last_error;
    use std::ffi::CStr;

    fn text(p: *const c_char) -> &'static str {
        // SAFETY: the library's C strings are static and NUL-terminated.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    #[test]
    fn every_codec_with_kernels_is_listed_and_found_by_id() {
        assert_eq!(hct_codec_traits_count(), all_traits().len());
        for (i, rust) in all_traits().iter().enumerate() {
            let listed = hct_codec_traits_at(i);
            let id = CString::new(rust.codec_id).unwrap();
            // SAFETY: id is NUL-terminated.
            let found = unsafe { hct_codec_traits_find(id.as_ptr()) };
            assert_eq!(listed, found, "{}", rust.codec_id);
            // SAFETY: a non-NULL record points into the static table.
            let t = unsafe { &*found };
            assert_eq!(text(t.codec_id), rust.codec_id);
            assert_eq!(t.blck_size, i64::from(rust.block_size));
            assert_eq!(t.type_size, rust.type_size as usize);
            assert_eq!(t.vec_dot_type, rust.vec_dot_type as c_int);
            assert_eq!(text(t.vec_dot_type_name), rust.vec_dot_type_name);
            assert_eq!(t.nrows, 1);
            assert_eq!(t.to_float as usize, rust.to_float as usize);
            assert_eq!(t.vec_dot as usize, rust.vec_dot as usize);
            assert_eq!(t.from_float as usize, rust.from_float_activation as usize);
        }
        // int4_opt_v1 has g16's layout and kernels (SPEC.md §7.4: only its encoder differs).
        // SAFETY: C string literals.
        let (opt, g16) = unsafe {
            (
                &*hct_codec_traits_find(c"int4_opt_v1".as_ptr()),
                &*hct_codec_traits_find(c"int4_g16_fp16_v1".as_ptr()),
            )
        };
        assert_eq!((opt.blck_size, opt.type_size), (16, 12));
        assert_eq!(opt.vec_dot as usize, g16.vec_dot as usize);
    }

    #[test]
    fn unknown_ids_and_bad_indices_are_refused_with_a_message() {
        // SAFETY: a C string literal, then NULL (checked before use).
        unsafe {
            assert!(hct_codec_traits_find(c"int4_g64_fp16_v1".as_ptr()).is_null());
            let message = text(hct_last_error());
            assert!(
                message.contains("no kernels for codec \"int4_g64_fp16_v1\"")
                    && message.contains("int4_opt_v1"),
                "{message}"
            );
            assert!(hct_codec_traits_find(std::ptr::null()).is_null());
            assert_eq!(
                text(hct_last_error()),
                "hct_codec_traits_find: codec_id is NULL"
            );
        }
        assert!(hct_codec_traits_at(hct_codec_traits_count()).is_null());
        assert!(hct_codec_traits_at(usize::MAX).is_null());
        assert!(text(hct_last_error()).contains("past the last"));
    }
}
