//! SimCLR (Chen et al. 2020): two augmented views, a shared encoder and projection head, and
//! a contrastive loss between the two projections: NT-Xent, or the decoupled DCL / DCLW
//! (Yeh et al. 2022), which drop the positive from the denominator.

use super::Method;
use crate::encoders::Encoder;
use crate::heads::ProjectionHead;
use crate::losses::{DclLoss, NtXentLoss};
use burn::prelude::*;

/// The loss between the two views' projections.
#[derive(Clone, Debug)]
pub enum PairObjective {
    NtXent(NtXentLoss),
    Dcl(DclLoss),
}

impl PairObjective {
    pub fn forward(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        match self {
            PairObjective::NtXent(l) => l.forward(z_a, z_b),
            PairObjective::Dcl(l) => l.forward(z_a, z_b),
        }
    }
}

#[derive(Module, Debug)]
pub struct SimClr {
    pub encoder: Encoder,
    pub head: ProjectionHead,
    #[module(skip)]
    pub objective: PairObjective,
}

impl SimClr {
    /// SimCLR with NT-Xent at `temperature`.
    pub fn new(encoder: Encoder, head: ProjectionHead, temperature: f32) -> Self {
        Self::with_objective(
            encoder,
            head,
            PairObjective::NtXent(NtXentLoss::new(temperature)),
        )
    }

    pub fn with_objective(
        encoder: Encoder,
        head: ProjectionHead,
        objective: PairObjective,
    ) -> Self {
        Self {
            encoder,
            head,
            objective,
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
        self.objective.forward(z_a, z_b)
    }

    fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}
