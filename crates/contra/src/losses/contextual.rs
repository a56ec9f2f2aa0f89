//! The contextual contrast of NCAD: Carmona, Aubet, Flunkert and Gasthaus (2022), "Neural
//! Contextual Anomaly Detection for Time Series".
//!
//! A window `w` is embedded whole and without its last steps (the suspect part), as its
//! context `c`. The distance between the two embeddings says how much the suspect part changes
//! the window; it is read as the probability that the suspect part is anomalous:
//!
//! ```text
//! d    = || phi(w) / |phi(w)| - phi(c) / |phi(c)| ||_2
//! p    = 1 - exp(-d)
//! L    = mean over windows of BCE(p, y)
//!      = mean of  y * -log(1 - exp(-d))  +  (1 - y) * d
//! ```
//!
//! with `y = 1` for a window whose suspect part holds an anomaly (injected, or a labelled
//! event) and 0 otherwise. `1 - exp(-d)` is clamped at 1e-10, as the paper's code does.

use crate::tensor_util::l2_normalize;
use burn::prelude::*;
use burn::tensor::TensorData;

#[derive(Clone, Debug, Default)]
pub struct ContextualLoss;

impl ContextualLoss {
    /// The distance `d` of each window's whole and context embeddings (`[b, D]` each): `[b]`.
    pub fn distances(whole: Tensor<2>, context: Tensor<2>) -> Tensor<1> {
        let diff = l2_normalize(whole) - l2_normalize(context);
        // The 1e-12 keeps the square root's gradient finite where both embeddings agree.
        diff.powi_scalar(2)
            .sum_dim(1)
            .add_scalar(1e-12)
            .sqrt()
            .flatten(0, 1)
    }

    /// The mean loss of windows labelled `anomalous` (1) or not (0).
    pub fn forward(&self, whole: Tensor<2>, context: Tensor<2>, anomalous: &[bool]) -> Tensor<1> {
        let [b, _] = whole.dims();
        assert_eq!(b, anomalous.len());
        let device = whole.device();
        let d = Self::distances(whole, context);
        let y = Tensor::<1>::from_data(
            TensorData::new(anomalous.iter().map(|&a| a as u8 as f32).collect(), [b]),
            &device,
        );
        let different = d
            .clone()
            .neg()
            .exp()
            .neg()
            .add_scalar(1.0)
            .clamp_min(1e-10)
            .log()
            .neg();
        let per_window = y.clone() * different + (y.neg().add_scalar(1.0)) * d;
        per_window.mean()
    }
}
