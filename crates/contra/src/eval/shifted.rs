//! The detection score of CSI (Tack et al. 2020, section 2.2): for every shift `S_k`, the
//! cosine of a test item's projection to its nearest normal training projection, scaled by the
//! projection's norm, plus the shift classifier's logit of the true shift, each weighted by
//! the inverse of its mean over the normal training items; averaged over the `K` shifts.
//!
//! ```text
//! s_con(x, k) = max_m cos(z(S_k x), z(S_k x_m)) * ||z(S_k x)||
//! s_cls(x, k) = W_k . f(S_k x)                        (the logit of shift k)
//! s_CSI(x)    = 1/K * sum_k [ s_con(x, k) / mean_m ||z(S_k x_m)|| + s_cls(x, k) / mean_m s_cls(x_m, k) ]
//! ```
//!
//! `s_CSI` is high for normal items; the anomaly score is its negative. The normal items are
//! seen without augmentation (the paper's single-sample score draws one augmented view).

use super::Features;
use crate::augment::Normalize;
use crate::data::ImageDataset;
use crate::error::{Error, Result};
use crate::methods::csi::Csi;
use crate::tensor_util::to_vec;
use burn::module::Module;
use burn::prelude::*;

/// A set's outputs under each shift.
pub struct ShiftedFeatures {
    /// Per shift, the encoder's features.
    pub features: Vec<Features>,
    /// Per shift, the projections (not normalised).
    pub projections: Vec<Features>,
    /// Per shift `k`, every row's logit of shift `k`.
    pub true_shift_logits: Vec<Vec<f32>>,
}

/// The model's outputs for every image under every shift, `batch` images at a time (inference
/// mode), each image prepared as [`super::features::encode`] prepares it.
pub fn encode_shifted(
    model: &Csi,
    data: &ImageDataset,
    norm: Option<&Normalize>,
    size: (usize, usize),
    batch: usize,
    device: &Device,
) -> ShiftedFeatures {
    let model = model.valid().to_device(device);
    let shifts = model.shifts.len();
    let mut features = vec![Vec::new(); shifts];
    let mut projections = vec![Vec::new(); shifts];
    let mut logits = vec![Vec::with_capacity(data.len); shifts];
    let mut progress = crate::progress::Task::new("embedding", data.len, "images");
    for start in (0..data.len).step_by(batch.max(1)) {
        let rows: Vec<usize> = (start..(start + batch).min(data.len)).collect();
        let x = super::features::input_batch(data, &rows, norm, size, device);
        for (k, out) in model.outputs(x).into_iter().enumerate() {
            features[k].extend(to_vec(out.features));
            projections[k].extend(to_vec(out.projections));
            let all = to_vec(out.shift_logits);
            logits[k].extend(all.chunks_exact(shifts).map(|row| row[k]));
        }
        progress.advance(rows.len());
    }
    let rows = |data: Vec<Vec<f32>>, dim: usize| -> Vec<Features> {
        data.into_iter()
            .map(|data| Features {
                rows: data.len() / dim.max(1),
                data,
                dim,
            })
            .collect()
    };
    ShiftedFeatures {
        features: rows(features, model.encoder.output_dim()),
        projections: rows(projections, model.head.output_dim()),
        true_shift_logits: logits,
    }
}

fn norm(row: &[f32]) -> f64 {
    row.iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt()
}

/// Anomaly scores of `test` (higher: more anomalous), `-s_CSI` fitted on `normal`.
pub fn csi_scores(
    normal: &ShiftedFeatures,
    test: &ShiftedFeatures,
    device: &Device,
) -> Result<Vec<f64>> {
    let shifts = normal.projections.len();
    assert_eq!(shifts, test.projections.len());
    let rows = test.projections.first().map_or(0, |f| f.rows);
    let mut score = vec![0f64; rows];
    for k in 0..shifts {
        let (nz, tz) = (&normal.projections[k], &test.projections[k]);
        let m = nz.rows.max(1) as f64;
        let mean_norm = (0..nz.rows).map(|i| norm(nz.row(i))).sum::<f64>() / m;
        let mean_logit = normal.true_shift_logits[k]
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>()
            / m;
        if nz.rows == 0 || mean_norm.is_nan() || mean_norm <= 0.0 {
            return Err(Error::other(
                "CSI scores need normal items with non-zero projections",
            ));
        }
        if mean_logit.is_nan() || mean_logit <= 0.0 {
            return Err(Error::other(format!(
                "the shift classifier does not recognise shift {k} on the normal items (mean logit {mean_logit:.3}): train longer"
            )));
        }
        super::cosine_blocks(tz, nz, device, |start, sims| {
            for (i, row) in sims.chunks_exact(nz.rows).enumerate() {
                let r = start + i;
                let nearest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                score[r] += nearest * norm(tz.row(r)) / mean_norm
                    + test.true_shift_logits[k][r] as f64 / mean_logit;
            }
        });
    }
    Ok(score.into_iter().map(|s| -s / shifts as f64).collect())
}

/// The mean over shifts of each test item's kNN distance ([`super::anomaly::knn_scores`]) to
/// the normal items under the same shift, in the encoder's space.
pub fn shifted_knn_scores(
    normal: &ShiftedFeatures,
    test: &ShiftedFeatures,
    k: usize,
    device: &Device,
) -> Vec<f64> {
    let shifts = normal.features.len();
    let mut total = vec![0f64; test.features.first().map_or(0, |f| f.rows)];
    for (n, t) in normal.features.iter().zip(&test.features) {
        let scores = super::anomaly::knn_scores(n, t, k, false, device);
        total.iter_mut().zip(scores).for_each(|(a, s)| *a += s);
    }
    total.into_iter().map(|s| s / shifts as f64).collect()
}
