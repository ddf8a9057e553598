//! The HCT container (SPEC.md): a 64-byte preamble, aligned payloads, then the header.

pub mod entropy;
pub mod error;
pub mod header;
pub mod limits;
mod reader;
mod wire;
mod writer;

pub use error::{Category, Error, ErrorKind};
pub use header::{
    Header, Preamble, TensorInfo, ALIGNMENT, KEY_SPEC_MINOR, MAGIC, PREAMBLE_LEN, SPEC_MAJOR,
    SPEC_MINOR,
};
pub use reader::{is_entropy_coded, Container, DamagedPayload, HctFile, VerifyReport};
pub use writer::{TensorDesc, TensorSink, Writer, Written};

#[cfg(test)]
mod tests;
