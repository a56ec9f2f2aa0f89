//! Methods: what a training step computes from a batch of views. Every method is a burn
//! [`Module`](burn::module::Module) holding its networks, trained by the one loop in
//! [`crate::train`].

pub mod moco;
pub mod moco_v3;
pub mod nnclr;
pub mod simclr;
pub mod supervised;
pub mod ts2vec;
pub use moco::MoCo;
pub use moco_v3::MoCoV3;
pub use nnclr::Nnclr;
pub use simclr::{PairObjective, SimClr};
pub use supervised::{Objective, Supervised};

use crate::encoders::Encoder;
use burn::prelude::*;

/// A self-supervised method on the shared training loop.
pub trait Method: burn::module::Module + Sized {
    /// The training loss for a batch of views, each `[batch, channels, height, width]`, with
    /// the items' labels where the data have them (supervised methods need them).
    fn loss(&self, views: &[Tensor<4>], labels: Option<&[u32]>) -> Tensor<1>;

    /// The backbone whose features are evaluated and exported.
    fn encoder(&self) -> &Encoder;

    /// Called after each optimizer step (momentum encoders update here).
    fn after_step(self, _global_step: u64, _total_steps: u64) -> Self {
        self
    }
}

/// Any method a recipe can name.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one model per run
pub enum Model {
    SimClr(SimClr),
    MoCo(MoCo),
    MoCoV3(MoCoV3),
    Nnclr(Nnclr),
    Supervised(Supervised),
}

impl Model {
    /// The backbone, taken out of the model (for fine-tuning).
    pub fn into_encoder(self) -> Encoder {
        match self {
            Model::SimClr(m) => m.encoder,
            Model::MoCo(m) => m.encoder,
            Model::MoCoV3(m) => m.encoder,
            Model::Nnclr(m) => m.encoder,
            Model::Supervised(m) => m.encoder,
        }
    }
}

impl Method for Model {
    fn loss(&self, views: &[Tensor<4>], labels: Option<&[u32]>) -> Tensor<1> {
        match self {
            Model::SimClr(m) => m.loss(views, labels),
            Model::MoCo(m) => m.loss(views, labels),
            Model::MoCoV3(m) => m.loss(views, labels),
            Model::Nnclr(m) => m.loss(views, labels),
            Model::Supervised(m) => m.loss(views, labels),
        }
    }

    fn encoder(&self) -> &Encoder {
        match self {
            Model::SimClr(m) => m.encoder(),
            Model::MoCo(m) => m.encoder(),
            Model::MoCoV3(m) => m.encoder(),
            Model::Nnclr(m) => m.encoder(),
            Model::Supervised(m) => m.encoder(),
        }
    }

    fn after_step(self, global_step: u64, total_steps: u64) -> Self {
        match self {
            Model::SimClr(m) => Model::SimClr(m.after_step(global_step, total_steps)),
            Model::MoCo(m) => Model::MoCo(m.after_step(global_step, total_steps)),
            Model::MoCoV3(m) => Model::MoCoV3(m.after_step(global_step, total_steps)),
            Model::Nnclr(m) => Model::Nnclr(m.after_step(global_step, total_steps)),
            Model::Supervised(m) => Model::Supervised(m.after_step(global_step, total_steps)),
        }
    }
}
