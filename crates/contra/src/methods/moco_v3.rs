//! MoCo v3: Chen, Xie and He (2021), "An Empirical Study of Training Self-Supervised Vision
//! Transformers".
//!
//! No queue: both views pass through the query encoder, projector and a predictor, and through
//! the momentum (EMA) key encoder and projector; each query is contrasted with the keys of the
//! other view in the batch, symmetrically:
//!
//! ```text
//! L = ctr(q1, k2) + ctr(q2, k1),   ctr(q, k) = 2t * CE( q k^T / t, diag )
//! ```
//!
//! on L2-normalised vectors, temperature `t` (paper: 0.2 for ResNet, 0.1 for ViT), key momentum
//! 0.99 rising to 1 on a cosine schedule. The key networks are built by a fresh initialisation
//! plus a weight copy and receive no gradient.

use super::moco::{MomentumSchedule, check_momentum, ema, key_copy, momentum_at};
use super::{Method, MethodConfig, Model, Parts, Views, global_views};
use crate::encoders::{Backbone, Encoder};
use crate::error::Result;
use crate::heads::ProjectionHead;
use crate::losses::{InfoNceLoss, Negatives};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// `kind = "moco_v3"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MoCoV3Config {
    pub temperature: f32,
    /// Key-encoder momentum.
    pub momentum: f64,
    pub momentum_schedule: MomentumSchedule,
}

impl Default for MoCoV3Config {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            momentum: 0.999,
            momentum_schedule: MomentumSchedule::Constant,
        }
    }
}

impl MethodConfig for MoCoV3Config {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        super::check_temperature(self.temperature)?;
        check_momentum(self.momentum)
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let (encoder, head) = parts.encoder_and_head()?;
        let predictor = parts.predictor();
        let (key_encoder, key_head) = parts.encoder_and_head()?;
        Ok(Model::MoCoV3(self.init(
            encoder,
            head,
            predictor,
            key_encoder,
            key_head,
        )))
    }
}

impl MoCoV3Config {
    /// `predictor` and `fresh_key_*` are separate initialisations (in that order, after the
    /// query networks).
    pub fn init<E: Backbone>(
        &self,
        encoder: E,
        head: ProjectionHead,
        predictor: ProjectionHead,
        fresh_key_encoder: E,
        fresh_key_head: ProjectionHead,
    ) -> MoCoV3<E> {
        MoCoV3::new(
            encoder,
            head,
            predictor,
            fresh_key_encoder,
            fresh_key_head,
            self.temperature,
            self.momentum,
            self.momentum_schedule == MomentumSchedule::Cosine,
        )
    }
}

#[derive(Module, Debug)]
pub struct MoCoV3<E: Backbone = Encoder> {
    pub encoder: E,
    pub head: ProjectionHead,
    pub predictor: ProjectionHead,
    pub key_encoder: E,
    pub key_head: ProjectionHead,
    pub temperature: f32,
    pub momentum: f64,
    pub cosine_momentum: bool,
}

impl<E: Backbone> MoCoV3<E> {
    /// `fresh_key_*` must be a separate initialisation of the same architecture.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        encoder: E,
        head: ProjectionHead,
        predictor: ProjectionHead,
        fresh_key_encoder: E,
        fresh_key_head: ProjectionHead,
        temperature: f32,
        momentum: f64,
        cosine_momentum: bool,
    ) -> Self {
        let key_encoder = key_copy(fresh_key_encoder, &encoder);
        let key_head = key_copy(fresh_key_head, &head);
        Self {
            encoder,
            head,
            predictor,
            key_encoder,
            key_head,
            temperature,
            momentum,
            cosine_momentum,
        }
    }

    pub fn momentum_at(&self, step: u64, total: u64) -> f64 {
        momentum_at(self.momentum, self.cosine_momentum, step, total)
    }
}

impl<E: Backbone> Method for MoCoV3<E> {
    type Backbone = E;

    fn loss(&self, batch: &Views<E::Input>) -> Tensor<1> {
        assert!(batch.views.len() == 2, "MoCo v3 takes two views");
        let n = batch.items();
        let (x, keys) = batch.all();
        let q = self.predictor.forward(
            self.head
                .forward(self.encoder.forward_rows(x.clone(), Some(&keys))),
        );
        let k = self
            .key_head
            .forward(self.key_encoder.forward_rows(x, Some(&keys.network(1))))
            .detach();
        let ctr = InfoNceLoss::new(self.temperature);
        // Across processes: every rank's rows (this rank's queries live).
        let (q1, q2) = global_views(q, n);
        let (k1, k2) = global_views(k, n);
        let loss =
            ctr.forward(q1, k2, &Negatives::InBatch) + ctr.forward(q2, k1, &Negatives::InBatch);
        loss.mul_scalar(2.0 * self.temperature)
    }

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn into_encoder(self) -> E {
        self.encoder
    }

    fn after_step(self, global_step: u64, total_steps: u64) -> Self {
        let m = self.momentum_at(global_step, total_steps);
        let key_encoder = ema(self.key_encoder, &self.encoder, m);
        let key_head = ema(self.key_head, &self.head, m);
        Self {
            key_encoder,
            key_head,
            ..self
        }
    }
}
