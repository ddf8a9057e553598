//! The container functions through their C signatures, on the spec's golden file and on
//! files written by `hct_format`'s writer, against `hct_format`'s own reader and decoders.

use super::*;
use crate::capi::{hct_last_error, HCT_ERR_INVALID_ARGUMENT, HCT_OK};
use crate::harness::{random_weight_row, Rng};
use crate::platform::Backend;
use hct_format::container::{TensorDesc, Writer};
use std::ffi::CStr;
use std::path::PathBuf;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../format-spec/tests/golden/minimal-v1.0.hct")
}

fn c_path(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn last_error() -> String {
    // SAFETY: hct_last_error returns a NUL-terminated thread-local string.
    unsafe { CStr::from_ptr(hct_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// An open file, closed on drop.
struct Open(*mut hct_file);

impl Open {
    fn new(path: &Path) -> Result<Open, (c_int, String)> {
        let mut f = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path and a writable out pointer.
        let status = unsafe { hct_open(c_path(path).as_ptr(), &mut f) };
        if status == HCT_OK {
            assert!(!f.is_null());
            Ok(Open(f))
        } else {
            assert!(f.is_null(), "a failed open leaves *out NULL");
            Err((status, last_error()))
        }
    }

    fn count(&self) -> i64 {
        // SAFETY: an open file.
        unsafe { hct_tensor_count(self.0) }
    }

    fn find(&self, name: &CStr) -> Result<i64, c_int> {
        let mut index = -1;
        // SAFETY: an open file, a C string, a writable index.
        match unsafe { hct_tensor_find(self.0, name.as_ptr(), &mut index) } {
            HCT_OK => Ok(index),
            status => Err(status),
        }
    }

    fn info(&self, index: i64) -> hct_tensor_info {
        let mut info = std::mem::MaybeUninit::<hct_tensor_info>::uninit();
        // SAFETY: an open file and a writable struct.
        let status = unsafe { hct_tensor_get_info(self.0, index, info.as_mut_ptr()) };
        assert_eq!(status, HCT_OK, "{}", last_error());
        // SAFETY: HCT_OK means the struct was written.
        unsafe { info.assume_init() }
    }

    fn decode(&self, index: i64, first_row: u64, n_rows: u64, out: &mut [f32]) -> c_int {
        // SAFETY: an open file; out holds out.len() floats.
        unsafe {
            hct_tensor_decode_rows(
                self.0,
                index,
                first_row,
                n_rows,
                out.as_mut_ptr(),
                out.len() as u64,
            )
        }
    }

    fn verify(&self, index: i64) -> c_int {
        // SAFETY: an open file.
        unsafe { hct_tensor_verify(self.0, index) }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        // SAFETY: opened by Open::new, closed once.
        unsafe { hct_close(self.0) }
    }
}

fn text(p: *const c_char) -> String {
    // SAFETY: the library's pointers are NUL-terminated and valid while the file is open.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
}

fn payload(info: &hct_tensor_info) -> &[u8] {
    // SAFETY: payload/payload_len describe bytes of the mapping, valid while it is open.
    unsafe { std::slice::from_raw_parts(info.payload, info.payload_len as usize) }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn golden_file_reads_as_the_spec_describes() {
    let f = Open::new(&golden()).unwrap();
    assert_eq!(f.count(), 2);
    let w = f.find(c"w").unwrap();
    let b = f.find(c"b").unwrap();
    assert_eq!((w, b), (0, 1));
    assert_eq!(f.find(c"x"), Err(HCT_ERR_NOT_FOUND));
    assert!(
        last_error().contains("no tensor named \"x\""),
        "{}",
        last_error()
    );

    let info = f.info(w);
    assert_eq!(text(info.name), "w");
    assert_eq!(info.name_len, 1);
    assert_eq!(text(info.codec_id), "f32");
    assert_eq!(text(info.source_dtype), "f32");
    assert_eq!(info.n_dims, 2);
    assert_eq!(info.dims, [2, 2, 0, 0, 0, 0, 0, 0]);
    assert_eq!((info.n_rows, info.row_len), (2, 2));
    assert_eq!((info.payload_offset, info.payload_len), (64, 16));
    assert_eq!(
        info.payload as usize % 64,
        0,
        "payloads are 64-byte aligned in memory"
    );
    assert!(info.traits.is_null(), "no kernels for f32");

    let mut out = [f32::NAN; 4];
    assert_eq!(f.decode(w, 0, 2, &mut out), HCT_OK);
    assert_eq!(out, [1.0, -2.0, 0.5, 0.0]);
    let mut row = [f32::NAN; 2];
    assert_eq!(f.decode(w, 1, 1, &mut row), HCT_OK);
    assert_eq!(row, [0.5, 0.0]);

    let info = f.info(b);
    assert_eq!((text(info.codec_id).as_str(), info.n_dims), ("bf16", 1));
    assert_eq!(payload(&info), [0x80, 0x3f, 0x80, 0xbf, 0x00, 0x3f]);
    let mut out = [f32::NAN; 3];
    assert_eq!(f.decode(b, 0, 1, &mut out), HCT_OK);
    assert_eq!(out, [1.0, -1.0, 0.5]);

    assert_eq!(f.verify(w), HCT_OK);
    assert_eq!(f.verify(b), HCT_OK);
    // SAFETY: an open file.
    assert_eq!(unsafe { hct_verify(f.0) }, HCT_OK);
}

#[test]
fn kernel_codecs_decode_as_the_reference_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kernels.hct");
    let mut rng = Rng::new(99);
    let mut w = Writer::create(&path).unwrap();
    // int4 codecs may not be registered in hct_format yet; the kernels know their layout.
    w.allow_unknown_codecs(true);
    // (codec, format, rows, row length): ggml rows are whole blocks, HCT int4 rows may end
    // in a partial group.
    let cases = [
        ("ggml_q4_0", WeightFormat::Q4_0, 5, 96),
        ("ggml_q4_1", WeightFormat::Q4_1, 4, 64),
        ("ggml_q8_0", WeightFormat::Q8_0, 3, 128),
        ("int4_g16_fp16_v1", WeightFormat::Int4G16, 7, 40),
        ("int4_opt_v1", WeightFormat::Int4G16, 2, 576),
        ("int4_g8_fp16_v1", WeightFormat::Int4G8, 3, 13),
        ("int4_g32_fp16_v1", WeightFormat::Int4G32, 2, 33),
    ];
    let mut payloads = Vec::new();
    for (codec, format, rows, row_len) in cases {
        let mut bytes = Vec::new();
        for _ in 0..rows {
            bytes.extend(random_weight_row(&mut rng, format, row_len, false));
        }
        let desc = TensorDesc {
            name: format!("t.{codec}"),
            shape: vec![rows as u64, row_len as u64],
            source_dtype: "f32".into(),
            codec: codec.into(),
            codec_params: Default::default(),
        };
        w.add_tensor(desc, &bytes).unwrap();
        payloads.push(bytes);
    }
    w.finish(Vec::new()).unwrap();

    let f = Open::new(&path).unwrap();
    let reference = hct_format::container::HctFile::open(&path).unwrap();
    assert_eq!(f.count(), cases.len() as i64);
    for (i, ((codec, format, rows, row_len), bytes)) in cases.iter().zip(&payloads).enumerate() {
        let i = i as i64;
        let info = f.info(i);
        assert_eq!(text(info.codec_id), *codec);
        assert_eq!(payload(&info), &bytes[..], "{codec}: zero-copy payload");
        assert!(!info.traits.is_null(), "{codec} has kernels");
        // SAFETY: non-NULL traits point into the static table.
        assert_eq!(text(unsafe { &*info.traits }.codec_id), *codec);

        let mut all = vec![f32::NAN; rows * row_len];
        assert_eq!(
            f.decode(i, 0, *rows as u64, &mut all),
            HCT_OK,
            "{}",
            last_error()
        );
        let mut expect = vec![0f32; rows * row_len];
        for (src, dst) in bytes
            .chunks_exact(format.row_bytes(*row_len).unwrap())
            .zip(expect.chunks_exact_mut(*row_len))
        {
            Backend::scalar().to_float(*format, src, dst).unwrap();
        }
        assert_eq!(bits(&all), bits(&expect), "{codec}");
        // hct_format's own decoder, where this build registers the codec, agrees bit for bit.
        if let Some(t) = reference
            .tensors()
            .iter()
            .find(|t| t.name == format!("t.{codec}"))
            .filter(|t| hct_format::codec::find(&t.codec).is_some())
        {
            let decoded = reference.decode_f32(t).unwrap();
            assert_eq!(bits(&decoded), bits(&expect), "{codec} vs hct_format");
        }

        // One row in the middle, into a larger buffer: only that row is written.
        let mut one = vec![f32::NAN; row_len + 3];
        let mid = (*rows / 2) as u64;
        assert_eq!(f.decode(i, mid, 1, &mut one), HCT_OK);
        let at = mid as usize * row_len;
        assert_eq!(bits(&one[..*row_len]), bits(&expect[at..at + row_len]));
        assert!(one[*row_len..].iter().all(|v| v.is_nan()));
    }
}

#[test]
fn bad_arguments_are_refused_with_codes_and_messages() {
    let f = Open::new(&golden()).unwrap();
    let null: *const hct_file = std::ptr::null();
    let mut out = [0f32; 8];
    // SAFETY (every call below): the library checks what it is handed before use; the
    // non-NULL pointers are valid.
    unsafe {
        assert_eq!(hct_tensor_count(null), -1);
        assert_eq!(last_error(), "hct_tensor_count: file is NULL");
        let mut index = 0i64;
        assert_eq!(
            hct_tensor_find(null, c"w".as_ptr(), &mut index),
            HCT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            hct_tensor_find(f.0, std::ptr::null(), &mut index),
            HCT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            hct_tensor_find(f.0, c"w".as_ptr(), std::ptr::null_mut()),
            HCT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(last_error(), "hct_tensor_find: index is NULL");
        assert_eq!(
            hct_tensor_get_info(f.0, 0, std::ptr::null_mut()),
            HCT_ERR_INVALID_ARGUMENT
        );
        for bad in [-1i64, 2, i64::MAX, i64::MIN] {
            let mut info = std::mem::MaybeUninit::uninit();
            assert_eq!(
                hct_tensor_get_info(f.0, bad, info.as_mut_ptr()),
                HCT_ERR_INVALID_ARGUMENT
            );
            assert!(
                last_error().contains(&format!("tensor index {bad} is out of range"))
                    && last_error().contains("minimal-v1.0.hct has 2 tensors"),
                "{}",
                last_error()
            );
            assert_eq!(hct_tensor_verify(f.0, bad), HCT_ERR_INVALID_ARGUMENT);
            assert_eq!(f.decode(bad, 0, 1, &mut out), HCT_ERR_INVALID_ARGUMENT);
        }
        assert_eq!(hct_verify(null), HCT_ERR_INVALID_ARGUMENT);
        assert_eq!(hct_tensor_verify(null, 0), HCT_ERR_INVALID_ARGUMENT);
        hct_close(std::ptr::null_mut());

        // Row ranges and output sizes.
        assert_eq!(f.decode(0, 1, 2, &mut out), HCT_ERR_INVALID_ARGUMENT);
        assert!(
            last_error().contains("tensor \"w\"") && last_error().contains("has 2 rows"),
            "{}",
            last_error()
        );
        assert_eq!(f.decode(0, u64::MAX, 2, &mut out), HCT_ERR_INVALID_ARGUMENT);
        assert_eq!(f.decode(0, 0, 2, &mut out[..3]), HCT_ERR_INVALID_ARGUMENT);
        assert!(
            last_error().contains("out holds 3 floats"),
            "{}",
            last_error()
        );
        assert_eq!(
            f.decode(0, 0, 0, &mut []),
            HCT_OK,
            "zero rows are nothing to do"
        );
        assert_eq!(
            hct_tensor_decode_rows(f.0, 0, 0, 1, std::ptr::null_mut(), 2),
            HCT_ERR_INVALID_ARGUMENT
        );
        let misaligned = out.as_mut_ptr().cast::<u8>().add(1).cast::<f32>();
        assert_eq!(
            hct_tensor_decode_rows(f.0, 0, 0, 1, misaligned, 2),
            HCT_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("not aligned"), "{}", last_error());
    }
}

#[test]
fn bad_files_are_refused_with_the_reader_s_categories() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.hct");
    let (status, message) = Open::new(&missing).err().unwrap();
    assert_eq!(status, HCT_ERR_IO);
    assert!(
        message.starts_with("hct_open: ") && message.contains("missing.hct"),
        "{message}"
    );

    let not_hct = dir.path().join("model.gguf");
    std::fs::write(
        &not_hct,
        b"GGUF\x03\0\0\0 and then some bytes to pass 64 .........",
    )
    .unwrap();
    let (status, message) = Open::new(&not_hct).err().unwrap();
    assert_eq!(status, HCT_ERR_INVALID_FILE);
    assert!(message.contains("not an HCT file"), "{message}");

    // A flipped header byte: the header checksum, checked at open.
    let mut bytes = std::fs::read(golden()).unwrap();
    bytes[200] ^= 1;
    let bad_header = dir.path().join("bad-header.hct");
    std::fs::write(&bad_header, &bytes).unwrap();
    assert_eq!(Open::new(&bad_header).err().unwrap().0, HCT_ERR_CHECKSUM);

    // A flipped payload byte of `b`: opens, `w` verifies, `b` does not.
    let mut bytes = std::fs::read(golden()).unwrap();
    bytes[128] ^= 0x40;
    let bad_payload = dir.path().join("bad-payload.hct");
    std::fs::write(&bad_payload, &bytes).unwrap();
    let f = Open::new(&bad_payload).unwrap();
    assert_eq!(f.verify(0), HCT_OK);
    assert_eq!(f.verify(1), HCT_ERR_CHECKSUM);
    let message = last_error();
    assert!(
        message.starts_with("hct_tensor_verify: ")
            && message.contains("bad-payload.hct")
            && message.contains("\"b\""),
        "{message}"
    );
    // SAFETY: an open file.
    assert_eq!(unsafe { hct_verify(f.0) }, HCT_ERR_CHECKSUM);

    // SAFETY: NULL path and NULL out are checked.
    unsafe {
        let mut out = std::ptr::null_mut();
        assert_eq!(
            hct_open(std::ptr::null(), &mut out),
            HCT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            hct_open(c_path(&golden()).as_ptr(), std::ptr::null_mut()),
            HCT_ERR_INVALID_ARGUMENT
        );
    }
}

#[test]
fn codecs_without_decoder_or_with_wrong_lengths_are_refused_on_decode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.hct");
    let mut w = Writer::create(&path).unwrap();
    w.allow_unknown_codecs(true);
    let tensor = |name: &str, codec: &str, shape: Vec<u64>| TensorDesc {
        name: name.into(),
        shape,
        source_dtype: "f32".into(),
        codec: codec.into(),
        codec_params: Default::default(),
    };
    // A codec from the future: listed, verified, copied, but not decoded.
    w.add_tensor(
        tensor("future", "int4_g64_fp16_v9", vec![2, 64]),
        &[7u8; 80],
    )
    .unwrap();
    // A kernel codec whose payload is one byte short of 2 rows of 16 (2 × 12 bytes). The
    // writer cannot check lengths of codecs hct_format does not know.
    if hct_format::codec::find("int4_g16_fp16_v1").is_none() {
        w.add_tensor(tensor("short", "int4_g16_fp16_v1", vec![2, 16]), &[0u8; 23])
            .unwrap();
    }
    // A name holding NUL, which the spec allows.
    w.add_tensor(tensor("a\0b", "f32", vec![1]), &1f32.to_le_bytes())
        .unwrap();
    w.finish(Vec::new()).unwrap();

    let f = Open::new(&path).unwrap();
    let future = f.info(0);
    assert_eq!(text(future.codec_id), "int4_g64_fp16_v9");
    assert!(future.traits.is_null());
    assert_eq!(payload(&future), [7u8; 80]);
    assert_eq!(f.verify(0), HCT_OK);
    let mut out = vec![0f32; 128];
    assert_eq!(f.decode(0, 0, 2, &mut out), HCT_ERR_UNSUPPORTED);
    assert!(
        last_error().contains("future") && last_error().contains("int4_g64_fp16_v9"),
        "{}",
        last_error()
    );

    let last = f.count() - 1;
    if last == 2 {
        assert_eq!(f.decode(1, 0, 1, &mut out), HCT_ERR_INVALID_FILE);
        assert!(
            last_error().contains("needs a payload of 24 bytes, the file has 23"),
            "{}",
            last_error()
        );
    }
    let named = f.info(last);
    assert_eq!(named.name_len, 3);
    // SAFETY: name points at name_len bytes and a NUL.
    let name = unsafe { std::slice::from_raw_parts(named.name.cast::<u8>(), 4) };
    assert_eq!(name, b"a\0b\0");
    assert_eq!(f.find(c"a"), Err(HCT_ERR_NOT_FOUND));
}
