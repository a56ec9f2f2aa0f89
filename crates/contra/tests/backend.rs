//! The CPU backend's convolution gradients against a direct computation from the definition
//! (contra patches burn-flex with its own weight- and input-gradient kernels: vendor/burn-flex),
//! and its other patched operations.

#[path = "support/threads.rs"]
mod threads;

use burn::nn::conv::{Conv1dConfig, Conv2dConfig};
use burn::nn::{PaddingConfig1d, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::TensorData;
use contra::rng::Rng;
use contra::tensor_util::{tensor4, to_vec};

struct Case {
    batch: usize,
    c_in: usize,
    c_out: usize,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 4], // top, left, bottom, right
    dilation: [usize; 2],
    groups: usize,
}

impl Case {
    /// 3x3, stride 1, padding 1: the CNNs' usual block (and Winograd's case).
    fn same_3x3(batch: usize, c_in: usize, c_out: usize, size: [usize; 2]) -> Self {
        Case {
            batch,
            c_in,
            c_out,
            size,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1, 1, 1],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

#[test]
fn conv2d_output_and_gradients_equal_the_definition() {
    let cases = [
        // The small CNN's blocks, and ResNet's strided and 1x1 convolutions.
        Case::same_3x3(3, 1, 4, [9, 9]),
        // 3x3 maps: at most 114 images per GEMM (1,024 positions), evened out to three chunks
        // of 77, 77 and 76.
        Case::same_3x3(230, 6, 5, [3, 3]),
        Case {
            batch: 2,
            c_in: 8,
            c_out: 6,
            size: [11, 8],
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1, 1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            batch: 2,
            c_in: 8,
            c_out: 2,
            size: [7, 7],
            kernel: [1, 1],
            stride: [2, 2],
            padding: [0, 0, 0, 0],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            batch: 2,
            c_in: 4,
            c_out: 6,
            size: [10, 9],
            kernel: [3, 2],
            stride: [1, 2],
            padding: [2, 1, 0, 1],
            dilation: [2, 1],
            groups: 2,
        },
        // "Same" padding at stride 1 copies whole shifted planes: a kernel wider than the map
        // (rows and columns that read only padding), dilation, several images per chunk.
        Case {
            batch: 4,
            c_in: 3,
            c_out: 5,
            size: [4, 3],
            kernel: [5, 5],
            stride: [1, 1],
            padding: [2, 2, 2, 2],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            batch: 3,
            c_in: 4,
            c_out: 4,
            size: [6, 7],
            kernel: [3, 3],
            stride: [1, 1],
            padding: [2, 2, 2, 2],
            dilation: [2, 2],
            groups: 2,
        },
        Case {
            batch: 2,
            c_in: 5,
            c_out: 3,
            size: [5, 6],
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0, 0, 0, 0],
            dilation: [1, 1],
            groups: 1,
        },
        // Asymmetric: an output as wide as the input, but rows cut at the bottom.
        Case {
            batch: 2,
            c_in: 2,
            c_out: 3,
            size: [6, 5],
            kernel: [3, 3],
            stride: [1, 1],
            padding: [0, 1, 0, 1],
            dilation: [1, 1],
            groups: 1,
        },
        // The last row and column are read by no output: their input gradient is zero.
        Case {
            batch: 5,
            c_in: 4,
            c_out: 6,
            size: [8, 8],
            kernel: [3, 3],
            stride: [2, 2],
            padding: [0, 0, 0, 0],
            dilation: [1, 1],
            groups: 2,
        },
        // 3x3, stride 1, padding 1, even maps and about 64 channels or more run by Winograd's
        // F(2x2, 3x3) (vendor/burn-flex/src/ops/conv2d_winograd.rs): 24 images of 6 tiles
        // (three chunks of 8), unequal channels on a 2x10 map, one 4x4 image, 9 images of 36
        // tiles (the weight gradient's partial sums from two chunks, 5 and 4 images) and two
        // images of 17x16 tiles (each in bands of 4 tile rows and a last band of one).
        Case::same_3x3(24, 64, 64, [6, 4]),
        Case::same_3x3(2, 128, 48, [2, 10]),
        Case::same_3x3(9, 64, 64, [12, 12]),
        Case::same_3x3(2, 64, 64, [34, 32]),
        Case::same_3x3(1, 64, 72, [4, 4]),
    ];
    let device = contra::device::parse("cpu").unwrap().autodiff();
    for (ci, c) in cases.iter().enumerate() {
        let mut rng = Rng::new(ci as u64 + 10);
        let [h, w] = c.size;
        let x_vals: Vec<f32> = (0..c.batch * c.c_in * h * w)
            .map(|_| rng.normal() as f32)
            .collect();
        let conv = Conv2dConfig::new([c.c_in, c.c_out], c.kernel)
            .with_stride(c.stride)
            .with_dilation(c.dilation)
            .with_groups(c.groups)
            .with_padding(PaddingConfig2d::Explicit(
                c.padding[0],
                c.padding[1],
                c.padding[2],
                c.padding[3],
            ))
            .init(&device);
        let x = tensor4(x_vals.clone(), [c.batch, c.c_in, h, w], &device).require_grad();
        let y = conv.forward(x.clone());
        let [_, _, oh, ow] = y.dims();
        let got_y = to_vec(y.clone().inner());
        let r_vals: Vec<f32> = (0..c.batch * c.c_out * oh * ow)
            .map(|_| rng.normal() as f32)
            .collect();
        let r = tensor4(r_vals.clone(), [c.batch, c.c_out, oh, ow], &device);
        let grads = (y * r).sum().backward();
        let got_w = to_vec(conv.weight.grad(&grads).unwrap());
        let got_x = to_vec(x.grad(&grads).unwrap());
        let weights = to_vec(conv.weight.val().inner());
        let bias = to_vec(conv.bias.as_ref().unwrap().val().inner());
        let want = definition(c, &x_vals, &weights, &bias, &r_vals, [oh, ow]);
        check(ci, [&got_y, &got_w, &got_x], want);
    }
}

/// 1D convolutions (TS2Vec's dilated, length-keeping ones among them): output and both
/// gradients, which burn-flex computes by its 2D kernels at a height of 1.
#[test]
fn conv1d_output_and_gradients_equal_the_definition() {
    // batch, c_in, c_out, length, kernel, stride, padding (left, right), dilation, groups
    let cases = [
        (8, 16, 16, 37, 3, 1, (4, 4), 4, 1),
        (3, 6, 4, 20, 4, 1, (2, 1), 1, 1),
        (2, 8, 6, 31, 3, 2, (1, 1), 2, 2),
        (4, 8, 12, 15, 1, 1, (0, 0), 1, 1),
        // Dilation past the length (TS2Vec's last blocks on short series): outer taps read
        // only padding.
        (2, 4, 4, 10, 3, 1, (16, 16), 16, 1),
    ];
    let device = contra::device::parse("cpu").unwrap().autodiff();
    for (ci, &(batch, c_in, c_out, len, k, stride, (pl, pr), dil, groups)) in
        cases.iter().enumerate()
    {
        let mut rng = Rng::new(ci as u64 + 40);
        let x_vals: Vec<f32> = (0..batch * c_in * len)
            .map(|_| rng.normal() as f32)
            .collect();
        let conv = Conv1dConfig::new(c_in, c_out, k)
            .with_stride(stride)
            .with_dilation(dil)
            .with_groups(groups)
            .with_padding(PaddingConfig1d::Explicit(pl, pr))
            .init(&device);
        let x =
            Tensor::<3>::from_data(TensorData::new(x_vals.clone(), [batch, c_in, len]), &device)
                .require_grad();
        let y = conv.forward(x.clone());
        let [_, _, out_len] = y.dims();
        assert_eq!(out_len, (len + pl + pr - dil * (k - 1) - 1) / stride + 1);
        let got_y = to_vec(y.clone().inner());
        let r_vals: Vec<f32> = (0..batch * c_out * out_len)
            .map(|_| rng.normal() as f32)
            .collect();
        let r = Tensor::<3>::from_data(
            TensorData::new(r_vals.clone(), [batch, c_out, out_len]),
            &device,
        );
        let grads = (y * r).sum().backward();
        let got_w = to_vec(conv.weight.grad(&grads).unwrap());
        let got_x = to_vec(x.grad(&grads).unwrap());
        let weights = to_vec(conv.weight.val().inner());
        let bias = to_vec(conv.bias.as_ref().unwrap().val().inner());
        // The same convolution in 2D at a height of 1.
        let case = Case {
            batch,
            c_in,
            c_out,
            size: [1, len],
            kernel: [1, k],
            stride: [1, stride],
            padding: [0, pl, 0, pr],
            dilation: [1, dil],
            groups,
        };
        let want = definition(&case, &x_vals, &weights, &bias, &r_vals, [1, out_len]);
        check(ci, [&got_y, &got_w, &got_x], want);
    }
}

/// Output, weight gradient and input gradient of `sum(conv(x) * r)` evaluated from the
/// definition in f64: `y[b, o, i, j] = bias[o] + sum w[o, c, u, v] * x[b, g*cg + c, i*s + u*d - p,
/// j*s + v*d - p]`.
fn definition(
    c: &Case,
    x_vals: &[f32],
    weights: &[f32],
    bias: &[f32],
    r_vals: &[f32],
    [oh, ow]: [usize; 2],
) -> [Vec<f64>; 3] {
    let [h, w] = c.size;
    let (cg, og) = (c.c_in / c.groups, c.c_out / c.groups);
    let [kh, kw] = c.kernel;
    let mut want_y = vec![0f64; r_vals.len()];
    let mut want_w = vec![0f64; c.c_out * cg * kh * kw];
    let mut want_x = vec![0f64; x_vals.len()];
    for b in 0..c.batch {
        for (o, &bias_o) in bias.iter().enumerate() {
            let g = o / og;
            for i in 0..oh {
                for j in 0..ow {
                    let yi = ((b * c.c_out + o) * oh + i) * ow + j;
                    let dy = r_vals[yi] as f64;
                    want_y[yi] += bias_o as f64;
                    for ch in 0..cg {
                        for u in 0..kh {
                            for v in 0..kw {
                                let yy = (i * c.stride[0] + u * c.dilation[0]) as isize
                                    - c.padding[0] as isize;
                                let xx = (j * c.stride[1] + v * c.dilation[1]) as isize
                                    - c.padding[1] as isize;
                                if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                                    continue;
                                }
                                let xi = ((b * c.c_in + g * cg + ch) * h + yy as usize) * w
                                    + xx as usize;
                                let wi = ((o * cg + ch) * kh + u) * kw + v;
                                want_y[yi] += weights[wi] as f64 * x_vals[xi] as f64;
                                want_w[wi] += dy * x_vals[xi] as f64;
                                want_x[xi] += dy * weights[wi] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    [want_y, want_w, want_x]
}

/// `got` (output, weight gradient, input gradient) within 1e-4 relative of `want`.
fn check(case: usize, got: [&Vec<f32>; 3], want: [Vec<f64>; 3]) {
    let names = ["output", "weight gradient", "input gradient"];
    for ((name, got), want) in names.iter().zip(got).zip(&want) {
        assert_eq!(got.len(), want.len(), "case {case} {name}");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                "case {case}: {name} {k}: {g} vs {w}"
            );
        }
    }
}

/// Batch normalisation in training (output, batch statistics, gradients of input, gamma and
/// beta) and in inference, against the definition evaluated in f64 (contra's burn-flex fuses
/// these: vendor/burn-flex/src/ops/batch_norm.rs).
#[test]
fn batch_norm_train_and_inference_equal_the_definition() {
    use burn::prelude::*;
    use burn::tensor::TensorData;
    // [N, C, S...] shapes: images, a head's [N, C] (runs of one element), series with runs
    // shorter and longer than the kernels' 16 lanes; a channel far from zero (offset 1000,
    // spread 0.01) checks that the variance is taken about the mean.
    let shapes: [&[usize]; 5] = [
        &[3, 4, 5, 6],
        &[7, 5],
        &[4, 3, 33],
        &[2, 3, 16],
        &[65, 2, 3],
    ];
    let device = contra::device::parse("cpu").unwrap().autodiff();
    let eps = 1e-5;
    for (si, shape) in shapes.iter().enumerate() {
        let mut rng = Rng::new(si as u64 + 100);
        let (n, c) = (shape[0], shape[1]);
        let s: usize = shape[2..].iter().product();
        let len = n * c * s;
        let x_vals: Vec<f32> = (0..len)
            .map(|i| {
                let ch = (i / s) % c;
                let v = rng.normal() as f32;
                if ch == 1 {
                    1000.0 + 0.01 * v
                } else {
                    v * (1.0 + ch as f32)
                }
            })
            .collect();
        let g_vals: Vec<f32> = (0..c).map(|_| 0.5 + rng.uniform() as f32).collect();
        let b_vals: Vec<f32> = (0..c).map(|_| rng.normal() as f32).collect();
        let r_vals: Vec<f32> = (0..len).map(|_| rng.normal() as f32).collect();
        let dims: Vec<usize> = shape.to_vec();
        let x = Tensor::<3>::from_data(TensorData::new(x_vals.clone(), [n, c, s]), &device);
        // Reshape to the case's own rank so the kernel sees it.
        let run = |x: Tensor<3>, gamma: Tensor<1>, beta: Tensor<1>| match dims.len() {
            2 => {
                let r = burn::tensor::module::batch_norm_train(x.reshape([n, c]), gamma, beta, eps);
                (r.output.reshape([n, c, s]), r.mean, r.variance)
            }
            3 => {
                let r = burn::tensor::module::batch_norm_train(x, gamma, beta, eps);
                (r.output, r.mean, r.variance)
            }
            _ => {
                let r = burn::tensor::module::batch_norm_train(
                    x.reshape([n, c, dims[2], dims[3]]),
                    gamma,
                    beta,
                    eps,
                );
                (r.output.reshape([n, c, s]), r.mean, r.variance)
            }
        };
        let x = x.require_grad();
        let gamma =
            Tensor::<1>::from_data(TensorData::new(g_vals.clone(), [c]), &device).require_grad();
        let beta =
            Tensor::<1>::from_data(TensorData::new(b_vals.clone(), [c]), &device).require_grad();
        let (y, mean, var) = run(x.clone(), gamma.clone(), beta.clone());
        let r = Tensor::<3>::from_data(TensorData::new(r_vals.clone(), [n, c, s]), &device);
        let grads = (y.clone() * r).sum().backward();
        let got = [
            to_vec(y),
            to_vec(mean),
            to_vec(var),
            to_vec(x.grad(&grads).unwrap()),
            to_vec(gamma.grad(&grads).unwrap()),
            to_vec(beta.grad(&grads).unwrap()),
        ];
        // The definition in f64: y = (x - m) / sqrt(v + eps) * g + b over each channel's
        // M = N*S values; dL/dx = g/sqrt(v+eps) * (dy - mean(dy) - xhat * mean(dy * xhat)).
        let at = |i: usize, ch: usize, k: usize| (i * c + ch) * s + k;
        let m_count = (n * s) as f64;
        let mut want = [
            vec![0f64; len],
            vec![0f64; c],
            vec![0f64; c],
            vec![0f64; len],
            vec![0f64; c],
            vec![0f64; c],
        ];
        for ch in 0..c {
            let vals = || (0..n).flat_map(move |i| (0..s).map(move |k| at(i, ch, k)));
            let m = vals().map(|j| x_vals[j] as f64).sum::<f64>() / m_count;
            let v = vals().map(|j| (x_vals[j] as f64 - m).powi(2)).sum::<f64>() / m_count;
            let inv = 1.0 / (v + eps).sqrt();
            let xhat = |j: usize| (x_vals[j] as f64 - m) * inv;
            let mean_dy = vals().map(|j| r_vals[j] as f64).sum::<f64>() / m_count;
            let mean_dy_xhat = vals().map(|j| r_vals[j] as f64 * xhat(j)).sum::<f64>() / m_count;
            let g = g_vals[ch] as f64;
            for j in vals() {
                want[0][j] = xhat(j) * g + b_vals[ch] as f64;
                want[3][j] = g * inv * (r_vals[j] as f64 - mean_dy - xhat(j) * mean_dy_xhat);
            }
            want[1][ch] = m;
            want[2][ch] = v;
            want[4][ch] = mean_dy_xhat * m_count;
            want[5][ch] = mean_dy * m_count;
        }
        let names = [
            "output",
            "mean",
            "variance",
            "x grad",
            "gamma grad",
            "beta grad",
        ];
        for ((name, got), want) in names.iter().zip(&got).zip(&want) {
            assert_eq!(got.len(), want.len(), "shape {shape:?} {name}");
            let scale = want.iter().fold(1.0f64, |a, w| a.max(w.abs()));
            for (k, (g, w)) in got.iter().zip(want).enumerate() {
                // The variance of the offset channel is 1e-4: relative to itself.
                let tol = if *name == "variance" {
                    1e-4 * w.abs() + 1e-9
                } else {
                    2e-5 * scale
                };
                assert!(
                    (*g as f64 - w).abs() <= tol,
                    "shape {shape:?}: {name} {k}: {g} vs {w}"
                );
            }
        }
        // Inference with the batch's statistics gives the training output.
        let plain = contra::device::parse("cpu").unwrap();
        let xi = Tensor::<3>::from_data(TensorData::new(x_vals.clone(), [n, c, s]), &plain);
        let stat = |v: &[f64]| {
            Tensor::<1>::from_data(
                TensorData::new(v.iter().map(|&a| a as f32).collect::<Vec<_>>(), [c]),
                &plain,
            )
        };
        let inferred = to_vec(burn::tensor::module::batch_norm(
            xi,
            Tensor::<1>::from_data(TensorData::new(g_vals.clone(), [c]), &plain),
            Tensor::<1>::from_data(TensorData::new(b_vals.clone(), [c]), &plain),
            stat(&want[1]),
            stat(&want[2]),
            eps,
        ));
        // The definition with the statistics as f32 holds them.
        let want_inferred: Vec<f64> = (0..len)
            .map(|j| {
                let ch = (j / s) % c;
                let (m, v) = (want[1][ch] as f32 as f64, want[2][ch] as f32 as f64);
                (x_vals[j] as f64 - m) / (v + eps).sqrt() * g_vals[ch] as f64 + b_vals[ch] as f64
            })
            .collect();
        let scale = want[0].iter().fold(1.0f64, |a, w| a.max(w.abs()));
        for (k, (g, w)) in inferred.iter().zip(&want_inferred).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 2e-5 * scale,
                "shape {shape:?}: inference {k}: {g} vs {w}"
            );
        }
    }
}

/// exp and GELU (forward and gradient) on f32 against f64 references: burn-flex runs them
/// through contra's branch-free, vectorised exp and erf (vendor/burn-flex/src/ops/fast_math.rs).
#[test]
fn exp_and_gelu_equal_f64_references() {
    use burn::prelude::*;
    use burn::tensor::TensorData;
    // A grid over exp's whole finite range and GELU's interesting one, plus the edges.
    let mut xs: Vec<f32> = (0..240_000).map(|i| -87.3 + i as f32 * 0.000_73).collect();
    xs.extend([0.0, -0.0, 88.7, -88.0, -200.0, 89.0, 1e-30, -1e-30]);
    let n = xs.len();
    let plain = contra::device::parse("cpu").unwrap();
    let got = to_vec(Tensor::<1>::from_data(TensorData::new(xs.clone(), [n]), &plain).exp());
    let mut worst_ulp = 0.0f64;
    for (&x, &g) in xs.iter().zip(&got) {
        let want = (x as f64).exp();
        if x < -87.336 {
            // Subnormal results (under 1.2e-38) are flushed to zero.
            assert!(
                g == 0.0 || (g as f64 - want).abs() < 1.2e-38,
                "exp({x}) = {g}"
            );
        } else if want > f32::MAX as f64 {
            assert_eq!(g, f32::INFINITY, "exp({x})");
        } else {
            let ulp = (want as f32).abs() as f64 * f32::EPSILON as f64;
            worst_ulp = worst_ulp.max((g as f64 - want).abs() / ulp);
        }
    }
    assert!(worst_ulp <= 2.0, "exp: worst error {worst_ulp} ulp");
    let edges = to_vec(
        Tensor::<1>::from_data(
            TensorData::new(vec![f32::NEG_INFINITY, f32::INFINITY, f32::NAN], [3]),
            &plain,
        )
        .exp(),
    );
    assert_eq!(edges[..2], [0.0, f32::INFINITY]);
    assert!(edges[2].is_nan());

    // GELU(x) = x Phi(x) and its derivative Phi(x) + x phi(x), over [-10, 10].
    let xs: Vec<f32> = (0..100_000).map(|i| -10.0 + i as f32 * 0.000_2).collect();
    let n = xs.len();
    let device = plain.autodiff();
    let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [n]), &device).require_grad();
    let y = burn::tensor::activation::gelu(x.clone());
    let grads = y.clone().sum().backward();
    let (y, dy) = (to_vec(y), to_vec(x.grad(&grads).unwrap()));
    let (mut worst_y, mut worst_dy) = (0.0f64, 0.0f64);
    for ((&x, &g), &d) in xs.iter().zip(&y).zip(&dy) {
        let x = x as f64;
        let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        worst_y = worst_y.max((g as f64 - x * cdf).abs() / x.abs().max(1.0));
        worst_dy = worst_dy.max((d as f64 - (cdf + x * pdf)).abs());
    }
    // erf's absolute error is under 1.5e-7 (Abramowitz and Stegun 7.1.26, as PyTorch's
    // vectorised erf), so Phi's under 7.5e-8; the rest is f32 rounding of sums near 1.
    assert!(worst_y < 2.5e-7, "gelu: worst error {worst_y}");
    assert!(worst_dy < 4e-7, "gelu gradient: worst error {worst_dy}");
}

/// 2x2 max pooling with stride 2 (contra's burn-flex takes a direct path for it): values,
/// and the gradient routed to the first maximum of each window (row by row), on planes of
/// even and odd size with ties, against the definition.
#[test]
fn max_pool_2x2_equals_the_definition() {
    use burn::nn::pool::MaxPool2dConfig;
    let device = contra::device::parse("cpu").unwrap().autodiff();
    let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    for (ci, (n, c, h, w)) in [(2, 3, 8, 8), (3, 2, 7, 9), (1, 1, 2, 2)]
        .into_iter()
        .enumerate()
    {
        let mut rng = Rng::new(ci as u64 + 300);
        // Values on a coarse grid, so that windows have ties.
        let x_vals: Vec<f32> = (0..n * c * h * w)
            .map(|_| (rng.uniform() * 4.0).floor() as f32)
            .collect();
        let x = tensor4(x_vals.clone(), [n, c, h, w], &device).require_grad();
        let y = pool.forward(x.clone());
        let [_, _, oh, ow] = y.dims();
        assert_eq!([oh, ow], [h / 2, w / 2]);
        let r_vals: Vec<f32> = (0..n * c * oh * ow).map(|_| rng.normal() as f32).collect();
        let r = tensor4(r_vals.clone(), [n, c, oh, ow], &device);
        let grads = (y.clone() * r).sum().backward();
        let (got_y, got_dx) = (to_vec(y), to_vec(x.grad(&grads).unwrap()));
        let mut want_dx = vec![0f32; x_vals.len()];
        for p in 0..n * c {
            for i in 0..oh {
                for j in 0..ow {
                    let at = |u: usize, v: usize| (p * h + 2 * i + u) * w + 2 * j + v;
                    let mut best = at(0, 0);
                    for (u, v) in [(0, 1), (1, 0), (1, 1)] {
                        if x_vals[at(u, v)] > x_vals[best] {
                            best = at(u, v);
                        }
                    }
                    let o = (p * oh + i) * ow + j;
                    assert_eq!(got_y[o], x_vals[best], "case {ci}: output {o}");
                    want_dx[best] += r_vals[o];
                }
            }
        }
        assert_eq!(got_dx, want_dx, "case {ci}: input gradient");
    }
    // NaN wins its window and the gradient goes to the window's last NaN, as in PyTorch;
    // among equal maxima the first (row by row) takes it.
    let nan = f32::NAN;
    let x = tensor4(
        vec![1.0, nan, 3.0, 2.0, nan, 0.0, 5.0, 5.0],
        [1, 1, 2, 4],
        &device,
    )
    .require_grad();
    let y = pool.forward(x.clone());
    let grads = (y.clone() * tensor4(vec![10.0, 20.0], [1, 1, 1, 2], &device))
        .sum()
        .backward();
    let got_y = to_vec(y);
    assert!(got_y[0].is_nan());
    assert_eq!(got_y[1], 5.0);
    let got_dx = to_vec(x.grad(&grads).unwrap());
    assert_eq!(got_dx, [0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 20.0, 0.0]);
}

/// A sum over a tensor large enough for flex's parallel path (4M elements and more) has the
/// same bits at any thread count and on every run: the chunks' partial sums are added in
/// chunk order (vendor/burn-flex), not in a tree shaped by rayon's work stealing.
#[test]
fn a_large_sum_is_the_same_at_any_thread_count() {
    let n = 5 * 1024 * 1024 + 17;
    let mut rng = Rng::new(7);
    // Magnitudes over six decades: a different grouping of the partial sums changes the bits.
    let values: Vec<f32> = (0..n)
        .map(|_| (rng.normal() * 10f64.powf(3.0 * rng.uniform())) as f32)
        .collect();
    let exact: f64 = values.iter().map(|&v| v as f64).sum();
    let device = Device::default();
    let x = Tensor::<1>::from_data(TensorData::new(values, [n]), &device);
    let in_pool = |threads| threads::with_threads(threads, || x.clone().sum().into_scalar::<f32>());
    let one = in_pool(1);
    let scale: f64 = 1e-5 * (n as f64).sqrt() * 1e3;
    assert!((one as f64 - exact).abs() < scale, "{one} against {exact}");
    for threads in [2, 3, 4, 2, 3, 4] {
        assert_eq!(
            in_pool(threads).to_bits(),
            one.to_bits(),
            "{threads} threads"
        );
    }
}
