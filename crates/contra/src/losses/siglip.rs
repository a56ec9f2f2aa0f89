//! SigLIP's pairwise sigmoid loss: Zhai et al. (2023), "Sigmoid Loss for Language Image
//! Pre-Training".
//!
//! Every image-text pair is an independent binary problem: with `z_ij = +1` for matching pairs
//! (the diagonal) and `-1` otherwise, learnable `s = exp(logit_scale)` and bias `b`:
//!
//! ```text
//! L = -1/N * sum_i sum_j log sigmoid( z_ij * (s * <x_i, y_j> + b) )
//! ```
//!
//! on L2-normalised embeddings; `logit_scale` starts at `ln 10` and `b` at -10, as in the paper.
//! After each optimizer step `logit_scale` is clamped to `[0, ln 100]`, as OpenCLIP clamps every
//! model's scale; neither scale nor bias takes weight decay.

use crate::tensor_util::{diagonal, l2_normalize};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;

#[derive(Module, Debug)]
pub struct SigLipLoss {
    pub logit_scale: Param<Tensor<1>>,
    pub logit_bias: Param<Tensor<1>>,
}

impl SigLipLoss {
    pub fn new(device: &Device) -> Self {
        Self::with(10.0, -10.0, device)
    }

    pub fn with(scale: f32, bias: f32, device: &Device) -> Self {
        Self {
            logit_scale: Param::from_tensor(Tensor::from_floats([scale.ln()], device)),
            logit_bias: Param::from_tensor(Tensor::from_floats([bias], device)),
        }
    }

    /// The loss with `logit_scale` clamped to `[0, ln 100]` (after each optimizer step).
    pub fn clamp(self) -> Self {
        Self {
            logit_scale: super::clip::clamp_log_scale(self.logit_scale),
            logit_bias: self.logit_bias,
        }
    }

    pub fn forward(&self, images: Tensor<2>, texts: Tensor<2>) -> Tensor<1> {
        let [n, _] = images.dims();
        let device = images.device();
        // Across processes the loss is the global batch's on every rank: scale and bias
        // have their gradient counted on rank 0 only.
        let scale = crate::dist::counted_once(self.logit_scale.val().exp()).reshape([1, 1]);
        let bias = crate::dist::counted_once(self.logit_bias.val()).reshape([1, 1]);
        let logits = l2_normalize(images).matmul(l2_normalize(texts).transpose()) * scale + bias;
        let signs = Tensor::<2>::ones([n, n], &device)
            .mul_scalar(-1.0)
            .mask_fill(diagonal(n, &device), 1.0);
        log_sigmoid(logits * signs).sum().div_scalar(n as f32).neg()
    }
}
