//! HCT's int4 codecs (SPEC.md §7.4): `int4_g8_fp16_v1`, `int4_g16_fp16_v1`,
//! `int4_g32_fp16_v1` and `int4_opt_v1`.

use super::Codec;

/// Every int4 codec of this build.
pub fn all() -> Vec<&'static dyn Codec> {
    Vec::new()
}
