//! The C ABI of libhct, declared for C in `include/hct.h` (generated from this module by
//! cbindgen; `tests/c_header.rs` fails when the two disagree).
//!
//! Conventions every function follows:
//! - Fallible calls return an `int` status (`HCT_OK` or one of the `HCT_ERR_*` codes), or a
//!   pointer that is NULL on failure, or a count that is −1 on failure. After a failure,
//!   [`hct_last_error`] gives a message naming the function and, where there is one, the
//!   file and the tensor. Successful calls leave the message alone.
//! - Nothing aborts the host: every pointer is checked for NULL (and alignment where the
//!   type needs it), every index and range against the file, every enum-like integer
//!   against its constants, and a panic inside the library is caught and reported as
//!   `HCT_ERR_INTERNAL`. What cannot be checked is left to the caller: a non-NULL pointer to
//!   too little memory, a `hct_file` used after `hct_close`.
//! - A `hct_file` is immutable after `hct_open`, so any number of threads may use one
//!   concurrently; the last-error message is per thread.
//!
//! Split by topic: [`codec`] (the traits records), [`file`] (containers); status codes,
//! errors, version and ISA queries live here.

pub mod codec;
pub mod file;

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::platform::{active, Isa};

/// Success.
pub const HCT_OK: c_int = 0;
/// A NULL or misaligned pointer, an index or row range outside the tensor, an output buffer
/// too small, or an integer that is none of the constants it must be.
pub const HCT_ERR_INVALID_ARGUMENT: c_int = 1;
/// The file could not be opened, sized or mapped.
pub const HCT_ERR_IO: c_int = 2;
/// The file breaks the HCT spec (bad magic, bad header, misplaced or mis-sized payload, …).
pub const HCT_ERR_INVALID_FILE: c_int = 3;
/// The file is well formed but a checksum does not match its bytes.
pub const HCT_ERR_CHECKSUM: c_int = 4;
/// Well formed, but uses something this build does not implement (a spec major version, a
/// required feature, a codec id).
pub const HCT_ERR_UNSUPPORTED: c_int = 5;
/// No tensor or codec of that name.
pub const HCT_ERR_NOT_FOUND: c_int = 6;
/// A bug in libhct (a caught panic); the message says where.
pub const HCT_ERR_INTERNAL: c_int = 7;

/// Instruction-set ids of `hct_active_isa`, `hct_isa_name` and `hct_isa_supported`.
pub const HCT_ISA_SCALAR: c_int = 0;
pub const HCT_ISA_AVX2: c_int = 1;
pub const HCT_ISA_NEON: c_int = 2;

/// The version of this header and library: `hct_version()` returns the same numbers at run
/// time, so a program can check it runs against the library it was compiled for.
pub const HCT_LIBRARY_VERSION_MAJOR: u32 = 0;
pub const HCT_LIBRARY_VERSION_MINOR: u32 = 1;
pub const HCT_LIBRARY_VERSION_PATCH: u32 = 0;
/// The version of the HCT specification (format-spec/SPEC.md) this library reads.
pub const HCT_SPEC_VERSION_MAJOR: u32 = 1;
pub const HCT_SPEC_VERSION_MINOR: u32 = 0;

/// Most dimensions a tensor may have (SPEC.md §8): the length of `hct_tensor_info.dims`.
pub const HCT_MAX_DIMS: usize = 8;

/// Library and specification versions, from `hct_version`.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct hct_version_info {
    pub library_major: u32,
    pub library_minor: u32,
    pub library_patch: u32,
    /// Files of this spec major version, and any minor version up to `spec_minor`, are read.
    pub spec_major: u32,
    pub spec_minor: u32,
    /// "libhct 0.1.0 (HCT spec 1.0)": static, never freed.
    pub text: *const c_char,
}

/// The library's version and the spec version it implements. Never fails.
#[no_mangle]
pub extern "C" fn hct_version() -> hct_version_info {
    static TEXT: OnceLock<CString> = OnceLock::new();
    let text = TEXT.get_or_init(|| {
        CString::new(format!(
            "libhct {} (HCT spec {}.{})",
            env!("CARGO_PKG_VERSION"),
            HCT_SPEC_VERSION_MAJOR,
            HCT_SPEC_VERSION_MINOR
        ))
        .expect("no NUL in a version string")
    });
    hct_version_info {
        library_major: HCT_LIBRARY_VERSION_MAJOR,
        library_minor: HCT_LIBRARY_VERSION_MINOR,
        library_patch: HCT_LIBRARY_VERSION_PATCH,
        spec_major: HCT_SPEC_VERSION_MAJOR,
        spec_minor: HCT_SPEC_VERSION_MINOR,
        text: text.as_ptr(),
    }
}

/// The message of the last failed call on this thread ("" if none has failed). The pointer
/// stays valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn hct_last_error() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// The name of a status code ("HCT_OK", "HCT_ERR_IO", …), or NULL for an integer that is
/// not one.
#[no_mangle]
pub extern "C" fn hct_status_name(status: c_int) -> *const c_char {
    let name: &'static CStr = match status {
        HCT_OK => c"HCT_OK",
        HCT_ERR_INVALID_ARGUMENT => c"HCT_ERR_INVALID_ARGUMENT",
        HCT_ERR_IO => c"HCT_ERR_IO",
        HCT_ERR_INVALID_FILE => c"HCT_ERR_INVALID_FILE",
        HCT_ERR_CHECKSUM => c"HCT_ERR_CHECKSUM",
        HCT_ERR_UNSUPPORTED => c"HCT_ERR_UNSUPPORTED",
        HCT_ERR_NOT_FOUND => c"HCT_ERR_NOT_FOUND",
        HCT_ERR_INTERNAL => c"HCT_ERR_INTERNAL",
        _ => return std::ptr::null(),
    };
    name.as_ptr()
}

/// The instruction set every kernel of this process runs (`HCT_ISA_*`): the best the CPU
/// supports, or the one the environment variable `HCT_ISA` (scalar, avx2, neon, auto) asks
/// for if the CPU supports it. Chosen once, on the first kernel call or query; never fails.
#[no_mangle]
pub extern "C" fn hct_active_isa() -> c_int {
    isa_id(active().isa())
}

/// "scalar", "avx2" or "neon"; NULL (and `HCT_ERR_INVALID_ARGUMENT` as the last error) for
/// an integer that is not an `HCT_ISA_*` id.
#[no_mangle]
pub extern "C" fn hct_isa_name(isa: c_int) -> *const c_char {
    let name: &'static CStr = match isa_from_id(isa) {
        Some(Isa::Scalar) => c"scalar",
        Some(Isa::Avx2) => c"avx2",
        Some(Isa::Neon) => c"neon",
        None => {
            set_error(
                HCT_ERR_INVALID_ARGUMENT,
                format!("hct_isa_name: {isa} is not an HCT_ISA_* id"),
            );
            return std::ptr::null();
        }
    };
    name.as_ptr()
}

/// 1 if this CPU and build can run `isa`'s kernels, 0 if not, −1 (with the last error set)
/// for an integer that is not an `HCT_ISA_*` id.
#[no_mangle]
pub extern "C" fn hct_isa_supported(isa: c_int) -> c_int {
    match isa_from_id(isa) {
        Some(isa) => c_int::from(isa.is_supported()),
        None => {
            set_error(
                HCT_ERR_INVALID_ARGUMENT,
                format!("hct_isa_supported: {isa} is not an HCT_ISA_* id"),
            );
            -1
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors and the panic guard, shared by every entry point.

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Why a call failed: its status code and the message `hct_last_error` will give.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: c_int,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: c_int, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Failure {
        Failure::new(HCT_ERR_INVALID_ARGUMENT, message)
    }
}

pub(crate) fn set_error(status: c_int, message: String) {
    debug_assert_ne!(status, HCT_OK);
    // A message can quote a tensor name, and names may hold NUL (SPEC.md allows any UTF-8):
    // shown escaped so the C string is not cut short.
    let message = CString::new(message.replace('\0', "\\0")).expect("NULs were escaped");
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// Runs the body of the entry point `function`, turning an error or a panic into a status
/// code and the thread's last-error message.
pub(crate) fn guard(function: &str, body: impl FnOnce() -> Result<(), Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => HCT_OK,
        Ok(Err(failure)) => {
            set_error(failure.status, format!("{function}: {}", failure.message));
            failure.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            set_error(
                HCT_ERR_INTERNAL,
                format!("{function}: internal error in libhct (please report): {what}"),
            );
            HCT_ERR_INTERNAL
        }
    }
}

/// A NUL-terminated C string argument, as bytes (NULL is an invalid argument).
///
/// # Safety
/// A non-NULL `s` must point at a NUL-terminated string.
pub(crate) unsafe fn c_str_arg<'a>(s: *const c_char, what: &str) -> Result<&'a [u8], Failure> {
    if s.is_null() {
        return Err(Failure::invalid_argument(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and (caller contract) NUL-terminated.
    Ok(unsafe { CStr::from_ptr(s) }.to_bytes())
}

fn isa_id(isa: Isa) -> c_int {
    match isa {
        Isa::Scalar => HCT_ISA_SCALAR,
        Isa::Avx2 => HCT_ISA_AVX2,
        Isa::Neon => HCT_ISA_NEON,
    }
}

fn isa_from_id(id: c_int) -> Option<Isa> {
    Isa::ALL.into_iter().find(|&isa| isa_id(isa) == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c_string(p: *const c_char) -> String {
        assert!(!p.is_null());
        // SAFETY: every pointer tested here comes from the library's own static strings.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
    }

    #[test]
    fn header_versions_are_the_crate_and_spec_versions() {
        let cargo = |v: &str| v.parse::<u32>().unwrap();
        assert_eq!(
            (
                HCT_LIBRARY_VERSION_MAJOR,
                HCT_LIBRARY_VERSION_MINOR,
                HCT_LIBRARY_VERSION_PATCH
            ),
            (
                cargo(env!("CARGO_PKG_VERSION_MAJOR")),
                cargo(env!("CARGO_PKG_VERSION_MINOR")),
                cargo(env!("CARGO_PKG_VERSION_PATCH"))
            ),
            "bump the HCT_LIBRARY_VERSION_* constants with the crate version"
        );
        use hct_format::container::{SPEC_MAJOR, SPEC_MINOR};
        assert_eq!(
            (HCT_SPEC_VERSION_MAJOR, HCT_SPEC_VERSION_MINOR),
            (u32::from(SPEC_MAJOR), u32::from(SPEC_MINOR))
        );
        assert_eq!(HCT_MAX_DIMS as u32, hct_format::container::limits::MAX_DIMS);
        let v = hct_version();
        assert_eq!(
            (v.library_major, v.library_minor, v.library_patch),
            (0, 1, 0)
        );
        assert_eq!(
            c_string(v.text),
            format!(
                "libhct {} (HCT spec {SPEC_MAJOR}.{SPEC_MINOR})",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn status_and_isa_integers_are_checked() {
        assert_eq!(c_string(hct_status_name(HCT_OK)), "HCT_OK");
        assert_eq!(
            c_string(hct_status_name(HCT_ERR_CHECKSUM)),
            "HCT_ERR_CHECKSUM"
        );
        for bad in [-1, 8, c_int::MAX, c_int::MIN] {
            assert!(hct_status_name(bad).is_null(), "{bad}");
        }
        assert_eq!(c_string(hct_isa_name(HCT_ISA_SCALAR)), "scalar");
        assert_eq!(hct_isa_supported(HCT_ISA_SCALAR), 1);
        assert_eq!(
            hct_isa_supported(hct_active_isa()),
            1,
            "the active ISA is supported"
        );
        assert!(hct_isa_name(3).is_null());
        assert!(c_string(hct_last_error()).contains("3 is not an HCT_ISA_* id"));
        assert_eq!(hct_isa_supported(-7), -1);
        assert!(c_string(hct_last_error()).starts_with("hct_isa_supported: -7"));
    }

    #[test]
    fn guard_reports_errors_and_panics_as_codes() {
        assert_eq!(guard("f", || Ok(())), HCT_OK);
        let status = guard("hct_example", || {
            Err(Failure::new(HCT_ERR_NOT_FOUND, "no tensor \"a\0b\""))
        });
        assert_eq!(status, HCT_ERR_NOT_FOUND);
        assert_eq!(
            c_string(hct_last_error()),
            "hct_example: no tensor \"a\\0b\""
        );
        let status = guard("hct_boom", || panic!("kernel bug {}", 42));
        assert_eq!(status, HCT_ERR_INTERNAL);
        let message = c_string(hct_last_error());
        assert!(
            message.starts_with("hct_boom: internal error") && message.ends_with("kernel bug 42"),
            "{message}"
        );
        // The message is per thread.
        std::thread::spawn(|| assert_eq!(c_string(hct_last_error()), ""))
            .join()
            .unwrap();
    }
}
