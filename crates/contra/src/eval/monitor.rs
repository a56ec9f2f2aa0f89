//! Measurements taken while a model trains, which change nothing in it: diagnostics of the
//! embedding space on fixed views, and the online kNN accuracy.

use super::Features;
use crate::augment::Pipeline;
use crate::augment::loader::LoaderConfig;
use crate::data::{Dataset, ImageDataset};
use crate::encoders::Encoder;
use crate::error::Result;
use crate::methods::Method;
use crate::recipe::Recipe;
use crate::tensor_util::tensor4;
use burn::prelude::*;

/// Two fixed augmented views of the first training images, for the embedding diagnostics.
pub struct MonitorViews {
    views: Vec<Vec<f32>>,
    shape: [usize; 4],
    device: Device,
}

impl MonitorViews {
    pub fn new(
        train: &ImageDataset,
        pipeline: &Pipeline,
        cfg: &LoaderConfig,
        device: &str,
    ) -> Result<Self> {
        let indices: Vec<usize> = (0..train.len.min(512)).collect();
        // An epoch number training never reaches: the same views at every call, and no
        // training batch shares their randomness.
        let batch = crate::augment::loader::make_batch(train, pipeline, cfg, u64::MAX, &indices)?;
        Ok(Self {
            shape: batch.shape(),
            views: batch.views,
            device: crate::device::parse(device)?,
        })
    }

    /// The diagnostics of the model's backbone in evaluation mode (no gradient, BatchNorm on
    /// its running statistics, nothing in the model changes).
    pub fn diagnose<M: Method<Backbone = Encoder>>(&self, model: &M) -> super::space::SpaceReport {
        let eval_model = model.valid();
        let features: Vec<Features> = self.views[..2]
            .iter()
            .map(|v| {
                let x = tensor4(v.clone(), self.shape, &self.device);
                let f = eval_model.encoder().forward(x);
                let [rows, dim] = f.dims();
                Features {
                    data: crate::tensor_util::to_vec(f),
                    rows,
                    dim,
                }
            })
            .collect();
        super::space::diagnose(&features[0], &features[1])
    }
}

/// The online kNN monitor: labelled training items split into a memory bank and queries.
pub struct KnnMonitor {
    bank: ImageDataset,
    bank_labels: Vec<u32>,
    queries: ImageDataset,
    query_labels: Vec<u32>,
    classes: usize,
    pipeline: Pipeline,
    k: usize,
    temperature: f32,
    device: Device,
}

impl KnnMonitor {
    pub fn new(recipe: &Recipe, train: &ImageDataset, pipeline: &Pipeline) -> Result<Self> {
        let labels = train.labels_or_err("train.knn_monitor")?;
        let n = recipe.train.knn_monitor.min(train.len);
        let split = n - n / 5;
        let bank: Vec<usize> = (0..split).collect();
        let queries: Vec<usize> = (split..n).collect();
        Ok(Self {
            bank: train.subset(&bank),
            bank_labels: labels[..split].to_vec(),
            queries: train.subset(&queries),
            query_labels: labels[split..n].to_vec(),
            classes: train.num_classes(),
            pipeline: pipeline.clone(),
            k: recipe.eval.knn_k,
            temperature: recipe.eval.knn_temperature,
            device: crate::device::parse(&recipe.train.device)?,
        })
    }

    /// kNN accuracy of the backbone in evaluation mode (nothing in the model changes).
    pub fn accuracy<M: Method<Backbone = Encoder>>(&self, model: &M) -> f64 {
        use super::{accuracy, features::encode, knn};
        let eval_model = model.valid();
        let size = self.pipeline.output_size(self.bank.height, self.bank.width);
        let norm = self.pipeline.normalization();
        let enc = |d: &ImageDataset| encode(eval_model.encoder(), d, norm, size, 512, &self.device);
        let pred = knn::predict(
            &enc(&self.bank),
            &self.bank_labels,
            &enc(&self.queries),
            self.classes,
            self.k,
            self.temperature,
            &self.device,
        );
        accuracy(&pred, &self.query_labels)
    }
}
