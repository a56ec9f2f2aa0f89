//! Encoders (backbones): images in, one feature vector per image out.

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
}

impl Encoder {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Encoder::SmallCnn(e) => e.forward(x),
            Encoder::ResNet(e) => e.forward(x),
        }
    }

    pub fn output_dim(&self) -> usize {
        match self {
            Encoder::SmallCnn(e) => e.output_dim(),
            Encoder::ResNet(e) => e.output_dim(),
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

    pub fn init(&self, in_channels: usize, device: &Device) -> Result<Encoder> {
        self.validate()?;
        if self.kind == "ts2vec" {
            return Err(Error::config(
                "encoder.kind",
                "ts2vec encodes time series, not images",
            ));
        }
        Ok(match self.kind.as_str() {
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
