//! Decoupled contrastive learning (DCL) and its von Mises-Fisher weighted form (DCLW): Yeh et
//! al. (2022), "Decoupled Contrastive Learning".
//!
//! NT-Xent with the positive removed from the denominator. For L2-normalised views `a`, `b`
//! of `N` items, cosine similarity `s` and temperature `t`, one direction is
//!
//! ```text
//! l(a, b)_i = -w_i * s(a_i, b_i) / t + log( sum_{k != i} exp(s(a_i, a_k)/t) + sum_{k != i} exp(s(a_i, b_k)/t) )
//! L = ( mean_i l(a, b)_i + mean_i l(b, a)_i ) / 2
//! ```
//!
//! DCL has `w_i = 1` (default temperature 0.1); DCLW weights positives by
//! `w_i = 2 - N * softmax_i( s(a_i, b_i) / sigma )` (sigma 0.5), which up-weights hard positives.

use crate::tensor_util::{diagonal, l2_normalize};
use burn::prelude::*;

#[derive(Clone, Debug)]
pub struct DclLoss {
    pub temperature: f32,
    /// `Some(sigma)` for DCLW's weighting.
    pub sigma: Option<f32>,
}

impl DclLoss {
    pub fn dcl(temperature: f32) -> Self {
        Self {
            temperature,
            sigma: None,
        }
    }

    pub fn dclw(temperature: f32, sigma: f32) -> Self {
        Self {
            temperature,
            sigma: Some(sigma),
        }
    }

    pub fn forward(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        let (a, b) = (l2_normalize(z_a), l2_normalize(z_b));
        (self.one_way(a.clone(), b.clone()) + self.one_way(b, a)).mul_scalar(0.5)
    }

    fn one_way(&self, a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
        let [n, _] = a.dims();
        let device = a.device();
        let positive = (a.clone() * b.clone()).sum_dim(1); // [n, 1]
        let mut positive_term = positive.clone().div_scalar(self.temperature).neg();
        if let Some(sigma) = self.sigma {
            let weights = burn::tensor::activation::softmax(positive.div_scalar(sigma), 0)
                .mul_scalar(-(n as f32))
                .add_scalar(2.0);
            positive_term = positive_term * weights;
        }
        let mask = diagonal(n, &device);
        let self_sim = a
            .clone()
            .matmul(a.clone().transpose())
            .mask_fill(mask.clone(), -1.0e9);
        let cross_sim = a.matmul(b.transpose()).mask_fill(mask, -1.0e9);
        let logits = Tensor::cat(vec![self_sim, cross_sim], 1).div_scalar(self.temperature);
        // Log-sum-exp with the row maximum taken out, so small temperatures stay finite.
        let max = logits.clone().max_dim(1).detach();
        let lse = (logits - max.clone()).exp().sum_dim(1).log() + max;
        (positive_term + lse).mean()
    }
}
