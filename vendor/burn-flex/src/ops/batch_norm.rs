//! contra: fused batch normalisation (training forward, its backward, and inference).
//!
//! burn's default `ModuleOps::batch_norm_train` builds the statistics out of generic tensor
//! ops: a transposed copy of the input for each of the mean and the variance, a broadcast
//! subtraction, a square, then four more element-wise passes for the output; its backward
//! makes about ten more. Here the input `[N, C, S...]` is read in place as `N x C` runs of
//! `S` contiguous elements:
//!
//! - training forward: one pass for the mean, one for the centred variance (two passes, as
//!   burn's default, not a one-pass sum of squares), one writing `(x - mean) * a + beta` with
//!   `a = gamma / sqrt(var + eps)`;
//! - backward: one pass for `sum(dy)` and `sum(dy * (x - mean))`, one writing
//!   `dx = a * (dy - mean(dy)) - a / (var + eps) * mean(dy * (x - mean)) * (x - mean)`.
//!
//! The mean is kept as two floats (`x - mean` is taken as `(x - hi) - lo`), so a channel far
//! from zero keeps the precision of its spread; the backward recovers the low part from the
//! input in its one reduction pass. Each channel's sums are taken by one task in a fixed order (16 partial sums per run of a
//! channel, the runs' totals added in f64), so results do not depend on the thread count.

use super::unfilled;
use crate::{FlexTensor, Layout};
use alloc::vec;
use alloc::vec::Vec;
use burn_backend::{DType, Element};
use burn_std::{Bytes, Shape, bf16, f16};

/// A float type the kernels run in (f32, f64).
trait Real: Element + bytemuck::Pod + Copy + Send + Sync + num_traits::Float {
    fn wide(self) -> f64;
    fn from_wide(v: f64) -> Self;
}

impl Real for f32 {
    fn wide(self) -> f64 {
        self as f64
    }
    fn from_wide(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    fn wide(self) -> f64 {
        self
    }
    fn from_wide(v: f64) -> Self {
        v
    }
}

const LANES: usize = 16;
/// Elements per task of an element-wise pass.
const TASK_ELEMENTS: usize = 1 << 14;

/// `[N, C, S]` of a `[N, C, ...]` shape.
fn split(shape: &Shape) -> (usize, usize, usize) {
    assert!(
        shape.num_dims() >= 2,
        "batch_norm: the input needs at least two axes [batch, channels, ...], got {:?}",
        shape
    );
    let n = shape[0];
    let c = shape[1];
    let s = shape.iter().skip(2).product::<usize>();
    (n, c, s)
}

/// Sum of `f(v)` over a run: 16 partial sums, then added in f64.
#[inline(always)]
fn run_sum<E: Real>(run: &[E], f: impl Fn(E) -> E) -> f64 {
    let mut lanes = [E::zero(); LANES];
    let chunks = run.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for i in 0..LANES {
            lanes[i] = lanes[i] + f(chunk[i]);
        }
    }
    let mut total = 0.0f64;
    for l in lanes {
        total += l.wide();
    }
    for &v in rest {
        total += f(v).wide();
    }
    total
}

/// `(sum(dy), sum(dy * (x - mean)), sum(x - mean))` over a run.
#[inline(always)]
fn run_sums_backward<E: Real>(x: &[E], dy: &[E], mean: E) -> (f64, f64, f64) {
    let mut a = [E::zero(); LANES];
    let mut b = [E::zero(); LANES];
    let mut d = [E::zero(); LANES];
    let xs = x.chunks_exact(LANES);
    let ys = dy.chunks_exact(LANES);
    let (x_rest, y_rest) = (xs.remainder(), ys.remainder());
    for (xc, yc) in xs.zip(ys) {
        for i in 0..LANES {
            a[i] = a[i] + yc[i];
            b[i] = b[i] + yc[i] * (xc[i] - mean);
            d[i] = d[i] + (xc[i] - mean);
        }
    }
    let (mut sa, mut sb, mut sd) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..LANES {
        sa += a[i].wide();
        sb += b[i].wide();
        sd += d[i].wide();
    }
    for (&xv, &yv) in x_rest.iter().zip(y_rest) {
        sa += yv.wide();
        sb += (yv * (xv - mean)).wide();
        sd += (xv - mean).wide();
    }
    (sa, sb, sd)
}

// The kernels below are compiled for the best SIMD level found at run time (macerator): as
// plain loops they only got the baseline SSE2.

/// Sum over a channel's `n` runs of `s` elements.
#[allow(clippy::extra_unused_type_parameters)]
#[cfg_attr(feature = "simd", macerator::with_simd)]
fn channel_total<#[cfg(feature = "simd")] S: macerator::Simd, E: Real>(
    x: &[E],
    n: usize,
    c: usize,
    s: usize,
    ch: usize,
) -> f64 {
    (0..n)
        .map(|i| run_sum(&x[(i * c + ch) * s..][..s], |v| v))
        .sum()
}

/// Sum over a channel's runs of `((v - hi) - lo)^2`.
#[allow(clippy::extra_unused_type_parameters, clippy::too_many_arguments)]
#[cfg_attr(feature = "simd", macerator::with_simd)]
fn channel_squares<#[cfg(feature = "simd")] S: macerator::Simd, E: Real>(
    x: &[E],
    n: usize,
    c: usize,
    s: usize,
    ch: usize,
    hi: E,
    lo: E,
) -> f64 {
    (0..n)
        .map(|i| {
            run_sum(&x[(i * c + ch) * s..][..s], |v| {
                let d = (v - hi) - lo;
                d * d
            })
        })
        .sum()
}

/// `run_sums_backward` summed over a channel's runs.
#[allow(clippy::extra_unused_type_parameters, clippy::too_many_arguments)]
#[cfg_attr(feature = "simd", macerator::with_simd)]
fn channel_sums_backward<#[cfg(feature = "simd")] S: macerator::Simd, E: Real>(
    x: &[E],
    dy: &[E],
    n: usize,
    c: usize,
    s: usize,
    ch: usize,
    mean: E,
) -> (f64, f64, f64) {
    let mut total = (0.0, 0.0, 0.0);
    for i in 0..n {
        let at = (i * c + ch) * s;
        let (a, b, d) = run_sums_backward(&x[at..at + s], &dy[at..at + s], mean);
        total.0 += a;
        total.1 += b;
        total.2 += d;
    }
    total
}

/// `out = ((x - hi) - lo) * a + b`.
#[allow(clippy::extra_unused_type_parameters)]
#[cfg_attr(feature = "simd", macerator::with_simd)]
fn normalize_run<#[cfg(feature = "simd")] S: macerator::Simd, E: Real>(
    out: &mut [E],
    x: &[E],
    mean: (E, E),
    a: E,
    b: E,
) {
    let (hi, lo) = mean;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = ((v - hi) - lo) * a + b;
    }
}

/// `out = a * (dy - mean_dy) - k * ((x - hi) - lo)`.
#[allow(clippy::extra_unused_type_parameters)]
#[cfg_attr(feature = "simd", macerator::with_simd)]
fn input_grad_run<#[cfg(feature = "simd")] S: macerator::Simd, E: Real>(
    out: &mut [E],
    dy: &[E],
    x: &[E],
    coefficients: (E, E, E),
    mean: (E, E),
) {
    let ((a, mean_dy, k), (hi, lo)) = (coefficients, mean);
    for ((o, &g), &v) in out.iter_mut().zip(dy).zip(x) {
        *o = a * (g - mean_dy) - k * ((v - hi) - lo);
    }
}

/// Channels per statistics task: whole runs when they are long, blocks of channels when the
/// runs are short (a `[N, C]` input has runs of one element).
fn channel_block(c: usize, s: usize) -> usize {
    (256 / s.max(1)).clamp(1, c.max(1))
}

/// For each channel, `stat(channel, slot)` fills the channel's slot; channels run in blocks.
fn per_channel<T: Send + Default + Clone>(
    c: usize,
    s: usize,
    stat: impl Fn(usize, &mut T) + Sync,
) -> Vec<T> {
    let mut out = vec![T::default(); c];
    let block = channel_block(c, s);
    let body = |(b, chunk): (usize, &mut [T])| {
        for (i, slot) in chunk.iter_mut().enumerate() {
            stat(b * block + i, slot);
        }
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(block).enumerate().for_each(body);
    }
    #[cfg(not(feature = "rayon"))]
    out.chunks_mut(block).enumerate().for_each(body);
    out
}

/// Writes `out[run] = f(channel, run index)` over all `N x C` runs, in parallel.
fn per_run<E: Real>(out: &mut [E], c: usize, s: usize, f: impl Fn(usize, usize, &mut [E]) + Sync) {
    if s == 0 || out.is_empty() {
        return;
    }
    let runs_per_task = (TASK_ELEMENTS / s).max(1);
    let body = |(t, chunk): (usize, &mut [E])| {
        for (j, run) in chunk.chunks_mut(s).enumerate() {
            let r = t * runs_per_task + j;
            f(r % c, r, run);
        }
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(runs_per_task * s)
            .enumerate()
            .for_each(body);
    }
    #[cfg(not(feature = "rayon"))]
    out.chunks_mut(runs_per_task * s).enumerate().for_each(body);
}

fn split_mean<E: Real>(mean: f64) -> (E, E) {
    let hi = E::from_wide(mean);
    (hi, E::from_wide(mean - hi.wide()))
}

fn tensor<E: Real>(data: Vec<E>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        E::dtype(),
    )
}

fn train_impl<E: Real>(
    x: &[E],
    shape: &Shape,
    gamma: &[E],
    beta: &[E],
    epsilon: f64,
) -> (Vec<E>, Vec<E>, Vec<E>) {
    let (n, c, s) = split(shape);
    let count = (n * s) as f64;
    let mean: Vec<f64> = per_channel(c, s, |ch, slot: &mut f64| {
        *slot = channel_total(x, n, c, s, ch) / count;
    });
    // x - mean as (x - hi) - lo, mean = hi + lo: the first difference is exact for values
    // near the mean, so a channel far from zero keeps its spread.
    let parts: Vec<(E, E)> = mean.iter().map(|&m| split_mean(m)).collect();
    let variance: Vec<E> = per_channel(c, s, |ch, slot: &mut E| {
        let (hi, lo) = parts[ch];
        *slot = E::from_wide(channel_squares(x, n, c, s, ch, hi, lo) / count);
    });
    let output = normalized(x, c, s, &parts, &variance, gamma, beta, epsilon);
    (output, parts.iter().map(|p| p.0).collect(), variance)
}

/// `((x - hi) - lo) * gamma / sqrt(var + eps) + beta`, per channel.
#[allow(clippy::too_many_arguments)]
fn normalized<E: Real>(
    x: &[E],
    c: usize,
    s: usize,
    mean: &[(E, E)],
    variance: &[E],
    gamma: &[E],
    beta: &[E],
    epsilon: f64,
) -> Vec<E> {
    let scale: Vec<E> = (0..c)
        .map(|ch| E::from_wide(gamma[ch].wide() / (variance[ch].wide() + epsilon).sqrt()))
        .collect();
    let mut output = unfilled(x.len());
    per_run(&mut output, c, s, |ch, r, out| {
        normalize_run(out, &x[r * s..(r + 1) * s], mean[ch], scale[ch], beta[ch]);
    });
    output
}

#[allow(clippy::too_many_arguments)]
fn backward_impl<E: Real>(
    x: &[E],
    shape: &Shape,
    gamma: &[E],
    mean: &[E],
    variance: &[E],
    epsilon: f64,
    dy: &[E],
) -> (Vec<E>, Vec<E>, Vec<E>) {
    let (n, c, s) = split(shape);
    let count = (n * s) as f64;
    // The stored mean was rounded to E; the same pass measures the rounding (the mean of
    // x - stored) so that the centring below is as exact as the forward's.
    let sums: Vec<(f64, f64, f64)> = per_channel(c, s, |ch, slot: &mut (f64, f64, f64)| {
        let total = channel_sums_backward(x, dy, n, c, s, ch, mean[ch]);
        let delta = total.2 / count;
        *slot = (total.0, total.1 - delta * total.0, delta);
    });
    let inv_std: Vec<f64> = variance
        .iter()
        .map(|v| 1.0 / (v.wide() + epsilon).sqrt())
        .collect();
    // dx = a * (dy - mean(dy)) - k * (x - mean), a = gamma * inv_std,
    // k = a * inv_std^2 * mean(dy * (x - mean)).
    let coefficients: Vec<(E, E, E, E)> = (0..c)
        .map(|ch| {
            let a = gamma[ch].wide() * inv_std[ch];
            let k = a * inv_std[ch] * inv_std[ch] * sums[ch].1 / count;
            (
                E::from_wide(a),
                E::from_wide(sums[ch].0 / count),
                E::from_wide(k),
                E::from_wide(sums[ch].2),
            )
        })
        .collect();
    let mut x_grad = unfilled(x.len());
    per_run(&mut x_grad, c, s, |ch, r, out| {
        let (a, mean_dy, k, lo) = coefficients[ch];
        let span = r * s..(r + 1) * s;
        input_grad_run(
            out,
            &dy[span.clone()],
            &x[span],
            (a, mean_dy, k),
            (mean[ch], lo),
        );
    });
    let gamma_grad = (0..c)
        .map(|ch| E::from_wide(sums[ch].1 * inv_std[ch]))
        .collect();
    let beta_grad = (0..c).map(|ch| E::from_wide(sums[ch].0)).collect();
    (x_grad, gamma_grad, beta_grad)
}

fn inference_impl<E: Real>(
    x: &[E],
    shape: &Shape,
    gamma: &[E],
    beta: &[E],
    mean: &[E],
    variance: &[E],
    epsilon: f64,
) -> Vec<E> {
    let (_, c, s) = split(shape);
    // The given mean is exact as stored: no low part.
    let parts: Vec<(E, E)> = mean.iter().map(|&m| (m, E::zero())).collect();
    normalized(x, c, s, &parts, variance, gamma, beta, epsilon)
}

/// Half-precision tensors run through f32 (as flex's layer norm does).
fn widen(t: FlexTensor) -> FlexTensor {
    match t.dtype() {
        DType::F16 => crate::ops::module::cast_to_f32(t, f16::to_f32),
        DType::BF16 => crate::ops::module::cast_to_f32(t, bf16::to_f32),
        _ => t.to_contiguous(),
    }
}

fn narrow(t: FlexTensor, dtype: DType) -> FlexTensor {
    match dtype {
        DType::F16 => crate::ops::module::cast_from_f32(t, f16::from_f32),
        DType::BF16 => crate::ops::module::cast_from_f32(t, bf16::from_f32),
        _ => t,
    }
}

fn check_channels(name: &str, t: &FlexTensor, c: usize) {
    assert!(
        t.layout().num_elements() == c,
        "batch_norm: {name} has {} elements, the input {c} channels",
        t.layout().num_elements()
    );
}

/// Training forward: `(output, mean, biased variance)`.
pub fn batch_norm_train(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dtype = x.dtype();
    let shape = x.layout().shape().clone();
    let (_, c, _) = split(&shape);
    check_channels("gamma", &gamma, c);
    check_channels("beta", &beta, c);
    let (x, gamma, beta) = (widen(x), widen(gamma), widen(beta));
    let channels = Shape::new([c]);
    let (out, mean, var) = match x.dtype() {
        DType::F32 => {
            let (o, m, v) = train_impl::<f32>(
                x.storage(),
                &shape,
                gamma.storage(),
                beta.storage(),
                epsilon,
            );
            (
                tensor(o, shape),
                tensor(m, channels.clone()),
                tensor(v, channels),
            )
        }
        DType::F64 => {
            let (o, m, v) = train_impl::<f64>(
                x.storage(),
                &shape,
                gamma.storage(),
                beta.storage(),
                epsilon,
            );
            (
                tensor(o, shape),
                tensor(m, channels.clone()),
                tensor(v, channels),
            )
        }
        other => panic!("batch_norm_train: unsupported dtype {other:?}"),
    };
    (narrow(out, dtype), narrow(mean, dtype), narrow(var, dtype))
}

/// Gradients of [`batch_norm_train`]: `(x_grad, gamma_grad, beta_grad)`.
pub fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dtype = x.dtype();
    let shape = x.layout().shape().clone();
    let (_, c, _) = split(&shape);
    for (name, t) in [("gamma", &gamma), ("mean", &mean), ("variance", &variance)] {
        check_channels(name, t, c);
    }
    assert_eq!(
        output_grad.layout().shape(),
        &shape,
        "batch_norm_train_backward: the output gradient's shape differs from the input's"
    );
    let (x, gamma, mean, variance, dy) = (
        widen(x),
        widen(gamma),
        widen(mean),
        widen(variance),
        widen(output_grad),
    );
    let channels = Shape::new([c]);
    let (dx, dg, db) = match x.dtype() {
        DType::F32 => {
            let (dx, dg, db) = backward_impl::<f32>(
                x.storage(),
                &shape,
                gamma.storage(),
                mean.storage(),
                variance.storage(),
                epsilon,
                dy.storage(),
            );
            (
                tensor(dx, shape),
                tensor(dg, channels.clone()),
                tensor(db, channels),
            )
        }
        DType::F64 => {
            let (dx, dg, db) = backward_impl::<f64>(
                x.storage(),
                &shape,
                gamma.storage(),
                mean.storage(),
                variance.storage(),
                epsilon,
                dy.storage(),
            );
            (
                tensor(dx, shape),
                tensor(dg, channels.clone()),
                tensor(db, channels),
            )
        }
        other => panic!("batch_norm_train_backward: unsupported dtype {other:?}"),
    };
    (narrow(dx, dtype), narrow(dg, dtype), narrow(db, dtype))
}

/// Inference: normalise with the given statistics.
pub fn batch_norm(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    let dtype = x.dtype();
    let shape = x.layout().shape().clone();
    let (_, c, _) = split(&shape);
    for (name, t) in [
        ("gamma", &gamma),
        ("beta", &beta),
        ("mean", &mean),
        ("variance", &variance),
    ] {
        check_channels(name, t, c);
    }
    let (x, gamma, beta, mean, variance) = (
        widen(x),
        widen(gamma),
        widen(beta),
        widen(mean),
        widen(variance),
    );
    let out = match x.dtype() {
        DType::F32 => tensor(
            inference_impl::<f32>(
                x.storage(),
                &shape,
                gamma.storage(),
                beta.storage(),
                mean.storage(),
                variance.storage(),
                epsilon,
            ),
            shape,
        ),
        DType::F64 => tensor(
            inference_impl::<f64>(
                x.storage(),
                &shape,
                gamma.storage(),
                beta.storage(),
                mean.storage(),
                variance.storage(),
                epsilon,
            ),
            shape,
        ),
        other => panic!("batch_norm: unsupported dtype {other:?}"),
    };
    narrow(out, dtype)
}
