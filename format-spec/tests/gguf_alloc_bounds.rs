//! Absurd counts and lengths are refused before they size an allocation: measured with a
//! global allocator that records the largest single request while a hostile file parses.
//! (A test binary of its own, so no other test's allocations are counted.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use hct_format::gguf::{GgufError, GgufFile};

struct LargestRequest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the wrapper only
// records sizes.
unsafe impl GlobalAlloc for LargestRequest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: LargestRequest = LargestRequest;

/// Largest single allocation made while parsing `bytes` (which must be refused).
fn largest_allocation_while_refusing(bytes: Vec<u8>) -> usize {
    LARGEST.store(0, Ordering::Relaxed);
    let result = GgufFile::from_bytes(bytes);
    let largest = LARGEST.load(Ordering::Relaxed);
    match result {
        Ok(_) => panic!("hostile file accepted"),
        Err(GgufError::CountTooLarge { .. }) | Err(GgufError::StringPastEnd { .. }) => largest,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(n_tensors.to_le_bytes());
    b.extend(n_kv.to_le_bytes());
    b
}

fn key(b: &mut Vec<u8>, k: &str) {
    b.extend((k.len() as u64).to_le_bytes());
    b.extend(k.as_bytes());
}

#[test]
fn absurd_counts_allocate_nothing_large() {
    const BOUND: usize = 1 << 20;
    let fixture =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf/all_types.gguf"))
            .unwrap();
    // The measurement itself works: the intact file's 300-token array is one allocation
    // of 300 string handles.
    let copy = fixture.clone();
    LARGEST.store(0, Ordering::Relaxed);
    GgufFile::from_bytes(copy).unwrap();
    assert!(LARGEST.load(Ordering::Relaxed) >= 300 * std::mem::size_of::<Vec<u8>>());

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    let mut b = fixture.clone();
    b[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    cases.push(("tensor count 2^60", b));

    let mut b = fixture.clone();
    b[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
    cases.push(("key/value count 2^60", b));

    for (elem, name) in [(8u32, "strings"), (9, "arrays"), (12, "f64"), (0, "u8")] {
        let mut b = header(0, 1);
        key(&mut b, "k");
        b.extend(9u32.to_le_bytes());
        b.extend(elem.to_le_bytes());
        b.extend((1u64 << 60).to_le_bytes());
        b.extend([0u8; 64]);
        cases.push((name, b));
    }

    let mut b = header(0, 1);
    key(&mut b, "k");
    b.extend(8u32.to_le_bytes());
    b.extend((1u64 << 60).to_le_bytes());
    cases.push(("string length 2^60", b));

    let mut b = header(1, 0);
    b.extend((1u64 << 60).to_le_bytes());
    b.extend([0u8; 64]);
    cases.push(("tensor name length 2^60", b));

    for (what, bytes) in cases {
        let largest = largest_allocation_while_refusing(bytes);
        assert!(
            largest < BOUND,
            "{what}: largest allocation {largest} bytes"
        );
    }
}
