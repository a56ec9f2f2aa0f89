//! NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR: the symmetric,
//! in-batch case of InfoNCE.
//!
//! Chen, Kornblith, Norouzi and Hinton (2020), "A Simple Framework for Contrastive Learning of
//! Visual Representations"; InfoNCE from van den Oord, Li and Vinyals (2018), "Representation
//! Learning with Contrastive Predictive Coding".
//!
//! For two views `z_a, z_b` of a batch of `N` items, the `2N` embeddings are L2-normalised and
//! every one of them is an anchor whose positive is the other view of the same item and whose
//! negatives are the other `2N - 2` embeddings:
//!
//! ```text
//! l(i, j) = -log( exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k) / t) )
//! L = 1/(2N) * sum over the 2N anchors of l(i, positive(i))
//! ```
//!
//! with `sim` the cosine similarity and `t` the temperature (lightly's default 0.5; SimCLR's
//! 0.1 for large batches). The log-sum-exp is computed by `log_softmax`, which subtracts the row
//! maximum, so it stays finite at small temperatures and large batches; the anchor's own
//! similarity is masked out of the denominator.

use crate::tensor_util::{diagonal, int_column, l2_normalize};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

#[derive(Clone, Debug)]
pub struct NtXentLoss {
    pub temperature: f32,
}

impl Default for NtXentLoss {
    fn default() -> Self {
        Self { temperature: 0.5 }
    }
}

impl NtXentLoss {
    pub fn new(temperature: f32) -> Self {
        Self { temperature }
    }

    /// The mean loss over both views of the batch: `z_a`, `z_b` are `[N, D]`.
    pub fn forward(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        let [n, _] = z_a.dims();
        let device = z_a.device();
        let z = l2_normalize(Tensor::cat(vec![z_a, z_b], 0));
        let logits = z.clone().matmul(z.transpose()).div_scalar(self.temperature);
        // Masked to a large negative rather than -inf, so no 0 * inf appears in the backward.
        let logits = logits.mask_fill(diagonal(2 * n, &device), -1.0e9);
        let targets: Vec<i64> = (0..2 * n).map(|i| ((i + n) % (2 * n)) as i64).collect();
        let log_prob = log_softmax(logits, 1).gather(1, int_column(targets, &device));
        log_prob.mean().neg()
    }
}
