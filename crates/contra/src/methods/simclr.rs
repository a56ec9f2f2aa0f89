//! SimCLR (Chen et al. 2020): two augmented views, a shared encoder and projection head, and
//! a contrastive loss between the two projections: NT-Xent, or the decoupled DCL / DCLW
//! (Yeh et al. 2022), which drop the positive from the denominator.

use super::{Method, MethodConfig, Model, Parts, Views};
use crate::encoders::{Backbone, Encoder};
use crate::error::{Error, Result};
use crate::heads::ProjectionHead;
use crate::losses::{DclLoss, NtXentLoss};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// `kind = "simclr"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimClrConfig {
    pub temperature: f32,
    /// `nt_xent`, or the decoupled `dcl` or `dclw` (positive left out of the denominator).
    pub loss: PairLoss,
    /// DCLW: width of the von Mises-Fisher weighting of positives.
    pub dclw_sigma: f32,
}

impl Default for SimClrConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            loss: PairLoss::NtXent,
            dclw_sigma: 0.5,
        }
    }
}

/// The contrastive loss SimCLR puts between its two views.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairLoss {
    #[default]
    NtXent,
    Dcl,
    Dclw,
}

impl MethodConfig for SimClrConfig {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        super::check_temperature(self.temperature)?;
        if self.dclw_sigma.is_nan() || self.dclw_sigma <= 0.0 {
            return Err(Error::config("method.dclw_sigma", "must be positive"));
        }
        Ok(())
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let (encoder, head) = parts.encoder_and_head()?;
        Ok(Model::SimClr(self.init(encoder, head)))
    }
}

impl SimClrConfig {
    pub fn init<E: Backbone>(&self, encoder: E, head: ProjectionHead) -> SimClr<E> {
        let t = self.temperature;
        let objective = match self.loss {
            PairLoss::NtXent => PairObjective::NtXent(NtXentLoss::new(t)),
            PairLoss::Dcl => PairObjective::Dcl(DclLoss::dcl(t)),
            PairLoss::Dclw => PairObjective::Dcl(DclLoss::dclw(t, self.dclw_sigma)),
        };
        SimClr::with_objective(encoder, head, objective)
    }
}

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
pub struct SimClr<E: Backbone = Encoder> {
    pub encoder: E,
    pub head: ProjectionHead,
    #[module(skip)]
    pub objective: PairObjective,
}

impl<E: Backbone> SimClr<E> {
    /// SimCLR with NT-Xent at `temperature`.
    pub fn new(encoder: E, head: ProjectionHead, temperature: f32) -> Self {
        Self::with_objective(
            encoder,
            head,
            PairObjective::NtXent(NtXentLoss::new(temperature)),
        )
    }

    pub fn with_objective(encoder: E, head: ProjectionHead, objective: PairObjective) -> Self {
        Self {
            encoder,
            head,
            objective,
        }
    }

    /// Project a batch of images: `[b, c, h, w]` to `[b, out]`.
    /// Project a batch of inputs to `[b, out]` (inference; no row keys).
    pub fn project(&self, x: E::Input) -> Tensor<2> {
        self.head.forward(self.encoder.forward_rows(x, None))
    }
}

impl<E: Backbone> Method for SimClr<E> {
    type Backbone = E;

    fn loss(&self, batch: &Views<E::Input>) -> Tensor<1> {
        assert!(batch.views.len() == 2, "SimCLR takes two views");
        // Both views go through the network as one batch: one pass, and BatchNorm statistics
        // over all 2N images.
        let n = batch.items();
        let (x, keys) = batch.all();
        let z = self.head.forward(self.encoder.forward_rows(x, Some(&keys)));
        // Across processes: every rank's rows, this rank's live (global negatives).
        let (z_a, z_b) = super::global_views(z, n);
        self.objective.forward(z_a, z_b)
    }

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn into_encoder(self) -> E {
        self.encoder
    }
}
