//! MoCo v2: He et al. (2020), "Momentum Contrast for Unsupervised Visual Representation
//! Learning"; Chen et al. (2020), "Improved Baselines with Momentum Contrastive Learning".
//!
//! A query encoder and head are trained; a key encoder and head follow them as an exponential
//! moving average, `theta_k <- m * theta_k + (1 - m) * theta_q` after every optimizer step
//! (m = 0.999, optionally rising to 1 on a cosine schedule), and receive no gradient. Queries
//! of the first view are contrasted (InfoNCE, temperature 0.2) with the keys of the second view
//! as positives and a FIFO queue of past keys (65,536 in the paper) as negatives; each step's
//! keys enter the queue after the loss.
//!
//! The key encoder is a fresh initialisation with the query weights copied in, never a module
//! clone (which in burn would share parameter ids and BatchNorm state). Its BatchNorm statistics
//! come from its own forward passes, as in MoCo. The queue is module state, so checkpoints carry
//! it and a resumed run continues with the same negatives.

use super::{Method, MethodConfig, Model, Parts, Views};
use crate::dist::gather_rows;
use crate::encoders::{Backbone, Encoder};
use crate::error::{Error, Result};
use crate::heads::ProjectionHead;
use crate::losses::{InfoNceLoss, Negatives};
use crate::tensor_util::l2_normalize;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, RunningState};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `kind = "moco"` (MoCo v2) in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MoCoConfig {
    pub temperature: f32,
    /// Past keys kept as negatives.
    pub queue_size: usize,
    /// Key-encoder momentum.
    pub momentum: f64,
    pub momentum_schedule: MomentumSchedule,
}

impl Default for MoCoConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            queue_size: 65_536,
            momentum: 0.999,
            momentum_schedule: MomentumSchedule::Constant,
        }
    }
}

/// How the key-encoder momentum moves over training: `constant`, or `cosine` to raise it to
/// 1 by the last step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MomentumSchedule {
    #[default]
    Constant,
    Cosine,
}

/// A momentum in [0, 1].
pub(super) fn check_momentum(momentum: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::config("method.momentum", "must be in [0, 1]"));
    }
    Ok(())
}

impl MethodConfig for MoCoConfig {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        super::check_temperature(self.temperature)?;
        check_momentum(self.momentum)?;
        if self.queue_size == 0 {
            return Err(Error::config("method.queue_size", "must be at least 1"));
        }
        Ok(())
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let (encoder, head) = parts.encoder_and_head()?;
        // A second, independent initialisation for the key networks.
        let (key_encoder, key_head) = parts.encoder_and_head()?;
        Ok(Model::MoCo(self.init(
            encoder,
            head,
            key_encoder,
            key_head,
            parts.device,
        )))
    }

    fn queue_size(&self) -> Option<usize> {
        Some(self.queue_size)
    }
}

impl MoCoConfig {
    /// MoCo from its query networks and a separate initialisation of the key networks; the
    /// queue starts as random unit vectors of the head's width.
    pub fn init<E: Backbone>(
        &self,
        encoder: E,
        head: ProjectionHead,
        fresh_key_encoder: E,
        fresh_key_head: ProjectionHead,
        device: &Device,
    ) -> MoCo<E> {
        let queue = Tensor::random(
            [self.queue_size, head.output_dim()],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        );
        MoCo::new(
            encoder,
            head,
            fresh_key_encoder,
            fresh_key_head,
            queue,
            self.temperature,
            self.momentum,
            self.momentum_schedule == MomentumSchedule::Cosine,
        )
    }
}

#[derive(Module, Debug)]
pub struct MoCo<E: Backbone = Encoder> {
    pub encoder: E,
    pub head: ProjectionHead,
    pub key_encoder: E,
    pub key_head: ProjectionHead,
    /// `[K, D]` past keys, newest first.
    pub queue: RunningState<Tensor<2>>,
    pub temperature: f32,
    pub momentum: f64,
    /// Raise the momentum to 1 on a cosine schedule over training.
    pub cosine_momentum: bool,
}

/// Collects the trainable tensors of a module by path (BatchNorm statistics left out).
struct Collect {
    path: Vec<String>,
    out: HashMap<String, Tensor<1>>,
}

fn is_statistic(path: &[String]) -> bool {
    path.last().is_some_and(|p| p.starts_with("running_"))
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _c: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _n: &str, _c: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !is_statistic(&self.path) {
            let t = param.val().inner().detach();
            let n = t.shape().num_elements();
            self.out.insert(self.path.join("."), t.reshape([n]));
        }
    }
}

/// `key <- m * key + (1 - m) * query` for every parameter of the same path.
struct Ema<'a> {
    path: Vec<String>,
    query: &'a HashMap<String, Tensor<1>>,
    momentum: f64,
}

impl ModuleMapper for Ema<'_> {
    fn enter_module(&mut self, name: &str, _c: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _n: &str, _c: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if is_statistic(&self.path) {
            return param;
        }
        let (id, key, mapper) = param.consume();
        let q = self
            .query
            .get(&self.path.join("."))
            .expect("query and key modules have the same structure");
        let shape = key.dims();
        let updated = key.inner().mul_scalar(self.momentum)
            + q.clone().reshape(shape).mul_scalar(1.0 - self.momentum);
        Param::from_mapped_value(id, Tensor::from_inner(updated), mapper)
    }
}

/// A key network from a fresh initialisation: the query weights copied in, gradients off.
pub(crate) fn key_copy<M: Module>(fresh: M, query: &M) -> M {
    ema(fresh, query, 0.0).no_grad()
}

/// The key momentum at `step` of `total`: `base`, or with `cosine` rising from `base` to 1
/// as `1 - (1 - base) * (1 + cos(pi * step / total)) / 2`.
pub(crate) fn momentum_at(base: f64, cosine: bool, step: u64, total: u64) -> f64 {
    if !cosine || total == 0 {
        return base;
    }
    let progress = (step as f64 / total as f64).min(1.0);
    1.0 - (1.0 - base) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// A FIFO queue `[K, D]` (newest first) after `entries` `[B, D]` enter it and the oldest
/// leave; detached.
pub(crate) fn enqueue(queue: Tensor<2>, entries: Tensor<2>) -> Tensor<2> {
    let [size, _] = queue.dims();
    let b = entries.dims()[0].min(size);
    let kept = queue.narrow(0, 0, size - b);
    Tensor::cat(vec![entries.narrow(0, 0, b), kept], 0).detach()
}

/// The key module after one EMA step towards the query module (BatchNorm statistics untouched).
pub(crate) fn ema<M: Module>(key: M, query: &M, momentum: f64) -> M {
    let mut c = Collect {
        path: Vec::new(),
        out: HashMap::new(),
    };
    query.visit(&mut c);
    key.map(&mut Ema {
        path: Vec::new(),
        query: &c.out,
        momentum,
    })
}

impl<E: Backbone> MoCo<E> {
    /// `fresh_key_*` must be a separate initialisation of the same architecture; the query
    /// weights are copied into it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        encoder: E,
        head: ProjectionHead,
        fresh_key_encoder: E,
        fresh_key_head: ProjectionHead,
        queue: Tensor<2>,
        temperature: f32,
        momentum: f64,
        cosine_momentum: bool,
    ) -> Self {
        let key_encoder = key_copy(fresh_key_encoder, &encoder);
        let key_head = key_copy(fresh_key_head, &head);
        Self {
            encoder,
            head,
            key_encoder,
            key_head,
            queue: RunningState::new(l2_normalize(queue)),
            temperature,
            momentum,
            cosine_momentum,
        }
    }

    /// The momentum at `step` of `total`.
    pub fn momentum_at(&self, step: u64, total: u64) -> f64 {
        momentum_at(self.momentum, self.cosine_momentum, step, total)
    }

    /// Apply one EMA step to the key networks.
    pub fn update_keys(self, momentum: f64) -> Self {
        let key_encoder = ema(self.key_encoder, &self.encoder, momentum);
        let key_head = ema(self.key_head, &self.head, momentum);
        Self {
            key_encoder,
            key_head,
            ..self
        }
    }
}

impl<E: Backbone> Method for MoCo<E> {
    type Backbone = E;

    fn loss(&self, batch: &Views<E::Input>) -> Tensor<1> {
        let (views, keys) = (&batch.views, &batch.keys);
        assert!(views.len() == 2, "MoCo takes two views");
        let q = self
            .head
            .forward(self.encoder.forward_rows(views[0].clone(), Some(&keys[0])));
        let k = self
            .key_head
            .forward(
                self.key_encoder
                    .forward_rows(views[1].clone(), Some(&keys[1].network(1))),
            )
            .detach();
        // Across processes: every rank's queries (this rank's live) and keys, so that the
        // queue receives the keys of the global batch.
        let (q, k) = (gather_rows(q), gather_rows(k));
        let queue = self.queue.value_sync();
        let loss = InfoNceLoss::new(self.temperature).forward(
            q,
            k.clone(),
            &Negatives::Bank(queue.clone()),
        );
        self.queue.update(enqueue(queue, l2_normalize(k)));
        loss
    }

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn into_encoder(self) -> E {
        self.encoder
    }

    fn after_step(self, global_step: u64, total_steps: u64) -> Self {
        let m = self.momentum_at(global_step, total_steps);
        self.update_keys(m)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cosine_momentum_rises_from_base_to_one() {
        let m = |step| super::momentum_at(0.99, true, step, 100);
        assert!((m(0) - 0.99).abs() < 1e-12);
        assert!((m(50) - 0.995).abs() < 1e-12);
        assert!((m(100) - 1.0).abs() < 1e-12);
        assert_eq!(super::momentum_at(0.99, false, 50, 100), 0.99);
    }
}
