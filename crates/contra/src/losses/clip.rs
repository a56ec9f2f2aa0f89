//! CLIP's symmetric contrastive loss: Radford et al. (2021), "Learning Transferable Visual
//! Models From Natural Language Supervision".
//!
//! For `N` matching image and text embeddings, L2-normalised, with a learnable scale
//! `s = exp(logit_scale)`:
//!
//! ```text
//! logits = s * I T^T                  (N x N; the diagonal holds the matching pairs)
//! L = ( CE(logits, diag) + CE(logits^T, diag) ) / 2
//! ```
//!
//! `logit_scale` starts at `ln(1 / 0.07)`; the scale is clamped at 100 (as OpenCLIP clamps the
//! parameter at `ln 100` after each step; here the clamp is in the forward, so no gradient
//! pushes past it).

use crate::tensor_util::{int_column, l2_normalize};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

#[derive(Module, Debug)]
pub struct ClipLoss {
    pub logit_scale: Param<Tensor<1>>,
}

impl ClipLoss {
    pub fn new(device: &Device) -> Self {
        Self::with_scale(1.0 / 0.07, device)
    }

    pub fn with_scale(scale: f32, device: &Device) -> Self {
        Self {
            logit_scale: Param::from_tensor(Tensor::from_floats([scale.ln()], device)),
        }
    }

    /// The scale in use: `exp(logit_scale)`, at most 100.
    pub fn scale(&self) -> Tensor<1> {
        self.logit_scale.val().clamp_max(100f32.ln()).exp()
    }

    pub fn forward(&self, images: Tensor<2>, texts: Tensor<2>) -> Tensor<1> {
        let [n, _] = images.dims();
        let device = images.device();
        let logits = l2_normalize(images).matmul(l2_normalize(texts).transpose())
            * self.scale().reshape([1, 1]);
        let targets = || int_column((0..n as i64).collect(), &device);
        let image_to_text = log_softmax(logits.clone(), 1).gather(1, targets()).mean();
        let text_to_image = log_softmax(logits.transpose(), 1)
            .gather(1, targets())
            .mean();
        (image_to_text + text_to_image).mul_scalar(-0.5)
    }
}
