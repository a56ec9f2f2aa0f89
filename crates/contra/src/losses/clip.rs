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
//! `logit_scale` starts at `ln(1 / 0.07)`. As OpenCLIP trains it, the forward uses the
//! parameter as it is, and [`ClipLoss::clamp`] sets it to at most `ln 100` after each
//! optimizer step: a clamp inside the forward would zero its gradient for good once the scale
//! passed 100. Neither it nor SigLIP's scale and bias takes weight decay (see
//! [`LOSS_PARAMETERS`]).

use crate::tensor_util::{int_column, l2_normalize};

/// The largest scale training keeps (OpenCLIP's clamp).
pub const MAX_LOGIT_SCALE: f32 = 100.0;

/// Names of the loss parameters that never take weight decay (the learnable temperature and
/// bias of CLIP and SigLIP), as OpenCLIP excludes them.
pub const LOSS_PARAMETERS: [&str; 2] = ["logit_scale", "logit_bias"];

/// A log-scale parameter clamped to `[0, ln 100]` as OpenCLIP clamps it after each step, off
/// the graph and keeping its id (so the optimizer's state stays attached).
pub fn clamp_log_scale(param: Param<Tensor<1>>) -> Param<Tensor<1>> {
    param.map(|t| {
        let grad = t.is_require_grad();
        let t = Tensor::from_inner(t.inner().clamp(0.0, MAX_LOGIT_SCALE.ln()));
        if grad { t.require_grad() } else { t }
    })
}
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

    /// The scale in use: `exp(logit_scale)`.
    pub fn scale(&self) -> Tensor<1> {
        self.logit_scale.val().exp()
    }

    /// The loss with `logit_scale` clamped to `[0, ln 100]`: called after each optimizer
    /// step, as OpenCLIP does.
    pub fn clamp(self) -> Self {
        Self {
            logit_scale: clamp_log_scale(self.logit_scale),
        }
    }

    pub fn forward(&self, images: Tensor<2>, texts: Tensor<2>) -> Tensor<1> {
        let [n, _] = images.dims();
        let device = images.device();
        // Across processes the loss is the global batch's on every rank: the scale's
        // gradient is counted on rank 0 only.
        let logits = l2_normalize(images).matmul(l2_normalize(texts).transpose())
            * crate::dist::counted_once(self.scale()).reshape([1, 1]);
        let targets = || int_column((0..n as i64).collect(), &device);
        let image_to_text = log_softmax(logits.clone(), 1).gather(1, targets()).mean();
        let text_to_image = log_softmax(logits.transpose(), 1)
            .gather(1, targets())
            .mean();
        (image_to_text + text_to_image).mul_scalar(-0.5)
    }
}
