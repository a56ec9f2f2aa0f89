//! Sentence embeddings by in-batch negatives ([`MnrlLoss`]): from pairs (anchor, positive,
//! optional hard negative; `kind = "mnrl"`, sentence-transformers'
//! MultipleNegativesRankingLoss), or from single sentences passed twice through dropout
//! (`kind = "simcse"`, unsupervised SimCSE). No projection head: the loss is on the sentence
//! embeddings, as sentence-transformers trains them.
//!
//! GradCache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
//! Limited Setup"; sentence-transformers' CachedMultipleNegativesRankingLoss): with
//! `mini_batch` set, a batch of any size trains in the memory of one mini-batch. Every
//! mini-batch is embedded without keeping its graph; the loss's gradient with respect to the
//! embeddings is taken on the whole batch; then each mini-batch is embedded again with its
//! graph and the same dropout masks (keyed by the rows), and `sum(embeddings x gradient)` is
//! backpropagated. The parameters' gradients equal the plain loss's.

use super::{Method, MethodConfig, Model, Parts, Views};
use crate::encoders::BatchInput;
use crate::encoders::bert::{TextEncoder, Tokens};
use crate::error::{Error, Result};
use crate::losses::MnrlLoss;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// `kind = "mnrl"` in a recipe's `[method]` table: pairs, optionally with hard negatives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MnrlConfig {
    /// Cosine similarities are multiplied by this (20: a temperature of 0.05).
    pub scale: f32,
    /// Also rank the anchors for each positive.
    pub symmetric: bool,
    /// GradCache's mini-batch (0: the plain loss, the whole batch in memory at once).
    pub mini_batch: usize,
}

impl Default for MnrlConfig {
    fn default() -> Self {
        Self {
            scale: 20.0,
            symmetric: false,
            mini_batch: 0,
        }
    }
}

/// `kind = "simcse"`: unsupervised SimCSE, each sentence its own positive under another
/// dropout mask.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimCseConfig {
    pub scale: f32,
    pub mini_batch: usize,
}

impl Default for SimCseConfig {
    fn default() -> Self {
        Self {
            scale: 20.0,
            mini_batch: 0,
        }
    }
}

fn check_scale(scale: f32) -> Result<()> {
    if scale.is_nan() || scale <= 0.0 {
        return Err(Error::config("method.scale", "must be positive"));
    }
    Ok(())
}

fn text_only(kind: &str) -> Error {
    Error::config(
        "method.kind",
        format!("`{kind}` trains text encoders; the data source is not text"),
    )
}

impl MethodConfig for MnrlConfig {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        check_scale(self.scale)
    }
    fn build(&self, _: &Parts) -> Result<Model> {
        Err(text_only("mnrl"))
    }
}

impl MethodConfig for SimCseConfig {
    fn across_processes(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        check_scale(self.scale)
    }
    fn build(&self, _: &Parts) -> Result<Model> {
        Err(text_only("simcse"))
    }
}

impl MnrlConfig {
    pub fn init(&self, encoder: TextEncoder) -> TextModel {
        TextModel {
            encoder,
            loss: MnrlLoss::new(self.scale, self.symmetric),
            mini_batch: self.mini_batch,
            same_sentence: false,
        }
    }
}

impl SimCseConfig {
    pub fn init(&self, encoder: TextEncoder) -> TextModel {
        TextModel {
            encoder,
            loss: MnrlLoss::new(self.scale, false),
            mini_batch: self.mini_batch,
            same_sentence: true,
        }
    }
}

/// A sentence encoder trained with in-batch negatives.
#[derive(Module, Debug)]
pub struct TextModel {
    pub encoder: TextEncoder,
    #[module(skip)]
    pub loss: MnrlLoss,
    /// GradCache's mini-batch (0: off).
    pub mini_batch: usize,
    /// SimCSE: both views are the same sentence.
    pub same_sentence: bool,
}

impl TextModel {
    /// The loss on the views' embeddings: anchors, positives and optional hard negatives.
    fn objective(&self, embedded: Vec<Tensor<2>>) -> Tensor<1> {
        // Across processes: every rank's rows of each view, this rank's live, so that the
        // negatives are the global batch's (GradCache then takes this rank's rows' gradient).
        let mut embedded: Vec<Tensor<2>> =
            embedded.into_iter().map(crate::dist::gather_rows).collect();
        assert!(
            (2..=3).contains(&embedded.len()),
            "in-batch negatives take two or three views"
        );
        let negatives = (embedded.len() == 3).then(|| embedded.pop().expect("three"));
        let positives = embedded.pop().expect("two");
        let anchors = embedded.pop().expect("one");
        self.loss.forward(anchors, positives, negatives)
    }

    /// GradCache: the plain loss's value and gradients, one mini-batch in memory at a time.
    fn cached_gradients(&self, batch: &Views<Tokens>) -> (f32, GradientsParams) {
        let m = self.mini_batch;
        let chunks = |n: usize| (0..n).step_by(m).map(move |s| (s, m.min(n - s)));
        // 1. Every view's embeddings, mini-batch by mini-batch, off autodiff (no graph is
        // recorded: burn frees a recorded one only at the next backward) with the masks the
        // rows' keys give.
        let frozen = self.encoder.valid();
        let leaves: Vec<Tensor<2>> = batch
            .views
            .iter()
            .zip(&batch.keys)
            .map(|(tokens, keys)| {
                let device = tokens.ids.device();
                let inner = device.clone().inner();
                let parts: Vec<Tensor<2>> = chunks(tokens.items())
                    .map(|(s, len)| {
                        let rows = tokens.rows(s, len).trimmed().to_device(&inner);
                        frozen.embed(&rows, Some(&keys.slice(s, len)))
                    })
                    .collect();
                Tensor::<2>::from_data(Tensor::cat(parts, 0).into_data(), &device).require_grad()
            })
            .collect();
        // 2. The loss and its gradient with respect to the embeddings.
        let loss = self.objective(leaves.clone());
        let value: f32 = loss.clone().into_scalar();
        if !value.is_finite() {
            return (value, GradientsParams::new());
        }
        let grads = loss.backward();
        // 3. Each mini-batch again, with its graph and the same masks: backpropagate
        // sum(embeddings x their gradient) and add up the parameters' gradients.
        let mut total = GradientsAccumulator::<TextModel>::new();
        for ((tokens, keys), leaf) in batch.views.iter().zip(&batch.keys).zip(&leaves) {
            let device = tokens.ids.device();
            let grad = leaf.grad(&grads).expect("the loss depends on every view");
            for (s, len) in chunks(tokens.items()) {
                let e = self
                    .encoder
                    .embed(&tokens.rows(s, len).trimmed(), Some(&keys.slice(s, len)));
                let g = Tensor::<2>::from_data(grad.clone().narrow(0, s, len).into_data(), &device);
                let surrogate = (e * g).sum();
                total.accumulate(
                    self,
                    GradientsParams::from_grads(surrogate.backward(), self),
                );
            }
        }
        (value, total.grads())
    }
}

impl Method for TextModel {
    type Backbone = TextEncoder;

    fn loss(&self, batch: &Views<Tokens>) -> Tensor<1> {
        let embedded = batch
            .views
            .iter()
            .zip(&batch.keys)
            .map(|(tokens, keys)| self.encoder.embed(tokens, Some(keys)))
            .collect();
        self.objective(embedded)
    }

    fn gradients(&self, batch: &Views<Tokens>) -> (f32, GradientsParams) {
        if self.mini_batch > 0 && batch.items() > self.mini_batch {
            return self.cached_gradients(batch);
        }
        super::plain_gradients(self, batch)
    }

    fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    fn into_encoder(self) -> TextEncoder {
        self.encoder
    }
}
