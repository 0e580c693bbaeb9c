//! The AMX-INT8 kernel: `tdpbusd` on tiles, through inline assembly (the AMX intrinsics and
//! target features are not stable Rust; LLVM assembles the instructions in `asm!`).
//!
//! Palette 1, all eight tiles 16 rows × 64 bytes: tmm4/tmm5 hold the codes of 32 input rows
//! over a 64-`k` block (A, u8, one row per input row, stride `kpad`), tmm6/tmm7 a 64-`k` block
//! of two panels (B, s8, in the VNNI layout that the packed panels already are: 16 rows of one
//! 64-byte [`Group`](super::Group), stride 64), and tmm0–tmm3 the 32 × 32 i32 accumulators.
//! Each step multiplies one 64-`k` block; after the last, the accumulators go to a 4 KiB
//! buffer and through the AVX-512 epilogue. Tiles read 32 (or 16) rows whatever the rows left:
//! the codes are padded with zero rows to a multiple of 32, and the extra rows are not stored.
//! An odd last panel is multiplied twice (the second copy is not stored).
//!
//! Not run on the development machine (no AMX); the tests run it wherever the CPU has AMX.

use std::arch::asm;
use std::arch::x86_64::*;
use std::ops::Range;

use super::super::gemm::Dst;
use super::super::isa::Amx;
use super::avx512::Epilogue;
use super::{Act, QuantWeight, Rows, KB, NR};

/// Rows per step: two A tiles of 16.
pub(super) const MR: usize = 32;

/// Bytes of one tile row.
const TILE_ROW: usize = 64;

/// Bytes of one B tile (16 rows of 64 bytes): the step between 64-`k` blocks of a panel.
const B_TILE: usize = 16 * TILE_ROW;

/// The 64-byte operand of `ldtilecfg`.
#[repr(C, align(64))]
struct TileConfig {
    /// The palette: 1 (eight tiles of up to 16 rows × 64 bytes).
    palette: u8,
    /// The row an interrupted tile instruction restarts at: 0.
    start_row: u8,
    /// Must be zero.
    reserved: [u8; 14],
    /// Bytes per row of each tile.
    colsb: [u16; 16],
    /// Rows of each tile.
    rows: [u8; 16],
}

const _: () = assert!(size_of::<TileConfig>() == 64);

/// The accumulators of one step: 32 rows × 32 outputs (tmm0 | tmm1 over tmm2 | tmm3).
#[repr(C, align(64))]
struct Accumulators([[i32; 2 * NR]; MR]);

/// Bytes per row of [`Accumulators`]: the store stride.
const C_ROW: usize = 2 * NR * 4;

/// The output columns of panels `panels` for every row of `x`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) fn rows(
    t: Amx,
    x: Rows<'_>,
    w: &QuantWeight,
    panels: Range<usize>,
    bias: Option<&[f32]>,
    act: Act,
    dst: &mut Dst<'_>,
) {
    let (n, kpad) = (x.n(), x.kpad);
    let blocks = kpad / KB;
    // Every tile load stays inside the codes (padded to whole steps) and the panels.
    assert!(
        kpad == w.kpad()
            && blocks > 0
            && n.div_ceil(MR) * MR * kpad <= x.codes.len()
            && panels.end <= w.n_panels()
            && w.kg() * 4 == kpad
    );
    let mut cfg = TileConfig { palette: 1, start_row: 0, reserved: [0; 14], colsb: [0; 16], rows: [0; 16] };
    cfg.colsb[..8].fill(TILE_ROW as u16);
    cfg.rows[..8].fill(16);
    // SAFETY: the `Amx` token proves the CPU has AMX-TILE and AMX-INT8 and that the OS granted
    // this process the tile state; `cfg` is a valid palette-1 configuration of tiles 0–7.
    unsafe { asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack, readonly, preserves_flags)) };
    let avx512 = t.avx512_vnni().avx512();
    let mut c = Accumulators([[0; 2 * NR]; MR]);
    let mut q = panels.start;
    while q < panels.end {
        let two = q + 1 < panels.end;
        let b0 = w.panel(q).as_ptr();
        let b1 = if two { w.panel(q + 1).as_ptr() } else { b0 };
        let pair = two.then(|| Epilogue::<2>::new(avx512, w, q, bias, act));
        let single = (!two).then(|| Epilogue::<1>::new(avx512, w, q, bias, act));
        for i in (0..n).step_by(MR) {
            let a0 = x.codes[i * kpad..].as_ptr();
            if n - i > 16 {
                let a1 = x.codes[(i + 16) * kpad..].as_ptr();
                // SAFETY: tiles are configured (above). The A loads read rows i..i + 32 of
                // `kpad` codes, inside the codes (asserted: i + 32 ≤ ceil(n / 32)·32 rows); the
                // B loads read `blocks` tiles of 1 KiB from each panel start, which is the whole
                // panel (asserted); the stores write 32 rows of 128 bytes of `c`.
                unsafe {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        "2:",
                        "tileloadd tmm4, [{a0} + {lda}*1]",
                        "tileloadd tmm5, [{a1} + {lda}*1]",
                        "tileloadd tmm6, [{b0} + {ldb}*1]",
                        "tileloadd tmm7, [{b1} + {ldb}*1]",
                        "tdpbusd tmm0, tmm4, tmm6",
                        "tdpbusd tmm1, tmm4, tmm7",
                        "tdpbusd tmm2, tmm5, tmm6",
                        "tdpbusd tmm3, tmm5, tmm7",
                        "add {a0}, {step_a}",
                        "add {a1}, {step_a}",
                        "add {b0}, {step_b}",
                        "add {b1}, {step_b}",
                        "dec {blocks}",
                        "jnz 2b",
                        "tilestored [{c} + {ldc}*1], tmm0",
                        "tilestored [{c} + {ldc}*1 + {half}], tmm1",
                        "tilestored [{c} + {ldc}*1 + {lower}], tmm2",
                        "tilestored [{c} + {ldc}*1 + {lower_half}], tmm3",
                        a0 = inout(reg) a0 => _,
                        a1 = inout(reg) a1 => _,
                        b0 = inout(reg) b0 => _,
                        b1 = inout(reg) b1 => _,
                        blocks = inout(reg) blocks => _,
                        lda = in(reg) kpad,
                        ldb = in(reg) TILE_ROW,
                        ldc = in(reg) C_ROW,
                        c = in(reg) c.0.as_mut_ptr(),
                        step_a = const KB,
                        step_b = const B_TILE,
                        half = const NR * 4,
                        lower = const 16 * C_ROW,
                        lower_half = const 16 * C_ROW + NR * 4,
                        options(nostack),
                    );
                }
            } else {
                // SAFETY: as above, with only rows i..i + 16 (tmm4) and the upper half of `c`.
                unsafe {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "2:",
                        "tileloadd tmm4, [{a0} + {lda}*1]",
                        "tileloadd tmm6, [{b0} + {ldb}*1]",
                        "tileloadd tmm7, [{b1} + {ldb}*1]",
                        "tdpbusd tmm0, tmm4, tmm6",
                        "tdpbusd tmm1, tmm4, tmm7",
                        "add {a0}, {step_a}",
                        "add {b0}, {step_b}",
                        "add {b1}, {step_b}",
                        "dec {blocks}",
                        "jnz 2b",
                        "tilestored [{c} + {ldc}*1], tmm0",
                        "tilestored [{c} + {ldc}*1 + {half}], tmm1",
                        a0 = inout(reg) a0 => _,
                        b0 = inout(reg) b0 => _,
                        b1 = inout(reg) b1 => _,
                        blocks = inout(reg) blocks => _,
                        lda = in(reg) kpad,
                        ldb = in(reg) TILE_ROW,
                        ldc = in(reg) C_ROW,
                        c = in(reg) c.0.as_mut_ptr(),
                        step_a = const KB,
                        step_b = const B_TILE,
                        half = const NR * 4,
                        options(nostack),
                    );
                }
            }
            for r in 0..(n - i).min(MR) {
                let row = c.0[r].as_ptr();
                // SAFETY: a row of `c` is 32 i32 (two vectors), 64-byte aligned.
                let (lo, hi) =
                    unsafe { (_mm512_load_si512(row.cast()), _mm512_load_si512(row.add(NR).cast())) };
                match (&pair, &single) {
                    (Some(e), _) => e.store([lo, hi], x.quant[i + r], i + r, dst),
                    (_, Some(e)) => e.store([lo], x.quant[i + r], i + r, dst),
                    _ => {}
                }
            }
        }
        q += if two { 2 } else { 1 };
    }
    // SAFETY: the tiles were configured above; releasing returns them to their initial state.
    unsafe { asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
}
