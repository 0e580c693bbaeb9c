//! Border padding (`Pad`) of row-major tensors and 2-D resizing (`Resize`) of NCHW planes, with
//! ONNX Runtime's results: coordinates are mapped back to the input in f32 by ONNX's formulas,
//! and a bilinear value is ONNX Runtime's `dx2·dy2·x11 + dx1·dy2·x21 + dx2·dy1·x12 + dx1·dy1·x22`
//! in that order. Both are memory-bound: plain loops.

use super::layout::strides;

/// What `Pad` writes outside the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PadFill {
    /// A constant value.
    Constant(f32),
    /// The input mirrored about its first and last values (which are not repeated).
    Reflect,
    /// The input's first or last value along the axis, repeated.
    Edge,
}

/// The input index that output index `o` of an axis of `dim` values padded by `begin` in front
/// reads, or `None` for the constant. `dim` must be positive unless `fill` is a constant.
fn pad_source(o: usize, dim: usize, begin: usize, fill: PadFill) -> Option<usize> {
    let (i, d) = (o as isize - begin as isize, dim as isize);
    if (0..d).contains(&i) {
        return Some(i as usize);
    }
    match fill {
        PadFill::Constant(_) => None,
        PadFill::Edge => Some(i.clamp(0, d - 1) as usize),
        PadFill::Reflect if d == 1 => Some(0),
        PadFill::Reflect => {
            let period = 2 * (d - 1);
            let m = i.rem_euclid(period);
            Some(if m < d { m } else { period - m } as usize)
        }
    }
}

/// `x` (of `shape`, rank ≥ 1) padded by `pads` = `[begin₀, …, begin_{r−1}, end₀, …, end_{r−1}]`
/// into `out` (of the padded shape), the border written by `fill`.
///
/// # Panics
/// If the lengths do not match the shapes, or an axis padded by `Reflect` or `Edge` is empty.
pub(crate) fn pad(x: &[f32], shape: &[usize], pads: &[usize], fill: PadFill, out: &mut [f32]) {
    let rank = shape.len();
    assert!(rank > 0 && pads.len() == 2 * rank && x.len() == shape.iter().product::<usize>(), "pad: shapes");
    let out_shape: Vec<usize> = (0..rank).map(|a| shape[a] + pads[a] + pads[rank + a]).collect();
    assert!(out.len() == out_shape.iter().product::<usize>(), "pad: output shape");
    if out.is_empty() {
        return;
    }
    let value = match fill {
        PadFill::Constant(v) => v,
        _ => 0.0,
    };
    let maps: Vec<Vec<Option<usize>>> = (0..rank)
        .map(|a| (0..out_shape[a]).map(|o| pad_source(o, shape[a], pads[a], fill)).collect())
        .collect();
    let s = strides(shape);
    let (last, outer) = maps.split_last().unwrap_or((&maps[0], &[]));
    let mut index = vec![0usize; outer.len()];
    for row in out.chunks_exact_mut(out_shape[rank - 1]) {
        let base: Option<usize> = outer
            .iter()
            .zip(&index)
            .zip(&s)
            .try_fold(0usize, |acc, ((m, &i), &st)| Some(acc + m[i]? * st as usize));
        match base {
            None => row.fill(value),
            Some(base) => {
                for (o, src) in row.iter_mut().zip(last) {
                    *o = src.map_or(value, |j| x[base + j]);
                }
            }
        }
        for d in (0..outer.len()).rev() {
            index[d] += 1;
            if index[d] < outer[d].len() {
                break;
            }
            index[d] = 0;
        }
    }
}

/// How an output coordinate maps back to the input (ONNX's `coordinate_transformation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coord {
    /// `(x + 0.5) / scale − 0.5`.
    HalfPixel,
    /// `x / scale`.
    Asymmetric,
    /// `x · (in − 1) / (out − 1)` (0 for an output of 1).
    AlignCorners,
    /// As `HalfPixel`, but 0 for an output of 1.
    PytorchHalfPixel,
}

/// How a nearest resize rounds a mapped coordinate (ONNX's `nearest_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rounding {
    /// To the nearest, halves down.
    RoundPreferFloor,
    /// To the nearest, halves up.
    RoundPreferCeil,
    /// Down.
    Floor,
    /// Up.
    Ceil,
}

/// How a resize computes an output value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interpolation {
    /// The nearest input value, rounding by the mode.
    Nearest(Rounding),
    /// Bilinear interpolation of the four nearest input values.
    Linear,
}

/// A 2-D resize: interpolation, coordinate mapping and the scales the mapping divides by
/// (`None`: output size / input size, as ONNX Runtime does for a `sizes` input).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Resize {
    /// Nearest or bilinear.
    pub(crate) interpolation: Interpolation,
    /// The coordinate mapping.
    pub(crate) coord: Coord,
    /// Height and width scales.
    pub(crate) scales: Option<[f32; 2]>,
}

impl Resize {
    /// The input coordinate of output coordinate `o` along an axis resized from `len` to
    /// `out_len` by `scale`.
    fn original(&self, o: usize, scale: f32, len: usize, out_len: usize) -> f32 {
        let (x, len, out_len) = (o as f32, len as f32, out_len as f32);
        match self.coord {
            Coord::HalfPixel => (x + 0.5) / scale - 0.5,
            Coord::Asymmetric => x / scale,
            Coord::AlignCorners if out_len == 1.0 => 0.0,
            Coord::AlignCorners => x * (len - 1.0) / (out_len - 1.0),
            Coord::PytorchHalfPixel if out_len > 1.0 => (x + 0.5) / scale - 0.5,
            Coord::PytorchHalfPixel => 0.0,
        }
    }

    /// The scale of axis `a` (0: height, 1: width) resized from `len` to `out_len`.
    fn scale(&self, a: usize, len: usize, out_len: usize) -> f32 {
        self.scales.map_or(out_len as f32 / len as f32, |s| s[a])
    }

    /// For each output index along an axis: the nearest input index.
    fn nearest(&self, a: usize, rounding: Rounding, len: usize, out_len: usize) -> Vec<usize> {
        let scale = self.scale(a, len, out_len);
        (0..out_len)
            .map(|o| {
                let x = self.original(o, scale, len, out_len);
                let r = match rounding {
                    Rounding::RoundPreferFloor if x == x.trunc() + 0.5 => x.floor(),
                    Rounding::RoundPreferFloor | Rounding::RoundPreferCeil => x.round(),
                    Rounding::Floor => x.floor(),
                    Rounding::Ceil => x.ceil(),
                };
                (r.max(0.0) as usize).min(len - 1)
            })
            .collect()
    }

    /// For each output index along an axis: the two input indices and their weights
    /// `(i1, i2, d1, d2)` (ONNX Runtime's: `i1`'s weight is `d2`, `i2`'s is `d1`).
    fn linear(&self, a: usize, len: usize, out_len: usize) -> Vec<(usize, usize, f32, f32)> {
        let scale = self.scale(a, len, out_len);
        (0..out_len)
            .map(|o| {
                let x = if scale == 1.0 { o as f32 } else { self.original(o, scale, len, out_len) };
                let x = x.min((len - 1) as f32).max(0.0);
                let i1 = (x as usize).min(len - 1);
                let i2 = (i1 + 1).min(len - 1);
                if i1 == i2 {
                    (i1, i2, 0.5, 0.5)
                } else {
                    (i1, i2, (x - i1 as f32).abs(), (x - i2 as f32).abs())
                }
            })
            .collect()
    }
}

/// `planes` consecutive `[H, W]` planes (`hw`, neither empty) of `x` resized to `out_hw` into
/// `out`.
///
/// # Panics
/// If the lengths do not match the shapes or the input planes are empty.
pub(crate) fn resize(
    r: &Resize,
    x: &[f32],
    planes: usize,
    hw: [usize; 2],
    out_hw: [usize; 2],
    out: &mut [f32],
) {
    let ([h, w], [oh, ow]) = (hw, out_hw);
    assert!(h > 0 && w > 0 && x.len() == planes * h * w && out.len() == planes * oh * ow, "resize: shapes");
    if out.is_empty() {
        return;
    }
    let planes_out = out.chunks_exact_mut(oh * ow).zip(x.chunks_exact(h * w));
    match r.interpolation {
        Interpolation::Nearest(rounding) => {
            let (ys, xs) = (r.nearest(0, rounding, h, oh), r.nearest(1, rounding, w, ow));
            for (o, p) in planes_out {
                for (row, &y) in o.chunks_exact_mut(ow).zip(&ys) {
                    let line = &p[y * w..][..w];
                    row.iter_mut().zip(&xs).for_each(|(v, &i)| *v = line[i]);
                }
            }
        }
        Interpolation::Linear => {
            let (ys, xs) = (r.linear(0, h, oh), r.linear(1, w, ow));
            for (o, p) in planes_out {
                for (row, &(y1, y2, dy1, dy2)) in o.chunks_exact_mut(ow).zip(&ys) {
                    let (l1, l2) = (&p[y1 * w..][..w], &p[y2 * w..][..w]);
                    for (v, &(x1, x2, dx1, dx2)) in row.iter_mut().zip(&xs) {
                        *v =
                            dx2 * dy2 * l1[x1] + dx1 * dy2 * l1[x2] + dx2 * dy1 * l2[x1] + dx1 * dy1 * l2[x2];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32).collect()
    }

    #[test]
    fn pads_fill_reflect_and_repeat() {
        // [1, 3] = 0 1 2, padded 2 in front and 1 behind along the last axis.
        let run = |fill| {
            let mut out = vec![f32::NAN; 6];
            pad(&iota(3), &[1, 3], &[0, 2, 0, 1], fill, &mut out);
            out
        };
        assert_eq!(run(PadFill::Constant(-1.0)), [-1.0, -1.0, 0.0, 1.0, 2.0, -1.0]);
        assert_eq!(run(PadFill::Reflect), [2.0, 1.0, 0.0, 1.0, 2.0, 1.0]);
        assert_eq!(run(PadFill::Edge), [0.0, 0.0, 0.0, 1.0, 2.0, 2.0]);
        // [2, 2] padded one row on top and one column on the right with 9.
        let mut out = vec![f32::NAN; 9];
        pad(&iota(4), &[2, 2], &[1, 0, 0, 1], PadFill::Constant(9.0), &mut out);
        assert_eq!(out, [9.0, 9.0, 9.0, 0.0, 1.0, 9.0, 2.0, 3.0, 9.0]);
        // Reflect along both axes of a [2, 3] grid: rows 1 0 1, columns 1 0 1 2 1.
        let mut out = vec![f32::NAN; 15];
        pad(&iota(6), &[2, 3], &[1, 1, 0, 1], PadFill::Reflect, &mut out);
        assert_eq!(out, [4., 3., 4., 5., 4., 1., 0., 1., 2., 1., 4., 3., 4., 5., 4.]);
    }

    /// ONNX's reference `Resize` of one plane, written straight from the spec: coordinates
    /// mapped in f32 as ONNX Runtime does (which side of a half a mapped coordinate falls on
    /// depends on it), rounding and interpolation in f64.
    fn reference(r: &Resize, x: &[f32], [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<f32> {
        let coord = |o: usize, len: usize, out: usize, scale: f32| -> f64 {
            let (o, len, out) = (o as f32, len as f32, out as f32);
            f64::from(match r.coord {
                Coord::HalfPixel => (o + 0.5) / scale - 0.5,
                Coord::Asymmetric => o / scale,
                Coord::AlignCorners if out == 1.0 => 0.0,
                Coord::AlignCorners => o * (len - 1.0) / (out - 1.0),
                Coord::PytorchHalfPixel if out > 1.0 => (o + 0.5) / scale - 0.5,
                Coord::PytorchHalfPixel => 0.0,
            })
        };
        let scale = |a: usize, len: usize, out: usize| r.scales.map_or(out as f32 / len as f32, |s| s[a]);
        let at = |y: usize, xx: usize| f64::from(x[y * w + xx]);
        let mut out = Vec::new();
        for i in 0..oh {
            for j in 0..ow {
                let (cy, cx) = (coord(i, h, oh, scale(0, h, oh)), coord(j, w, ow, scale(1, w, ow)));
                out.push(match r.interpolation {
                    Interpolation::Nearest(m) => {
                        let near = |c: f64, len: usize| {
                            let v = match m {
                                Rounding::RoundPreferFloor if c.fract().abs() == 0.5 => c.floor(),
                                Rounding::RoundPreferCeil if c.fract().abs() == 0.5 => c.ceil(),
                                Rounding::RoundPreferFloor | Rounding::RoundPreferCeil => c.round(),
                                Rounding::Floor => c.floor(),
                                Rounding::Ceil => c.ceil(),
                            };
                            v.clamp(0.0, (len - 1) as f64) as usize
                        };
                        at(near(cy, h), near(cx, w)) as f32
                    }
                    Interpolation::Linear => {
                        let (cy, cx) = (cy.clamp(0.0, (h - 1) as f64), cx.clamp(0.0, (w - 1) as f64));
                        let (y0, x0) = (cy.floor() as usize, cx.floor() as usize);
                        let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
                        let (fy, fx) = (cy - y0 as f64, cx - x0 as f64);
                        let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                        let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                        (top * (1.0 - fy) + bottom * fy) as f32
                    }
                });
            }
        }
        out
    }

    #[test]
    fn resizes_by_hand() {
        // [1, 2] = 0 10 → width 4.
        let x = [0.0f32, 10.0];
        let run = |interpolation, coord, scales| {
            let mut out = vec![f32::NAN; 4];
            resize(&Resize { interpolation, coord, scales }, &x, 1, [1, 2], [1, 4], &mut out);
            out
        };
        let linear = Interpolation::Linear;
        // half_pixel: x = (o + 0.5) / 2 − 0.5 = −0.25, 0.25, 0.75, 1.25 → clamped 0, .25, .75, 1.
        assert_eq!(run(linear, Coord::HalfPixel, None), [0.0, 2.5, 7.5, 10.0]);
        // align_corners: o · 1 / 3.
        let ac = run(linear, Coord::AlignCorners, None);
        assert!((ac[1] - 10.0 / 3.0).abs() < 1e-5 && ac[3] == 10.0, "{ac:?}");
        assert_eq!(run(linear, Coord::Asymmetric, None), [0.0, 5.0, 10.0, 10.0]);
        // Nearest, asymmetric: 0, 0.5, 1, 1.5 → floor 0 0 1 1, ceil 0 1 1 1 (clamped).
        let near = |m| run(Interpolation::Nearest(m), Coord::Asymmetric, None);
        assert_eq!(near(Rounding::Floor), [0.0, 0.0, 10.0, 10.0]);
        assert_eq!(near(Rounding::Ceil), [0.0, 10.0, 10.0, 10.0]);
        assert_eq!(near(Rounding::RoundPreferFloor), [0.0, 0.0, 10.0, 10.0]);
        assert_eq!(near(Rounding::RoundPreferCeil), [0.0, 10.0, 10.0, 10.0]);
        // A given scale (ONNX's `scales` input) maps coordinates, not out / in: 4 / 2.5 = 1.6.
        let scaled = run(linear, Coord::Asymmetric, Some([1.0, 2.5]));
        assert_eq!(scaled, [0.0, 4.0, 8.0, 10.0]);
    }

    #[test]
    fn resizes_match_the_spec_reference() {
        let x: Vec<f32> = (0..5 * 7).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7).collect();
        let coords = [Coord::HalfPixel, Coord::Asymmetric, Coord::AlignCorners, Coord::PytorchHalfPixel];
        let modes = [
            Interpolation::Linear,
            Interpolation::Nearest(Rounding::RoundPreferFloor),
            Interpolation::Nearest(Rounding::RoundPreferCeil),
            Interpolation::Nearest(Rounding::Floor),
            Interpolation::Nearest(Rounding::Ceil),
        ];
        for out_hw in [[10, 14], [3, 4], [1, 1], [5, 7], [8, 3], [15, 21]] {
            for coord in coords {
                for interpolation in modes {
                    let r = Resize { interpolation, coord, scales: None };
                    let mut out = vec![f32::NAN; out_hw[0] * out_hw[1]];
                    resize(&r, &x, 1, [5, 7], out_hw, &mut out);
                    let want = reference(&r, &x, [5, 7], out_hw);
                    for (k, (a, b)) in out.iter().zip(&want).enumerate() {
                        assert!((a - b).abs() <= 1e-5, "{r:?} {out_hw:?} at {k}: {a} vs {b}");
                    }
                }
            }
        }
        // Two planes resize independently.
        let two: Vec<f32> = x.iter().chain(&x).map(|v| v * 2.0).collect();
        let r = Resize { interpolation: Interpolation::Linear, coord: Coord::HalfPixel, scales: None };
        let mut out = vec![f32::NAN; 2 * 9 * 9];
        resize(&r, &two, 2, [5, 7], [9, 9], &mut out);
        assert_eq!(out[..81], out[81..]);
    }
}
