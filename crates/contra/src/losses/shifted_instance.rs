//! The loss of contrasting shifted instances (CSI): Tack, Mo, Jeong and Shin (2020), "CSI:
//! Novelty Detection via Contrastive Learning on Distributionally Shifted Instances".
//!
//! Every item is seen under `K` distribution-shifting transformations `S_0 .. S_{K-1}`
//! (rotations by 0, 90, 180 and 270 degrees by default), each in two augmented views. A shifted
//! view is a new instance: its positive is the other view under the same shift, and the item's
//! other shifts are negatives like every other item. An auxiliary classifier `p` on the
//! encoder's features tells which shift was applied:
//!
//! ```text
//! L_con-SI = NT-Xent over the 2KN projections, positive(S_k(x)_a) = S_k(x)_b
//! L_cls-SI = 1/(2KN) * sum over the 2KN views of -log p(k | f(S_k(x)))
//! L        = L_con-SI + lambda * L_cls-SI
//! ```
//!
//! with the paper's temperature 0.5 and lambda 1.

use super::NtXentLoss;
use crate::tensor_util::int_column;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

#[derive(Clone, Debug)]
pub struct ShiftedInstanceLoss {
    pub temperature: f32,
    /// lambda: the weight of the shift classification.
    pub shift_weight: f32,
}

impl ShiftedInstanceLoss {
    pub fn new(temperature: f32, shift_weight: f32) -> Self {
        Self {
            temperature,
            shift_weight,
        }
    }

    /// The loss of `shifts` shifts of `N` items: `z_a`, `z_b` are the two views' projections,
    /// `[K*N, D]` each, shift-major (the N items under shift 0, then under shift 1, ...);
    /// `shift_logits` `[2*K*N, K]` are the classifier's logits of the rows of `z_a` then `z_b`.
    pub fn forward(
        &self,
        z_a: Tensor<2>,
        z_b: Tensor<2>,
        shift_logits: Tensor<2>,
        shifts: usize,
    ) -> Tensor<1> {
        let [rows, _] = z_a.dims();
        assert!(
            shifts > 0 && rows.is_multiple_of(shifts),
            "{rows} rows are not {shifts} shifts of the same items"
        );
        let items = rows / shifts;
        let device = z_a.device();
        let contrast = NtXentLoss::new(self.temperature).forward(z_a, z_b);
        let targets: Vec<i64> = (0..2 * rows)
            .map(|r| ((r / items) % shifts) as i64)
            .collect();
        let classify = log_softmax(shift_logits, 1)
            .gather(1, int_column(targets, &device))
            .mean()
            .neg();
        contrast + classify.mul_scalar(self.shift_weight)
    }
}
