//! Methods: what a training step computes from a batch of views. Every method is a burn
//! [`Module`] holding its networks, trained by the one loop (`train::run_loop`) through
//! [`Trainable`].

pub mod byol;
pub mod clip;
pub mod csi;
pub mod mean_shifted;
pub mod mnrl;
pub mod moco;
pub mod moco_v3;
pub mod ncad;
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

pub use crate::encoders::Views;
use crate::encoders::{Backbone, BatchInput, Encoder, EncoderSpec};
use crate::error::{Error, Result};
use crate::heads::{ProjectionHead, ProjectionHeadSpec};
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The networks an instance method starts from, each drawn when asked for: the query encoder
/// and projection head first, then what the method asks for, in the order it asks.
pub struct Parts<'a> {
    pub encoder: &'a EncoderSpec,
    pub head: &'a ProjectionHeadSpec,
    pub in_channels: usize,
    pub device: &'a Device,
}

impl Parts<'_> {
    /// An encoder and a projection head on it, freshly initialised.
    pub fn encoder_and_head(&self) -> Result<(Encoder, ProjectionHead)> {
        let encoder = self.encoder.init(self.in_channels, self.device)?;
        let head = self.head.init(encoder.output_dim(), self.device);
        Ok((encoder, head))
    }

    /// A predictor on the projections (the head's sizes, with BatchNorm).
    pub fn predictor(&self) -> ProjectionHead {
        ProjectionHeadSpec {
            batch_norm: true,
            ..self.head.clone()
        }
        .init(self.head.output_dim, self.device)
    }
}

/// A method's settings in a recipe's `[method]` table: it checks itself and builds its model.
pub trait MethodConfig {
    fn validate(&self) -> Result<()>;
    /// The freshly initialised model (query encoder and head from `parts` first).
    fn build(&self, parts: &Parts) -> Result<Model>;
    /// Whether the method trains from labels.
    fn needs_labels(&self) -> bool {
        false
    }
    /// The size of the queue or support set the method keeps, if it keeps one.
    fn queue_size(&self) -> Option<usize> {
        None
    }
    /// Whether the method trains across processes: its loss gathers every rank's rows
    /// (`dist::gather_rows`), so that each rank computes the loss of the global batch.
    fn across_processes(&self) -> bool {
        false
    }
}

/// The `[method]` table (`kind` names the method, the other keys are its own settings, each
/// with a default), from one list: a method is its own file plus a line here and a line in
/// [`models!`].
macro_rules! method_kinds {
    ($($(#[$doc:meta])* $variant:ident = $kind:literal ($config:ty),)*) => {
        /// The `[method]` table of a recipe: `kind` names the method, the other keys are its
        /// own settings (every one with a default).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", deny_unknown_fields)]
        pub enum MethodSpec {
            $($(#[$doc])* #[serde(rename = $kind)] $variant($config),)*
        }

        impl MethodSpec {
            /// The name a recipe gives the method.
            pub fn name(&self) -> &'static str {
                match self {
                    $(MethodSpec::$variant(_) => $kind,)*
                }
            }

            fn config(&self) -> &dyn MethodConfig {
                match self {
                    $(MethodSpec::$variant(c) => c,)*
                }
            }
        }
    };
}

method_kinds! {
    /// SimCLR (NT-Xent, DCL or DCLW).
    Simclr = "simclr" (SimClrConfig),
    /// MoCo v2: momentum key encoder and a queue of negatives.
    Moco = "moco" (MoCoConfig),
    MocoV3 = "moco_v3" (MoCoV3Config),
    Nnclr = "nnclr" (NnclrConfig),
    /// Supervised contrastive learning (from labels).
    Supcon = "supcon" (SupConConfig),
    /// Triplet loss with a miner (from labels).
    Triplet = "triplet" (TripletConfig),
    /// TS2Vec on time series.
    Ts2vec = "ts2vec" (Ts2VecMethodConfig),
    Byol = "byol" (byol::ByolConfig),
    /// In-batch negatives on text pairs (sentence-transformers' MultipleNegativesRankingLoss).
    Mnrl = "mnrl" (mnrl::MnrlConfig),
    /// Unsupervised SimCSE on sentences.
    Simcse = "simcse" (mnrl::SimCseConfig),
    /// CLIP or SigLIP on images with captions (two towers).
    Clip = "clip" (clip::ClipConfig),
    /// Contrasting shifted instances (one-class anomaly detection on images).
    Csi = "csi" (csi::CsiConfig),
    /// Contextual contrast with injected anomalies (anomaly detection on sensor streams).
    Ncad = "ncad" (ncad::NcadConfig),
    /// Mean-shifted contrast from a pretrained encoder (one-class anomaly detection on images).
    MeanShifted = "mean_shifted" (mean_shifted::MeanShiftedConfig),
}

impl Default for MethodSpec {
    fn default() -> Self {
        MethodSpec::Simclr(SimClrConfig::default())
    }
}

/// The two views' rows of `z` (`[2n, d]`, the first view's `n` rows first), each with every
/// rank's rows across processes (this rank's live): the global batch's two views.
pub fn global_views(z: Tensor<2>, n: usize) -> (Tensor<2>, Tensor<2>) {
    (
        crate::dist::gather_rows(z.clone().narrow(0, 0, n)),
        crate::dist::gather_rows(z.narrow(0, n, n)),
    )
}

/// A softmax temperature: positive.
fn check_temperature(t: f32) -> Result<()> {
    if t.is_nan() || t <= 0.0 {
        return Err(Error::config("method.temperature", "must be positive"));
    }
    Ok(())
}

impl MethodSpec {
    pub fn validate(&self) -> Result<()> {
        self.config().validate()
    }

    /// Whether the method trains from labels.
    pub fn needs_labels(&self) -> bool {
        self.config().needs_labels()
    }

    /// The size of the queue or support set the method keeps, if it keeps one.
    pub fn queue_size(&self) -> Option<usize> {
        self.config().queue_size()
    }

    /// Whether the method trains across processes (its loss sees the global batch).
    pub fn across_processes(&self) -> bool {
        self.config().across_processes()
    }

    /// Whether the method trains only text encoders (in-batch negatives, SimCSE).
    pub fn text_only(&self) -> bool {
        matches!(self, MethodSpec::Mnrl(_) | MethodSpec::Simcse(_))
    }

    /// Whether the method can train a text encoder (also SupCon and triplet, from labels).
    pub fn trains_text(&self) -> bool {
        self.text_only() || matches!(self, MethodSpec::Supcon(_) | MethodSpec::Triplet(_))
    }

    /// The text method on `encoder` (the supervised ones with a projection head of `head`).
    pub fn text_model(
        &self,
        encoder: crate::encoders::bert::TextEncoder,
        head: &ProjectionHeadSpec,
        device: &Device,
    ) -> Result<TextMethod> {
        let head = || head.init(encoder.output_dim(), device);
        match self {
            MethodSpec::Mnrl(c) => Ok(TextMethod::InBatch(c.init(encoder))),
            MethodSpec::Simcse(c) => Ok(TextMethod::InBatch(c.init(encoder))),
            MethodSpec::Supcon(c) => {
                let head = head();
                Ok(TextMethod::Supervised(c.init(encoder, head)))
            }
            MethodSpec::Triplet(c) => {
                let head = head();
                Ok(TextMethod::Supervised(c.init(encoder, head)))
            }
            other => Err(Error::config(
                "method.kind",
                format!(
                    "`{}` trains image and series encoders; text trains with mnrl, simcse, supcon or triplet",
                    other.name()
                ),
            )),
        }
    }

    /// The instance method on views, freshly initialised, for inputs of `in_channels`
    /// channels.
    pub fn init(
        &self,
        encoder: &EncoderSpec,
        head: &ProjectionHeadSpec,
        in_channels: usize,
        device: &Device,
    ) -> Result<Model> {
        self.config().build(&Parts {
            encoder,
            head,
            in_channels,
            device,
        })
    }
}

/// A self-supervised method on the shared training loop.
pub trait Method: burn::module::Module + Sized {
    /// The network that maps the method's inputs to one vector per item.
    type Backbone: Backbone;

    /// The training loss for a batch of views.
    fn loss(&self, batch: &Views<<Self::Backbone as Backbone>::Input>) -> Tensor<1>;

    /// The backbone whose features are evaluated and exported.
    fn encoder(&self) -> &Self::Backbone;

    /// The backbone, taken out of the model (for fine-tuning).
    fn into_encoder(self) -> Self::Backbone;

    /// The loss's value and the parameters' gradients for a batch of views. GradCache
    /// overrides it to bound memory; the value may be non-finite (the loop stops on it).
    fn gradients(
        &self,
        batch: &Views<<Self::Backbone as Backbone>::Input>,
    ) -> (f32, GradientsParams) {
        plain_gradients(self, batch)
    }

    /// Called after each optimizer step (momentum encoders update here).
    fn after_step(self, _global_step: u64, _total_steps: u64) -> Self {
        self
    }
}

/// The loss's value and the gradients of one backward pass through the whole batch.
pub fn plain_gradients<M: Method>(
    model: &M,
    batch: &Views<<M::Backbone as Backbone>::Input>,
) -> (f32, GradientsParams) {
    let loss = model.loss(batch);
    let value: f32 = loss.clone().into_scalar();
    if !value.is_finite() {
        return (value, GradientsParams::new());
    }
    (value, GradientsParams::from_grads(loss.backward(), model))
}

/// What the one training loop trains: a module whose loss comes from a batch of the loader's
/// views. Every image [`Method`] is one; other kinds of data bring their own batch type.
pub trait Trainable: burn::module::Module + Sized {
    type Batch: Send + 'static;
    /// Views in a batch (every view of every item), for the throughput figure.
    fn views_in(batch: &Self::Batch) -> u64;
    fn batch_loss(&self, batch: Self::Batch, device: &Device) -> Tensor<1>;
    /// The loss's value and the parameters' gradients for a batch (the value may be
    /// non-finite: the loop stops on it).
    fn batch_gradients(&self, batch: Self::Batch, device: &Device) -> (f32, GradientsParams) {
        let loss = self.batch_loss(batch, device);
        let value: f32 = loss.clone().into_scalar();
        if !value.is_finite() {
            return (value, GradientsParams::new());
        }
        (value, GradientsParams::from_grads(loss.backward(), self))
    }
    /// After each optimizer step (momentum encoders update here).
    fn after_optimizer_step(self, global_step: u64, total_steps: u64) -> Self;
}

impl<M: Method> Trainable for M {
    type Batch = <<M::Backbone as Backbone>::Input as BatchInput>::Host;

    fn views_in(batch: &Self::Batch) -> u64 {
        <<M::Backbone as Backbone>::Input as BatchInput>::views_in(batch)
    }

    fn batch_loss(&self, batch: Self::Batch, device: &Device) -> Tensor<1> {
        self.loss(&<M::Backbone as Backbone>::Input::upload(batch, device))
    }

    fn batch_gradients(&self, batch: Self::Batch, device: &Device) -> (f32, GradientsParams) {
        self.gradients(&<M::Backbone as Backbone>::Input::upload(batch, device))
    }

    fn after_optimizer_step(self, global_step: u64, total_steps: u64) -> Self {
        self.after_step(global_step, total_steps)
    }
}

/// The model of every instance method, from one list (see [`method_kinds!`]).
macro_rules! models {
    ($($variant:ident($model:ty),)*) => {
        /// Any instance method a recipe can name.
        #[derive(Module, Debug)]
        #[allow(clippy::large_enum_variant)] // one model per run
        pub enum Model {
            $($variant($model),)*
        }

        impl Method for Model {
            type Backbone = Encoder;

            fn loss(&self, batch: &Views) -> Tensor<1> {
                match self {
                    $(Model::$variant(m) => m.loss(batch),)*
                }
            }

            fn encoder(&self) -> &Encoder {
                match self {
                    $(Model::$variant(m) => m.encoder(),)*
                }
            }

            fn into_encoder(self) -> Encoder {
                match self {
                    $(Model::$variant(m) => m.into_encoder(),)*
                }
            }

            fn after_step(self, global_step: u64, total_steps: u64) -> Self {
                match self {
                    $(Model::$variant(m) => Model::$variant(m.after_step(global_step, total_steps)),)*
                }
            }
        }
    };
}

models! {
    SimClr(SimClr),
    MoCo(MoCo),
    MoCoV3(MoCoV3),
    Nnclr(Nnclr),
    Supervised(Supervised),
    Byol(byol::Byol),
    Csi(csi::Csi),
    Ncad(ncad::Ncad),
    MeanShifted(mean_shifted::MeanShifted),
}

/// Any method a text recipe can name: in-batch negatives (MNRL, SimCSE) or, from labels,
/// SupCon and triplet.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one model per run
pub enum TextMethod {
    InBatch(mnrl::TextModel),
    Supervised(Supervised<crate::encoders::bert::TextEncoder>),
}

impl TextMethod {
    /// Whether its views are each sentence twice (SimCSE and the supervised methods) rather
    /// than a pair's columns.
    pub fn same_sentence(&self) -> bool {
        match self {
            TextMethod::InBatch(m) => m.same_sentence,
            TextMethod::Supervised(_) => true,
        }
    }
}

impl Method for TextMethod {
    type Backbone = crate::encoders::bert::TextEncoder;

    fn loss(&self, batch: &Views<crate::encoders::bert::Tokens>) -> Tensor<1> {
        match self {
            TextMethod::InBatch(m) => m.loss(batch),
            TextMethod::Supervised(m) => m.loss(batch),
        }
    }

    fn gradients(&self, batch: &Views<crate::encoders::bert::Tokens>) -> (f32, GradientsParams) {
        match self {
            // GradCache's own path; the result holds this model's parameter ids (shared).
            TextMethod::InBatch(m) => m.gradients(batch),
            TextMethod::Supervised(_) => plain_gradients(self, batch),
        }
    }

    fn encoder(&self) -> &crate::encoders::bert::TextEncoder {
        match self {
            TextMethod::InBatch(m) => m.encoder(),
            TextMethod::Supervised(m) => m.encoder(),
        }
    }

    fn into_encoder(self) -> crate::encoders::bert::TextEncoder {
        match self {
            TextMethod::InBatch(m) => m.into_encoder(),
            TextMethod::Supervised(m) => m.into_encoder(),
        }
    }
}
