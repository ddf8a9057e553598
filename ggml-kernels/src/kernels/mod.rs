//! The kernels, one module per instruction set. `portable` is the reference and defines every
//! result; each SIMD module overrides only the layouts and operations it speeds up, and
//! everything it does not override runs the reference (as ggml's `*_generic` functions and
//! BLAKE3's portable fallback do). So a new layout can ship with its portable kernels alone
//! and gain AVX2 or NEON versions later, one override at a time.
//!
//! Each ISA states its kernels as a [`KernelTable`]: the reference table with overrides
//! applied (`KernelTable::PORTABLE.with_to_float(…).with_vec_dot(…)`), evaluated at compile
//! time. [`crate::platform::Backend`] dispatches through it, and [`crate::traits`] builds the
//! `extern "C"` entry points from it with the kernel fixed at compile time, so a runtime's
//! call goes straight into the kernel.

pub mod portable;

pub mod iq4_nl;
pub mod seedlm;
pub mod vq;

pub mod hct_v3;
pub mod hct_v3m;
pub mod nl4_sh64;
pub mod nl_sh64;

#[cfg(target_arch = "x86_64")]
pub mod avx2;

#[cfg(target_arch = "x86_64")]
pub mod avx2_gemm;

#[cfg(target_arch = "aarch64")]
pub mod neon;

#[cfg(target_arch = "aarch64")]
pub mod neon_gemm;

use crate::layout::{KernelError, WeightFormat};

/// `to_float` on a row slice: checks the lengths, then decodes `y.len()` elements.
///
/// # Safety
/// The CPU must run the kernel's ISA.
pub type ToFloatKernel = unsafe fn(x: &[u8], y: &mut [f32]) -> Result<(), KernelError>;

/// `vec_dot` on row slices of `n` elements: checks the lengths, then dots.
///
/// # Safety
/// The CPU must run the kernel's ISA.
pub type VecDotKernel = unsafe fn(n: usize, x: &[u8], y: &[u8]) -> Result<f32, KernelError>;

/// `vec_dot` after the C entry point's own checks (`n` a multiple of 32, non-null rows), for
/// ISAs whose kernels need nothing more and so skip computing row sizes on every call.
///
/// # Safety
/// The CPU must run the kernel's ISA; `x` and `y` point at whole rows of `n` elements.
pub type RawDotKernel = unsafe fn(n: usize, x: *const u8, y: *const u8) -> f32;

/// A block of dot products after the C entry point's checks ([`crate::gemm`]): output
/// `s[j·bs + i]` is the `vec_dot` of weight row `i` and activation row `j`, bit for bit.
///
/// # Safety
/// The CPU must run the kernel's ISA; the arguments must hold [`GemmArgs`]' contract.
pub type GemmKernel = unsafe fn(args: &GemmArgs);

/// The operands of a [`GemmKernel`]: `nr` weight rows of `n` elements at `x + i·bx` (bytes),
/// `nc` activation rows at `y + j·by`, and the outputs at `s + j·bs + i` (floats). `n` is a
/// multiple of 32, every pointer non-null, `s` aligned, and the rows and outputs exist.
#[derive(Clone, Copy, Debug)]
pub struct GemmArgs {
    pub n: usize,
    pub x: *const u8,
    pub bx: usize,
    pub y: *const u8,
    pub by: usize,
    pub s: *mut f32,
    pub bs: usize,
    pub nr: usize,
    pub nc: usize,
}

/// One layout's kernels on one ISA.
#[derive(Clone, Copy)]
pub struct FormatKernels {
    pub to_float: ToFloatKernel,
    pub vec_dot: VecDotKernel,
    /// `None`: the C entry point makes the row slices and calls `vec_dot`.
    pub raw_dot: Option<RawDotKernel>,
    /// `None`: blocks of dot products run the row-pair kernel in a tiled loop
    /// ([`crate::gemm`]), which every layout gets without writing anything.
    pub gemm: Option<GemmKernel>,
}

/// Every layout's kernels on one ISA, indexed by [`WeightFormat`].
#[derive(Clone, Copy)]
pub struct KernelTable {
    formats: [FormatKernels; WeightFormat::COUNT],
}

impl KernelTable {
    pub(crate) const fn new(formats: [FormatKernels; WeightFormat::COUNT]) -> KernelTable {
        KernelTable { formats }
    }

    /// The kernels of `format`.
    pub const fn get(&self, format: WeightFormat) -> FormatKernels {
        self.formats[format as usize]
    }

    /// This table with `format`'s `to_float` replaced.
    pub(crate) const fn with_to_float(
        mut self,
        format: WeightFormat,
        kernel: ToFloatKernel,
    ) -> KernelTable {
        self.formats[format as usize].to_float = kernel;
        self
    }

    /// This table with `format`'s `vec_dot` replaced (and its raw entry, if it has one).
    pub(crate) const fn with_vec_dot(
        mut self,
        format: WeightFormat,
        kernel: VecDotKernel,
        raw: Option<RawDotKernel>,
    ) -> KernelTable {
        self.formats[format as usize].vec_dot = kernel;
        self.formats[format as usize].raw_dot = raw;
        self
    }

    /// This table with a multi-row kernel for `format`, which must equal its `vec_dot` on
    /// every row pair, bit for bit.
    pub(crate) const fn with_gemm(
        mut self,
        format: WeightFormat,
        kernel: GemmKernel,
    ) -> KernelTable {
        self.formats[format as usize].gemm = Some(kernel);
        self
    }
}

/// An ISA's kernel table as a type, so entry points can be generic over it and have their
/// kernel fixed at compile time.
pub(crate) trait IsaKernels {
    const TABLE: KernelTable;
}

/// The portable reference.
pub(crate) struct Scalar;
impl IsaKernels for Scalar {
    const TABLE: KernelTable = KernelTable::PORTABLE;
}

#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;
#[cfg(target_arch = "x86_64")]
impl IsaKernels for Avx2 {
    const TABLE: KernelTable = avx2::KERNELS;
}

#[cfg(target_arch = "aarch64")]
pub(crate) struct Neon;
#[cfg(target_arch = "aarch64")]
impl IsaKernels for Neon {
    const TABLE: KernelTable = neon::KERNELS;
}
