//! Native weight gradient of 2D convolution (added by contra; burn 0.22.1's flex backend falls
//! back to burn's generic version, which swaps axes of input and output gradient and runs a
//! convolution with the whole output map as its kernel).
//!
//! For groups `g`, `dW_g[co, (ci, kh, kw)] = sum_{b, oh, ow} dY[b, co, oh, ow] *
//! X[b, ci, oh*s + kh*d - p, ow*s + kw*d - p]`: a GEMM of the output gradient `[C_out, P]`
//! with the im2col matrix `[P, C_in*K*K]` of the input, with `P` the output positions of a
//! fixed chunk of images. Chunks run in parallel, each into its own partial sum, and the
//! partial sums are added in chunk order, so the result does not depend on the thread count.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use super::matmul::GemmScalar;
use super::unfilled;
use crate::{FlexTensor, Layout};

/// Output positions per chunk: enough rows for an efficient GEMM on small feature maps.
const CHUNK_POSITIONS: usize = 1024;

/// `dW` for `x` `[B, C_in, H, W]` and `output_grad` `[B, C_out, OH, OW]` (symmetric padding).
pub(crate) fn conv2d_weight_grad<T: GemmScalar + Send + Sync + core::ops::AddAssign>(
    x: FlexTensor,
    output_grad: FlexTensor,
    weight_shape: [usize; 4],
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor {
    let x = x.to_contiguous();
    let dy = output_grad.to_contiguous();
    let xs = x.layout().shape();
    let ys = dy.layout().shape();
    let (batch, c_in, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    let (c_out, oh, ow) = (ys[1], ys[2], ys[3]);
    let [_, cin_g, kh, kw] = weight_shape;
    let groups = options.groups;
    let cout_g = c_out / groups;
    let [sh, sw] = options.stride;
    let [dh, dw] = options.dilation;
    let [ph, pw] = options.padding_begin();
    let positions = oh * ow;
    let col_len = cin_g * kh * kw;
    let x_data: &[T] = x.storage();
    let dy_data: &[T] = dy.storage();

    let per_chunk = CHUNK_POSITIONS
        .div_ceil(positions.max(1))
        .clamp(1, batch.max(1));
    let chunks: Vec<(usize, usize)> = (0..batch)
        .step_by(per_chunk)
        .map(|b0| (b0, (b0 + per_chunk).min(batch)))
        .collect();

    let partial = |&(b0, b1): &(usize, usize)| -> Vec<T> {
        let k = (b1 - b0) * positions;
        // Every element of the three is written before it is read (the GEMM does not read
        // `out`): zero-filling them first cost 2-3% of a ResNet-18 step.
        let mut out = unfilled::<T>(c_out * col_len);
        let mut col = unfilled::<T>(col_len * k);
        let mut grad = unfilled::<T>(cout_g * k);
        for g in 0..groups {
            // im2col: row (ci, ki, kj), column (image, oh, ow).
            for ci in 0..cin_g {
                let channel = g * cin_g + ci;
                for ki in 0..kh {
                    for kj in 0..kw {
                        let row = (ci * kh + ki) * kw + kj;
                        let dst = &mut col[row * k..(row + 1) * k];
                        for (bi, b) in (b0..b1).enumerate() {
                            let plane = &x_data[(b * c_in + channel) * h * w..][..h * w];
                            for r in 0..oh {
                                let y = (r * sh + ki * dh) as isize - ph as isize;
                                let line = &mut dst[bi * positions + r * ow..][..ow];
                                if y < 0 || y >= h as isize {
                                    line.fill(T::zero());
                                    continue;
                                }
                                let src = &plane[y as usize * w..][..w];
                                // Output columns whose input column lies inside the row.
                                let offset = (kj * dw) as isize - pw as isize;
                                let first = if offset >= 0 {
                                    0
                                } else {
                                    (-offset as usize).div_ceil(sw)
                                };
                                let end = if (w as isize) <= offset {
                                    0
                                } else {
                                    ((w as isize - offset) as usize).div_ceil(sw).min(ow)
                                };
                                let first = first.min(end);
                                line[..first].fill(T::zero());
                                line[end..].fill(T::zero());
                                if sw == 1 {
                                    let start = (first as isize + offset) as usize;
                                    line[first..end]
                                        .copy_from_slice(&src[start..start + end - first]);
                                } else {
                                    for (c, v) in line[first..end].iter_mut().enumerate() {
                                        *v = src[(((first + c) * sw) as isize + offset) as usize];
                                    }
                                }
                            }
                        }
                    }
                }
            }
            // The output gradient of the group's channels, `[C_out/g, k]`.
            for co in 0..cout_g {
                let dst = &mut grad[co * k..(co + 1) * k];
                for (bi, b) in (b0..b1).enumerate() {
                    let src = &dy_data[(b * c_out + g * cout_g + co) * positions..][..positions];
                    dst[bi * positions..(bi + 1) * positions].copy_from_slice(src);
                }
            }
            // out[g rows] = grad [cout_g, k] . col^T [k, col_len]
            unsafe {
                gemm::gemm(
                    cout_g,
                    col_len,
                    k,
                    out.as_mut_ptr().add(g * cout_g * col_len),
                    1,
                    col_len as isize,
                    false,
                    grad.as_ptr(),
                    1,
                    k as isize,
                    col.as_ptr(),
                    k as isize,
                    1,
                    T::zero(),
                    T::one(),
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        out
    };

    #[cfg(feature = "rayon")]
    let partials: Vec<Vec<T>> = {
        use rayon::prelude::*;
        chunks.par_iter().map(partial).collect()
    };
    #[cfg(not(feature = "rayon"))]
    let partials: Vec<Vec<T>> = chunks.iter().map(partial).collect();

    let mut total = vec![T::zero(); c_out * col_len];
    for p in &partials {
        total.iter_mut().zip(p).for_each(|(t, &v)| *t += v);
    }
    FlexTensor::new(
        Bytes::from_elems(total),
        Layout::contiguous(Shape::from(vec![c_out, cin_g, kh, kw])),
        dtype,
    )
}
