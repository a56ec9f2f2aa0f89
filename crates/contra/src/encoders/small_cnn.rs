//! A small convolutional encoder: four blocks of 3x3 convolution, BatchNorm and ReLU, with
//! 2x2 max-pooling after the first three, then global average pooling. Without BatchNorm
//! (`batch_norm = false`) the convolutions have biases, and every item's features depend on
//! that item alone (a data-parallel run then computes exactly what one process does).

use super::global_avg_pool;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    norm: Option<BatchNorm>,
}

impl ConvBlock {
    pub fn new(cin: usize, cout: usize, batch_norm: bool, device: &Device) -> Self {
        let conv = Conv2dConfig::new([cin, cout], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(!batch_norm)
            .init(device);
        Self {
            conv,
            norm: batch_norm.then(|| BatchNormConfig::new(cout).init(device)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv.forward(x);
        relu(match &self.norm {
            Some(norm) => crate::dist::batch_norm(norm, x),
            None => x,
        })
    }
}

#[derive(Module, Debug)]
pub struct SmallCnn {
    blocks: Vec<ConvBlock>,
    pool: MaxPool2d,
}

/// `kind = "small_cnn"` in a recipe's `[encoder]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmallCnnConfig {
    /// Channel widths of the four blocks.
    pub widths: [usize; 4],
    /// BatchNorm after each convolution (else a bias).
    pub batch_norm: bool,
}

impl Default for SmallCnnConfig {
    fn default() -> Self {
        Self {
            widths: [32, 64, 128, 256],
            batch_norm: true,
        }
    }
}

impl SmallCnnConfig {
    pub fn validate(&self) -> crate::error::Result<()> {
        if self.widths.contains(&0) {
            return Err(crate::error::Error::config(
                "encoder.widths",
                "every width must be at least 1",
            ));
        }
        Ok(())
    }

    pub fn init(&self, in_channels: usize, device: &Device) -> SmallCnn {
        let mut cin = in_channels;
        let blocks = self
            .widths
            .iter()
            .map(|&w| {
                let b = ConvBlock::new(cin, w, self.batch_norm, device);
                cin = w;
                b
            })
            .collect();
        SmallCnn {
            blocks,
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }
}

impl SmallCnn {
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<2> {
        let last = self.blocks.len() - 1;
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward(x);
            let [_, _, h, w] = x.dims();
            if i < last && h >= 2 && w >= 2 {
                x = self.pool.forward(x);
            }
        }
        global_avg_pool(x)
    }

    pub fn output_dim(&self) -> usize {
        // The lazy shape: reading the weight itself would draw it out of the seeded order.
        self.blocks
            .last()
            .map_or(0, |b| b.conv.weight.lazy_shape()[0])
    }
}
