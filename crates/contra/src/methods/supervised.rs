//! Metric learning from labels: the encoder and head trained with supervised contrastive loss
//! (SupCon, Khosla et al. 2020) or with a triplet loss over mined triplets (FaceNet; batch-hard
//! mining from Hermans et al. 2017). Batches should hold several items of each class: the
//! class-balanced sampler (`train.per_class`, P classes x K items) makes them.

use super::Method;
use crate::encoders::Encoder;
use crate::heads::ProjectionHead;
use crate::losses::{Miner, SupConLoss, TripletLoss};
use burn::prelude::*;

#[derive(Clone, Debug)]
pub enum Objective {
    SupCon(SupConLoss),
    Triplet { loss: TripletLoss, miner: Miner },
}

#[derive(Module, Debug)]
pub struct Supervised {
    pub encoder: Encoder,
    pub head: ProjectionHead,
    #[module(skip)]
    pub objective: Objective,
}

impl Method for Supervised {
    fn loss(&self, views: &[Tensor<4>], labels: Option<&[u32]>) -> Tensor<1> {
        let labels =
            labels.expect("supervised methods need labelled data (checked before training)");
        let n = views[0].dims()[0];
        let z = self
            .head
            .forward(self.encoder.forward(Tensor::cat(views.to_vec(), 0)));
        match &self.objective {
            Objective::SupCon(loss) => {
                let per_view: Vec<Tensor<2>> = (0..views.len())
                    .map(|v| z.clone().narrow(0, v * n, n))
                    .collect();
                loss.forward(&per_view, Some(labels))
            }
            Objective::Triplet { loss, miner } => {
                // Every view of every item is an embedding with its item's label.
                let all: Vec<u32> = (0..views.len())
                    .flat_map(|_| labels.iter().copied())
                    .collect();
                loss.forward(z, &all, *miner).loss
            }
        }
    }

    fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}
