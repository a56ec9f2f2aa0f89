//! 2D convolution and its two gradients as GEMMs over chunks of images (added by contra).
//! burn 0.22.1's flex convolves one image at a time (one GEMM per image and tile after an NHWC
//! copy), takes the input gradient as a transposed convolution (again one GEMM per image), and
//! leaves the weight gradient to burn's generic version (input and output gradient copied with
//! swapped axes, then a convolution with the whole output map as kernel). On small feature maps
//! (a ResNet's 8x8 and 4x4 stages) a GEMM per image has 16-64 columns and packs the whole
//! weight matrix again for every image.
//!
//! Here each GEMM covers a fixed chunk of images, with `P` their output positions, and the
//! im2col matrix has a row per `(c_in, kh, kw)` and a column per output position:
//! - forward: `Y_g [C_out/g, P] = W_g [C_out/g, C_in/g*K*K] . col_g`;
//! - weight gradient: `dW_g = dY_g [C_out/g, P] . col_g^T`, a partial sum per chunk, added in
//!   chunk order;
//! - input gradient: `dX_g = col2im(W_g^T . dY_g)`, each column added back onto the input
//!   position it was read from, kernel positions in ascending order.
//!
//! Chunks run in parallel; nothing sums across threads in an order that depends on their
//! number, so the results do not depend on the thread count.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use super::conv2d_winograd as winograd;
use super::matmul::GemmScalar;
use super::unfilled;
use crate::{FlexTensor, Layout};

/// Output positions per chunk: enough columns for an efficient GEMM on small feature maps,
/// few enough that the im2col buffer stays near the caches.
const CHUNK_POSITIONS: usize = 1024;

/// Images per chunk for `positions` output positions per image: about `CHUNK_POSITIONS`,
/// then evened out over the chunks that makes (8 series of 150 steps: 4 + 4, not 7 + 1, which
/// left one of two threads waiting).
fn images_per_chunk(positions: usize, batch: usize) -> usize {
    images_per_chunk_of(CHUNK_POSITIONS, positions, batch)
}

/// Images per chunk for `per_image` GEMM columns per image: about `target` columns (at least
/// one image), then evened out over the chunks.
pub(super) fn images_per_chunk_of(target: usize, per_image: usize, batch: usize) -> usize {
    let batch = batch.max(1);
    let most = target.div_ceil(per_image.max(1)).clamp(1, batch);
    batch.div_ceil(batch.div_ceil(most))
}

/// The geometry of one 2D convolution, from the input and output shapes and the options.
#[derive(Clone, Copy)]
struct Geometry {
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    oh: usize,
    ow: usize,
    cin_g: usize,
    cout_g: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: [usize; 2],
}

impl Geometry {
    fn new(x: [usize; 4], weight: [usize; 4], out: [usize; 2], options: &ConvOptions<2>) -> Self {
        Self {
            c_in: x[1],
            h: x[2],
            w: x[3],
            c_out: weight[0],
            oh: out[0],
            ow: out[1],
            cin_g: weight[1],
            cout_g: weight[0] / options.groups,
            kh: weight[2],
            kw: weight[3],
            stride: options.stride,
            dilation: options.dilation,
            padding: options.padding_begin(),
        }
    }

    fn positions(&self) -> usize {
        self.oh * self.ow
    }

    /// Rows of the im2col matrix of one group: `(c_in/g, kh, kw)`.
    fn col_len(&self) -> usize {
        self.cin_g * self.kh * self.kw
    }

    /// The output columns `[first, end)` of a row whose input column lies inside the image,
    /// and the input column of output column 0 (`offset`), for kernel column `kj`.
    fn column_range(&self, kj: usize) -> (usize, usize, isize) {
        let (sw, ow, w) = (self.stride[1], self.ow, self.w);
        let offset = (kj * self.dilation[1]) as isize - self.padding[1] as isize;
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
        (first.min(end), end, offset)
    }

    /// The input row read by output row `r` at kernel row `ki`, if inside the image.
    fn input_row(&self, r: usize, ki: usize) -> Option<usize> {
        let y = (r * self.stride[0] + ki * self.dilation[0]) as isize - self.padding[0] as isize;
        (y >= 0 && y < self.h as isize).then_some(y as usize)
    }

    /// Stride 1 and an output as wide as the input ("same" padding): a row of the im2col
    /// matrix over one image is then the input plane shifted by a constant, one copy instead
    /// of one per output row (a ResNet's 4x4 maps made those copies 16 bytes each).
    fn shifts_whole_planes(&self) -> bool {
        self.stride == [1, 1] && self.ow == self.w
    }

    /// For [`Self::shifts_whole_planes`], kernel position `(ki, kj)`: the part of an image's
    /// im2col row that one shifted copy of the input plane fills; `None` when the kernel
    /// position reads only padding.
    fn plane_span(&self, ki: usize, kj: usize) -> Option<PlaneSpan> {
        let shift = (ki * self.dilation[0]) as isize - self.padding[0] as isize;
        let rows_first = (-shift).clamp(0, self.oh as isize) as usize;
        let rows_end = (self.h as isize - shift).clamp(0, self.oh as isize) as usize;
        let (first, end, offset) = self.column_range(kj);
        if rows_first >= rows_end || first >= end {
            return None;
        }
        let w = self.w;
        let y0 = (rows_first as isize + shift) as usize;
        Some(PlaneSpan {
            rows: rows_first..rows_end,
            columns: first..end,
            start: rows_first * w + first,
            len: (rows_end - 1 - rows_first) * w + end - first,
            src: y0 * w + (first as isize + offset) as usize,
        })
    }

    /// im2col of group `g` of `images` consecutive images of `x` (NCHW, starting at the
    /// first of them) into `col` `[col_len, images * positions]`; outside the image reads 0.
    fn im2col<T: GemmScalar>(&self, x: &[T], images: usize, g: usize, col: &mut [T]) {
        let (positions, ow, sw) = (self.positions(), self.ow, self.stride[1]);
        let k = images * positions;
        let plane_len = self.h * self.w;
        for ci in 0..self.cin_g {
            let channel = g * self.cin_g + ci;
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = (ci * self.kh + ki) * self.kw + kj;
                    let dst = &mut col[row * k..(row + 1) * k];
                    if self.shifts_whole_planes() {
                        let span = self.plane_span(ki, kj);
                        for bi in 0..images {
                            let plane = &x[(bi * self.c_in + channel) * plane_len..][..plane_len];
                            let image = &mut dst[bi * positions..][..positions];
                            let Some(span) = &span else {
                                image.fill(T::zero());
                                continue;
                            };
                            image[..span.rows.start * ow].fill(T::zero());
                            image[span.rows.end * ow..].fill(T::zero());
                            image[span.start..span.start + span.len]
                                .copy_from_slice(&plane[span.src..span.src + span.len]);
                            span.zero_padding_columns(image, ow);
                        }
                        continue;
                    }
                    let (first, end, offset) = self.column_range(kj);
                    for bi in 0..images {
                        let plane = &x[(bi * self.c_in + channel) * plane_len..][..plane_len];
                        for r in 0..self.oh {
                            let line = &mut dst[bi * positions + r * ow..][..ow];
                            let Some(y) = self.input_row(r, ki) else {
                                line.fill(T::zero());
                                continue;
                            };
                            let src = &plane[y * self.w..][..self.w];
                            zero_few(&mut line[..first]);
                            zero_few(&mut line[end..]);
                            if first == end {
                                // The kernel column reads only padding (dilation past the width).
                            } else if sw == 1 {
                                let start = (first as isize + offset) as usize;
                                line[first..end].copy_from_slice(&src[start..start + end - first]);
                            } else {
                                let start = ((first * sw) as isize + offset) as usize;
                                let strided = src[start..].iter().step_by(sw);
                                for (v, &s) in line[first..end].iter_mut().zip(strided) {
                                    *v = s;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The rows and columns of an image's im2col row (or, in col2im, of its input gradient's
/// row) that a kernel position reads from inside the plane, at stride 1 and an output as wide
/// as the input: `len` elements from `start` in the im2col row pair with `len` from `src` in
/// the plane, one contiguous span across the row ends.
struct PlaneSpan {
    rows: core::ops::Range<usize>,
    columns: core::ops::Range<usize>,
    start: usize,
    len: usize,
    src: usize,
}

impl PlaneSpan {
    /// Zeroes the columns that read padding within the span's rows of an im2col row over one
    /// image (`width` columns a row): one contiguous copy or add across the row ends pairs
    /// them with the neighbouring row's values.
    fn zero_padding_columns<T: GemmScalar>(&self, image: &mut [T], width: usize) {
        for r in self.rows.clone() {
            zero_few(&mut image[r * width..r * width + self.columns.start]);
            zero_few(&mut image[r * width + self.columns.end..(r + 1) * width]);
        }
    }
}

/// Zeroes the few columns of a row that a kernel position reads from padding (one or two for
/// a 3x3 kernel) by stores: `fill` called memset, 2% of a ResNet-18 step in call overhead.
#[inline(always)]
fn zero_few<T: GemmScalar>(s: &mut [T]) {
    match s {
        [] => {}
        [a] => *a = T::zero(),
        [a, b] => {
            *a = T::zero();
            *b = T::zero();
        }
        _ => s.fill(T::zero()),
    }
}

/// `dst [C_out/g, images * positions]` from the images' `[C_out, positions]` maps, channels of
/// group `g`.
fn gather_group<T: Copy>(
    src: &[T],
    images: usize,
    c_out: usize,
    group_channels: core::ops::Range<usize>,
    positions: usize,
    dst: &mut [T],
) {
    let k = images * positions;
    for (row, co) in group_channels.enumerate() {
        let dst = &mut dst[row * k..(row + 1) * k];
        for bi in 0..images {
            dst[bi * positions..(bi + 1) * positions]
                .copy_from_slice(&src[(bi * c_out + co) * positions..][..positions]);
        }
    }
}

/// `dst = lhs . rhs` for `dst [m, n]`; `dst`, `lhs` and `rhs` given by their (column, row)
/// strides.
pub(super) unsafe fn gemm_into<T: GemmScalar>(
    dst: (*mut T, isize, isize),
    m: usize,
    n: usize,
    k: usize,
    lhs: (*const T, isize, isize),
    rhs: (*const T, isize, isize),
    parallelism: gemm::Parallelism,
) {
    unsafe { gemm_call(dst, [m, n, k], lhs, rhs, parallelism, false) }
}

/// `dst += lhs . rhs`, otherwise as [`gemm_into`].
pub(super) unsafe fn gemm_add_into<T: GemmScalar>(
    dst: (*mut T, isize, isize),
    m: usize,
    n: usize,
    k: usize,
    lhs: (*const T, isize, isize),
    rhs: (*const T, isize, isize),
    parallelism: gemm::Parallelism,
) {
    unsafe { gemm_call(dst, [m, n, k], lhs, rhs, parallelism, true) }
}

unsafe fn gemm_call<T: GemmScalar>(
    dst: (*mut T, isize, isize),
    [m, n, k]: [usize; 3],
    lhs: (*const T, isize, isize),
    rhs: (*const T, isize, isize),
    parallelism: gemm::Parallelism,
    accumulate: bool,
) {
    let alpha = if accumulate { T::one() } else { T::zero() };
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0,
            dst.1,
            dst.2,
            accumulate,
            lhs.0,
            lhs.1,
            lhs.2,
            rhs.0,
            rhs.1,
            rhs.2,
            alpha,
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Threads for each GEMM: its own when the chunks alone do not fill the pool. The GEMM splits
/// its output, never its sums, so the values are the same either way.
pub(super) fn gemm_parallelism(chunks: usize) -> gemm::Parallelism {
    #[cfg(feature = "rayon")]
    if chunks < rayon::current_num_threads() {
        return gemm::Parallelism::Rayon(0);
    }
    let _ = chunks;
    gemm::Parallelism::None
}

/// The sum of `partial(chunk)` over `chunks` (zeros of `len` for none): the partial sums run in
/// parallel and are added in chunk order, so the thread count does not change the result.
pub(super) fn sum_in_chunk_order<T: GemmScalar + Send + core::ops::AddAssign>(
    chunks: &[usize],
    len: usize,
    partial: impl Fn(&usize) -> Vec<T> + Send + Sync,
) -> Vec<T> {
    #[cfg(feature = "rayon")]
    let partials: Vec<Vec<T>> = {
        use rayon::prelude::*;
        chunks.par_iter().map(partial).collect()
    };
    #[cfg(not(feature = "rayon"))]
    let partials: Vec<Vec<T>> = chunks.iter().map(partial).collect();
    let mut partials = partials.into_iter();
    let mut total = partials.next().unwrap_or_else(|| vec![T::zero(); len]);
    for p in partials {
        total.iter_mut().zip(&p).for_each(|(t, &v)| *t += v);
    }
    total
}

/// Runs `chunk(index, part)` over consecutive parts of `data` of `part_len` elements.
pub(super) fn for_each_chunk<T: Send>(
    data: &mut [T],
    part_len: usize,
    chunk: impl Fn((usize, &mut [T])) + Send + Sync,
) {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        if data.len() > part_len {
            data.par_chunks_mut(part_len).enumerate().for_each(chunk);
            return;
        }
    }
    data.chunks_mut(part_len).enumerate().for_each(chunk);
}

fn dims4(shape: &[usize]) -> [usize; 4] {
    [shape[0], shape[1], shape[2], shape[3]]
}

/// `Y` `[B, C_out, OH, OW]` for `x` `[B, C_in, H, W]` and `weight` `[C_out, C_in/g, KH, KW]`
/// (symmetric padding `options.padding_begin()`), without bias.
pub(crate) fn forward<T: GemmScalar + Send + Sync>(
    x: FlexTensor,
    weight: FlexTensor,
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor {
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let xs = dims4(x.layout().shape());
    let ws = dims4(weight.layout().shape());
    let out_size = |axis: usize| {
        burn_backend::ops::conv::calculate_conv_output_size(
            ws[2 + axis],
            options.stride[axis],
            options.padding_begin()[axis],
            options.dilation[axis],
            xs[2 + axis],
        )
    };
    let geo = Geometry::new(xs, ws, [out_size(0), out_size(1)], options);
    let batch = xs[0];
    let (positions, col_len) = (geo.positions(), geo.col_len());
    let out_shape = Shape::from(vec![batch, geo.c_out, geo.oh, geo.ow]);
    let out_len = batch * geo.c_out * positions;
    if out_len == 0 || col_len == 0 {
        return FlexTensor::new(
            Bytes::from_elems(vec![T::zero(); out_len]),
            Layout::contiguous(out_shape),
            dtype,
        );
    }
    if winograd::runs(dtype, xs, ws, [geo.oh, geo.ow], options) {
        return winograd::forward(&x, &weight);
    }
    let x_data: &[T] = x.storage();
    let w_data: &[T] = weight.storage();
    let image_len = geo.c_in * geo.h * geo.w;
    let per_chunk = images_per_chunk(positions, batch);
    let parallelism = gemm_parallelism(batch.div_ceil(per_chunk));

    let mut out = unfilled::<T>(out_len);
    for_each_chunk(&mut out, per_chunk * geo.c_out * positions, |(index, y)| {
        let images = y.len() / (geo.c_out * positions);
        let k = images * positions;
        let x = &x_data[index * per_chunk * image_len..];
        let mut col = unfilled::<T>(col_len * k);
        // One image writes its output in place; several share a `[C_out, k]` buffer first.
        let mut product = if images > 1 {
            unfilled::<T>(geo.c_out * k)
        } else {
            Vec::new()
        };
        for g in 0..options.groups {
            geo.im2col(x, images, g, &mut col);
            let (dst, dst_rs) = if images == 1 {
                (y[g * geo.cout_g * positions..].as_mut_ptr(), positions)
            } else {
                (product[g * geo.cout_g * k..].as_mut_ptr(), k)
            };
            let w_group = &w_data[g * geo.cout_g * col_len..];
            unsafe {
                gemm_into(
                    (dst, 1, dst_rs as isize),
                    geo.cout_g,
                    k,
                    col_len,
                    (w_group.as_ptr(), 1, col_len as isize),
                    (col.as_ptr(), 1, k as isize),
                    parallelism,
                );
            }
        }
        if images > 1 {
            for bi in 0..images {
                for co in 0..geo.c_out {
                    y[(bi * geo.c_out + co) * positions..][..positions]
                        .copy_from_slice(&product[co * k + bi * positions..][..positions]);
                }
            }
        }
    });
    FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(out_shape), dtype)
}

/// `dW` `[C_out, C_in/g, KH, KW]` for `x` `[B, C_in, H, W]` and `output_grad`
/// `[B, C_out, OH, OW]` (symmetric padding `options.padding_begin()`).
pub(crate) fn weight_grad<T: GemmScalar + Send + Sync + core::ops::AddAssign>(
    x: FlexTensor,
    output_grad: FlexTensor,
    weight_shape: [usize; 4],
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor {
    let x = x.to_contiguous();
    let dy = output_grad.to_contiguous();
    let xs = dims4(x.layout().shape());
    let ys = dims4(dy.layout().shape());
    let geo = Geometry::new(xs, weight_shape, [ys[2], ys[3]], options);
    if winograd::runs(dtype, xs, weight_shape, [ys[2], ys[3]], options) {
        return winograd::weight_grad(&x, &dy);
    }
    let batch = xs[0];
    let (positions, col_len, cout_g) = (geo.positions(), geo.col_len(), geo.cout_g);
    let x_data: &[T] = x.storage();
    let dy_data: &[T] = dy.storage();
    let image_len = geo.c_in * geo.h * geo.w;
    let per_chunk = images_per_chunk(positions, batch);
    let chunks: Vec<usize> = (0..batch).step_by(per_chunk).collect();

    let partial = |&b0: &usize| -> Vec<T> {
        let images = per_chunk.min(batch - b0);
        let k = images * positions;
        // Every element of the three is written before it is read (the GEMM does not read
        // `out`): zero-filling them first cost 2-3% of a ResNet-18 step.
        let mut out = unfilled::<T>(geo.c_out * col_len);
        let mut col = unfilled::<T>(col_len * k);
        let mut grad = unfilled::<T>(cout_g * k);
        for g in 0..options.groups {
            geo.im2col(&x_data[b0 * image_len..], images, g, &mut col);
            gather_group(
                &dy_data[b0 * geo.c_out * positions..],
                images,
                geo.c_out,
                g * cout_g..(g + 1) * cout_g,
                positions,
                &mut grad,
            );
            // out[g] = grad [C_out/g, k] . col^T [k, col_len], stored column-major
            // (`[col_len, C_out/g]`): gemm then packs the smaller `grad` by strides, where a
            // row-major result made it pack the im2col matrix that way (8% of a ResNet step).
            unsafe {
                gemm_into(
                    (out[g * cout_g * col_len..].as_mut_ptr(), cout_g as isize, 1),
                    cout_g,
                    col_len,
                    k,
                    (grad.as_ptr(), 1, k as isize),
                    (col.as_ptr(), k as isize, 1),
                    gemm::Parallelism::None,
                );
            }
        }
        out
    };

    let total = sum_in_chunk_order(&chunks, geo.c_out * col_len, partial);
    // Each group's block from `[col_len, C_out/g]` to `[C_out/g, col_len]`.
    let mut weight_grad = unfilled::<T>(total.len());
    for g in 0..options.groups {
        let block = g * cout_g * col_len;
        for o in 0..cout_g {
            for j in 0..col_len {
                weight_grad[block + o * col_len + j] = total[block + j * cout_g + o];
            }
        }
    }
    FlexTensor::new(
        Bytes::from_elems(weight_grad),
        Layout::contiguous(Shape::from(weight_shape.to_vec())),
        dtype,
    )
}

/// `dX` `[B, C_in, H, W]` for `weight` `[C_out, C_in/g, KH, KW]` and `output_grad`
/// `[B, C_out, OH, OW]` (padding at the start of each axis `options.padding_begin()`; rows and
/// columns that no output read get a zero gradient).
pub(crate) fn input_grad<T: GemmScalar + Send + Sync + core::ops::AddAssign>(
    x_shape: [usize; 4],
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor {
    let weight = weight.to_contiguous();
    let dy = output_grad.to_contiguous();
    let ys = dims4(dy.layout().shape());
    let geo = Geometry::new(
        x_shape,
        dims4(weight.layout().shape()),
        [ys[2], ys[3]],
        options,
    );
    let batch = x_shape[0];
    let (positions, col_len, cout_g) = (geo.positions(), geo.col_len(), geo.cout_g);
    let (h, w, c_out) = (geo.h, geo.w, geo.c_out);
    let image_len = geo.c_in * h * w;
    let x_shape = Shape::from(x_shape.to_vec());
    if batch * image_len == 0 || positions == 0 || col_len == 0 || cout_g == 0 {
        return FlexTensor::new(
            Bytes::from_elems(vec![T::zero(); batch * image_len]),
            Layout::contiguous(x_shape),
            dtype,
        );
    }
    let ws = dims4(weight.layout().shape());
    if winograd::runs(dtype, [batch, geo.c_in, h, w], ws, [ys[2], ys[3]], options) {
        return winograd::input_grad(&weight, &dy);
    }
    let w_data: &[T] = weight.storage();
    let dy_data: &[T] = dy.storage();
    let per_chunk = images_per_chunk(positions, batch);
    let parallelism = gemm_parallelism(batch.div_ceil(per_chunk));

    let mut dx = unfilled::<T>(batch * image_len);
    for_each_chunk(&mut dx, per_chunk * image_len, |(index, dx_chunk)| {
        // Zeroed here, by the thread that accumulates into it.
        dx_chunk.fill(T::zero());
        let b0 = index * per_chunk;
        let images = dx_chunk.len() / image_len;
        let k = images * positions;
        let dy_chunk = &dy_data[b0 * c_out * positions..];
        let mut col = unfilled::<T>(col_len * k);
        let mut gathered: Vec<T> = if images > 1 {
            unfilled::<T>(cout_g * k)
        } else {
            Vec::new()
        };
        for g in 0..options.groups {
            // The group's output gradient as `[C_out/g, k]`: one image is already that.
            let (rhs, rhs_rs) = if images == 1 {
                (&dy_chunk[g * cout_g * positions..], positions)
            } else {
                let channels = g * cout_g..(g + 1) * cout_g;
                gather_group(dy_chunk, images, c_out, channels, positions, &mut gathered);
                (&gathered[..], k)
            };
            // col [col_len, k] = W_g^T [col_len, C_out/g] . rhs [C_out/g, k]
            let w_group = &w_data[g * cout_g * col_len..];
            unsafe {
                gemm_into(
                    (col.as_mut_ptr(), 1, k as isize),
                    col_len,
                    k,
                    cout_g,
                    (w_group.as_ptr(), col_len as isize, 1),
                    (rhs.as_ptr(), 1, rhs_rs as isize),
                    parallelism,
                );
            }
            // col2im: row (ci, ki, kj), column (image, r, c) adds onto input (ci, y, x).
            for ci in 0..geo.cin_g {
                let channel = g * geo.cin_g + ci;
                for ki in 0..geo.kh {
                    for kj in 0..geo.kw {
                        let row = (ci * geo.kh + ki) * geo.kw + kj;
                        if geo.shifts_whole_planes() {
                            // One add per image over the shifted plane, the columns that read
                            // padding zeroed first.
                            let Some(span) = geo.plane_span(ki, kj) else {
                                continue;
                            };
                            let src_row = &mut col[row * k..(row + 1) * k];
                            for bi in 0..images {
                                let src = &mut src_row[bi * positions..][..positions];
                                span.zero_padding_columns(src, w);
                                let plane =
                                    &mut dx_chunk[(bi * geo.c_in + channel) * h * w..][..h * w];
                                T::add_assign_slice(
                                    &mut plane[span.src..span.src + span.len],
                                    &src[span.start..span.start + span.len],
                                );
                            }
                            continue;
                        }
                        let (first, end, offset) = geo.column_range(kj);
                        let src_row = &col[row * k..(row + 1) * k];
                        if first >= end {
                            continue;
                        }
                        for bi in 0..images {
                            let plane = &mut dx_chunk[(bi * geo.c_in + channel) * h * w..][..h * w];
                            for r in 0..geo.oh {
                                let Some(y) = geo.input_row(r, ki) else {
                                    continue;
                                };
                                let line = &mut plane[y * w..][..w];
                                let src = &src_row[bi * positions + r * geo.ow..][first..end];
                                if geo.stride[1] == 1 {
                                    let start = (first as isize + offset) as usize;
                                    T::add_assign_slice(&mut line[start..start + src.len()], src);
                                } else {
                                    let start =
                                        ((first * geo.stride[1]) as isize + offset) as usize;
                                    let strided = line[start..].iter_mut().step_by(geo.stride[1]);
                                    for (d, &s) in strided.zip(src) {
                                        *d += s;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    });
    FlexTensor::new(Bytes::from_elems(dx), Layout::contiguous(x_shape), dtype)
}
