//! libhct's C API and entropy-coded tensors (SPEC.md §6.3): the file opens and its checksums
//! verify (they cover the stored bytes), but a coded tensor has no zero-copy payload for
//! the kernels, so describing or decoding it is refused with `HCT_ERR_UNSUPPORTED`, never
//! misread; a plain tensor in the same file still decodes.

use hct::capi::file::{
    hct_close, hct_open, hct_tensor_decode_rows, hct_tensor_get_info, hct_tensor_info, hct_verify,
};
use hct::capi::{HCT_ERR_UNSUPPORTED, HCT_OK};
use hct_format::{TensorDesc, Writer};
use std::ffi::CString;

#[test]
fn coded_tensors_are_refused_plain_ones_decode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.hct");
    let mut w = Writer::create(&path).unwrap();
    let desc = |name: &str| TensorDesc {
        name: name.into(),
        shape: vec![64, 64],
        source_dtype: "f32".into(),
        codec: "f32".into(),
        codec_params: vec![],
    };
    let zeros = vec![0u8; 64 * 64 * 4];
    assert!(w.add_tensor_entropy(desc("coded"), &zeros, 3).unwrap());
    w.add_tensor(desc("plain"), &zeros).unwrap();
    w.finish(vec![]).unwrap();

    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    let mut f = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated path and out pointer; the file is closed below.
    unsafe {
        assert_eq!(hct_open(cpath.as_ptr(), &mut f), HCT_OK);
        assert_eq!(hct_verify(f), HCT_OK);
        let mut info = std::mem::zeroed::<hct_tensor_info>();
        assert_eq!(hct_tensor_get_info(f, 0, &mut info), HCT_ERR_UNSUPPORTED);
        let mut out = vec![1f32; 64];
        assert_eq!(
            hct_tensor_decode_rows(f, 0, 0, 1, out.as_mut_ptr(), 64),
            HCT_ERR_UNSUPPORTED
        );
        assert_eq!(hct_tensor_get_info(f, 1, &mut info), HCT_OK);
        assert_eq!(
            hct_tensor_decode_rows(f, 1, 0, 1, out.as_mut_ptr(), 64),
            HCT_OK
        );
        assert!(out.iter().all(|&x| x == 0.0));
        hct_close(f);
    }
}
