//! Methods: what a training step computes from a batch of views. Every method is a burn
//! [`Module`] holding its networks, trained by the one loop in
//! [`crate::train`].

pub mod moco;
pub mod moco_v3;
pub mod nnclr;
pub mod simclr;
pub mod supervised;
pub mod ts2vec;
pub use moco::{MoCo, MoCoConfig, MomentumSchedule};
pub use moco_v3::{MoCoV3, MoCoV3Config};
pub use nnclr::{Nnclr, NnclrConfig};
pub use simclr::{PairLoss, PairObjective, SimClr, SimClrConfig};
pub use supervised::{Objective, SupConConfig, Supervised, TripletConfig};
pub use ts2vec::Ts2VecMethodConfig;

use crate::augment::loader::ViewBatch;
use crate::encoders::{Encoder, EncoderSpec};
use crate::error::{Error, Result};
use crate::heads::ProjectionHeadSpec;
use crate::rng::RowKeys;
use crate::tensor_util::tensor4;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The `[method]` table of a recipe: `kind` names the method, the other keys are its own
/// settings (every one with a default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MethodSpec {
    /// SimCLR (NT-Xent, DCL or DCLW).
    Simclr(SimClrConfig),
    /// MoCo v2: momentum key encoder and a queue of negatives.
    Moco(MoCoConfig),
    MocoV3(MoCoV3Config),
    Nnclr(NnclrConfig),
    /// Supervised contrastive learning (from labels).
    Supcon(SupConConfig),
    /// Triplet loss with a miner (from labels).
    Triplet(TripletConfig),
    /// TS2Vec on time series.
    Ts2vec(Ts2VecMethodConfig),
}

impl Default for MethodSpec {
    fn default() -> Self {
        MethodSpec::Simclr(SimClrConfig::default())
    }
}

/// A softmax temperature: positive.
fn check_temperature(t: f32) -> Result<()> {
    if t.is_nan() || t <= 0.0 {
        return Err(Error::config("method.temperature", "must be positive"));
    }
    Ok(())
}

impl MethodSpec {
    /// The name a recipe gives the method.
    pub fn name(&self) -> &'static str {
        match self {
            MethodSpec::Simclr(_) => "simclr",
            MethodSpec::Moco(_) => "moco",
            MethodSpec::MocoV3(_) => "moco_v3",
            MethodSpec::Nnclr(_) => "nnclr",
            MethodSpec::Supcon(_) => "supcon",
            MethodSpec::Triplet(_) => "triplet",
            MethodSpec::Ts2vec(_) => "ts2vec",
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            MethodSpec::Simclr(c) => c.validate(),
            MethodSpec::Moco(c) => c.validate(),
            MethodSpec::MocoV3(c) => c.validate(),
            MethodSpec::Nnclr(c) => c.validate(),
            MethodSpec::Supcon(c) => c.validate(),
            MethodSpec::Triplet(c) => c.validate(),
            MethodSpec::Ts2vec(c) => c.validate(),
        }
    }

    /// Whether the method trains from labels.
    pub fn needs_labels(&self) -> bool {
        matches!(self, MethodSpec::Supcon(_) | MethodSpec::Triplet(_))
    }

    /// The size of the queue or support set the method keeps, if it keeps one.
    pub fn queue_size(&self) -> Option<usize> {
        match self {
            MethodSpec::Moco(c) => Some(c.queue_size),
            MethodSpec::Nnclr(c) => Some(c.queue_size),
            _ => None,
        }
    }

    /// The instance method on views, freshly initialised, for inputs of `in_channels`
    /// channels. Random draws come in a fixed order: the query encoder and head, then each
    /// method's own networks and state.
    pub fn init(
        &self,
        encoder: &EncoderSpec,
        head: &ProjectionHeadSpec,
        in_channels: usize,
        device: &Device,
    ) -> Result<Model> {
        let query = encoder.init(in_channels, device)?;
        let query_head = head.init(query.output_dim(), device);
        // Momentum methods: a second, independent initialisation for the key networks.
        let fresh_keys = || -> Result<_> {
            let key_encoder = encoder.init(in_channels, device)?;
            let key_head = head.init(key_encoder.output_dim(), device);
            Ok((key_encoder, key_head))
        };
        // Predictors map projections to projections, with BatchNorm.
        let predictor = || {
            ProjectionHeadSpec {
                batch_norm: true,
                ..head.clone()
            }
            .init(head.output_dim, device)
        };
        Ok(match self {
            MethodSpec::Simclr(c) => Model::SimClr(c.init(query, query_head)),
            MethodSpec::Moco(c) => {
                let (key_encoder, key_head) = fresh_keys()?;
                Model::MoCo(c.init(query, query_head, key_encoder, key_head, device))
            }
            MethodSpec::MocoV3(c) => {
                let predictor = predictor();
                let (key_encoder, key_head) = fresh_keys()?;
                Model::MoCoV3(c.init(query, query_head, predictor, key_encoder, key_head))
            }
            MethodSpec::Nnclr(c) => Model::Nnclr(c.init(query, query_head, predictor(), device)),
            MethodSpec::Supcon(c) => Model::Supervised(c.init(query, query_head)),
            MethodSpec::Triplet(c) => Model::Supervised(c.init(query, query_head)),
            MethodSpec::Ts2vec(_) => {
                return Err(Error::config(
                    "method.kind",
                    "ts2vec trains on time series with its own crops, not on views",
                ));
            }
        })
    }
}

/// Several views of a batch of items, as a method receives them.
pub struct Views {
    /// One tensor per view, `[items, channels, height, width]`.
    pub views: Vec<Tensor<4>>,
    /// The items' labels, where the data have them (supervised methods need them).
    pub labels: Option<Vec<u32>>,
    /// The rows of each view: random masks inside the networks follow them.
    pub keys: Vec<RowKeys>,
}

impl Views {
    /// Views of the items `0..n`, drawn in epoch 0 of seed 0 (for tests and benchmarks).
    pub fn new(views: Vec<Tensor<4>>, labels: Option<Vec<u32>>) -> Self {
        let items: Vec<usize> = (0..views.first().map_or(0, |v| v.dims()[0])).collect();
        let keys = (0..views.len())
            .map(|v| RowKeys::view(0, 0, &items, v))
            .collect();
        Self {
            views,
            labels,
            keys,
        }
    }

    /// Items in the batch.
    pub fn items(&self) -> usize {
        self.views.first().map_or(0, |v| v.dims()[0])
    }

    /// Every view as one batch (one pass through a network, BatchNorm statistics over all
    /// views), with its rows.
    pub fn all(&self) -> (Tensor<4>, RowKeys) {
        (Tensor::cat(self.views.clone(), 0), RowKeys::cat(&self.keys))
    }
}

/// A self-supervised method on the shared training loop.
pub trait Method: burn::module::Module + Sized {
    /// The training loss for a batch of views.
    fn loss(&self, batch: &Views) -> Tensor<1>;

    /// The backbone whose features are evaluated and exported.
    fn encoder(&self) -> &Encoder;

    /// Called after each optimizer step (momentum encoders update here).
    fn after_step(self, _global_step: u64, _total_steps: u64) -> Self {
        self
    }
}

/// What the one training loop trains: a module whose loss comes from a batch of the loader's
/// views. Every image [`Method`] is one; other kinds of data bring their own batch type.
pub trait Trainable: burn::module::Module + Sized {
    type Batch: Send + 'static;
    /// Views in a batch (every view of every item), for the throughput figure.
    fn views_in(batch: &Self::Batch) -> u64;
    fn batch_loss(&self, batch: Self::Batch, device: &Device) -> Tensor<1>;
    /// After each optimizer step (momentum encoders update here).
    fn after_optimizer_step(self, global_step: u64, total_steps: u64) -> Self;
}

impl<M: Method> Trainable for M {
    type Batch = ViewBatch;

    fn views_in(batch: &ViewBatch) -> u64 {
        (batch.views.len() * batch.len()) as u64
    }

    fn batch_loss(&self, batch: ViewBatch, device: &Device) -> Tensor<1> {
        let shape = batch.shape();
        let keys = (0..batch.views.len())
            .map(|v| RowKeys::view(batch.seed, batch.epoch, &batch.indices, v))
            .collect();
        let views = batch
            .views
            .into_iter()
            .map(|v| tensor4(v, shape, device))
            .collect();
        self.loss(&Views {
            views,
            labels: batch.labels,
            keys,
        })
    }

    fn after_optimizer_step(self, global_step: u64, total_steps: u64) -> Self {
        self.after_step(global_step, total_steps)
    }
}

/// Any method a recipe can name.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one model per run
pub enum Model {
    SimClr(SimClr),
    MoCo(MoCo),
    MoCoV3(MoCoV3),
    Nnclr(Nnclr),
    Supervised(Supervised),
}

impl Model {
    /// The backbone, taken out of the model (for fine-tuning).
    pub fn into_encoder(self) -> Encoder {
        match self {
            Model::SimClr(m) => m.encoder,
            Model::MoCo(m) => m.encoder,
            Model::MoCoV3(m) => m.encoder,
            Model::Nnclr(m) => m.encoder,
            Model::Supervised(m) => m.encoder,
        }
    }
}

impl Method for Model {
    fn loss(&self, batch: &Views) -> Tensor<1> {
        match self {
            Model::SimClr(m) => m.loss(batch),
            Model::MoCo(m) => m.loss(batch),
            Model::MoCoV3(m) => m.loss(batch),
            Model::Nnclr(m) => m.loss(batch),
            Model::Supervised(m) => m.loss(batch),
        }
    }

    fn encoder(&self) -> &Encoder {
        match self {
            Model::SimClr(m) => m.encoder(),
            Model::MoCo(m) => m.encoder(),
            Model::MoCoV3(m) => m.encoder(),
            Model::Nnclr(m) => m.encoder(),
            Model::Supervised(m) => m.encoder(),
        }
    }

    fn after_step(self, global_step: u64, total_steps: u64) -> Self {
        match self {
            Model::SimClr(m) => Model::SimClr(m.after_step(global_step, total_steps)),
            Model::MoCo(m) => Model::MoCo(m.after_step(global_step, total_steps)),
            Model::MoCoV3(m) => Model::MoCoV3(m.after_step(global_step, total_steps)),
            Model::Nnclr(m) => Model::Nnclr(m.after_step(global_step, total_steps)),
            Model::Supervised(m) => Model::Supervised(m.after_step(global_step, total_steps)),
        }
    }
}
