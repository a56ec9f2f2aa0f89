//! Fine-tuning: the encoder and a new linear classifier trained end to end on the labelled
//! items on the one training loop, with cross-entropy and AdamW (the classifier at `lr`, the
//! encoder at `encoder_lr`, both on a cosine decay); images as lightly augmented views (a random resized crop of at
//! least half the image and a horizontal flip), series as they are. The same routine from a
//! freshly initialised encoder, with the encoder at the full learning rate, is the supervised
//! from-scratch baseline.
//!
//! The classifier may start from a linear probe fitted on the same labels ("LP-FT", Kumar et
//! al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
//! Out-of-Distribution"): a random classifier's first gradients otherwise pull the pretrained
//! features towards whatever fits a random head.

use super::features::input_values;
use crate::augment::loader::{BatchSource, Items, LoaderConfig, make_view};
use crate::augment::{Augmentation, Flip, Normalize, Pipeline, RandomResizedCrop};
use crate::data::ImageDataset;
use crate::data::series::SeriesDataset;
use crate::data::text::{TextTokenizer, TokenBatch};
use crate::encoders::bert::Tokens;
use crate::encoders::{Backbone, BatchInput, Encoder};
use crate::error::Result;
use crate::methods::Trainable;
use crate::optim::OptimizerSpec;
use crate::optim::schedule::{Decay, ScheduleSpec};
use crate::rng::RowKeys;
use crate::tensor_util::{int_column, tensor2, to_vec};
use crate::train::{LoopSpec, Monitors, TrainOptions, run_loop};
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use std::sync::Arc;

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
pub struct Classifier<E: Backbone = Encoder> {
    pub encoder: E,
    pub head: Linear,
}

impl<E: Backbone> Classifier<E> {
    pub fn forward(&self, x: E::Input) -> Tensor<2> {
        self.forward_rows(x, None)
    }

    /// In training: `keys` name the rows (dropout masks follow them).
    pub fn forward_rows(&self, x: E::Input, keys: Option<&RowKeys>) -> Tensor<2> {
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

/// Items as the encoder's input on the host (images: values `[n, channels, height, width]`;
/// text: token batches).
pub trait Inputs<X: BatchInput = Tensor<4>>: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The training views of `items` in epoch `epoch` (an image file that no longer decodes
    /// is an error).
    fn views(&self, items: &[usize], epoch: u64, seed: u64) -> Result<X::Rows>;
    /// The inputs of `items` as they are, for prediction.
    fn plain(&self, items: &[usize]) -> X::Rows;
}

/// Images at the encoder's input size with the training normalisation; their training views
/// cropped and flipped (square sizes; others are used as they are).
pub struct ImageInputs {
    pub data: ImageDataset,
    pub size: (usize, usize),
    pub norm: Option<Normalize>,
    views: Option<Pipeline>,
}

impl ImageInputs {
    pub fn new(data: ImageDataset, size: (usize, usize), norm: Option<Normalize>) -> Result<Self> {
        let views = (size.0 == size.1)
            .then(|| view_pipeline(size, norm.as_ref()))
            .transpose()?;
        Ok(Self {
            data,
            size,
            norm,
            views,
        })
    }
}

impl Inputs for ImageInputs {
    fn len(&self) -> usize {
        self.data.len
    }

    fn views(&self, items: &[usize], epoch: u64, seed: u64) -> Result<(Vec<f32>, [usize; 4])> {
        let Some(pipeline) = &self.views else {
            return Ok(self.plain(items));
        };
        let (c, (h, w)) = (self.data.channels, self.size);
        let mut pixels = Vec::with_capacity(items.len() * c * h * w);
        for &i in items {
            let img = make_view(&self.data, pipeline, seed, epoch, i, 0)?;
            pixels.extend_from_slice(&img.data);
        }
        Ok((pixels, [items.len(), c, h, w]))
    }

    fn plain(&self, items: &[usize]) -> (Vec<f32>, [usize; 4]) {
        input_values(&self.data, items, self.norm.as_ref(), self.size)
    }
}

/// Series padded (NaN, which the encoder masks) to the longest, as `[n, channels, 1, steps]`.
pub struct SeriesInputs {
    pub data: SeriesDataset,
    len: usize,
}

impl SeriesInputs {
    /// `data` padded to `len` steps, or to its longest series if longer.
    pub fn new(data: SeriesDataset, len: usize) -> Self {
        let len = data.max_len().max(len);
        Self { data, len }
    }
}

impl Inputs for SeriesInputs {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn views(&self, items: &[usize], _epoch: u64, _seed: u64) -> Result<(Vec<f32>, [usize; 4])> {
        Ok(self.plain(items))
    }

    fn plain(&self, items: &[usize]) -> (Vec<f32>, [usize; 4]) {
        let values: Vec<f32> = items
            .iter()
            .flat_map(|&i| self.data.padded(i, self.len))
            .collect();
        (values, [items.len(), self.data.channels, 1, self.len])
    }
}

/// Texts as token batches (no augmentation: dropout, keyed by the rows, is the noise).
pub struct TextInputs {
    pub texts: Vec<String>,
    pub tokenizer: Arc<TextTokenizer>,
}

impl Inputs<Tokens> for TextInputs {
    fn len(&self) -> usize {
        self.texts.len()
    }

    fn views(&self, items: &[usize], _epoch: u64, _seed: u64) -> Result<TokenBatch> {
        Ok(self.plain(items))
    }

    fn plain(&self, items: &[usize]) -> TokenBatch {
        let texts: Vec<&str> = items.iter().map(|&i| self.texts[i].as_str()).collect();
        // Truncation is set and every text is UTF-8: the tokenizer cannot fail here.
        self.tokenizer
            .encode(&texts)
            .expect("tokenizing UTF-8 text with truncation set")
    }
}

/// A batch of labelled inputs for the classifier.
pub struct LabelledBatch<X: BatchInput> {
    pub x: X::Rows,
    pub labels: Vec<u32>,
    pub keys: RowKeys,
}

/// The labelled items as the loader sees them.
struct Labelled<X: BatchInput> {
    inputs: Arc<dyn Inputs<X>>,
    labels: Vec<u32>,
    augment: bool,
}

impl<X: BatchInput> Items for Labelled<X> {
    fn count(&self) -> usize {
        self.labels.len()
    }
    fn item_labels(&self) -> Option<&[u32]> {
        Some(&self.labels)
    }
}

impl<X: BatchInput> BatchSource for Labelled<X> {
    type Batch = LabelledBatch<X>;

    fn make_batch(&self, cfg: &LoaderConfig, epoch: u64, indices: &[usize]) -> Result<Self::Batch> {
        let x = if self.augment {
            self.inputs.views(indices, epoch, cfg.seed)?
        } else {
            self.inputs.plain(indices)
        };
        Ok(LabelledBatch {
            x,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            keys: RowKeys::view(cfg.seed, epoch, indices, 0),
        })
    }
}

impl<E: Backbone> Trainable for Classifier<E> {
    type Batch = LabelledBatch<E::Input>;

    fn views_in(batch: &Self::Batch) -> u64 {
        batch.labels.len() as u64
    }

    fn batch_loss(&self, b: Self::Batch, device: &Device) -> Tensor<1> {
        let y = int_column(b.labels.iter().map(|&l| l as i64).collect(), device);
        let x = E::Input::upload_rows(b.x, device);
        log_softmax(self.forward_rows(x, Some(&b.keys)), 1)
            .gather(1, y)
            .mean()
            .neg()
            .reshape([1])
    }

    fn after_optimizer_step(self, _global_step: u64, _total_steps: u64) -> Self {
        self
    }
}

/// Train `encoder` (on an autodiff device) with a new classifier on the labelled items
/// (`labels[i]` the class of input `i`), the classifier starting from `head_init` if given,
/// on the one training loop (in memory: no files).
pub fn finetune<E: Backbone>(
    encoder: E,
    inputs: Arc<dyn Inputs<E::Input>>,
    labels: &[u32],
    classes: usize,
    head_init: Option<&super::linear::Probe>,
    cfg: &FinetuneConfig,
    device: &Device,
) -> Result<Classifier<E>> {
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
    let model = Classifier { encoder, head };
    let n = labels.len();
    let spec = LoopSpec {
        // One AdamW: the classifier at `lr`, the encoder scaled to `encoder_lr`.
        optimizer: OptimizerSpec::adamw(cfg.lr, cfg.weight_decay),
        lr_scale: vec![("encoder".into(), cfg.encoder_lr / cfg.lr)],
        schedule: ScheduleSpec {
            warmup_epochs: 0.0,
            decay: Decay::Cosine,
            final_fraction: 0.0,
        },
        loader: LoaderConfig {
            batch_size: cfg.batch_size.clamp(1, n.max(1)),
            views: 1,
            workers: 1,
            prefetch: 2,
            seed: cfg.seed,
            per_class: 0,
        },
        epochs: 1,
        steps: Some(cfg.steps.max(1) as u64),
        diagnose_every: 0,
        checkpoint_every: 0,
        record: None,
        metadata: Vec::new(),
    };
    let source = Arc::new(Labelled {
        inputs,
        labels: labels.to_vec(),
        augment: cfg.augment,
    });
    let opts = TrainOptions {
        resume: false,
        quiet: true,
    };
    Ok(run_loop(&spec, source, model, device, &opts, Monitors::none())?.model)
}

/// The class of every input (inference mode, `batch` inputs at a time).
pub fn predict<E: Backbone>(
    model: &Classifier<E>,
    inputs: &dyn Inputs<E::Input>,
    batch: usize,
    device: &Device,
) -> Vec<u32> {
    let model = model.valid().to_device(device);
    let n = inputs.len();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(batch.max(1)) {
        let rows: Vec<usize> = (start..(start + batch).min(n)).collect();
        let logits = model.forward(E::Input::upload_rows(inputs.plain(&rows), device));
        let classes = logits.dims()[1];
        out.extend(super::linear::argmax_rows(&to_vec(logits), classes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::module_tensors;

    /// Fine-tuning trains on the one loop with one optimizer: the encoder's learning rate is
    /// a factor of the classifier's, so at 0 the encoder stays as it was and the classifier
    /// alone learns.
    #[test]
    fn the_encoder_learns_at_its_own_rate() {
        let device = crate::device::parse("cpu").unwrap().autodiff();
        let data = crate::data::digits::splits().train.take(40);
        let labels = data.labels.clone().unwrap();
        let inputs: Arc<dyn Inputs> = Arc::new(ImageInputs::new(data, (8, 8), None).unwrap());
        let encoder = || {
            crate::seeding::seeded(&device, 4, || {
                Encoder::SmallCnn(
                    crate::encoders::SmallCnnConfig {
                        widths: [4, 4, 8, 8],
                        ..Default::default()
                    }
                    .init(1, &device),
                )
            })
        };
        let cfg = |encoder_lr| FinetuneConfig {
            steps: 4,
            batch_size: 16,
            lr: 0.01,
            encoder_lr,
            ..Default::default()
        };
        let before = module_tensors(&encoder());
        let changed = |m: &Classifier| {
            let after = module_tensors(&m.encoder);
            before
                .iter()
                .filter(|(k, t)| k.contains("weight") && after[*k].data != t.data)
                .count()
        };
        let frozen = finetune(
            encoder(),
            inputs.clone(),
            &labels,
            10,
            None,
            &cfg(0.0),
            &device,
        );
        let frozen = frozen.unwrap();
        assert_eq!(changed(&frozen), 0);
        let tuned = finetune(
            encoder(),
            inputs.clone(),
            &labels,
            10,
            None,
            &cfg(0.01),
            &device,
        );
        assert!(changed(&tuned.unwrap()) > 0);
        // The classifier learned all the same: its weights moved from their start.
        let start = crate::seeding::seeded(&device, 0x4845_4144, || {
            LinearConfig::new(8, 10).init(&device)
        });
        assert_ne!(
            module_tensors(&frozen.head)["weight"].data,
            module_tensors(&start)["weight"].data
        );
    }
}
