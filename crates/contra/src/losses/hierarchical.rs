//! TS2Vec's hierarchical contrastive loss over per-time-step representations.
//!
//! Yue, Wang, Duan, Yang, Huang, Tong and Xu (2022), "TS2Vec: Towards Universal Representation
//! of Time Series".
//!
//! `z1, z2` are `[B, T, C]`: the representations of the `T` shared time steps of two views
//! (TS2Vec's overlapping crops) of `B` series. At one scale, with `s = z·z'` the plain dot
//! product (no normalisation, no temperature):
//!
//! ```text
//! instance(t) = mean over the 2B rows r of  -log softmax_{r' != r} s(r, r')[partner(r)]
//!               (rows: the B series of both views at step t; partner: the other view)
//! temporal(b) = mean over the 2T rows r of  -log softmax_{r' != r} s(r, r')[partner(r)]
//!               (rows: the T steps of both views of series b; partner: the same step, other view)
//! ```
//!
//! The loss adds `alpha * mean_t instance(t) + (1 - alpha) * mean_b temporal(b)` at the input
//! resolution and after each max pooling over time by 2 (an odd last step is dropped), down
//! to one step, where only the instance term applies; the temporal term starts at the scale
//! `temporal_unit`. The sum is divided by the number of scales. A single series has no
//! instance term, a single step no temporal term (each counts as 0).

use super::kernels::{max_pool_pairs, partner_cross_entropy};
use crate::tensor_util::diagonal;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

#[derive(Clone, Debug)]
pub struct HierarchicalLoss {
    /// Weight of the instance term (TS2Vec: 0.5).
    pub alpha: f32,
    /// The first scale with a temporal term (TS2Vec: 0).
    pub temporal_unit: usize,
}

impl Default for HierarchicalLoss {
    fn default() -> Self {
        Self {
            alpha: 0.5,
            temporal_unit: 0,
        }
    }
}

/// Whether the fused kernels of [`super::kernels`] serve this device: flex, the CPU backend.
/// Elsewhere burn's own operations keep the work on the device.
fn fused(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    return device.clone().without_autodiff() == Device::flex();
    #[cfg(not(feature = "flex"))]
    return {
        let _ = device;
        false
    };
}

/// Cross-entropy of each of the `2n` rows of every group against its partner (`r ± n`), the
/// row itself left out: `z` is `[groups, 2n, C]`.
fn contrast(z: Tensor<3>, n: usize) -> Tensor<1> {
    let [groups, rows, _] = z.dims();
    let device = z.device();
    let sim = z.clone().matmul(z.swap_dims(1, 2));
    if fused(&device) {
        return partner_cross_entropy(sim, n).mean();
    }
    // A large negative rather than -inf keeps 0 * inf out of the backward pass.
    let mask = diagonal(rows, &device)
        .unsqueeze::<3>()
        .repeat_dim(0, groups);
    let log_prob = log_softmax(sim.mask_fill(mask, -1.0e9), 2);
    let partners: Vec<i64> = (0..groups)
        .flat_map(|_| (0..rows).map(move |r| ((r + n) % rows) as i64))
        .collect();
    let index = Tensor::<3, Int>::from_data(TensorData::new(partners, [groups, rows, 1]), &device);
    log_prob.gather(2, index).mean().neg()
}

/// Max pooling over time by 2: `[B, T, C]` to `[B, T / 2, C]` (an odd last step dropped).
fn pool(z: Tensor<3>) -> Tensor<3> {
    if fused(&z.device()) {
        return max_pool_pairs(z);
    }
    let [b, t, c] = z.dims();
    let half = t / 2;
    z.slice([0..b, 0..2 * half, 0..c])
        .reshape([b, half, 2, c])
        .max_dim(2)
        .reshape([b, half, c])
}

impl HierarchicalLoss {
    pub fn new(alpha: f32, temporal_unit: usize) -> Self {
        Self {
            alpha,
            temporal_unit,
        }
    }

    fn instance(&self, z1: &Tensor<3>, z2: &Tensor<3>) -> Option<Tensor<1>> {
        let b = z1.dims()[0];
        (b > 1 && self.alpha != 0.0).then(|| {
            let z = Tensor::cat(vec![z1.clone(), z2.clone()], 0).swap_dims(0, 1);
            contrast(z, b).mul_scalar(self.alpha)
        })
    }

    fn temporal(&self, z1: &Tensor<3>, z2: &Tensor<3>) -> Option<Tensor<1>> {
        let t = z1.dims()[1];
        (t > 1 && self.alpha != 1.0).then(|| {
            let z = Tensor::cat(vec![z1.clone(), z2.clone()], 1);
            contrast(z, t).mul_scalar(1.0 - self.alpha)
        })
    }

    /// The loss for representations `z1`, `z2` of shape `[B, T, C]`.
    pub fn forward(&self, mut z1: Tensor<3>, mut z2: Tensor<3>) -> Tensor<1> {
        assert_eq!(z1.dims(), z2.dims());
        let device = z1.device();
        let mut terms: Vec<Tensor<1>> = Vec::new();
        let mut scales = 0usize;
        while z1.dims()[1] > 1 {
            terms.extend(self.instance(&z1, &z2));
            if scales >= self.temporal_unit {
                terms.extend(self.temporal(&z1, &z2));
            }
            scales += 1;
            z1 = pool(z1);
            z2 = pool(z2);
        }
        if z1.dims()[1] == 1 {
            terms.extend(self.instance(&z1, &z2));
            scales += 1;
        }
        let total = terms
            .into_iter()
            .reduce(|a, b| a + b)
            .unwrap_or_else(|| Tensor::zeros([1], &device));
        total.div_scalar(scales.max(1) as f32)
    }
}
