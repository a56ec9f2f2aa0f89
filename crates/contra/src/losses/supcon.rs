//! Supervised contrastive loss (SupCon): Khosla et al. (2020), "Supervised Contrastive
//! Learning", the `L_out` form.
//!
//! All views of all items are anchors. For anchor `i` with positives `P(i)` (the other
//! embeddings with the same label) and every other embedding `a != i` in the denominator:
//!
//! ```text
//! l_i = -(t / t_base) * 1/|P(i)| * sum_{p in P(i)} log( exp(s_ip / t) / sum_{a != i} exp(s_ia / t) )
//! L   = mean of l_i over the anchors that have at least one positive (0 when none has)
//! ```
//!
//! with `s` the cosine similarity, `t` the temperature (paper: 0.1; reference code 0.07) and
//! `t_base` the base temperature (defaults to `t`, so the factor is 1). Without labels every
//! item is its own class, and with two views the loss is exactly NT-Xent.
//!
//! Semi-supervised batches mix labelled items with items labelled [`UNLABELLED`]: each of the
//! latter is its own class, so labelled anchors get SupCon's positives and unlabelled anchors
//! only their other views (NT-Xent), all against the same batch in the denominator.

use crate::tensor_util::{diagonal, l2_normalize, tensor2};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// The label of an item whose class is unknown (semi-supervised training).
pub const UNLABELLED: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub struct SupConLoss {
    pub temperature: f32,
    pub base_temperature: f32,
}

impl SupConLoss {
    pub fn new(temperature: f32) -> Self {
        Self {
            temperature,
            base_temperature: temperature,
        }
    }

    /// `views`: one `[N, D]` tensor per view of the same `N` items; `labels`: one class per
    /// item ([`UNLABELLED`] where unknown), or `None` for instance discrimination.
    pub fn forward(&self, views: &[Tensor<2>], labels: Option<&[u32]>) -> Tensor<1> {
        let [n, _] = views[0].dims();
        let m = n * views.len();
        let device = views[0].device();
        if let Some(l) = labels {
            assert_eq!(l.len(), n, "one label per item");
        }
        // An unlabelled item is a class of its own, numbered past every real label.
        let class = |i: usize| match labels.map(|l| l[i % n]) {
            Some(l) if l != UNLABELLED => l as u64,
            _ => (1 << 32) + (i % n) as u64,
        };
        let mut positives = vec![0f32; m * m];
        let mut weights = vec![0f32; m];
        for i in 0..m {
            let row = &mut positives[i * m..(i + 1) * m];
            for (j, v) in row.iter_mut().enumerate() {
                *v = (i != j && class(i) == class(j)) as u8 as f32;
            }
            let count: f32 = row.iter().sum();
            if count > 0.0 {
                row.iter_mut().for_each(|v| *v /= count);
                weights[i] = 1.0;
            }
        }
        let anchors: f32 = weights.iter().sum();
        let z = l2_normalize(Tensor::cat(views.to_vec(), 0));
        let logits = z.clone().matmul(z.transpose()).div_scalar(self.temperature);
        let log_prob = log_softmax(logits.mask_fill(diagonal(m, &device), -1.0e9), 1);
        // Each row of `positives` already averages over P(i); `weights` drops anchors without one.
        let per_anchor = (log_prob * tensor2(positives, [m, m], &device)).sum_dim(1);
        let weights = tensor2(weights, [m, 1], &device);
        let scale = self.temperature / self.base_temperature / anchors.max(1.0);
        (per_anchor * weights).sum().mul_scalar(-scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::losses::NtXentLoss;
    use crate::tensor_util::{scalar, tensor2};

    #[test]
    fn unlabelled_items_are_classes_of_their_own() {
        let device = crate::device::parse("cpu").unwrap();
        let v = |s: f32| {
            let x: Vec<f32> = (0..24).map(|i| ((i as f32) * s).sin()).collect();
            tensor2(x, [6, 4], &device)
        };
        let (a, b) = (v(0.7), v(1.3));
        let loss = SupConLoss::new(0.1);
        let views = [a.clone(), b.clone()];
        let semi = scalar(loss.forward(&views, Some(&[0, UNLABELLED, 0, 1, UNLABELLED, 1])));
        let unique = scalar(loss.forward(&views, Some(&[0, 7, 0, 1, 8, 1])));
        assert!((semi - unique).abs() < 1e-6, "{semi} vs {unique}");
        let none = scalar(loss.forward(&views, Some(&[UNLABELLED; 6])));
        let ntx = scalar(NtXentLoss::new(0.1).forward(a, b));
        assert!((none - ntx).abs() < 1e-5, "{none} vs {ntx}");
    }
}
