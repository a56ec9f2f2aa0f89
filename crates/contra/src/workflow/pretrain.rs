//! Pretraining from a recipe: the recipe's model built from its seed, its views of the data,
//! the monitors it asks for, and the one training loop.

use crate::augment::Pipeline;
use crate::augment::loader::{ImageViews, SeriesViews};
use crate::augment::series::SeriesCrops;
use crate::data::ImageDataset;
use crate::data::series::SeriesDataset;
use crate::encoders::Encoder;
use crate::error::{Error, Result};
use crate::eval::monitor::{KnnMonitor, MonitorViews};
use crate::methods::{Method, MethodSpec, Model};
use crate::recipe::Recipe;
use crate::train::series::SeriesModel;
use crate::train::{
    LoopSpec, Measure, Monitors, TrainOptions, TrainReport, build_model, init_from,
    keep_labels_per_class, loader_config, run_loop, train_loop,
};
use burn::prelude::*;
use std::sync::Arc;

/// Pretrain the recipe's method on the images `train`, writing into the recipe's output
/// folder.
pub fn pretrain(
    recipe: &Recipe,
    train: &ImageDataset,
    opts: &TrainOptions,
) -> Result<TrainReport<Model>> {
    if recipe.method.needs_labels() && train.labels.is_none() {
        return Err(Error::config(
            "method.kind",
            format!(
                "`{}` learns from labels, and the training data have none",
                recipe.method.name()
            ),
        ));
    }
    let device = crate::device::parse(&recipe.train.device)?;
    let ad = device.clone().autodiff();
    let pipeline = recipe.pipeline(train)?;
    let mut model = build_model(recipe, train.channels, &ad)?;
    if let (Some(path), false) = (&recipe.train.init, opts.resume) {
        model = init_from(model, path)?;
        if let Model::MeanShifted(m) = model {
            // The centre: the starting encoder's features of the unaugmented training images.
            let prep = super::modality::ImagePrep::of(&pipeline, train);
            let features = crate::eval::features::encode(
                m.encoder(),
                train,
                prep.normalize.as_ref(),
                prep.size,
                512,
                &device,
            );
            model = Model::MeanShifted(m.with_centre(&features)?);
        }
    }
    let keep = recipe.train.labelled_per_class;
    if keep > 0 {
        let mut partly = train.clone();
        partly.labels = Some(keep_labels_per_class(train, keep, recipe.seed));
        return train_images(recipe, &partly, pipeline, model, &ad, opts);
    }
    train_images(recipe, train, pipeline, model, &ad, opts)
}

/// The training loop for any method on augmented views of images, with the monitors the
/// recipe asks for.
pub fn train_images<M: Method<Backbone = Encoder>>(
    recipe: &Recipe,
    train: &ImageDataset,
    pipeline: Pipeline,
    model: M,
    device: &Device,
    opts: &TrainOptions,
) -> Result<TrainReport<M>> {
    let source = Arc::new(ImageViews {
        data: train.clone(),
        pipeline,
    });
    let pipeline = &source.pipeline;
    let cfg = loader_config(recipe);
    let views = (recipe.train.diagnose_every > 0)
        .then(|| MonitorViews::new(train, pipeline, &cfg, &recipe.train.device))
        .transpose()?;
    let knn = (recipe.train.knn_monitor > 0)
        .then(|| KnnMonitor::new(recipe, train, pipeline))
        .transpose()?;
    let monitors = Monitors {
        diagnose: views
            .map(|v| Box::new(move |m: &M| serde_json::json!(v.diagnose(m))) as Measure<M, _>),
        knn_accuracy: knn.map(|k| Box::new(move |m: &M| k.accuracy(m)) as Measure<M, _>),
    };
    let mut spec = LoopSpec::of_recipe(recipe);
    if !train.class_names.is_empty() {
        // The class map train and test folders share, kept with the model.
        spec.metadata.push((
            META_CLASSES.into(),
            serde_json::to_string(&train.class_names).expect("strings serialise"),
        ));
    }
    run_loop(&spec, source.clone(), model, device, opts, monitors)
}

/// The model file's entry with the training data's class names (a JSON list, by label).
pub const META_CLASSES: &str = "contra.classes";

/// Pretrain the recipe's method on the series `train`: TS2Vec on its own crops, or an
/// instance method on the recipe's `[[augment.series]]` views.
pub fn pretrain_series(
    recipe: &Recipe,
    train: &SeriesDataset,
    opts: &TrainOptions,
) -> Result<TrainReport<SeriesModel>> {
    let device = crate::device::parse(&recipe.train.device)?;
    let ad = device.autodiff();
    Ok(match SeriesModel::build(recipe, train.channels, &ad)? {
        SeriesModel::Ts2Vec(model) => {
            let temporal_unit = match &recipe.method {
                MethodSpec::Ts2vec(c) => c.temporal_unit,
                _ => 0,
            };
            let source = Arc::new(SeriesCrops::new(train.clone(), temporal_unit));
            train_loop(recipe, source, model, &ad, opts, Monitors::none())?.map(SeriesModel::Ts2Vec)
        }
        SeriesModel::Instance(model) => {
            let source = Arc::new(SeriesViews::new(train.clone(), recipe.series_pipeline()?));
            train_loop(recipe, source, model, &ad, opts, Monitors::none())?
                .map(SeriesModel::Instance)
        }
    })
}
