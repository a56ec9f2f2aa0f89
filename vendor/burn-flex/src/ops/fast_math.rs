//! contra: branch-free f32 `exp` and `erf` that the compiler vectorises.
//!
//! libm's `expf` and `erff` are scalar calls with branches; an element-wise loop over them
//! runs one element at a time. These are straight-line code (range reduction, a polynomial,
//! a select for the edges), so a loop of them becomes SIMD.
//!
//! - `exp_f32`: Cody-Waite reduction `x = k ln 2 + r` (`ln 2` split in two parts, as Cephes'
//!   `expf`), a degree-6 polynomial for `e^r` on `|r| <= ln 2 / 2` (Cephes' coefficients),
//!   `2^k` built in the exponent bits. Within 2 ulp of the true value on `[-87.3, 88.7]`;
//!   below that 0 (expf's subnormal results, under 1.2e-38, are flushed), above it infinity.
//! - `erf_f32`: `erf(x) = sign(x) (1 - erfc(|x|))` with the Chebyshev fit of `erfc` in
//!   Numerical Recipes (Press et al., 2nd ed., section 6.2, `erfcc`), relative error of `erfc`
//!   under 1.2e-7, so the absolute error of `erf` is under 1.2e-7 (PyTorch's vectorised CPU
//!   `erf` uses Abramowitz and Stegun 7.1.26, 1.5e-7). Meant for GELU, where the result is
//!   `0.5 x (1 + erf)`; `float_erf` itself keeps libm's full precision.

use super::unfilled;
use crate::{FlexTensor, Layout};
use burn_backend::DType;
use burn_std::Bytes;

const LOG2E: f32 = core::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: (v + ROUND) - ROUND rounds v to an integer.
const EXP_MAX: f32 = 88.722_83;
const EXP_MIN: f32 = -87.336_54;

/// `e^x` for f32, branch-free (see the module's doc for its accuracy).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let clamped = x.clamp(EXP_MIN, EXP_MAX);
    let k = (clamped * LOG2E + ROUND) - ROUND;
    let r = (clamped - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    // 2^k as two powers of two: k reaches 128 near the top of the range.
    let k = k as i32;
    let half = k >> 1;
    let first = f32::from_bits(((half + 127) as u32) << 23);
    let second = f32::from_bits(((k - half + 127) as u32) << 23);
    let e = y * first * second;
    let e = if x > EXP_MAX { f32::INFINITY } else { e };
    if x < EXP_MIN { 0.0 } else { e }
}

/// `erf(x)` for f32, branch-free, absolute error under 1.2e-7.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77f32;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_203_98;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t - 1.265_512_2;
    let erfc = t * exp_f32(-z * z + p);
    let magnitude = 1.0 - erfc;
    if x.is_sign_negative() {
        -magnitude
    } else {
        magnitude
    }
}

/// Elements per task of the slice kernels below.
const TASK: usize = 1 << 14;

/// `out[i] = kernel(src)` chunk by chunk, in parallel; the kernels are plain loops over
/// slices, so the math inlines and vectorises (a closure called per element did not).
fn map_f32(tensor: FlexTensor, kernel: impl Fn(&[f32], &mut [f32]) + Sync) -> FlexTensor {
    let tensor = tensor.to_contiguous();
    let shape = tensor.layout().shape().clone();
    let src: &[f32] = tensor.storage();
    // Every chunk is written by `kernel`.
    let mut out = unfilled::<f32>(src.len());
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(TASK)
            .zip(src.par_chunks(TASK))
            .for_each(|(o, s)| kernel(s, o));
    }
    #[cfg(not(feature = "rayon"))]
    kernel(src, &mut out);
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(shape),
        DType::F32,
    )
}

fn zip_f32(
    a: FlexTensor,
    b: FlexTensor,
    kernel: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> FlexTensor {
    let (a, b) = (a.to_contiguous(), b.to_contiguous());
    let shape = a.layout().shape().clone();
    let (x, y): (&[f32], &[f32]) = (a.storage(), b.storage());
    // Every chunk is written by `kernel`.
    let mut out = unfilled::<f32>(x.len());
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(TASK)
            .zip(x.par_chunks(TASK).zip(y.par_chunks(TASK)))
            .for_each(|(o, (x, y))| kernel(x, y, o));
    }
    #[cfg(not(feature = "rayon"))]
    kernel(x, y, &mut out);
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(shape),
        DType::F32,
    )
}

const FRAC_1_SQRT_2: f32 = core::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

#[allow(clippy::extra_unused_type_parameters)]
#[cfg_attr(feature = "simd", macerator::with_simd)]
fn exp_slice<#[cfg(feature = "simd")] S: macerator::Simd>(src: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(src) {
        *o = exp_f32(x);
    }
}

#[allow(clippy::extra_unused_type_parameters)]
#[cfg_attr(feature = "simd", macerator::with_simd)]
fn gelu_slice<#[cfg(feature = "simd")] S: macerator::Simd>(src: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(src) {
        *o = 0.5 * x * (1.0 + erf_f32(x * FRAC_1_SQRT_2));
    }
}

#[allow(clippy::extra_unused_type_parameters)]
#[cfg_attr(feature = "simd", macerator::with_simd)]
fn gelu_backward_slice<#[cfg(feature = "simd")] S: macerator::Simd>(
    x: &[f32],
    grad: &[f32],
    out: &mut [f32],
) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(grad) {
        let cdf = 0.5 * (1.0 + erf_f32(x * FRAC_1_SQRT_2));
        let pdf = FRAC_1_SQRT_2PI * exp_f32(-0.5 * x * x);
        *o = g * (cdf + x * pdf);
    }
}

/// `e^x` of an f32 tensor.
pub fn exp(tensor: FlexTensor) -> FlexTensor {
    map_f32(tensor, |s, o| exp_slice(s, o))
}

/// GELU (the erf form) of an f32 tensor.
pub fn gelu(tensor: FlexTensor) -> FlexTensor {
    map_f32(tensor, |s, o| gelu_slice(s, o))
}

/// The gradient of GELU at `x` times `grad` (same shapes, f32).
pub fn gelu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
    zip_f32(x, grad, |x, g, o| gelu_backward_slice(x, g, o))
}
