//! Fine-tuning: the encoder and a new linear classifier trained end to end on the labelled
//! items, with cross-entropy and AdamW (the classifier at `lr`, the encoder at `encoder_lr`,
//! both on a cosine decay); images as lightly augmented views (a random resized crop of at
//! least half the image and a horizontal flip), series as they are. The same routine from a
//! freshly initialised encoder, with the encoder at the full learning rate, is the supervised
//! from-scratch baseline.
//!
//! The classifier may start from a linear probe fitted on the same labels ("LP-FT", Kumar et
//! al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
//! Out-of-Distribution"): a random classifier's first gradients otherwise pull the pretrained
//! features towards whatever fits a random head.

use super::features::input_batch;
use crate::augment::loader::make_view;
use crate::augment::{Augmentation, Flip, Normalize, Pipeline, RandomResizedCrop};
use crate::data::ImageDataset;
use crate::data::series::SeriesDataset;
use crate::encoders::Encoder;
use crate::error::Result;
use crate::optim::{Optimizer, OptimizerSpec};
use crate::rng::{Rng, RowKeys};
use crate::tensor_util::{int_column, tensor2, tensor4, to_vec};
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

#[derive(Clone, Debug)]
pub struct FinetuneConfig {
    pub steps: usize,
    pub batch_size: usize,
    /// Learning rate of the classifier.
    pub lr: f64,
    /// Learning rate of the encoder.
    pub encoder_lr: f64,
    pub weight_decay: f64,
    /// Train on the inputs' augmented views (images: crop and flip); otherwise as they are.
    pub augment: bool,
    pub seed: u64,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            steps: 300,
            batch_size: 64,
            lr: 1e-3,
            encoder_lr: 1e-3,
            weight_decay: 1e-4,
            augment: true,
            seed: 0,
        }
    }
}

/// An encoder with a linear classifier on its pooled features.
#[derive(Module, Debug)]
pub struct Classifier {
    pub encoder: Encoder,
    pub head: Linear,
}

impl Classifier {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_rows(x, None)
    }

    /// In training: `keys` name the rows (dropout masks follow them).
    pub fn forward_rows(&self, x: Tensor<4>, keys: Option<&RowKeys>) -> Tensor<2> {
        self.head.forward(self.encoder.forward_rows(x, keys))
    }
}

fn view_pipeline(size: (usize, usize), norm: Option<&Normalize>) -> Result<Pipeline> {
    let mut steps = vec![
        Augmentation::RandomResizedCrop(RandomResizedCrop {
            size: size.0,
            scale: [0.5, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }),
        Augmentation::HorizontalFlip(Flip { p: 0.5 }),
    ];
    if let Some(n) = norm {
        steps.push(Augmentation::Normalize(n.clone()));
    }
    Pipeline::new(steps)
}

/// Labelled items as the encoder's input.
pub trait Inputs {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The training views of `items` at step `step`.
    fn views(&self, items: &[usize], step: u64, seed: u64, device: &Device) -> Tensor<4>;
    /// The inputs of `items` as they are, for prediction.
    fn plain(&self, items: &[usize], device: &Device) -> Tensor<4>;
}

/// Images at the encoder's input size with the training normalisation; their training views
/// cropped and flipped (square sizes; others are used as they are).
pub struct ImageInputs<'a> {
    pub data: &'a ImageDataset,
    pub size: (usize, usize),
    pub norm: Option<&'a Normalize>,
    views: Option<Pipeline>,
}

impl<'a> ImageInputs<'a> {
    pub fn new(
        data: &'a ImageDataset,
        size: (usize, usize),
        norm: Option<&'a Normalize>,
    ) -> Result<Self> {
        let views = (size.0 == size.1)
            .then(|| view_pipeline(size, norm))
            .transpose()?;
        Ok(Self {
            data,
            size,
            norm,
            views,
        })
    }
}

impl Inputs for ImageInputs<'_> {
    fn len(&self) -> usize {
        self.data.len
    }

    fn views(&self, items: &[usize], step: u64, seed: u64, device: &Device) -> Tensor<4> {
        let Some(pipeline) = &self.views else {
            return self.plain(items, device);
        };
        let (c, (h, w)) = (self.data.channels, self.size);
        let mut pixels = Vec::with_capacity(items.len() * c * h * w);
        for &i in items {
            let img = make_view(self.data, pipeline, seed, step, i, 0);
            pixels.extend_from_slice(&img.data);
        }
        tensor4(pixels, [items.len(), c, h, w], device)
    }

    fn plain(&self, items: &[usize], device: &Device) -> Tensor<4> {
        input_batch(self.data, items, self.norm, self.size, device)
    }
}

/// Series padded (NaN, which the encoder masks) to the longest, as `[n, channels, 1, steps]`.
pub struct SeriesInputs<'a> {
    pub data: &'a SeriesDataset,
    len: usize,
}

impl<'a> SeriesInputs<'a> {
    /// `data` padded to `len` steps, or to its longest series if longer.
    pub fn new(data: &'a SeriesDataset, len: usize) -> Self {
        let len = data.lengths.iter().copied().max().unwrap_or(0).max(len);
        Self { data, len }
    }
}

impl Inputs for SeriesInputs<'_> {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn views(&self, items: &[usize], _step: u64, _seed: u64, device: &Device) -> Tensor<4> {
        self.plain(items, device)
    }

    fn plain(&self, items: &[usize], device: &Device) -> Tensor<4> {
        let c = self.data.channels;
        let values: Vec<f32> = items
            .iter()
            .flat_map(|&i| self.data.padded(i, self.len))
            .collect();
        tensor4(values, [items.len(), c, 1, self.len], device)
    }
}

/// Train `encoder` (on an autodiff device) with a new classifier on the labelled items
/// (`labels[i]` the class of input `i`), the classifier starting from `head_init` if given.
pub fn finetune(
    encoder: Encoder,
    inputs: &dyn Inputs,
    labels: &[u32],
    classes: usize,
    head_init: Option<&super::linear::Probe>,
    cfg: &FinetuneConfig,
    device: &Device,
) -> Result<Classifier> {
    assert_eq!(labels.len(), inputs.len());
    let dim = encoder.output_dim();
    let mut head = crate::seeding::seeded(device, cfg.seed ^ 0x4845_4144, || {
        LinearConfig::new(dim, classes).init(device)
    });
    if let Some(probe) = head_init {
        assert_eq!((probe.mean.len(), probe.classes), (dim, classes));
        let (w, b) = probe.raw_weights();
        head.weight = Param::from_tensor(tensor2(w, [dim, classes], device));
        head.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [classes]),
            device,
        )));
    }
    let mut model = Classifier { encoder, head };
    let spec = |lr| OptimizerSpec::adamw(lr, cfg.weight_decay);
    let mut head_opt = Optimizer::new(spec(cfg.lr))?;
    let mut encoder_opt = Optimizer::new(spec(cfg.encoder_lr))?;
    let n = inputs.len();
    let bs = cfg.batch_size.clamp(1, n.max(1));
    let mut rng = Rng::derive(cfg.seed, &[0x4654_4e45]);
    let mut order: Vec<usize> = Vec::new();
    for step in 0..cfg.steps {
        if order.len() < bs {
            let mut epoch: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut epoch);
            order.extend(epoch);
        }
        let batch: Vec<usize> = order.drain(..bs).collect();
        let x = if cfg.augment {
            inputs.views(&batch, step as u64, cfg.seed, device)
        } else {
            inputs.plain(&batch, device)
        };
        let y = int_column(batch.iter().map(|&i| labels[i] as i64).collect(), device);
        // Each step draws each item once: (step, item) names a row's dropout mask.
        let keys = RowKeys::view(cfg.seed, step as u64, &batch, 0);
        let loss = log_softmax(model.forward_rows(x, Some(&keys)), 1)
            .gather(1, y)
            .mean()
            .neg();
        let mut grads = loss.backward();
        let head_grads = GradientsParams::from_module(&mut grads, &model.head);
        let encoder_grads = GradientsParams::from_module(&mut grads, &model.encoder);
        let decay = 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / cfg.steps as f64).cos());
        model.head = head_opt.step(cfg.lr * decay, model.head, head_grads);
        model.encoder = encoder_opt.step(cfg.encoder_lr * decay, model.encoder, encoder_grads);
    }
    Ok(model)
}

/// The class of every input (inference mode, `batch` inputs at a time).
pub fn predict(model: &Classifier, inputs: &dyn Inputs, batch: usize, device: &Device) -> Vec<u32> {
    let model = model.valid().to_device(device);
    let n = inputs.len();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(batch.max(1)) {
        let rows: Vec<usize> = (start..(start + batch).min(n)).collect();
        let logits = model.forward(inputs.plain(&rows, device));
        let classes = logits.dims()[1];
        out.extend(super::linear::argmax_rows(&to_vec(logits), classes));
    }
    out
}
