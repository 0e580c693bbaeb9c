//! The CPU's vector instruction sets, detected at run time: [`Isa`] and the proof tokens that the
//! `#[target_feature]` kernels take.
//!
//! A kernel compiled for AVX-512 must only run on a CPU that has AVX-512. The proof is a value:
//! [`Avx512`] and [`Avx2`] can only be obtained from an [`Isa`], and an `Isa` only from
//! [`Isa::detect`] / [`Isa::available`], which ask the CPU. A call into a `#[target_feature]` kernel holds such a token, and its
//! `// SAFETY:` line says so.
//!
//! `INGOT_ISA=scalar|avx2|avx512` lowers the level every kernel uses (never above what the CPU
//! has), for tests and benchmarks; it is read once.

use std::sync::OnceLock;

/// A level of vector instructions the kernels are written for, lowest first.
///
/// ```
/// use ingot::IsaLevel;
/// assert!(IsaLevel::Scalar < IsaLevel::Avx512);
/// assert_eq!(IsaLevel::parse("avx2"), Some(IsaLevel::Avx2));
/// assert!(ingot::isa_level() <= IsaLevel::Avx512);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IsaLevel {
    /// Portable Rust, no explicit vector instructions.
    Scalar,
    /// AVX2 with FMA (x86-64).
    Avx2,
    /// AVX-512F (with AVX2, FMA and POPCNT; x86-64).
    Avx512,
}

impl IsaLevel {
    /// The name `INGOT_ISA` takes: `scalar`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            IsaLevel::Scalar => "scalar",
            IsaLevel::Avx2 => "avx2",
            IsaLevel::Avx512 => "avx512",
        }
    }

    /// Parses a name of [`IsaLevel::name`].
    pub fn parse(name: &str) -> Option<IsaLevel> {
        [IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512].into_iter().find(|l| l.name() == name)
    }
}

/// The level the kernels use in this process: the best the CPU has, lowered by `INGOT_ISA`.
pub fn isa_level() -> IsaLevel {
    Isa::detect().level()
}

/// Proof that the running CPU supports [`Isa::level`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Isa {
    level: IsaLevel,
}

/// Proof that the CPU has AVX-512F, AVX2, FMA and POPCNT.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512 {
    _proof: (),
}

/// Proof that the CPU has AVX2 and FMA.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2 {
    _proof: (),
}

impl Isa {
    /// The level kernels use: the CPU's best, lowered by `INGOT_ISA` (cached).
    pub(crate) fn detect() -> Isa {
        static LEVEL: OnceLock<IsaLevel> = OnceLock::new();
        let level = *LEVEL.get_or_init(|| {
            let cpu = cpu_level();
            match std::env::var("INGOT_ISA").ok().as_deref().map(str::trim).and_then(IsaLevel::parse) {
                Some(asked) => asked.min(cpu),
                None => cpu,
            }
        });
        Isa { level }
    }

    /// Every level this CPU runs, lowest first, whatever `INGOT_ISA` says: what tests compare.
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Isa> {
        let cpu = cpu_level();
        [IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512]
            .into_iter()
            .filter(|&l| l <= cpu)
            .map(|level| Isa { level })
            .collect()
    }

    /// The level this token proves.
    pub(crate) fn level(self) -> IsaLevel {
        self.level
    }

    /// The AVX-512 proof, if this level includes it.
    pub(crate) fn avx512(self) -> Option<Avx512> {
        (self.level >= IsaLevel::Avx512).then_some(Avx512 { _proof: () })
    }

    /// The AVX2 + FMA proof, if this level includes it.
    pub(crate) fn avx2(self) -> Option<Avx2> {
        (self.level >= IsaLevel::Avx2).then_some(Avx2 { _proof: () })
    }
}

impl From<Avx512> for Isa {
    /// The AVX-512 level, proven by its token.
    fn from(_: Avx512) -> Isa {
        Isa { level: IsaLevel::Avx512 }
    }
}

/// The best level the running CPU supports.
fn cpu_level() -> IsaLevel {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if avx2 && std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("popcnt") {
            return IsaLevel::Avx512;
        }
        if avx2 {
            return IsaLevel::Avx2;
        }
    }
    IsaLevel::Scalar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_never_exceed_the_cpu() {
        let available = Isa::available();
        assert_eq!(available[0].level(), IsaLevel::Scalar);
        assert!(Isa::detect().level() <= available.last().unwrap().level());
        for isa in &available {
            assert_eq!(isa.avx512().is_some(), isa.level() >= IsaLevel::Avx512);
            assert_eq!(isa.avx2().is_some(), isa.level() >= IsaLevel::Avx2);
        }
        eprintln!(
            "kernel paths this CPU runs: {:?}",
            available.iter().map(|i| i.level()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn names_round_trip() {
        for l in [IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512] {
            assert_eq!(IsaLevel::parse(l.name()), Some(l));
        }
        assert_eq!(IsaLevel::parse("sse9"), None);
    }
}
