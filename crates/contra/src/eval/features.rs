//! Features for evaluation: the encoder's pooled output (before the projection head), computed
//! in batches with BatchNorm in inference mode; or the normalised raw pixels as a baseline.

use super::Features;
use crate::augment::Normalize;
use crate::data::ImageDataset;
use crate::encoders::Encoder;
use crate::tensor_util::{tensor4, to_vec};
use burn::module::Module;
use burn::prelude::*;

fn normalized(data: &ImageDataset, i: usize, norm: Option<&Normalize>) -> Vec<f32> {
    let mut img = data.fitted_image(i);
    if let Some(n) = norm {
        img.normalize(&n.mean, &n.std);
    }
    img.data
}

/// Normalised pixels, one row per image.
pub fn raw(data: &ImageDataset, norm: Option<&Normalize>) -> Features {
    use rayon::prelude::*;
    let dim = data.image_size();
    let mut out = vec![0f32; data.len * dim];
    out.par_chunks_mut(dim)
        .enumerate()
        .for_each(|(i, dst)| dst.copy_from_slice(&normalized(data, i, norm)));
    Features {
        data: out,
        rows: data.len,
        dim,
    }
}

/// The encoder's input for images `rows`: resized to `size` where the encoder was trained
/// on another size, then normalised.
pub(crate) fn input_batch(
    data: &ImageDataset,
    rows: &[usize],
    norm: Option<&Normalize>,
    size: (usize, usize),
    device: &Device,
) -> Tensor<4> {
    let (pixels, shape) = input_values(data, rows, norm, size);
    tensor4(pixels, shape, device)
}

/// The encoder input of the images `rows` on the host: resized to `size`, normalised.
pub(crate) fn input_values(
    data: &ImageDataset,
    rows: &[usize],
    norm: Option<&Normalize>,
    size: (usize, usize),
) -> (Vec<f32>, [usize; 4]) {
    use rayon::prelude::*;
    let (h, w) = size;
    let per = data.channels * h * w;
    let mut pixels = vec![0f32; rows.len() * per];
    // In parallel: a streamed image is decoded here.
    pixels
        .par_chunks_mut(per)
        .zip(rows.par_iter())
        .for_each(|(dst, &i)| {
            let mut img = data.fitted_image(i);
            if (h, w) != (data.height, data.width) {
                img = img.resize(h, w);
            }
            if let Some(n) = norm {
                img.normalize(&n.mean, &n.std);
            }
            dst.copy_from_slice(&img.data);
        });
    (pixels, [rows.len(), data.channels, h, w])
}

/// Encoder features for every image, `batch` images at a time, on `device` (without
/// autodiff; BatchNorm uses its running statistics). Images are resized to `size` when the
/// encoder was trained on another size.
pub fn encode(
    encoder: &Encoder,
    data: &ImageDataset,
    norm: Option<&Normalize>,
    size: (usize, usize),
    batch: usize,
    device: &Device,
) -> Features {
    let encoder = encoder.valid().to_device(device);
    let dim = encoder.output_dim();
    let mut out = Vec::with_capacity(data.len * dim);
    let mut progress = crate::progress::Task::new("embedding", data.len, "images");
    for start in (0..data.len).step_by(batch.max(1)) {
        let end = (start + batch).min(data.len);
        let rows: Vec<usize> = (start..end).collect();
        out.extend(to_vec(
            encoder.forward(input_batch(data, &rows, norm, size, device)),
        ));
        progress.advance(rows.len());
    }
    Features {
        data: out,
        rows: data.len,
        dim,
    }
}
/// Series as features: every channel's values, padded with 0 to `len` steps (missing values
/// 0 too).
pub fn raw_series(data: &crate::data::series::SeriesDataset, len: usize) -> Features {
    Features {
        data: (0..data.len())
            .flat_map(|i| data.padded(i, len))
            .map(|v| if v.is_nan() { 0.0 } else { v })
            .collect(),
        rows: data.len(),
        dim: data.channels * len,
    }
}
