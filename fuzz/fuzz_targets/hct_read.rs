//! Parse + validate arbitrary bytes as an HCT container, then touch every tensor the way a
//! loader would (payload slice, checksum, first row decoded). Any panic is a bug.
#![no_main]

use hct_format::Container;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(c) = Container::from_bytes(data, "fuzz.hct") else { return };
    let _ = c.validate();
    let _ = c.verify();
    for t in c.tensors() {
        let _ = c.payload(t);
        let row_len = t.shape.last().copied().unwrap_or(1);
        // Decode one row when it is small: enough to exercise every codec's bounds checks
        // without letting a claimed shape allocate gigabytes.
        if c.validate().is_ok() && row_len > 0 && row_len <= 4096 {
            let mut row = vec![0f32; row_len as usize];
            let _ = c.decode_rows(t, 0, &mut row);
        }
    }
});
