//! 3x3 convolutions at stride 1 with one row and column of padding (outputs as large as the
//! inputs) by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray 2016, "Fast Algorithms
//! for Convolutional Neural Networks") (added by contra).
//!
//! A 2x2 block of outputs is `A^T [(G g G^T) * (B^T d B)] A` for the 4x4 input tile `d` under
//! it and the 3x3 kernel `g` (`*` element-wise): 16 multiplications instead of 36. Summed over
//! input channels, the element-wise products become 16 GEMMs, one per position `e` of the 4x4
//! tile: `M_e [C_out, tiles] = U_e [C_out, C_in] . V_e [C_in, tiles]`, where `U = G g G^T` and
//! `V = B^T d B` with
//!
//! ```text
//! B^T = [1  0 -1  0]    G = [1    0    0  ]    A^T = [1  1  1  0]
//!       [0  1  1  0]        [1/2  1/2  1/2]          [0  1 -1 -1]
//!       [0 -1  1  0]        [1/2 -1/2  1/2]
//!       [0  1  0 -1]        [0    0    1  ]
//! ```
//!
//! The input gradient of such a convolution is the same convolution of the output gradient
//! with each kernel turned by 180 degrees and its input and output channels swapped, so it runs
//! here too. The weight gradient is the adjoint: `dU_e = M_e V_e^T` summed over the tiles, with
//! `M = A dY A^T`, then `G^T dU G` (16 GEMMs over the tiles against im2col's one over 9 times
//! the channels and 4 times the tiles). The transforms only add, subtract and halve, so the
//! results differ from the direct sums by rounding. Chunks of images run in parallel, each GEMM
//! sums whole within its chunk and the weight gradient's chunks are added in chunk order: the
//! results do not depend on the thread count.

use alloc::vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use super::conv2d_chunked::{
    for_each_chunk, gemm_add_into, gemm_into, gemm_parallelism, images_per_chunk_of,
    sum_in_chunk_order,
};
use super::unfilled;
use crate::{FlexTensor, Layout};

/// Tiles (2x2 output blocks) per chunk of images, at least one image, and per band of tile
/// rows within an image larger than that: the GEMMs' column count. The transformed input and
/// the GEMMs' output (16 values a tile and channel each) then stay near the caches: 256 tiles
/// made a 4x4 map with 512 channels 30% slower, and bands of 64 tiles made the 64-channel
/// 32x32 map's forward 10-15% faster than whole images.
const CHUNK_TILES: usize = 64;

/// Tiles per chunk of images in the weight gradient, at least one image. Each chunk keeps its
/// own `16 C_out C_in` partial sums, so chunks are larger than the forward's (as many columns
/// as `conv2d_chunked`'s im2col chunks); within an image, bands of `CHUNK_TILES` add into them.
const WEIGHT_GRAD_CHUNK_TILES: usize = 256;

/// The least harmonic mean of the input and output channels for which the transforms pay:
/// a GEMM's work per tile grows with their product, the transforms' with their sum. Measured
/// with `contra-bench conv`: ResNet-18's 64 -> 64 convolution on 32x32 maps ran 8% faster by
/// Winograd, 128 to 512 channels 15-35% faster; the small CNN's 32 -> 64 on 14x14 maps 25%
/// slower, and 15% slower with only its input gradient (64 -> 32) here.
const MIN_MEAN_CHANNELS: usize = 64;

/// Whether a convolution of `x` `[B, C_in, H, W]` by `weight` `[C_out, C_in/g, KH, KW]` with
/// output map `out` (or its input or weight gradient) of `dtype` runs here: f32, it
/// [`applies`] and it [`pays`].
pub(crate) fn runs(
    dtype: DType,
    x: [usize; 4],
    weight: [usize; 4],
    out: [usize; 2],
    options: &ConvOptions<2>,
) -> bool {
    dtype == DType::F32 && applies(x, weight, out, options) && pays(x[1], weight[0], x[2], x[3])
}

/// Whether a convolution of `x` `[B, C_in, H, W]` by `weight` `[C_out, C_in/g, KH, KW]` with
/// output map `out` runs here: 3x3, stride 1, no dilation, one group, padding 1 and an output
/// as large as the input.
fn applies(x: [usize; 4], weight: [usize; 4], out: [usize; 2], options: &ConvOptions<2>) -> bool {
    weight[2] == 3
        && weight[3] == 3
        && options.stride == [1, 1]
        && options.dilation == [1, 1]
        && options.groups == 1
        && options.padding_begin() == [1, 1]
        && out == [x[2], x[3]]
        && weight[1] == x[1]
}

/// Whether a convolution that [`applies`] runs faster here than on im2col, for its input and
/// output channels and map size: odd heights or widths compute a row or column of tiles
/// half wasted (the small CNN's 7x7 and 3x3 maps ran 15-40% slower).
fn pays(input_channels: usize, output_channels: usize, h: usize, w: usize) -> bool {
    let (k, m) = (input_channels, output_channels);
    2 * k * m >= MIN_MEAN_CHANNELS * (k + m) && h % 2 == 0 && w % 2 == 0
}

/// `Y` `[B, C_out, H, W]` for `x` `[B, C_in, H, W]` and `weight` `[C_out, C_in, 3, 3]` (f32,
/// contiguous, [`applies`]).
pub(crate) fn forward(x: &FlexTensor, weight: &FlexTensor) -> FlexTensor {
    let s = x.layout().shape();
    let [batch, c_in, h, w] = [s[0], s[1], s[2], s[3]];
    let c_out = weight.layout().shape()[0];
    let w_data: &[f32] = weight.storage();
    let u = transform_kernels(c_out, c_in, |co, ci| {
        w_data[(co * c_in + ci) * 9..][..9].try_into().unwrap()
    });
    let mut out = unfilled::<f32>(batch * c_out * h * w);
    convolve(x.storage(), [batch, c_in, h, w], &u, c_out, &mut out);
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(Shape::from(vec![batch, c_out, h, w])),
        DType::F32,
    )
}

/// `dX` `[B, C_in, H, W]` for `weight` `[C_out, C_in, 3, 3]` and `output_grad`
/// `[B, C_out, H, W]` (f32, contiguous, [`applies`]).
pub(crate) fn input_grad(weight: &FlexTensor, output_grad: &FlexTensor) -> FlexTensor {
    let s = output_grad.layout().shape();
    let [batch, c_out, h, w] = [s[0], s[1], s[2], s[3]];
    let c_in = weight.layout().shape()[1];
    let w_data: &[f32] = weight.storage();
    let u = transform_kernels(c_in, c_out, |ci, co| {
        let g = &w_data[(co * c_in + ci) * 9..][..9];
        core::array::from_fn(|k| g[8 - k])
    });
    let mut dx = unfilled::<f32>(batch * c_in * h * w);
    convolve(
        output_grad.storage(),
        [batch, c_out, h, w],
        &u,
        c_in,
        &mut dx,
    );
    FlexTensor::new(
        Bytes::from_elems(dx),
        Layout::contiguous(Shape::from(vec![batch, c_in, h, w])),
        DType::F32,
    )
}

/// `dW` `[C_out, C_in, 3, 3]` for `x` `[B, C_in, H, W]` and `output_grad` `[B, C_out, H, W]`
/// (f32, contiguous, [`applies`]).
///
/// The adjoint of [`forward`]: with `M = A dY A^T` for each tile's 2x2 block of the output
/// gradient, `dU_e [C_out, C_in] = M_e [C_out, tiles] . V_e^T [tiles, C_in]` summed over the
/// tiles, then `dW = G^T dU G`. Each chunk of images sums its own tiles; the chunks' partial
/// `dU` are added in chunk order, so the thread count does not change the result.
pub(crate) fn weight_grad(x: &FlexTensor, output_grad: &FlexTensor) -> FlexTensor {
    let s = x.layout().shape();
    let [batch, c_in, h, w] = [s[0], s[1], s[2], s[3]];
    let c_out = output_grad.layout().shape()[1];
    let shape = Shape::from(vec![c_out, c_in, 3, 3]);
    if batch * h * w * c_in * c_out == 0 {
        return FlexTensor::new(
            Bytes::from_elems(vec![0f32; c_out * c_in * 9]),
            Layout::contiguous(shape),
            DType::F32,
        );
    }
    let x_data: &[f32] = x.storage();
    let dy_data: &[f32] = output_grad.storage();
    let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
    let per_chunk = images_per_chunk_of(WEIGHT_GRAD_CHUNK_TILES, th * tw, batch);
    let parallelism = gemm_parallelism(batch.div_ceil(per_chunk));
    let chunks: alloc::vec::Vec<usize> = (0..batch).step_by(per_chunk).collect();
    let partial = |&b0: &usize| -> alloc::vec::Vec<f32> {
        let images = per_chunk.min(batch - b0);
        let x = &x_data[b0 * c_in * h * w..][..images * c_in * h * w];
        let dy = &dy_data[b0 * c_out * h * w..][..images * c_out * h * w];
        let band = band_rows(images, th, tw, CHUNK_TILES);
        let mut v = unfilled::<f32>(16 * c_in * images * band * tw);
        let mut m = unfilled::<f32>(16 * c_out * images * band * tw);
        let mut du = unfilled::<f32>(16 * c_out * c_in);
        for t0 in (0..th).step_by(band) {
            let rows = [t0, (t0 + band).min(th)];
            let n = images * (rows[1] - rows[0]) * tw;
            transform_input_wide(x, [images, c_in, h, w], rows, &mut v);
            transform_output_adjoint_wide(dy, [images, c_out, h, w], rows, &mut m);
            for e in 0..16 {
                // dU_e [C_out, C_in] (+)= M_e [C_out, n] . V_e^T [n, C_in]
                let (gemm, dst) = (
                    if t0 == 0 { gemm_into } else { gemm_add_into },
                    du[e * c_out * c_in..].as_mut_ptr(),
                );
                unsafe {
                    gemm(
                        (dst, 1, c_in as isize),
                        c_out,
                        c_in,
                        n,
                        (m[e * c_out * n..].as_ptr(), 1, n as isize),
                        (v[e * c_in * n..].as_ptr(), n as isize, 1),
                        parallelism,
                    );
                }
            }
        }
        du
    };
    let du = sum_in_chunk_order(&chunks, 16 * c_out * c_in, partial);
    // G^T d: rows 0 + (1 + 2) / 2, (1 - 2) / 2, (1 + 2) / 2 + 3.
    let adjoint = |d: [f32; 4]| {
        let (sum, difference) = (0.5 * (d[1] + d[2]), 0.5 * (d[1] - d[2]));
        [d[0] + sum, difference, sum + d[3]]
    };
    let mut dw = unfilled::<f32>(c_out * c_in * 9);
    for_each_chunk(&mut dw, c_in * 9, |(co, row)| {
        for ci in 0..c_in {
            let d = |e: usize| du[(e * c_out + co) * c_in + ci];
            // G^T dU: each of the tile's columns, then each row of the result.
            let columns: [[f32; 3]; 4] =
                core::array::from_fn(|j| adjoint([d(j), d(4 + j), d(8 + j), d(12 + j)]));
            for r in 0..3 {
                let values = adjoint(core::array::from_fn(|j| columns[j][r]));
                row[ci * 9 + r * 3..][..3].copy_from_slice(&values);
            }
        }
    });
    FlexTensor::new(Bytes::from_elems(dw), Layout::contiguous(shape), DType::F32)
}

/// `U` `[rows][16][cols]`: `G g G^T` for the 3x3 kernel `kernel(row, col)` (row-major), rows
/// in parallel. GEMM `e` reads `U_e` with a row stride of `16 cols`.
fn transform_kernels(
    rows: usize,
    cols: usize,
    kernel: impl Fn(usize, usize) -> [f32; 9] + Sync,
) -> alloc::vec::Vec<f32> {
    let transform = |g: [f32; 3]| {
        [
            g[0],
            0.5 * (g[0] + g[1] + g[2]),
            0.5 * (g[0] - g[1] + g[2]),
            g[2],
        ]
    };
    let mut u = unfilled::<f32>(16 * rows * cols);
    if u.is_empty() {
        return u;
    }
    for_each_chunk(&mut u, 16 * cols, |(r, row)| {
        for c in 0..cols {
            let g = kernel(r, c);
            // G g: each of the kernel's columns transformed; then each row of the result.
            let columns: [[f32; 4]; 3] =
                core::array::from_fn(|j| transform([g[j], g[3 + j], g[6 + j]]));
            for i in 0..4 {
                let values = transform([columns[0][i], columns[1][i], columns[2][i]]);
                for (j, &value) in values.iter().enumerate() {
                    row[(i * 4 + j) * cols + c] = value;
                }
            }
        }
    });
    u
}

/// `out` `[B, C_out, H, W]`: the convolution of `input` `[B, C_in, H, W]` with transformed
/// kernels `u` `[C_out][16][C_in]`.
fn convolve(
    input: &[f32],
    [batch, c_in, h, w]: [usize; 4],
    u: &[f32],
    c_out: usize,
    out: &mut [f32],
) {
    if out.is_empty() {
        return;
    }
    let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
    let per_chunk = images_per_chunk_of(CHUNK_TILES, th * tw, batch);
    let parallelism = gemm_parallelism(batch.div_ceil(per_chunk));
    for_each_chunk(out, per_chunk * c_out * h * w, |(index, y)| {
        let images = y.len() / (c_out * h * w);
        let x = &input[index * per_chunk * c_in * h * w..][..images * c_in * h * w];
        let band = band_rows(images, th, tw, CHUNK_TILES);
        let mut v = unfilled::<f32>(16 * c_in * images * band * tw);
        let mut m = unfilled::<f32>(16 * c_out * images * band * tw);
        for t0 in (0..th).step_by(band) {
            let rows = [t0, (t0 + band).min(th)];
            let n = images * (rows[1] - rows[0]) * tw;
            transform_input_wide(x, [images, c_in, h, w], rows, &mut v);
            for e in 0..16 {
                // M_e [C_out, n] = U_e [C_out, C_in] . V_e [C_in, n]
                unsafe {
                    gemm_into(
                        (m[e * c_out * n..].as_mut_ptr(), 1, n as isize),
                        c_out,
                        n,
                        c_in,
                        (u[e * c_in..].as_ptr(), 1, (16 * c_in) as isize),
                        (v[e * c_in * n..].as_ptr(), 1, n as isize),
                        parallelism,
                    );
                }
            }
            transform_output_wide(&m, [images, c_out, h, w], rows, y);
        }
    });
}

/// Tile rows transformed at a time in a chunk of `images` images with `th` rows of `tw` tiles:
/// all of them, unless one image alone has more than `target` tiles; then bands of about
/// `target` tiles, so that the transformed tiles stay in the caches (a 32x32 map with 64
/// channels makes 1 MB of them, 16 values a tile and channel).
fn band_rows(images: usize, th: usize, tw: usize, target: usize) -> usize {
    if images > 1 || th * tw <= target {
        th
    } else {
        (target / tw).clamp(1, th)
    }
}

/// `v` `[16][C_in][images * tiles]`: `B^T d B` for every 4x4 tile `d` of the images `x`
/// (tile `(ty, tx)` covers input rows `2ty-1..2ty+3` and columns `2tx-1..2tx+3`, zero
/// outside).
///
/// Each plane, padded by one row and column in front, is split first by the parity of its
/// rows and columns (`parts[a][b][i][k]` is padded row `2i + a`, column `2k + b`): a tile row
/// is then two consecutive rows of each part, a tile's columns two consecutive columns, and
/// every loop below runs over contiguous slices, which the compiler vectorises.
#[inline(always)]
fn transform_input(
    x: &[f32],
    [images, c_in, h, w]: [usize; 4],
    [t0, t1]: [usize; 2],
    v: &mut [f32],
) {
    let (th, tw) = (t1 - t0, w.div_ceil(2));
    let tiles = th * tw;
    let n = images * tiles;
    let half = tw + 1;
    let part_len = (th + 1) * half;
    let rows_len = th * half;
    let mut parts = vec![0f32; 4 * part_len];
    // B^T d: `combined[i][b]` is row `i` of every tile row, columns of parity `b`.
    let mut combined = vec![0f32; 8 * rows_len];
    for bi in 0..images {
        for ci in 0..c_in {
            let plane = &x[(bi * c_in + ci) * h * w..][..h * w];
            parts.fill(0.0);
            // The band's padded rows 2 t0 .. 2 t1 + 2 (plane row y is padded row y + 1).
            let rows = (2 * t0).max(1) - 1..(2 * t1 + 1).min(h);
            for (y, line) in plane
                .chunks_exact(w)
                .enumerate()
                .take(rows.end)
                .skip(rows.start)
            {
                // Padded row y + 1: parity a, row i of the band.
                let (a, i) = ((y + 1) % 2, (y + 1 - 2 * t0) / 2);
                let (even, odd) = parts[2 * a * part_len..][..2 * part_len].split_at_mut(part_len);
                let even = &mut even[i * half + 1..][..tw];
                let odd = &mut odd[i * half..][..tw];
                let pairs = line.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    odd[w / 2] = *last;
                }
                for ((pair, o), e) in pairs.zip(odd.iter_mut()).zip(even.iter_mut()) {
                    *o = pair[0];
                    *e = pair[1];
                }
            }
            // Rows 0 - 2, 1 + 2, 2 - 1, 1 - 3 of each tile row: padded rows 2ty + r are part
            // rows ty (r = 0, 1) and ty + 1 (r = 2, 3).
            for b in 0..2 {
                let part = |a: usize| &parts[(2 * a + b) * part_len..][..part_len];
                let (d0, d2) = (&part(0)[..rows_len], &part(0)[half..]);
                let (d1, d3) = (&part(1)[..rows_len], &part(1)[half..]);
                let mut out = combined.chunks_exact_mut(rows_len).skip(b).step_by(2);
                let (t0, t1) = (out.next().unwrap(), out.next().unwrap());
                let (t2, t3) = (out.next().unwrap(), out.next().unwrap());
                for k in 0..rows_len {
                    t0[k] = d0[k] - d2[k];
                    t1[k] = d1[k] + d2[k];
                    t2[k] = d2[k] - d1[k];
                    t3[k] = d1[k] - d3[k];
                }
            }
            // Columns 0 - 2, 1 + 2, 2 - 1, 1 - 3 of each tile: even[tx], odd[tx],
            // even[tx + 1], odd[tx + 1].
            for i in 0..4 {
                let even = &combined[2 * i * rows_len..][..rows_len];
                let odd = &combined[(2 * i + 1) * rows_len..][..rows_len];
                for ty in 0..th {
                    let (e0, e1) = (&even[ty * half..][..tw], &even[ty * half + 1..][..tw]);
                    let (o0, o1) = (&odd[ty * half..][..tw], &odd[ty * half + 1..][..tw]);
                    let base = ci * n + bi * tiles + ty * tw;
                    let at = |j: usize| (4 * i + j) * c_in * n + base;
                    let out = &mut v[at(0)..][..tw];
                    for k in 0..tw {
                        out[k] = e0[k] - e1[k];
                    }
                    let out = &mut v[at(1)..][..tw];
                    for k in 0..tw {
                        out[k] = o0[k] + e1[k];
                    }
                    let out = &mut v[at(2)..][..tw];
                    for k in 0..tw {
                        out[k] = e1[k] - o0[k];
                    }
                    let out = &mut v[at(3)..][..tw];
                    for k in 0..tw {
                        out[k] = o0[k] - o1[k];
                    }
                }
            }
        }
    }
}

/// `y` `[images, C_out, H, W]` from `m` `[16][C_out][images * tiles]`: `A^T M A` for every
/// tile, the outputs past an odd edge dropped.
#[inline(always)]
fn transform_output(
    m: &[f32],
    [images, c_out, h, w]: [usize; 4],
    [t0, t1]: [usize; 2],
    y: &mut [f32],
) {
    let (th, tw) = (t1 - t0, w.div_ceil(2));
    let tiles = th * tw;
    let n = images * tiles;
    // Output row 2ty + s, columns 2tx (`outputs[2s]`) and 2tx + 1 (`outputs[2s + 1]`), tile
    // by tile over all the images: one output channel's runs are `n` long, not `tiles` (4 on
    // a 4x4 map, which left the loop scalar).
    let mut outputs = vec![0f32; 4 * n];
    for co in 0..c_out {
        let m: [&[f32]; 16] = core::array::from_fn(|e| &m[(e * c_out + co) * n..][..n]);
        {
            let (e0, rest) = outputs.split_at_mut(n);
            let (o0, rest) = rest.split_at_mut(n);
            let (e1, o1) = rest.split_at_mut(n);
            for k in 0..n {
                // A^T M: rows 0 + 1 + 2 and 1 - 2 - 3 of each of the four columns.
                let r0: [f32; 4] = core::array::from_fn(|j| m[j][k] + m[4 + j][k] + m[8 + j][k]);
                let r1: [f32; 4] =
                    core::array::from_fn(|j| m[4 + j][k] - m[8 + j][k] - m[12 + j][k]);
                // (A^T M) A: columns 0 + 1 + 2 and 1 - 2 - 3.
                e0[k] = r0[0] + r0[1] + r0[2];
                o0[k] = r0[1] - r0[2] - r0[3];
                e1[k] = r1[0] + r1[1] + r1[2];
                o1[k] = r1[1] - r1[2] - r1[3];
            }
        }
        for bi in 0..images {
            let plane = &mut y[(bi * c_out + co) * h * w..][..h * w];
            let rows = 2 * t0..(2 * t1).min(h);
            for (oy, line) in plane
                .chunks_exact_mut(w)
                .enumerate()
                .take(rows.end)
                .skip(rows.start)
            {
                let (ty, s) = (oy / 2 - t0, oy % 2);
                let at = bi * tiles + ty * tw;
                let even = &outputs[2 * s * n + at..][..tw];
                let odd = &outputs[(2 * s + 1) * n + at..][..tw];
                let mut pairs = line.chunks_exact_mut(2);
                for ((pair, &e), &o) in pairs.by_ref().zip(even).zip(odd) {
                    pair[0] = e;
                    pair[1] = o;
                }
                if let [last] = pairs.into_remainder() {
                    *last = even[tw - 1];
                }
            }
        }
    }
}

/// `m` `[16][C_out][images * tiles]` from `dy` `[images, C_out, H, W]`: `A dY A^T` for the
/// 2x2 block of every tile (zero past an odd edge), the adjoint of [`transform_output`].
#[inline(always)]
fn transform_output_adjoint(
    dy: &[f32],
    [images, c_out, h, w]: [usize; 4],
    [t0, t1]: [usize; 2],
    m: &mut [f32],
) {
    let (th, tw) = (t1 - t0, w.div_ceil(2));
    let tiles = th * tw;
    let n = images * tiles;
    // Row 2ty + s of each tile row at even (`blocks[2s]`) and odd (`blocks[2s + 1]`) columns,
    // tile by tile over all the images (runs `n` long, as in `transform_output`).
    let mut blocks = vec![0f32; 4 * n];
    let mut a_dy = vec![0f32; 8 * n];
    for co in 0..c_out {
        if h % 2 == 1 || w % 2 == 1 {
            blocks.fill(0.0);
        }
        for bi in 0..images {
            let plane = &dy[(bi * c_out + co) * h * w..][..h * w];
            let band_lines = 2 * t0..(2 * t1).min(h);
            for (oy, line) in plane
                .chunks_exact(w)
                .enumerate()
                .take(band_lines.end)
                .skip(band_lines.start)
            {
                let (ty, s) = (oy / 2 - t0, oy % 2);
                let (even, odd) = blocks[2 * s * n..][..2 * n].split_at_mut(n);
                let at = bi * tiles + ty * tw;
                let even = &mut even[at..][..tw];
                let odd = &mut odd[at..][..tw];
                let pairs = line.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    even[tw - 1] = *last;
                }
                for ((pair, e), o) in pairs.zip(even.iter_mut()).zip(odd.iter_mut()) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
        }
        // A dY: rows 0, 0 + 1, 0 - 1 and -1, even and odd columns (`a_dy[2i]`, `a_dy[2i + 1]`).
        for b in 0..2 {
            let (y0, y1) = (&blocks[b * n..][..n], &blocks[(2 + b) * n..][..n]);
            let mut out = a_dy.chunks_exact_mut(n).skip(b).step_by(2);
            let (r0, r1) = (out.next().unwrap(), out.next().unwrap());
            let (r2, r3) = (out.next().unwrap(), out.next().unwrap());
            for k in 0..n {
                r0[k] = y0[k];
                r1[k] = y0[k] + y1[k];
                r2[k] = y0[k] - y1[k];
                r3[k] = -y1[k];
            }
        }
        // (A dY) A^T: columns even, even + odd, even - odd and -odd.
        for i in 0..4 {
            let even = &a_dy[2 * i * n..][..n];
            let odd = &a_dy[(2 * i + 1) * n..][..n];
            let at = |j: usize| ((4 * i + j) * c_out + co) * n;
            m[at(0)..][..n].copy_from_slice(even);
            let out = &mut m[at(1)..][..n];
            for k in 0..n {
                out[k] = even[k] + odd[k];
            }
            let out = &mut m[at(2)..][..n];
            for k in 0..n {
                out[k] = even[k] - odd[k];
            }
            let out = &mut m[at(3)..][..n];
            for k in 0..n {
                out[k] = -odd[k];
            }
        }
    }
}

/// [`transform_output_adjoint`] compiled for the widest vectors the CPU has.
#[cfg(feature = "simd")]
#[macerator::with_simd]
fn transform_output_adjoint_wide<S: macerator::Simd>(
    dy: &[f32],
    dims: [usize; 4],
    band: [usize; 2],
    m: &mut [f32],
) {
    transform_output_adjoint(dy, dims, band, m)
}

#[cfg(not(feature = "simd"))]
fn transform_output_adjoint_wide(dy: &[f32], dims: [usize; 4], band: [usize; 2], m: &mut [f32]) {
    transform_output_adjoint(dy, dims, band, m)
}

/// [`transform_input`] compiled for the widest vectors the CPU has.
#[cfg(feature = "simd")]
#[macerator::with_simd]
fn transform_input_wide<S: macerator::Simd>(
    x: &[f32],
    dims: [usize; 4],
    band: [usize; 2],
    v: &mut [f32],
) {
    transform_input(x, dims, band, v)
}

#[cfg(not(feature = "simd"))]
fn transform_input_wide(x: &[f32], dims: [usize; 4], band: [usize; 2], v: &mut [f32]) {
    transform_input(x, dims, band, v)
}

/// [`transform_output`] compiled for the widest vectors the CPU has.
#[cfg(feature = "simd")]
#[macerator::with_simd]
fn transform_output_wide<S: macerator::Simd>(
    m: &[f32],
    dims: [usize; 4],
    band: [usize; 2],
    y: &mut [f32],
) {
    transform_output(m, dims, band, y)
}

#[cfg(not(feature = "simd"))]
fn transform_output_wide(m: &[f32], dims: [usize; 4], band: [usize; 2], y: &mut [f32]) {
    transform_output(m, dims, band, y)
}
