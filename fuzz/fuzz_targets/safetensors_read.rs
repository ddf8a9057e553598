//! Arbitrary bytes as a safetensors file, opened by path and mapped like a real checkpoint:
//! a typed error or a checkpoint whose every tensor lies in bounds with the length its
//! dtype and shape require. Any panic is a bug.
#![no_main]

#[path = "memfile.rs"]
mod memfile;

use hct_format::safetensors_io::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = memfile::MemFile::new(data);
    let Ok(c) = Checkpoint::open(f.path()) else {
        return;
    };
    for t in c.tensors() {
        let bytes = c.data(t);
        let codec = hct_format::codec::find(t.codec_id()).expect("carried dtypes have codecs");
        let expected = hct_format::codec::payload_len(codec, &t.shape).expect("shape checked");
        assert_eq!(bytes.len() as u64, expected, "tensor {:?}", t.name);
        c.release(t);
    }
    let _ = c.metadata().len() + c.side_files().len();
});
