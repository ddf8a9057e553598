//! Which instruction set runs the kernels: detected once per process, overridable with the
//! environment variable `HCT_ISA=scalar|avx2|neon|auto`, and the single dispatch point of
//! both kernel families ([`Backend::to_float`], [`Backend::vec_dot`]).
//!
//! An `HCT_ISA` the CPU lacks (or cannot name) is refused with a warning on stderr and the
//! detected best is used instead: a mistyped variable must not crash a host process, and
//! every backend gives the same bits anyway.

use std::sync::OnceLock;

use crate::kernels::{self, KernelTable};
use crate::layout::{KernelError, WeightFormat};

/// An instruction set the kernels are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// The portable reference; runs everywhere.
    Scalar,
    /// x86-64 with AVX2 and F16C (FMA is not used).
    Avx2,
    /// AArch64 Advanced SIMD.
    Neon,
}

/// An [`Isa`] this CPU was checked to support. Kernels are only reachable through it, so
/// holding one is the proof the SIMD calls below rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backend {
    isa: Isa,
}

/// The backend every entry point of the library uses, chosen on first use.
pub fn active() -> Backend {
    static ACTIVE: OnceLock<Backend> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let requested = std::env::var("HCT_ISA").ok();
        let (isa, warning) = choose(requested.as_deref(), Isa::is_supported);
        if let Some(warning) = warning {
            eprintln!("hct: {warning}");
        }
        Backend { isa }
    })
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Neon];

    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
        }
    }

    /// Parses an `HCT_ISA` value (case-insensitive; "portable" is accepted for scalar).
    pub fn parse(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" | "portable" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "neon" => Some(Isa::Neon),
            _ => None,
        }
    }

    /// Whether this CPU, in this build, can run the ISA's kernels.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The fastest supported ISA, ignoring `HCT_ISA`.
    pub fn detect() -> Isa {
        best(Isa::is_supported)
    }
}

impl Backend {
    /// The backend for `isa`, or `None` if this CPU cannot run it.
    pub fn new(isa: Isa) -> Option<Backend> {
        isa.is_supported().then_some(Backend { isa })
    }

    pub const fn scalar() -> Backend {
        Backend { isa: Isa::Scalar }
    }

    /// Every backend this CPU supports, the reference first.
    pub fn available() -> Vec<Backend> {
        Isa::ALL.into_iter().filter_map(Backend::new).collect()
    }

    pub const fn isa(self) -> Isa {
        self.isa
    }

    /// This backend's kernels: the reference with the ISA's overrides.
    pub fn kernels(self) -> &'static KernelTable {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => &kernels::avx2::KERNELS,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => &kernels::neon::KERNELS,
            // Scalar, and (unreachable: Backend::new refuses them) other architectures' ISAs.
            _ => &KernelTable::PORTABLE,
        }
    }

    /// Decodes one row of `y.len()` elements of `format` from `x`.
    pub fn to_float(
        self,
        format: WeightFormat,
        x: &[u8],
        y: &mut [f32],
    ) -> Result<(), KernelError> {
        // SAFETY: a Backend exists only for an ISA that is_supported() saw on this CPU, and
        // its table holds that ISA's kernels or the portable ones.
        unsafe { (self.kernels().get(format).to_float)(x, y) }
    }

    /// Dot product of one weight row of `format` with one activation row of
    /// `format.activation()`, both of `n` elements.
    pub fn vec_dot(
        self,
        format: WeightFormat,
        n: usize,
        x: &[u8],
        y: &[u8],
    ) -> Result<f32, KernelError> {
        // SAFETY: as in to_float.
        unsafe { (self.kernels().get(format).vec_dot)(n, x, y) }
    }
}

/// The fastest ISA `supported` accepts.
fn best(supported: impl Fn(Isa) -> bool) -> Isa {
    [Isa::Avx2, Isa::Neon]
        .into_iter()
        .find(|&isa| supported(isa))
        .unwrap_or(Isa::Scalar)
}

/// Picks the ISA for a requested `HCT_ISA` value, with the warning to print when the
/// request cannot be honoured.
fn choose(requested: Option<&str>, supported: impl Fn(Isa) -> bool) -> (Isa, Option<String>) {
    let best = || best(&supported);
    let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
        return (best(), None);
    };
    if requested.trim().eq_ignore_ascii_case("auto") {
        return (best(), None);
    }
    match Isa::parse(requested) {
        Some(isa) if supported(isa) => (isa, None),
        Some(isa) => {
            let fallback = best();
            let warning = format!(
                "HCT_ISA={requested}: this CPU or build cannot run {} kernels; using {}",
                isa.name(),
                fallback.name()
            );
            (fallback, Some(warning))
        }
        None => {
            let fallback = best();
            let warning = format!(
                "HCT_ISA={requested} is not one of scalar, avx2, neon, auto; using {}",
                fallback.name()
            );
            (fallback, Some(warning))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hct_isa_is_honoured_when_supported_and_refused_otherwise() {
        let only_avx2 = |isa: Isa| matches!(isa, Isa::Scalar | Isa::Avx2);
        assert_eq!(choose(None, only_avx2), (Isa::Avx2, None));
        assert_eq!(choose(Some(""), only_avx2), (Isa::Avx2, None));
        assert_eq!(choose(Some("auto"), only_avx2), (Isa::Avx2, None));
        assert_eq!(choose(Some("scalar"), only_avx2), (Isa::Scalar, None));
        assert_eq!(choose(Some(" AVX2 "), only_avx2), (Isa::Avx2, None));

        let (isa, warning) = choose(Some("neon"), only_avx2);
        assert_eq!(isa, Isa::Avx2);
        let warning = warning.expect("a refused request warns");
        assert!(
            warning.contains("HCT_ISA=neon") && warning.contains("using avx2"),
            "{warning}"
        );

        let (isa, warning) = choose(Some("avx512"), |isa| isa == Isa::Scalar);
        assert_eq!(isa, Isa::Scalar);
        assert!(warning.unwrap().contains("not one of"));
    }

    #[test]
    fn backends_exist_only_for_supported_isas() {
        assert!(Backend::new(Isa::Scalar).is_some());
        for isa in Isa::ALL {
            assert_eq!(Backend::new(isa).is_some(), isa.is_supported(), "{isa:?}");
        }
        #[cfg(target_arch = "x86_64")]
        assert!(Backend::new(Isa::Neon).is_none());
        #[cfg(target_arch = "aarch64")]
        {
            assert!(Backend::new(Isa::Avx2).is_none());
            assert!(
                Backend::new(Isa::Neon).is_some(),
                "NEON is baseline on AArch64"
            );
        }
        assert!(Backend::available().contains(&active()));
    }
}
