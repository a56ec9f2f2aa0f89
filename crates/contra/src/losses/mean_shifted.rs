//! The mean-shifted contrastive loss: Reiss and Hoshen (2023), "Mean-Shifted Contrastive Loss
//! for Anomaly Detection" (AAAI; arXiv 2106.03844).
//!
//! An encoder pretrained on other data maps the normal training images to unit features
//! `phi(x)`; their mean `c` is computed once, before training, and stays fixed. The contrast
//! then runs on the features as seen from that centre, so that its uniformity spreads the
//! normal images around `c` instead of over the whole sphere (which, from a pretrained
//! encoder, collapses the features that kNN detection relies on):
//!
//! ```text
//! phi(x) = f(x) / |f(x)|
//! u(x)   = (phi(x) - c) / |phi(x) - c|
//! L_msc  = NT-Xent at temperature t over u(x_a), u(x_b), the two views of N images
//! L_ang  = 1/N sum_i |phi(x_a,i) - c|^2 + 1/N sum_i |phi(x_b,i) - c|^2
//! L      = L_msc + lambda * L_ang
//! ```
//!
//! with the paper's temperature 0.25. The angular centre term (the paper's variant that also
//! pulls the features towards the centre; its reference code adds it with weight 1 and a unit
//! centre) is off at `lambda = 0`.

use super::NtXentLoss;
use crate::tensor_util::l2_normalize;
use burn::prelude::*;

#[derive(Clone, Debug)]
pub struct MeanShiftedLoss {
    pub temperature: f32,
    /// lambda: the weight of the angular centre term (0: plain mean-shifted contrast).
    pub angular_weight: f32,
}

impl MeanShiftedLoss {
    pub fn new(temperature: f32, angular_weight: f32) -> Self {
        Self {
            temperature,
            angular_weight,
        }
    }

    /// The loss of the encoder's features `f_a`, `f_b` (`[N, D]`, the two views of N images,
    /// not normalised) about the fixed `centre` (`[D]`; no gradient flows into it).
    pub fn forward(&self, f_a: Tensor<2>, f_b: Tensor<2>, centre: Tensor<1>) -> Tensor<1> {
        let centre = centre.detach().unsqueeze_dim::<2>(0);
        let shifted_a = l2_normalize(f_a) - centre.clone();
        let shifted_b = l2_normalize(f_b) - centre;
        let contrast =
            NtXentLoss::new(self.temperature).forward(shifted_a.clone(), shifted_b.clone());
        if self.angular_weight == 0.0 {
            return contrast;
        }
        let spread = |s: Tensor<2>| s.powi_scalar(2).sum_dim(1).mean();
        contrast + (spread(shifted_a) + spread(shifted_b)).mul_scalar(self.angular_weight)
    }
}
