//! TS2Vec (Yue et al. 2022): two overlapping crops of each series, each with its own random
//! timestep mask, through the dilated convolutional encoder; the hierarchical contrastive loss
//! on the representations of the time steps the crops share. As TS2Vec does (PyTorch's
//! `AveragedModel`), the encoder used afterwards is the average of the trained weights over
//! all steps.

use super::Trainable;
pub use crate::augment::series::{CropBatch, SeriesCrops};
use crate::data::series::SeriesDataset;
use crate::encoders::ts2vec::{Ts2VecEncoder, batch_input};
use crate::error::{Error, Result};
use crate::losses::HierarchicalLoss;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// `kind = "ts2vec"` in a recipe's `[method]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ts2VecMethodConfig {
    /// Weight of the instance term of the hierarchical loss (the temporal term gets the rest).
    pub alpha: f32,
    /// The first pooling scale with a temporal term; crops share at least
    /// `2^(temporal_unit + 1)` steps.
    pub temporal_unit: usize,
}

impl Default for Ts2VecMethodConfig {
    fn default() -> Self {
        Self {
            alpha: 0.5,
            temporal_unit: 0,
        }
    }
}

impl super::MethodConfig for Ts2VecMethodConfig {
    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::config("method.alpha", "must be in [0, 1]"));
        }
        Ok(())
    }

    /// TS2Vec trains on its own crops of series ([`SeriesCrops`]), not on views: its model is
    /// built by the series modality.
    fn build(&self, _: &super::Parts) -> Result<super::Model> {
        Err(Error::config(
            "method.kind",
            "ts2vec trains on time series with its own crops, not on views",
        ))
    }
}

impl Ts2VecMethodConfig {
    /// TS2Vec from its encoder and a second, separate initialisation of the same shape (the
    /// running average starts as a copy of the encoder).
    pub fn init(&self, encoder: Ts2VecEncoder, fresh: Ts2VecEncoder) -> Ts2Vec {
        Ts2Vec::new(
            encoder,
            fresh,
            HierarchicalLoss::new(self.alpha, self.temporal_unit),
        )
    }
}

#[derive(Module, Debug)]
pub struct Ts2Vec {
    /// The trained encoder.
    pub encoder: Ts2VecEncoder,
    /// The running mean of `encoder`'s weights after each step (no gradient): what
    /// evaluation and export use.
    pub average: Ts2VecEncoder,
    #[module(skip)]
    pub loss: HierarchicalLoss,
}

impl Ts2Vec {
    /// `fresh` is a second encoder of the same shape, initialised on its own (a clone would
    /// share parameter ids): it becomes the average, starting as a copy.
    pub fn new(encoder: Ts2VecEncoder, fresh: Ts2VecEncoder, loss: HierarchicalLoss) -> Self {
        let average = super::moco::key_copy(fresh, &encoder);
        Self {
            encoder,
            average,
            loss,
        }
    }
}

impl Trainable for Ts2Vec {
    type Batch = CropBatch;

    fn views_in(batch: &CropBatch) -> u64 {
        2 * batch.items as u64
    }

    fn batch_loss(&self, b: CropBatch, device: &Device) -> Tensor<1> {
        let (n, c, o) = (b.items, b.channels, b.overlap);
        let tensor = |v: Vec<f32>, len, width| {
            Tensor::<3>::from_data(TensorData::new(v, [n, len, width]), device)
        };
        let keys2 = b.keys.with_view(1);
        let z1 = self.encoder.forward(
            tensor(b.view1, b.len1, c),
            tensor(b.keep1, b.len1, 1),
            Some(&b.keys),
        );
        let z2 = self.encoder.forward(
            tensor(b.view2, b.len2, c),
            tensor(b.keep2, b.len2, 1),
            Some(&keys2),
        );
        let d = z1.dims()[2];
        let z1 = z1.slice([0..n, b.len1 - o..b.len1, 0..d]);
        let z2 = z2.slice([0..n, 0..o, 0..d]);
        self.loss.forward(z1, z2)
    }

    fn after_optimizer_step(self, global_step: u64, _total_steps: u64) -> Self {
        // The mean over the steps so far: avg + (w - avg) / (n + 1), n the steps averaged.
        let n = global_step as f64;
        let average = super::moco::ema(self.average, &self.encoder, n / (n + 1.0));
        Self { average, ..self }
    }
}

/// One vector per series: the encoder in inference mode over each whole series (missing steps
/// masked), max-pooled over time; `batch` series at a time. Series are padded (masked) to
/// `len` steps, or to the longest if longer: give both splits of a data set the same `len`, so
/// that equal series embed alike.
pub fn embed(
    encoder: &Ts2VecEncoder,
    data: &SeriesDataset,
    len: usize,
    batch: usize,
    device: &Device,
) -> crate::features::Features {
    use burn::module::Module;
    let encoder = encoder.valid();
    let dim = encoder.output_dim();
    let len = data.lengths.iter().copied().max().unwrap_or(0).max(len);
    let mut out = Vec::with_capacity(data.len() * dim);
    let mut progress = crate::progress::Task::new("embedding", data.len(), "series");
    for start in (0..data.len()).step_by(batch.max(1)) {
        let end = (start + batch).min(data.len());
        let padded: Vec<Vec<f32>> = (start..end).map(|i| data.padded(i, len)).collect();
        let rows: Vec<&[f32]> = padded.iter().map(Vec::as_slice).collect();
        let (x, keep, _) = batch_input(&rows, data.channels, len, device);
        out.extend(crate::tensor_util::to_vec(encoder.embed(x, keep, None)));
        progress.advance(end - start);
    }
    crate::features::Features {
        data: out,
        rows: data.len(),
        dim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::loader::{BatchSource, LoaderConfig};

    fn toy(n: usize, len: usize) -> SeriesDataset {
        SeriesDataset {
            channels: 2,
            values: (0..n)
                .map(|i| (0..2 * len).map(|t| (i * 1000 + t) as f32).collect())
                .collect(),
            lengths: vec![len; n],
            labels: None,
            class_names: Vec::new(),
        }
    }

    #[test]
    fn the_average_is_the_mean_of_the_weights_after_each_step() {
        use crate::checkpoint::module_tensors;
        use crate::encoders::ts2vec::Ts2VecConfig;
        let d = crate::device::parse("cpu").unwrap();
        let cfg = Ts2VecConfig {
            hidden: 4,
            output: 6,
            depth: 1,
            kernel: 3,
            dropout: 0.0,
            ..Default::default()
        };
        let [a, b, c, fresh] =
            crate::seeding::seeded(&d, 3, || [0, 1, 2, 3].map(|_| cfg.init(2, &d)));
        let (wa, wb, wc) = (module_tensors(&a), module_tensors(&b), module_tensors(&c));
        let m = Ts2Vec::new(a, fresh, HierarchicalLoss::default());
        let m = m.after_optimizer_step(0, 3);
        let m = Ts2Vec { encoder: b, ..m }.after_optimizer_step(1, 3);
        let m = Ts2Vec { encoder: c, ..m }.after_optimizer_step(2, 3);
        let avg = module_tensors(&m.average);
        assert_eq!(avg.len(), wa.len());
        for (k, t) in &avg {
            for (i, v) in t.data.iter().enumerate() {
                let want = (wa[k].data[i] + wb[k].data[i] + wc[k].data[i]) / 3.0;
                assert!((v - want).abs() < 1e-6, "{k}[{i}]: {v} vs {want}");
            }
        }
    }

    #[test]
    fn crop_batches_share_their_overlap_and_repeat_exactly() {
        let source = SeriesCrops::new(toy(6, 40), 0);
        let cfg = LoaderConfig {
            batch_size: 3,
            views: 2,
            workers: 1,
            prefetch: 1,
            seed: 4,
            per_class: 0,
        };
        let b = source.make_batch(&cfg, 2, &[4, 1, 3]).unwrap();
        assert_eq!((b.items, b.channels), (3, 2));
        assert_eq!(b.view1.len(), 3 * b.len1 * 2);
        for k in 0..3 {
            // Time-major: the shared steps hold the same values in both views.
            let tail = &b.view1[(k * b.len1 + b.len1 - b.overlap) * 2..(k + 1) * b.len1 * 2];
            let head = &b.view2[k * b.len2 * 2..(k * b.len2 + b.overlap) * 2];
            assert_eq!(tail, head);
        }
        // About half the steps are kept, and the masks of the two views differ.
        let kept = b.keep1.iter().sum::<f32>() / b.keep1.len() as f32;
        assert!((0.2..0.8).contains(&kept), "{kept}");
        let again = source.make_batch(&cfg, 2, &[4, 1, 3]).unwrap();
        assert_eq!((again.view1, again.keep2), (b.view1, b.keep2));
    }
}
