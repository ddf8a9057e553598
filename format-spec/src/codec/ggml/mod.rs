//! ggml-native codecs (`ggml_q4_0`, `ggml_q4_k`, …): ggml's block layouts carried byte for
//! byte, with scalar reference dequantization following ggml's (SPEC.md §7.3).

use super::Codec;

/// Every ggml-native codec of this build.
pub fn all() -> Vec<&'static dyn Codec> {
    Vec::new()
}
