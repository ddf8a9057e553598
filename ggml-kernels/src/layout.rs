//! Block layouts the kernels read, declared once, and the argument checks every backend
//! shares (so an AVX2 kernel and the reference refuse exactly the same calls).
//!
//! All layouts are little-endian and blocks lie back to back along a row.
//!
//! | format | elems | bytes | fields (in order) | element value |
//! |---|---|---|---|---|
//! | ggml Q4_0 | 32 | 18 | fp16 d, 16 B nibbles | (q − 8) · d |
//! | ggml Q4_1 | 32 | 20 | fp16 d, fp16 m, 16 B nibbles | q · d + m |
//! | ggml Q8_0 | 32 | 34 | fp16 d, 32 × i8 | q · d |
//! | ggml Q8_1 | 32 | 36 | fp16 d, fp16 s = d·Σq, 32 × i8 | q · d |
//! | `int4_gN_fp16_v1`, N ∈ {8, 16, 32} | N | 4 + N/2 | fp16 d, fp16 m, N/2 B nibbles | q · d + m |
//!
//! Nibble order (every 4-bit layout here): element j < half sits in the low nibble of
//! byte j, element j + half in the high nibble of byte j, half = elements / 2. `q · d + m`
//! is an f32 multiply then an f32 add (two roundings, never a fused multiply-add).
//!
//! `int4_g32_fp16_v1` is byte-identical to Q4_1. `int4_opt_v1` stores the g16 layout (only
//! its encoder differs), so it uses g16's kernels. HCT int4 rows may end in a partial group
//! stored as a whole block whose pad positions hold q = 0 and are never decoded: a row of L
//! elements has ceil(L / N) blocks.

use std::fmt;

use hct_format::codec::BlockLayout;

/// Elements per block of every ggml type here and of both activation formats.
pub const QK: usize = 32;

pub const Q4_0_BLOCK_BYTES: usize = WeightFormat::Q4_0.block_bytes();
pub const Q4_1_BLOCK_BYTES: usize = WeightFormat::Q4_1.block_bytes();
pub const Q8_0_BLOCK_BYTES: usize = WeightFormat::Q8_0.block_bytes();
pub const Q8_1_BLOCK_BYTES: usize = ActivationFormat::Q8_1.block_bytes();

/// Bytes of one `int4_gN_fp16_v1` block.
pub const fn int4_block_bytes(group_len: usize) -> usize {
    hct_format::codec::int4::block_layout(group_len).bytes as usize
}

// The sizes ggml's `ggml-common.h` asserts for its structs, and HCT's SPEC.md for its own:
// the geometry comes from `hct-format`, and these catch a change there.
const _: () = assert!(Q4_0_BLOCK_BYTES == 18);
const _: () = assert!(Q4_1_BLOCK_BYTES == 20);
const _: () = assert!(Q8_0_BLOCK_BYTES == 34);
const _: () = assert!(Q8_1_BLOCK_BYTES == 36);
const _: () = assert!(int4_block_bytes(8) == 8);
const _: () = assert!(int4_block_bytes(16) == 12);
const _: () = assert!(int4_block_bytes(32) == Q4_1_BLOCK_BYTES);

/// The block geometry of a ggml type, by ggml's name, from `hct-format`'s type table.
const fn ggml(name: &str) -> BlockLayout {
    match hct_format::ggml_type::GgmlType::named(name) {
        Some(t) => hct_format::codec::ggml::block_layout(t),
        None => panic!("not a live ggml type"),
    }
}

/// What the kernels need to know of a weight layout: its geometry (stated once, in
/// `hct-format`), its name, and the activation format its `vec_dot` consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatSpec {
    /// The layout's name: ggml's type name for ggml layouts, `int4_gN` for HCT's int4.
    pub name: &'static str,
    pub layout: BlockLayout,
    /// How many binary16 fields (scales, minimums) open each block; the rest is codes.
    pub f16_fields: usize,
    pub activation: ActivationFormat,
}

/// Declares every weight layout the kernels know, once: the enum, its list, its
/// [`FormatSpec`], and the portable (reference) kernels that every ISA falls back to.
macro_rules! weight_formats {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal, $layout:expr, f16_fields: $f16_fields:literal, $activation:ident,
            to_float: $to_float:path, vec_dot: $vec_dot:path;
    )*) => {
        /// A weight layout the kernels decode and dot. Each has exactly one activation format.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum WeightFormat {
            $($(#[$doc])* $variant,)*
        }

        impl WeightFormat {
            /// Every layout, in declaration order (`format as usize` indexes it).
            pub const ALL: &'static [WeightFormat] = &[$(WeightFormat::$variant,)*];
            /// How many layouts there are.
            pub const COUNT: usize = Self::ALL.len();

            const SPECS: &'static [FormatSpec] = &[$(FormatSpec {
                name: $name,
                layout: $layout,
                f16_fields: $f16_fields,
                activation: ActivationFormat::$activation,
            },)*];
        }

        impl crate::kernels::KernelTable {
            /// The reference kernels of every layout.
            pub(crate) const PORTABLE: crate::kernels::KernelTable =
                crate::kernels::KernelTable::new([$(crate::kernels::FormatKernels {
                    to_float: $to_float,
                    vec_dot: $vec_dot,
                    raw_dot: None,
                    gemm: None,
                },)*]);
        }
    };
}

weight_formats! {
    /// ggml Q4_0: fp16 d, 16 bytes of nibbles; `(q − 8)·d`.
    Q4_0 = "q4_0", ggml("q4_0"), f16_fields: 1, Q8_0,
        to_float: portable::to_float_q4_0, vec_dot: portable::vec_dot_q4_0_q8_0;
    /// ggml Q4_1: fp16 d, fp16 m, 16 bytes of nibbles; `q·d + m`.
    Q4_1 = "q4_1", ggml("q4_1"), f16_fields: 2, Q8_1,
        to_float: portable::to_float_q4_1, vec_dot: portable::vec_dot_q4_1_q8_1;
    /// ggml Q8_0: fp16 d, 32 × i8; `q·d`.
    Q8_0 = "q8_0", ggml("q8_0"), f16_fields: 1, Q8_0,
        to_float: portable::to_float_q8_0, vec_dot: portable::vec_dot_q8_0_q8_0;
    /// HCT int4, groups of 8 (SPEC.md §7.4).
    Int4G8 = "int4_g8", hct_format::codec::int4::block_layout(8), f16_fields: 2, Q8_0,
        to_float: portable::to_float_int4_g8, vec_dot: portable::vec_dot_int4_g8_q8_0;
    /// HCT int4, groups of 16 (`int4_g16_fp16_v1` and `int4_opt_v1`).
    Int4G16 = "int4_g16", hct_format::codec::int4::block_layout(16), f16_fields: 2, Q8_0,
        to_float: portable::to_float_int4_g16, vec_dot: portable::vec_dot_int4_g16_q8_0;
    /// HCT int4, groups of 32 (Q4_1's bytes; Q8_0 activations, see [`WeightFormat::activation`]).
    Int4G32 = "int4_g32", hct_format::codec::int4::block_layout(32), f16_fields: 2, Q8_0,
        to_float: portable::to_float_int4_g32, vec_dot: portable::vec_dot_int4_g32_q8_0;
    /// ggml IQ4_NL: fp16 d, 16 bytes of indices into a fixed non-uniform codebook.
    Iq4Nl = "iq4_nl", ggml("iq4_nl"), f16_fields: 1, Q8_0,
        to_float: crate::kernels::iq4_nl::to_float, vec_dot: crate::kernels::iq4_nl::vec_dot_q8_0;
    /// HCT `hct_v3` spectral tiles of 64 keeping K coefficients (SPEC.md §7.6); one layout per K.
    /// The one binary16 field (the scale) follows an 8-byte bitmap.
    HctV3K16 = "hct_v3_k16", hct_format::codec::spectral::block_layout(16), f16_fields: 1, Q8_0,
        to_float: crate::kernels::hct_v3::to_float::<16>, vec_dot: crate::kernels::hct_v3::vec_dot_q8_0::<16>;
    HctV3K32 = "hct_v3_k32", hct_format::codec::spectral::block_layout(32), f16_fields: 1, Q8_0,
        to_float: crate::kernels::hct_v3::to_float::<32>, vec_dot: crate::kernels::hct_v3::vec_dot_q8_0::<32>;
    HctV3K45 = "hct_v3_k45", hct_format::codec::spectral::block_layout(45), f16_fields: 1, Q8_0,
        to_float: crate::kernels::hct_v3::to_float::<45>, vec_dot: crate::kernels::hct_v3::vec_dot_q8_0::<45>;
    HctV3K58 = "hct_v3_k58", hct_format::codec::spectral::block_layout(58), f16_fields: 1, Q8_0,
        to_float: crate::kernels::hct_v3::to_float::<58>, vec_dot: crate::kernels::hct_v3::vec_dot_q8_0::<58>;
    HctV3K63 = "hct_v3_k63", hct_format::codec::spectral::block_layout(63), f16_fields: 1, Q8_0,
        to_float: crate::kernels::hct_v3::to_float::<63>, vec_dot: crate::kernels::hct_v3::vec_dot_q8_0::<63>;
    /// HCT `hct_v3m` mixed-precision spectral tiles (SPEC.md §7.6.6): K kept, H in binary16.
    HctV3mK45H4 = "hct_v3m_k45h4", hct_format::codec::spectral::mixed::block_layout(45, 4), f16_fields: 1, Q8_0,
        to_float: crate::kernels::hct_v3m::to_float::<45, 4>, vec_dot: crate::kernels::hct_v3m::vec_dot_q8_0::<45, 4>;
    HctV3mK58H4 = "hct_v3m_k58h4", hct_format::codec::spectral::mixed::block_layout(58, 4), f16_fields: 1, Q8_0,
        to_float: crate::kernels::hct_v3m::to_float::<58, 4>, vec_dot: crate::kernels::hct_v3m::vec_dot_q8_0::<58, 4>;
    /// SeedLM, 16-bit seeds (SPEC.md §7.9): 4 sub-blocks of 8 as (seed, e, 3 coefficients).
    SeedLmS16 = "seedlm_s16", seedlm(16), f16_fields: 0, Q8_0,
        to_float: crate::kernels::seedlm::to_float_s16, vec_dot: crate::kernels::seedlm::vec_dot_s16_q8_0;
    /// SeedLM, 12-bit seeds.
    SeedLmS12 = "seedlm_s12", seedlm(12), f16_fields: 0, Q8_0,
        to_float: crate::kernels::seedlm::to_float_s12, vec_dot: crate::kernels::seedlm::vec_dot_s12_q8_0;
    /// SeedLM, 8-bit seeds.
    SeedLmS8 = "seedlm_s8", seedlm(8), f16_fields: 0, Q8_0,
        to_float: crate::kernels::seedlm::to_float_s8, vec_dot: crate::kernels::seedlm::vec_dot_s8_q8_0;
    /// Vector quantization (SPEC.md §7.10): scale code, 4 × (first-stage, residual) index bytes.
    Vq8R2x256G32 = "vq8_r2x256_g32", vq_layout(), f16_fields: 0, Q8_0,
        to_float: crate::kernels::vq::to_float, vec_dot: crate::kernels::vq::vec_dot_q8_0;
    /// HCT `nl4_sh64_v1` (SPEC.md §7.7): super-blocks of 64, fp16 d, per-32 sub-scale and shift.
    Nl4Sh64 = "nl4_sh64", hct_format::codec::shifted::block_layout(), f16_fields: 1, Q8_0,
        to_float: crate::kernels::nl4_sh64::to_float, vec_dot: crate::kernels::nl4_sh64::vec_dot_q8_0;
    /// HCT `nl5_sh64_v1` and `nl6_sh64_v1` (SPEC.md §7.7): `nl4_sh64`'s family with 5- and 6-bit codes.
    Nl5Sh64 = "nl5_sh64", hct_format::codec::shifted::NL5_SH64_V1.layout(), f16_fields: 1, Q8_0,
        to_float: crate::kernels::nl_sh64::to_float::<5>, vec_dot: crate::kernels::nl_sh64::vec_dot_q8_0::<5>;
    Nl6Sh64 = "nl6_sh64", hct_format::codec::shifted::NL6_SH64_V1.layout(), f16_fields: 1, Q8_0,
        to_float: crate::kernels::nl_sh64::to_float::<6>, vec_dot: crate::kernels::nl_sh64::vec_dot_q8_0::<6>;
}

/// The SeedLM layout with `seed_bits`-bit seeds (SPEC.md §7.9).
const fn seedlm(seed_bits: u32) -> BlockLayout {
    BlockLayout {
        elements: hct_format::codec::seedlm::BLOCK as u32,
        bytes: hct_format::codec::seedlm::block_bytes(seed_bits),
        partial_last_block: false,
        same_bytes_as_ggml: None,
    }
}

/// The vector-quantization layout (SPEC.md §7.10).
const fn vq_layout() -> BlockLayout {
    BlockLayout {
        elements: hct_format::codec::vq::GROUP as u32,
        bytes: hct_format::codec::vq::GROUP_BYTES as u32,
        partial_last_block: false,
        same_bytes_as_ggml: None,
    }
}

use crate::kernels::portable;

/// The ggml activation block a weight format's `vec_dot` consumes (ggml's `vec_dot_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivationFormat {
    Q8_0,
    Q8_1,
}

/// Why a kernel refused its arguments. Kernels check before touching memory, so a refused
/// call has read and written nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// The row length is not allowed for this format (ggml types and every `vec_dot` need
    /// whole 32-element blocks).
    RowLength {
        format: &'static str,
        len: usize,
        multiple_of: usize,
    },
    /// A row's byte size does not fit in `usize`.
    RowTooLong { format: &'static str, len: usize },
    /// The weight bytes are fewer than the row needs.
    WeightBuffer {
        format: &'static str,
        len: usize,
        needed: usize,
        actual: usize,
    },
    /// The activation bytes are fewer than the row needs.
    ActivationBuffer {
        format: &'static str,
        len: usize,
        needed: usize,
        actual: usize,
    },
    /// The f32 buffer has the wrong number of elements.
    FloatBuffer {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::RowLength {
                format,
                len,
                multiple_of,
            } => write!(
                f,
                "{format}: a row of {len} elements is not a multiple of {multiple_of}"
            ),
            KernelError::RowTooLong { format, len } => {
                write!(
                    f,
                    "{format}: a row of {len} elements overflows its byte size"
                )
            }
            KernelError::WeightBuffer {
                format,
                len,
                needed,
                actual,
            } => write!(
                f,
                "{format}: a row of {len} elements needs {needed} weight bytes, got {actual}"
            ),
            KernelError::ActivationBuffer {
                format,
                len,
                needed,
                actual,
            } => write!(
                f,
                "{format}: a row of {len} elements needs {needed} activation bytes, got {actual}"
            ),
            KernelError::FloatBuffer {
                what,
                expected,
                actual,
            } => write!(f, "{what}: expected {expected} floats, got {actual}"),
        }
    }
}

impl std::error::Error for KernelError {}

impl WeightFormat {
    /// Everything known of this layout.
    pub const fn spec(self) -> &'static FormatSpec {
        &Self::SPECS[self as usize]
    }

    /// The layout's name (`q4_1`, `int4_g16`); codec ids are the registry's ([`crate::registry`]).
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    /// Elements per block (per group for the int4 codecs).
    pub const fn block_len(self) -> usize {
        self.spec().layout.elements as usize
    }

    pub const fn block_bytes(self) -> usize {
        self.spec().layout.bytes as usize
    }

    /// HCT int4 rows may end in a partial group (SPEC.md); ggml rows are whole blocks.
    pub const fn allows_partial_block(self) -> bool {
        self.spec().layout.partial_last_block
    }

    /// The activation format of this format's `vec_dot`.
    ///
    /// Q4_1 keeps ggml's Q8_1, whose precomputed `s = d·Σq` supplies the min term. The HCT
    /// int4 codecs take Q8_0: for g8 and g16 a group is smaller than the activation block,
    /// so Q8_1's whole-block sum is useless and the per-group sum must be computed anyway;
    /// computing it exactly in integers is also more accurate than Q8_1's fp16-rounded `s`,
    /// and Q8_0 rows are 34 rather than 36 bytes per 32 values. g32 follows g8 and g16 so
    /// all three share one formula and one accumulation order.
    pub const fn activation(self) -> ActivationFormat {
        self.spec().activation
    }

    /// Bytes of one row of `len` elements, or why such a row is refused.
    ///
    /// Always inlined: kernels call it with a constant format, so the block length is a
    /// constant divisor (measured: a table-loaded divisor cost two `div`s, ~8 ns a call).
    #[inline(always)]
    pub fn row_bytes(self, len: usize) -> Result<usize, KernelError> {
        let block_len = self.block_len();
        if !self.allows_partial_block() && len % block_len != 0 {
            return Err(KernelError::RowLength {
                format: self.name(),
                len,
                multiple_of: block_len,
            });
        }
        len.div_ceil(block_len)
            .checked_mul(self.block_bytes())
            .ok_or(KernelError::RowTooLong {
                format: self.name(),
                len,
            })
    }
}

impl ActivationFormat {
    pub const fn name(self) -> &'static str {
        match self {
            ActivationFormat::Q8_0 => "q8_0",
            ActivationFormat::Q8_1 => "q8_1",
        }
    }

    /// The id of this block type in ggml's `enum ggml_type`.
    pub const fn ggml_type_id(self) -> u32 {
        match hct_format::ggml_type::GgmlType::named(self.name()) {
            Some(t) => t.id,
            None => panic!("activation formats are live ggml types"),
        }
    }

    pub const fn block_bytes(self) -> usize {
        ggml(self.name()).bytes as usize
    }

    /// Bytes of one activation row of `len` elements (whole blocks only, as in ggml).
    pub fn row_bytes(self, len: usize) -> Result<usize, KernelError> {
        if len % QK != 0 {
            return Err(KernelError::RowLength {
                format: self.name(),
                len,
                multiple_of: QK,
            });
        }
        (len / QK)
            .checked_mul(self.block_bytes())
            .ok_or(KernelError::RowTooLong {
                format: self.name(),
                len,
            })
    }
}

/// Checks a `to_float` call: `y` receives exactly one row, `x` holds at least that row.
#[inline(always)]
pub(crate) fn check_to_float(
    format: WeightFormat,
    x_len: usize,
    y_len: usize,
) -> Result<(), KernelError> {
    let needed = format.row_bytes(y_len)?;
    if x_len < needed {
        return Err(KernelError::WeightBuffer {
            format: format.name(),
            len: y_len,
            needed,
            actual: x_len,
        });
    }
    Ok(())
}

/// Checks a `vec_dot` call of `n` elements and returns the number of weight blocks (groups).
///
/// ggml quantizes activation rows in whole 32-element blocks, so `n % 32 == 0` for every
/// format. Because 8, 16 and 32 divide 32, such a row never ends in a partial int4 group:
/// rows with a partial group can be decoded but not dotted.
#[inline(always)]
pub(crate) fn check_vec_dot(
    format: WeightFormat,
    n: usize,
    x_len: usize,
    y_len: usize,
) -> Result<usize, KernelError> {
    if n % QK != 0 {
        return Err(KernelError::RowLength {
            format: format.name(),
            len: n,
            multiple_of: QK,
        });
    }
    let needed_x = format.row_bytes(n)?;
    if x_len < needed_x {
        return Err(KernelError::WeightBuffer {
            format: format.name(),
            len: n,
            needed: needed_x,
            actual: x_len,
        });
    }
    let activation = format.activation();
    let needed_y = activation.row_bytes(n)?;
    if y_len < needed_y {
        return Err(KernelError::ActivationBuffer {
            format: activation.name(),
            len: n,
            needed: needed_y,
            actual: y_len,
        });
    }
    Ok(n / format.block_len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hct_format::ggml_type::GgmlType;

    #[test]
    fn ggml_sizes_and_ids_agree_with_the_format_crate() {
        for (format, ggml_name) in [
            (WeightFormat::Q4_0, "q4_0"),
            (WeightFormat::Q4_1, "q4_1"),
            (WeightFormat::Q8_0, "q8_0"),
        ] {
            let t = GgmlType::from_name(ggml_name).expect("pinned ggml type");
            assert_eq!(format.block_len() as u32, t.block_size, "{ggml_name}");
            assert_eq!(format.block_bytes() as u32, t.type_size, "{ggml_name}");
        }
        for act in [ActivationFormat::Q8_0, ActivationFormat::Q8_1] {
            let t = GgmlType::from_name(act.name()).expect("pinned ggml type");
            assert_eq!(act.ggml_type_id(), t.id);
            assert_eq!(act.block_bytes() as u32, t.type_size);
            assert_eq!(t.block_size as usize, QK);
        }
    }

    #[test]
    fn partial_groups_take_a_whole_block() {
        assert_eq!(WeightFormat::Int4G16.row_bytes(0), Ok(0));
        assert_eq!(WeightFormat::Int4G16.row_bytes(1), Ok(12));
        assert_eq!(WeightFormat::Int4G16.row_bytes(16), Ok(12));
        assert_eq!(WeightFormat::Int4G16.row_bytes(17), Ok(24));
        assert_eq!(WeightFormat::Int4G8.row_bytes(576 + 3), Ok(73 * 8));
        assert_eq!(WeightFormat::Int4G32.row_bytes(33), Ok(40));
        assert!(matches!(
            WeightFormat::Q4_1.row_bytes(33),
            Err(KernelError::RowLength {
                multiple_of: 32,
                ..
            })
        ));
        assert!(matches!(
            WeightFormat::Int4G8.row_bytes(usize::MAX),
            Err(KernelError::RowTooLong { .. })
        ));
    }

    #[test]
    fn vec_dot_needs_whole_activation_blocks_and_enough_bytes() {
        let f = WeightFormat::Int4G16;
        assert_eq!(check_vec_dot(f, 64, 48, 68), Ok(4));
        assert!(matches!(
            check_vec_dot(f, 48, 1000, 1000),
            Err(KernelError::RowLength { len: 48, .. })
        ));
        assert!(matches!(
            check_vec_dot(f, 64, 47, 68),
            Err(KernelError::WeightBuffer {
                needed: 48,
                actual: 47,
                ..
            })
        ));
        assert!(matches!(
            check_vec_dot(f, 64, 48, 67),
            Err(KernelError::ActivationBuffer {
                needed: 68,
                actual: 67,
                ..
            })
        ));
        assert!(matches!(
            check_vec_dot(WeightFormat::Q4_1, 32, 20, 35),
            Err(KernelError::ActivationBuffer { needed: 36, .. })
        ));
    }
}
