//! BYOL: Grill et al. (2020), "Bootstrap Your Own Latent: A New Approach to Self-Supervised
//! Learning".
//!
//! No negatives. An online network (encoder, projector, predictor) predicts, for each view,
//! the target network's projection of the other view; the target network (encoder and
//! projector) is an exponential moving average of the online one and receives no gradient.
//! With `p1, p2` the online predictions and `z1', z2'` the target projections of the two
//! views, the loss is lightly's symmetric negative cosine similarity,
//!
//! ```text
//! L = -( mean cos(p1, z2') + mean cos(p2, z1') ) / 2
//! ```
//!
//! (the paper's `2 - 2 cos` up to a constant and a factor of 2). The target momentum rises
//! from `momentum` to 1 on a cosine schedule over training, as in the paper and lightly. The
//! target networks are a fresh initialisation with the online weights copied in, never a
//! module clone (which would share parameter ids).

use super::moco::{MomentumSchedule, check_momentum, ema, key_copy, momentum_at};
use super::{Method, MethodConfig, Model, Parts, Views, global_views};
use crate::encoders::{Backbone, Encoder};
use crate::error::Result;
use crate::heads::ProjectionHead;
use crate::tensor_util::l2_normalize;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// `kind = "byol"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ByolConfig {
    /// Target-network momentum at the start.
    pub momentum: f64,
    pub momentum_schedule: MomentumSchedule,
}

impl Default for ByolConfig {
    fn default() -> Self {
        Self {
            momentum: 0.99,
            momentum_schedule: MomentumSchedule::Cosine,
        }
    }
}

impl MethodConfig for ByolConfig {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        check_momentum(self.momentum)
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let (encoder, head) = parts.encoder_and_head()?;
        let predictor = parts.predictor();
        let (target_encoder, target_head) = parts.encoder_and_head()?;
        Ok(Model::Byol(Byol {
            target_encoder: key_copy(target_encoder, &encoder),
            target_head: key_copy(target_head, &head),
            encoder,
            head,
            predictor,
            momentum: self.momentum,
            cosine_momentum: self.momentum_schedule == MomentumSchedule::Cosine,
        }))
    }
}

#[derive(Module, Debug)]
pub struct Byol<E: Backbone = Encoder> {
    pub encoder: E,
    pub head: ProjectionHead,
    pub predictor: ProjectionHead,
    pub target_encoder: E,
    pub target_head: ProjectionHead,
    pub momentum: f64,
    pub cosine_momentum: bool,
}

/// The mean cosine similarity of matching rows.
fn mean_cosine(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    (l2_normalize(a) * l2_normalize(b)).sum_dim(1).mean()
}

impl<E: Backbone> Method for Byol<E> {
    type Backbone = E;

    fn loss(&self, batch: &Views<E::Input>) -> Tensor<1> {
        assert!(batch.views.len() == 2, "BYOL takes two views");
        let n = batch.items();
        let (x, keys) = batch.all();
        let p = self.predictor.forward(
            self.head
                .forward(self.encoder.forward_rows(x.clone(), Some(&keys))),
        );
        let z = self
            .target_head
            .forward(self.target_encoder.forward_rows(x, Some(&keys.network(1))))
            .detach();
        // Across processes: the mean over every rank's items (this rank's predictions live).
        let (p1, p2) = global_views(p, n);
        let (z1, z2) = global_views(z, n);
        (mean_cosine(p1, z2) + mean_cosine(p2, z1)).mul_scalar(-0.5)
    }

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn into_encoder(self) -> E {
        self.encoder
    }

    fn after_step(self, global_step: u64, total_steps: u64) -> Self {
        let m = momentum_at(
            self.momentum,
            self.cosine_momentum,
            global_step,
            total_steps,
        );
        Self {
            target_encoder: ema(self.target_encoder, &self.encoder, m),
            target_head: ema(self.target_head, &self.head, m),
            ..self
        }
    }
}
