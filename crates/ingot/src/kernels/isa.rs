//! The CPU's vector instruction sets, detected at run time: [`Isa`] and the proof tokens that the
//! `#[target_feature]` kernels take.
//!
//! A kernel compiled for AVX-512 must only run on a CPU that has AVX-512. The proof is a value:
//! [`Avx512`] and [`Avx2`] can only be obtained from an [`Isa`], and an `Isa` only from
//! [`Isa::detect`] / [`Isa::available`], which ask the CPU. A call into a `#[target_feature]` kernel holds such a token, and its
//! `// SAFETY:` line says so.
//!
//! The levels are ordered; a level names the best instructions a kernel may use, and the tokens
//! of the narrower extensions (VNNI, BF16, AMX) also need the CPU to have them: AVX-VNNI (the
//! 256-bit VEX form) is not implied by AVX-512, so a Zen 4 at level `avx512-vnni` gets no
//! [`AvxVnni`] token but gets [`Avx512Vnni`].
//!
//! `INGOT_ISA=scalar|avx2|avx-vnni|avx512|avx512-vnni|amx` lowers the level every kernel uses
//! (never above what the CPU has), for tests and benchmarks; it is read once.

use std::sync::OnceLock;

/// A level of vector instructions the kernels are written for, lowest first.
///
/// ```
/// use ingot::IsaLevel;
/// assert!(IsaLevel::Scalar < IsaLevel::Avx512);
/// assert_eq!(IsaLevel::parse("avx2"), Some(IsaLevel::Avx2));
/// assert!(ingot::isa_level() <= IsaLevel::Amx);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IsaLevel {
    /// Portable Rust, no explicit vector instructions.
    Scalar,
    /// AVX2 with FMA and F16C (x86-64).
    Avx2,
    /// AVX2 plus AVX-VNNI's 256-bit integer dot products, where the CPU has them.
    AvxVnni,
    /// AVX-512F (with AVX2, FMA and POPCNT; x86-64).
    Avx512,
    /// AVX-512 with VNNI (and BW, VL) integer dot products; BF16 dot products where present.
    Avx512Vnni,
    /// AMX tiles (INT8 and BF16), with the OS's permission to use them.
    Amx,
}

impl IsaLevel {
    /// Every level, lowest first.
    pub const ALL: [IsaLevel; 6] = [
        IsaLevel::Scalar,
        IsaLevel::Avx2,
        IsaLevel::AvxVnni,
        IsaLevel::Avx512,
        IsaLevel::Avx512Vnni,
        IsaLevel::Amx,
    ];

    /// The name `INGOT_ISA` takes: `scalar`, `avx2`, `avx-vnni`, `avx512`, `avx512-vnni` or `amx`.
    pub fn name(self) -> &'static str {
        match self {
            IsaLevel::Scalar => "scalar",
            IsaLevel::Avx2 => "avx2",
            IsaLevel::AvxVnni => "avx-vnni",
            IsaLevel::Avx512 => "avx512",
            IsaLevel::Avx512Vnni => "avx512-vnni",
            IsaLevel::Amx => "amx",
        }
    }

    /// Parses a name of [`IsaLevel::name`].
    pub fn parse(name: &str) -> Option<IsaLevel> {
        IsaLevel::ALL.into_iter().find(|l| l.name() == name)
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

/// Proof that the CPU has AVX2, FMA and F16C.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2 {
    _proof: (),
}

/// Proof that the CPU has AVX2, FMA, F16C and AVX-VNNI (`vpdpbusd` on 256-bit VEX registers).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AvxVnni {
    _proof: (),
}

/// Proof that the CPU has AVX-512F, BW, VL and VNNI (with everything [`Avx512`] proves).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512Vnni {
    _proof: (),
}

/// Proof that the CPU has AVX-512F and AVX-512 BF16 (`vdpbf16ps`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512Bf16 {
    _proof: (),
}

/// Proof that the CPU has AMX-TILE, AMX-INT8 and AMX-BF16, that the OS granted this process the
/// tile state, and everything [`Avx512Vnni`] proves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Amx {
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

    /// `level`, or the CPU's best if that is lower (`INGOT_ISA` is not consulted).
    pub(crate) fn at_most(level: IsaLevel) -> Isa {
        Isa { level: level.min(cpu_level()) }
    }

    /// Every level this CPU runs, lowest first, whatever `INGOT_ISA` says: what tests compare.
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Isa> {
        let cpu = cpu_level();
        IsaLevel::ALL.into_iter().filter(|&l| l <= cpu).map(|level| Isa { level }).collect()
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

    /// The AVX-VNNI proof, if this level includes it and the CPU has the 256-bit VEX form.
    pub(crate) fn avx_vnni(self) -> Option<AvxVnni> {
        (self.level >= IsaLevel::AvxVnni && features().avx_vnni).then_some(AvxVnni { _proof: () })
    }

    /// The AVX-512 VNNI proof, if this level includes it.
    pub(crate) fn avx512_vnni(self) -> Option<Avx512Vnni> {
        (self.level >= IsaLevel::Avx512Vnni).then_some(Avx512Vnni { _proof: () })
    }

    /// The AVX-512 BF16 proof, if this level includes AVX-512 VNNI and the CPU has BF16.
    pub(crate) fn avx512_bf16(self) -> Option<Avx512Bf16> {
        (self.level >= IsaLevel::Avx512Vnni && features().avx512_bf16).then_some(Avx512Bf16 { _proof: () })
    }

    /// The AMX proof, if this level includes it.
    pub(crate) fn amx(self) -> Option<Amx> {
        (self.level >= IsaLevel::Amx).then_some(Amx { _proof: () })
    }
}

impl Avx512Vnni {
    /// The AVX-512F proof that VNNI includes.
    pub(crate) fn avx512(self) -> Avx512 {
        Avx512 { _proof: () }
    }
}

impl AvxVnni {
    /// The AVX2 proof that AVX-VNNI includes.
    pub(crate) fn avx2(self) -> Avx2 {
        Avx2 { _proof: () }
    }
}

impl Amx {
    /// The AVX-512 VNNI proof that the AMX level includes.
    pub(crate) fn avx512_vnni(self) -> Avx512Vnni {
        Avx512Vnni { _proof: () }
    }
}

impl From<Avx512> for Isa {
    /// The AVX-512 level, proven by its token.
    fn from(_: Avx512) -> Isa {
        Isa { level: IsaLevel::Avx512 }
    }
}

/// The instruction-set extensions the kernels ask about, read from the CPU once.
#[derive(Debug, Clone, Copy, Default)]
struct Features {
    avx2: bool,
    avx_vnni: bool,
    avx512: bool,
    avx512_vnni: bool,
    avx512_bf16: bool,
    amx: bool,
}

fn features() -> Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    *FEATURES.get_or_init(read_features)
}

#[cfg(target_arch = "x86_64")]
fn read_features() -> Features {
    use std::is_x86_feature_detected as has;
    let avx2 = has!("avx2") && has!("fma") && has!("f16c");
    let avx512 = avx2 && has!("avx512f") && has!("popcnt");
    let avx512_vnni = avx512 && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni");
    Features {
        avx2,
        avx_vnni: avx2 && has!("avxvnni"),
        avx512,
        avx512_vnni,
        avx512_bf16: avx512 && has!("avx512bf16"),
        amx: avx512_vnni && super::amx::request_tiles(),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn read_features() -> Features {
    Features::default()
}

/// The best level the running CPU supports.
fn cpu_level() -> IsaLevel {
    let f = features();
    match () {
        _ if f.amx => IsaLevel::Amx,
        _ if f.avx512_vnni => IsaLevel::Avx512Vnni,
        _ if f.avx512 => IsaLevel::Avx512,
        _ if f.avx_vnni => IsaLevel::AvxVnni,
        _ if f.avx2 => IsaLevel::Avx2,
        _ => IsaLevel::Scalar,
    }
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
            assert_eq!(isa.avx512_vnni().is_some(), isa.level() >= IsaLevel::Avx512Vnni);
            assert_eq!(isa.amx().is_some(), isa.level() >= IsaLevel::Amx);
            if isa.avx_vnni().is_some() || isa.avx512_bf16().is_some() {
                assert!(isa.level() >= IsaLevel::AvxVnni);
            }
        }
        eprintln!(
            "kernel paths this CPU runs: {:?}",
            available.iter().map(|i| i.level()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn names_round_trip() {
        for l in IsaLevel::ALL {
            assert_eq!(IsaLevel::parse(l.name()), Some(l));
        }
        assert_eq!(IsaLevel::parse("sse9"), None);
    }
}
