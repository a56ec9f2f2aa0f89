//! Triplet margin loss with mining: Schroff, Kalenichenko and Philbin (2015), "FaceNet: A
//! Unified Embedding for Face Recognition and Clustering"; batch-hard mining from Hermans,
//! Beyer and Leibe (2017), "In Defense of the Triplet Loss for Person Re-Identification".
//!
//! For a triplet (anchor `a`, positive `p` of the same class, negative `n` of another class)
//! on L2-normalised embeddings (or raw ones, as an option), with distance `d` (Euclidean, or `1 - cosine`) and margin `m`:
//!
//! ```text
//! l = max(0, d(a, p) - d(a, n) + m)        (soft margin: log(1 + exp(d(a, p) - d(a, n))))
//! ```
//!
//! With `swap` (Balntas et al. 2016) the negative distance is `min(d(a, n), d(p, n))`. The loss
//! is the mean over the triplets whose loss is above zero, as pytorch-metric-learning's default
//! reducer does (0 when there are none). FaceNet's margin is 0.2 on normalised embeddings.
//! Triplets come from a [`Miner`] run on the batch's distances, without gradient.

use crate::tensor_util::{l2_normalize, to_vec};
use burn::prelude::*;
use burn::tensor::activation::softplus;
use burn::tensor::{Int, TensorData};
use serde::{Deserialize, Serialize};

/// The distance between embeddings, as a recipe names it (`euclidean` or `cosine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    #[default]
    Euclidean,
    /// `1 - cos(x, y)`.
    Cosine,
}

/// A miner as a recipe names it; the margin-based ones take the loss's margin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinerKind {
    #[default]
    BatchHard,
    BatchAll,
    SemiHard,
    Hard,
    Easy,
}

impl MinerKind {
    pub fn with_margin(self, margin: f32) -> Miner {
        match self {
            MinerKind::BatchHard => Miner::BatchHard,
            MinerKind::BatchAll => Miner::BatchAll,
            MinerKind::SemiHard => Miner::SemiHard { margin },
            MinerKind::Hard => Miner::Hard { margin },
            MinerKind::Easy => Miner::Easy { margin },
        }
    }
}

/// How triplets are chosen from a labelled batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Miner {
    /// Every valid (anchor, positive, negative).
    BatchAll,
    /// Per anchor: its farthest positive and nearest negative.
    BatchHard,
    /// FaceNet's semi-hard triplets: `d(a,p) < d(a,n) < d(a,p) + margin`.
    SemiHard { margin: f32 },
    /// Triplets that violate the margin: `d(a,n) < d(a,p) + margin`.
    Hard { margin: f32 },
    /// Triplets already satisfied: `d(a,n) >= d(a,p) + margin`.
    Easy { margin: f32 },
}

/// Pairwise distances of the rows, `[N, N]`; Euclidean ones of the L2-normalised rows when
/// `normalize` (cosine distance always normalises).
pub fn pairwise_distances(x: Tensor<2>, distance: Distance, normalize: bool) -> Tensor<2> {
    if distance == Distance::Euclidean && !normalize {
        // ||x - y||^2 = |x|^2 + |y|^2 - 2 x.y, clamped so equal rows have a finite gradient.
        let sq = (x.clone() * x.clone()).sum_dim(1); // [n, 1]
        let gram = x.clone().matmul(x.transpose());
        return (gram.mul_scalar(-2.0) + sq.clone() + sq.transpose())
            .clamp_min(1e-12)
            .sqrt();
    }
    let z = l2_normalize(x);
    let cos = z.clone().matmul(z.transpose());
    match distance {
        Distance::Cosine => cos.neg().add_scalar(1.0),
        // ||x - y||^2 = 2 - 2 cos for unit vectors.
        Distance::Euclidean => cos.mul_scalar(-2.0).add_scalar(2.0).clamp_min(1e-12).sqrt(),
    }
}

impl Miner {
    /// The triplets of a batch, from its `n x n` distance matrix (row-major) and labels.
    pub fn mine(&self, distances: &[f32], labels: &[u32]) -> Vec<[usize; 3]> {
        let n = labels.len();
        let d = |i: usize, j: usize| distances[i * n + j];
        let mut out = Vec::new();
        for a in 0..n {
            let positives: Vec<usize> = (0..n)
                .filter(|&p| p != a && labels[p] == labels[a])
                .collect();
            let negatives: Vec<usize> = (0..n).filter(|&q| labels[q] != labels[a]).collect();
            if positives.is_empty() || negatives.is_empty() {
                continue;
            }
            if let Miner::BatchHard = self {
                // The first index wins ties, as argmax does.
                let p = positives
                    .iter()
                    .copied()
                    .fold(positives[0], |b, p| if d(a, p) > d(a, b) { p } else { b });
                let q = negatives
                    .iter()
                    .copied()
                    .fold(negatives[0], |b, q| if d(a, q) < d(a, b) { q } else { b });
                out.push([a, p, q]);
                continue;
            }
            for &p in &positives {
                for &q in &negatives {
                    let (ap, an) = (d(a, p), d(a, q));
                    let keep = match *self {
                        Miner::BatchAll => true,
                        Miner::SemiHard { margin } => ap < an && an < ap + margin,
                        Miner::Hard { margin } => an < ap + margin,
                        Miner::Easy { margin } => an >= ap + margin,
                        Miner::BatchHard => unreachable!("handled above"),
                    };
                    if keep {
                        out.push([a, p, q]);
                    }
                }
            }
        }
        out
    }
}

#[derive(Clone, Debug)]
pub struct TripletLoss {
    pub margin: f32,
    pub distance: Distance,
    pub swap: bool,
    pub soft_margin: bool,
    /// L2-normalise embeddings before Euclidean distances (pytorch-metric-learning's default;
    /// Hermans et al. use raw embeddings with the soft margin).
    pub normalize: bool,
}

/// A loss value with the number of triplets the miner found.
pub struct MinedLoss {
    pub loss: Tensor<1>,
    pub triplets: usize,
}

impl TripletLoss {
    pub fn new(margin: f32) -> Self {
        Self {
            margin,
            distance: Distance::Euclidean,
            swap: false,
            soft_margin: false,
            normalize: true,
        }
    }

    /// Mine triplets from the batch with `miner`, then the loss over them.
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[u32], miner: Miner) -> MinedLoss {
        let dist = pairwise_distances(embeddings, self.distance, self.normalize);
        let triplets = miner.mine(&to_vec(dist.clone().detach()), labels);
        MinedLoss {
            loss: self.loss_on(dist, &triplets),
            triplets: triplets.len(),
        }
    }

    /// The loss over given triplets, from the `[N, N]` distance matrix.
    pub fn loss_on(&self, dist: Tensor<2>, triplets: &[[usize; 3]]) -> Tensor<1> {
        let [n, _] = dist.dims();
        let device = dist.device();
        if triplets.is_empty() {
            return dist.sum().mul_scalar(0.0);
        }
        let flat = dist.reshape([n * n]);
        let pick = |i: usize, j: usize| -> Tensor<1> {
            let idx: Vec<i64> = triplets.iter().map(|t| (t[i] * n + t[j]) as i64).collect();
            let len = idx.len();
            flat.clone().select(
                0,
                Tensor::<1, Int>::from_data(TensorData::new(idx, [len]), &device),
            )
        };
        let ap = pick(0, 1);
        let mut an = pick(0, 2);
        if self.swap {
            an = an.min_pair(pick(1, 2));
        }
        let diff = ap - an;
        let per_triplet = if self.soft_margin {
            softplus(diff, 1.0)
        } else {
            diff.add_scalar(self.margin).clamp_min(0.0)
        };
        // Mean over the triplets with a positive loss (all of them for the soft margin).
        let active = per_triplet
            .clone()
            .greater_elem(0.0)
            .float()
            .sum()
            .clamp_min(1.0)
            .detach();
        per_triplet.sum() / active
    }
}
