//! Fused operations of TS2Vec's hierarchical loss, with their own backward passes.
//!
//! - [`partner_cross_entropy`]: for similarities `s` of shape `[G, R, R]` and a shift `n`,
//!   `out[g, r] = log sum_{r' != r} exp(s[g, r, r']) - s[g, r, (r + n) mod R]`: the
//!   cross-entropy of each row against its partner, the row itself left out. Its gradient is
//!   `softmax_{r' != r}(s[g, r, .]) - onehot(partner)` (0 on the diagonal), times the incoming
//!   gradient of the row.
//! - [`max_pool_pairs`]: `[B, T, C]` to `[B, T / 2, C]`, the larger of steps `2t` and `2t + 1`
//!   (the earlier one on ties, as PyTorch's `max_pool1d`; an odd last step is dropped); the
//!   gradient goes to the step that was taken.
//!
//! Built from burn's operations, each is five to ten passes over a `[G, R, R]` or `[B, T, C]`
//! tensor forward and as many backward (burn's log-softmax alone is six, `max_dim` keeps
//! indices and its backward scatters them one element at a time); on flex these are one pass
//! each way, row by row. Rows are independent and each is summed in a fixed order (16 lanes,
//! then the lanes in order), so results do not depend on the thread count or the SIMD width.
//! Other backends run the same row kernels on a host copy.

// burn 0.22 marks burn-tch deprecated (the extension's generated code names it too);
// contra keeps it as an opt-in backend.
#![cfg_attr(feature = "tch", allow(deprecated))]

use crate::tensor_util::host_f32;
use burn::backend::{
    AutodiffBackend, Backend, Dispatch, TensorMetadata, backend_extension, tensor::FloatTensor,
};
use burn::prelude::*;
use burn_autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind, unary},
};
use rayon::prelude::*;

/// The backend operations behind [`partner_cross_entropy`] and [`max_pool_pairs`].
#[backend_extension(
    Flex: cfg(feature = "flex"),
    LibTorch: cfg(feature = "tch"),
    Autodiff: cfg(all()),
)]
pub trait LossKernels: Backend {
    /// `[G, R, R]` similarities to `[G, R]` row losses (see the module's doc).
    fn partner_cross_entropy(sim: FloatTensor<Self>, shift: usize) -> FloatTensor<Self>;
    /// The gradient with respect to `sim` given the rows' incoming gradient `[G, R]`.
    fn partner_cross_entropy_backward(
        sim: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        shift: usize,
    ) -> FloatTensor<Self>;
    /// `[B, T, C]` to `[B, T / 2, C]`, the larger of each pair of steps.
    fn max_pool_pairs(z: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The gradient with respect to `z` given the pooled output's gradient.
    fn max_pool_pairs_backward(z: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Cross-entropy of each row of `sim` (`[G, R, R]`) against its partner `(r + shift) mod R`,
/// the row itself left out: `[G, R]`.
pub fn partner_cross_entropy(sim: Tensor<3>, shift: usize) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as LossKernels>::partner_cross_entropy(
        sim.into_dispatch(),
        shift,
    ))
}

/// Max pooling over time by 2 of `[B, T, C]`: `[B, T / 2, C]`.
pub fn max_pool_pairs(z: Tensor<3>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as LossKernels>::max_pool_pairs(z.into_dispatch()))
}

/// Lanes of the row sums: a fixed number, so the order of additions does not depend on the
/// machine's vector width.
const LANES: usize = 16;

/// The largest element of two slices (the row around its diagonal element).
fn max_of(parts: [&[f32]; 2]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut rest = f32::NEG_INFINITY;
    for part in parts {
        let chunks = part.chunks_exact(LANES);
        for &x in chunks.remainder() {
            rest = rest.max(x);
        }
        for chunk in chunks {
            for (l, &x) in lanes.iter_mut().zip(chunk) {
                *l = l.max(x);
            }
        }
    }
    lanes.into_iter().fold(rest, f32::max)
}

#[allow(clippy::extra_unused_type_parameters)]
#[cfg_attr(feature = "flex", macerator::with_simd)]
fn sum_exp<#[cfg(feature = "flex")] S: macerator::Simd>(part: &[f32], max: f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = part.chunks_exact(LANES);
    let mut rest = 0.0f32;
    for &x in chunks.remainder() {
        rest += exp_f32(x - max);
    }
    for chunk in chunks {
        for (l, &x) in lanes.iter_mut().zip(chunk) {
            *l += exp_f32(x - max);
        }
    }
    lanes.into_iter().fold(0.0, |a, b| a + b) + rest
}

#[allow(clippy::extra_unused_type_parameters)]
#[cfg_attr(feature = "flex", macerator::with_simd)]
fn scaled_exp<#[cfg(feature = "flex")] S: macerator::Simd>(
    part: &[f32],
    shift: f32,
    scale: f32,
    out: &mut [f32],
) {
    for (o, &x) in out.iter_mut().zip(part) {
        *o = scale * exp_f32(x - shift);
    }
}

/// `log sum_{r' != r} exp(row[r'])`.
fn log_sum_exp_without(row: &[f32], r: usize) -> f32 {
    let parts = [&row[..r], &row[r + 1..]];
    let max = max_of(parts);
    max + (sum_exp(parts[0], max) + sum_exp(parts[1], max)).ln()
}

#[cfg(feature = "flex")]
use burn_flex::ops::fast_math::exp_f32;

/// A build without flex (tch only): libm's exp, within 2 ulp of flex's, so such a build's last
/// digits may differ from the default build's.
#[cfg(not(feature = "flex"))]
fn exp_f32(x: f32) -> f32 {
    x.exp()
}

/// Row losses of `sim` (`[G, R, R]`, row-major) into `out` (`[G, R]`).
fn partner_cross_entropy_rows(sim: &[f32], rows: usize, shift: usize, out: &mut [f32]) {
    if rows == 0 {
        return;
    }
    out.par_iter_mut()
        .zip(sim.par_chunks(rows))
        .enumerate()
        .for_each(|(i, (o, row))| {
            let r = i % rows;
            *o = log_sum_exp_without(row, r) - row[(r + shift) % rows];
        });
}

/// The gradient of [`partner_cross_entropy_rows`] with respect to `sim`, `grad` being `[G, R]`.
fn partner_cross_entropy_grad_rows(
    sim: &[f32],
    grad: &[f32],
    rows: usize,
    shift: usize,
    out: &mut [f32],
) {
    if rows == 0 {
        return;
    }
    out.par_chunks_mut(rows)
        .zip(sim.par_chunks(rows))
        .zip(grad.par_iter())
        .enumerate()
        .for_each(|(i, ((o, row), &g))| {
            let r = i % rows;
            let lse = log_sum_exp_without(row, r);
            scaled_exp(&row[..r], lse, g, &mut o[..r]);
            scaled_exp(&row[r + 1..], lse, g, &mut o[r + 1..]);
            o[r] = 0.0;
            o[(r + shift) % rows] -= g;
        });
}

/// `out[b, t, c] = max(z[b, 2t, c], z[b, 2t + 1, c])`, the earlier on ties.
fn max_pool_pairs_rows(z: &[f32], steps: usize, channels: usize, out: &mut [f32]) {
    let half = steps / 2;
    if half == 0 || channels == 0 {
        return;
    }
    out.par_chunks_mut(channels).enumerate().for_each(|(i, o)| {
        let (b, t) = (i / half, i % half);
        let even = &z[(b * steps + 2 * t) * channels..][..channels];
        let odd = &z[(b * steps + 2 * t + 1) * channels..][..channels];
        for ((o, &e), &d) in o.iter_mut().zip(even).zip(odd) {
            *o = if e < d { d } else { e };
        }
    });
}

/// `g` into `o_even` where `even >= odd`, else into `o_odd`; zeros in the other.
#[allow(clippy::extra_unused_type_parameters)]
#[cfg_attr(feature = "flex", macerator::with_simd)]
fn route_to_larger<#[cfg(feature = "flex")] S: macerator::Simd>(
    even: &[f32],
    odd: &[f32],
    g: &[f32],
    o_even: &mut [f32],
    o_odd: &mut [f32],
) {
    let n = g.len();
    let (even, odd, o_even, o_odd) = (&even[..n], &odd[..n], &mut o_even[..n], &mut o_odd[..n]);
    for c in 0..n {
        let odd_wins = even[c] < odd[c];
        o_even[c] = if odd_wins { 0.0 } else { g[c] };
        o_odd[c] = if odd_wins { g[c] } else { 0.0 };
    }
}

/// The gradient of [`max_pool_pairs_rows`] with respect to `z` (`[B, T, C]`).
fn max_pool_pairs_grad_rows(
    z: &[f32],
    grad: &[f32],
    steps: usize,
    channels: usize,
    out: &mut [f32],
) {
    let half = steps / 2;
    // Nothing pooled: the gradient stays zero.
    if half == 0 || channels == 0 {
        return;
    }
    out.par_chunks_mut(steps * channels)
        .zip(z.par_chunks(steps * channels))
        .zip(grad.par_chunks(half * channels))
        .for_each(|((o, z), g)| {
            for ((o, z), g) in o
                .chunks_exact_mut(2 * channels)
                .zip(z.chunks_exact(2 * channels))
                .zip(g.chunks_exact(channels))
            {
                let (o_even, o_odd) = o.split_at_mut(channels);
                let (even, odd) = z.split_at(channels);
                route_to_larger(even, odd, g, o_even, o_odd);
            }
            // An odd last step takes no part.
            o[2 * half * channels..].fill(0.0);
        });
}

/// A kernel over f32 inputs, run on the host: the values of `inputs` (any backend, any
/// float type) in, a new tensor of `shape` out, in the first input's type.
fn on_host<B: Backend>(
    inputs: Vec<FloatTensor<B>>,
    shape: Vec<usize>,
    kernel: impl FnOnce(&[Vec<f32>], &mut [f32]),
) -> FloatTensor<B> {
    let device = inputs[0].device();
    let dtype = inputs[0].dtype();
    let values: Vec<Vec<f32>> = inputs.into_iter().map(|t| host_f32::<B>(t).0).collect();
    let mut out = vec![0.0f32; shape.iter().product()];
    kernel(&values, &mut out);
    B::float_from_data(TensorData::new(out, shape).convert_dtype(dtype), &device)
}

#[cfg(feature = "flex")]
mod flex {
    use super::*;
    use burn_flex::{Flex, FlexTensor, Layout};
    use burn_std::{Bytes, DType, Shape};

    /// `kernel` on the f32 storage of `inputs` (made contiguous), into a new f32 tensor of
    /// `shape`; other float types go through [`on_host`].
    fn on_storage(
        inputs: Vec<FlexTensor>,
        shape: Vec<usize>,
        kernel: impl FnOnce(&[&[f32]], &mut [f32]),
    ) -> FlexTensor {
        if inputs.iter().any(|t| t.dtype() != DType::F32) {
            return on_host::<Flex>(inputs, shape, |v, out| {
                kernel(&v.iter().map(Vec::as_slice).collect::<Vec<_>>(), out)
            });
        }
        let inputs: Vec<FlexTensor> = inputs.iter().map(FlexTensor::to_contiguous).collect();
        let slices: Vec<&[f32]> = inputs.iter().map(|t| t.storage::<f32>()).collect();
        let mut out = vec![0.0f32; shape.iter().product()];
        kernel(&slices, &mut out);
        FlexTensor::new(
            Bytes::from_elems(out),
            Layout::contiguous(Shape::from(shape)),
            DType::F32,
        )
    }

    impl LossKernels for Flex {
        fn partner_cross_entropy(sim: FlexTensor, shift: usize) -> FlexTensor {
            let [groups, rows, _] = sim.shape().dims();
            on_storage(vec![sim], vec![groups, rows], |v, out| {
                partner_cross_entropy_rows(v[0], rows, shift, out)
            })
        }

        fn partner_cross_entropy_backward(
            sim: FlexTensor,
            grad: FlexTensor,
            shift: usize,
        ) -> FlexTensor {
            let [groups, rows, _] = sim.shape().dims();
            on_storage(vec![sim, grad], vec![groups, rows, rows], |v, out| {
                partner_cross_entropy_grad_rows(v[0], v[1], rows, shift, out)
            })
        }

        fn max_pool_pairs(z: FlexTensor) -> FlexTensor {
            let [b, t, c] = z.shape().dims();
            on_storage(vec![z], vec![b, t / 2, c], |v, out| {
                max_pool_pairs_rows(v[0], t, c, out)
            })
        }

        fn max_pool_pairs_backward(z: FlexTensor, grad: FlexTensor) -> FlexTensor {
            let [b, t, c] = z.shape().dims();
            on_storage(vec![z, grad], vec![b, t, c], |v, out| {
                max_pool_pairs_grad_rows(v[0], v[1], t, c, out)
            })
        }
    }
}

/// LibTorch: the row kernels on a host copy (contra's losses call these kernels on flex only;
/// this keeps the operation defined wherever the extension is).
#[cfg(feature = "tch")]
impl LossKernels for burn::backend::LibTorch {
    fn partner_cross_entropy(sim: FloatTensor<Self>, shift: usize) -> FloatTensor<Self> {
        let [groups, rows, _] = sim.shape().dims();
        on_host::<Self>(vec![sim], vec![groups, rows], |v, out| {
            partner_cross_entropy_rows(&v[0], rows, shift, out)
        })
    }

    fn partner_cross_entropy_backward(
        sim: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        shift: usize,
    ) -> FloatTensor<Self> {
        let [groups, rows, _] = sim.shape().dims();
        on_host::<Self>(vec![sim, grad], vec![groups, rows, rows], |v, out| {
            partner_cross_entropy_grad_rows(&v[0], &v[1], rows, shift, out)
        })
    }

    fn max_pool_pairs(z: FloatTensor<Self>) -> FloatTensor<Self> {
        let [b, t, c] = z.shape().dims();
        on_host::<Self>(vec![z], vec![b, t / 2, c], |v, out| {
            max_pool_pairs_rows(&v[0], t, c, out)
        })
    }

    fn max_pool_pairs_backward(z: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [b, t, c] = z.shape().dims();
        on_host::<Self>(vec![z, grad], vec![b, t, c], |v, out| {
            max_pool_pairs_grad_rows(&v[0], &v[1], t, c, out)
        })
    }
}

impl<B: Backend + LossKernels, C: CheckpointStrategy> LossKernels for Autodiff<B, C> {
    fn partner_cross_entropy(sim: FloatTensor<Self>, shift: usize) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct PartnerCrossEntropy;

        impl<B: Backend + LossKernels> Backward<B, 1> for PartnerCrossEntropy {
            type State = (FloatTensor<B>, usize);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (sim, shift) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::partner_cross_entropy_backward(sim, grad, shift)
                });
            }
        }

        let guard = sim.node();
        let sim = sim.into_primitive();
        let out = B::partner_cross_entropy(sim.clone(), shift);
        match PartnerCrossEntropy
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((sim, shift), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn partner_cross_entropy_backward(
        sim: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        shift: usize,
    ) -> FloatTensor<Self> {
        // Not differentiated again.
        <Self as AutodiffBackend>::from_inner(B::partner_cross_entropy_backward(
            sim.into_primitive(),
            grad.into_primitive(),
            shift,
        ))
    }

    fn max_pool_pairs(z: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct MaxPoolPairs;

        impl<B: Backend + LossKernels> Backward<B, 1> for MaxPoolPairs {
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let z = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::max_pool_pairs_backward(z, grad)
                });
            }
        }

        let guard = z.node();
        let z = z.into_primitive();
        let out = B::max_pool_pairs(z.clone());
        match MaxPoolPairs
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(z, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn max_pool_pairs_backward(z: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        // Not differentiated again.
        <Self as AutodiffBackend>::from_inner(B::max_pool_pairs_backward(
            z.into_primitive(),
            grad.into_primitive(),
        ))
    }
}
