//! CSI (Tack et al. 2020): SimCLR in which each item under a distribution-shifting
//! transformation (a rotation, by default) is a new instance, a negative of the item itself,
//! plus the classification of which shift was applied
//! ([`ShiftedInstanceLoss`](crate::losses::ShiftedInstanceLoss)). Trained on one class, the
//! encoder must tell the class's images from their own rotations, so it learns what the class
//! looks like rather than only what varies inside it; the detector
//! (`eval::shifted`) scores with the projections and the shift classifier.

use super::{Method, MethodConfig, Model, Parts, Views};
use crate::encoders::Encoder;
use crate::error::{Error, Result};
use crate::heads::ProjectionHead;
use crate::losses::ShiftedInstanceLoss;
use crate::rng::RowKeys;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// A distribution-shifting transformation of square images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shift {
    #[serde(rename = "identity")]
    Identity,
    /// Counter-clockwise, as `torch.rot90(x, 1, (2, 3))`.
    #[serde(rename = "rotate_90")]
    Rotate90,
    #[serde(rename = "rotate_180")]
    Rotate180,
    #[serde(rename = "rotate_270")]
    Rotate270,
    /// Upside down (rows reversed).
    #[serde(rename = "vertical_flip")]
    VerticalFlip,
}

impl Shift {
    /// `x` (`[b, c, h, w]`, `h == w` for the quarter turns) shifted.
    pub fn apply(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Shift::Identity => x,
            Shift::Rotate90 => x.flip([3]).swap_dims(2, 3),
            Shift::Rotate180 => x.flip([2, 3]),
            Shift::Rotate270 => x.flip([2]).swap_dims(2, 3),
            Shift::VerticalFlip => x.flip([2]),
        }
    }
}

/// How a CSI model scores test images (`contra pretrain`'s evaluation and `eval anomaly`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsiScore {
    /// Mean cosine distance to the 5 nearest normal training images in the encoder's space.
    Knn,
    /// The kNN distance (k=5) of each shifted test image to the normal images under the same
    /// shift, in the encoder's space, averaged over the shifts: on one-class Fashion-MNIST
    /// better than `Knn` on nine classes of ten (mean 0.9450 against 0.9422) and far better
    /// than the paper's score (0.8937; BENCHMARKS.md).
    #[default]
    KnnShifts,
    /// The paper's score (`eval::shifted`): norm-weighted cosine to the nearest
    /// normal projection and the shift classifier's logit, over the shifts.
    Csi,
}

/// `kind = "csi"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsiConfig {
    pub temperature: f32,
    /// The shifts each view is seen under: `identity` and at least one other.
    pub shifts: Vec<Shift>,
    /// The weight of the shift classification beside the contrast (the paper's lambda).
    pub shift_weight: f32,
    /// How test images are scored after training.
    pub score: CsiScore,
}

impl Default for CsiConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            shifts: vec![
                Shift::Identity,
                Shift::Rotate90,
                Shift::Rotate180,
                Shift::Rotate270,
            ],
            shift_weight: 1.0,
            score: CsiScore::default(),
        }
    }
}

impl MethodConfig for CsiConfig {
    fn validate(&self) -> Result<()> {
        super::check_temperature(self.temperature)?;
        if !self.shift_weight.is_finite() || self.shift_weight < 0.0 {
            return Err(Error::config(
                "method.shift_weight",
                "must be zero or positive",
            ));
        }
        if self.shifts.first() != Some(&Shift::Identity) || self.shifts.len() < 2 {
            return Err(Error::config(
                "method.shifts",
                "must start with \"identity\" (the unshifted data) and name at least one shift",
            ));
        }
        for (i, s) in self.shifts.iter().enumerate() {
            if self.shifts[..i].contains(s) {
                return Err(Error::config(
                    "method.shifts",
                    format!("{s:?} is named twice"),
                ));
            }
        }
        Ok(())
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let (encoder, head) = parts.encoder_and_head()?;
        let shift_head =
            LinearConfig::new(encoder.output_dim(), self.shifts.len()).init(parts.device);
        Ok(Model::Csi(Csi {
            encoder,
            head,
            shift_head,
            loss: ShiftedInstanceLoss::new(self.temperature, self.shift_weight),
            shifts: self.shifts.clone(),
            score: self.score,
        }))
    }
}

#[derive(Module, Debug)]
pub struct Csi {
    pub encoder: Encoder,
    pub head: ProjectionHead,
    /// Logits of which shift was applied, from the encoder's features.
    pub shift_head: Linear,
    #[module(skip)]
    pub loss: ShiftedInstanceLoss,
    #[module(skip)]
    pub shifts: Vec<Shift>,
    #[module(skip)]
    pub score: CsiScore,
}

/// The encoder's features, the projections and the shift classifier's logits of a batch under
/// one shift.
pub struct ShiftedOutputs {
    /// `[b, encoder width]`.
    pub features: Tensor<2>,
    /// `[b, d]`, not normalised (the detector uses their norm).
    pub projections: Tensor<2>,
    /// `[b, K]`.
    pub shift_logits: Tensor<2>,
}

impl Csi {
    /// `x` under every shift, shift-major.
    fn shifted(&self, x: &Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        assert!(
            h == w
                || self
                    .shifts
                    .iter()
                    .all(|s| matches!(s, Shift::Identity | Shift::Rotate180 | Shift::VerticalFlip)),
            "quarter turns need square images ({h}x{w})"
        );
        Tensor::cat(self.shifts.iter().map(|s| s.apply(x.clone())).collect(), 0)
    }

    /// Features, projections and shift logits of the rows of `x` (`keys` in training).
    fn heads(&self, x: Tensor<4>, keys: Option<&RowKeys>) -> [Tensor<2>; 3] {
        let h = self.encoder.forward_rows(x, keys);
        let z = self.head.forward(h.clone());
        let logits = self.shift_head.forward(h.clone());
        [h, z, logits]
    }

    /// The outputs of a batch under each shift, in the order of `shifts` (inference: no row
    /// keys).
    pub fn outputs(&self, x: Tensor<4>) -> Vec<ShiftedOutputs> {
        let n = x.dims()[0];
        let [h, z, logits] = self.heads(self.shifted(&x), None);
        (0..self.shifts.len())
            .map(|k| ShiftedOutputs {
                features: h.clone().narrow(0, k * n, n),
                projections: z.clone().narrow(0, k * n, n),
                shift_logits: logits.clone().narrow(0, k * n, n),
            })
            .collect()
    }
}

impl Method for Csi {
    type Backbone = Encoder;

    fn loss(&self, batch: &Views) -> Tensor<1> {
        assert!(batch.views.len() == 2, "CSI takes two views");
        let k = self.shifts.len();
        let x = Tensor::cat(batch.views.iter().map(|v| self.shifted(v)).collect(), 0);
        // A shifted view is a view of its own (its random masks too).
        let keys = RowKeys::cat(
            &batch
                .keys
                .iter()
                .enumerate()
                .flat_map(|(v, keys)| (0..k).map(move |s| keys.with_view((v * k + s) as u64)))
                .collect::<Vec<_>>(),
        );
        let [_, z, logits] = self.heads(x, Some(&keys));
        let rows = k * batch.items();
        let z_a = z.clone().narrow(0, 0, rows);
        let z_b = z.narrow(0, rows, rows);
        self.loss.forward(z_a, z_b, logits, k)
    }

    fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    fn into_encoder(self) -> Encoder {
        self.encoder
    }
}
