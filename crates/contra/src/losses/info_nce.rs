//! InfoNCE: van den Oord, Li and Vinyals (2018), "Representation Learning with Contrastive
//! Predictive Coding"; in the query/key form of MoCo (He et al. 2020).
//!
//! Each query `q_i` has one positive key `k_i` and a set of negatives; with cosine similarity
//! `s` and temperature `t`:
//!
//! ```text
//! l_i = -log( exp(s(q_i, k_i) / t) / (exp(s(q_i, k_i) / t) + sum_{n in N(i)} exp(s(q_i, n) / t)) )
//! L   = mean_i l_i
//! ```
//!
//! The negatives `N(i)` are the other keys of the batch ([`Negatives::InBatch`]), or a tensor
//! shared by all queries ([`Negatives::Bank`]): an explicit set, a memory bank or MoCo's queue.
//! NT-Xent is the symmetric in-batch case with both views as queries and keys.

use crate::tensor_util::{int_column, l2_normalize};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Where the negatives of each query come from.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // built once per step, never stored in bulk
pub enum Negatives {
    /// The keys of the other items in the batch.
    InBatch,
    /// `[M, D]` embeddings shared by every query (memory bank, queue, explicit negatives);
    /// no gradient flows into them.
    Bank(Tensor<2>),
}

#[derive(Clone, Debug)]
pub struct InfoNceLoss {
    pub temperature: f32,
}

impl InfoNceLoss {
    pub fn new(temperature: f32) -> Self {
        Self { temperature }
    }

    /// `queries`, `keys`: `[N, D]`, row `i` of each a positive pair.
    pub fn forward(&self, queries: Tensor<2>, keys: Tensor<2>, negatives: &Negatives) -> Tensor<1> {
        let [n, _] = queries.dims();
        let device = queries.device();
        let q = l2_normalize(queries);
        let k = l2_normalize(keys);
        let (logits, targets): (Tensor<2>, Vec<i64>) = match negatives {
            Negatives::InBatch => (q.matmul(k.transpose()), (0..n as i64).collect()),
            Negatives::Bank(bank) => {
                let positive = (q.clone() * k).sum_dim(1);
                let negative = q.matmul(l2_normalize(bank.clone().detach()).transpose());
                (Tensor::cat(vec![positive, negative], 1), vec![0; n])
            }
        };
        let log_prob = log_softmax(logits.div_scalar(self.temperature), 1);
        log_prob
            .gather(1, int_column(targets, &device))
            .mean()
            .neg()
    }
}
