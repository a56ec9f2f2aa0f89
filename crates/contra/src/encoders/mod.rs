//! Encoders (backbones): images (or series) in, one feature vector per item out.

pub mod dropout;
pub mod resnet;
pub mod small_cnn;
pub mod ts2vec;

use crate::error::Result;
use crate::rng::RowKeys;
use burn::prelude::*;
pub use resnet::{ResNet, ResNetConfig, Stem};
use serde::{Deserialize, Serialize};
pub use small_cnn::{SmallCnn, SmallCnnConfig};

/// Global average pooling: `[b, c, h, w]` to `[b, c]`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
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
        }
    }

    /// The name a recipe gives the encoder.
    pub fn name(&self) -> &'static str {
        match self {
            EncoderSpec::SmallCnn(_) => "small_cnn",
            EncoderSpec::Resnet18 {} => "resnet18",
            EncoderSpec::Resnet18Imagenet {} => "resnet18_imagenet",
            EncoderSpec::Ts2vec(_) => "ts2vec",
        }
    }

    /// Whether the encoder reads time series (rather than images).
    pub fn reads_series(&self) -> bool {
        matches!(self, EncoderSpec::Ts2vec(_))
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
        })
    }
}
