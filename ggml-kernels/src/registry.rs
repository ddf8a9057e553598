//! The one list of codec ids libhct runs, each with the weight layout whose kernels run it.
//!
//! Everything per codec derives from this list: the per-ISA tables of `extern "C"` entry
//! points ([`crate::traits`]), the C API's records ([`crate::capi`]), the plugin's
//! registration with ggml and its call counters ([`crate::ggml_ext`]: every codec here that
//! `hct-format` says is a GGUF extension type), and the test harness. A layout's geometry
//! comes from `hct-format` ([`crate::layout`]), its kernels from [`crate::kernels`].
//!
//! Adding a codec whose layout exists is one line below. Adding a layout is one entry in
//! [`crate::layout`]'s `weight_formats!` (its portable kernels) and, when they are written,
//! overrides in the ISA modules.

use crate::layout::WeightFormat;

/// Expands `$callback!($($args)*; id => Layout, …)` over the registry.
macro_rules! for_each_codec {
    ($callback:ident!($($args:tt)*)) => {
        $callback! {$($args)*;
            ggml_q4_0 => Q4_0,
            ggml_q4_1 => Q4_1,
            ggml_q8_0 => Q8_0,
            int4_g8_fp16_v1 => Int4G8,
            int4_g16_fp16_v1 => Int4G16,
            int4_g32_fp16_v1 => Int4G32,
            int4_opt_v1 => Int4G16,
            ggml_iq4_nl => Iq4Nl,
            hct_v3_r25 => HctV3K16, hct_v3_r50 => HctV3K32, hct_v3_r70 => HctV3K45, hct_v3_r90 => HctV3K58, hct_v3_r98 => HctV3K63,
            hct_v3m_r70_h4_v1 => HctV3mK45H4, hct_v3m_r90_h4_v1 => HctV3mK58H4,
            seedlm_c8p3_s16_v1 => SeedLmS16,
            seedlm_c8p3_s12_v1 => SeedLmS12,
            seedlm_c8p3_s8_v1 => SeedLmS8,
            vq8_r2x256_g32_v1 => Vq8R2x256G32,
            nl4_sh64_v1 => Nl4Sh64,
            nl5_sh64_v1 => Nl5Sh64, nl6_sh64_v1 => Nl6Sh64,
        }
    };
}
pub(crate) use for_each_codec;

macro_rules! codec_list {
    (; $($id:ident => $format:ident,)*) => {
        [$((stringify!($id), WeightFormat::$format),)*]
    };
}

macro_rules! codec_index {
    (; $($id:ident => $format:ident,)*) => {
        /// A codec's position in [`CODECS`], by name, for code generated per codec.
        #[allow(non_camel_case_types, dead_code)]
        #[derive(Debug, Clone, Copy)]
        #[repr(usize)]
        pub(crate) enum CodecIndex {
            $($id,)*
        }
    };
}

/// Every codec id with kernels and its layout, in registry order.
pub const CODECS: &[(&str, WeightFormat)] = &for_each_codec!(codec_list!());

/// How many codecs have kernels.
pub const N_CODECS: usize = CODECS.len();

for_each_codec!(codec_index!());

/// The layout whose kernels run `codec_id`.
pub fn format_of(codec_id: &str) -> Option<WeightFormat> {
    CODECS
        .iter()
        .find(|(id, _)| *id == codec_id)
        .map(|&(_, format)| format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hct_format::codec;

    /// The registry and the reference crate state one geometry for every codec.
    #[test]
    fn every_codec_with_kernels_is_a_reference_codec_of_the_same_geometry() {
        for &(id, format) in CODECS {
            let c = codec::find(id).unwrap_or_else(|| panic!("{id}: not a codec of hct-format"));
            let layout = c
                .block_layout()
                .unwrap_or_else(|| panic!("{id}: hct-format gives no block layout"));
            assert_eq!(layout, format.spec().layout, "{id}");
            assert!(c.can_decode(), "{id}: the reference decodes it");
        }
        let mut ids: Vec<&str> = CODECS.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), N_CODECS, "each codec once");
    }

    /// A codec that a plugin GGUF can carry as an extension type must have kernels here,
    /// or a file `hct convert --gguf-mode plugin` writes could not run.
    #[test]
    fn every_gguf_extension_codec_has_kernels() {
        for id in hct_format::gguf::extension::extension_codecs() {
            assert!(
                format_of(id).is_some(),
                "{id}: an extension type without kernels"
            );
        }
    }

    /// The kernels' portable decoders are written for speed of reading, not shared with
    /// `hct-format`'s reference decoders; this holds the two copies equal, bit for bit, on
    /// every input class the harness makes (edge and special scales, partial int4 groups).
    #[test]
    fn portable_to_float_equals_the_reference_crates_decoder() {
        use crate::harness::{random_weight_row, Rng};
        let mut rng = Rng::new(0x5eed);
        for &(id, format) in CODECS {
            let reference = codec::find(id).unwrap();
            let lengths = [1usize, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 576];
            for &n in lengths
                .iter()
                .filter(|&&n| reference.row_bytes(n as u64).is_ok())
            {
                for specials in [false, true] {
                    let x = random_weight_row(&mut rng, format, n, specials);
                    let mut ours = vec![0f32; n];
                    crate::platform::Backend::scalar()
                        .to_float(format, &x, &mut ours)
                        .unwrap();
                    let mut theirs = vec![0f32; n];
                    reference.decode_row(&x, &mut theirs).unwrap();
                    for (j, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                        assert!(
                            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                            "{id}, row of {n}, element {j}: kernels {a:e}, reference {b:e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_layout_runs_some_codec() {
        for &format in WeightFormat::ALL {
            assert!(
                CODECS.iter().any(|&(_, f)| f == format),
                "{format:?} has no codec"
            );
        }
    }
}
