//! Anomaly scores from an embedding fitted on normal data only; higher means more anomalous.
//!
//! ```text
//! kNN:          s(x) = mean over the k nearest normal embeddings of (1 - cos(x, y))
//! Mahalanobis:  s(x) = (x - mu)^T (Sigma + eps I)^-1 (x - mu)
//! ```
//!
//! The kNN score on L2-normalised embeddings is the usual deep one-class baseline (Bergman,
//! Cohen and Hoshen 2020, "Deep Nearest Neighbor Anomaly Detection"); Mahalanobis distance to
//! the normal embeddings' Gaussian follows Lee et al. (2018). `eps` (relative to the mean
//! variance) keeps the covariance invertible when the embedding has fewer items than dimensions.

use super::Features;
use crate::error::{Error, Result};
use burn::prelude::*;
use rayon::prelude::*;

/// Mean cosine distance of each test row to its `k` nearest normal rows (`exclude_self`: the
/// test rows are the normal rows, and a row is not its own neighbour).
pub fn knn_scores(
    normal: &Features,
    test: &Features,
    k: usize,
    exclude_self: bool,
    device: &Device,
) -> Vec<f64> {
    assert_eq!(normal.dim, test.dim);
    let available = normal.rows - exclude_self as usize;
    let k = k.clamp(1, available.max(1));
    let mut out = Vec::with_capacity(test.rows);
    super::cosine_blocks(test, normal, device, |start, sims| {
        let scores: Vec<f64> = sims
            .par_chunks_exact(normal.rows)
            .enumerate()
            .map(|(i, row)| {
                let mut distances: Vec<f64> = row
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| !(exclude_self && j == start + i))
                    .map(|(_, &s)| 1.0 - s as f64)
                    .collect();
                if k < distances.len() {
                    distances.select_nth_unstable_by(k - 1, f64::total_cmp);
                }
                distances[..k].iter().sum::<f64>() / k as f64
            })
            .collect();
        out.extend(scores);
    });
    out
}

/// A Gaussian fitted to normal embeddings.
pub struct Mahalanobis {
    mean: Vec<f64>,
    /// Lower-triangular Cholesky factor of the regularised covariance, row-major.
    chol: Vec<f64>,
    dim: usize,
}

impl Mahalanobis {
    /// Fit mean and covariance (with `eps` times the mean variance added to the diagonal).
    pub fn fit(normal: &Features, eps: f64) -> Result<Self> {
        let (n, d) = (normal.rows, normal.dim);
        if n < 2 {
            return Err(Error::other(
                "Mahalanobis scores need at least 2 normal items",
            ));
        }
        let mut mean = vec![0f64; d];
        for i in 0..n {
            mean.iter_mut()
                .zip(normal.row(i))
                .for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0f64; d * d];
        cov.par_chunks_mut(d).enumerate().for_each(|(p, row)| {
            for i in 0..n {
                let x = normal.row(i);
                let xp = x[p] as f64 - mean[p];
                row.iter_mut()
                    .zip(x.iter().zip(&mean))
                    .for_each(|(c, (&v, m))| *c += xp * (v as f64 - m));
            }
            row.iter_mut().for_each(|c| *c /= (n - 1) as f64);
        });
        let mean_var = (0..d).map(|i| cov[i * d + i]).sum::<f64>() / d as f64;
        let ridge = eps * mean_var.max(1e-12);
        (0..d).for_each(|i| cov[i * d + i] += ridge);
        let chol = cholesky(cov, d).ok_or_else(|| {
            Error::other(
                "the covariance of the normal embeddings is not positive definite; raise eps",
            )
        })?;
        Ok(Self { mean, chol, dim: d })
    }

    /// Squared Mahalanobis distance of every row of `test`.
    pub fn scores(&self, test: &Features) -> Vec<f64> {
        assert_eq!(test.dim, self.dim);
        let d = self.dim;
        (0..test.rows)
            .into_par_iter()
            .map(|i| {
                // Solve L y = x - mu; the distance is |y|^2.
                let mut y: Vec<f64> = test
                    .row(i)
                    .iter()
                    .zip(&self.mean)
                    .map(|(&v, m)| v as f64 - m)
                    .collect();
                for r in 0..d {
                    let s: f64 = (0..r).map(|c| self.chol[r * d + c] * y[c]).sum();
                    y[r] = (y[r] - s) / self.chol[r * d + r];
                }
                y.iter().map(|v| v * v).sum()
            })
            .collect()
    }
}

fn cholesky(a: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let v = a[i * n + i] - s;
                if v <= 0.0 || !v.is_finite() {
                    return None;
                }
                l[i * n + j] = v.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// How test items are scored against the normal embeddings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scorer {
    /// Mean cosine distance to the `k` nearest normal embeddings.
    Knn { k: usize },
    /// Squared Mahalanobis distance, covariance regularised by `eps` x the mean variance.
    Mahalanobis { eps: f64 },
}

/// Scores of the test items and, where it is known which are anomalous, how well they
/// separate them.
#[derive(Clone, Debug)]
pub struct Detection {
    pub scores: Vec<f64>,
    pub metrics: Option<DetectionMetrics>,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct DetectionMetrics {
    pub auroc: f64,
    /// 95% bootstrap interval of the AUROC ([`BOOTSTRAP_RESAMPLES`] resamples).
    pub auroc_interval: [f64; 2],
    pub average_precision: f64,
    pub average_precision_interval: [f64; 2],
    /// The best F1 over thresholds: an oracle's choice of threshold, an upper bound of what a
    /// threshold set without the test labels reaches.
    pub best_f1: f64,
    /// Items scoring at least this are flagged at the best F1.
    pub threshold: f64,
}

/// Resamples behind each bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

impl DetectionMetrics {
    /// How `scores` separate the items marked in `anomalous`, with 95% bootstrap intervals
    /// (seeded by `seed`).
    pub fn of(scores: &[f64], anomalous: &[bool], seed: u64) -> Result<Self> {
        use super::ranges::bootstrap_interval;
        use super::scores::{auroc, average_precision, best_f1};
        let (best_f1, threshold) = best_f1(scores, anomalous)?;
        let interval = |m: fn(&[f64], &[bool]) -> Result<f64>| {
            bootstrap_interval(scores, anomalous, m, BOOTSTRAP_RESAMPLES, seed)
                .map(|(lo, hi)| [lo, hi])
        };
        Ok(Self {
            auroc: auroc(scores, anomalous)?,
            auroc_interval: interval(auroc)?,
            average_precision: average_precision(scores, anomalous)?,
            average_precision_interval: interval(average_precision)?,
            best_f1,
            threshold,
        })
    }
}

/// Fit on `normal`, score `test`; `anomalous[i]` marks the test items that are anomalies.
pub fn detect(
    normal: &Features,
    test: &Features,
    anomalous: Option<&[bool]>,
    scorer: Scorer,
    device: &Device,
) -> Result<Detection> {
    let scores = match scorer {
        Scorer::Knn { k } => knn_scores(normal, test, k, false, device),
        Scorer::Mahalanobis { eps } => Mahalanobis::fit(normal, eps)?.scores(test),
    };
    Detection::of(scores, anomalous)
}

impl Detection {
    /// Scores, measured against `anomalous` where it is known.
    pub fn of(scores: Vec<f64>, anomalous: Option<&[bool]>) -> Result<Self> {
        let metrics = anomalous
            .map(|y| DetectionMetrics::of(&scores, y, 0))
            .transpose()?;
        Ok(Detection { scores, metrics })
    }
}
