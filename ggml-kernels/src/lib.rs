//! libhct: decode (`to_float`) and dot-product (`vec_dot`) kernels for HCT's int4 codecs and
//! the ggml block types they meet, with ggml's own function signatures so a ggml-style
//! runtime can call them from its type-traits table.
//!
//! Layout of the crate (one reference, one module per ISA, one dispatch point):
//! - [`registry`]: the one list of codec ids with kernels, each with its layout. Every
//!   per-codec table below is generated from it.
//! - [`layout`]: every weight layout once (`weight_formats!`), its geometry taken from
//!   `hct-format`, its portable kernels, and the argument checks all kernels share.
//! - [`kernels::portable`]: the scalar reference. Its arithmetic *defines* every result;
//!   `kernels::avx2` and `kernels::neon` override what they speed up, bit for bit, and fall
//!   back to the reference for the rest ([`kernels::KernelTable`]).
//! - [`platform`]: [`platform::Isa`], run-time detection (cached, overridable by `HCT_ISA`),
//!   and [`platform::Backend`], the single dispatch point of both kernel families.
//! - [`quantize`]: f32 → Q8_0 / Q8_1 activation rows, ggml's reference rounding.
//! - [`traits`]: one [`traits::CodecTraits`] record per codec id, with `extern "C"` entry
//!   points in ggml's signatures.
//! - [`gemm`]: the multi-row entry (a block of weight rows times a block of activation
//!   rows in one call), every output bit for bit its `vec_dot`; hand-written kernels where an
//!   ISA has them, a tiled loop over the row-pair kernel for every other layout.
//! - [`capi`]: the C ABI (`include/hct.h`): containers opened over mmap, tensors listed,
//!   verified and decoded, and the traits records looked up by codec id.
//! - [`ggml_ext`]: registration of HCT's codecs as extension types in a patched ggml
//!   (host call and `LD_PRELOAD` constructor), with optional call counting.
//!
//! The accumulation order of every dot product is specified in [`kernels::portable`].

#![deny(unsafe_op_in_unsafe_fn)]

pub mod capi;
pub mod fp16;
pub mod gemm;
pub mod ggml_ext;
pub mod kernels;
pub mod layout;
pub mod platform;
pub mod quantize;
pub mod registry;
pub mod traits;

#[cfg(test)]
mod harness;

pub use layout::{ActivationFormat, KernelError, WeightFormat};
pub use platform::{Backend, Isa};
pub use traits::{traits_for, CodecTraits};
