//! The window ops over `[N, C, H, W]` images (opset 2): `Conv`, `MaxPool`, `AveragePool`, the
//! global pools and `Resize` — their attributes and output shapes (docs/format.md §4).

use super::attrs::{attr_bool, attr_i64, attr_sizes, Attrs};
use super::ops::Op;
use super::shape::{Dim, Shape};

/// A 2-D window sliding over the `H × W` planes of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Kernel height and width.
    pub(crate) kernel: [usize; 2],
    /// Steps between windows, down and across.
    pub(crate) strides: [usize; 2],
    /// Implicit padding: top, left, bottom, right.
    pub(crate) pads: [usize; 4],
    /// Spacing of the kernel's taps, down and across.
    pub(crate) dilations: [usize; 2],
}

impl Window {
    /// Window positions along axis `a` (0: height, 1: width) over `size` input positions:
    /// `⌊(size + pads − span) / stride⌋ + 1` with `span = dilation·(kernel − 1) + 1`, or
    /// rounded up in `ceil` mode, dropping a last window that would start in the bottom or
    /// right padding (PyTorch's and ONNX Runtime's rule). `None` when no window fits.
    pub(crate) fn positions(&self, a: usize, size: usize, ceil: bool) -> Option<usize> {
        let span = self.dilations[a].checked_mul(self.kernel[a] - 1)?.checked_add(1)?;
        let head = self.pads[a];
        let padded = size.checked_add(head)?.checked_add(self.pads[a + 2])?;
        let steps = padded.checked_sub(span)?;
        let s = self.strides[a];
        let mut out = if ceil { steps.div_ceil(s) } else { steps / s } + 1;
        if ceil && (out - 1) * s >= size + head {
            out -= 1;
        }
        Some(out)
    }

    /// The output height and width over an `h × w` input (`None` when no window fits).
    pub(crate) fn output(&self, [h, w]: [usize; 2], ceil: bool) -> Option<[usize; 2]> {
        Some([self.positions(0, h, ceil)?, self.positions(1, w, ceil)?])
    }

    /// The kernel as `(height, width)`.
    pub(crate) fn kernel_pair(&self) -> (usize, usize) {
        (self.kernel[0], self.kernel[1])
    }

    /// The strides as `(down, across)`.
    pub(crate) fn stride_pair(&self) -> (usize, usize) {
        (self.strides[0], self.strides[1])
    }

    /// Strides, pads and dilations from `attrs` around a `kernel`.
    fn parse(attrs: &Attrs, kernel: [usize; 2]) -> Result<Window, String> {
        Ok(Window {
            kernel,
            strides: attr_sizes(attrs, "strides", Some([1, 1]), 1)?,
            pads: attr_sizes(attrs, "pads", Some([0; 4]), 0)?,
            dilations: attr_sizes(attrs, "dilations", Some([1, 1]), 1)?,
        })
    }

    /// The output `[OH, OW]` dimensions over an input's `[H, W]` (variable stays variable).
    fn output_dims(&self, h: Dim, w: Dim, ceil: bool) -> Result<[Dim; 2], String> {
        let mut out = [Dim::Var; 2];
        for (a, d) in [h, w].into_iter().enumerate() {
            if let Dim::Fixed(size) = d {
                let n = self.positions(a, size, ceil).ok_or_else(|| {
                    format!(
                        "the {}×{} window (dilations {:?}, pads {:?}) does not fit an input of {h:?}×{w:?}",
                        self.kernel[0], self.kernel[1], self.dilations, self.pads
                    )
                })?;
                out[a] = Dim::Fixed(n);
            }
        }
        Ok(out)
    }
}

/// The `[N, C, H, W]` dimensions of an image input.
fn image(s: &Shape, what: &str) -> Result<[Dim; 4], String> {
    <[Dim; 4]>::try_from(s.as_slice()).map_err(|_| format!("{what} must be 4-D [N, C, H, W], got {s:?}"))
}

/// `Conv`: x `[N, C, H, W]`, weight `[M, C/group, kH, kW]`, optional bias `[M]`.
pub(crate) fn conv(attrs: &Attrs, inputs: &[&Shape]) -> Result<(Op, Vec<Shape>), String> {
    let [n, c, h, w] = image(inputs[0], "input")?;
    let weight: Option<[usize; 4]> =
        inputs[1].iter().map(|d| d.fixed()).collect::<Option<Vec<usize>>>().and_then(|d| d.try_into().ok());
    let Some([m, cg, kh, kw]) = weight else {
        return Err(format!("weight must be a stored [M, C/group, kH, kW] tensor, got {:?}", inputs[1]));
    };
    let group = usize::try_from(attr_i64(attrs, "group", Some(1))?)
        .ok()
        .filter(|&g| g > 0)
        .ok_or("`group` must be positive")?;
    if let Dim::Fixed(c) = c {
        if cg.checked_mul(group) != Some(c) {
            return Err(format!("{c} input channels vs weight's {cg} per group × group {group}"));
        }
    }
    if !m.is_multiple_of(group) {
        return Err(format!("{m} output channels do not divide into {group} groups"));
    }
    if let Some(b) = inputs.get(2) {
        if b.as_slice() != [Dim::Fixed(m)] {
            return Err(format!("bias must be [{m}], got {b:?}"));
        }
    }
    let kernel = attr_sizes(attrs, "kernel_shape", Some([kh, kw]), 1)?;
    if kernel != [kh, kw] {
        return Err(format!("`kernel_shape` {kernel:?} differs from the weight's {kh}×{kw}"));
    }
    let window = Window::parse(attrs, kernel)?;
    let [oh, ow] = window.output_dims(h, w, false)?;
    Ok((Op::Conv { window, group }, vec![vec![n, Dim::Fixed(m), oh, ow]]))
}

/// `MaxPool` and `AveragePool`: x `[N, C, H, W]` → `[N, C, OH, OW]`.
pub(crate) fn pool(op: &str, attrs: &Attrs, input: &Shape) -> Result<(Op, Vec<Shape>), String> {
    let [n, c, h, w] = image(input, "input")?;
    let kernel = attr_sizes(attrs, "kernel_shape", None, 1)?;
    let window = Window::parse(attrs, kernel)?;
    for (i, &p) in window.pads.iter().enumerate() {
        if p >= kernel[i % 2] {
            return Err(format!("pads {:?} must be smaller than the kernel {kernel:?}", window.pads));
        }
    }
    let ceil_mode = attr_bool(attrs, "ceil_mode", false)?;
    let [oh, ow] = window.output_dims(h, w, ceil_mode)?;
    let pooled = match op {
        "MaxPool" => Op::MaxPool { window, ceil_mode },
        _ => Op::AveragePool {
            window,
            ceil_mode,
            count_include_pad: attr_bool(attrs, "count_include_pad", false)?,
        },
    };
    Ok((pooled, vec![vec![n, c, oh, ow]]))
}

/// `GlobalAveragePool` and `GlobalMaxPool`: `[N, C, d…]` → `[N, C, 1…]`.
pub(crate) fn global_pool(op: &str, input: &Shape) -> Result<(Op, Vec<Shape>), String> {
    if input.len() < 3 {
        return Err(format!("input must be [N, C, spatial…] (rank ≥ 3), got {input:?}"));
    }
    let mut out = input.clone();
    out[2..].fill(Dim::Fixed(1));
    let pooled = if op == "GlobalMaxPool" { Op::GlobalMaxPool } else { Op::GlobalAveragePool };
    Ok((pooled, vec![out]))
}

/// How `Resize` maps an output coordinate back to the input (`coordinate_transformation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoordMode {
    /// `(x + 0.5) / scale − 0.5` (the default).
    HalfPixel,
    /// `x / scale`.
    Asymmetric,
    /// `x · (in − 1) / (out − 1)`.
    AlignCorners,
    /// As `HalfPixel`, but 0 for an output of 1.
    PytorchHalfPixel,
}

/// How a nearest `Resize` rounds (`nearest_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NearestMode {
    /// Halves down (the default).
    RoundPreferFloor,
    /// Halves up.
    RoundPreferCeil,
    /// Down.
    Floor,
    /// Up.
    Ceil,
}

/// A `Resize` node's attributes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ResizeAttrs {
    /// Nearest (with its rounding) or bilinear (`None`).
    pub(crate) nearest: Option<NearestMode>,
    /// The coordinate mapping.
    pub(crate) coord: CoordMode,
    /// The output height and width.
    pub(crate) sizes: [usize; 2],
    /// The height and width scales the mapping divides by (default: output / input size).
    pub(crate) scales: Option<[f32; 2]>,
}

/// `Resize`: x `[N, C, H, W]` → `[N, C, sizes[0], sizes[1]]`.
pub(crate) fn resize(attrs: &Attrs, input: &Shape) -> Result<(Op, Vec<Shape>), String> {
    let [n, c, _, _] = image(input, "input")?;
    let text = |key: &str, default: &'static str| -> Result<String, String> {
        match attrs.get(key) {
            None => Ok(default.into()),
            Some(v) => {
                v.as_str().map(String::from).ok_or_else(|| format!("attribute `{key}` must be a string"))
            }
        }
    };
    let nearest = match text("nearest_mode", "round_prefer_floor")?.as_str() {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        other => return Err(format!("unknown nearest_mode `{other}`")),
    };
    let nearest = match text("mode", "nearest")?.as_str() {
        "nearest" => Some(nearest),
        "linear" if !attrs.contains_key("nearest_mode") => None,
        "linear" => return Err("`nearest_mode` goes with the nearest mode only".into()),
        other => return Err(format!("unknown mode `{other}` (nearest, linear)")),
    };
    let coord = match text("coordinate_transformation_mode", "half_pixel")?.as_str() {
        "half_pixel" => CoordMode::HalfPixel,
        "asymmetric" => CoordMode::Asymmetric,
        "align_corners" => CoordMode::AlignCorners,
        "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
        other => return Err(format!("unknown coordinate_transformation_mode `{other}`")),
    };
    let sizes = attr_sizes(attrs, "sizes", None, 1)?;
    let scales = match attrs.get("scales") {
        None => None,
        Some(v) => {
            let s: Option<Vec<f32>> =
                v.as_array().and_then(|a| a.iter().map(|s| s.as_f64().map(|s| s as f32)).collect());
            match s.as_deref() {
                Some(&[h, w]) if [h, w].iter().all(|s| s.is_finite() && *s > 0.0) => Some([h, w]),
                _ => return Err("attribute `scales` must be two positive numbers".into()),
            }
        }
    };
    let out = vec![n, c, Dim::Fixed(sizes[0]), Dim::Fixed(sizes[1])];
    Ok((Op::Resize(ResizeAttrs { nearest, coord, sizes, scales }), vec![out]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: serde_json::Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    fn fixed(d: &[usize]) -> Shape {
        d.iter().map(|&d| Dim::Fixed(d)).collect()
    }

    #[test]
    fn conv_shapes_follow_the_onnx_formula() {
        let x = vec![Dim::Var, Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(30)];
        let (w, b) = (fixed(&[8, 3, 3, 3]), fixed(&[8]));
        let (_, out) = conv(&attrs(json!({"pads": [1, 1, 1, 1]})), &[&x, &w, &b]).unwrap();
        assert_eq!(out[0], vec![Dim::Var, Dim::Fixed(8), Dim::Fixed(32), Dim::Fixed(30)]);
        // (32 + 0 + 1 − 2·2 − 1) / 2 + 1 = 15 down; (30 + 2 + 0 − 5) / 3 + 1 = 10 across.
        let a = attrs(json!({"strides": [2, 3], "pads": [0, 2, 1, 0], "dilations": [2, 2]}));
        let (op, out) = conv(&a, &[&x, &w]).unwrap();
        assert_eq!(out[0], vec![Dim::Var, Dim::Fixed(8), Dim::Fixed(15), Dim::Fixed(10)]);
        assert!(matches!(op, Op::Conv { group: 1, window } if window.pads == [0, 2, 1, 0]));
        // Depthwise; a variable height stays variable.
        let xv = vec![Dim::Fixed(1), Dim::Fixed(4), Dim::Var, Dim::Fixed(5)];
        let (_, out) = conv(&attrs(json!({"group": 4})), &[&xv, &fixed(&[4, 1, 3, 3])]).unwrap();
        assert_eq!(out[0], vec![Dim::Fixed(1), Dim::Fixed(4), Dim::Var, Dim::Fixed(3)]);
    }

    #[test]
    fn conv_refuses_inconsistent_operands() {
        let x = fixed(&[1, 4, 8, 8]);
        let err = |a: serde_json::Value, w: &[usize], b: Option<&[usize]>| {
            let (w, b) = (fixed(w), b.map(fixed));
            let mut inputs = vec![&x, &w];
            inputs.extend(b.as_ref());
            conv(&attrs(a), &inputs).unwrap_err()
        };
        assert!(err(json!({}), &[8, 3, 3, 3], None).contains("input channels"));
        assert!(err(json!({"group": 2}), &[7, 2, 3, 3], None).contains("do not divide"));
        assert!(err(json!({"group": 0}), &[8, 4, 3, 3], None).contains("`group`"));
        assert!(err(json!({}), &[8, 4, 3, 3], Some(&[4])).contains("bias"));
        assert!(err(json!({"kernel_shape": [3, 2]}), &[8, 4, 3, 3], None).contains("kernel_shape"));
        assert!(err(json!({"strides": [0, 1]}), &[8, 4, 3, 3], None).contains("strides"));
        assert!(err(json!({"pads": [1, 1]}), &[8, 4, 3, 3], None).contains("4 values"));
        assert!(err(json!({}), &[8, 4, 9, 3], None).contains("does not fit"));
        let bad_rank = conv(&attrs(json!({})), &[&fixed(&[4, 8, 8]), &fixed(&[8, 4, 3, 3])]).unwrap_err();
        assert!(bad_rank.contains("4-D"));
        let var_weight = vec![Dim::Var, Dim::Fixed(4), Dim::Fixed(3), Dim::Fixed(3)];
        assert!(conv(&attrs(json!({})), &[&x, &var_weight]).unwrap_err().contains("stored"));
    }

    #[test]
    fn ceil_mode_drops_a_window_that_starts_in_the_padding() {
        let w = Window { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1], dilations: [1, 1] };
        // 5 + 1 − 2 = 4 steps of 2: floor 3, ceil 3.
        assert_eq!(w.positions(0, 5, false), Some(3));
        assert_eq!(w.positions(0, 5, true), Some(3));
        // 4 + 1 − 2 = 3: floor 2, ceil 3, but window 3 would start at 4 (the padding): 2.
        assert_eq!(w.positions(0, 4, true), Some(2));
        let w3 = Window { kernel: [3, 3], strides: [2, 2], pads: [0; 4], dilations: [1, 1] };
        assert_eq!(w3.positions(1, 6, false), Some(2));
        assert_eq!(w3.positions(1, 6, true), Some(3));
        assert_eq!(w3.positions(1, 2, false), None);
    }

    #[test]
    fn pools_check_their_attributes() {
        let x = vec![Dim::Var, Dim::Fixed(2), Dim::Fixed(6), Dim::Fixed(6)];
        let a = attrs(json!({"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}));
        let (op, out) = pool("MaxPool", &a, &x).unwrap();
        assert_eq!(out[0], vec![Dim::Var, Dim::Fixed(2), Dim::Fixed(3), Dim::Fixed(3)]);
        assert!(matches!(op, Op::MaxPool { ceil_mode: true, .. }));
        let a = attrs(json!({"kernel_shape": [2, 2], "count_include_pad": true, "pads": [1, 1, 1, 1]}));
        let (op, out) = pool("AveragePool", &a, &x).unwrap();
        assert_eq!(out[0], vec![Dim::Var, Dim::Fixed(2), Dim::Fixed(7), Dim::Fixed(7)]);
        assert!(matches!(op, Op::AveragePool { count_include_pad: true, ceil_mode: false, .. }));
        assert!(pool("MaxPool", &attrs(json!({})), &x).unwrap_err().contains("kernel_shape"));
        let big_pad = attrs(json!({"kernel_shape": [2, 2], "pads": [0, 2, 0, 0]}));
        assert!(pool("MaxPool", &big_pad, &x).unwrap_err().contains("smaller than the kernel"));
        let bad_flag = attrs(json!({"kernel_shape": [2, 2], "ceil_mode": "yes"}));
        assert!(pool("MaxPool", &bad_flag, &x).unwrap_err().contains("ceil_mode"));
        assert!(pool("MaxPool", &a, &fixed(&[2, 6, 6])).unwrap_err().contains("4-D"));
    }

    #[test]
    fn resize_reads_its_modes_and_sizes() {
        let x = vec![Dim::Var, Dim::Fixed(3), Dim::Fixed(5), Dim::Fixed(7)];
        let (op, out) = resize(&attrs(json!({"sizes": [10, 14]})), &x).unwrap();
        assert_eq!(out[0], vec![Dim::Var, Dim::Fixed(3), Dim::Fixed(10), Dim::Fixed(14)]);
        let want = ResizeAttrs {
            nearest: Some(NearestMode::RoundPreferFloor),
            coord: CoordMode::HalfPixel,
            sizes: [10, 14],
            scales: None,
        };
        assert_eq!(op, Op::Resize(want));
        let a = attrs(
            json!({"sizes": [3, 4], "mode": "linear", "coordinate_transformation_mode": "align_corners", "scales": [0.6, 0.6]}),
        );
        let (op, _) = resize(&a, &x).unwrap();
        assert!(
            matches!(op, Op::Resize(r) if r.nearest.is_none() && r.coord == CoordMode::AlignCorners && r.scales == Some([0.6, 0.6]))
        );
        let err = |v: serde_json::Value| resize(&attrs(v), &x).unwrap_err();
        assert!(err(json!({})).contains("sizes"));
        assert!(err(json!({"sizes": [0, 2]})).contains("at least 1"));
        assert!(err(json!({"sizes": [2, 2], "mode": "cubic"})).contains("mode"));
        assert!(err(json!({"sizes": [2, 2], "mode": "linear", "nearest_mode": "floor"}))
            .contains("nearest mode only"));
        assert!(err(json!({"sizes": [2, 2], "nearest_mode": "up"})).contains("nearest_mode"));
        assert!(err(json!({"sizes": [2, 2], "coordinate_transformation_mode": "tf_crop_and_resize"}))
            .contains("coordinate"));
        assert!(err(json!({"sizes": [2, 2], "scales": [1, 0]})).contains("positive"));
        assert!(resize(&attrs(json!({"sizes": [2, 2]})), &fixed(&[1, 5, 7])).unwrap_err().contains("4-D"));
    }

    #[test]
    fn global_pools_keep_batch_and_channels() {
        let x = vec![Dim::Var, Dim::Fixed(5), Dim::Fixed(7), Dim::Var];
        let (op, out) = global_pool("GlobalMaxPool", &x).unwrap();
        assert_eq!(op, Op::GlobalMaxPool);
        assert_eq!(out[0], vec![Dim::Var, Dim::Fixed(5), Dim::Fixed(1), Dim::Fixed(1)]);
        assert!(global_pool("GlobalAveragePool", &fixed(&[2, 3])).is_err());
    }
}
