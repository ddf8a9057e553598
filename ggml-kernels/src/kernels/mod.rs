//! The kernels, one module per instruction set. `portable` is the reference; each SIMD
//! module exposes the same functions with the same names, callable directly (benchmarks do)
//! from code that has checked the CPU, or through [`crate::platform::Backend`].

pub mod portable;

#[cfg(target_arch = "x86_64")]
pub mod avx2;

#[cfg(target_arch = "aarch64")]
pub mod neon;
