//! SimCLR (Chen et al. 2020): two augmented views, a shared encoder and projection head, and
//! the NT-Xent loss between the two projections.

use super::Method;
use crate::encoders::Encoder;
use crate::heads::ProjectionHead;
use crate::losses::NtXentLoss;
use burn::prelude::*;

#[derive(Module, Debug)]
pub struct SimClr {
    pub encoder: Encoder,
    pub head: ProjectionHead,
    pub temperature: f32,
}

impl SimClr {
    pub fn new(encoder: Encoder, head: ProjectionHead, temperature: f32) -> Self {
        Self {
            encoder,
            head,
            temperature,
        }
    }

    /// Project a batch of images: `[b, c, h, w]` to `[b, out]`.
    pub fn project(&self, x: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.encoder.forward(x))
    }
}

impl Method for SimClr {
    fn loss(&self, views: &[Tensor<4>], _labels: Option<&[u32]>) -> Tensor<1> {
        assert!(views.len() == 2, "SimCLR takes two views");
        // Both views go through the network as one batch: one pass, and BatchNorm statistics
        // over all 2N images.
        let n = views[0].dims()[0];
        let z = self.project(Tensor::cat(views.to_vec(), 0));
        let z_a = z.clone().narrow(0, 0, n);
        let z_b = z.narrow(0, n, n);
        NtXentLoss::new(self.temperature).forward(z_a, z_b)
    }

    fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}
