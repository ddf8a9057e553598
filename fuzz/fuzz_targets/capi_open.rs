//! libhct's C API over arbitrary bytes: hct_open, then every tensor's info, lookup by
//! name, checksum and the first rows decoded, as a C host would call them. Any crash,
//! panic across the FFI boundary or out-of-bounds pointer is a bug.
#![no_main]

#[path = "memfile.rs"]
mod memfile;

use hct::capi::file::*;
use hct::capi::HCT_OK;
use libfuzzer_sys::fuzz_target;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

fuzz_target!(|data: &[u8]| {
    let f = memfile::MemFile::new(data);
    let path = CString::new(f.path().as_os_str().as_bytes()).unwrap();
    let mut file = std::ptr::null_mut();
    // SAFETY: valid C string and out-pointer; every call below passes the open file.
    unsafe {
        if hct_open(path.as_ptr(), &mut file) != HCT_OK {
            assert!(file.is_null());
            return;
        }
        let n = hct_tensor_count(file);
        assert!(n >= 0);
        let _ = hct_verify(file);
        for i in 0..n {
            let mut info = std::mem::zeroed::<hct_tensor_info>();
            assert_eq!(hct_tensor_get_info(file, i, &mut info), HCT_OK);
            let payload = std::slice::from_raw_parts(info.payload, info.payload_len as usize);
            let _ = payload.iter().fold(0u8, |a, &b| a ^ b);
            let name = std::slice::from_raw_parts(info.name.cast::<u8>(), info.name_len);
            if !name.contains(&0) {
                let c = CString::new(name).unwrap();
                let mut found = -1i64;
                if hct_tensor_find(file, c.as_ptr(), &mut found) == HCT_OK {
                    // Names are unique, so the lookup finds this tensor.
                    assert_eq!(found, i);
                }
            }
            let _ = hct_tensor_verify(file, i);
            if info.row_len > 0 && info.row_len <= 4096 && info.n_rows > 0 {
                let rows = info.n_rows.min(2);
                let mut out = vec![0f32; (rows * info.row_len) as usize];
                let _ = hct_tensor_decode_rows(file, i, 0, rows, out.as_mut_ptr(), out.len() as u64);
            }
        }
        hct_close(file);
    }
});
