//! Pretraining on time series: a UCR/UEA set through TS2Vec on the one training loop.

use super::{Monitors, TrainOptions, train_loop, try_seeded};
use crate::augment::loader::batches_per_epoch;
use crate::data::series::{SeriesDataset, load_archive_set};
use crate::error::{Error, Result};
use crate::losses::HierarchicalLoss;
use crate::methods::ts2vec::{SeriesCrops, Ts2Vec};
use crate::recipe::Recipe;
use std::sync::Arc;

/// The training and test series a recipe names.
pub fn load_series(recipe: &Recipe) -> Result<(SeriesDataset, SeriesDataset)> {
    let name = recipe.data.name.as_deref().ok_or_else(|| {
        Error::config("data.name", "source `ucr` needs the set's name (GunPoint)")
    })?;
    load_archive_set(name, recipe.data.path.as_deref())
}

/// What a finished series run reports.
pub struct SeriesReport {
    pub model: Ts2Vec,
    pub final_loss: f32,
    pub steps: u64,
    pub windows_per_second: f64,
    pub seconds: f64,
}

/// Pretrain TS2Vec on `train` as the recipe says; `train.steps`, when set, is rounded up to
/// whole epochs.
pub fn pretrain_series(
    recipe: &Recipe,
    train: &SeriesDataset,
    opts: &TrainOptions,
) -> Result<SeriesReport> {
    let mut recipe = recipe.clone();
    if let Some(steps) = recipe.train.steps {
        let per_epoch = batches_per_epoch(train.len(), recipe.train.batch_size) as u64;
        if per_epoch == 0 {
            return Err(Error::config(
                "train.batch_size",
                format!(
                    "{} is larger than the {} training series",
                    recipe.train.batch_size,
                    train.len()
                ),
            ));
        }
        recipe.train.epochs = steps.div_ceil(per_epoch);
    }
    let device = crate::device::parse(&recipe.train.device)?;
    let ad = device.autodiff();
    let cfg = recipe.encoder.ts2vec.clone().unwrap_or_default();
    let model = try_seeded(&ad, recipe.seed, || -> Result<Ts2Vec> {
        Ok(Ts2Vec {
            encoder: cfg.init(train.channels, &ad),
            loss: HierarchicalLoss::new(recipe.method.alpha, recipe.method.temporal_unit),
        })
    })?;
    let source = Arc::new(SeriesCrops::new(train.clone(), recipe.method.temporal_unit));
    let monitors = Monitors {
        diagnose: None,
        knn_accuracy: None,
    };
    let r = train_loop(&recipe, source, model, &ad, opts, monitors)?;
    Ok(SeriesReport {
        model: r.model,
        final_loss: r.final_loss,
        steps: r.steps,
        windows_per_second: r.views_per_second / 2.0,
        seconds: r.seconds,
    })
}
