//! Encoders (backbones): images (or series) in, one feature vector per item out.

pub mod bert;
pub mod dropout;
pub mod resnet;
pub mod sentence;
pub mod small_cnn;
pub mod ts2vec;

use crate::augment::loader::ViewBatch;
use crate::error::{Error, Result};
use crate::rng::RowKeys;
use crate::tensor_util::tensor4;
use burn::prelude::*;
pub use resnet::{ResNet, ResNetConfig, Stem};
use serde::{Deserialize, Serialize};
pub use small_cnn::{SmallCnn, SmallCnnConfig};

/// `module` with every BatchNorm normalising by its running statistics, in training too, and
/// leaving them as they are; its scale and shift still train (burn's training flag off, the
/// parameters untouched: what PyTorch's `eval()` does to BatchNorm).
pub fn fix_batch_norm<M: burn::module::Module>(module: M) -> M {
    struct Fix;
    impl burn::module::ModuleMapper for Fix {
        fn map_flag(
            &mut self,
            flag: burn::module::Param<burn::module::Flag>,
        ) -> burn::module::Param<burn::module::Flag> {
            flag.with_value(false)
        }
    }
    module.map(&mut Fix)
}

/// Global average pooling: `[b, c, h, w]` to `[b, c]`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
}

/// Inputs of a backbone that batch: views of the same items concatenated along the items.
/// Images and series are `[items, channels, height, width]` tensors; text brings token batches.
pub trait BatchInput: Clone + Send + 'static {
    /// What the loader makes on the host for a batch of views of these inputs.
    type Host: Send + 'static;
    /// The host batch on `device`, with its labels and row keys.
    fn upload(batch: Self::Host, device: &Device) -> Views<Self>;
    /// Views in a host batch (every view of every item), for the throughput figure.
    fn views_in(batch: &Self::Host) -> u64;
    /// One input of several items on the host (what fine-tuning and prediction batch).
    type Rows: Send + 'static;
    /// Host rows on `device`.
    fn upload_rows(rows: Self::Rows, device: &Device) -> Self;
    fn cat(parts: Vec<Self>) -> Self;
    fn items(&self) -> usize;
}

impl BatchInput for Tensor<4> {
    type Host = ViewBatch;
    /// Values and their shape `[items, channels, height, width]`.
    type Rows = (Vec<f32>, [usize; 4]);

    fn upload_rows((values, shape): Self::Rows, device: &Device) -> Self {
        tensor4(values, shape, device)
    }

    fn upload(batch: ViewBatch, device: &Device) -> Views {
        let shape = batch.shape();
        let keys = (0..batch.views.len())
            .map(|v| RowKeys::view(batch.seed, batch.epoch, &batch.indices, v))
            .collect();
        let views = batch
            .views
            .into_iter()
            .map(|v| tensor4(v, shape, device))
            .collect();
        Views {
            views,
            labels: batch.labels,
            keys,
        }
    }

    fn views_in(batch: &ViewBatch) -> u64 {
        (batch.views.len() * batch.len()) as u64
    }

    fn cat(parts: Vec<Self>) -> Self {
        Tensor::cat(parts, 0)
    }

    fn items(&self) -> usize {
        self.dims()[0]
    }
}

/// A backbone: one vector per item of its input. Every instance method is generic over it.
pub trait Backbone: Module + burn::module::ModuleDisplay {
    type Input: BatchInput;
    /// One vector per item; in training, `keys` name the rows (random masks follow them).
    fn forward_rows(&self, x: Self::Input, keys: Option<&RowKeys>) -> Tensor<2>;
    fn output_dim(&self) -> usize;
}

impl Backbone for Encoder {
    type Input = Tensor<4>;

    fn forward_rows(&self, x: Tensor<4>, keys: Option<&RowKeys>) -> Tensor<2> {
        Encoder::forward_rows(self, x, keys)
    }

    fn output_dim(&self) -> usize {
        Encoder::output_dim(self)
    }
}

/// Several views of a batch of items, as a method receives them.
pub struct Views<X = Tensor<4>> {
    /// One input per view, each holding every item.
    pub views: Vec<X>,
    /// The items' labels, where the data have them (supervised methods need them).
    pub labels: Option<Vec<u32>>,
    /// The rows of each view: random masks inside the networks follow them.
    pub keys: Vec<RowKeys>,
}

impl<X: BatchInput> Views<X> {
    /// Views of the items `0..n`, drawn in epoch 0 of seed 0 (for tests and benchmarks).
    pub fn new(views: Vec<X>, labels: Option<Vec<u32>>) -> Self {
        let items: Vec<usize> = (0..views.first().map_or(0, X::items)).collect();
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
        self.views.first().map_or(0, X::items)
    }

    /// Every view as one batch (one pass through a network, BatchNorm statistics over all
    /// views), with its rows.
    pub fn all(&self) -> (X, RowKeys) {
        (X::cat(self.views.clone()), RowKeys::cat(&self.keys))
    }
}

/// An encoder chosen by a recipe.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one encoder per model: size does not matter
pub enum Encoder {
    SmallCnn(SmallCnn),
    ResNet(ResNet),
    /// Series for the instance methods (SimCLR, MoCo, ...): views arrive as `[b, channels,
    /// 1, steps]`, NaN where a value is missing.
    Ts2Vec(ts2vec::Ts2VecEncoder),
}

impl Encoder {
    /// One vector per item, for inference.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_rows(x, None)
    }

    /// One vector per item; in training, `keys` name the rows (random masks follow them).
    pub fn forward_rows(&self, x: Tensor<4>, keys: Option<&RowKeys>) -> Tensor<2> {
        match self {
            Encoder::SmallCnn(e) => e.forward(x),
            Encoder::ResNet(e) => e.forward(x),
            Encoder::Ts2Vec(e) => {
                let [b, c, _, t] = x.dims();
                let x = x.reshape([b, c, t]).swap_dims(1, 2);
                // A step with a missing value in any channel is masked, as in TS2Vec.
                let missing = x.clone().is_nan();
                let keep = missing.clone().any_dim(2).bool_not().float();
                e.embed(x.mask_fill(missing, 0.0), keep, keys)
            }
        }
    }

    pub fn output_dim(&self) -> usize {
        match self {
            Encoder::SmallCnn(e) => e.output_dim(),
            Encoder::ResNet(e) => e.output_dim(),
            Encoder::Ts2Vec(e) => e.output_dim(),
        }
    }

    /// The series encoder, when this is one.
    pub fn series(&self) -> Option<&ts2vec::Ts2VecEncoder> {
        match self {
            Encoder::Ts2Vec(e) => Some(e),
            _ => None,
        }
    }
}

/// The `[encoder]` table of a recipe: `kind` names the encoder, the other keys are its own.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EncoderSpec {
    /// A four-block CNN for small images.
    SmallCnn(SmallCnnConfig),
    /// ResNet-18 with the CIFAR stem (3x3 convolution, no max-pool).
    Resnet18 {},
    /// ResNet-18 with the ImageNet stem (7x7 convolution, max-pool).
    Resnet18Imagenet {},
    /// TS2Vec's dilated convolutions, for time series.
    Ts2vec(ts2vec::Ts2VecConfig),
    /// A BERT-family sentence encoder, for text.
    Bert(sentence::BertSpec),
}

impl Default for EncoderSpec {
    fn default() -> Self {
        EncoderSpec::SmallCnn(SmallCnnConfig::default())
    }
}

impl EncoderSpec {
    pub fn validate(&self) -> Result<()> {
        match self {
            EncoderSpec::SmallCnn(c) => c.validate(),
            EncoderSpec::Resnet18 {} | EncoderSpec::Resnet18Imagenet {} => Ok(()),
            EncoderSpec::Ts2vec(c) => c.validate(),
            EncoderSpec::Bert(c) => c.validate(),
        }
    }

    /// The name a recipe gives the encoder.
    pub fn name(&self) -> &'static str {
        match self {
            EncoderSpec::SmallCnn(_) => "small_cnn",
            EncoderSpec::Resnet18 {} => "resnet18",
            EncoderSpec::Resnet18Imagenet {} => "resnet18_imagenet",
            EncoderSpec::Ts2vec(_) => "ts2vec",
            EncoderSpec::Bert(_) => "bert",
        }
    }

    /// Whether the encoder reads time series (rather than images).
    pub fn reads_series(&self) -> bool {
        matches!(self, EncoderSpec::Ts2vec(_))
    }

    /// Whether the encoder reads text.
    pub fn reads_text(&self) -> bool {
        matches!(self, EncoderSpec::Bert(_))
    }

    /// The encoder for inputs of `in_channels` channels (image or series channels).
    pub fn init(&self, in_channels: usize, device: &Device) -> Result<Encoder> {
        self.validate()?;
        Ok(match self {
            EncoderSpec::SmallCnn(c) => Encoder::SmallCnn(c.init(in_channels, device)),
            EncoderSpec::Resnet18 {} => {
                Encoder::ResNet(ResNetConfig::resnet18(in_channels, Stem::Cifar).init(device))
            }
            EncoderSpec::Resnet18Imagenet {} => {
                Encoder::ResNet(ResNetConfig::resnet18(in_channels, Stem::ImageNet).init(device))
            }
            EncoderSpec::Ts2vec(c) => Encoder::Ts2Vec(c.init(in_channels, device)),
            EncoderSpec::Bert(_) => {
                return Err(Error::config(
                    "encoder.kind",
                    "`bert` encodes text; the data are images or series",
                ));
            }
        })
    }
}
