//! Encoders (backbones): images (or series) in, one feature vector per item out.

pub mod resnet;
pub mod small_cnn;
pub mod ts2vec;

use crate::error::{Error, Result};
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
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Encoder::SmallCnn(e) => e.forward(x),
            Encoder::ResNet(e) => e.forward(x),
            Encoder::Ts2Vec(e) => {
                let [b, c, _, t] = x.dims();
                let x = x.reshape([b, c, t]).swap_dims(1, 2);
                // A step with a missing value in any channel is masked, as in TS2Vec.
                let missing = x.clone().is_nan();
                let keep = missing.clone().any_dim(2).bool_not().float();
                e.embed(x.mask_fill(missing, 0.0), keep)
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

/// The `[encoder]` table of a recipe.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    /// `small_cnn`, `resnet18` (CIFAR stem) or `resnet18_imagenet`.
    pub kind: String,
    /// Channel widths of the small CNN's four blocks.
    #[serde(default)]
    pub widths: Option<[usize; 4]>,
    /// Sizes of the `ts2vec` encoder (time series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts2vec: Option<ts2vec::Ts2VecConfig>,
}

impl Default for EncoderSpec {
    fn default() -> Self {
        Self {
            kind: "small_cnn".into(),
            widths: None,
            ts2vec: None,
        }
    }
}

impl EncoderSpec {
    pub fn validate(&self) -> Result<()> {
        match self.kind.as_str() {
            "small_cnn" | "resnet18" | "resnet18_imagenet" | "ts2vec" => Ok(()),
            other => Err(Error::config(
                "encoder.kind",
                format!(
                    "unknown encoder `{other}`; expected small_cnn, resnet18, resnet18_imagenet or ts2vec (time series)"
                ),
            )),
        }
    }

    /// The encoder for inputs of `in_channels` channels (image or series channels).
    pub fn init(&self, in_channels: usize, device: &Device) -> Result<Encoder> {
        self.validate()?;
        Ok(match self.kind.as_str() {
            // `in_channels` are the series' channels.
            "ts2vec" => Encoder::Ts2Vec(
                self.ts2vec
                    .clone()
                    .unwrap_or_default()
                    .init(in_channels, device),
            ),
            "small_cnn" => {
                let mut c = SmallCnnConfig::new(in_channels);
                if let Some(w) = self.widths {
                    c.widths = w;
                }
                Encoder::SmallCnn(c.init(device))
            }
            "resnet18" => {
                Encoder::ResNet(ResNetConfig::resnet18(in_channels, Stem::Cifar).init(device))
            }
            _ => Encoder::ResNet(ResNetConfig::resnet18(in_channels, Stem::ImageNet).init(device)),
        })
    }
}
