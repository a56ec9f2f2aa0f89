//! Fine-tuning: the encoder and a new linear classifier trained end to end on the labelled
//! items, with cross-entropy and AdamW (the classifier at `lr`, the encoder at `encoder_lr`,
//! both on a cosine decay), on lightly augmented views: a random resized crop of at least half
//! the image and a horizontal flip. The same routine from a freshly initialised encoder, with
//! the encoder at the full learning rate, is the supervised from-scratch baseline.
//!
//! The classifier may start from a linear probe fitted on the same labels ("LP-FT", Kumar et
//! al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
//! Out-of-Distribution"): a random classifier's first gradients otherwise pull the pretrained
//! features towards whatever fits a random head.

use super::features::input_batch;
use crate::augment::loader::make_view;
use crate::augment::{Augmentation, Flip, Normalize, Pipeline, RandomResizedCrop};
use crate::data::ImageDataset;
use crate::encoders::Encoder;
use crate::error::Result;
use crate::optim::{Optimizer, OptimizerSpec};
use crate::rng::Rng;
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
    /// Crop and flip the labelled images (otherwise they are used as they are).
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
        self.head.forward(self.encoder.forward(x))
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

/// Labelled images.
pub struct Labelled<'a> {
    pub data: &'a ImageDataset,
    pub labels: &'a [u32],
    pub classes: usize,
}

/// How images become the encoder's input: its size and the training normalisation.
#[derive(Clone, Copy)]
pub struct InputSpec<'a> {
    pub size: (usize, usize),
    pub norm: Option<&'a Normalize>,
}

/// Train `encoder` (on an autodiff device) with a new classifier on the labelled images.
pub fn finetune(
    encoder: Encoder,
    set: &Labelled,
    input: InputSpec,
    head_init: Option<&super::linear::Probe>,
    cfg: &FinetuneConfig,
    device: &Device,
) -> Result<Classifier> {
    let Labelled {
        data,
        labels,
        classes,
    } = *set;
    let InputSpec { size, norm } = input;
    assert_eq!(labels.len(), data.len);
    // The crop makes square views.
    let augment = cfg.augment && size.0 == size.1;
    let pipeline = view_pipeline(size, norm)?;
    let dim = encoder.output_dim();
    let mut head = crate::train::seeded(device, cfg.seed ^ 0x4845_4144, || {
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
    let spec = |lr| OptimizerSpec {
        kind: "adamw".into(),
        weight_decay: cfg.weight_decay,
        ..OptimizerSpec::sgd(lr, 0.0, 0.0)
    };
    let mut head_opt = Optimizer::new(spec(cfg.lr))?;
    let mut encoder_opt = Optimizer::new(spec(cfg.encoder_lr))?;
    let n = data.len;
    let bs = cfg.batch_size.clamp(1, n.max(1));
    let mut rng = Rng::derive(cfg.seed, &[0x4654_4e45]);
    let mut order: Vec<usize> = Vec::new();
    let (c, h, w) = (data.channels, size.0, size.1);
    for step in 0..cfg.steps {
        if order.len() < bs {
            let mut epoch: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut epoch);
            order.extend(epoch);
        }
        let batch: Vec<usize> = order.drain(..bs).collect();
        let x = if augment {
            let mut pixels = Vec::with_capacity(bs * c * h * w);
            for &i in &batch {
                let img = make_view(data, &pipeline, cfg.seed, step as u64, i, 0);
                pixels.extend_from_slice(&img.data);
            }
            tensor4(pixels, [bs, c, h, w], device)
        } else {
            input_batch(data, &batch, norm, size, device)
        };
        let y = int_column(batch.iter().map(|&i| labels[i] as i64).collect(), device);
        let loss = log_softmax(model.forward(x), 1).gather(1, y).mean().neg();
        let mut grads = loss.backward();
        let head_grads = GradientsParams::from_module(&mut grads, &model.head);
        let encoder_grads = GradientsParams::from_module(&mut grads, &model.encoder);
        let decay = 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / cfg.steps as f64).cos());
        model.head = head_opt.step(cfg.lr * decay, model.head, head_grads);
        model.encoder = encoder_opt.step(cfg.encoder_lr * decay, model.encoder, encoder_grads);
    }
    Ok(model)
}

/// The class of every image of `data` (inference mode, `batch` images at a time).
pub fn predict(
    model: &Classifier,
    data: &ImageDataset,
    input: InputSpec,
    batch: usize,
    device: &Device,
) -> Vec<u32> {
    let model = model.valid().to_device(device);
    let mut out = Vec::with_capacity(data.len);
    for start in (0..data.len).step_by(batch.max(1)) {
        let end = (start + batch).min(data.len);
        let rows: Vec<usize> = (start..end).collect();
        let logits = model.forward(input_batch(data, &rows, input.norm, input.size, device));
        let classes = logits.dims()[1];
        out.extend(super::linear::argmax_rows(&to_vec(logits), classes));
    }
    out
}
