//! Recipes: one TOML file that says what to train, on what, and how to evaluate it.
//!
//! Every kind in a recipe (`data.source`, `encoder.kind`, `method.kind`, `optimizer.kind`,
//! ...) is a tagged enum whose variants are the components' own settings, defined beside the
//! component, so a kind the code does not handle does not compile. Every table rejects unknown
//! keys, and every value is checked before training starts: a typo is reported with its key
//! and line instead of being silently ignored.
//!
//! Recipes stored in model files carry a schema `version`. Version 1 (before recipes were
//! typed) wrote every method and optimizer field whatever the kind, and the TS2Vec encoder's
//! sizes in an `encoder.ts2vec` table: [`Recipe::from_stored`] reads those files as they
//! were meant.

use crate::augment::series::{SeriesAugmentation, SeriesPipeline};
use crate::augment::{Augmentation, Pipeline, channel_stats};
use crate::data::ImageDataset;
use crate::data::locate::DataSpec;
use crate::encoders::EncoderSpec;
use crate::error::{Error, Result};
use crate::heads::ProjectionHeadSpec;
use crate::methods::MethodSpec;
use crate::optim::OptimizerSpec;
use crate::optim::schedule::ScheduleSpec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

/// The recipe contra runs when none is given: SimCLR on the bundled 8x8 digits.
pub const DEFAULT_RECIPE: &str = include_str!("../../../recipes/default.toml");

/// The schema version this contra writes and reads.
pub const RECIPE_VERSION: u32 = 2;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Schema version (optional in a recipe file; stored with every model).
    #[serde(default = "current_version")]
    pub version: u32,
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default, deserialize_with = "data_or_digits")]
    pub data: DataSpec,
    #[serde(default)]
    pub augment: AugmentSpec,
    #[serde(default)]
    pub encoder: EncoderSpec,
    #[serde(default)]
    pub head: ProjectionHeadSpec,
    /// CLIP's text tower (`method.kind = "clip"`): a BERT-family sentence encoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<crate::encoders::sentence::BertSpec>,
    #[serde(default, deserialize_with = "method_or_simclr")]
    pub method: MethodSpec,
    #[serde(deserialize_with = "optimizer_or_sgd")]
    pub optimizer: OptimizerSpec,
    #[serde(default)]
    pub schedule: ScheduleSpec,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub eval: EvalSpec,
}
fn current_version() -> u32 {
    RECIPE_VERSION
}
fn default_name() -> String {
    "run".into()
}

/// A tagged table whose tag may be left out: `tag = default` then.
fn tagged_or<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
    tag: &str,
    default: &str,
) -> std::result::Result<T, D::Error> {
    let mut table = toml::Table::deserialize(d)?;
    table
        .entry(tag)
        .or_insert_with(|| toml::Value::String(default.into()));
    T::deserialize(toml::Value::Table(table)).map_err(serde::de::Error::custom)
}
fn data_or_digits<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<DataSpec, D::Error> {
    tagged_or(d, "source", "digits")
}
fn method_or_simclr<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<MethodSpec, D::Error> {
    tagged_or(d, "kind", "simclr")
}
fn optimizer_or_sgd<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<OptimizerSpec, D::Error> {
    tagged_or(d, "kind", "sgd")
}

/// `preset = "simclr"` (lightly's SimCLR views at the data's size, normalised with the
/// training set's statistics), or an explicit list of `[[augment.steps]]`; for time series
/// trained by an instance method (SimCLR, MoCo, ...), the list `[[augment.series]]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AugmentSpec {
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Output size for the preset (defaults to the data's height).
    #[serde(default)]
    pub size: Option<usize>,
    #[serde(default)]
    pub steps: Vec<Augmentation>,
    /// Time series views: `{ op = "jitter", sigma = 0.03 }`, ... (see [`SeriesAugmentation`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesAugmentation>,
}

/// A named set of image views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// lightly's SimCLR views: crop, flip, colour jitter, grey, blur.
    Simclr,
}

impl Default for AugmentSpec {
    /// Without an `[augment]` table: the SimCLR preset.
    fn default() -> Self {
        Self {
            preset: Some(Preset::Simclr),
            size: None,
            steps: Vec::new(),
            series: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSpec {
    pub epochs: u64,
    pub batch_size: usize,
    /// Augmentation worker threads.
    pub workers: usize,
    /// Batches prepared ahead of the trainer.
    pub prefetch: usize,
    /// Class-balanced batches of `batch_size / per_class` classes with `per_class` items each
    /// (P x K sampling, for metric learning); 0 for a plain shuffle.
    pub per_class: usize,
    /// Semi-supervised SupCon: keep the labels of only this many training items per class
    /// (chosen with the seed); the rest train unlabelled. 0: every label.
    pub labelled_per_class: usize,
    /// Start from the encoder and projection head of this model file (a run of any method
    /// with the same architecture) instead of a random initialisation.
    pub init: Option<PathBuf>,
    /// Every N steps, log alignment, uniformity, effective rank and mean positive/negative
    /// cosine of the backbone features of two fixed views of the first 512 training images
    /// (`"diagnostics"` records in metrics.jsonl; a falling effective rank warns of collapse);
    /// 0: never.
    pub diagnose_every: u64,
    /// Online kNN monitor: after every epoch, the weighted kNN accuracy (eval.knn_k,
    /// eval.knn_temperature) of the first N labelled training items, the last fifth of them
    /// classified by the first four fifths (`"knn_accuracy"` records in metrics.jsonl);
    /// 0: off.
    pub knn_monitor: usize,
    /// Train for this many steps (rounded up to whole epochs) instead of `epochs`, as TS2Vec
    /// budgets its runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Write a checkpoint every N steps (and at the end of every epoch); 0: epochs only.
    pub checkpoint_every: u64,
    /// Where the run's files go (relative to the working directory).
    pub out: Option<PathBuf>,
    /// `cpu`, `cuda:N`, `tch-cpu` or `tch-cuda:N`.
    pub device: String,
    /// Across processes (`mpirun`), BatchNorm normalises by the statistics of the global
    /// batch (every rank's items), as one process would; `false`: each rank's own share.
    #[serde(skip_serializing_if = "is_true")]
    pub sync_batch_norm: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for TrainSpec {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 256,
            workers: 1,
            prefetch: 4,
            per_class: 0,
            labelled_per_class: 0,
            init: None,
            diagnose_every: 0,
            knn_monitor: 0,
            steps: None,
            checkpoint_every: 0,
            out: None,
            device: "cpu".into(),
            sync_batch_norm: true,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSpec {
    pub knn_k: usize,
    pub knn_temperature: f32,
    /// Few-label evaluations: N labels per class.
    pub labels_per_class: Vec<usize>,
    /// Seeds averaged for each few-label setting.
    pub seeds: u64,
    /// Candidate L2 strengths of the linear probe, one chosen by validation accuracy
    /// (default 1e-6 ... 1, one per decade).
    pub probe_l2: Vec<f64>,
    /// Settings of the SGD probe that the L-BFGS probe replaced: still read, so that older
    /// recipes and model files load, and ignored.
    #[serde(skip_serializing)]
    pub probe_epochs: Option<usize>,
    #[serde(skip_serializing)]
    pub probe_lr: Option<f64>,
    #[serde(skip_serializing)]
    pub probe_weight_decay: Option<f64>,
}

impl Default for EvalSpec {
    fn default() -> Self {
        Self {
            knn_k: 200,
            knn_temperature: 0.1,
            labels_per_class: vec![10],
            seeds: 5,
            // 1e-6 ... 1, one value per decade.
            probe_l2: (0..=6).map(|e| 10f64.powi(e - 6)).collect(),
            probe_epochs: None,
            probe_lr: None,
            probe_weight_decay: None,
        }
    }
}

impl Recipe {
    /// Parse recipe text; `origin` names the file in errors. A `version` other than this
    /// contra's is refused: a recipe file is always read as the current schema.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        Self::parse_text(text, origin, true)
    }

    /// [`Recipe::parse`]; `lines`: errors give the line of the key (not for text the user
    /// did not write, such as a recipe re-written with `--set` settings).
    fn parse_text(text: &str, origin: &Path, lines: bool) -> Result<Self> {
        let r: Recipe = toml::from_str(text)
            .map_err(|e| Error::format(origin, locate_error(text, &e, lines)))?;
        if r.version != RECIPE_VERSION {
            return Err(Error::format(
                origin,
                format!(
                    "recipe version {}; this contra reads version {RECIPE_VERSION} (leave `version` out)",
                    r.version
                ),
            ));
        }
        r.validate()?;
        Ok(r)
    }

    /// A recipe stored in a model file or checkpoint by this or an earlier version of
    /// contra: one without a `version` is version 1 and is brought up to date first.
    pub fn from_stored(text: &str, origin: &Path) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text)
            .map_err(|e| Error::format(origin, format!("invalid stored recipe: {e}")))?;
        if !table.contains_key("version") {
            upgrade_v1(&mut table);
        }
        let r = Recipe::deserialize(toml::Value::Table(table))
            .map_err(|e| Error::format(origin, format!("invalid stored recipe: {e}")))?;
        if r.version != RECIPE_VERSION {
            return Err(Error::format(
                origin,
                format!(
                    "stored recipe version {}; this contra reads versions 1 and {RECIPE_VERSION}",
                    r.version
                ),
            ));
        }
        r.validate()?;
        Ok(r)
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// A recipe for a folder of one's own data, and a line saying what it found: a UCR/UEA set
    /// folder (`<name>_TRAIN.ts` inside) trains TS2Vec; a folder of images (a sub-folder per
    /// class, or none) trains SimCLR with lightly's views on a small CNN at 32x32, 80% of each
    /// class training and 20% held out, the batch no larger than the training images.
    pub fn for_data(dir: &Path) -> Result<(Self, String)> {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "data".into());
        let quoted = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
        for ext in ["ts", "tsv"] {
            if dir.join(format!("{name}_TRAIN.{ext}")).is_file() {
                let parent = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
                let parent = parent.parent().unwrap_or(Path::new("/"));
                let text = format!(
                    "name = {n}\n[data]\nsource = \"ucr\"\nname = {n}\npath = {p}\n\
                     [encoder]\nkind = \"ts2vec\"\n[method]\nkind = \"ts2vec\"\n\
                     [optimizer]\nkind = \"adamw\"\nlr = 0.001\nweight_decay = 0.01\n\
                     exclude_bias_and_norm = false\n[schedule]\ndecay = \"constant\"\n\
                     [train]\nbatch_size = 8\nsteps = 200\n",
                    n = toml::Value::String(name.clone()),
                    p = quoted(parent)
                );
                let recipe = Self::parse(&text, dir)?;
                let said = format!(
                    "{}: the UCR/UEA set {name}: TS2Vec, 200 steps of batch 8, then the SVM on its embeddings",
                    dir.display()
                );
                return Ok((recipe, said));
            }
        }
        let (count, classes) = crate::data::folder::survey(dir)?;
        if count == 0 {
            return Err(Error::format(
                dir,
                "holds no images (PNG, JPEG, WebP, TIFF, BMP, GIF) and no UCR/UEA set (<name>_TRAIN.ts)",
            ));
        }
        let training = count * 4 / 5;
        let batch = [256usize, 128, 64, 32, 16, 8, 4, 2]
            .into_iter()
            .find(|&b| b <= training)
            .ok_or_else(|| Error::format(dir, format!("{count} images are too few to train on")))?;
        let text = format!(
            "name = {n}\n[data]\nsource = \"folder\"\npath = {p}\nchannels = 3\nimage_size = 32\n\
             [augment]\npreset = \"simclr\"\n[encoder]\nkind = \"small_cnn\"\n\
             [method]\nkind = \"simclr\"\ntemperature = 0.2\n\
             [optimizer]\nkind = \"sgd\"\nlr = {lr}\nmomentum = 0.9\nweight_decay = 5e-4\n\
             [schedule]\nwarmup_epochs = 1\ndecay = \"cosine\"\n\
             [train]\nepochs = 20\nbatch_size = {batch}\n",
            n = toml::Value::String(name.clone()),
            p = quoted(dir),
            lr = 0.06 * batch as f64 / 128.0,
        );
        let recipe = Self::parse(&text, dir)?;
        let found = if classes.is_empty() {
            format!(
                "{count} unlabelled images (no class sub-folders: nothing to score after training)"
            )
        } else {
            let shown: Vec<&str> = classes.iter().take(5).map(String::as_str).collect();
            let more = if classes.len() > 5 { ", ..." } else { "" };
            format!(
                "{count} images in {} classes ({}{more}); 80% of each class trains, 20% is held out for the evaluation",
                classes.len(),
                shown.join(", ")
            )
        };
        let said = format!(
            "{}: {found}. SimCLR (lightly's views) on a small CNN at 32x32 RGB, batch {batch}, 20 epochs; `--set key=value` changes any of it",
            dir.display()
        );
        Ok((recipe, said))
    }

    pub fn default_recipe() -> Self {
        Self::parse(DEFAULT_RECIPE, Path::new("<built-in recipes/default.toml>"))
            .expect("the built-in recipe is valid")
    }

    /// The recipe as TOML (what model files and `recipe.toml` store).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::other(format!("cannot serialise recipe: {e}")))
    }

    /// The recipe with `key=value` settings applied (`train.epochs=5`, `method.kind=moco`,
    /// `data.name=GunPoint`), each key checked as a recipe file's would be. A value is read as
    /// TOML (`5`, `0.1`, `true`, `[1, 10]`, `"text"`), else taken as text.
    pub fn with_overrides(&self, sets: &[String]) -> Result<Recipe> {
        let settings = sets
            .iter()
            .map(|set| {
                let (key, value) = set.split_once('=').ok_or_else(|| {
                    Error::config("--set", format!("`{set}`: expected key=value"))
                })?;
                let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or_else(|| toml::Value::String(value.to_string()));
                Ok((key.trim().to_string(), value))
            })
            .collect::<Result<Vec<_>>>()?;
        self.with_settings(&settings)
    }

    /// The recipe with each dotted key set to its value, checked as a recipe file is.
    pub fn with_settings(&self, settings: &[(String, toml::Value)]) -> Result<Recipe> {
        if settings.is_empty() {
            return Ok(self.clone());
        }
        let mut table: toml::Table = toml::from_str(&self.to_toml()?)
            .map_err(|e| Error::other(format!("cannot reread the recipe: {e}")))?;
        for (key, value) in settings {
            let value = value.clone();
            let mut parts: Vec<&str> = key.split('.').collect();
            let last = parts
                .pop()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| Error::config("--set", format!("`{key}`: no key before `=`")))?;
            let mut at = &mut table;
            for part in parts {
                at = at
                    .entry(part)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| {
                        Error::config("--set", format!("`{key}`: `{part}` is not a table"))
                    })?;
            }
            // A new kind starts from that kind's defaults: the old kind's keys do not carry.
            if matches!(last, "kind" | "source") && at.get(last) != Some(&value) {
                at.clear();
            }
            at.insert(last.to_string(), value);
        }
        let text = toml::to_string(&table)
            .map_err(|e| Error::other(format!("cannot write the recipe: {e}")))?;
        // Lines of the recipe as re-written here mean nothing to the user; the key does.
        Recipe::parse_text(&text, Path::new("--set"), false)
    }

    /// Each component's own checks, then the rules between components.
    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        self.encoder.validate()?;
        self.head.validate()?;
        self.method.validate()?;
        self.optimizer.validate()?;
        self.schedule.validate()?;
        crate::device::parse(&self.train.device)?;
        let text = self.data.is_text();
        if text || self.encoder.reads_text() || self.method.text_only() {
            if !(text && self.encoder.reads_text()) {
                return Err(Error::config(
                    if text { "encoder.kind" } else { "data.source" },
                    "text (data.source = \"text\" or \"wordnet\") uses encoder.kind = \"bert\", and only text does",
                ));
            }
            if !self.method.trains_text() {
                return Err(Error::config(
                    "method.kind",
                    format!(
                        "`{}` does not train on text; text trains with mnrl, simcse, supcon or triplet",
                        self.method.name()
                    ),
                ));
            }
            if !self.augment.series.is_empty() || !self.augment.steps.is_empty() {
                return Err(Error::config(
                    "augment",
                    "text has no augmentations (dropout makes SimCSE's second view)",
                ));
            }
        }
        self.validate_image_text()?;
        let series = self.data.is_series();
        let ts2vec = matches!(self.method, MethodSpec::Ts2vec(_));
        if text {
            // Checked above.
        } else if series != self.encoder.reads_series() || (ts2vec && !series) {
            return Err(Error::config(
                if ts2vec {
                    "method.kind"
                } else {
                    "encoder.kind"
                },
                "time series (data.source = \"ucr\" or \"csv\") use encoder.kind = \"ts2vec\" (with method.kind = \"ts2vec\", or an instance method such as simclr or moco and [[augment.series]] views); images use the other encoders and methods",
            ));
        }
        if let MethodSpec::Ncad(n) = &self.method {
            match &self.data {
                crate::data::locate::DataSpec::Csv(spec) if spec.window > n.suspect => {}
                crate::data::locate::DataSpec::Csv(spec) => {
                    return Err(Error::config(
                        "method.suspect",
                        format!(
                            "must be shorter than data.window ({}): the rest of the window is its context",
                            spec.window
                        ),
                    ));
                }
                _ => {
                    return Err(Error::config(
                        "method.kind",
                        "`ncad` scores windows of sensor streams: data.source = \"csv\"",
                    ));
                }
            }
        }
        if matches!(self.method, MethodSpec::Csi(_)) && (series || text) {
            return Err(Error::config(
                "method.kind",
                "`csi` shifts images (rotations); series and text train with other methods",
            ));
        }
        if matches!(self.method, MethodSpec::MeanShifted(_)) {
            if series || text {
                return Err(Error::config(
                    "method.kind",
                    "`mean_shifted` adapts an image encoder; series and text train with other methods",
                ));
            }
            if self.train.init.is_none() {
                return Err(Error::config(
                    "train.init",
                    "`mean_shifted` starts from a pretrained encoder: name its model file (a run on other data, e.g. recipes/simclr-mnist.toml)",
                ));
            }
        }
        if text {
            // No views to check: text brings its own.
        } else if series {
            self.validate_series(ts2vec)?;
        } else if !self.augment.series.is_empty() {
            return Err(Error::config(
                "augment.series",
                "applies to time series; images take augment.preset or augment.steps",
            ));
        } else {
            match (self.augment.preset, self.augment.steps.is_empty()) {
                (Some(_), false) => {
                    return Err(Error::config(
                        "augment",
                        "give either `preset` or `steps`, not both",
                    ));
                }
                (None, true) => {
                    return Err(Error::config(
                        "augment",
                        "give a `preset` or a list of `steps`",
                    ));
                }
                _ => {}
            }
        }
        let t = &self.train;
        if t.steps == Some(0) {
            return Err(Error::config("train.steps", "must be at least 1"));
        }
        if t.knn_monitor > 0 && t.knn_monitor < 10 {
            return Err(Error::config(
                "train.knn_monitor",
                "use at least 10 items (or 0 to switch the monitor off)",
            ));
        }
        if t.labelled_per_class > 0 {
            if !matches!(self.method, MethodSpec::Supcon(_)) {
                return Err(Error::config(
                    "train.labelled_per_class",
                    "semi-supervised training is SupCon's: set method.kind = \"supcon\"",
                ));
            }
            if t.per_class > 0 {
                return Err(Error::config(
                    "train.labelled_per_class",
                    "cannot be combined with class-balanced batches (train.per_class)",
                ));
            }
        }
        let k = t.per_class;
        if k == 1 || (k > 0 && !t.batch_size.is_multiple_of(k)) {
            return Err(Error::config(
                "train.per_class",
                "must be 0 (plain shuffle) or at least 2 and divide train.batch_size",
            ));
        }
        // MoCo's queue takes a whole batch of keys; NNCLR's support set a batch of projections.
        if self.method.queue_size().is_some_and(|q| q < t.batch_size) {
            return Err(Error::config(
                "method.queue_size",
                "must be at least train.batch_size",
            ));
        }
        if t.batch_size < 2 {
            return Err(Error::config(
                "train.batch_size",
                "must be at least 2 (a contrastive batch needs negatives)",
            ));
        }
        // A pretrained text encoder may be kept as it is (0 epochs): its model file then
        // evaluates the encoder as shipped.
        // CLIP's towers likewise (the untrained model is the random-towers baseline).
        let as_shipped = matches!(&self.encoder, crate::encoders::EncoderSpec::Bert(b) if b.pretrained)
            || matches!(self.method, MethodSpec::Clip(_));
        if t.epochs == 0 && !as_shipped {
            return Err(Error::config(
                "train.epochs",
                "must be at least 1 (0 only keeps a pretrained text encoder as it is)",
            ));
        }
        if self.eval.knn_k == 0 {
            return Err(Error::config("eval.knn_k", "must be at least 1"));
        }
        if self.eval.probe_l2.is_empty()
            || self
                .eval
                .probe_l2
                .iter()
                .any(|l| !l.is_finite() || *l < 0.0)
        {
            return Err(Error::config(
                "eval.probe_l2",
                "expected a list of one or more non-negative numbers",
            ));
        }
        Ok(())
    }

    /// Images with captions train CLIP, and only CLIP has a text tower.
    fn validate_image_text(&self) -> Result<()> {
        let clip = match &self.method {
            MethodSpec::Clip(c) => Some(c),
            _ => None,
        };
        if self.data.is_image_text() != clip.is_some() {
            return Err(match clip {
                Some(_) => Error::config(
                    "data.source",
                    "`clip` trains on images with captions: data.source = \"captions\", \"emoji\" or \"class-captions\"",
                ),
                None => Error::config(
                    "method.kind",
                    format!(
                        "`{}` holds images with captions: they train with method.kind = \"clip\"",
                        self.data.source()
                    ),
                ),
            });
        }
        let Some(clip) = clip else {
            if self.text.is_some() {
                return Err(Error::config(
                    "text",
                    "the [text] tower is CLIP's: it needs method.kind = \"clip\"",
                ));
            }
            return Ok(());
        };
        let Some(text) = &self.text else {
            return Err(Error::config(
                "text",
                "`clip` needs a [text] table for its text tower (path = \"all-MiniLM-L6-v2\")",
            ));
        };
        text.validate().map_err(|e| e.rekey("encoder.", "text."))?;
        if clip.freeze_text && !text.pretrained {
            return Err(Error::config(
                "method.freeze_text",
                "a frozen text tower must be pretrained (text.pretrained = true)",
            ));
        }
        if self.encoder.reads_text() || self.encoder.reads_series() {
            return Err(Error::config(
                "encoder.kind",
                "CLIP's image tower is an image encoder (small_cnn, resnet18, ...)",
            ));
        }
        Ok(())
    }

    /// Image-only settings would be ignored on series: refuse them instead.
    fn validate_series(&self, ts2vec: bool) -> Result<()> {
        let t = &self.train;
        for (key, set) in [
            ("train.init", t.init.is_some()),
            ("train.labelled_per_class", t.labelled_per_class > 0),
            ("train.per_class", ts2vec && t.per_class > 0),
            ("train.knn_monitor", t.knn_monitor > 0),
            ("train.diagnose_every", t.diagnose_every > 0),
            ("augment.steps", !self.augment.steps.is_empty()),
            ("augment.size", self.augment.size.is_some()),
        ] {
            if set {
                return Err(Error::config(
                    key,
                    "applies to images; training on time series does not use it",
                ));
            }
        }
        if ts2vec && !self.augment.series.is_empty() {
            return Err(Error::config(
                "augment.series",
                "TS2Vec makes its own views (overlapping crops and timestep masks); leave augment.series out or use an instance method such as simclr",
            ));
        }
        // NCAD makes its anomalous windows itself; views are optional.
        let ncad = matches!(self.method, MethodSpec::Ncad(_));
        if !ts2vec && !ncad && self.augment.series.is_empty() {
            return Err(Error::config(
                "augment.series",
                format!(
                    "method `{}` on time series needs the views' augmentations, e.g. [[augment.series]] op = \"jitter\", sigma = 0.03",
                    self.method.name()
                ),
            ));
        }
        self.series_pipeline().map(|_| ())
    }

    /// The augmentation pipeline for training on `train`.
    pub fn pipeline(&self, train: &ImageDataset) -> Result<Pipeline> {
        match self.augment.preset {
            Some(Preset::Simclr) => {
                let (mean, std) = channel_stats(train);
                Ok(Pipeline::simclr(
                    self.augment.size.unwrap_or(train.height),
                    mean,
                    std,
                ))
            }
            None => Pipeline::new(self.augment.steps.clone()),
        }
    }

    /// The views of time series for instance methods (`augment.series`).
    pub fn series_pipeline(&self) -> Result<SeriesPipeline> {
        SeriesPipeline::new(self.augment.series.clone())
    }

    /// The folder the run writes to.
    pub fn out_dir(&self) -> PathBuf {
        self.train
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(&self.name))
    }
}

/// A TOML error with the key it is about and (`lines`) that key's line. Errors inside a
/// tagged table (method, encoder, ...) come back pointing at the table's header: find the
/// key's own line there.
fn locate_error(text: &str, e: &toml::de::Error, lines: bool) -> String {
    let message = e.message().trim_end();
    let at_line = |n: usize| {
        if lines {
            format!("line {n}, ")
        } else {
            String::new()
        }
    };
    let Some(span) = e.span() else {
        return format!("invalid recipe: {e}");
    };
    let header_line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let rest = &text[span.start.min(text.len())..];
    let table = rest
        .lines()
        .next()
        .and_then(|l| l.trim().strip_prefix('['))
        .and_then(|l| l.strip_suffix(']'))
        .map(|t| t.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let Some(table) = table else {
        // The error points at a value: name its key in its table.
        let start = span.start.min(text.len());
        let from = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line = text[from..].lines().next().unwrap_or("");
        let header = text[..span.start.min(text.len())]
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
            .map(|t| format!("{}.", t.trim_matches(|c| c == '[' || c == ']').trim()));
        return match line.split_once('=') {
            Some((key, _))
                if !key.trim().is_empty()
                    && key
                        .trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) =>
            {
                format!(
                    "invalid recipe: {}`{}{}`: {message}",
                    at_line(header_line),
                    header.unwrap_or_default(),
                    key.trim()
                )
            }
            _ => format!("invalid recipe: {e}"),
        };
    };
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|m| m.split('`').next())
            .map(str::to_string)
    };
    // The table's own lines: up to the next header.
    let lines = rest
        .lines()
        .enumerate()
        .skip(1)
        .take_while(|(_, l)| !l.trim_start().starts_with('['));
    let found = if let Some(key) = quoted("unknown field `") {
        lines
            .filter(|(_, l)| {
                l.trim_start()
                    .strip_prefix(key.as_str())
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
            .map(|(i, _)| (i, format!("{table}.{key}")))
            .next()
    } else if let Some(value) = quoted("unknown variant `") {
        lines
            .filter(|(_, l)| {
                l.contains(&format!("\"{value}\"")) || l.contains(&format!("'{value}'"))
            })
            .map(|(i, l)| {
                let key = l.split('=').next().unwrap_or("").trim();
                (i, format!("{table}.{key}"))
            })
            .next()
    } else {
        None
    };
    match found {
        Some((offset, key)) => format!(
            "invalid recipe: {}`{key}`: {message}",
            at_line(header_line + offset)
        ),
        None => format!(
            "invalid recipe: {}[{table}]: {message}",
            at_line(header_line)
        ),
    }
}

/// Bring a version 1 stored recipe to the current schema: version 1 wrote every method and
/// optimizer field whatever the kind (each kind ignored the others), and the TS2Vec
/// encoder's sizes in `encoder.ts2vec`.
fn upgrade_v1(table: &mut toml::Table) {
    if let Some(toml::Value::Table(encoder)) = table.get_mut("encoder") {
        let sizes = encoder.remove("ts2vec");
        if encoder.get("kind").and_then(toml::Value::as_str) == Some("ts2vec")
            && let Some(toml::Value::Table(sizes)) = sizes
        {
            encoder.extend(sizes);
        }
    }
    keep_known::<DataSpec>(table, "data", "source", "digits");
    keep_known::<EncoderSpec>(table, "encoder", "kind", "small_cnn");
    keep_known::<MethodSpec>(table, "method", "kind", "simclr");
    keep_known::<OptimizerSpec>(table, "optimizer", "kind", "sgd");
    table.insert(
        "version".into(),
        toml::Value::Integer(RECIPE_VERSION as i64),
    );
}

/// Drop the keys of `table[name]` that its kind does not take (each tried on its own).
fn keep_known<T: DeserializeOwned>(table: &mut toml::Table, name: &str, tag: &str, default: &str) {
    let Some(toml::Value::Table(t)) = table.get_mut(name) else {
        return;
    };
    let kind = t
        .get(tag)
        .cloned()
        .unwrap_or_else(|| toml::Value::String(default.into()));
    t.retain(|key, value| {
        key == tag || {
            let mut probe = toml::Table::new();
            probe.insert(tag.into(), kind.clone());
            probe.insert(key.to_string(), value.clone());
            T::deserialize(toml::Value::Table(probe)).is_ok()
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::MoCoConfig;

    fn parse_err(text: &str) -> String {
        Recipe::parse(text, Path::new("bad.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn default_recipe_parses_and_errors_name_the_key_and_its_line() {
        let r = Recipe::default_recipe();
        assert_eq!(r.data, DataSpec::default());
        assert_eq!(r.version, RECIPE_VERSION);
        // Inside a tagged table the key's own line is found.
        let e = parse_err("seed = 1\n[optimizer]\nlr = 0.1\nmomentun = 0.9\n");
        assert!(
            e.contains("bad.toml") && e.contains("optimizer.momentun") && e.contains("line 4"),
            "{e}"
        );
        let e = parse_err("[optimizer]\nlr = -1.0\n");
        assert!(e.contains("optimizer.lr"), "{e}");
        let e = parse_err("[optimizer]\nkind = \"adamw\"\n");
        assert!(e.contains("optimizer.lr") && e.contains("missing"), "{e}");
        let e = parse_err("[optimizer]\nlr = 0.1\n[train]\nbatch_size = \"x\"\n");
        assert!(e.contains("batch_size") && e.contains("line 4"), "{e}");
        let e = parse_err("[optimizer]\nlr = 0.1\n[encoder]\nkind = \"vit\"\n");
        assert!(
            e.contains("encoder.kind") && e.contains("vit") && e.contains("line 4"),
            "{e}"
        );
        // A setting of another kind is refused, not ignored.
        let e =
            parse_err("[method]\nkind = \"simclr\"\nqueue_size = 4096\n[optimizer]\nlr = 0.1\n");
        assert!(
            e.contains("method.queue_size") && e.contains("line 3"),
            "{e}"
        );
        let e =
            parse_err("[method]\nkind = \"triplet\"\nminer = \"hardest\"\n[optimizer]\nlr = 0.1\n");
        assert!(
            e.contains("method.miner") && e.contains("hardest") && e.contains("line 3"),
            "{e}"
        );
        let e = parse_err("version = 7\n[optimizer]\nlr = 0.1\n");
        assert!(e.contains("version 7"), "{e}");
    }

    #[test]
    fn kinds_left_out_take_their_defaults_and_a_recipe_survives_storage() {
        let r = Recipe::parse(
            "[method]\ntemperature = 0.3\n[optimizer]\nlr = 0.2\n",
            Path::new("r.toml"),
        )
        .unwrap();
        assert!(matches!(&r.method, MethodSpec::Simclr(c) if c.temperature == 0.3));
        assert_eq!(r.optimizer, OptimizerSpec::sgd(0.2, 0.9, 0.0));
        let stored = r.to_toml().unwrap();
        assert!(stored.contains("version = 2"), "{stored}");
        assert_eq!(Recipe::from_stored(&stored, Path::new("m")).unwrap(), r);
        assert_eq!(Recipe::parse(&stored, Path::new("m")).unwrap(), r);
    }

    /// Version 1 wrote every method and optimizer field whatever the kind, and TS2Vec's
    /// sizes in `encoder.ts2vec`.
    #[test]
    fn version_one_stored_recipes_are_upgraded() {
        let v1 = "name = \"old\"\nseed = 3\n[data]\nsource = \"digits\"\ntrain_limit = 64\n\
            [encoder]\nkind = \"small_cnn\"\nwidths = [8, 8, 8, 8]\n\
            [method]\nkind = \"moco\"\ntemperature = 0.2\nloss = \"nt_xent\"\ndclw_sigma = 0.5\n\
            queue_size = 512\nmomentum = 0.99\nmomentum_schedule = \"cosine\"\nmargin = 0.2\n\
            miner = \"batch_hard\"\ndistance = \"euclidean\"\nswap = false\nsoft_margin = false\n\
            normalize = true\nalpha = 0.5\ntemporal_unit = 0\n\
            [optimizer]\nkind = \"sgd\"\nlr = 0.1\nmomentum = 0.9\nnesterov = false\n\
            weight_decay = 0.0005\nbetas = [0.9, 0.999]\neps = 0.00000001\neta = 0.001\n\
            exclude_bias_and_norm = true\n";
        // As a recipe file the stray keys are errors; stored, they are what version 1 wrote.
        assert!(Recipe::parse(v1, Path::new("v1.toml")).is_err());
        let r = Recipe::from_stored(v1, Path::new("model.safetensors")).unwrap();
        assert_eq!(
            r.method,
            MethodSpec::Moco(MoCoConfig {
                temperature: 0.2,
                queue_size: 512,
                momentum: 0.99,
                momentum_schedule: crate::methods::MomentumSchedule::Cosine,
            })
        );
        assert_eq!(r.optimizer, OptimizerSpec::sgd(0.1, 0.9, 0.0005));
        let ts = "[data]\nsource = \"ucr\"\nname = \"GunPoint\"\n\
            [encoder]\nkind = \"ts2vec\"\n\
            [encoder.ts2vec]\nhidden = 8\noutput = 12\ndepth = 2\nkernel = 3\ndropout = 0.1\n\
            [method]\nkind = \"ts2vec\"\nalpha = 0.4\ntemporal_unit = 1\n[optimizer]\nlr = 0.001\n";
        let r = Recipe::from_stored(ts, Path::new("m")).unwrap();
        let EncoderSpec::Ts2vec(sizes) = &r.encoder else {
            panic!("{:?}", r.encoder)
        };
        assert_eq!((sizes.hidden, sizes.output, sizes.depth), (8, 12, 2));
        // A later version than this contra's is refused, naming it.
        let e = Recipe::from_stored("version = 9\n[optimizer]\nlr = 0.1\n", Path::new("m"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 9"), "{e}");
    }

    #[test]
    fn overrides_reach_any_key_and_are_checked_like_the_file() {
        let r = Recipe::default_recipe();
        let o = r
            .with_overrides(&[
                "train.epochs=3".into(),
                "method.kind=\"moco\"".into(),
                "method.queue_size=512".into(),
                "eval.labels_per_class=[1, 5]".into(),
                "name=other".into(),
            ])
            .unwrap();
        assert_eq!(o.train.epochs, 3);
        assert_eq!(o.name, "other");
        assert_eq!(o.eval.labels_per_class, [1, 5]);
        // A new kind starts from its own defaults (SimCLR's temperature does not carry).
        assert_eq!(
            o.method,
            MethodSpec::Moco(MoCoConfig {
                queue_size: 512,
                ..MoCoConfig::default()
            })
        );
        // The rest of the recipe is untouched.
        assert_eq!(o.encoder, r.encoder);
        for (set, needle) in [
            ("method.queue_size=512", "method.queue_size"),
            ("train.batch_size=1", "train.batch_size"),
            ("train.epochs", "key=value"),
            ("seed.x=1", "not a table"),
            (
                "method.loss=foo",
                "--set: invalid recipe: `method.loss`: unknown variant `foo`",
            ),
        ] {
            let e = r.with_overrides(&[set.into()]).unwrap_err().to_string();
            assert!(e.contains(needle), "{set}: {e}");
            // No line number: the user wrote no file.
            assert!(!e.contains("line "), "{set}: {e}");
        }
    }

    /// CSI shifts images and NCAD scores stream windows: other data naming them is refused by
    /// the key.
    #[test]
    fn csi_and_ncad_are_refused_on_other_data() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
        for recipe in [
            "ts2vec-gunpoint.toml",
            "simclr-series-gunpoint.toml",
            "text/mnrl-wordnet.toml",
        ] {
            let r = Recipe::from_file(&dir.join(recipe)).unwrap();
            let e = r
                .with_overrides(&["method.kind=\"csi\"".into()])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("method.kind") && e.contains("csi"),
                "{recipe}: {e}"
            );
        }
        // NCAD scores windows of streams: images are refused likewise.
        let e = Recipe::default_recipe()
            .with_overrides(&["method.kind=\"ncad\"".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("method.kind") && e.contains("sensor streams"),
            "{e}"
        );
    }

    #[test]
    fn every_bundled_recipe_parses_and_validates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
        let mut seen = 0;
        // The recipes and those of the sub-folders (text/).
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else {
                files.push(p);
            }
        }
        for p in files {
            if p.extension().is_some_and(|x| x == "toml") {
                let r = Recipe::from_file(&p).unwrap_or_else(|e| panic!("{e}"));
                // TS2Vec makes its own views and NCAD its anomalous windows.
                let own_views = matches!(r.method, MethodSpec::Ts2vec(_) | MethodSpec::Ncad(_));
                if r.data.is_series() && !own_views {
                    assert!(!r.series_pipeline().unwrap().steps.is_empty());
                }
                seen += 1;
            }
        }
        assert!(seen >= 15, "{seen} recipes");
    }
}
