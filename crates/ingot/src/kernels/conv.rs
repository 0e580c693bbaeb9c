//! 2-D convolution (`Conv`) of NCHW images: im2col + the packed GEMM.
//!
//! Each image's output pixels are cut into blocks. For a block and a group, im2col gathers the
//! block's receptive fields, `[C/group · kH · kW, pixels]`, straight into the packed-panel
//! layout of the GEMM's right operand (per-thread scratch); the packed GEMM (`gemm::kernel`,
//! on every ISA path) multiplies the group's row-major weights `[M/group, C/group · kH · kW]`
//! by them, so each output row is one channel's run of pixels, stored in place in its NCHW
//! plane with the fused activation. The bias rides along as one more input (a weight column
//! and an all-ones im2col row). Blocks of all the images are the parallel tasks, so a single
//! image uses every thread too.
//!
//! A convolution whose groups each read one input channel (depthwise, or a one-channel input)
//! would give the GEMM one useful column in sixteen; it runs as direct multiply-adds along each
//! output row instead, one plane per task. [`conv2d_ref`] is the scalar reference.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use super::activation::Act;
use super::gemm::{self, Dst, PackedWeight, NR};
use super::isa::Isa;
use super::window::Window;
use super::PARALLEL_MIN_WORK;
use crate::parallel::{self, SendPtr};
use crate::storage::{F32Data, Line, LINE_FLOATS};

/// Bytes of im2col rows one task gathers (the GEMM keeps them in L2 while it walks the panels).
const BLOCK_BYTES: usize = 192 * 1024;
/// Fewest and most output pixels per task.
const MIN_ROWS: usize = 48;
const MAX_ROWS: usize = 512;

/// How the weights are held.
#[derive(Clone)]
enum Path {
    /// Each group's row-major `[M/group, K]` weight (`K = C/group · kH · kW`), one more column
    /// holding the bias when there is one: the GEMM's left operand.
    Gemm(Vec<Vec<f32>>),
    /// `[M, kH · kW]` taps; output channel `o` reads input channel `o / (M / group)`.
    Direct(Vec<f32>),
}

/// A convolution with its weights: `[N, C, H, W]` → `[N, M, OH, OW]`.
#[derive(Clone)]
pub(crate) struct Conv2d {
    isa: Isa,
    window: Window,
    /// Input channels `C`, output channels `M` and groups.
    channels: usize,
    outputs: usize,
    group: usize,
    path: Path,
    bias: Option<Vec<f32>>,
    act: Act,
    /// Whether `forward` adds a residual tensor of the output's shape before the activation.
    residual: bool,
}

impl Conv2d {
    /// A convolution with the row-major `[M, C/group, kH, kW]` weight `weight` (its dimensions in
    /// `shape`), `M` bias values, `group` groups and `window` (whose kernel is `[kH, kW]`).
    pub(crate) fn new(
        isa: Isa,
        weight: &[f32],
        bias: Option<Vec<f32>>,
        shape: [usize; 4],
        group: usize,
        window: Window,
    ) -> Result<Conv2d, String> {
        let [m, cg, kh, kw] = shape;
        let k = cg * kh * kw;
        if group == 0 || !m.is_multiple_of(group) || weight.len() != m * k || window.kernel != [kh, kw] {
            return Err(format!(
                "a {shape:?} weight of {} values does not suit {group} groups",
                weight.len()
            ));
        }
        if bias.as_ref().is_some_and(|b| b.len() != m) {
            return Err(format!("the bias does not have {m} values"));
        }
        let mg = m / group;
        let path = if cg == 1 {
            Path::Direct(weight.to_vec())
        } else {
            let groups = weight.chunks_exact(mg * k).enumerate();
            Path::Gemm(
                groups
                    .map(|(g, w)| match &bias {
                        // The bias is one more input, whose im2col row is all ones.
                        Some(b) => w
                            .chunks_exact(k)
                            .zip(&b[g * mg..(g + 1) * mg])
                            .flat_map(|(row, &bv)| row.iter().copied().chain(std::iter::once(bv)))
                            .collect(),
                        None => w.to_vec(),
                    })
                    .collect(),
            )
        };
        Ok(Conv2d {
            isa,
            window,
            channels: cg * group,
            outputs: m,
            group,
            path,
            bias,
            act: Act::Identity,
            residual: false,
        })
    }

    /// Input channels.
    pub(crate) fn in_channels(&self) -> usize {
        self.channels
    }

    /// Output channels.
    pub(crate) fn out_channels(&self) -> usize {
        self.outputs
    }

    /// The activation applied to every output.
    pub(crate) fn act(&self) -> Act {
        self.act
    }

    /// Applies `act` to every output from now on (a fused activation).
    pub(crate) fn set_act(&mut self, act: Act) {
        self.act = act;
    }

    /// Whether `forward` takes a residual (a fused `Add` of the output and another value).
    pub(crate) fn has_residual(&self) -> bool {
        self.residual
    }

    /// Adds a residual to every output from now on, before the activation: `forward` then
    /// computes `act(conv(x) + residual)`.
    pub(crate) fn set_residual(&mut self) {
        self.residual = true;
    }

    /// Writes the `[n, M, OH, OW]` output of `n` `[C, H, W]` images `x` into `out` (every
    /// value); `[OH, OW]` (`out_hw`) must be the window's output size over `[H, W]` (`hw`).
    /// A convolution with a residual ([`Conv2d::set_residual`]) adds `residual`, of the
    /// output's shape, to each output before the activation, while the output is in cache.
    ///
    /// # Panics
    /// If the lengths of `x` or `out` do not match the shapes, or `residual` is given exactly
    /// when the convolution has none, or is not of the output's length.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        n: usize,
        hw: [usize; 2],
        out_hw: [usize; 2],
        residual: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let (c, m) = (self.channels, self.outputs);
        let (image, p) = (c * hw[0] * hw[1], out_hw[0] * out_hw[1]);
        assert!(
            x.len() == n * image && out.len() == n * m * p,
            "conv: {n} images of {c}×{hw:?} into {m}×{out_hw:?}"
        );
        assert!(
            residual.map(<[f32]>::len) == self.residual.then_some(out.len()),
            "conv: a residual must be given exactly when the convolution has one, of the output's length"
        );
        // With a residual, the GEMM or the direct loop stores the plain sums and the activation
        // follows the residual's addition.
        let act = if self.residual { Act::Identity } else { self.act };
        if out.is_empty() {
            return;
        }
        let [kh, kw] = self.window.kernel;
        let work = (n * m * p).saturating_mul(c / self.group * kh * kw);
        let parallel = work >= PARALLEL_MIN_WORK && parallel::threads() > 1;
        match &self.path {
            Path::Direct(taps) => {
                let run = |plane: usize, o: &mut [f32]| {
                    let (b, oc) = (plane / m, plane % m);
                    let ic = oc / (m / self.group);
                    let input = &x[b * image + ic * hw[0] * hw[1]..][..hw[0] * hw[1]];
                    let bias = self.bias.as_ref().map_or(0.0, |b| b[oc]);
                    direct(
                        self.isa,
                        &self.window,
                        input,
                        &taps[oc * kh * kw..][..kh * kw],
                        bias,
                        act,
                        hw,
                        out_hw,
                        o,
                    );
                    if let Some(r) = residual {
                        add_residual(self.isa, o, &r[plane * p..][..p], self.act);
                    }
                };
                if parallel {
                    parallel::for_each_chunk_mut(out, p, run);
                } else {
                    out.chunks_exact_mut(p).enumerate().for_each(|(plane, o)| run(plane, o));
                }
            }
            Path::Gemm(weights) => {
                let rows = block_rows(n, p, c / self.group * kh * kw, parallel);
                let blocks = p.div_ceil(rows);
                let planes = Planes::new(out);
                let task = |t: usize| {
                    let pixels = (t % blocks) * rows..((t % blocks + 1) * rows).min(p);
                    let b = t / blocks;
                    let block = Block { pixels, image: b, act, residual };
                    self.gemm_block(weights, &x[b * image..][..image], hw, out_hw, block, &planes);
                };
                if parallel {
                    parallel::for_each(n * blocks, &task);
                } else {
                    (0..n * blocks).for_each(task);
                }
            }
        }
    }

    /// The block's output pixels of its image (`x`, `[C, H, W]`), every channel, through the
    /// GEMM.
    ///
    /// The GEMM's left operand is the group's weights `[M/group, K]`, its right operand the
    /// block's im2col `[K, pixels]`, gathered straight into the packed panels the GEMM reads
    /// (`[⌈pixels / NR⌉][K][NR]`); each output row is then one channel's run of pixels, written
    /// in place into its NCHW plane. The bias is one more input (weight column and all-ones
    /// im2col row), so bias and activation stay in the GEMM's epilogue; a residual is added
    /// (then the activation applied) to each row right after, while it is in cache.
    fn gemm_block(
        &self,
        weights: &[Vec<f32>],
        x: &[f32],
        hw: [usize; 2],
        out_hw: [usize; 2],
        block: Block<'_>,
        planes: &Planes<'_>,
    ) {
        let Block { pixels, image: b, act, residual } = block;
        let (cg, mg) = (self.channels / self.group, self.outputs / self.group);
        let k = cg * self.window.kernel[0] * self.window.kernel[1];
        let kb = k + usize::from(self.bias.is_some());
        let (rows, p) = (pixels.len(), out_hw[0] * out_hw[1]);
        let len = rows.div_ceil(NR) * kb * NR;
        for (g, w) in weights.iter().enumerate() {
            let mut lines = take_panels(len);
            {
                let Some(all) = Arc::get_mut(&mut lines) else {
                    unreachable!("take_panels hands out unshared panels")
                };
                // SAFETY: `Line` is a `repr(C)` array of `LINE_FLOATS` f32 without padding, so
                // the lines are `len · LINE_FLOATS` contiguous f32 values, borrowed mutably here.
                let floats = unsafe {
                    std::slice::from_raw_parts_mut(all.as_mut_ptr().cast::<f32>(), all.len() * LINE_FLOATS)
                };
                let panels = &mut floats[..len];
                im2col(x, g * cg..(g + 1) * cg, hw, out_hw[1], &self.window, pixels.clone(), kb, panels);
                if kb > k {
                    panels.chunks_exact_mut(kb * NR).for_each(|panel| panel[k * NR..].fill(1.0));
                }
            }
            let data = F32Data::Owned { lines: Arc::clone(&lines), len };
            let Some(packed) = PackedWeight::from_packed(data, rows, kb) else {
                unreachable!("conv: {len} values are ⌈{rows} / NR⌉ panels of {kb} × NR")
            };
            let first = (b * self.outputs + g * mg) * p + pixels.start;
            let span = (mg - 1) * p + rows;
            assert!(first + span <= planes.len, "conv: write past the output");
            // SAFETY: in bounds (asserted); this task is the only writer of pixels `pixels` of
            // image `b` (tasks are distinct (image, pixel block) pairs) in each of that image's
            // planes, which are exactly columns `0..rows` of these rows of `p` values.
            let dst = unsafe { Dst::columns(planes.base.0.add(first), span, p, 0..rows) };
            gemm::kernel(self.isa, w, &packed, 0..rows.div_ceil(NR), None, act, dst);
            drop(packed);
            give_panels(lines);
            if let Some(r) = residual {
                for row in 0..mg {
                    let at = first + row * p;
                    // SAFETY: `at..at + rows` lies within `first..first + span` (asserted in
                    // bounds above), pixels this task alone writes; the GEMM call that wrote
                    // them has returned, so no other reference to them is alive.
                    let o = unsafe { std::slice::from_raw_parts_mut(planes.base.0.add(at), rows) };
                    add_residual(self.isa, o, &r[at..][..rows], self.act);
                }
            }
        }
    }
}

/// One GEMM task of [`Conv2d::forward`]: output pixels `pixels` of image `image`, the
/// activation the GEMM applies, and the residual (the whole output's) added after it.
struct Block<'r> {
    pixels: Range<usize>,
    image: usize,
    act: Act,
    residual: Option<&'r [f32]>,
}

/// `out[i] = act(out[i] + residual[i])`.
fn add_residual(isa: Isa, out: &mut [f32], residual: &[f32], act: Act) {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(t) = isa.avx512() {
            // SAFETY: the `Avx512` token proves the CPU has AVX-512F.
            unsafe { add_residual_avx512(t, out, residual, act) };
            return;
        }
        if let Some(t) = isa.avx2() {
            // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
            unsafe { add_residual_avx2(t, out, residual, act) };
            return;
        }
    }
    let _ = isa;
    add_residual_body(out, residual, act);
}

/// [`add_residual_body`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn add_residual_avx512(_t: super::isa::Avx512, out: &mut [f32], residual: &[f32], act: Act) {
    add_residual_body(out, residual, act);
}

/// [`add_residual_body`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn add_residual_avx2(_t: super::isa::Avx2, out: &mut [f32], residual: &[f32], act: Act) {
    add_residual_body(out, residual, act);
}

/// The loop of [`add_residual`]: ReLU and no activation vectorize; the others go value by
/// value through [`Act::apply`].
#[inline(always)]
fn add_residual_body(out: &mut [f32], residual: &[f32], act: Act) {
    let pairs = out.iter_mut().zip(residual);
    match act {
        Act::Identity => pairs.for_each(|(o, r)| *o += r),
        Act::Relu => pairs.for_each(|(o, r)| *o = (*o + r).max(0.0)),
        act => pairs.for_each(|(o, r)| *o = act.apply(*o + r)),
    }
}

impl std::fmt::Debug for Conv2d {
    /// The geometry and path, not the weights (error messages name the kernel).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = match self.path {
            Path::Gemm(_) => "im2col + gemm",
            Path::Direct(_) => "direct",
        };
        f.debug_struct("Conv2d")
            .field("channels", &self.channels)
            .field("outputs", &self.outputs)
            .field("group", &self.group)
            .field("window", &self.window)
            .field("bias", &self.bias.is_some())
            .field("act", &self.act)
            .field("path", &path)
            .finish()
    }
}

/// Output pixels per GEMM task: about [`BLOCK_BYTES`] of im2col rows (`k` values each), fewer
/// when the tasks would not give every thread two, in whole [`NR`]-pixel panels, evened out
/// over `p`.
fn block_rows(n: usize, p: usize, k: usize, parallel: bool) -> usize {
    let mut rows = (BLOCK_BYTES / (4 * k.max(1))).clamp(MIN_ROWS, MAX_ROWS);
    let threads = parallel::threads();
    if parallel && n * p.div_ceil(rows) < 2 * threads {
        rows = p.div_ceil((2 * threads).div_ceil(n)).max(MIN_ROWS);
    }
    p.div_ceil(p.div_ceil(rows)).next_multiple_of(NR)
}

/// The receptive fields of output pixels `pixels` (row-major over `[OH, OW]`, `ow` wide) in
/// input channels `channels` of one `[C, H, W]` image, as the GEMM's packed right operand:
/// panels of [`NR`] pixels, `[⌈pixels / NR⌉][kb][NR]`, whose row `kk < channels · kH · kW`
/// (channel, then kernel row, then kernel column) holds that tap's value at each pixel, zero
/// where it falls in the padding or past the last pixel. Rows `channels · kH · kW..kb` are
/// left for the caller.
///
/// Each tap's values over the block are gathered into one contiguous row (a run of one output
/// row at a time: consecutive (stride 1) or evenly spaced values of one input row), then copied
/// into the panels sixteen at a time.
#[allow(clippy::too_many_arguments)]
fn im2col(
    image: &[f32],
    channels: Range<usize>,
    [h, w]: [usize; 2],
    ow: usize,
    win: &Window,
    pixels: Range<usize>,
    kb: usize,
    panels: &mut [f32],
) {
    let [kh, kw] = win.kernel;
    let plane_len = h * w;
    let rows = pixels.len();
    let stride = kb * NR;
    // Row `kk` of every panel from the block's `rows` values `values`.
    let mut put = |kk: usize, values: &[f32]| {
        let (chunks, rest) = values.as_chunks::<NR>();
        for (q, chunk) in chunks.iter().enumerate() {
            panels[q * stride + kk * NR..][..NR].copy_from_slice(chunk);
        }
        if !rest.is_empty() {
            let d = &mut panels[rows / NR * stride + kk * NR..][..NR];
            d[..rest.len()].copy_from_slice(rest);
            d[rest.len()..].fill(0.0);
        }
    };
    if win.is_pointwise() {
        // Output pixel p reads input pixel p: each row is a run of one plane.
        for (ci, c) in channels.enumerate() {
            put(ci, &image[c * plane_len + pixels.start..][..rows]);
        }
        return;
    }
    let (dh, sw) = (win.dilations[0], win.strides[1]);
    let columns = tap_columns(win, w, ow);
    with_scratch(rows, |tap| {
        for (ci, c) in channels.clone().enumerate() {
            let plane = &image[c * plane_len..][..plane_len];
            for i in 0..kh {
                for (j, (inside, first)) in columns.iter().enumerate() {
                    let (mut p, mut r) = (pixels.start, 0);
                    while p < pixels.end {
                        let (oy, ox0) = (p / ow, p % ow);
                        let ox1 = ow.min(ox0 + pixels.end - p);
                        let run = &mut tap[r..r + ox1 - ox0];
                        let (y0, ty) = win.taps(0, oy, h);
                        if ty.contains(&i) {
                            let line = &plane[(y0 + (i * dh) as isize) as usize * w..][..w];
                            // Within this run: zeros, then the taps inside the row, then zeros.
                            let lo = inside.start.clamp(ox0, ox1);
                            let hi = inside.end.clamp(lo, ox1);
                            let (zeros, rest) = run.split_at_mut(lo - ox0);
                            zeros.fill(0.0);
                            let (mid, tail) = rest.split_at_mut(hi - lo);
                            if hi > lo {
                                let start = first + (lo - inside.start) * sw;
                                if sw == 1 {
                                    mid.copy_from_slice(&line[start..start + (hi - lo)]);
                                } else {
                                    mid.iter_mut()
                                        .zip(line[start..].iter().step_by(sw))
                                        .for_each(|(d, &v)| *d = v);
                                }
                            }
                            tail.fill(0.0);
                        } else {
                            run.fill(0.0);
                        }
                        r += ox1 - ox0;
                        p += ox1 - ox0;
                    }
                    put((ci * kh + i) * kw + j, tap);
                }
            }
        }
    });
}

/// For each kernel column `j`: the output columns whose tap `j` lands inside an input row of
/// `w` values (`⌈(left − j·dw) / sw⌉` up to the last with `x·sw + j·dw − left < w`), and the
/// input column of the first of them.
fn tap_columns(win: &Window, w: usize, ow: usize) -> Vec<(Range<usize>, usize)> {
    let (sw, dw, left) = (win.strides[1], win.dilations[1], win.pads[1]);
    (0..win.kernel[1])
        .map(|j| {
            let offset = j * dw;
            let end = if w + left > offset { ((w + left - offset - 1) / sw + 1).min(ow) } else { 0 };
            let start = left.saturating_sub(offset).div_ceil(sw).min(end);
            let first = if start < end { start * sw + offset - left } else { 0 };
            (start..end, first)
        })
        .collect()
}

/// One output plane of a convolution reading one input plane (`input`, `[H, W]`) through the
/// `kH × kW` taps `taps`: `out = act(bias + Σ taps · input)`, accumulated along output rows.
#[allow(clippy::too_many_arguments)]
fn direct(
    isa: Isa,
    win: &Window,
    input: &[f32],
    taps: &[f32],
    bias: f32,
    act: Act,
    hw: [usize; 2],
    out_hw: [usize; 2],
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(t) = isa.avx512() {
            // SAFETY: the `Avx512` token proves the CPU has AVX-512F.
            unsafe { direct_avx512(t, win, input, taps, bias, act, hw, out_hw, out) };
            return;
        }
        if let Some(t) = isa.avx2() {
            // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
            unsafe { direct_avx2(t, win, input, taps, bias, act, hw, out_hw, out) };
            return;
        }
    }
    let _ = isa;
    direct_body(win, input, taps, bias, act, hw, out_hw, out);
}

/// [`direct_body`] compiled for AVX-512 (the row loops vectorize 16 wide).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn direct_avx512(
    _t: super::isa::Avx512,
    win: &Window,
    input: &[f32],
    taps: &[f32],
    bias: f32,
    act: Act,
    hw: [usize; 2],
    out_hw: [usize; 2],
    out: &mut [f32],
) {
    direct_body(win, input, taps, bias, act, hw, out_hw, out);
}

/// [`direct_body`] compiled for AVX2 (the row loops vectorize 8 wide).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn direct_avx2(
    _t: super::isa::Avx2,
    win: &Window,
    input: &[f32],
    taps: &[f32],
    bias: f32,
    act: Act,
    hw: [usize; 2],
    out_hw: [usize; 2],
    out: &mut [f32],
) {
    direct_body(win, input, taps, bias, act, hw, out_hw, out);
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn direct_body(
    win: &Window,
    input: &[f32],
    taps: &[f32],
    bias: f32,
    act: Act,
    [h, w]: [usize; 2],
    [oh, ow]: [usize; 2],
    out: &mut [f32],
) {
    let kw = win.kernel[1];
    let sw = win.strides[1];
    let columns = tap_columns(win, w, ow);
    for (oy, row) in out.chunks_exact_mut(ow).enumerate().take(oh) {
        row.fill(bias);
        let (y0, ty) = win.taps(0, oy, h);
        for i in ty {
            let line = &input[(y0 + (i * win.dilations[0]) as isize) as usize * w..][..w];
            for (j, (outputs, x0)) in columns.iter().enumerate() {
                let tap = taps[i * kw + j];
                let dst = &mut row[outputs.clone()];
                if sw == 1 {
                    dst.iter_mut().zip(&line[*x0..]).for_each(|(o, &v)| *o += tap * v);
                } else {
                    dst.iter_mut().zip(line[*x0..].iter().step_by(sw)).for_each(|(o, &v)| *o += tap * v);
                }
            }
        }
        if act != Act::Identity {
            row.iter_mut().for_each(|v| *v = act.apply(*v));
        }
    }
}

/// The output buffer, shared by tasks that each write their own pixels of every channel plane.
struct Planes<'a> {
    base: SendPtr<f32>,
    len: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

impl<'a> Planes<'a> {
    fn new(out: &'a mut [f32]) -> Self {
        Planes { base: SendPtr(out.as_mut_ptr()), len: out.len(), _out: std::marker::PhantomData }
    }
}

thread_local! {
    /// Each thread's row of one tap's values, kept from call to call.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Each thread's packed im2col panels, kept from call to call.
    static PANELS: RefCell<Option<Arc<[Line]>>> = const { RefCell::new(None) };
}

/// This thread's panels, at least `len` values, not shared (their contents are left from
/// earlier); hand them back with [`give_panels`].
fn take_panels(len: usize) -> Arc<[Line]> {
    let kept = PANELS.with(|cell| cell.try_borrow_mut().ok().and_then(|mut p| p.take()));
    match kept {
        Some(lines) if lines.len() * LINE_FLOATS >= len && Arc::strong_count(&lines) == 1 => lines,
        _ => match F32Data::from(vec![0.0; len.next_multiple_of(LINE_FLOATS)]) {
            F32Data::Owned { lines, .. } => lines,
            F32Data::Mapped { .. } => unreachable!("owned values are not mapped"),
        },
    }
}

/// Keeps `lines` for this thread's next [`take_panels`].
fn give_panels(lines: Arc<[Line]>) {
    PANELS.with(|cell| {
        if let Ok(mut p) = cell.try_borrow_mut() {
            *p = Some(lines);
        }
    });
}

/// Runs `f` on `len` values of this thread's scratch (their contents are left from earlier).
fn with_scratch<T>(len: usize, f: impl FnOnce(&mut [f32]) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            if s.len() < len {
                s.resize(len, 0.0);
            }
            f(&mut s[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// Scalar reference: `act(b[o] + Σ w[o, c, i, j] · x[n, g·C/group + c, y·sh − top + i·dh,
/// x·sw − left + j·dw])` in f64, taps outside the input counting as zero.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d_ref(
    x: &[f32],
    [n, c, h, w]: [usize; 4],
    weight: &[f32],
    [m, cg, kh, kw]: [usize; 4],
    bias: Option<&[f32]>,
    group: usize,
    win: &Window,
    act: Act,
) -> (Vec<f32>, [usize; 2]) {
    let out_dim = |a: usize, size: usize| {
        (size + win.pads[a] + win.pads[a + 2] - win.dilations[a] * (win.kernel[a] - 1) - 1) / win.strides[a]
            + 1
    };
    let (oh, ow) = (out_dim(0, h), out_dim(1, w));
    let mg = m / group;
    let mut out = Vec::with_capacity(n * m * oh * ow);
    for b in 0..n {
        for o in 0..m {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut s = bias.map_or(0.0, |bv| f64::from(bv[o]));
                    for ci in 0..cg {
                        let ch = o / mg * cg + ci;
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (y * win.strides[0] + i * win.dilations[0]) as isize
                                    - win.pads[0] as isize;
                                let ix = (xo * win.strides[1] + j * win.dilations[1]) as isize
                                    - win.pads[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let xv = x[((b * c + ch) * h + iy as usize) * w + ix as usize];
                                s += f64::from(xv) * f64::from(weight[((o * cg + ci) * kh + i) * kw + j]);
                            }
                        }
                    }
                    out.push(act.apply(s as f32));
                }
            }
        }
    }
    (out, [oh, ow])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seeded(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// One geometry: `[n, c, h, w]`, `[m, cg, kh, kw]`, groups, the window's strides, pads and
    /// dilations.
    #[derive(Debug, Clone)]
    struct Case {
        x: [usize; 4],
        w: [usize; 4],
        group: usize,
        strides: [usize; 2],
        pads: [usize; 4],
        dilations: [usize; 2],
    }

    /// The kernel on every ISA path this CPU has, against [`conv2d_ref`]; with and without a
    /// bias, with ReLU and GELU epilogues, each also with a residual added before the
    /// activation.
    fn check(case: &Case, seed: u64) {
        let Case { x: xs, w: ws, group, strides, pads, dilations } = case.clone();
        let win = Window { kernel: [ws[2], ws[3]], strides, pads, dilations };
        let x = seeded(xs.iter().product(), seed);
        let weight = seeded(ws.iter().product(), seed + 1);
        let bias = seeded(ws[0], seed + 2);
        let k = (ws[1] * ws[2] * ws[3]) as f32;
        for (b, act) in [(None, Act::Identity), (Some(&bias), Act::Relu), (Some(&bias), Act::Gelu)] {
            let b = b.map(|b| b.as_slice());
            let (want, out_hw) = conv2d_ref(&x, xs, &weight, ws, b, group, &win, act);
            let (plain, _) = conv2d_ref(&x, xs, &weight, ws, b, group, &win, Act::Identity);
            let residual = seeded(want.len(), seed + 3);
            let with_residual: Vec<f32> =
                plain.iter().zip(&residual).map(|(p, r)| act.apply(p + r)).collect();
            for isa in Isa::available() {
                for (res, want) in [(None, &want), (Some(residual.as_slice()), &with_residual)] {
                    let mut conv = Conv2d::new(isa, &weight, b.map(<[f32]>::to_vec), ws, group, win).unwrap();
                    conv.set_act(act);
                    if res.is_some() {
                        conv.set_residual();
                    }
                    let mut out = vec![f32::NAN; want.len()];
                    conv.forward(&x, xs[0], [xs[2], xs[3]], out_hw, res, &mut out);
                    for (i, (a, r)) in out.iter().zip(want).enumerate() {
                        let tol = 1e-5 * k.sqrt() * (1.0 + r.abs());
                        let what = if res.is_some() { "with a residual" } else { "" };
                        assert!((a - r).abs() <= tol, "{isa:?} {case:?} {act:?} {what} [{i}]: {a} vs {r}");
                    }
                }
            }
        }
    }

    fn case(
        x: [usize; 4],
        w: [usize; 4],
        group: usize,
        strides: [usize; 2],
        pads: [usize; 4],
        dilations: [usize; 2],
    ) -> Case {
        Case { x, w, group, strides, pads, dilations }
    }

    #[test]
    fn matches_the_reference_on_typical_layers() {
        let cases = [
            // A 3×3 "same" layer, batch 1 and 3; the benchmark's first layer.
            case([1, 3, 32, 32], [32, 3, 3, 3], 1, [1, 1], [1; 4], [1, 1]),
            case([3, 8, 9, 7], [16, 8, 3, 3], 1, [1, 1], [1; 4], [1, 1]),
            // Pointwise (im2col is a transpose), odd sizes; strided 1×1 is not pointwise.
            case([3, 20, 5, 7], [33, 20, 1, 1], 1, [1, 1], [0; 4], [1, 1]),
            case([1, 6, 7, 9], [5, 6, 1, 1], 1, [2, 2], [0; 4], [1, 1]),
            // Depthwise and channel multiplier 2 (the direct path), strided and dilated.
            case([3, 8, 11, 10], [8, 1, 3, 3], 8, [1, 1], [1; 4], [1, 1]),
            case([1, 4, 12, 13], [8, 1, 3, 3], 4, [2, 2], [1, 0, 2, 1], [2, 1]),
            case([1, 1, 28, 28], [6, 1, 5, 5], 1, [1, 1], [2; 4], [1, 1]),
            // Grouped, asymmetric pads, a kernel larger than the input with padding.
            case([3, 6, 8, 8], [9, 2, 3, 3], 3, [2, 1], [0, 1, 2, 3], [1, 2]),
            case([1, 4, 2, 3], [5, 4, 4, 5], 1, [1, 1], [2, 2, 1, 2], [1, 1]),
            // Enough pixels for several blocks per image, wide receptive fields.
            case([1, 64, 20, 20], [40, 64, 3, 3], 1, [1, 1], [1; 4], [1, 1]),
        ];
        for (i, c) in cases.iter().enumerate() {
            check(c, i as u64);
        }
    }

    #[test]
    fn a_thread_limit_of_one_gives_the_same_bits() {
        let c = case([3, 16, 14, 14], [24, 8, 3, 3], 2, [1, 1], [1; 4], [1, 1]);
        let win = Window { kernel: [3, 3], strides: c.strides, pads: c.pads, dilations: c.dilations };
        let x = seeded(3 * 16 * 14 * 14, 5);
        let conv = Conv2d::new(Isa::detect(), &seeded(24 * 8 * 9, 6), None, c.w, 2, win).unwrap();
        let run = || {
            let mut out = vec![f32::NAN; 3 * 24 * 14 * 14];
            conv.forward(&x, 3, [14, 14], [14, 14], None, &mut out);
            out
        };
        let serial = parallel::with_threads(Some(1), run);
        assert_eq!(serial, run());
    }

    #[test]
    fn tap_columns_match_a_scan() {
        for (k, s, left, d, w) in [
            (3, 1, 1, 1, 5),
            (3, 2, 2, 2, 4),
            (5, 1, 4, 1, 2),
            (2, 3, 0, 3, 7),
            (4, 1, 0, 2, 3),
            (1, 1, 3, 1, 1),
        ] {
            let win = Window { kernel: [1, k], strides: [1, s], pads: [0, left, 0, left], dilations: [1, d] };
            let ow = (w + 2 * left).saturating_sub(d * (k - 1) + 1) / s + 1;
            for (j, (inside, first)) in tap_columns(&win, w, ow).into_iter().enumerate() {
                let want: Vec<usize> = (0..ow).filter(|&o| win.taps(1, o, w).1.contains(&j)).collect();
                assert_eq!(
                    inside.clone().collect::<Vec<_>>(),
                    want,
                    "k={k} s={s} left={left} d={d} w={w} j={j}"
                );
                if let Some(&o) = want.first() {
                    assert_eq!(first as isize, win.origin(1, o) + (j * d) as isize);
                }
            }
        }
    }

    #[test]
    fn bad_weights_are_refused() {
        let win = Window { kernel: [3, 3], strides: [1, 1], pads: [0; 4], dilations: [1, 1] };
        let isa = Isa::detect();
        assert!(Conv2d::new(isa, &[0.0; 10], None, [2, 1, 3, 3], 1, win).is_err());
        assert!(Conv2d::new(isa, &[0.0; 27], None, [3, 1, 3, 3], 2, win).is_err());
        assert!(Conv2d::new(isa, &[0.0; 18], Some(vec![0.0; 3]), [2, 1, 3, 3], 1, win).is_err());
        assert!(Conv2d::new(isa, &[0.0; 18], None, [2, 1, 3, 2], 1, win).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_geometries_match_the_reference(
            n in prop::sample::select(vec![1usize, 3]),
            (group, cg, mg) in (1usize..4, 1usize..4, 1usize..5),
            (h, w) in (1usize..10, 1usize..10),
            (kh, kw) in (1usize..5, 1usize..5),
            strides in (1usize..4, 1usize..4),
            pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3),
            dilations in (1usize..3, 1usize..3),
            seed in 0u64..1000,
        ) {
            let c = case(
                [n, group * cg, h, w],
                [group * mg, cg, kh, kw],
                group,
                [strides.0, strides.1],
                [pads.0, pads.1, pads.2, pads.3],
                [dilations.0, dilations.1],
            );
            let fits = |a: usize, size: usize, k: usize, d: usize| size + c.pads[a] + c.pads[a + 2] > d * (k - 1);
            prop_assume!(fits(0, h, kh, dilations.0) && fits(1, w, kw, dilations.1));
            check(&c, seed);
        }
    }
}
