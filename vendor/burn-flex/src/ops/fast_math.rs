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
//! - `erf_f32`: `erf(x) = sign(x) (1 - t P(t) e^{-x^2})`, `t = 1 / (1 + p |x|)`, Abramowitz
//!   and Stegun 7.1.26, absolute error under 1.5e-7 (the formula of PyTorch's vectorised CPU
//!   `erf`). Meant for GELU, where the result is `0.5 x (1 + erf)`; `float_erf` itself keeps
//!   libm's full precision.
//!
//! The polynomials are written with `mul_add`: on x86-64 v3/v4 and aarch64 that is one FMA
//! instruction (a CPU without FMA gets libm's `fmaf`, correctly rounded: the same values,
//! slower). No float-to-int `as` casts: Rust's saturating cast does not vectorise.

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
    let shifted = clamped.mul_add(LOG2E, ROUND);
    // k's integer value from the bits of `shifted` (its units are the mantissa's last bits):
    // `k as i32` is a saturating cast that LLVM does not vectorise.
    let k_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let k = shifted - ROUND;
    let r = k.mul_add(-LN2_LO, k.mul_add(-LN2_HI, clamped));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let y = (p * r).mul_add(r, r) + 1.0;
    // 2^k as two powers of two: k reaches 128 near the top of the range.
    let half = k_int >> 1;
    let first = f32::from_bits(((half + 127) as u32) << 23);
    let second = f32::from_bits(((k_int - half + 127) as u32) << 23);
    let e = y * first * second;
    let e = if x > EXP_MAX { f32::INFINITY } else { e };
    if x < EXP_MIN { 0.0 } else { e }
}

/// `erf(x)` for f32 given `e = exp(-x^2)`, branch-free, absolute error under 1.5e-7
/// (Abramowitz and Stegun 7.1.26). GELU's gradient reuses `e` for the normal density.
#[inline(always)]
fn erf_with_exp(x: f32, e: f32) -> f32 {
    let t = 1.0 / 0.327_591_1f32.mul_add(x.abs(), 1.0);
    let mut p = 1.061_405_4f32;
    p = p.mul_add(t, -1.453_152_1);
    p = p.mul_add(t, 1.421_413_7);
    p = p.mul_add(t, -0.284_496_74);
    p = p.mul_add(t, 0.254_829_6);
    let magnitude = (-p * t).mul_add(e, 1.0);
    if x.is_sign_negative() {
        -magnitude
    } else {
        magnitude
    }
}

/// `erf(x)` for f32, branch-free, absolute error under 1.5e-7.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    erf_with_exp(x, exp_f32(-x * x))
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
        // exp(-x^2 / 2) serves both erf(x / sqrt 2) and the density.
        let e = exp_f32(-0.5 * x * x);
        let cdf = 0.5 * (1.0 + erf_with_exp(x * FRAC_1_SQRT_2, e));
        *o = g * x.mul_add(FRAC_1_SQRT_2PI * e, cdf);
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
