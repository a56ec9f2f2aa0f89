//! Mean-shifted contrast (Reiss and Hoshen 2023) for one-class anomaly detection: an encoder
//! pretrained on other data (`train.init`) is adapted to the normal class by contrasting its
//! features as seen from their fixed mean ([`MeanShiftedLoss`]). Test images are then scored
//! by kNN in the encoder's space, as the paper does. The centre is fitted once, before the
//! first step ([`MeanShifted::with_centre`]), and is module state: checkpoints and the saved
//! model carry it, so a resumed run contrasts about the same centre.

use super::{Method, MethodConfig, Model, Parts, Views};
use crate::encoders::Encoder;
use crate::error::{Error, Result};
use crate::features::Features;
use crate::losses::MeanShiftedLoss;
use burn::module::RunningState;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// `kind = "mean_shifted"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeanShiftedConfig {
    pub temperature: f32,
    /// The weight of the angular centre term; above 0 the centre is also made a unit vector,
    /// as the paper's variant does.
    pub angular_weight: f32,
    /// BatchNorm normalises by the starting encoder's running statistics and keeps them (the
    /// paper trains its network in evaluation mode); `false`: batch statistics, the running
    /// ones moving to the normal class as in pretraining.
    pub fix_batch_norm: bool,
}

impl Default for MeanShiftedConfig {
    fn default() -> Self {
        Self {
            temperature: 0.25,
            angular_weight: 0.0,
            fix_batch_norm: true,
        }
    }
}

impl MethodConfig for MeanShiftedConfig {
    fn validate(&self) -> Result<()> {
        super::check_temperature(self.temperature)?;
        if !self.angular_weight.is_finite() || self.angular_weight < 0.0 {
            return Err(Error::config(
                "method.angular_weight",
                "must be zero or positive",
            ));
        }
        Ok(())
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let mut encoder = parts.encoder.init(parts.in_channels, parts.device)?;
        if self.fix_batch_norm {
            encoder = crate::encoders::fix_batch_norm(encoder);
        }
        let centre = Tensor::zeros([encoder.output_dim()], parts.device);
        Ok(Model::MeanShifted(MeanShifted {
            encoder,
            centre: RunningState::new(centre),
            loss: MeanShiftedLoss::new(self.temperature, self.angular_weight),
        }))
    }
}

#[derive(Module, Debug)]
pub struct MeanShifted {
    pub encoder: Encoder,
    /// The mean of the normal training images' unit features under the starting encoder.
    pub centre: RunningState<Tensor<1>>,
    #[module(skip)]
    pub loss: MeanShiftedLoss,
}

impl MeanShifted {
    /// The model with its centre fitted to `features`, the starting encoder's features of the
    /// training images (unaugmented): the mean of their unit vectors, itself a unit vector
    /// when the angular term is on.
    pub fn with_centre(self, features: &Features) -> Result<Self> {
        let dim = self.encoder.output_dim();
        if features.dim != dim || features.rows == 0 {
            return Err(Error::config(
                "method.kind",
                format!(
                    "mean_shifted fits its centre to {dim}-wide features of the training images; got {} rows of width {}",
                    features.rows, features.dim
                ),
            ));
        }
        let centre = centre_of(features, self.loss.angular_weight > 0.0);
        let device = self.centre.value_sync().device();
        self.centre
            .update(Tensor::from_data(TensorData::new(centre, [dim]), &device));
        Ok(self)
    }
}

/// The mean of the unit vectors of `features`' rows (`unit`: itself made a unit vector), summed
/// in f64.
pub fn centre_of(features: &Features, unit: bool) -> Vec<f32> {
    let mut sum = vec![0f64; features.dim];
    for r in 0..features.rows {
        let row = features.row(r);
        let norm = row.iter().map(|v| (v * v) as f64).sum::<f64>().sqrt();
        let norm = norm.max(1e-12);
        for (s, v) in sum.iter_mut().zip(row) {
            *s += *v as f64 / norm;
        }
    }
    let rows = features.rows.max(1) as f64;
    let mut centre: Vec<f64> = sum.iter().map(|s| s / rows).collect();
    if unit {
        let norm = centre.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        centre.iter_mut().for_each(|v| *v /= norm);
    }
    centre.iter().map(|&v| v as f32).collect()
}

impl Method for MeanShifted {
    type Backbone = Encoder;

    fn loss(&self, batch: &Views) -> Tensor<1> {
        assert!(
            batch.views.len() == 2,
            "mean-shifted contrast takes two views"
        );
        // Both views in one pass (BatchNorm statistics over all 2N images), as SimCLR.
        let n = batch.items();
        let (x, keys) = batch.all();
        let f = self.encoder.forward_rows(x, Some(&keys));
        let f_a = f.clone().narrow(0, 0, n);
        let f_b = f.narrow(0, n, n);
        self.loss.forward(f_a, f_b, self.centre.value_sync())
    }

    fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    fn into_encoder(self) -> Encoder {
        self.encoder
    }
}
