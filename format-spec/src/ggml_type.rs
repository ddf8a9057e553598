//! ggml's tensor types as of the pinned ggml (0.25.3, llama.cpp 0c1e57098).
//!
//! Ids, names, block sizes and block bytes were read from `ggml/include/ggml.h` and
//! measured with `sizeof` on the structs of `ggml/src/ggml-common.h` of that tree. Retired
//! ids are kept as named entries so a reader can say "Q4_0_4_4 (id 31) was removed from
//! GGUF" instead of "unknown type 31".
//!
//! HCT never stores these numbers as its own type system: each maps to a codec id string
//! `ggml_<name>` (SPEC.md §7), so upstream renumbering cannot corrupt an HCT file.

/// One ggml type: wire id, ggml's name, elements per block, bytes per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    pub id: u32,
    /// ggml's own spelling, as `ggml_type_name` prints it (e.g. "q4_K").
    pub name: &'static str,
    pub block_size: u32,
    pub type_size: u32,
}

/// Number of type ids of the pinned ggml (`GGML_TYPE_COUNT`).
pub const GGML_TYPE_COUNT: u32 = 43;

const fn t(id: u32, name: &'static str, block_size: u32, type_size: u32) -> GgmlType {
    GgmlType {
        id,
        name,
        block_size,
        type_size,
    }
}

/// Every live type of the pinned ggml, by id.
pub const GGML_TYPES: &[GgmlType] = &[
    t(0, "f32", 1, 4),
    t(1, "f16", 1, 2),
    t(2, "q4_0", 32, 18),
    t(3, "q4_1", 32, 20),
    t(6, "q5_0", 32, 22),
    t(7, "q5_1", 32, 24),
    t(8, "q8_0", 32, 34),
    t(9, "q8_1", 32, 36),
    t(10, "q2_K", 256, 84),
    t(11, "q3_K", 256, 110),
    t(12, "q4_K", 256, 144),
    t(13, "q5_K", 256, 176),
    t(14, "q6_K", 256, 210),
    t(15, "q8_K", 256, 292),
    t(16, "iq2_xxs", 256, 66),
    t(17, "iq2_xs", 256, 74),
    t(18, "iq3_xxs", 256, 98),
    t(19, "iq1_s", 256, 50),
    t(20, "iq4_nl", 32, 18),
    t(21, "iq3_s", 256, 110),
    t(22, "iq2_s", 256, 82),
    t(23, "iq4_xs", 256, 136),
    t(24, "i8", 1, 1),
    t(25, "i16", 1, 2),
    t(26, "i32", 1, 4),
    t(27, "i64", 1, 8),
    t(28, "f64", 1, 8),
    t(29, "iq1_m", 256, 56),
    t(30, "bf16", 1, 2),
    t(34, "tq1_0", 256, 54),
    t(35, "tq2_0", 256, 66),
    t(39, "mxfp4", 32, 17),
    t(40, "nvfp4", 64, 36),
    t(41, "q1_0", 128, 18),
    t(42, "q2_0", 64, 18),
];

impl GgmlType {
    /// The live type whose ggml name is `name` (exact spelling, e.g. `q4_K`), usable in
    /// constants: the kernels crate takes its block geometry from here.
    pub const fn named(name: &str) -> Option<GgmlType> {
        let mut i = 0;
        while i < GGML_TYPES.len() {
            if const_str_eq(GGML_TYPES[i].name, name) {
                return Some(GGML_TYPES[i]);
            }
            i += 1;
        }
        None
    }
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Ids that ggml once had and removed; files carrying them are refused by name.
pub const RETIRED_GGML_TYPES: &[(u32, &str)] = &[
    (4, "q4_2"),
    (5, "q4_3"),
    (31, "q4_0_4_4"),
    (32, "q4_0_4_8"),
    (33, "q4_0_8_8"),
    (36, "iq4_nl_4_4"),
    (37, "iq4_nl_4_8"),
    (38, "iq4_nl_8_8"),
];

/// What a raw type id from a file means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlTypeLookup {
    Live(GgmlType),
    Retired { id: u32, name: &'static str },
    Unknown(u32),
}

impl GgmlType {
    pub fn from_id(id: u32) -> GgmlTypeLookup {
        if let Some(t) = GGML_TYPES.iter().find(|t| t.id == id) {
            return GgmlTypeLookup::Live(*t);
        }
        if let Some(&(id, name)) = RETIRED_GGML_TYPES.iter().find(|r| r.0 == id) {
            return GgmlTypeLookup::Retired { id, name };
        }
        GgmlTypeLookup::Unknown(id)
    }

    /// Case-insensitive lookup by ggml name ("Q4_K", "q4_k", "bf16").
    pub fn from_name(name: &str) -> Option<GgmlType> {
        GGML_TYPES
            .iter()
            .copied()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// The HCT codec id that carries this type's bytes unchanged (SPEC.md §7).
    /// Plain element types map to HCT's element codecs (`f32`, `f16`, `bf16`, `i8`, …,
    /// `f64`); every block type to `ggml_<lowercase name>`.
    pub fn hct_codec_id(&self) -> String {
        match self.plain_element_codec() {
            Some(id) => id.into(),
            None => format!("ggml_{}", self.name.to_ascii_lowercase()),
        }
    }

    /// ggml's plain element types share HCT's element codecs, so a GGUF I32 tensor and a
    /// safetensors I32 tensor get the same id.
    pub fn plain_element_codec(&self) -> Option<&'static str> {
        Some(match self.id {
            0 => "f32",
            1 => "f16",
            24 => "i8",
            25 => "i16",
            26 => "i32",
            27 => "i64",
            28 => "f64",
            30 => "bf16",
            _ => return None,
        })
    }

    /// The ggml type whose bytes an HCT codec id carries unchanged, if any.
    pub fn from_hct_codec_id(codec: &str) -> Option<GgmlType> {
        if let Some(t) = GGML_TYPES
            .iter()
            .find(|t| t.plain_element_codec() == Some(codec))
        {
            return Some(*t);
        }
        let t = Self::from_name(codec.strip_prefix("ggml_")?)?;
        t.plain_element_codec().is_none().then_some(t)
    }

    /// Bytes of one row of `row_len` elements, or `None` if the row is not a whole number
    /// of blocks (ggml refuses such tensors) or the size overflows.
    pub fn row_bytes(&self, row_len: u64) -> Option<u64> {
        if row_len % self.block_size as u64 != 0 {
            return None;
        }
        (row_len / self.block_size as u64).checked_mul(self.type_size as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_sorted_and_below_count() {
        let mut all: Vec<u32> = GGML_TYPES.iter().map(|t| t.id).collect();
        all.extend(RETIRED_GGML_TYPES.iter().map(|r| r.0));
        all.sort();
        assert_eq!(
            all,
            (0..GGML_TYPE_COUNT).collect::<Vec<_>>(),
            "every id below the count is live or retired"
        );
    }

    #[test]
    fn codec_ids_round_trip() {
        for t in GGML_TYPES {
            let id = t.hct_codec_id();
            assert_eq!(GgmlType::from_hct_codec_id(&id), Some(*t), "{id}");
        }
        assert_eq!(
            GgmlType::from_id(12),
            GgmlTypeLookup::Live(GgmlType::from_name("Q4_K").unwrap())
        );
        assert_eq!(
            GgmlType::from_id(31),
            GgmlTypeLookup::Retired {
                id: 31,
                name: "q4_0_4_4"
            }
        );
        assert_eq!(GgmlType::from_id(43), GgmlTypeLookup::Unknown(43));
    }
}
