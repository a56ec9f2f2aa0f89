//! Metric learning from labels: the encoder and head trained with supervised contrastive loss
//! (SupCon, Khosla et al. 2020) or with a triplet loss over mined triplets (FaceNet; batch-hard
//! mining from Hermans et al. 2017). Batches should hold several items of each class: the
//! class-balanced sampler (`train.per_class`, P classes x K items) makes them.

use super::{Method, MethodConfig, Model, Parts, Views};
use crate::dist::{gather_rows, gather_u32};
use crate::encoders::{Backbone, Encoder};
use crate::error::{Error, Result};
use crate::heads::ProjectionHead;
use crate::losses::{Distance, Miner, MinerKind, SupConLoss, TripletLoss};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// `kind = "supcon"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupConConfig {
    pub temperature: f32,
}

impl Default for SupConConfig {
    fn default() -> Self {
        Self { temperature: 0.5 }
    }
}

impl MethodConfig for SupConConfig {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        super::check_temperature(self.temperature)
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let (encoder, head) = parts.encoder_and_head()?;
        Ok(Model::Supervised(self.init(encoder, head)))
    }

    fn needs_labels(&self) -> bool {
        true
    }
}

impl SupConConfig {
    pub fn init<E: Backbone>(&self, encoder: E, head: ProjectionHead) -> Supervised<E> {
        Supervised {
            encoder,
            head,
            objective: Objective::SupCon(SupConLoss::new(self.temperature)),
        }
    }
}

/// `kind = "triplet"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TripletConfig {
    /// FaceNet: 0.2 on normalised embeddings.
    pub margin: f32,
    pub miner: MinerKind,
    /// `euclidean` or `cosine` (1 - cosine similarity).
    pub distance: Distance,
    /// Use min(d(a,n), d(p,n)) as the negative distance.
    pub swap: bool,
    /// log(1 + exp(d(a,p) - d(a,n))) instead of the hinge.
    pub soft_margin: bool,
    /// L2-normalise embeddings before Euclidean distances.
    pub normalize: bool,
}

impl Default for TripletConfig {
    fn default() -> Self {
        Self {
            margin: 0.2,
            miner: MinerKind::BatchHard,
            distance: Distance::Euclidean,
            swap: false,
            soft_margin: false,
            normalize: true,
        }
    }
}

impl MethodConfig for TripletConfig {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        if !self.margin.is_finite() || self.margin < 0.0 {
            return Err(Error::config(
                "method.margin",
                "must be a non-negative number",
            ));
        }
        Ok(())
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let (encoder, head) = parts.encoder_and_head()?;
        Ok(Model::Supervised(self.init(encoder, head)))
    }

    fn needs_labels(&self) -> bool {
        true
    }
}

impl TripletConfig {
    pub fn init<E: Backbone>(&self, encoder: E, head: ProjectionHead) -> Supervised<E> {
        let loss = TripletLoss {
            margin: self.margin,
            distance: self.distance,
            swap: self.swap,
            soft_margin: self.soft_margin,
            normalize: self.normalize,
        };
        Supervised {
            encoder,
            head,
            objective: Objective::Triplet {
                loss,
                miner: self.miner.with_margin(self.margin),
            },
        }
    }
}

#[derive(Clone, Debug)]
pub enum Objective {
    SupCon(SupConLoss),
    Triplet { loss: TripletLoss, miner: Miner },
}

#[derive(Module, Debug)]
pub struct Supervised<E: Backbone = Encoder> {
    pub encoder: E,
    pub head: ProjectionHead,
    #[module(skip)]
    pub objective: Objective,
}

impl<E: Backbone> Method for Supervised<E> {
    type Backbone = E;

    fn loss(&self, batch: &Views<E::Input>) -> Tensor<1> {
        let labels = batch
            .labels
            .as_deref()
            .expect("supervised methods need labelled data (checked before training)");
        let n = batch.items();
        let views = &batch.views;
        let (x, keys) = batch.all();
        let z = self.head.forward(self.encoder.forward_rows(x, Some(&keys)));
        // Across processes: every rank's rows and labels (this rank's rows live), so that
        // positives, negatives and mined triplets come from the global batch.
        let per_view: Vec<Tensor<2>> = (0..views.len())
            .map(|v| gather_rows(z.clone().narrow(0, v * n, n)))
            .collect();
        let labels = gather_u32(labels);
        match &self.objective {
            Objective::SupCon(loss) => loss.forward(&per_view, Some(&labels)),
            Objective::Triplet { loss, miner } => {
                // Every view of every item is an embedding with its item's label.
                let all: Vec<u32> = (0..views.len())
                    .flat_map(|_| labels.iter().copied())
                    .collect();
                loss.forward(Tensor::cat(per_view, 0), &all, *miner).loss
            }
        }
    }

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn into_encoder(self) -> E {
        self.encoder
    }
}
