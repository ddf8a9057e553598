//! The spec's numeric limits (SPEC.md §8). A reader refuses a file that exceeds any of them
//! before allocating by the offending field; a writer refuses to produce one.

/// Largest header, in bytes. Real headers are dominated by tokenizer arrays: a 256k-token
/// vocabulary with merges is about 20 MB, so 1 GiB leaves room while bounding memory.
pub const MAX_HEADER_LEN: u64 = 1 << 30;
/// Longest metadata key, in bytes.
pub const MAX_KEY_LEN: u64 = 65_535;
/// Longest tensor name, in bytes. (GGUF's own limit is 64; Hugging Face names can be longer.)
pub const MAX_TENSOR_NAME_LEN: u64 = 4_096;
/// Longest codec id or source dtype, in bytes.
pub const MAX_IDENTIFIER_LEN: u64 = 64;
/// Most dimensions a tensor may have.
pub const MAX_DIMS: u32 = 8;
/// Deepest nesting of arrays inside a metadata value (an array of arrays is depth 2).
pub const MAX_ARRAY_NESTING: u32 = 8;
/// Most tensors in one file.
pub const MAX_TENSORS: u64 = 1 << 20;
/// Most metadata entries in one file, and most codec parameters per tensor.
pub const MAX_METADATA_ENTRIES: u64 = 1 << 20;
