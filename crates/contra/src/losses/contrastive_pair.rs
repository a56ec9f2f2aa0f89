//! The contrastive (pair) loss: Hadsell, Chopra and LeCun (2006), "Dimensionality Reduction by
//! Learning an Invariant Mapping".
//!
//! For labelled pairs `(x_i, y_i)` that are similar (`Y_i = 1`) or dissimilar (`Y_i = 0`),
//! with Euclidean distance `D_i = ||x_i - y_i||` and margin `m`:
//!
//! ```text
//! l_i = Y_i * D_i^2 / 2 + (1 - Y_i) * max(0, m - D_i)^2 / 2
//! L   = mean_i l_i
//! ```
//!
//! Dissimilar pairs farther apart than the margin cost nothing.

use burn::prelude::*;

#[derive(Clone, Debug)]
pub struct ContrastivePairLoss {
    pub margin: f32,
}

impl ContrastivePairLoss {
    pub fn new(margin: f32) -> Self {
        Self { margin }
    }

    /// `x`, `y`: `[N, D]`; `similar[i]` says whether pair `i` is a positive pair.
    pub fn forward(&self, x: Tensor<2>, y: Tensor<2>, similar: &[bool]) -> Tensor<1> {
        let [n, _] = x.dims();
        assert_eq!(similar.len(), n, "one similarity label per pair");
        let device = x.device();
        let squared = (x - y).powi_scalar(2).sum_dim(1); // [n, 1]
        // The distance's gradient at 0 is undefined: keep it finite for identical pairs.
        let distance = squared.clone().clamp_min(1e-24).sqrt();
        let hinge = distance
            .neg()
            .add_scalar(self.margin)
            .clamp_min(0.0)
            .powi_scalar(2);
        let y_pos: Vec<f32> = similar.iter().map(|&s| s as u8 as f32).collect();
        let pos = Tensor::<2>::from_data(burn::tensor::TensorData::new(y_pos, [n, 1]), &device);
        let neg = pos.clone().neg().add_scalar(1.0);
        (pos * squared + neg * hinge).mean().mul_scalar(0.5)
    }
}
