//! End-to-end tests of the opset-2 ops: small graphs built as a `GraphSpec`, written as a
//! bundle, validated, lowered for the CPU (and for candle, run on the CPU, where it has the op)
//! and run, compared with values worked out by hand.

use serde_json::{json, Value as Json};

use super::cpu::Kernel;
use super::*;
use crate::format::{to_bytes, ElementType, GraphSpec, NodeSpec, TensorData, TensorSpec};
use crate::kernels::activation::Act;

/// A graph under construction: one `[-1, width]` f32 input `x`, nodes, stored tensors.
struct Net {
    opset: u32,
    width: i64,
    nodes: Vec<NodeSpec>,
    tensors: Vec<(String, TensorData)>,
}

impl Net {
    fn new(width: usize) -> Net {
        Net { opset: 2, width: width as i64, nodes: Vec::new(), tensors: Vec::new() }
    }

    /// Adds node `op` reading `inputs` and writing `output`.
    fn node(mut self, op: &str, inputs: &[&str], output: &str, attrs: Json) -> Net {
        self.nodes.push(NodeSpec {
            name: Some(output.into()),
            op: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![output.into()],
            attrs: serde_json::from_value(attrs).unwrap(),
        });
        self
    }

    /// Adds stored f32 tensor `name`.
    fn tensor(mut self, name: &str, shape: &[usize], values: &[f32]) -> Net {
        self.tensors.push((name.into(), TensorData::from_f32(shape.to_vec(), values).unwrap()));
        self
    }

    /// The bundle and its validated graph, the last node's output being the graph's output.
    fn build(&self) -> Result<(Bundle, Graph)> {
        let mut manifest = crate::testing::tiny_manifest();
        let f32_spec =
            |name: &str, shape: Vec<i64>| TensorSpec { name: name.into(), dtype: ElementType::F32, shape };
        let last = self.nodes.last().map(|n| n.outputs[0].clone()).unwrap_or_default();
        manifest.graph = GraphSpec {
            opset: self.opset,
            inputs: vec![f32_spec("x", vec![-1, self.width])],
            outputs: vec![f32_spec(&last, vec![-1, -1])],
            nodes: self.nodes.clone(),
        };
        let bundle = Bundle::from_bytes(to_bytes(&manifest, &self.tensors)?)?;
        let graph = Graph::validate(&bundle.manifest().graph, bundle.tensor_entries())?;
        Ok((bundle, graph))
    }

    /// The CPU plan.
    fn cpu(&self) -> Plan {
        let (bundle, graph) = self.build().unwrap();
        Plan::lower(&graph, &bundle, &Device::Cpu, Kernels::Auto).unwrap()
    }

    /// Runs `rows` rows of `x` on the CPU plan and, where candle has every op, on the device
    /// plan too (which must agree); returns the CPU's output.
    fn run(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let (bundle, graph) = self.build().unwrap();
        let arena = Arena::default();
        let feed = [Feed::F32 { data: x, rows, cols: self.width as usize }];
        let cpu =
            Plan::lower(&graph, &bundle, &Device::Cpu, Kernels::Auto).unwrap().run(&feed, &arena).unwrap();
        if let Ok(device) = device::DevicePlan::lower(&graph, &bundle, &Device::Cpu) {
            let candle = device.run(&feed).unwrap();
            assert_eq!(cpu.len(), candle.len());
            for (a, b) in cpu.iter().zip(&candle) {
                let same = a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-5 * (1.0 + b.abs());
                assert!(same, "CPU {a} vs candle {b}");
            }
        }
        cpu
    }
}

/// `got` equals `want` within 1e-6 (relative).
fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-6 * (1.0 + w.abs()), "{got:?} vs {want:?}");
    }
}

fn iota(n: usize) -> Vec<f32> {
    (1..=n).map(|v| v as f32).collect()
}

/// `[-1, c·h·w]` → `[-1, c, h, w]` as `img`.
fn image(c: usize, h: usize, w: usize) -> Net {
    Net::new(c * h * w).node("Reshape", &["x"], "img", json!({"shape": [-1, c, h, w]}))
}

/// Flattens `value` to `[-1, rest]` as `out`.
fn flat(net: Net, value: &str) -> Net {
    net.node("Reshape", &[value], "out", json!({"shape": [0, -1]}))
}

#[test]
fn conv_with_a_fused_relu() {
    // 3×3 image 1…9, a 2×2 kernel of ones, bias −14: window sums 12 16 24 28.
    let net = image(1, 3, 3)
        .tensor("w", &[1, 1, 2, 2], &[1.0; 4])
        .tensor("b", &[1], &[-14.0])
        .node("Conv", &["img", "w", "b"], "conv", json!({}))
        .node("Relu", &["conv"], "relu", json!({}));
    let net = flat(net, "relu");
    close(&net.run(&iota(9), 1), &[0.0, 2.0, 10.0, 14.0]);
    let Plan::Cpu(plan) = net.cpu() else { panic!("a CPU plan") };
    assert!(
        plan.steps.iter().any(|s| matches!(&s.kernel, Kernel::Conv { conv, .. } if conv.act() == Act::Relu)),
        "the ReLU is fused into the convolution"
    );
    assert_eq!(plan.steps.len(), 3);
}

#[test]
fn residual_blocks_fuse_the_add_and_relu_into_a_convolution() {
    // 3×3 image 1…9 (`skip`, through a 1×1 conv ×1), a 2×2 kernel of ones with padding 1 on the
    // bottom and right (window sums 12 16 9 / 24 28 15 / 15 17 9), bias −20, plus the skip, then
    // ReLU: max(0, sum − 20 + x).
    let residual = |skip_first: bool| {
        let net = image(1, 3, 3)
            .tensor("id", &[1, 1, 1, 1], &[1.0])
            .tensor("w", &[1, 1, 2, 2], &[1.0; 4])
            .tensor("b", &[1], &[-20.0])
            .node("Conv", &["img", "id"], "skip", json!({}))
            .node("Conv", &["skip", "w", "b"], "conv", json!({"pads": [0, 0, 1, 1]}));
        let operands = if skip_first { ["skip", "conv"] } else { ["conv", "skip"] };
        let net = net.node("Add", &operands, "sum", json!({})).node("Relu", &["sum"], "relu", json!({}));
        flat(net, "relu")
    };
    let want = [0.0, 0.0, 0.0, 8.0, 13.0, 1.0, 2.0, 5.0, 0.0];
    for skip_first in [false, true] {
        let net = residual(skip_first);
        close(&net.run(&iota(9), 1), &want);
        let Plan::Cpu(plan) = net.cpu() else { panic!("a CPU plan") };
        let fused =
            plan.steps.iter().find(|s| matches!(&s.kernel, Kernel::Conv { conv, .. } if conv.has_residual()));
        let Some(fused) = fused else { panic!("the Add is fused into the convolution: {:?}", plan.steps) };
        assert!(matches!(&fused.kernel, Kernel::Conv { conv, .. } if conv.act() == Act::Relu));
        assert_eq!(plan.steps.len(), 4, "reshape, skip conv, conv + add + relu, reshape");
    }
    // A convolution whose output is also read elsewhere keeps its Add apart.
    let shared = image(1, 3, 3)
        .tensor("w", &[1, 1, 1, 1], &[2.0])
        .node("Conv", &["img", "w"], "conv", json!({}))
        .node("Add", &["conv", "img"], "sum", json!({}))
        .node("Mul", &["sum", "conv"], "prod", json!({}));
    let shared = flat(shared, "prod");
    let x = iota(9);
    let want: Vec<f32> = x.iter().map(|v| (2.0 * v + v) * 2.0 * v).collect();
    close(&shared.run(&x, 1), &want);
    let Plan::Cpu(plan) = shared.cpu() else { panic!("a CPU plan") };
    assert!(plan
        .steps
        .iter()
        .all(|s| !matches!(&s.kernel, Kernel::Conv { conv, .. } if conv.has_residual())));
}

#[test]
fn conv_with_padding_stride_and_groups() {
    // Two channels (1…9 and 10…18), depthwise 1×1 kernels ×2 and ×−1, stride 2, a bottom and
    // right pad that no window reaches: output pixels (0,0) (0,2) (2,0) (2,2).
    let net = image(2, 3, 3).tensor("w", &[2, 1, 1, 1], &[2.0, -1.0]).node(
        "Conv",
        &["img", "w"],
        "conv",
        json!({"group": 2, "strides": [2, 2], "pads": [0, 0, 1, 1]}),
    );
    let net = flat(net, "conv");
    let x: Vec<f32> = iota(18);
    close(&net.run(&x, 1), &[2.0, 6.0, 14.0, 18.0, -10.0, -12.0, -16.0, -18.0]);
}

#[test]
fn pools_with_padding_and_ceil_mode() {
    // 3×4 grid 1…12. Max 2×2 stride 2 padded top and left: rows {pad, 0}, {1, 2}; columns
    // {pad, 0}, {1, 2}, and in ceil mode {3, past the edge}.
    let max = flat(
        image(1, 3, 4).node(
            "MaxPool",
            &["img"],
            "pool",
            json!({"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 0, 0], "ceil_mode": 1}),
        ),
        "pool",
    );
    close(&max.run(&iota(12), 1), &[1.0, 3.0, 4.0, 9.0, 11.0, 12.0]);
    // Average 2×2 stride 2 padded 1 all round: padding never counts, unless asked to.
    let avg = |include: bool| {
        let attrs = json!({"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": include});
        flat(image(1, 3, 4).node("AveragePool", &["img"], "pool", attrs), "pool")
    };
    close(&avg(false).run(&iota(12), 1), &[1.0, 2.5, 4.0, 7.0, 8.5, 10.0]);
    close(&avg(true).run(&iota(12), 1), &[0.25, 1.25, 1.0, 3.5, 8.5, 5.0]);
}

#[test]
fn global_pools() {
    let x: Vec<f32> = vec![1.0, 2.0, 3.0, 6.0, -1.0, -2.0, -3.0, -4.0];
    let mean = flat(image(2, 2, 2).node("GlobalAveragePool", &["img"], "g", json!({})), "g");
    close(&mean.run(&x, 1), &[3.0, -2.5]);
    let max = flat(image(2, 2, 2).node("GlobalMaxPool", &["img"], "g", json!({})), "g");
    close(&max.run(&x, 1), &[6.0, -1.0]);
}

#[test]
fn transpose_and_slice() {
    // [2, 3] rows 1 2 3 / 4 5 6 → columns.
    let t = Net::new(6).node("Reshape", &["x"], "m", json!({"shape": [-1, 2, 3]})).node(
        "Transpose",
        &["m"],
        "t",
        json!({"perm": [0, 2, 1]}),
    );
    let t = flat(t, "t");
    close(&t.run(&iota(6), 1), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    // Backwards from the last column by 2: columns 5, 3, 1.
    let s = Net::new(6).node(
        "Slice",
        &["x"],
        "s",
        json!({"starts": [-1], "ends": [i64::MIN], "axes": [1], "steps": [-2]}),
    );
    close(
        &s.run(&[iota(6), iota(6).iter().map(|v| -v).collect()].concat(), 2),
        &[6.0, 4.0, 2.0, -6.0, -4.0, -2.0],
    );
}

#[test]
fn pad_and_resize() {
    // A 2×2 image 1 2 / 3 4, padded one column on the left and one row below.
    let pad = |attrs: Json| flat(image(1, 2, 2).node("Pad", &["img"], "p", attrs), "p");
    let x = iota(4);
    let pads = json!([0, 0, 0, 1, 0, 0, 1, 0]);
    close(&pad(json!({"pads": pads})).run(&x, 1), &[0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0]);
    close(
        &pad(json!({"pads": pads, "mode": "edge"})).run(&x, 1),
        &[1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 3.0, 3.0, 4.0],
    );
    close(
        &pad(json!({"pads": pads, "mode": "reflect"})).run(&x, 1),
        &[2.0, 1.0, 2.0, 4.0, 3.0, 4.0, 2.0, 1.0, 2.0],
    );
    close(&pad(json!({"pads": pads, "value": 7})).run(&x, 1), &[7.0, 1.0, 2.0, 7.0, 3.0, 4.0, 7.0, 7.0, 7.0]);
    // Nearest doubling (candle runs it too) and bilinear half-pixel to 1×4.
    let resize = |attrs: Json| flat(image(1, 2, 2).node("Resize", &["img"], "r", attrs), "r");
    let near = json!({"sizes": [4, 4], "scales": [2.0, 2.0], "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"});
    let want = [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.];
    close(&resize(near).run(&x, 1), &want);
    let linear = json!({"sizes": [1, 4], "mode": "linear"});
    // Rows: (0 + 0.5) · 2 − 0.5 = 0.5 → halfway; columns −0.25, 0.25, 0.75, 1.25 → 0, ¼, ¾, 1.
    close(&resize(linear).run(&x, 1), &[2.0, 2.25, 2.75, 3.0]);
}

#[test]
fn element_wise_functions() {
    let x = [-2.0f32, -0.5, 0.0, 1.0, 4.0];
    let run = |op: &str, attrs: Json| Net::new(5).node(op, &["x"], "y", attrs).run(&x, 1);
    close(&run("LeakyRelu", json!({"alpha": 0.1})), &[-0.2, -0.05, 0.0, 1.0, 4.0]);
    close(&run("LeakyRelu", json!({})), &[-0.02, -0.005, 0.0, 1.0, 4.0]);
    close(&run("Clip", json!({"min": 0, "max": 3})), &[0.0, 0.0, 0.0, 1.0, 3.0]);
    close(&run("Clip", json!({"max": 0.5})), &[-2.0, -0.5, 0.0, 0.5, 0.5]);
    close(&run("Abs", json!({})), &[2.0, 0.5, 0.0, 1.0, 4.0]);
    close(&run("Neg", json!({})), &[2.0, 0.5, -0.0, -1.0, -4.0]);
    close(&run("HardSigmoid", json!({})), &[0.1, 0.4, 0.5, 0.7, 1.0]);
    close(&run("HardSwish", json!({})), &[-2.0 / 6.0, -0.5 * (2.5 / 6.0), 0.0, 1.0 * (4.0 / 6.0), 4.0]);
    close(&run("Pow", json!({"exponent": 2})), &[4.0, 0.25, 0.0, 1.0, 16.0]);
    close(&run("Pow", json!({"exponent": 3})), &[-8.0, -0.125, 0.0, 1.0, 64.0]);
    let e = std::f32::consts::E;
    let y = [0.0f32, 1.0, 4.0, 0.25, 1.0];
    let run_y = |op: &str, attrs: Json| Net::new(5).node(op, &["x"], "y", attrs).run(&y, 1);
    close(&run_y("Exp", json!({})), &[1.0, e, e.powi(4), 0.25f32.exp(), e]);
    close(&run_y("Sqrt", json!({})), &[0.0, 1.0, 2.0, 0.5, 1.0]);
    close(&run_y("Pow", json!({"exponent": 0.5})), &[0.0, 1.0, 2.0, 0.5, 1.0]);
    close(&run_y("Reciprocal", json!({}))[1..], &[1.0, 0.25, 4.0, 1.0]);
    close(&run_y("Log", json!({}))[1..], &[0.0, 4f32.ln(), -(4f32.ln()), 0.0]);
    close(
        &run_y("Softplus", json!({})),
        &[2f32.ln(), (1.0 + e).ln(), (1.0 + e.powi(4)).ln(), (1.0 + 0.25f32.exp()).ln(), (1.0 + e).ln()],
    );
    // erf(0) = 0, erf(1) = 0.8427008, erf(0.25) = 0.2763264 (tables).
    let erf = run_y("Erf", json!({}));
    for (got, want) in erf.iter().zip([0.0, 0.842_700_8, 0.999_999_98, 0.276_326_4, 0.842_700_8]) {
        assert!((got - want).abs() < 3e-7, "erf: {got} vs {want}");
    }
}

#[test]
fn log_softmax_and_reductions() {
    let ln = |v: f32| v.ln();
    let ls = Net::new(2).node("LogSoftmax", &["x"], "y", json!({}));
    close(&ls.run(&[0.0, 3f32.ln(), 5.0, 5.0], 2), &[ln(0.25), ln(0.75), ln(0.5), ln(0.5)]);
    // [2, 3] rows 1 2 3 / 4 5 6.
    let m = || Net::new(6).node("Reshape", &["x"], "m", json!({"shape": [-1, 2, 3]}));
    let sum = m().node("ReduceSum", &["m"], "r", json!({"axes": [2], "keepdims": 0}));
    close(&sum.run(&iota(6), 1), &[6.0, 15.0]);
    let mean = flat(m().node("ReduceMean", &["m"], "r", json!({"axes": [1]})), "r");
    close(&mean.run(&iota(6), 1), &[2.5, 3.5, 4.5]);
    let max = m().node("ReduceMax", &["m"], "r", json!({"axes": [-1, -2], "keepdims": false}));
    let max = max.node("Reshape", &["r"], "out", json!({"shape": [-1, 1]}));
    close(&max.run(&[iota(6), vec![-1.0; 6]].concat(), 2), &[6.0, -1.0]);
}

#[test]
fn normalize_and_impute() {
    let rows = [3.0, -4.0, 0.0, 0.0];
    let norm = |n: &str| Net::new(2).node("Normalize", &["x"], "y", json!({ "norm": n })).run(&rows, 2);
    close(&norm("l1"), &[3.0 / 7.0, -4.0 / 7.0, 0.0, 0.0]);
    close(&norm("l2"), &[0.6, -0.8, 0.0, 0.0]);
    close(&norm("max"), &[0.75, -1.0, 0.0, 0.0]);
    let impute =
        Net::new(3).tensor("fill", &[3], &[10.0, 20.0, 30.0]).node("Impute", &["x", "fill"], "y", json!({}));
    let nan = f32::NAN;
    close(&impute.run(&[nan, 2.0, nan, 4.0, nan, 6.0], 2), &[10.0, 2.0, 30.0, 4.0, 20.0, 6.0]);
}

#[test]
fn linear_and_matmul_beyond_two_dimensions() {
    // [2, 3] rows 1 2 3 / 4 5 6; w = [[1, 0, 1], [0, 1, 0]], b = [0.5, -0.5].
    let m = || Net::new(6).node("Reshape", &["x"], "m", json!({"shape": [-1, 2, 3]}));
    let lin = m().tensor("w", &[2, 3], &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]).tensor("b", &[2], &[0.5, -0.5]).node(
        "Linear",
        &["m", "w", "b"],
        "l",
        json!({}),
    );
    close(&flat(lin, "l").run(&iota(6), 1), &[4.5, 1.5, 10.5, 4.5]);
    // A stored [1, 3, 2] B broadcast over the batch: B = [[1, 0], [0, 1], [1, 1]].
    let mm = m().tensor("bm", &[1, 3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).node(
        "MatMul",
        &["m", "bm"],
        "p",
        json!({}),
    );
    close(&flat(mm, "p").run(&iota(6), 1), &[4.0, 5.0, 10.0, 11.0]);
    // m · mᵀ per batch entry: [[14, 32], [32, 77]].
    let gram = m().node("Transpose", &["m"], "mt", json!({"perm": [0, 2, 1]})).node(
        "MatMul",
        &["m", "mt"],
        "g",
        json!({}),
    );
    close(&flat(gram, "g").run(&iota(6), 1), &[14.0, 32.0, 32.0, 77.0]);
}

#[test]
fn opset_2_ops_are_refused_in_an_opset_1_graph() {
    let mut net = Net::new(4).node("Exp", &["x"], "y", json!({}));
    net.opset = 1;
    let err = net.build().unwrap_err().to_string();
    assert!(err.contains("needs opset 2") && err.contains("`Exp`"), "{err}");
    let linear = Net::new(6)
        .node("Reshape", &["x"], "m", json!({"shape": [-1, 2, 3]}))
        .tensor("w", &[2, 3], &[0.0; 6])
        .node("Linear", &["m", "w"], "l", json!({}));
    let mut rank3 = flat(linear, "l");
    rank3.opset = 1;
    assert!(rank3.build().unwrap_err().to_string().contains("needs opset 2"));
    rank3.opset = 2;
    assert!(rank3.build().is_ok());
    // Opset-1 ops in an opset-1 graph load as before.
    let mut old = Net::new(4).tensor("w", &[2, 4], &[0.0; 8]).node("Linear", &["x", "w"], "y", json!({}));
    old.opset = 1;
    assert!(old.build().is_ok());
}

#[test]
fn a_predict_time_shape_error_is_a_graph_error() {
    // A graph declaring a 4-D input, fed 2-D rows: the convolution reports, it does not panic.
    let spec = |name: &str, shape: Vec<i64>| TensorSpec { name: name.into(), dtype: ElementType::F32, shape };
    let net = Net::new(1).tensor("w", &[1, 1, 1, 1], &[1.0]).node("Conv", &["x", "w"], "y", json!({})).node(
        "Reshape",
        &["y"],
        "out",
        json!({"shape": [0, -1]}),
    );
    let mut manifest = crate::testing::tiny_manifest();
    manifest.graph = GraphSpec {
        opset: 2,
        inputs: vec![spec("x", vec![-1, 1, 2, 2])],
        outputs: vec![spec("out", vec![-1, 4])],
        nodes: net.nodes.clone(),
    };
    let bundle = Bundle::from_bytes(to_bytes(&manifest, &net.tensors).unwrap()).unwrap();
    let graph = Graph::validate(&bundle.manifest().graph, bundle.tensor_entries()).unwrap();
    let plan = Plan::lower(&graph, &bundle, &Device::Cpu, Kernels::Auto).unwrap();
    let err = plan.run(&[Feed::F32 { data: &[1.0; 8], rows: 2, cols: 4 }], &Arena::default()).unwrap_err();
    assert!(matches!(&err, Error::Graph { detail, .. } if detail.contains("[N, C, H, W]")), "{err}");
}

#[test]
fn image_graphs_run_in_row_chunks() {
    // Conv → ReLU → MaxPool → flatten → Linear, with a residual add of two computed values.
    let net = image(2, 6, 6)
        .tensor("w", &[4, 2, 3, 3], &(0..72).map(|i| ((i * 37) % 17) as f32 / 17.0 - 0.5).collect::<Vec<_>>())
        .tensor("b", &[4], &[0.1, -0.2, 0.3, 0.0])
        .node("Conv", &["img", "w", "b"], "conv", json!({"pads": [1, 1, 1, 1]}))
        .node("Relu", &["conv"], "relu", json!({}))
        .node("Add", &["relu", "conv"], "sum", json!({}))
        .node("MaxPool", &["sum"], "pool", json!({"kernel_shape": [2, 2], "strides": [2, 2]}))
        .node("Reshape", &["pool"], "flat", json!({"shape": [0, -1]}))
        .tensor("fc", &[3, 36], &(0..108).map(|i| ((i * 13) % 7) as f32 / 7.0 - 0.4).collect::<Vec<_>>())
        .node("Linear", &["flat", "fc"], "out", json!({}));
    let plan = net.cpu();
    assert!(plan.row_wise(), "every step keeps the rows");
    let rows = 2 * CHUNK_ROWS + 9;
    let x: Vec<f32> = (0..rows * 72).map(|i| ((i * 7919) % 1009) as f32 / 500.0 - 1.0).collect();
    let arena = Arena::default();
    let chunked = plan.run_rows(&x, rows, 72, &arena).unwrap();
    let whole = plan.run(&[Feed::F32 { data: &x, rows, cols: 72 }], &arena).unwrap();
    assert_eq!(chunked, whole);
    let three = net.run(&x[..72 * 3], 3);
    for (a, b) in three.iter().zip(&whole[..9]) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn steps_across_the_batch_are_not_row_wise() {
    let m = || Net::new(6).node("Reshape", &["x"], "m", json!({"shape": [-1, 2, 3]}));
    let across = [
        m().node("Transpose", &["m"], "t", json!({"perm": [1, 0, 2]})).node(
            "Reshape",
            &["t"],
            "out",
            json!({"shape": [-1, 6]}),
        ),
        Net::new(6).node("Slice", &["x"], "out", json!({"starts": [1], "ends": [i64::MAX]})),
        Net::new(6).node("ReduceSum", &["x"], "out", json!({"axes": [0]})),
        Net::new(6).node("Reshape", &["x"], "out", json!({"shape": [-1, 3]})),
    ];
    for net in across {
        assert!(!net.cpu().row_wise(), "{:?}", net.nodes.last().map(|n| &n.op));
    }
    let within = [
        flat(m().node("Transpose", &["m"], "t", json!({"perm": [0, 2, 1]})), "t"),
        Net::new(6).node("Slice", &["x"], "out", json!({"starts": [1], "ends": [i64::MAX], "axes": [1]})),
        Net::new(6).node("LogSoftmax", &["x"], "out", json!({})),
        m().node("ReduceMax", &["m"], "out", json!({"axes": [1], "keepdims": 0})),
    ];
    for net in within {
        assert!(net.cpu().row_wise(), "{:?}", net.nodes.last().map(|n| &n.op));
    }
}

#[test]
fn the_device_plan_refuses_what_candle_cannot_compute_naming_op_and_device() {
    let net = image(1, 4, 4).tensor("w", &[1, 1, 2, 2], &[1.0; 4]).node(
        "Conv",
        &["img", "w"],
        "conv",
        json!({"strides": [1, 2]}),
    );
    let net = flat(net, "conv");
    let (bundle, graph) = net.build().unwrap();
    let err = device::DevicePlan::lower(&graph, &bundle, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("Conv") && err.contains("device cpu") && err.contains("`conv`"), "{err}");
    // The CPU plan runs it: windows at columns 0 and 2 of rows 0, 1, 2.
    let x = iota(16);
    close(&net.run(&x, 1), &[14.0, 22.0, 30.0, 38.0, 46.0, 54.0]);
}
