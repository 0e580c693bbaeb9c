//! Window and global pooling of NCHW planes (`MaxPool`, `AveragePool`, `GlobalMaxPool`,
//! `GlobalAveragePool`), with ONNX Runtime's results.
//!
//! A window's taps in the padding never count: a maximum is over the taps inside the input
//! (starting from the lowest f32, so NaN never wins: ONNX Runtime's MLAS rule), an average
//! divides their sum by their number, or with `count_include_pad` by the taps of the window's
//! extent clipped to the padded input (ONNX Runtime's `AveragePool` of opset 19; the same as the
//! full kernel unless `ceil_mode` lets the last window hang past the padding). A window with no
//! tap inside the input gives the lowest f32 (max) or 0 (average). Pooling is memory-bound:
//! plain loops, planes split across threads.

use super::window::Window;
use super::PARALLEL_MIN_WORK;
use crate::parallel;

/// What a window pool computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool2d {
    /// The largest value.
    Max,
    /// The mean, over the taps inside the input or (`count_include_pad`) the padded extent.
    Average { count_include_pad: bool },
}

/// `planes` consecutive `[H, W]` planes (`hw`) of `x` pooled by `pool` over `win` into
/// `planes × out_hw` values of `out`; `out_hw` must be the window's output size.
///
/// # Panics
/// If the lengths do not match the shapes.
pub(crate) fn pool2d(
    pool: Pool2d,
    win: &Window,
    x: &[f32],
    planes: usize,
    hw: [usize; 2],
    out_hw: [usize; 2],
    out: &mut [f32],
) {
    let (size, out_size) = (hw[0] * hw[1], out_hw[0] * out_hw[1]);
    assert!(x.len() == planes * size && out.len() == planes * out_size, "pool2d: shapes");
    if out_size == 0 {
        return;
    }
    let run = |p: usize, o: &mut [f32]| plane(pool, win, &x[p * size..][..size], hw, out_hw, o);
    let work = out.len().saturating_mul(win.kernel[0] * win.kernel[1]);
    if work < PARALLEL_MIN_WORK || planes < 2 {
        out.chunks_exact_mut(out_size).enumerate().for_each(|(p, o)| run(p, o));
    } else {
        parallel::for_each_chunk_mut(out, out_size, run);
    }
}

fn plane(pool: Pool2d, win: &Window, x: &[f32], [h, w]: [usize; 2], [oh, ow]: [usize; 2], out: &mut [f32]) {
    let [dh, dw] = win.dilations;
    for (oy, row) in out.chunks_exact_mut(ow).enumerate().take(oh) {
        let (y0, ty) = win.taps(0, oy, h);
        for (ox, o) in row.iter_mut().enumerate() {
            let (x0, tx) = win.taps(1, ox, w);
            let values = ty.clone().flat_map(|i| {
                let line = &x[(y0 + (i * dh) as isize) as usize * w..][..w];
                tx.clone().map(move |j| line[(x0 + (j * dw) as isize) as usize])
            });
            *o = match pool {
                Pool2d::Max => values.fold(f32::MIN, |m, v| if v > m { v } else { m }),
                Pool2d::Average { count_include_pad } => {
                    let count = ty.len() * tx.len();
                    if count == 0 {
                        0.0
                    } else {
                        let sum: f32 = values.sum();
                        let divisor = if count_include_pad {
                            extent(win, 0, y0, h) * extent(win, 1, x0, w)
                        } else {
                            count
                        };
                        sum / divisor as f32
                    }
                }
            };
        }
    }
}

/// The taps of a window starting at input index `origin` along axis `a` that lie within the
/// padded input (`count_include_pad`'s divisor along that axis).
fn extent(win: &Window, a: usize, origin: isize, size: usize) -> usize {
    let end = (origin + (win.kernel[a] * win.dilations[a]) as isize).min((size + win.pads[a + 2]) as isize);
    1 + (end - origin - 1).max(0) as usize / win.dilations[a]
}

/// The mean (`max` false) or maximum of each of the `planes` consecutive planes of `size`
/// values in `x`, into `out` (`planes` values).
///
/// # Panics
/// If the lengths do not match.
pub(crate) fn global_pool(max: bool, x: &[f32], size: usize, out: &mut [f32]) {
    assert!(x.len() == out.len() * size, "global pool: shapes");
    for (o, plane) in out.iter_mut().zip(x.chunks_exact(size.max(1))) {
        *o = if max {
            plane.iter().fold(f32::MIN, |m, &v| if v > m { v } else { m })
        } else {
            (plane.iter().map(|&v| f64::from(v)).sum::<f64>() / size as f64) as f32
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(kernel: [usize; 2], strides: [usize; 2], pads: [usize; 4], dilations: [usize; 2]) -> Window {
        Window { kernel, strides, pads, dilations }
    }

    fn run(pool: Pool2d, w: &Window, x: &[f32], hw: [usize; 2], out_hw: [usize; 2]) -> Vec<f32> {
        let planes = x.len() / (hw[0] * hw[1]);
        let mut out = vec![f32::NAN; planes * out_hw[0] * out_hw[1]];
        pool2d(pool, w, x, planes, hw, out_hw, &mut out);
        out
    }

    /// 1 2 3 4 / 5 6 7 8 / 9 10 11 12 (3 × 4).
    fn grid() -> Vec<f32> {
        (1..=12).map(|v| v as f32).collect()
    }

    #[test]
    fn max_pool_ignores_padding_and_nan() {
        // 2×2, stride 2, pads top 1 and left 1: windows start at -1.
        let w = win([2, 2], [2, 2], [1, 1, 0, 0], [1, 1]);
        let negative: Vec<f32> = grid().iter().map(|v| -v).collect();
        // Rows {-1: pad, 0}, {1, 2}; columns {pad, 0}, {1, 2}, {3, pad past the edge}.
        assert_eq!(run(Pool2d::Max, &w, &negative, [3, 4], [2, 3]), [-1.0, -2.0, -4.0, -5.0, -6.0, -8.0]);
        let mut x = grid();
        x[5] = f32::NAN;
        let w1 = win([2, 2], [1, 1], [0; 4], [1, 1]);
        assert_eq!(run(Pool2d::Max, &w1, &x, [3, 4], [2, 3]), [5.0, 7.0, 8.0, 10.0, 11.0, 12.0]);
        // Dilation 2 across: taps at columns 0 and 2, 1 and 3.
        let wd = win([1, 2], [1, 1], [0; 4], [1, 2]);
        assert_eq!(run(Pool2d::Max, &wd, &grid(), [3, 4], [3, 2]), [3.0, 4.0, 7.0, 8.0, 11.0, 12.0]);
    }

    #[test]
    fn average_pool_counts_only_input_values_unless_asked() {
        let w = win([2, 2], [2, 2], [1, 1, 1, 1], [1, 1]);
        let exclude = run(Pool2d::Average { count_include_pad: false }, &w, &grid(), [3, 4], [2, 3]);
        assert_eq!(exclude, [1.0, 2.5, 4.0, 7.0, 8.5, 10.0]);
        let include = run(Pool2d::Average { count_include_pad: true }, &w, &grid(), [3, 4], [2, 3]);
        assert_eq!(include, [0.25, 1.25, 1.0, 3.5, 8.5, 5.0]);
    }

    #[test]
    fn ceil_mode_windows_past_the_padding_count_only_the_padded_extent() {
        // 3 values, kernel 2, stride 2, ceil mode: windows [0, 1] and [2, (3)]; the second hangs
        // past the input (no padding), so even count_include_pad divides its sum by 1.
        let w = win([1, 2], [1, 2], [0; 4], [1, 1]);
        let x = [1.0, 3.0, 8.0];
        for count_include_pad in [false, true] {
            assert_eq!(run(Pool2d::Average { count_include_pad }, &w, &x, [1, 3], [1, 2]), [2.0, 8.0]);
        }
        // With a right pad of 1 the second window is [2, pad]: 8 / 2 with count_include_pad.
        let padded = win([1, 2], [1, 2], [0, 0, 0, 1], [1, 1]);
        assert_eq!(run(Pool2d::Average { count_include_pad: true }, &padded, &x, [1, 3], [1, 2]), [2.0, 4.0]);
        assert_eq!(run(Pool2d::Max, &w, &x, [1, 3], [1, 2]), [3.0, 8.0]);
    }

    #[test]
    fn planes_pool_independently_in_parallel() {
        let planes = 64;
        let x: Vec<f32> = (0..planes * 16 * 16).map(|i| ((i * 7919) % 1013) as f32).collect();
        let w = win([3, 3], [1, 1], [1; 4], [1, 1]);
        let all = run(Pool2d::Max, &w, &x, [16, 16], [16, 16]);
        for p in [0, 17, 63] {
            let one = run(Pool2d::Max, &w, &x[p * 256..][..256], [16, 16], [16, 16]);
            assert_eq!(&all[p * 256..][..256], one.as_slice());
        }
    }

    #[test]
    fn global_pools_reduce_each_plane() {
        let x = [1.0, 2.0, 3.0, 4.0, -1.0, f32::NAN, -3.0, -2.0];
        let mut out = [f32::NAN; 2];
        global_pool(false, &x[..4], 2, &mut out);
        assert_eq!(out, [1.5, 3.5]);
        global_pool(true, &x, 4, &mut out);
        assert_eq!(out, [4.0, -1.0]);
    }
}
