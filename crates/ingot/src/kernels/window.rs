//! A 2-D window sliding over the `H × W` planes of NCHW images: the geometry `conv` and
//! `pool2d` share, and which of its taps land inside the input.

use std::ops::Range;

/// Kernel size, strides, implicit padding and dilations of a 2-D window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Kernel height and width, in taps.
    pub(crate) kernel: [usize; 2],
    /// Steps between output positions, down and across.
    pub(crate) strides: [usize; 2],
    /// Padding: top, left, bottom, right.
    pub(crate) pads: [usize; 4],
    /// Spacing of the taps, down and across.
    pub(crate) dilations: [usize; 2],
}

impl Window {
    /// The input index of tap 0 at output position `o` along axis `a` (0: height, 1: width),
    /// which is negative in the leading padding.
    #[inline]
    pub(crate) fn origin(&self, a: usize, o: usize) -> isize {
        (o * self.strides[a]) as isize - self.pads[a] as isize
    }

    /// The taps `t` of output position `o` along axis `a` whose input index
    /// `origin + t · dilation` lies in `0..size`, and that origin.
    #[inline]
    pub(crate) fn taps(&self, a: usize, o: usize, size: usize) -> (isize, Range<usize>) {
        let origin = self.origin(a, o);
        let d = self.dilations[a] as isize;
        let k = self.kernel[a] as isize;
        // First tap at or after index 0, first tap at or after index `size`.
        let lo = if origin >= 0 { 0 } else { (-origin + d - 1) / d };
        let hi = if (size as isize) > origin { (size as isize - origin + d - 1) / d } else { 0 };
        let (lo, hi) = (lo.min(k), hi.min(k));
        (origin, lo as usize..hi.max(lo) as usize)
    }

    /// Whether every tap of every output position lies inside the input: no padding and every
    /// stride and dilation 1, a 1 × 1 kernel (the convolution is then a plain matrix product).
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.strides == [1, 1] && self.pads == [0; 4]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_inside_the_input_match_a_scan() {
        for (k, s, p, d, size) in
            [(3, 1, 1, 1, 5), (3, 2, 2, 2, 4), (5, 1, 4, 1, 2), (2, 3, 0, 3, 7), (4, 1, 0, 2, 3)]
        {
            let w = Window { kernel: [k, 1], strides: [s, 1], pads: [p, 0, p, 0], dilations: [d, 1] };
            for o in 0..(size + 2 * p) / s + 1 {
                let (origin, taps) = w.taps(0, o, size);
                let want: Vec<usize> =
                    (0..k).filter(|&t| (0..size as isize).contains(&(origin + (t * d) as isize))).collect();
                assert_eq!(taps.collect::<Vec<_>>(), want, "k={k} s={s} p={p} d={d} size={size} o={o}");
            }
        }
    }
}
