//! Pretraining on time series: TS2Vec, or an instance method (SimCLR, MoCo, ...) on
//! augmented views of the series, through the one training loop.

use super::{Monitors, TrainOptions, TrainedFile, build_model, seeded, train_loop};
use crate::augment::loader::SeriesViews;
use crate::data::series::{SeriesDataset, load_archive_set};
use crate::encoders::EncoderSpec;
use crate::encoders::ts2vec::Ts2VecEncoder;
use crate::error::{Error, Result};
use crate::eval::Features;
use crate::methods::ts2vec::{SeriesCrops, Ts2Vec};
use crate::methods::{MethodSpec, Model};
use crate::recipe::Recipe;
use burn::prelude::Device;
use std::sync::Arc;

/// A model trained on series.
#[allow(clippy::large_enum_variant)] // one model per run
pub enum SeriesModel {
    Ts2Vec(Ts2Vec),
    /// An instance method whose encoder is the TS2Vec encoder.
    Instance(Model),
}

impl SeriesModel {
    /// The encoder that evaluation and export use: TS2Vec's averaged weights, or the
    /// instance method's encoder.
    pub fn encoder(&self) -> &Ts2VecEncoder {
        match self {
            SeriesModel::Ts2Vec(m) => &m.average,
            SeriesModel::Instance(m) => {
                use crate::methods::Method;
                m.encoder()
                    .series()
                    .expect("series recipes are validated to use the ts2vec encoder")
            }
        }
    }

    /// One vector per series (the encoder over each whole series padded to `len` steps,
    /// max-pooled over time).
    pub fn embed(&self, data: &SeriesDataset, len: usize, device: &Device) -> Features {
        crate::methods::ts2vec::embed(self.encoder(), data, len, 64, device)
    }

    /// The encoder that evaluation uses, taken out of the model and trainable (for
    /// fine-tuning: TS2Vec's average is kept out of the gradient while it is pretrained).
    pub fn into_encoder(self) -> crate::encoders::Encoder {
        use burn::module::Module;
        match self {
            SeriesModel::Ts2Vec(m) => {
                crate::encoders::Encoder::Ts2Vec(m.average.set_require_grad(true))
            }
            SeriesModel::Instance(m) => m.into_encoder(),
        }
    }

    /// The model of `recipe`, freshly initialised from its seed, for series of `channels`.
    pub fn build(recipe: &Recipe, channels: usize, device: &Device) -> Result<Self> {
        let MethodSpec::Ts2vec(method) = &recipe.method else {
            return Ok(SeriesModel::Instance(build_model(
                recipe, channels, device,
            )?));
        };
        let EncoderSpec::Ts2vec(cfg) = &recipe.encoder else {
            return Err(Error::config(
                "encoder.kind",
                "the ts2vec method needs the ts2vec encoder",
            ));
        };
        Ok(SeriesModel::Ts2Vec(seeded(device, recipe.seed, || {
            method.init(cfg.init(channels, device), cfg.init(channels, device))
        })))
    }

    /// A trained series model from its file.
    pub fn read(file: &TrainedFile, channels: usize, device: &Device) -> Result<Self> {
        Ok(match Self::build(&file.recipe, channels, device)? {
            SeriesModel::Ts2Vec(m) => SeriesModel::Ts2Vec(file.load(m)?),
            SeriesModel::Instance(m) => SeriesModel::Instance(file.load(m)?),
        })
    }
}

/// The training and test series of a recipe.
pub struct SeriesSplits {
    pub train: SeriesDataset,
    pub test: SeriesDataset,
    /// For windows of streams: where each test window starts.
    pub test_origins: Option<Vec<WindowOrigin>>,
}

impl SeriesSplits {
    /// The longest series of either split: the length both are padded to for evaluation.
    pub fn len(&self) -> usize {
        self.train
            .lengths
            .iter()
            .chain(&self.test.lengths)
            .copied()
            .max()
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.train.is_empty() && self.test.is_empty()
    }
}

/// Where a window of a stream starts.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowOrigin {
    /// The stream's name: its group, or its file in a folder.
    pub stream: String,
    /// The window's first row within its stream (0-based).
    pub first_row: usize,
    /// That row's timestamp, where the CSV has a timestamp column.
    pub timestamp: Option<String>,
}

/// The training and test series a recipe names: a UCR/UEA set, or windows of CSV sensor
/// streams (a file or a folder of files; each channel standardised with the training
/// windows' mean and standard deviation, so that sensors on different scales weigh alike).
pub fn load_series(recipe: &Recipe) -> Result<SeriesSplits> {
    use crate::data::locate::DataSpec;
    recipe.data.validate()?;
    match &recipe.data {
        DataSpec::Csv(spec) => load_stream_windows(spec),
        DataSpec::Ucr(spec) => {
            let (train, test) = load_archive_set(&spec.name, spec.path.as_deref())?;
            Ok(SeriesSplits {
                train,
                test,
                test_origins: None,
            })
        }
        other => Err(Error::config(
            "data.source",
            format!(
                "`{}` holds images; time series come from `ucr` or `csv`",
                other.source()
            ),
        )),
    }
}

/// What a finished series run reports.
pub struct SeriesReport {
    pub model: SeriesModel,
    pub final_loss: f32,
    pub steps: u64,
    pub windows_per_second: f64,
    pub seconds: f64,
}

/// Pretrain on `train` as the recipe says.
pub fn pretrain_series(
    recipe: &Recipe,
    train: &SeriesDataset,
    opts: &TrainOptions,
) -> Result<SeriesReport> {
    let device = crate::device::parse(&recipe.train.device)?;
    let ad = device.autodiff();
    let r = match SeriesModel::build(recipe, train.channels, &ad)? {
        SeriesModel::Ts2Vec(model) => {
            let temporal_unit = match &recipe.method {
                MethodSpec::Ts2vec(c) => c.temporal_unit,
                _ => 0,
            };
            let source = Arc::new(SeriesCrops::new(train.clone(), temporal_unit));
            train_loop(recipe, source, model, &ad, opts, no_monitors())?.map(SeriesModel::Ts2Vec)
        }
        SeriesModel::Instance(model) => {
            let source = Arc::new(SeriesViews::new(train.clone(), recipe.series_pipeline()?));
            train_loop(recipe, source, model, &ad, opts, no_monitors())?.map(SeriesModel::Instance)
        }
    };
    Ok(SeriesReport {
        model: r.model,
        final_loss: r.final_loss,
        steps: r.steps,
        windows_per_second: r.views_per_second / 2.0,
        seconds: r.seconds,
    })
}

fn no_monitors<'a, M>() -> Monitors<'a, M> {
    Monitors {
        diagnose: None,
        knn_accuracy: None,
    }
}

fn load_stream_windows(spec: &crate::data::locate::CsvSpec) -> Result<SeriesSplits> {
    use crate::data::stream::{Stream, read_csv_path, windows};
    // A relative path missing from the working directory is looked up in the data folder.
    let resolve = |p: &std::path::Path| match crate::data::locate::data_root() {
        Some(root) if p.is_relative() && !p.exists() => root.join(p),
        _ => p.to_path_buf(),
    };
    let path = &resolve(&spec.path);
    let columns = spec.columns.clone();
    let length = spec.window;
    let stride = spec.stride.unwrap_or(length);
    let streams = read_csv_path(path, &columns)?;
    let (train, test): (Vec<Stream>, Vec<Stream>) = match &spec.test_path {
        Some(t) => (streams, read_csv_path(&resolve(t), &columns)?),
        None => {
            let f = spec.train_fraction.unwrap_or(0.5);
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
    let test_windows = windows(&test, length, stride)?;
    let origins = test_windows
        .origins
        .iter()
        .map(|&(k, row)| {
            let s = &test[k];
            // With `train_fraction`, the test part of a stream starts after its training part.
            let offset = train
                .get(k)
                .filter(|_| spec.test_path.is_none())
                .map_or(0, Stream::len);
            WindowOrigin {
                stream: s.group.clone(),
                first_row: offset + row,
                timestamp: s.timestamps.get(row).cloned(),
            }
        })
        .collect();
    let mut te = test_windows.series;
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
    Ok(SeriesSplits {
        train: tr,
        test: te,
        test_origins: Some(origins),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::module_tensors;
    use crate::eval::finetune::{FinetuneConfig, SeriesInputs, finetune};

    /// Fine-tuning moves the encoder of either kind of series model.
    #[test]
    fn the_encoder_taken_out_for_fine_tuning_trains() {
        let device = crate::device::parse("cpu").unwrap().autodiff();
        let data = SeriesDataset {
            channels: 1,
            values: (0..8)
                .map(|i| (0..20).map(|t| ((i * t) as f32 * 0.3).sin()).collect())
                .collect(),
            lengths: vec![20; 8],
            labels: Some(vec![0, 1, 0, 1, 0, 1, 0, 1]),
            class_names: vec!["a".into(), "b".into()],
        };
        for method in ["ts2vec", "simclr"] {
            let mut recipe = Recipe::parse(
                &format!(
                    "[data]\nsource = \"ucr\"\nname = \"x\"\n[encoder]\nkind = \"ts2vec\"\nhidden = 4\noutput = 6\ndepth = 1\n[method]\nkind = \"{method}\"\n{}[optimizer]\nlr = 0.1\n",
                    if method == "simclr" {
                        "[[augment.series]]\nop = \"jitter\"\nsigma = 0.1\n"
                    } else {
                        ""
                    }
                ),
                std::path::Path::new("t.toml"),
            )
            .unwrap();
            recipe.seed = 1;
            let encoder = SeriesModel::build(&recipe, 1, &device)
                .unwrap()
                .into_encoder();
            let before = module_tensors(&encoder);
            let cfg = FinetuneConfig {
                steps: 3,
                batch_size: 4,
                lr: 0.01,
                encoder_lr: 0.01,
                ..Default::default()
            };
            let labels = data.labels.clone().unwrap();
            let inputs = SeriesInputs::new(&data, 20);
            let tuned = finetune(encoder, &inputs, &labels, 2, None, &cfg, &device).unwrap();
            let after = module_tensors(&tuned.encoder);
            let moved = before
                .iter()
                .filter(|(k, t)| after[*k].data != t.data)
                .count();
            assert!(moved > 0, "{method}: no encoder weight changed");
        }
    }
}
