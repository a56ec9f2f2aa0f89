//! NNCLR: Dwibedi et al. (2021), "With a Little Help from My Friends: Nearest-Neighbor
//! Contrastive Learning of Visual Representations".
//!
//! SimCLR's two views, but the positive of a view is not the other view's projection: it is
//! the nearest neighbour (cosine) of the view's projection in a support set, a FIFO queue of
//! past projections. With projections `z`, predictions `p = predictor(z)` and `NN(z)` the
//! support entry nearest to `z` (no gradient):
//!
//! ```text
//! L = ( NT-Xent(NN(z_a), p_b) + NT-Xent(NN(z_b), p_a) ) / 2
//! ```
//!
//! after which the second view's projections enter the support set (as lightly does). The
//! paper uses a support set of 98,304, temperature 0.1 and a predictor MLP. The support set is
//! module state, so checkpoints carry it and a resumed run continues with the same neighbours.

use super::moco::enqueue;
use super::{Method, MethodConfig, Model, Parts, Views, global_views};
use crate::encoders::{Backbone, Encoder};
use crate::error::{Error, Result};
use crate::heads::ProjectionHead;
use crate::losses::NtXentLoss;
use crate::tensor_util::l2_normalize;
use burn::module::RunningState;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// `kind = "nnclr"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NnclrConfig {
    pub temperature: f32,
    /// Size of the support set.
    pub queue_size: usize,
}

impl Default for NnclrConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            queue_size: 65_536,
        }
    }
}

impl MethodConfig for NnclrConfig {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        super::check_temperature(self.temperature)?;
        if self.queue_size == 0 {
            return Err(Error::config("method.queue_size", "must be at least 1"));
        }
        Ok(())
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let (encoder, head) = parts.encoder_and_head()?;
        let predictor = parts.predictor();
        Ok(Model::Nnclr(self.init(
            encoder,
            head,
            predictor,
            parts.device,
        )))
    }

    fn queue_size(&self) -> Option<usize> {
        Some(self.queue_size)
    }
}

impl NnclrConfig {
    /// NNCLR with its predictor (a separate initialisation); the support set starts as
    /// random unit vectors of the head's width.
    pub fn init<E: Backbone>(
        &self,
        encoder: E,
        head: ProjectionHead,
        predictor: ProjectionHead,
        device: &Device,
    ) -> Nnclr<E> {
        let support = Tensor::random(
            [self.queue_size, head.output_dim()],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        );
        Nnclr::new(encoder, head, predictor, support, self.temperature)
    }
}

#[derive(Module, Debug)]
pub struct Nnclr<E: Backbone = Encoder> {
    pub encoder: E,
    pub head: ProjectionHead,
    pub predictor: ProjectionHead,
    /// `[K, D]` past projections, L2-normalised, newest first.
    pub support: RunningState<Tensor<2>>,
    pub temperature: f32,
}

impl<E: Backbone> Nnclr<E> {
    /// `support`: the initial support set `[K, D]` (random vectors; it fills with projections
    /// as training goes).
    pub fn new(
        encoder: E,
        head: ProjectionHead,
        predictor: ProjectionHead,
        support: Tensor<2>,
        temperature: f32,
    ) -> Self {
        Self {
            encoder,
            head,
            predictor,
            support: RunningState::new(l2_normalize(support)),
            temperature,
        }
    }

    /// For each row of `z` `[B, D]`, the support entry of highest cosine similarity `[B, D]`,
    /// detached.
    pub fn nearest(&self, z: Tensor<2>) -> Tensor<2> {
        let support = self.support.value_sync();
        nearest_in(&support, z)
    }
}

fn nearest_in(support: &Tensor<2>, z: Tensor<2>) -> Tensor<2> {
    let b = z.dims()[0];
    let similarity = l2_normalize(z.detach()).matmul(support.clone().transpose());
    let index = similarity.argmax(1).reshape([b]);
    support.clone().select(0, index).detach()
}

impl<E: Backbone> Method for Nnclr<E> {
    type Backbone = E;

    fn loss(&self, batch: &Views<E::Input>) -> Tensor<1> {
        assert!(batch.views.len() == 2, "NNCLR takes two views");
        let n = batch.items();
        let (x, keys) = batch.all();
        let z = self.head.forward(self.encoder.forward_rows(x, Some(&keys)));
        let p = self.predictor.forward(z.clone());
        // Across processes: every rank's rows (this rank's live); the support set receives
        // the global batch.
        let (z_a, z_b) = global_views(z, n);
        let (p_a, p_b) = global_views(p, n);
        let support = self.support.value_sync();
        let nn_a = nearest_in(&support, z_a);
        let nn_b = nearest_in(&support, z_b.clone());
        let ntx = NtXentLoss::new(self.temperature);
        let loss = (ntx.forward(nn_a, p_b) + ntx.forward(nn_b, p_a)).mul_scalar(0.5);
        self.support
            .update(enqueue(support, l2_normalize(z_b.detach())));
        loss
    }

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn into_encoder(self) -> E {
        self.encoder
    }
}
