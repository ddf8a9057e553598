//! `hct-format`: the HCT container (SPEC.md), its codecs' reference implementations, and
//! the GGUF and safetensors I/O that conversion needs.

pub mod codec;
pub mod container;
pub mod ggml_type;
pub mod gguf;
pub mod output_file;
pub mod safetensors_io;
pub mod value;

pub use container::{Container, Error, ErrorKind, HctFile, TensorDesc, TensorInfo, Writer};
pub use value::{Array, Metadata, Value, ValueType};
