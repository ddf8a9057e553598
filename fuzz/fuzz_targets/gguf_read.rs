//! Any byte string must parse to a GGUF file or a typed error: no panic, no unbounded
//! allocation. An accepted file hands out only in-bounds tensor data, and when it is laid
//! out as ggml writes files, our encoder reproduces its header byte for byte.
#![no_main]

use hct_format::gguf::{encode_header, GgufFile, GgufTensorInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    for (i, t) in f.tensors().iter().enumerate() {
        assert_eq!(f.tensor_data(i).len() as u64, t.size);
        assert_eq!(t.info.byte_size(), Some(t.size));
    }
    if f.is_canonical_layout() {
        let infos: Vec<GgufTensorInfo> = f.tensors().iter().map(|t| t.info.clone()).collect();
        let header = encode_header(f.version(), f.metadata(), &infos)
            .expect("the writer accepts what the reader accepted");
        assert!(
            header[..] == data[..f.data_offset() as usize],
            "re-encoded header differs from an accepted canonical file"
        );
    }
});
