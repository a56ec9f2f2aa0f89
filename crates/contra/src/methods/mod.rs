//! Methods: what a training step computes from a batch of views. Every method is a burn
//! [`Module`](burn::module::Module) holding its networks, trained by the one loop in
//! [`crate::train`].

pub mod simclr;
pub use simclr::SimClr;

use crate::encoders::Encoder;
use burn::prelude::*;

/// A self-supervised method on the shared training loop.
pub trait Method: burn::module::Module + Sized {
    /// The training loss for a batch of views, each `[batch, channels, height, width]`.
    fn loss(&self, views: &[Tensor<4>]) -> Tensor<1>;

    /// The backbone whose features are evaluated and exported.
    fn encoder(&self) -> &Encoder;

    /// Called after each optimizer step (momentum encoders update here).
    fn after_step(self, _global_step: u64, _total_steps: u64) -> Self {
        self
    }
}
