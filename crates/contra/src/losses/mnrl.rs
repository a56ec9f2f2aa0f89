//! Multiple negatives ranking loss (in-batch negatives): Henderson et al. (2017), "Efficient
//! Natural Language Response Suggestion for Smart Reply"; sentence-transformers'
//! `MultipleNegativesRankingLoss`, which unsupervised SimCSE (Gao, Yao and Chen 2021,
//! "SimCSE: Simple Contrastive Learning of Sentence Embeddings") applies to a sentence and
//! itself under two dropout masks.
//!
//! Anchors `a_i`, positives `p_i` and optional hard negatives `n_i`; the candidates of every
//! anchor are all positives and all hard negatives of the batch; with cosine similarity `cos`
//! and scale `s` (20: a temperature of 0.05):
//!
//! ```text
//! l_i = -log( exp(s cos(a_i, p_i)) / (sum_j exp(s cos(a_i, p_j)) + sum_j exp(s cos(a_i, n_j))) )
//! L   = mean_i l_i
//! ```
//!
//! The symmetric form adds the positives ranking the anchors and halves the sum:
//! `(L + mean_i -log softmax_j(s cos(p_i, a_j))_i) / 2`.

use crate::tensor_util::{int_column, l2_normalize};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

#[derive(Clone, Debug, PartialEq)]
pub struct MnrlLoss {
    /// The similarity scale (the inverse temperature).
    pub scale: f32,
    /// Also rank the anchors for each positive.
    pub symmetric: bool,
}

impl MnrlLoss {
    pub fn new(scale: f32, symmetric: bool) -> Self {
        Self { scale, symmetric }
    }

    /// `anchors`, `positives` (and `negatives`): `[N, D]`, row `i` of each the same item.
    pub fn forward(
        &self,
        anchors: Tensor<2>,
        positives: Tensor<2>,
        negatives: Option<Tensor<2>>,
    ) -> Tensor<1> {
        let [n, _] = anchors.dims();
        let device = anchors.device();
        let a = l2_normalize(anchors);
        let p = l2_normalize(positives);
        let candidates = match negatives {
            Some(neg) => Tensor::cat(vec![p.clone(), l2_normalize(neg)], 0),
            None => p.clone(),
        };
        let targets = || int_column((0..n as i64).collect(), &device);
        let ranked = |q: Tensor<2>, c: Tensor<2>| {
            log_softmax(q.matmul(c.transpose()).mul_scalar(self.scale), 1)
                .gather(1, targets())
                .mean()
                .neg()
        };
        let forward = ranked(a.clone(), candidates);
        if self.symmetric {
            (forward + ranked(p, a)) / 2.0
        } else {
            forward
        }
    }
}
