//! NCAD (Carmona et al. 2022): contextual contrast for anomalies in sensor streams. Each
//! training window is embedded whole and without its last `suspect` steps; the
//! [`ContextualLoss`] pulls the two together for normal windows and pushes them apart for
//! windows whose suspect part holds an anomaly: one injected into a copy of the window
//! ([`crate::augment::inject`]) or, where the training stream has labels, a labelled event.
//! The distance is the anomaly score of a test window, so the detector sees how the suspect
//! steps depart from their own context, level included.

use super::{Method, MethodConfig, Model, Parts, Views};
use crate::augment::inject::{InjectionMix, inject, spread};
use crate::data::series::SeriesDataset;
use crate::encoders::Encoder;
use crate::error::{Error, Result};
use crate::losses::ContextualLoss;
use crate::rng::Rng;
use crate::tensor_util::{tensor4, to_vec};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

const INJECT: u64 = 0x494e_4a45;

/// `kind = "ncad"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NcadConfig {
    /// The last steps of a window, judged against the rest of it (its context).
    pub suspect: usize,
    /// The share of training windows that also enter their batch with an injected anomaly.
    pub injected: f64,
    /// The relative weights of the injected kinds.
    pub inject: InjectionMix,
    /// Labelled training windows (label above 0) are anomalies; `false` ignores the labels.
    pub use_labels: bool,
    /// How test windows are scored after training.
    pub score: NcadScore,
}

/// How an NCAD model scores test windows (`contra pretrain`'s evaluation and `eval anomaly`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NcadScore {
    /// Mean cosine distance of the whole window's embedding to the 5 nearest normal training
    /// windows': the encoder NCAD trained sees a window's level, and kNN flags every window of
    /// a long event, not only its edges (on KDD-TSAD 135 window AUROC 1.0000 against the
    /// contextual score's 0.4858; BENCHMARKS.md).
    #[default]
    Knn,
    /// The paper's: the distance between a window's embedding and its context's.
    Contextual,
}

impl Default for NcadConfig {
    fn default() -> Self {
        Self {
            suspect: 8,
            injected: 1.0,
            inject: InjectionMix::default(),
            use_labels: true,
            score: NcadScore::default(),
        }
    }
}

impl MethodConfig for NcadConfig {
    fn validate(&self) -> Result<()> {
        if self.suspect == 0 {
            return Err(Error::config("method.suspect", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.injected) {
            return Err(Error::config("method.injected", "must be in [0, 1]"));
        }
        if self.injected == 0.0 && !self.use_labels {
            return Err(Error::config(
                "method.injected",
                "with no injected anomalies and no labels nothing is anomalous to learn from",
            ));
        }
        self.inject.validate("method.inject")
    }

    fn build(&self, parts: &Parts) -> Result<Model> {
        let encoder = parts.encoder.init(parts.in_channels, parts.device)?;
        Ok(Model::Ncad(Ncad {
            encoder,
            settings: self.clone(),
        }))
    }
}

#[derive(Module, Debug)]
pub struct Ncad {
    pub encoder: Encoder,
    #[module(skip)]
    pub settings: NcadConfig,
}

impl Ncad {
    /// Each window's distance between its whole and its context embedding (`x`: `[b, c, 1,
    /// len]`, NaN where a value is missing).
    fn distances(&self, x: Tensor<4>, keys: Option<&crate::rng::RowKeys>) -> Tensor<1> {
        let len = x.dims()[3];
        let context = x.clone().narrow(3, 0, len - self.settings.suspect);
        ContextualLoss::distances(
            self.encoder.forward_rows(x, keys),
            self.encoder.forward_rows(context, keys),
        )
    }

    /// The anomaly score of every window of `data` (inference mode): the distance its suspect
    /// part puts between the window and its context.
    pub fn window_scores(&self, data: &SeriesDataset, batch: usize, device: &Device) -> Vec<f64> {
        use burn::module::Module;
        let model = self.valid();
        let len = data.max_len();
        let c = data.channels;
        let mut out = Vec::with_capacity(data.len());
        let mut progress = crate::progress::Task::new("scoring", data.len(), "windows");
        for start in (0..data.len()).step_by(batch.max(1)) {
            let end = (start + batch).min(data.len());
            let values: Vec<f32> = (start..end).flat_map(|i| data.padded(i, len)).collect();
            let x = tensor4(values, [end - start, c, 1, len], device);
            out.extend(to_vec(model.distances(x, None)).into_iter().map(f64::from));
            progress.advance(end - start);
        }
        out
    }
}

/// The spread of each channel over the batch (values not missing), for the injections' floor.
fn channel_spreads(values: &[f32], channels: usize, len: usize) -> Vec<f32> {
    (0..channels)
        .map(|c| {
            let channel: Vec<f32> = values
                .chunks_exact(channels * len)
                .flat_map(|w| &w[c * len..(c + 1) * len])
                .copied()
                .collect();
            spread(&channel)
        })
        .collect()
}

impl Method for Ncad {
    type Backbone = Encoder;

    fn loss(&self, batch: &Views) -> Tensor<1> {
        // The first view is the window (the second, which the loader also makes, is unused).
        let x = &batch.views[0];
        let [b, c, _, len] = x.dims();
        let s = &self.settings;
        assert!(
            len > s.suspect,
            "windows of {len} steps have no context before {} suspect steps",
            s.suspect
        );
        let per = c * len;
        let values = to_vec(x.clone());
        // An injection into a nearly flat window is scaled by a tenth of the batch's spread.
        let floor: Vec<f32> = channel_spreads(&values, c, len)
            .iter()
            .map(|v| 0.1 * v)
            .collect();
        let mut anomalous: Vec<bool> = match (&batch.labels, s.use_labels) {
            (Some(labels), true) => labels.iter().map(|&l| l > 0).collect(),
            _ => vec![false; b],
        };
        let keys = &batch.keys[0];
        let mut rows = values.clone();
        let mut all_keys = keys.clone();
        for i in 0..b {
            let (item, _) = keys.rows[i];
            let mut rng = Rng::derive(keys.seed, &[INJECT, keys.epoch, item]);
            if !rng.bernoulli(s.injected) {
                continue;
            }
            let mut window = values[i * per..(i + 1) * per].to_vec();
            let other = if b > 1 {
                (i + 1 + rng.below(b - 1)) % b
            } else {
                i
            };
            let kind = s.inject.draw(&mut rng);
            inject(
                &mut window,
                &values[other * per..(other + 1) * per],
                c,
                len,
                s.suspect,
                kind,
                &floor,
                &mut rng,
            );
            rows.extend(window);
            anomalous.push(true);
            all_keys.rows.push((item, 1));
        }
        let x = tensor4(rows, [anomalous.len(), c, 1, len], &x.device());
        let context = x.clone().narrow(3, 0, len - s.suspect);
        let whole = self.encoder.forward_rows(x, Some(&all_keys));
        let context = self.encoder.forward_rows(context, Some(&all_keys));
        ContextualLoss.forward(whole, context, &anomalous)
    }

    fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    fn into_encoder(self) -> Encoder {
        self.encoder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::EncoderSpec;
    use crate::losses::ContextualLoss;

    fn model(settings: NcadConfig, device: &Device) -> Ncad {
        let spec: EncoderSpec =
            toml::from_str("kind = \"ts2vec\"\nhidden = 4\noutput = 6\ndepth = 1\ndropout = 0.0")
                .unwrap();
        Ncad {
            encoder: spec.init(1, device).unwrap(),
            settings,
        }
    }

    fn windows(device: &Device) -> Views {
        let values: Vec<f32> = (0..3 * 12).map(|i| ((i * 7) % 5) as f32 * 0.3).collect();
        let x = tensor4(values, [3, 1, 1, 12], device);
        Views::new(vec![x.clone(), x], Some(vec![0, 2, 0]))
    }

    /// Without injections the loss is the contextual loss of the windows themselves, the
    /// labelled one anomalous unless the labels are switched off; with injections every window
    /// also enters as an anomalous copy, drawn the same way each time.
    #[test]
    fn labelled_windows_are_anomalous_and_injections_are_repeatable() {
        let device = crate::device::parse("cpu").unwrap();
        let batch = windows(&device);
        let x = batch.views[0].clone();
        let plain = NcadConfig {
            suspect: 4,
            injected: 0.0,
            ..NcadConfig::default()
        };
        let m = model(plain.clone(), &device);
        let whole = m.encoder.forward_rows(x.clone(), Some(&batch.keys[0]));
        let context = m
            .encoder
            .forward_rows(x.narrow(3, 0, 8), Some(&batch.keys[0]));
        let want = |labels: &[bool]| {
            ContextualLoss
                .forward(whole.clone(), context.clone(), labels)
                .into_scalar::<f32>()
        };
        let got = m.loss(&batch).into_scalar::<f32>();
        assert_eq!(got, want(&[false, true, false]));
        let unlabelled = Ncad {
            settings: NcadConfig {
                use_labels: false,
                ..plain.clone()
            },
            ..m.clone()
        };
        assert_eq!(
            unlabelled.loss(&batch).into_scalar::<f32>(),
            want(&[false, false, false])
        );
        let injecting = Ncad {
            settings: NcadConfig {
                injected: 1.0,
                ..plain
            },
            ..m
        };
        let a = injecting.loss(&batch).into_scalar::<f32>();
        assert_eq!(a, injecting.loss(&batch).into_scalar::<f32>());
        assert_ne!(a, got);
    }
}
