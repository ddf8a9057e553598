//! Guards that a codec cannot be half-added. For every codec id this build registers:
//!
//! - SPEC.md names it (in its codec section or its registry table), so no id exists that an
//!   independent implementation could not learn from the spec;
//! - if it has an encoder, golden vectors pin that encoder's bytes: a file under
//!   `tests/vectors/` whose stem is the id (or, for ggml layouts, ggml's type name), checked
//!   by that family's vector test. The plain element codecs (`f32`, `f16`, `bf16`) are the one
//!   exception: their encoder is IEEE round-to-nearest-even, tested exhaustively over all
//!   65,536 binary16 and bfloat16 patterns in `src/codec/raw.rs`.
//! - if it has a block layout and is not a ggml type, a plugin GGUF can carry it as an
//!   extension type (libhct's registry test then requires kernels for it).

use hct_format::codec::{self, Codec};
use hct_format::ggml_type::GgmlType;
use std::path::{Path, PathBuf};

fn spec() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("SPEC.md")).unwrap()
}

fn vector_stems() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"),
        &mut files,
    );
    files
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_string())
        .collect()
}

fn is_plain_element_codec(c: &dyn Codec) -> bool {
    GgmlType::from_hct_codec_id(c.id()).is_some_and(|t| t.plain_element_codec().is_some())
        || ["f32", "f16", "bf16"].contains(&c.id())
}

#[test]
fn every_registered_codec_is_in_the_spec() {
    let spec = spec();
    for c in codec::all() {
        assert!(
            spec.contains(&format!("`{}`", c.id())),
            "SPEC.md does not name codec {}: add its section (layout, decoder, encoder)",
            c.id()
        );
    }
}

#[test]
fn every_encoder_has_golden_vectors() {
    let stems = vector_stems();
    for c in codec::all() {
        if !c.can_encode() || is_plain_element_codec(c) {
            continue;
        }
        let ggml_name = c.id().strip_prefix("ggml_").unwrap_or("");
        assert!(
            stems
                .iter()
                .any(|s| s == c.id() || s.eq_ignore_ascii_case(ggml_name)),
            "codec {} encodes but has no golden vectors under tests/vectors/",
            c.id()
        );
    }
}

#[test]
fn block_codecs_state_a_consistent_geometry() {
    for c in codec::all() {
        let Some(layout) = c.block_layout() else {
            continue;
        };
        let blocks = 7u64;
        let whole = blocks * layout.elements as u64;
        assert_eq!(
            c.row_bytes(whole),
            Ok(blocks * layout.bytes as u64),
            "{}: row_bytes agrees with the block layout",
            c.id()
        );
        assert_eq!(layout.row_bytes(whole), Some(blocks * layout.bytes as u64));
        if layout.elements > 1 {
            assert_eq!(
                c.row_bytes(whole + 1).is_ok(),
                layout.partial_last_block,
                "{}: partial last block",
                c.id()
            );
        }
        if let Some(name) = layout.same_bytes_as_ggml {
            let t = GgmlType::from_name(name)
                .unwrap_or_else(|| panic!("{}: no ggml type {name}", c.id()));
            assert_eq!(
                (t.block_size, t.type_size),
                (layout.elements, layout.bytes),
                "{}: same bytes as ggml {name} needs the same block",
                c.id()
            );
        }
    }
}
