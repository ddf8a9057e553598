//! GGUF (v2, v3): a zero-copy reader over mmap and a streaming writer. See DESIGN.md for
//! why no crate was fit.
