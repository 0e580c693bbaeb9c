//! The `packed16` weight layout of a `Linear` node (docs/format.md §4.1).
//!
//! A `[m, k]` weight `W` is stored as `ceil(m / 16)` panels of `[k][16]`: panel `p`, row `i`,
//! lane `j` holds `W[16p + j, i]`, zero past `m`. This is a property of the file format, fixed
//! at format 1; a kernel that wants this layout reads the file's bytes in place, and one that
//! wants another layout repacks from it at load.

/// Output columns per panel of the `packed16` layout.
pub const PANEL_WIDTH: usize = 16;

/// Stored shape of a `packed16` weight for `m` outputs and `k` inputs: `[ceil(m / 16), k, 16]`.
///
/// ```
/// assert_eq!(ingot::format::packed::packed_shape(20, 3), [2, 3, 16]);
/// ```
pub fn packed_shape(m: usize, k: usize) -> [usize; 3] {
    [m.div_ceil(PANEL_WIDTH), k, PANEL_WIDTH]
}

/// Packs a row-major `[m, k]` weight into the `packed16` layout.
///
/// # Panics
/// If `w` does not hold `m × k` values.
///
/// ```
/// use ingot::format::packed::{pack, unpack};
/// let w: Vec<f32> = (0..6).map(|v| v as f32).collect(); // [[0, 1, 2], [3, 4, 5]]
/// let p = pack(&w, 2, 3);
/// assert_eq!(p.len(), 3 * 16);
/// assert_eq!((p[0], p[1], p[16], p[2]), (0.0, 3.0, 1.0, 0.0));
/// assert_eq!(unpack(&p, 2, 3), w);
/// ```
pub fn pack(w: &[f32], m: usize, k: usize) -> Vec<f32> {
    assert_eq!(w.len(), m * k, "pack: weight is not {m} × {k}");
    let mut panels = vec![0f32; m.div_ceil(PANEL_WIDTH) * k * PANEL_WIDTH];
    if k == 0 {
        return panels;
    }
    for (q, panel) in panels.chunks_exact_mut(k * PANEL_WIDTH).enumerate() {
        for c in 0..PANEL_WIDTH.min(m - q * PANEL_WIDTH) {
            let row = &w[(q * PANEL_WIDTH + c) * k..][..k];
            for (p, &v) in row.iter().enumerate() {
                panel[p * PANEL_WIDTH + c] = v;
            }
        }
    }
    panels
}

/// Unpacks a `packed16` weight into row-major `[m, k]`.
///
/// # Panics
/// If `panels` does not hold `ceil(m / 16) × k × 16` values.
pub fn unpack(panels: &[f32], m: usize, k: usize) -> Vec<f32> {
    let [p, _, _] = packed_shape(m, k);
    assert_eq!(panels.len(), p * k * PANEL_WIDTH, "unpack: not a packed16 weight for {m} × {k}");
    (0..m)
        .flat_map(|j| {
            let panel = &panels[(j / PANEL_WIDTH) * k * PANEL_WIDTH..];
            (0..k).map(move |i| panel[i * PANEL_WIDTH + j % PANEL_WIDTH])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_unpack_round_trip_with_zero_padding() {
        for (m, k) in [(1, 1), (16, 5), (17, 3), (40, 0), (33, 64)] {
            let w: Vec<f32> = (0..m * k).map(|v| v as f32 + 0.5).collect();
            let p = pack(&w, m, k);
            let [panels, _, _] = packed_shape(m, k);
            assert_eq!(p.len(), panels * k * PANEL_WIDTH);
            assert_eq!(unpack(&p, m, k), w, "{m} × {k}");
            let live: usize = p.iter().filter(|v| **v != 0.0).count();
            assert_eq!(live, m * k, "padding lanes must be zero");
        }
    }
}
