//! The SimCLR projection head (Chen et al. 2020): `Linear -> [BatchNorm] -> ReLU -> Linear`,
//! with optional BatchNorm on the output as in SimCLR v2 and lightly's head.

use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectionHeadSpec {
    #[serde(default = "default_hidden")]
    pub hidden_dim: usize,
    #[serde(default = "default_output")]
    pub output_dim: usize,
    /// BatchNorm after the hidden layer.
    #[serde(default = "yes")]
    pub batch_norm: bool,
}
fn default_hidden() -> usize {
    512
}
fn default_output() -> usize {
    128
}
fn yes() -> bool {
    true
}

impl Default for ProjectionHeadSpec {
    fn default() -> Self {
        Self {
            hidden_dim: default_hidden(),
            output_dim: default_output(),
            batch_norm: true,
        }
    }
}

#[derive(Module, Debug)]
pub struct ProjectionHead {
    hidden: Linear,
    norm: Option<BatchNorm>,
    output: Linear,
}

impl ProjectionHeadSpec {
    pub fn init(&self, input_dim: usize, device: &Device) -> ProjectionHead {
        ProjectionHead {
            hidden: LinearConfig::new(input_dim, self.hidden_dim)
                .with_bias(!self.batch_norm)
                .init(device),
            norm: self
                .batch_norm
                .then(|| BatchNormConfig::new(self.hidden_dim).init(device)),
            output: LinearConfig::new(self.hidden_dim, self.output_dim).init(device),
        }
    }
}

impl ProjectionHead {
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = self.hidden.forward(x);
        if let Some(n) = &self.norm {
            h = n.forward(h);
        }
        self.output.forward(relu(h))
    }
}
