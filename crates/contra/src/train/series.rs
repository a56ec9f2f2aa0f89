//! Pretraining on time series: a UCR/UEA set through TS2Vec on the one training loop.

use super::{Monitors, TrainOptions, train_loop, try_seeded};
use crate::augment::loader::batches_per_epoch;
use crate::data::series::{SeriesDataset, load_archive_set};
use crate::error::{Error, Result};
use crate::losses::HierarchicalLoss;
use crate::methods::ts2vec::{SeriesCrops, Ts2Vec};
use crate::recipe::Recipe;
use std::sync::Arc;

/// The training and test series a recipe names: a UCR/UEA set, or windows of CSV sensor
/// streams (each channel standardised with the training windows' mean and standard
/// deviation, so that sensors on different scales weigh alike).
pub fn load_series(recipe: &Recipe) -> Result<(SeriesDataset, SeriesDataset)> {
    if recipe.data.source == "csv" {
        return load_stream_windows(&recipe.data);
    }
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
        Ok(Ts2Vec::new(
            cfg.init(train.channels, &ad),
            cfg.init(train.channels, &ad),
            HierarchicalLoss::new(recipe.method.alpha, recipe.method.temporal_unit),
        ))
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

fn load_stream_windows(
    spec: &crate::data::locate::DataSpec,
) -> Result<(SeriesDataset, SeriesDataset)> {
    use crate::data::stream::{Stream, read_csv_streams, windows};
    // A relative path missing from the working directory is looked up under $CONTRA_DATA.
    let resolve = |p: &std::path::Path| match std::env::var_os("CONTRA_DATA") {
        Some(root) if p.is_relative() && !p.exists() => std::path::PathBuf::from(root).join(p),
        _ => p.to_path_buf(),
    };
    let path = &resolve(
        spec.path
            .as_deref()
            .ok_or_else(|| Error::config("data.path", "source `csv` needs the CSV file"))?,
    );
    let columns = spec.columns.clone().unwrap_or_default();
    let length = spec
        .window
        .ok_or_else(|| Error::config("data.window", "source `csv` needs the window length"))?;
    let stride = spec.stride.unwrap_or(length);
    let streams = read_csv_streams(path, &columns)?;
    let (train, test): (Vec<Stream>, Vec<Stream>) = match &spec.test_path {
        Some(t) => (streams, read_csv_streams(&resolve(t), &columns)?),
        None => {
            let f = spec.train_fraction.unwrap_or(0.5);
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::config(
                    "data.train_fraction",
                    "must be between 0 and 1",
                ));
            }
            let cut = |s: &Stream, from: usize, to: usize| Stream {
                group: s.group.clone(),
                channel_names: s.channel_names.clone(),
                channels: s.channels.iter().map(|c| c[from..to].to_vec()).collect(),
                timestamps: s
                    .timestamps
                    .get(from..to)
                    .map(<[String]>::to_vec)
                    .unwrap_or_default(),
                labels: s.labels.as_ref().map(|l| l[from..to].to_vec()),
            };
            streams
                .iter()
                .map(|s| {
                    let at = (s.len() as f64 * f).round() as usize;
                    (cut(s, 0, at), cut(s, at, s.len()))
                })
                .unzip()
        }
    };
    let mut tr = windows(&train, length, stride)?.series;
    let mut te = windows(&test, length, stride)?.series;
    if tr.is_empty() || te.is_empty() {
        return Err(Error::config(
            "data.window",
            format!("no window of {length} rows fits the training or the test part"),
        ));
    }
    // Both splits name the same classes (0 normal, 1.. events).
    let classes = tr.class_names.len().max(te.class_names.len());
    let names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
    tr.class_names = names.clone();
    te.class_names = names;
    // Per-channel standardisation with the training windows' statistics.
    for c in 0..tr.channels {
        let vals: Vec<f64> = (0..tr.len())
            .flat_map(|i| tr.channel(i, c).iter().map(|&v| v as f64))
            .filter(|v| v.is_finite())
            .collect();
        let n = vals.len().max(1) as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n)
            .sqrt()
            .max(1e-12);
        for set in [&mut tr, &mut te] {
            for i in 0..set.len() {
                let len = set.lengths[i];
                set.values[i][c * len..(c + 1) * len]
                    .iter_mut()
                    .for_each(|v| *v = ((*v as f64 - mean) / sd) as f32);
            }
        }
    }
    Ok((tr, te))
}
