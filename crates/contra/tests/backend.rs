//! The CPU backend's convolution gradients against a direct computation from the definition
//! (contra patches burn-flex with its own weight-gradient kernel: vendor/burn-flex).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
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

#[test]
fn conv2d_weight_and_input_gradients_equal_the_definition() {
    let cases = [
        // The small CNN's blocks, and ResNet's strided and 1x1 convolutions.
        Case {
            batch: 3,
            c_in: 1,
            c_out: 4,
            size: [9, 9],
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1, 1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            batch: 40,
            c_in: 6,
            c_out: 5,
            size: [3, 3],
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1, 1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            batch: 2,
            c_in: 4,
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
            c_in: 4,
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
            .with_bias(false)
            .init(&device);
        let x = tensor4(x_vals.clone(), [c.batch, c.c_in, h, w], &device).require_grad();
        let y = conv.forward(x.clone());
        let [_, _, oh, ow] = y.dims();
        let r_vals: Vec<f32> = (0..c.batch * c.c_out * oh * ow)
            .map(|_| rng.normal() as f32)
            .collect();
        let r = tensor4(r_vals.clone(), [c.batch, c.c_out, oh, ow], &device);
        let grads = (y * r).sum().backward();
        let got_w = to_vec(conv.weight.grad(&grads).unwrap());
        let got_x = to_vec(x.grad(&grads).unwrap());
        let weights = to_vec(conv.weight.val().inner());
        // The definition: y[b, o, i, j] = sum w[o, c, u, v] * x[b, g*cg + c, i*s + u*d - p, ...].
        let (cg, og) = (c.c_in / c.groups, c.c_out / c.groups);
        let [kh, kw] = c.kernel;
        let mut want_w = vec![0f64; c.c_out * cg * kh * kw];
        let mut want_x = vec![0f64; x_vals.len()];
        for b in 0..c.batch {
            for o in 0..c.c_out {
                let g = o / og;
                for i in 0..oh {
                    for j in 0..ow {
                        let dy = r_vals[((b * c.c_out + o) * oh + i) * ow + j] as f64;
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
                                    want_w[wi] += dy * x_vals[xi] as f64;
                                    want_x[xi] += dy * weights[wi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        for (name, got, want) in [("weight", &got_w, &want_w), ("input", &got_x, &want_x)] {
            assert_eq!(got.len(), want.len(), "case {ci} {name}");
            for (k, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                assert!(
                    (*g as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "case {ci}: {name} gradient {k}: {g} vs {w}"
                );
            }
        }
    }
}
