//! CLIP (Radford et al. 2021): an image tower and a text tower, each with a linear
//! projection to a shared dimension, trained so that an image and its caption meet and
//! mismatched pairs of the batch part, with CLIP's symmetric cross-entropy ([`ClipLoss`]) or
//! SigLIP's pairwise sigmoid ([`SigLipLoss`]). Either tower may be frozen (LiT, Zhai et al.
//! 2022: a pretrained tower kept as it is); a frozen tower's outputs come cached in the batch,
//! so the frozen network never runs in the loop. After each optimizer step the learnable
//! scale is clamped as OpenCLIP clamps it.

use super::{MethodConfig, Model, Parts, Trainable};
use crate::augment::captions::{CaptionBatch, Side};
use crate::encoders::bert::{TextEncoder, Tokens};
use crate::encoders::{Backbone, BatchInput, Encoder};
use crate::error::{Error, Result};
use crate::losses::{ClipLoss, SigLipLoss};
use crate::rng::RowKeys;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which contrastive loss pairs images with captions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipObjective {
    /// Symmetric cross-entropy over the batch (CLIP).
    #[default]
    Clip,
    /// Independent sigmoid per pair, with a learnable bias (SigLIP).
    Siglip,
}

/// `kind = "clip"` in a recipe's `[method]` table; the image tower is `[encoder]`, the text
/// tower `[text]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClipConfig {
    pub loss: ClipObjective,
    /// The shared dimension both projections map to.
    pub dim: usize,
    /// Keep the image tower as it starts (from `image_init`).
    pub freeze_image: bool,
    /// Keep the text tower as it starts (pretrained, from `[text]`).
    pub freeze_text: bool,
    /// A contra model file whose encoder starts the image tower (a self-supervised run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_init: Option<PathBuf>,
}

impl Default for ClipConfig {
    fn default() -> Self {
        Self {
            loss: ClipObjective::Clip,
            dim: 128,
            freeze_image: false,
            freeze_text: false,
            image_init: None,
        }
    }
}

impl MethodConfig for ClipConfig {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        if self.dim == 0 {
            return Err(Error::config("method.dim", "must be at least 1"));
        }
        if self.freeze_image && self.image_init.is_none() {
            return Err(Error::config(
                "method.freeze_image",
                "a frozen image tower needs method.image_init (a contra model file to start from)",
            ));
        }
        Ok(())
    }

    fn build(&self, _: &Parts) -> Result<Model> {
        Err(Error::config(
            "method.kind",
            "`clip` trains on images with captions (data.source = \"captions\", \"emoji\" or \"class-captions\")",
        ))
    }
}

/// The loss with its learnable scale (and SigLIP's bias).
#[derive(Module, Debug)]
pub enum ImageTextLoss {
    Clip(ClipLoss),
    Siglip(SigLipLoss),
}

impl ImageTextLoss {
    pub fn new(objective: ClipObjective, device: &Device) -> Self {
        match objective {
            ClipObjective::Clip => Self::Clip(ClipLoss::new(device)),
            ClipObjective::Siglip => Self::Siglip(SigLipLoss::new(device)),
        }
    }

    pub fn forward(&self, images: Tensor<2>, texts: Tensor<2>) -> Tensor<1> {
        match self {
            Self::Clip(l) => l.forward(images, texts),
            Self::Siglip(l) => l.forward(images, texts),
        }
    }

    /// The scale clamped to `[1, 100]` (after each optimizer step).
    pub fn clamp(self) -> Self {
        match self {
            Self::Clip(l) => Self::Clip(l.clamp()),
            Self::Siglip(l) => Self::Siglip(l.clamp()),
        }
    }

    /// The scale in use.
    pub fn scale(&self) -> f32 {
        let log = match self {
            Self::Clip(l) => l.logit_scale.val(),
            Self::Siglip(l) => l.logit_scale.val(),
        };
        log.exp().into_scalar()
    }
}

/// Two towers and their projections into one space.
#[derive(Module, Debug)]
pub struct Clip {
    pub image: Encoder,
    pub image_projection: Linear,
    pub text: TextEncoder,
    pub text_projection: Linear,
    pub loss: ImageTextLoss,
}

impl Clip {
    /// The model on two towers, projections drawn afresh (draw inside `seeding::try_seeded`
    /// for a seeded start).
    pub fn new(config: &ClipConfig, image: Encoder, text: TextEncoder, device: &Device) -> Self {
        Self {
            image_projection: projection(image.output_dim(), config.dim, device),
            text_projection: projection(text.bert.hidden_size(), config.dim, device),
            image,
            text,
            loss: ImageTextLoss::new(config.loss, device),
        }
    }

    /// Texts in the shared space (unnormalised).
    pub fn embed_texts(&self, tokens: &Tokens) -> Tensor<2> {
        self.text_projection.forward(self.text.embed(tokens, None))
    }
}

/// CLIP's image tower as evaluation and fine-tuning see it: the image encoder and its
/// projection, L2-normalised (the model's image embedding, as OpenCLIP's `encode_image`).
#[derive(Module, Debug)]
pub struct ImageTower {
    pub encoder: Encoder,
    pub projection: Linear,
}

impl ImageTower {
    /// A freshly drawn tower (draw inside `seeding::try_seeded` for a seeded start).
    pub fn new(encoder: Encoder, dim: usize, device: &Device) -> Self {
        Self {
            projection: projection(encoder.output_dim(), dim, device),
            encoder,
        }
    }
}

impl Backbone for ImageTower {
    type Input = Tensor<4>;

    fn forward_rows(&self, x: Tensor<4>, keys: Option<&RowKeys>) -> Tensor<2> {
        crate::tensor_util::l2_normalize(
            self.projection.forward(self.encoder.forward_rows(x, keys)),
        )
    }

    fn output_dim(&self) -> usize {
        self.projection.weight.dims()[1]
    }
}

/// A tower's linear projection into the shared space (no bias, as OpenCLIP's).
fn projection(input: usize, dim: usize, device: &Device) -> Linear {
    LinearConfig::new(input, dim).with_bias(false).init(device)
}

impl Clip {
    /// A copy of the image tower with its projection (inference), the text tower left out.
    pub fn image_tower(&self) -> ImageTower {
        ImageTower {
            encoder: self.image.clone(),
            projection: self.image_projection.clone(),
        }
    }

    /// The image tower with its projection (evaluation, fine-tuning).
    pub fn into_image_tower(self) -> ImageTower {
        ImageTower {
            encoder: self.image,
            projection: self.image_projection,
        }
    }
}

fn cached(data: Vec<f32>, dim: usize, device: &Device) -> Tensor<2> {
    let rows = data.len() / dim.max(1);
    Tensor::from_data(TensorData::new(data, [rows, dim]), device)
}

impl Trainable for Clip {
    type Batch = CaptionBatch;

    fn views_in(batch: &CaptionBatch) -> u64 {
        batch.indices.len() as u64
    }

    fn batch_loss(&self, batch: CaptionBatch, device: &Device) -> Tensor<1> {
        let image_features = match batch.images {
            Side::Inputs(views) => {
                let mut views = Tensor::<4>::upload(views, device);
                let keys = views.keys.remove(0);
                self.image.forward_rows(views.views.remove(0), Some(&keys))
            }
            Side::Cached { data, dim } => cached(data, dim, device),
        };
        let text_features = match batch.texts {
            Side::Inputs(tokens) => {
                let keys = RowKeys::view(batch.seed, batch.epoch, &batch.indices, 1);
                self.text.embed(&Tokens::new(&tokens, device), Some(&keys))
            }
            Side::Cached { data, dim } => cached(data, dim, device),
        };
        // Across processes: every rank's pairs (this rank's live), so that the negatives are
        // the global batch's.
        self.loss.forward(
            crate::dist::gather_rows(self.image_projection.forward(image_features)),
            crate::dist::gather_rows(self.text_projection.forward(text_features)),
        )
    }

    fn after_optimizer_step(self, _: u64, _: u64) -> Self {
        Self {
            loss: self.loss.clamp(),
            ..self
        }
    }
}
