//! `hct-format`: the HCT container (SPEC.md), its codecs' reference implementations, and
//! the GGUF and safetensors I/O that conversion needs.

pub mod codec;
pub mod ggml_type;
pub mod gguf;
pub mod value;

pub use value::{Array, Metadata, Value, ValueType};
