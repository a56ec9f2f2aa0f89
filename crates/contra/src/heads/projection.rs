//! The SimCLR projection head (Chen et al. 2020): `Linear -> [BatchNorm] -> ReLU -> Linear`,
//! with optional BatchNorm on the output as in SimCLR v2 and lightly's head.

use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

/// The `[head]` table of a recipe.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionHeadSpec {
    pub hidden_dim: usize,
    pub output_dim: usize,
    /// BatchNorm after the hidden layer.
    pub batch_norm: bool,
}

impl Default for ProjectionHeadSpec {
    fn default() -> Self {
        Self {
            hidden_dim: 512,
            output_dim: 128,
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
    pub fn validate(&self) -> crate::error::Result<()> {
        for (key, v) in [
            ("head.hidden_dim", self.hidden_dim),
            ("head.output_dim", self.output_dim),
        ] {
            if v == 0 {
                return Err(crate::error::Error::config(key, "must be at least 1"));
            }
        }
        Ok(())
    }

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
    /// Width of the projections (read without drawing lazily initialised weights).
    pub fn output_dim(&self) -> usize {
        self.output.weight.lazy_shape()[1]
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = self.hidden.forward(x);
        if let Some(n) = &self.norm {
            h = crate::dist::batch_norm(n, h);
        }
        self.output.forward(relu(h))
    }
}
